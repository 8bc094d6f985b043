//! What one process of a run cost: its peak resident memory and the CPU time it used, and —
//! sampled during the run by [`crate::sampler`] — how close it came to its limits: CPU share,
//! open descriptors against its `RLIMIT_NOFILE`, resident memory, with a short time series.
//!
//! A run may be one process or a parent with worker processes; the report lists each so a
//! reader can see which process was the bottleneck and how much headroom the machine had. The
//! totals come from `getrusage(RUSAGE_SELF)`, which every process reads about itself at the end
//! of its run (workers send theirs with their report), or from `/proc` for the stack's children.

use serde::{Deserialize, Serialize};

/// One process's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessReport {
    /// `single` (everything in one process), `parent` (hosts the target, merges), or
    /// `worker I` (runs shard I of the players).
    pub role: String,
    pub pid: u32,
    /// Peak resident set size, bytes.
    pub peak_rss_bytes: u64,
    /// User plus system CPU time, seconds.
    pub cpu_seconds: f64,
    /// The soft open-files limit seen during the run (`None`: not sampled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_files_limit: Option<u64>,
    /// The most descriptors open at one sample.
    #[serde(default)]
    pub peak_open_files: u64,
    /// When that peak was seen, milliseconds since sampling started.
    #[serde(default)]
    pub peak_open_files_at_ms: u64,
    /// The highest CPU share between two samples, percent of one core (may pass 100 with
    /// several threads).
    #[serde(default)]
    pub peak_cpu_percent: f64,
    /// Calls this process could not make for lack of local descriptors, ports or buffers
    /// (`local_resources` errors).
    #[serde(default)]
    pub local_resource_errors: u64,
    /// About one sample a second (thinned out on long runs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<ProcessSample>,
}

/// One sample of one process.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProcessSample {
    /// Milliseconds since sampling started.
    pub at_ms: u64,
    /// CPU share since the previous sample, percent of one core.
    pub cpu_percent: f64,
    /// Descriptors open.
    pub open_files: u64,
    /// Resident set size, bytes.
    pub rss_bytes: u64,
}

impl ProcessReport {
    /// This process's figures so far; zeros where the platform cannot tell.
    pub fn of_self(role: impl Into<String>) -> ProcessReport {
        let (peak_rss_bytes, cpu_seconds) = usage().unwrap_or((0, 0.0));
        ProcessReport {
            role: role.into(),
            pid: std::process::id(),
            peak_rss_bytes,
            cpu_seconds,
            ..ProcessReport::empty()
        }
    }
}

impl ProcessReport {
    /// Another process's figures so far, read from `/proc` (the stack's children: lobby shards,
    /// matchmaker replicas, Redis); zeros where they cannot be read.
    pub fn of_pid(role: impl Into<String>, pid: u32) -> ProcessReport {
        let (peak_rss_bytes, cpu_seconds) = proc_usage(pid).unwrap_or((0, 0.0));
        ProcessReport {
            role: role.into(),
            pid,
            peak_rss_bytes,
            cpu_seconds,
            ..ProcessReport::empty()
        }
    }

    /// `role` / `pid` with nothing measured yet (the sampler fills in the rest).
    pub(crate) fn unmeasured(role: String, pid: u32) -> ProcessReport {
        ProcessReport {
            role,
            pid,
            ..ProcessReport::empty()
        }
    }

    fn empty() -> ProcessReport {
        ProcessReport {
            role: String::new(),
            pid: 0,
            peak_rss_bytes: 0,
            cpu_seconds: 0.0,
            open_files_limit: None,
            peak_open_files: 0,
            peak_open_files_at_ms: 0,
            peak_cpu_percent: 0.0,
            local_resource_errors: 0,
            samples: Vec::new(),
        }
    }
}

/// Peak RSS (`VmHWM`) and user + system CPU of `pid`, from `/proc`.
fn proc_usage(pid: u32) -> Option<(u64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let peak_kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some((
        peak_kib * 1024,
        cpu_seconds_from_stat(&stat, clock_ticks())?,
    ))
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line, in seconds. The command name
/// (field 2) may hold spaces, so fields are counted after its closing parenthesis.
pub(crate) fn cpu_seconds_from_stat(stat: &str, ticks_per_second: f64) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After ")": field 3 is the first; utime is field 14, i.e. the 12th after it.
    let utime: f64 = fields.nth(11)?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / ticks_per_second)
}

#[cfg(unix)]
pub(crate) fn clock_ticks() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |t| t as f64)
}

#[cfg(not(unix))]
pub(crate) fn clock_ticks() -> f64 {
    100.0
}

#[cfg(unix)]
fn usage() -> Option<(u64, f64)> {
    use nix::sys::resource::{UsageWho, getrusage};
    let u = getrusage(UsageWho::RUSAGE_SELF).ok()?;
    let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    // Linux reports the maximum resident set in kilobytes (macOS in bytes).
    let unit = if cfg!(target_os = "macos") { 1 } else { 1024 };
    let rss = u64::try_from(u.max_rss()).unwrap_or(0) * unit;
    Some((rss, secs(u.user_time()) + secs(u.system_time())))
}

#[cfg(not(unix))]
fn usage() -> Option<(u64, f64)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_count_from_the_command_name() {
        let stat = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 1 2 3";
        assert_eq!(cpu_seconds_from_stat(stat, 100.0), Some(3.0));
        let me = ProcessReport::of_pid("me", std::process::id());
        assert!(me.peak_rss_bytes > 0);
        assert_eq!(ProcessReport::of_pid("gone", u32::MAX).peak_rss_bytes, 0);
    }

    #[test]
    fn this_process_has_memory_and_cpu() {
        // Burn a little CPU and touch memory so both figures are above zero.
        let v: Vec<u64> = (0..2_000_000u64).map(|i| i.wrapping_mul(31)).collect();
        let sum: u64 = v.iter().fold(0, |a, b| a.wrapping_add(*b));
        assert_ne!(sum, 1);
        let p = ProcessReport::of_self("single");
        assert_eq!(p.pid, std::process::id());
        assert!(p.peak_rss_bytes > 16 * 1024 * 1024, "{p:?}");
        assert!(p.cpu_seconds > 0.0, "{p:?}");
    }
}
