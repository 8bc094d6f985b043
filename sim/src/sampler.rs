//! Samples the processes of a run while it runs: CPU share, open descriptors against the
//! open-files limit, resident memory — and the machine's busy cores and available memory.
//!
//! Why: a run past capacity must say *which* process hit *which* limit (see [`crate::verdict`]).
//! Totals at the end (peak RSS, CPU seconds) cannot tell a process that was pinned at one core
//! for a minute from one that was busy in bursts, nor show a process that ran out of
//! descriptors. Every process samples what it owns: a single process or a worker samples
//! itself (and the embedded stack's children it started), a parent samples itself and its
//! stack's children; workers send theirs with their report.
//!
//! Everything comes from `/proc` (Linux); elsewhere the samples are empty and the report keeps
//! its totals.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::process::{ProcessReport, ProcessSample, clock_ticks, cpu_seconds_from_stat};

/// How often to sample.
pub const EVERY: Duration = Duration::from_secs(1);
/// Samples kept per process; past this the series is thinned to every other point.
pub const MAX_SAMPLES: usize = 240;

/// The machine during the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineReport {
    /// CPUs this run may use.
    pub cores: u32,
    pub mem_total_bytes: u64,
    /// The least memory available at one sample.
    pub min_mem_available_bytes: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<MachineSample>,
}

/// One sample of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MachineSample {
    /// Milliseconds since sampling started.
    pub at_ms: u64,
    /// Share of all cores busy since the previous sample, percent (100: every core).
    pub busy_percent: f64,
    pub mem_available_bytes: u64,
}

/// A process to watch: its role in the report and its pid.
#[derive(Debug, Clone)]
pub struct Watched {
    pub role: String,
    pub pid: u32,
}

/// What sampling found, at the end.
#[derive(Debug, Clone, Default)]
pub struct Sampled {
    /// In the order they were watched; this process's totals come from `getrusage`.
    pub processes: Vec<ProcessReport>,
    pub machine: Option<MachineReport>,
}

/// A running sampler; [`finish`](Sampler::finish) stops it.
#[derive(Debug)]
pub struct Sampler {
    stop: CancellationToken,
    task: JoinHandle<State>,
}

impl Sampler {
    /// Starts sampling `watched` every `every` (the first sample at once).
    pub fn start(watched: Vec<Watched>, every: Duration) -> Sampler {
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let mut state = State::new(watched);
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => state.sample(),
                    () = token.cancelled() => break,
                }
            }
            state
        });
        Sampler { stop, task }
    }

    /// Takes a last sample and hands back every process's report.
    pub async fn finish(self) -> Sampled {
        self.stop.cancel();
        match self.task.await {
            Ok(mut state) => {
                state.sample();
                state.into_sampled()
            }
            Err(_) => Sampled::default(),
        }
    }
}

#[derive(Debug)]
struct Track {
    report: ProcessReport,
    last_cpu: Option<(f64, Instant)>,
}

#[derive(Debug)]
struct State {
    start: Instant,
    tracks: Vec<Track>,
    machine: MachineReport,
    last_machine: Option<(u64, u64)>,
}

impl State {
    fn new(watched: Vec<Watched>) -> State {
        let tracks = watched
            .into_iter()
            .map(|w| Track {
                report: ProcessReport::unmeasured(w.role, w.pid),
                last_cpu: None,
            })
            .collect();
        State {
            start: Instant::now(),
            tracks,
            machine: MachineReport {
                cores: std::thread::available_parallelism()
                    .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX)),
                ..MachineReport::default()
            },
            last_machine: None,
        }
    }

    fn sample(&mut self) {
        let now = Instant::now();
        let at_ms = u64::try_from(now.duration_since(self.start).as_millis()).unwrap_or(u64::MAX);
        for track in &mut self.tracks {
            let Some(reading) = read_process(track.report.pid) else {
                continue;
            };
            let cpu_percent = match track.last_cpu {
                Some((cpu, then)) => {
                    let wall = now.duration_since(then).as_secs_f64();
                    if wall > 0.0 {
                        ((reading.cpu_seconds - cpu) / wall * 100.0).max(0.0)
                    } else {
                        0.0
                    }
                }
                None => 0.0,
            };
            track.last_cpu = Some((reading.cpu_seconds, now));
            let r = &mut track.report;
            if reading.open_files_limit.is_some() {
                r.open_files_limit = reading.open_files_limit;
            }
            if reading.open_files > r.peak_open_files {
                r.peak_open_files = reading.open_files;
                r.peak_open_files_at_ms = at_ms;
            }
            r.peak_cpu_percent = r.peak_cpu_percent.max(cpu_percent);
            push_thinned(
                &mut r.samples,
                ProcessSample {
                    at_ms,
                    cpu_percent,
                    open_files: reading.open_files,
                    rss_bytes: reading.rss_bytes,
                },
            );
        }
        if let Some((busy, total, mem_total, available)) = read_machine() {
            let busy_percent = match self.last_machine {
                Some((b, t)) if total > t => (busy - b) as f64 / (total - t) as f64 * 100.0,
                _ => 0.0,
            };
            self.last_machine = Some((busy, total));
            let m = &mut self.machine;
            m.mem_total_bytes = mem_total;
            if m.samples.is_empty() || available < m.min_mem_available_bytes {
                m.min_mem_available_bytes = available;
            }
            push_thinned(
                &mut m.samples,
                MachineSample {
                    at_ms,
                    busy_percent,
                    mem_available_bytes: available,
                },
            );
        }
    }

    fn into_sampled(self) -> Sampled {
        let me = std::process::id();
        let processes = self
            .tracks
            .into_iter()
            .map(|t| {
                let totals = if t.report.pid == me {
                    ProcessReport::of_self(t.report.role.clone())
                } else {
                    ProcessReport::of_pid(t.report.role.clone(), t.report.pid)
                };
                ProcessReport {
                    peak_rss_bytes: totals.peak_rss_bytes,
                    cpu_seconds: totals.cpu_seconds,
                    ..t.report
                }
            })
            .collect();
        let machine = (!self.machine.samples.is_empty()).then_some(self.machine);
        Sampled { processes, machine }
    }
}

