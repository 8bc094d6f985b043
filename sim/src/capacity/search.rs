//! The knee search as a pure state machine: which load to try next, given what the steps so
//! far showed. Step up by a factor until a step fails, bisect between the highest pass and the
//! lowest failure until they are close, then hold the highest pass for longer to confirm it.
//! A step where the harness itself saturated ends the stepping at once (higher loads would
//! measure the harness): what passed below it is confirmed and reported as a lower bound.
//!
//! Why pure: the search is tested on synthetic outcomes, without running a single player.

use serde::{Deserialize, Serialize};

/// How one step ended, as far as the search cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// Thresholds and invariants held; the harness kept up.
    Pass,
    /// A threshold or the invariant check broke: the system under test is past its knee.
    Fail,
    /// A load-generator or embedded-stack process (not the system under test) hit a limit.
    HarnessSaturated,
}

/// Why the search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The highest passing load was held for the confirmation period and passed again.
    Confirmed,
    /// The harness saturated before the system under test failed: the knee is at least the
    /// reported load.
    HarnessSaturated,
    /// Not even the lowest load tried passed.
    NoPassingLoad,
    /// The maximum load given passed.
    MaxLoadPassed,
    /// The time limit came first; the knee is the highest pass so far, unconfirmed.
    TimeLimit,
    /// Interrupted.
    Interrupted,
}

/// The next thing to run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    /// Run `load` for a step (`hold`: the longer confirmation period).
    Try {
        load: f64,
        hold: bool,
    },
    Done(StopReason),
}

/// The search's knobs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchConfig {
    /// The first load tried.
    pub start: f64,
    /// Step-up (and step-down) factor, > 1.
    pub factor: f64,
    /// Stop bisecting once the lowest failure is within this fraction above the highest pass.
    pub precision: f64,
    /// Loads are whole numbers (a closed model's players).
    pub integer: bool,
    /// The lowest load worth trying.
    pub min_load: f64,
    /// Never try above this.
    pub max_load: Option<f64>,
}

/// The search so far.
#[derive(Debug, Clone)]
pub struct Search {
    config: SearchConfig,
    /// Every `(load, hold, outcome)` recorded.
    history: Vec<(f64, bool, StepOutcome)>,
    /// Highest passing load (after a failed confirmation: the highest below it).
    lo: Option<f64>,
    /// Lowest failing load.
    hi: Option<f64>,
    saturated: bool,
    done: Option<StopReason>,
}

impl Search {
    pub fn new(config: SearchConfig) -> Search {
        Search {
            config,
            history: Vec::new(),
            lo: None,
            hi: None,
            saturated: false,
            done: None,
        }
    }

    /// The knee so far: the highest load that passed (and was not refuted by a hold).
    pub fn knee(&self) -> Option<f64> {
        self.lo
    }

    /// Whether the knee was held for the confirmation period.
    pub fn confirmed(&self) -> bool {
        self.lo.is_some_and(|lo| {
            self.history
                .iter()
                .any(|&(l, hold, o)| l == lo && hold && o == StepOutcome::Pass)
        })
    }

    /// Ends the search from outside (time limit, interrupt).
    pub fn stop(&mut self, reason: StopReason) {
        self.done.get_or_insert(reason);
    }

    pub fn stop_reason(&self) -> Option<StopReason> {
        self.done
    }

    fn round(&self, load: f64) -> f64 {
        let load = if self.config.integer || load >= 10.0 {
            load.round()
        } else {
            (load * 10.0).round() / 10.0
        };
        load.max(self.config.min_load)
    }

    /// What to run next.
    pub fn next(&self) -> Next {
        if let Some(reason) = self.done {
            return Next::Done(reason);
        }
        let confirm = |lo: f64| {
            if self.confirmed() {
                None
            } else {
                Some(Next::Try {
                    load: lo,
                    hold: true,
                })
            }
        };
        if self.saturated {
            return match self.lo {
                Some(lo) => confirm(lo).unwrap_or(Next::Done(StopReason::HarnessSaturated)),
                None => Next::Done(StopReason::HarnessSaturated),
            };
        }
        match (self.lo, self.hi) {
            (None, None) => Next::Try {
                load: self.round(self.config.start),
                hold: false,
            },
            (Some(lo), None) => {
                let mut up = self.round(lo * self.config.factor);
                if let Some(max) = self.config.max_load {
                    if lo >= max {
                        return confirm(lo).unwrap_or(Next::Done(StopReason::MaxLoadPassed));
                    }
                    up = up.min(max);
                }
                if up <= lo {
                    up = lo + 1.0;
                }
                Next::Try {
                    load: up,
                    hold: false,
                }
            }
            (None, Some(hi)) => {
                let down = self.round(hi / self.config.factor);
                if down >= hi || hi <= self.config.min_load {
                    Next::Done(StopReason::NoPassingLoad)
                } else {
                    Next::Try {
                        load: down,
                        hold: false,
                    }
                }
            }
            (Some(lo), Some(hi)) => {
                let close = (self.config.integer && hi - lo <= 1.0)
                    || hi <= lo * (1.0 + self.config.precision);
                let mid = self.round((lo + hi) / 2.0);
                if close || mid <= lo || mid >= hi {
                    confirm(lo).unwrap_or(Next::Done(StopReason::Confirmed))
                } else {
                    Next::Try {
                        load: mid,
                        hold: false,
                    }
                }
            }
        }
    }

