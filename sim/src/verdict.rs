//! The saturation verdict: past capacity, did the system under test refuse (429/503 with
//! `Retry-After`, counted by the servers), or did the embedded stack or the load generator
//! itself run out of CPU, open files or memory — and which process hit which limit.
//!
//! Why: a run that overloads its own harness measures the harness. The verdict says so in one
//! line and marks the results untrustworthy; a run where only the system under test refused is
//! an honest measurement of its refusals. Pure rules over a finished [`RunReport`] (samples from
//! [`crate::sampler`], error kinds from [`crate::outcome`], the servers' counters from
//! [`crate::sut`]), so they are tested on synthetic numbers. The verdict never changes the
//! pass/fail decision, which stays with the thresholds and the invariant check.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::metrics::snapshot::ErrorCount;
use crate::process::ProcessReport;
use crate::report::{RunReport, Saturation};
use crate::sampler::MachineReport;
use crate::sut::SutCounters;

/// A process at or above this share of one core counts as busy.
pub const CPU_BUSY_PERCENT: f64 = 90.0;
/// The machine at or above this share of all its cores counts as busy.
pub const MACHINE_BUSY_PERCENT: f64 = 90.0;
/// Busy for at least this long (milliseconds) is sustained.
pub const SUSTAINED_MS: u64 = 5_000;
/// Open descriptors at or above this share of the soft limit are near it.
pub const OPEN_FILES_NEAR: f64 = 0.9;
/// Available memory below this share of the total is near the end of it.
pub const MEMORY_LOW: f64 = 0.1;

/// The verdict's one word.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// No process hit a limit and the system under test refused nothing.
    #[default]
    Ok,
    /// The system under test refused some calls; the harness kept up.
    SutRefused,
    /// A process of the harness (generator or embedded stack) or the machine hit a limit.
    Saturated,
}

/// Whose limit a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The load generator (players' processes, their schedule).
    Generator,
    /// The embedded stack (fakes, matchmaker, lobby shards, Redis started by this run).
    Stack,
    /// The machine as a whole.
    Machine,
    /// The system under test answered with a refusal.
    Sut,
}

/// Which limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    Cpu,
    OpenFiles,
    Memory,
    /// Players started late: the generator did not keep its schedule.
    StartLag,
    /// The server refused at its connection cap (or otherwise answered 429/503).
    Refusal,
}

/// One process (or the machine, or a server) at one limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub side: Side,
    pub limit: Limit,
    /// The process (`worker 2 (pid 123)`), `machine`, or the refusing server.
    pub who: String,
    pub message: String,
}

/// The run's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub status: Status,
    /// Whether the figures measure the system under test rather than the harness.
    pub trustworthy: bool,
    /// One line: `SATURATED: …`, `SUT REFUSED: …` or `OK: …`.
    pub headline: String,
    #[serde(default)]
    pub findings: Vec<Finding>,
}

impl Default for Verdict {
    fn default() -> Self {
        Verdict {
            status: Status::Ok,
            trustworthy: true,
            headline: String::new(),
            findings: Vec::new(),
        }
    }
}

impl Verdict {
    pub fn saturated(&self) -> bool {
        self.status == Status::Saturated
    }
}

/// What the verdict is judged from: the parts of a report it reads.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// The target was embedded: the servers' processes belong to the harness.
    pub embedded: bool,
    pub saturation: &'a Saturation,
    /// Searches started: late starts are judged against them.
    pub arrivals: u64,
    pub processes: &'a [ProcessReport],
    pub machine: Option<&'a MachineReport>,
    pub sut: Option<&'a SutCounters>,
    pub errors: &'a [ErrorCount],
}

/// Judges a finished report.
pub fn judge(report: &RunReport) -> Verdict {
    judge_evidence(&Evidence {
        embedded: report.scenario.target == "embedded",
        saturation: &report.saturation,
        arrivals: report.players,
        processes: &report.processes,
        machine: report.machine.as_ref(),
        sut: report.sut.as_ref(),
        errors: &report.errors,
    })
}

/// Late starts say the generator fell behind when they are more than a stray: over
/// [`LATE_STARTS_PER_MILLE`] ‰ of the searches, or one of them at least [`LATE_START_MS`] late.
/// (One player 60 ms late among 300,000 is a scheduler hiccup, not a load that was not met.)
fn start_lag_matters(s: &Saturation, arrivals: u64) -> bool {
    s.lagged_starts.saturating_mul(1000) > arrivals.saturating_mul(LATE_STARTS_PER_MILLE)
        || s.max_lag_ms >= LATE_START_MS
}