/// Appends `point`; past [`MAX_SAMPLES`] keeps every other point (the series stays evenly
/// spaced, at twice the interval).
fn push_thinned<T>(series: &mut Vec<T>, point: T) {
    series.push(point);
    if series.len() > MAX_SAMPLES {
        let mut i = 0;
        series.retain(|_| {
            i += 1;
            i % 2 == 1
        });
    }
}

/// One reading of one process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessReading {
    pub cpu_seconds: f64,
    pub open_files: u64,
    pub open_files_limit: Option<u64>,
    pub rss_bytes: u64,
}

/// Reads `pid` from `/proc`; `None` when it is gone or unreadable.
pub fn read_process(pid: u32) -> Option<ProcessReading> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let cpu_seconds = cpu_seconds_from_stat(&stat, clock_ticks())?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_bytes = status_kib(&status, "VmRSS:").unwrap_or(0) * 1024;
    let open_files = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    let open_files_limit = std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .ok()
        .and_then(|l| soft_open_files_limit(&l));
    Some(ProcessReading {
        cpu_seconds,
        open_files,
        open_files_limit,
        rss_bytes,
    })
}

/// A `Key:   1234 kB` line of `/proc/PID/status` or `/proc/meminfo`, in KiB.
fn status_kib(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// The soft limit of `Max open files` in `/proc/PID/limits` (`None` for `unlimited`).
pub fn soft_open_files_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// `(busy jiffies, total jiffies, MemTotal bytes, MemAvailable bytes)` of the machine.
fn read_machine() -> Option<(u64, u64, u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let (busy, total) = busy_and_total(stat.lines().next()?)?;
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let total_mem = status_kib(&meminfo, "MemTotal:")? * 1024;
    let available = status_kib(&meminfo, "MemAvailable:")? * 1024;
    Some((busy, total, total_mem, available))
}

/// Busy and total jiffies of the `cpu` line of `/proc/stat` (idle and iowait are not busy;
/// guest time is already inside user time).
fn busy_and_total(line: &str) -> Option<(u64, u64)> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let v: Vec<u64> = fields.take(8).filter_map(|f| f.parse().ok()).collect();
    if v.len() < 5 {
        return None;
    }
    let total: u64 = v.iter().sum();
    let idle = v[3] + v[4];
    Some((total - idle, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_text_is_read() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max open files            512                  20000                files     \n";
        assert_eq!(soft_open_files_limit(limits), Some(512));
        assert_eq!(
            soft_open_files_limit("Max open files  unlimited unlimited files"),
            None
        );
        assert_eq!(
            busy_and_total("cpu  100 0 50 800 50 0 0 0 0 0"),
            Some((150, 1000))
        );
        assert_eq!(busy_and_total("intr 1 2 3"), None);
    }

    #[test]
    fn thinning_keeps_the_series_short_and_ordered() {
        let mut v = Vec::new();
        for i in 0..1000 {
            push_thinned(&mut v, i);
        }
        assert!(v.len() <= MAX_SAMPLES);
        assert!(v.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(v[0], 0);
    }

    #[tokio::test]
    async fn this_process_is_sampled_with_its_descriptors_and_limit() {
        let sampler = Sampler::start(
            vec![Watched {
                role: "single".into(),
                pid: std::process::id(),
            }],
            Duration::from_millis(20),
        );
        // Open some descriptors the sampler must count.
        let held: Vec<std::net::TcpListener> = (0..50)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
            .collect();
        let reading = read_process(std::process::id()).expect("readable");
        assert!(reading.open_files >= 50, "{reading:?}");
        let sampled = sampler.finish().await;
        drop(held);
        let me = &sampled.processes[0];
        assert_eq!(me.role, "single");
        assert!(me.peak_open_files >= 50, "{me:?}");
        assert_eq!(me.open_files_limit, crate::limits::open_files_limit());
        assert!(!me.samples.is_empty());
        assert!(me.peak_rss_bytes > 0);
        let machine = sampled.machine.expect("machine sampled");
        assert!(machine.cores >= 1 && machine.mem_total_bytes > 0);
    }
}
