//! [`MetricsSnapshot`]: what the engine publishes on its `watch` channel at a steady rate, for
//! the headless progress line and the dashboard.
//!
//! A snapshot is plain data (serde + `Clone`), complete enough to draw a screen without asking
//! the engine anything: counters, gauges, rates, latency now and cumulative, a window of the
//! per-second series, claim counts, errors by endpoint and kind, live threshold status and the
//! saturation flag. Building one must stay cheap (it runs several times a second).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ClaimCounts, Collector, Gauges, Percentiles, SATURATION_LAG};
use crate::outcome::Outcome;
use crate::scenario::Thresholds;
use crate::thresholds::{self, ResultView, ThresholdResult};

/// Seconds looked back when deciding whether the generator is saturated now.
pub const SATURATION_WINDOW_S: usize = 5;

/// Seconds of series a snapshot carries.
pub const SERIES_WINDOW: usize = 300;

/// Where the run is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Starting the target, creating users, getting tokens.
    #[default]
    Preparing,
    /// Arrivals on schedule.
    Running,
    /// Arrivals held by a command; players in flight continue.
    Paused,
    /// Arrivals over; waiting for players in flight.
    Draining,
    /// Done; the report is being written.
    Finished,
}

impl Phase {
    /// The phase least far along of the two (a run of several processes is where its slowest
    /// process is): preparing, running, paused, draining, finished.
    pub fn min_by_progress(self, other: Phase) -> Phase {
        let rank = |p: Phase| match p {
            Phase::Preparing => 0,
            Phase::Running => 1,
            Phase::Paused => 2,
            Phase::Draining => 3,
            Phase::Finished => 4,
        };
        if rank(other) < rank(self) {
            other
        } else {
            self
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Preparing => "preparing",
            Phase::Running => "running",
            Phase::Paused => "paused",
            Phase::Draining => "draining",
            Phase::Finished => "finished",
        }
    }
}

/// One second, as a dashboard plots it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    pub t: u32,
    pub target_rate: f64,
    pub arrivals: u64,
    pub matched: u64,
    pub timed_out: u64,
    pub failed: u64,
    pub errors: u64,
    pub latency: Percentiles,
    pub claims: ClaimCounts,
}

/// Errors of one endpoint and kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCount {
    pub endpoint: String,
    pub kind: String,
    pub count: u64,
}

/// Everything a live view shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    /// Since arrivals started (zero while preparing).
    pub elapsed_ms: u64,
    pub phase: Phase,
    /// Prepared and holding its clock until told to start (a worker of a multi-process run
    /// waiting for the others; see `EngineOptions::hold_start`).
    #[serde(default)]
    pub ready: bool,
    pub active_faults: Vec<String>,
    /// Players that started a search.
    pub arrived: u64,
    pub searching: i64,
    /// Parties between arrival and outcome.
    pub in_flight: i64,
    pub matched: u64,
    pub timed_out: u64,
    pub cancelled: u64,
    pub failed: u64,
    pub errors: u64,
    pub open_sockets: i64,
    /// Parties per second the schedule asks for now.
    pub target_rate: f64,
    /// Parties that started in the last whole second.
    pub actual_rate: f64,
    /// Pairing latency over the whole run so far.
    pub latency: Percentiles,
    /// Pairing latency over the last whole second.
    pub latency_now: Percentiles,
    /// The last [`SERIES_WINDOW`] seconds.
    pub series: Vec<SeriesPoint>,
    /// Claim counts since the run started; `None` when the fakes' stats are unreadable.
    pub claims: Option<ClaimCounts>,
    pub errors_by: Vec<ErrorCount>,
    pub thresholds: Vec<ThresholdResult>,
    /// Players started more than 50 ms later than scheduled in the last
    /// [`SATURATION_WINDOW_S`] seconds: the load generator, not the system, is the bottleneck,
    /// and the offered load is not met.
    pub saturated: bool,
    /// Largest start lag over the same window.
    pub max_lag_ms: f64,
    /// Matchmaking requests that failed over to another matchmaker URL so far.
    #[serde(default)]
    pub failovers: u64,
    /// Exact histograms for a parent process that merges the snapshots of its workers; only
    /// filled when the engine is asked to (see [`Collector::mergeable`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mergeable: Option<Mergeable>,
}

/// Seconds of closed per-second points a mergeable snapshot repeats, so a reader that misses a
/// few snapshots still sees every second.
pub const MERGEABLE_SECONDS: usize = 10;

/// What a merging parent needs beyond the figures: the cumulative pairing histogram and the
/// latest closed seconds with theirs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Mergeable {
    /// Pairing latency over closed seconds (the snapshot's `latency`), exact.
    pub pairing_hist: String,
    /// The last [`MERGEABLE_SECONDS`] closed seconds.
    pub recent_seconds: Vec<super::SecondPoint>,
}

/// What the engine knows that the collector does not.
#[derive(Debug, Clone, Copy)]
pub struct LiveContext<'a> {
    pub elapsed: Duration,
    pub phase: Phase,
    pub active_faults: &'a [String],
    pub target_rate: f64,
    pub thresholds: &'a Thresholds,
}