    /// Takes a step's outcome.
    pub fn record(&mut self, load: f64, hold: bool, outcome: StepOutcome) {
        self.history.push((load, hold, outcome));
        match outcome {
            StepOutcome::Pass => {
                if self.lo.is_none_or(|lo| load > lo) && self.hi.is_none_or(|hi| load < hi) {
                    self.lo = Some(load);
                }
            }
            StepOutcome::Fail | StepOutcome::HarnessSaturated => {
                if outcome == StepOutcome::HarnessSaturated {
                    self.saturated = true;
                }
                if self.hi.is_none_or(|hi| load < hi) {
                    self.hi = Some(load);
                }
                if self.lo.is_some_and(|lo| lo >= load) {
                    // A hold (or a repeat) refuted it: fall back to the highest pass below.
                    self.lo = self
                        .history
                        .iter()
                        .filter(|&&(l, _, o)| o == StepOutcome::Pass && l < load)
                        .map(|&(l, _, _)| l)
                        .fold(None, |best: Option<f64>, l| {
                            Some(best.map_or(l, |b| b.max(l)))
                        });
                }
            }
        }
        if hold && outcome == StepOutcome::Pass && self.lo == Some(load) {
            self.done = Some(if self.saturated {
                StopReason::HarnessSaturated
            } else if self.config.max_load.is_some_and(|m| load >= m) && self.hi.is_none() {
                StopReason::MaxLoadPassed
            } else {
                StopReason::Confirmed
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SearchConfig {
        SearchConfig {
            start: 10.0,
            factor: 2.0,
            precision: 0.1,
            integer: false,
            min_load: 0.1,
            max_load: None,
        }
    }

    /// Runs the search against a system that passes below `knee` and a harness that saturates
    /// at `harness`; returns the loads tried and how it ended.
    fn drive(
        mut search: Search,
        knee: f64,
        harness: f64,
    ) -> (Vec<(f64, bool)>, Option<f64>, StopReason) {
        let mut tried = Vec::new();
        for _ in 0..50 {
            match search.next() {
                Next::Try { load, hold } => {
                    tried.push((load, hold));
                    let outcome = if load >= harness {
                        StepOutcome::HarnessSaturated
                    } else if load <= knee {
                        StepOutcome::Pass
                    } else {
                        StepOutcome::Fail
                    };
                    search.record(load, hold, outcome);
                }
                Next::Done(reason) => return (tried, search.knee(), reason),
            }
        }
        panic!("the search did not end: {tried:?}");
    }

    #[test]
    fn steps_up_bisects_and_confirms_within_the_precision() {
        let (tried, knee, reason) = drive(Search::new(config()), 57.0, f64::INFINITY);
        assert_eq!(reason, StopReason::Confirmed);
        let knee = knee.expect("a knee");
        assert!((57.0 / 1.1..=57.0).contains(&knee), "{knee} {tried:?}");
        assert_eq!(
            &tried[..4],
            &[(10.0, false), (20.0, false), (40.0, false), (80.0, false)]
        );
        assert_eq!(tried.last(), Some(&(knee, true)));
    }

    #[test]
    fn harness_saturation_stops_stepping_up_and_confirms_below() {
        let (tried, knee, reason) = drive(Search::new(config()), 1000.0, 30.0);
        assert_eq!(reason, StopReason::HarnessSaturated);
        assert_eq!(knee, Some(20.0));
        assert_eq!(
            tried,
            [(10.0, false), (20.0, false), (40.0, false), (20.0, true)]
        );
    }

    #[test]
    fn steps_down_when_the_start_fails_and_gives_up_at_the_floor() {
        let (_, knee, reason) = drive(Search::new(config()), 3.0, f64::INFINITY);
        assert_eq!(reason, StopReason::Confirmed);
        assert!(
            knee.is_some_and(|k| (3.0 / 1.1..=3.0).contains(&k)),
            "{knee:?}"
        );
        let (_, knee, reason) = drive(Search::new(config()), 0.0, f64::INFINITY);
        assert_eq!(reason, StopReason::NoPassingLoad);
        assert_eq!(knee, None);
    }

    #[test]
    fn a_failed_hold_falls_back_to_the_pass_below() {
        let mut s = Search::new(SearchConfig {
            integer: true,
            min_load: 2.0,
            ..config()
        });
        s.record(10.0, false, StepOutcome::Pass);
        s.record(20.0, false, StepOutcome::Fail);
        s.record(15.0, false, StepOutcome::Pass);
        s.record(18.0, false, StepOutcome::Pass);
        s.record(19.0, false, StepOutcome::Fail);
        assert_eq!(
            s.next(),
            Next::Try {
                load: 18.0,
                hold: true
            }
        );
        s.record(18.0, true, StepOutcome::Fail);
        assert_eq!(s.knee(), Some(15.0));
        // 15 → 18 is more than the precision apart: bisect again.
        assert_eq!(
            s.next(),
            Next::Try {
                load: 17.0,
                hold: false
            }
        );
    }

    #[test]
    fn a_max_load_that_passes_ends_the_search() {
        let (tried, knee, reason) = drive(
            Search::new(SearchConfig {
                max_load: Some(30.0),
                ..config()
            }),
            1000.0,
            f64::INFINITY,
        );
        assert_eq!(reason, StopReason::MaxLoadPassed);
        assert_eq!(knee, Some(30.0));
        assert_eq!(
            tried,
            [(10.0, false), (20.0, false), (30.0, false), (30.0, true)]
        );
    }
}