/// Late starts (past 50 ms) tolerated per thousand searches.
pub const LATE_STARTS_PER_MILLE: u64 = 1;
/// A start this late always counts.
pub const LATE_START_MS: f64 = 1000.0;

/// Judges from the parts of a report.
pub fn judge_evidence(report: &Evidence<'_>) -> Verdict {
    let embedded = report.embedded;
    let mut findings = Vec::new();
    let s = report.saturation;
    if s.warned && start_lag_matters(s, report.arrivals) {
        findings.push(Finding {
            side: Side::Generator,
            limit: Limit::StartLag,
            who: "generator".to_owned(),
            message: format!(
                "{} players started more than 50 ms late (worst {:.0} ms): the offered load was not met",
                thousands(s.lagged_starts),
                s.max_lag_ms
            ),
        });
    }
    for p in report.processes {
        process_findings(p, embedded, &mut findings);
    }
    if let Some(m) = report.machine {
        if let Some((from, ms, peak)) = longest_busy(
            m.samples.iter().map(|x| (x.at_ms, x.busy_percent)),
            MACHINE_BUSY_PERCENT,
        ) {
            // How much of the machine this run's own processes used, so a reader can tell a
            // run that filled the machine from one that shared it with something else.
            let span_s = m.samples.last().map_or(0.0, |x| x.at_ms as f64 / 1000.0);
            let own: f64 = report.processes.iter().map(|p| p.cpu_seconds).sum();
            let share = if span_s > 0.0 && m.cores > 0 {
                format!(
                    "; this run's processes used {:.0}% of it",
                    (own / (span_s * f64::from(m.cores)) * 100.0).min(100.0)
                )
            } else {
                String::new()
            };
            findings.push(Finding {
                side: Side::Machine,
                limit: Limit::Cpu,
                who: "machine".to_owned(),
                message: format!(
                    "machine: all {} cores busy ({peak:.0}%) for {} s from {}{share}",
                    m.cores,
                    ms / 1000,
                    clock(from)
                ),
            });
        }
        if m.mem_total_bytes > 0
            && (m.min_mem_available_bytes as f64) < m.mem_total_bytes as f64 * MEMORY_LOW
        {
            let biggest = report.processes.iter().max_by_key(|p| p.peak_rss_bytes);
            findings.push(Finding {
                side: Side::Machine,
                limit: Limit::Memory,
                who: biggest.map_or("machine".to_owned(), |p| describe(p, embedded)),
                message: format!(
                    "machine: only {} MiB of {} MiB memory available{}",
                    m.min_mem_available_bytes / (1024 * 1024),
                    m.mem_total_bytes / (1024 * 1024),
                    biggest
                        .map(|p| format!(
                            "; largest {} at {} MiB RSS",
                            describe(p, embedded),
                            p.peak_rss_bytes / (1024 * 1024)
                        ))
                        .unwrap_or_default()
                ),
            });
        }
    }
    if let Some(c) = report.sut {
        for (server, n) in [
            ("fakes", c.fakes_accept_resource_errors),
            ("matchmaker", c.matchmaker_accept_resource_errors),
        ] {
            let n = n.unwrap_or(0);
            if n > 0 {
                findings.push(Finding {
                    side: if embedded { Side::Stack } else { Side::Sut },
                    limit: Limit::OpenFiles,
                    who: server.to_owned(),
                    message: format!(
                        "{server}: accept() failed {} times for lack of descriptors (its open-files limit)",
                        thousands(n)
                    ),
                });
            }
        }
    }
    refusal_findings(report, &mut findings);

    let harness: Vec<&Finding> = findings.iter().filter(|f| f.side != Side::Sut).collect();
    let sut: Vec<&Finding> = findings.iter().filter(|f| f.side == Side::Sut).collect();
    let mut headline = String::new();
    let status = if !harness.is_empty() {
        let list: Vec<&str> = harness.iter().map(|f| f.message.as_str()).collect();
        let _ = write!(headline, "SATURATED: {}", list.join("; "));
        Status::Saturated
    } else if !sut.is_empty() {
        Status::SutRefused
    } else {
        headline.push_str(
            "OK: no process hit a CPU, open-files or memory limit and the system under test refused nothing",
        );
        Status::Ok
    };
    if !sut.is_empty() {
        let list: Vec<&str> = sut.iter().map(|f| f.message.as_str()).collect();
        if !headline.is_empty() {
            headline.push_str(" — ");
        }
        let _ = write!(headline, "SUT REFUSED: {}", list.join("; "));
    }
    Verdict {
        status,
        trustworthy: harness.is_empty(),
        headline,
        findings,
    }
}

