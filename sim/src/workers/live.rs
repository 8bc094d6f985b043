//! The parent's live view of a multi-process run: the latest snapshot of every worker merged
//! into one [`MetricsSnapshot`], as if one process had measured everything.
//!
//! Counters and gauges add; latency comes from the workers' exact histograms added bucket for
//! bucket (cumulative, and per second from the repeated closed seconds of each snapshot);
//! claim counts come from the fakes' shared counters, so the largest view is kept; the target
//! rate is the schedule's, the same in every worker; thresholds are evaluated on the merged
//! figures. Pure: snapshots in, a snapshot out.

use std::collections::{BTreeMap, BTreeSet};

use hdrhistogram::Histogram;

use crate::metrics::snapshot::{ErrorCount, SERIES_WINDOW};
use crate::metrics::{
    self, ClaimCounts, MetricsError, MetricsSnapshot, Percentiles, Phase, SecondPoint, SeriesPoint,
};
use crate::report::{add_point, max_claims};
use crate::scenario::Thresholds;
use crate::thresholds::{self, ResultView};

/// One worker's latest figures.
#[derive(Debug)]
struct WorkerView {
    snapshot: MetricsSnapshot,
    pairing: Histogram<u64>,
    /// The first second not yet folded into the merged series.
    next_second: u32,
}

/// The merge of every worker's latest snapshot.
#[derive(Debug)]
pub struct LiveMerge {
    thresholds: Thresholds,
    workers: Vec<Option<WorkerView>>,
    seconds: BTreeMap<u32, (SecondPoint, Histogram<u64>)>,
}

impl LiveMerge {
    pub fn new(workers: usize, thresholds: Thresholds) -> LiveMerge {
        LiveMerge {
            thresholds,
            workers: (0..workers).map(|_| None).collect(),
            seconds: BTreeMap::new(),
        }
    }

    /// Takes worker `index`'s latest snapshot.
    pub fn update(
        &mut self,
        index: usize,
        mut snapshot: MetricsSnapshot,
    ) -> Result<(), MetricsError> {
        let Some(slot) = self.workers.get_mut(index) else {
            return Ok(());
        };
        let mergeable = snapshot.mergeable.take().unwrap_or_default();
        let pairing = metrics::decode(&mergeable.pairing_hist)?;
        let mut next_second = slot.as_ref().map_or(0, |w| w.next_second);
        for p in mergeable.recent_seconds {
            if p.t < next_second {
                continue;
            }
            let h = metrics::decode(&p.pairing_hist)?;
            next_second = p.t + 1;
            match self.seconds.get_mut(&p.t) {
                Some((acc, acc_h)) => {
                    add_point(acc, &p);
                    metrics::merge_into(acc_h, &h);
                }
                None => {
                    self.seconds.insert(p.t, (p, h));
                }
            }
        }
        *slot = Some(WorkerView {
            snapshot,
            pairing,
            next_second,
        });
        Ok(())
    }