impl Collector {
    /// A snapshot of now. Latency comes from closed seconds; counters include the open one.
    pub fn snapshot(&self, ctx: &LiveContext<'_>) -> MetricsSnapshot {
        let totals = &self.totals;
        let open = self.interval();
        let count = |o: Outcome| totals.outcome(o) + open.outcome(o);
        let errors_by = {
            let mut all = totals.counts.errors.clone();
            for (k, n) in &open.counts.errors {
                *all.entry(*k).or_default() += n;
            }
            all.into_iter()
                .map(|((endpoint, kind), count)| ErrorCount {
                    endpoint: endpoint.to_string(),
                    kind: kind.to_string(),
                    count,
                })
                .collect()
        };
        let finished = totals.finished() + open.finished();
        let view = ResultView {
            pairing: &totals.pairing,
            matched: count(Outcome::Matched),
            timed_out: count(Outcome::TimedOut),
            failed: count(Outcome::Failed),
            errors: count(Outcome::Error),
            finished,
            claims: self.claims,
        };
        let start = self.series.len().saturating_sub(SERIES_WINDOW);
        let series = self.series[start..]
            .iter()
            .map(|p| SeriesPoint {
                t: p.t,
                target_rate: p.target_rate,
                arrivals: p.arrivals,
                matched: p.matched,
                timed_out: p.timed_out,
                failed: p.failed,
                errors: p.errors,
                latency: p.latency,
                claims: p.claims,
            })
            .collect();
        // Saturation is judged on the last few seconds, so the banner clears once the generator
        // keeps up again; the whole run's figure is in the report.
        let recent = &self.series[self.series.len().saturating_sub(SATURATION_WINDOW_S)..];
        let recent_lagged = open.counts.counters.lagged_starts
            + recent.iter().map(|p| p.lagged_starts).sum::<u64>();
        let recent_max_lag_ms = recent
            .iter()
            .map(|p| p.max_lag_ms)
            .fold(open.counts.max_lag_us as f64 / 1000.0, f64::max);
        MetricsSnapshot {
            elapsed_ms: u64::try_from(ctx.elapsed.as_millis()).unwrap_or(u64::MAX),
            phase: ctx.phase,
            // Only an engine holding its start says it is ready; live snapshots are past it.
            ready: false,
            active_faults: ctx.active_faults.to_vec(),
            arrived: self
                .gauges()
                .started
                .load(std::sync::atomic::Ordering::Relaxed),
            searching: Gauges::get(&self.gauges().searching),
            in_flight: Gauges::get(&self.gauges().in_flight),
            matched: count(Outcome::Matched),
            timed_out: count(Outcome::TimedOut),
            cancelled: count(Outcome::Cancelled),
            failed: count(Outcome::Failed),
            errors: count(Outcome::Error),
            open_sockets: Gauges::get(&self.gauges().open_sockets),
            target_rate: ctx.target_rate,
            actual_rate: self.series.last().map_or(0.0, |p| p.arrivals as f64),
            latency: Percentiles::of(&totals.pairing),
            latency_now: self.last_second,
            series,
            claims: self.claims,
            errors_by,
            thresholds: thresholds::evaluate(ctx.thresholds, &view, true),
            saturated: recent_lagged > 0,
            max_lag_ms: recent_max_lag_ms,
            failovers: totals.counts.failovers.values().sum::<u64>()
                + open.counts.failovers.values().sum::<u64>(),
            mergeable: None,
        }
    }

    /// The exact histograms that go with [`snapshot`](Self::snapshot) for a merging parent.
    pub fn mergeable(&self) -> Mergeable {
        let start = self.series.len().saturating_sub(MERGEABLE_SECONDS);
        Mergeable {
            pairing_hist: super::encode(&self.totals.pairing),
            recent_seconds: self.series[start..].to_vec(),
        }
    }
}

/// Whether a lag counts as saturation (for callers that measure lag themselves).
pub fn is_saturated(lag: Duration) -> bool {
    lag > SATURATION_LAG
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Thresholds;

    fn snapshot(collector: &Collector) -> MetricsSnapshot {
        collector.snapshot(&LiveContext {
            elapsed: Duration::from_secs(1),
            phase: Phase::Running,
            active_faults: &[],
            target_rate: 1.0,
            thresholds: &Thresholds::default(),
        })
    }

    #[test]
    fn saturation_clears_once_the_generator_keeps_up_again() {
        let (mut collector, recorders) = Collector::new(1);
        recorders[0].arrival(1, 1, Duration::from_millis(120));
        collector.drain();
        let late = snapshot(&collector);
        assert!(late.saturated);
        assert!((late.max_lag_ms - 120.0).abs() < 1.0, "{}", late.max_lag_ms);

        collector.close_second(1.0, Vec::new());
        for n in 0..SATURATION_WINDOW_S as u64 {
            recorders[0].arrival(2 + n, 1, Duration::from_millis(1));
            collector.drain();
            assert!(
                snapshot(&collector).saturated,
                "still inside the window after {n} s"
            );
            collector.close_second(1.0, Vec::new());
        }
        let caught_up = snapshot(&collector);
        assert!(
            !caught_up.saturated,
            "late starts older than the window no longer count"
        );
        assert!(caught_up.max_lag_ms < 50.0);
    }
}
