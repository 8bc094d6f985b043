//! DSMC faults through the fleet's hooks: claim outcomes (the fleet's [`ClaimOverride`]) and
//! ready delays ([`Fleet::set_ready_delay`], set just before each register). Region capacity
//! is a state fault, applied by the [`super::driver`].
//!
//! Claims: each active `claim_outcome` fault (optionally limited to a region) draws twice from
//! the claim stream per claim of an existing session — its probability gate, then the outcome
//! — and the first that picks a failure forces it. The fleet still counts the attempt and the
//! failure by reason, so `/_fakes/stats` shows forced failures like natural ones.
//!
//! Ready delays: the HTTP layer calls [`Faults::before_register`] before a register reaches the
//! fleet; the fleet's next server gets the sampled delay. Concurrent registers may swap their
//! samples (the fleet reads the delay when it registers), so each server still gets a delay
//! drawn from the distribution, but which register got which draw follows the fleet's order.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use super::{ClaimOutcome, FaultKind, Faults, Stream, roll};
use crate::dsmc::fleet::{ClaimAttempt, ClaimFailure, ClaimOverride, Fleet};

/// The register route's pattern, as axum matches it.
pub const REGISTER_ROUTE: &str = "/dsmcontroller/namespaces/{namespace}/sessions";

impl Faults {
    /// The hook to install with [`Fleet::set_claim_override`].
    pub fn claim_hook(&self) -> ClaimOverride {
        let faults = self.clone();
        Arc::new(move |attempt: &ClaimAttempt<'_>| faults.decide_claim(attempt))
    }

    /// The forced outcome of one claim, if any (see the module docs).
    pub fn decide_claim(&self, attempt: &ClaimAttempt<'_>) -> Option<ClaimFailure> {
        let snapshot = self.snapshot();
        if snapshot.claim.is_empty() {
            return None;
        }
        let now = Instant::now();
        let mut rng = None;
        for entry in &snapshot.claim {
            let FaultKind::ClaimOutcome(mix) = &entry.fault.kind else {
                continue;
            };
            if !entry.active(now) || mix.region.as_deref().is_some_and(|r| r != attempt.region) {
                continue;
            }
            let rng = rng.get_or_insert_with(|| self.stream(Stream::Claim));
            let gate = roll(&mut **rng, entry.fault.probability);
            let u: f64 = rng.r#gen();
            if let Some(failure) = pick(mix, u).filter(|_| gate) {
                self.hit(entry);
                return Some(failure);
            }
        }
        None
    }

    /// Sets the fleet's ready delay for the register about to happen: a sample of the first
    /// active `ready_delay` fault that fires, else the configured delay.
    pub fn before_register(&self, fleet: &Fleet) {
        let snapshot = self.snapshot();
        let now = Instant::now();
        let configured = fleet.config().ready_delay;
        if !snapshot.ready_delay.iter().any(|e| e.active(now)) {
            if self.ready_delay_overridden().swap(false, Ordering::Relaxed) {
                fleet.set_ready_delay(configured);
            }
            return;
        }
        let mut delay = configured;
        {
            let mut rng = self.stream(Stream::ReadyDelay);
            for entry in snapshot.ready_delay.iter().filter(|e| e.active(now)) {
                let FaultKind::ReadyDelay(ready) = &entry.fault.kind else {
                    continue;
                };
                if !roll(&mut *rng, entry.fault.probability) {
                    continue;
                }
                self.hit(entry);
                delay = match (ready.never, ready.delay) {
                    (false, Some(distribution)) => distribution.sample(&mut *rng),
                    _ => Duration::MAX,
                };
                break;
            }
        }
        self.ready_delay_overridden().store(true, Ordering::Relaxed);
        fleet.set_ready_delay(delay);
    }
}

/// The failure `u` (uniform in [0, 1)) lands on, in the order 404, 409, 425, 503.
fn pick(mix: &ClaimOutcome, u: f64) -> Option<ClaimFailure> {
    let mut edge = 0.0;
    for (rate, failure) in [
        (mix.not_found, ClaimFailure::NotFound),
        (mix.conflict, ClaimFailure::Conflict),
        (mix.not_ready, ClaimFailure::NotReady),
        (mix.unreachable, ClaimFailure::Unreachable),
    ] {
        edge += rate;
        if u < edge {
            return Some(failure);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsmc::fleet::ServerStatus;
    use crate::faults::{Context, FaultFile, model::parse_fault};
    use serde_json::json;

    fn attempt(region: &str) -> ClaimAttempt<'_> {
        ClaimAttempt {
            namespace: "ns",
            session_id: "s",
            region,
            pod_name: "p",
            status: ServerStatus::Ready,
        }
    }

    #[test]
    fn the_mix_lands_within_tolerance_and_respects_the_region() {
        let fault = parse_fault(
            json!({"kind": "claim_outcome", "not_ready": 0.2, "unreachable": 0.3, "region": "eu"}),
        )
        .expect("valid");
        let faults = Faults::new(
            &FaultFile {
                seed: Some(3),
                faults: vec![fault],
                ..FaultFile::default()
            },
            Context {
                regions: vec!["eu".into()],
            },
        );
        let n = 10_000;
        let outcomes: Vec<Option<ClaimFailure>> = (0..n)
            .map(|_| faults.decide_claim(&attempt("eu")))
            .collect();
        let share =
            |f: ClaimFailure| outcomes.iter().filter(|o| **o == Some(f)).count() as f64 / n as f64;
        // σ ≤ 0.0046 at n = 10,000: ±0.02 is over 4σ.
        assert!((share(ClaimFailure::NotReady) - 0.2).abs() < 0.02);
        assert!((share(ClaimFailure::Unreachable) - 0.3).abs() < 0.02);
        assert_eq!(share(ClaimFailure::Conflict), 0.0);
        assert!(
            (0..100).all(|_| faults.decide_claim(&attempt("us")).is_none()),
            "other regions untouched"
        );
    }

    #[test]
    fn pick_walks_the_rates_in_order() {
        let mix = ClaimOutcome {
            not_found: 0.1,
            conflict: 0.1,
            not_ready: 0.1,
            unreachable: 0.1,
            region: None,
        };
        assert_eq!(pick(&mix, 0.05), Some(ClaimFailure::NotFound));
        assert_eq!(pick(&mix, 0.15), Some(ClaimFailure::Conflict));
        assert_eq!(pick(&mix, 0.25), Some(ClaimFailure::NotReady));
        assert_eq!(pick(&mix, 0.35), Some(ClaimFailure::Unreachable));
        assert_eq!(pick(&mix, 0.45), None);
    }
}