    /// The merged view now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let views: Vec<&WorkerView> = self.workers.iter().flatten().collect();
        let mut out = MetricsSnapshot::default();
        let Some(first) = views.first() else {
            return out;
        };
        let mut pairing = metrics::new_histogram();
        let mut faults = BTreeSet::new();
        let mut errors: BTreeMap<(String, String), u64> = BTreeMap::new();
        let mut claims: Option<ClaimCounts> = None;
        out.phase = first.snapshot.phase;
        for v in &views {
            let s = &v.snapshot;
            metrics::merge_into(&mut pairing, &v.pairing);
            out.elapsed_ms = out.elapsed_ms.max(s.elapsed_ms);
            out.phase = out.phase.min_by_progress(s.phase);
            faults.extend(s.active_faults.iter().cloned());
            out.arrived += s.arrived;
            out.searching += s.searching;
            out.in_flight += s.in_flight;
            out.matched += s.matched;
            out.timed_out += s.timed_out;
            out.cancelled += s.cancelled;
            out.failed += s.failed;
            out.errors += s.errors;
            out.open_sockets += s.open_sockets;
            out.target_rate = out.target_rate.max(s.target_rate);
            out.saturated |= s.saturated;
            out.max_lag_ms = out.max_lag_ms.max(s.max_lag_ms);
            out.failovers += s.failovers;
            for e in &s.errors_by {
                *errors
                    .entry((e.endpoint.clone(), e.kind.clone()))
                    .or_default() += e.count;
            }
            claims = match (claims, s.claims) {
                (Some(a), Some(b)) => Some(max_claims(&a, &b)),
                (a, b) => a.or(b),
            };
        }
        // A second is whole once every worker has closed it.
        let closed_by_all = if views.len() == self.workers.len() {
            views.iter().map(|v| v.next_second).min().unwrap_or(0)
        } else {
            0
        };
        if let Some((p, h)) = closed_by_all
            .checked_sub(1)
            .and_then(|last| self.seconds.get(&last))
        {
            out.latency_now = Percentiles::of(h);
            out.actual_rate = p.arrivals as f64;
        }
        out.active_faults = faults.into_iter().collect();
        out.errors_by = errors
            .into_iter()
            .map(|((endpoint, kind), count)| ErrorCount {
                endpoint,
                kind,
                count,
            })
            .collect();
        out.claims = claims;
        out.latency = Percentiles::of(&pairing);
        let skip = self.seconds.len().saturating_sub(SERIES_WINDOW);
        out.series = self
            .seconds
            .values()
            .skip(skip)
            .map(|(p, h)| SeriesPoint {
                t: p.t,
                target_rate: p.target_rate,
                arrivals: p.arrivals,
                matched: p.matched,
                timed_out: p.timed_out,
                failed: p.failed,
                errors: p.errors,
                latency: Percentiles::of(h),
                claims: p.claims,
            })
            .collect();
        let view = ResultView {
            pairing: &pairing,
            matched: out.matched,
            timed_out: out.timed_out,
            failed: out.failed,
            errors: out.errors,
            finished: out.matched + out.timed_out + out.cancelled + out.failed + out.errors,
            claims: out.claims,
        };
        out.thresholds = thresholds::evaluate(&self.thresholds, &view, true);
        // The merged pairing histogram, for the live metrics endpoint's latency histogram.
        out.mergeable = Some(crate::metrics::Mergeable {
            pairing_hist: metrics::encode(&pairing),
            recent_seconds: Vec::new(),
        });
        out
    }

    /// Every worker has sent a snapshot in the `Finished` phase.
    pub fn all_finished(&self) -> bool {
        self.workers.iter().all(|w| {
            w.as_ref()
                .is_some_and(|w| w.snapshot.phase == Phase::Finished)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::{Collector, LiveContext};

    fn snapshot(c: &Collector, phase: Phase) -> MetricsSnapshot {
        let mut s = c.snapshot(&LiveContext {
            elapsed: Duration::from_secs(2),
            phase,
            active_faults: &[],
            target_rate: 5.0,
            thresholds: &Thresholds::default(),
        });
        s.mergeable = Some(c.mergeable());
        s
    }

    #[test]
    fn merged_latency_is_the_exact_sum_of_the_workers() {
        let (mut a, ra) = Collector::new(1);
        let (mut b, rb) = Collector::new(1);
        let mut both = metrics::new_histogram();
        for i in 1..=500u64 {
            let d = Duration::from_millis(i * 3);
            ra[0].pairing(d);
            metrics::record(&mut both, d);
            let d = Duration::from_millis(2000 + i);
            rb[0].pairing(d);
            metrics::record(&mut both, d);
        }
        ra[0].arrival(0, 2, Duration::ZERO);
        rb[0].arrival(1, 3, Duration::ZERO);
        for c in [&mut a, &mut b] {
            c.drain();
            c.close_second(5.0, Vec::new());
        }
        let mut live = LiveMerge::new(2, Thresholds::default());
        live.update(0, snapshot(&a, Phase::Running)).expect("a");
        live.update(1, snapshot(&b, Phase::Draining)).expect("b");
        // Sent again (a reader may see a second twice): counted once.
        live.update(1, snapshot(&b, Phase::Draining))
            .expect("b again");
        let merged = live.snapshot();
        assert_eq!(merged.latency, Percentiles::of(&both));
        assert_eq!(merged.latency_now, Percentiles::of(&both));
        assert_eq!(merged.arrived, 5);
        assert_eq!(merged.target_rate, 5.0);
        assert_eq!(merged.actual_rate, 2.0);
        assert_eq!(merged.phase, Phase::Running);
        assert_eq!(merged.series.len(), 1);
        assert_eq!(merged.series[0].arrivals, 2);
        assert!(!live.all_finished());
    }
}