/// CPU, open files and local connect failures of one process.
fn process_findings(p: &ProcessReport, embedded: bool, out: &mut Vec<Finding>) {
    let side = side_of(&p.role, embedded);
    let who = describe(p, embedded);
    if let Some((from, ms, peak)) = longest_busy(
        p.samples.iter().map(|x| (x.at_ms, x.cpu_percent)),
        CPU_BUSY_PERCENT,
    ) {
        out.push(Finding {
            side,
            limit: Limit::Cpu,
            who: who.clone(),
            message: format!(
                "{who} at {peak:.0}% CPU for {} s from {}",
                ms / 1000,
                clock(from)
            ),
        });
    }
    if let Some(limit) = p.open_files_limit.filter(|&l| l > 0) {
        if p.peak_open_files as f64 >= limit as f64 * OPEN_FILES_NEAR {
            out.push(Finding {
                side,
                limit: Limit::OpenFiles,
                who: who.clone(),
                message: format!(
                    "{who} hit {}/{} open files at {}",
                    thousands(p.peak_open_files),
                    thousands(limit),
                    clock(p.peak_open_files_at_ms)
                ),
            });
        }
    }
    if p.local_resource_errors > 0 {
        out.push(Finding {
            side,
            limit: Limit::OpenFiles,
            who: who.clone(),
            message: format!(
                "{who}: {} calls failed for lack of local descriptors or ports (EMFILE/ENFILE/EADDRNOTAVAIL/ENOBUFS)",
                thousands(p.local_resource_errors)
            ),
        });
    }
}

/// 429s and 503s the players got, by the server that answered, with the servers' own counts.
fn refusal_findings(report: &Evidence<'_>, out: &mut Vec<Finding>) {
    let (mut fakes, mut matchmaker) = (0u64, 0u64);
    for e in report.errors {
        if e.kind == "http_429" || e.kind == "http_503" {
            if e.endpoint == "matchmaking" {
                matchmaker += e.count;
            } else {
                fakes += e.count;
            }
        }
    }
    let c = report.sut.copied().unwrap_or_default();
    for (server, answered, capped) in [
        ("fakes", fakes, c.fakes_refused_over_cap.unwrap_or(0)),
        ("matchmaker", matchmaker, c.matchmaker_refused.unwrap_or(0)),
    ] {
        if answered == 0 && capped == 0 {
            continue;
        }
        out.push(Finding {
            side: Side::Sut,
            limit: Limit::Refusal,
            who: server.to_owned(),
            message: format!(
                "{} requests got 429/503 from the {server} ({} connections refused at its connection cap)",
                thousands(answered),
                thousands(capped)
            ),
        });
    }
}

/// Whose the process is: a worker is the generator; the parent (hosting an embedded target)
/// and the stack's children are the stack; a single process is both, and counts as the
/// generator (its players are the first to suffer).
fn side_of(role: &str, embedded: bool) -> Side {
    let generator =
        role.starts_with("worker") || role == "single" || (role == "parent" && !embedded);
    if generator {
        Side::Generator
    } else {
        Side::Stack
    }
}

/// `worker 2 (pid 123)`, with what a parent or single process hosts when the target is
/// embedded.
pub fn describe(p: &ProcessReport, embedded: bool) -> String {
    let what = match p.role.as_str() {
        "parent" if embedded => " (fakes primary)",
        "single" if embedded => " (players and embedded stack)",
        _ => "",
    };
    format!("{}{what} (pid {})", p.role, p.pid)
}

/// The longest stretch of consecutive samples at or above `busy`, if it lasted at least
/// [`SUSTAINED_MS`]: `(start ms, length ms, peak percent)`. A sample's value covers the time
/// since the previous sample.
pub fn longest_busy(
    samples: impl Iterator<Item = (u64, f64)>,
    busy: f64,
) -> Option<(u64, u64, f64)> {
    let mut best: Option<(u64, u64, f64)> = None;
    let mut run: Option<(u64, u64, f64)> = None;
    let mut previous: Option<u64> = None;
    for (at, value) in samples {
        let since = previous.unwrap_or(at);
        previous = Some(at);
        if value >= busy {
            let r = run.get_or_insert((since, 0, value));
            r.1 = at - r.0;
            r.2 = r.2.max(value);
            if best.is_none_or(|b| r.1 > b.1) {
                best = Some(*r);
            }
        } else {
            run = None;
        }
    }
    best.filter(|b| b.1 >= SUSTAINED_MS)
}

/// `m:ss` since the run started.
fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!("{}:{:02}", s / 60, s % 60)
}

/// `19800` → `19,800`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests;
