//! Matchmaking v2 faults: `ticket_expiry` storms. The matchmaking loop calls
//! [`Faults::before_match2_tick`] before it expires tickets; every active storm marks the queued
//! tickets it covers (its pool, if named, waited at least `after_s`) as expiring now, so the
//! same pass expires them with the usual `OnMatchmakingTicketExpired`. The store knows nothing
//! of faults: the hook only calls [`Match2::expire_now`].

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::{FaultKind, Faults};
use crate::match2::store::Match2;

impl Faults {
    /// Applies active `ticket_expiry` faults to `store` at `now`.
    pub fn before_match2_tick(&self, store: &Match2, now: DateTime<Utc>) {
        let snapshot = self.snapshot();
        if snapshot.ticket_expiry.is_empty() {
            return;
        }
        let clock = Instant::now();
        for entry in snapshot.ticket_expiry.iter().filter(|e| e.active(clock)) {
            let FaultKind::TicketExpiry(storm) = &entry.fault.kind else {
                continue;
            };
            let due = store.queued_ids(storm.pool.as_deref(), |created| {
                (now - created).num_seconds() >= i64::try_from(storm.after_s).unwrap_or(i64::MAX)
            });
            if due.is_empty() {
                continue;
            }
            for _ in &due {
                self.hit(entry);
            }
            store.expire_now(&due, now);
        }
    }
}
