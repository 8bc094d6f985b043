//! What one process of a run cost: its peak resident memory and the CPU time it used.
//!
//! A run may be one process or a parent with worker processes; the report lists each so a
//! reader can see which process was the bottleneck and how much headroom the machine had. The
//! figures come from `getrusage(RUSAGE_SELF)`, which every process reads about itself at the end
//! of its run (workers send theirs with their report).

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
        }
    }
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
