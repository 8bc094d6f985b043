//! Lobby faults: the decision behind the hub's send-path hook ([`NotifyHook`]) and the choice
//! of sockets to close on each disconnect tick.
//!
//! Notifications: every active drop/delay/duplicate fault whose target (topic glob, message
//! type, user) matches draws from the notification stream, in the set's order; a drop that
//! fires ends the evaluation, delays add up, duplicates add copies.
//!
//! Disconnects: once per [`super::DISCONNECT_TICK`] the driver lists the open sockets (sorted)
//! and each active `disconnect` fault rolls once per matching socket. A fault's `probability`
//! is per socket per minute, so a tick of `t` minutes closes with `1 - (1 - p)^t`; with
//! `per_minute` (sockets per minute, over all matching ones) it is `per_minute * t / sockets`.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{FaultKind, Faults, Stream, roll};
use crate::lobby::hub::{NotifyAttempt, NotifyFault, NotifyHook};

impl Faults {
    /// The hook to install with [`crate::lobby::Hub::set_notify_hook`].
    pub fn notify_hook(&self) -> NotifyHook {
        let faults = self.clone();
        Arc::new(move |attempt: &NotifyAttempt<'_>| faults.decide_notification(attempt))
    }

    /// What happens to one notification (see the module docs).
    pub fn decide_notification(&self, attempt: &NotifyAttempt<'_>) -> NotifyFault {
        let mut decision = NotifyFault::default();
        let snapshot = self.snapshot();
        if snapshot.notification.is_empty() {
            return decision;
        }
        let now = Instant::now();
        let mut rng = None;
        for entry in &snapshot.notification {
            let fault = &entry.fault;
            if !entry.active(now)
                || !fault.target.matches_notification(
                    attempt.user_id,
                    attempt.topic,
                    attempt.message_type,
                )
            {
                continue;
            }
            let rng = rng.get_or_insert_with(|| self.stream(Stream::Notification));
            if !roll(&mut **rng, fault.probability) {
                continue;
            }
            self.hit(entry);
            match &fault.kind {
                FaultKind::DropNotification(_) => {
                    decision.drop = true;
                    return decision;
                }
                FaultKind::DelayNotification(delay) => {
                    let sample = delay.delay.sample(&mut **rng);
                    decision.delay =
                        Some(decision.delay.unwrap_or_default().saturating_add(sample));
                }
                FaultKind::DuplicateNotification(duplicate) => {
                    decision.extra_copies = decision.extra_copies.saturating_add(duplicate.copies);
                }
                _ => {}
            }
        }
        decision
    }

    /// The sockets to close on one tick of length `tick`, as `(index into sockets, close
    /// code)`; `sockets` are `(namespace, user id)`, sorted.
    pub fn disconnect_victims(
        &self,
        sockets: &[(String, String)],
        tick: Duration,
    ) -> Vec<(usize, u16)> {
        let snapshot = self.snapshot();
        let now = Instant::now();
        let minutes = tick.as_secs_f64() / 60.0;
        let mut victims = Vec::new();
        let mut closing = vec![false; sockets.len()];
        for entry in snapshot.disconnect.iter().filter(|e| e.active(now)) {
            let FaultKind::Disconnect(disconnect) = &entry.fault.kind else {
                continue;
            };
            let matching: Vec<usize> = (0..sockets.len())
                .filter(|&i| entry.fault.target.matches_socket(&sockets[i].1))
                .collect();
            if matching.is_empty() {
                continue;
            }
            let p = tick_probability(
                disconnect.per_minute,
                entry.fault.probability,
                matching.len(),
                minutes,
            );
            let mut rng = self.stream(Stream::Disconnect);
            for i in matching {
                if roll(&mut *rng, p) && !closing[i] {
                    closing[i] = true;
                    victims.push((i, disconnect.close_code));
                    self.hit(entry);
                }
            }
        }
        victims
    }
}

/// The chance that one matching socket is closed in a tick of `minutes` (see the module docs).
pub fn tick_probability(
    per_minute: Option<f64>,
    probability: f64,
    sockets: usize,
    minutes: f64,
) -> f64 {
    match per_minute {
        Some(rate) => (rate * minutes / sockets.max(1) as f64).clamp(0.0, 1.0),
        None => 1.0 - (1.0 - probability.clamp(0.0, 1.0)).powf(minutes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::{Context, FaultFile, model::parse_fault};
    use serde_json::json;

    fn faults(list: serde_json::Value) -> Faults {
        let list = list.as_array().cloned().unwrap_or_default();
        let faults = list
            .into_iter()
            .map(|f| parse_fault(f).expect("valid"))
            .collect();
        Faults::new(
            &FaultFile {
                seed: Some(11),
                faults,
                ..FaultFile::default()
            },
            Context::default(),
        )
    }

    fn attempt<'a>(topic: &'a str) -> NotifyAttempt<'a> {
        NotifyAttempt {
            user_id: "u",
            topic,
            message_type: "messageNotif",
        }
    }

    #[test]
    fn tick_probabilities_compound_to_the_rate_per_minute() {
        let per_tick = tick_probability(None, 0.5, 10, 1.0 / 60.0);
        let survive_a_minute = (1.0 - per_tick).powi(60);
        assert!((survive_a_minute - 0.5).abs() < 1e-9);
        assert_eq!(tick_probability(None, 1.0, 10, 1.0 / 60.0), 1.0);
        assert_eq!(tick_probability(None, 0.0, 10, 1.0 / 60.0), 0.0);
        // Two per minute over 100 sockets: 2/6000 per socket per second.
        assert!((tick_probability(Some(2.0), 1.0, 100, 1.0 / 60.0) - 2.0 / 6000.0).abs() < 1e-12);
        assert_eq!(tick_probability(Some(600.0), 1.0, 1, 1.0 / 60.0), 1.0);
    }

    #[test]
    fn notification_decisions_follow_topic_and_order() {
        let f = faults(json!([
            {"kind": "delay_notification", "target": {"topic": "slow*"}, "delay": {"dist": "fixed", "ms": 200}},
            {"kind": "duplicate_notification", "target": {"topic": "slow*"}, "copies": 2},
            {"kind": "drop_notification", "target": {"topic": "lost"}},
        ]));
        assert_eq!(
            f.decide_notification(&attempt("other")),
            NotifyFault::default()
        );
        assert_eq!(
            f.decide_notification(&attempt("slowly")),
            NotifyFault {
                drop: false,
                delay: Some(Duration::from_millis(200)),
                extra_copies: 2
            }
        );
        assert!(f.decide_notification(&attempt("lost")).drop);
    }

    #[test]
    fn victims_respect_the_target_and_are_closed_once() {
        let f = faults(json!([
            {"kind": "disconnect", "target": {"user_id": "b"}, "close_code": 4444},
            {"kind": "disconnect", "target": {"user_id": "b"}, "close_code": 4001},
        ]));
        let sockets = vec![
            ("ns".to_owned(), "a".to_owned()),
            ("ns".to_owned(), "b".to_owned()),
        ];
        assert_eq!(
            f.disconnect_victims(&sockets, Duration::from_secs(1)),
            [(1, 4444)]
        );
    }
}
