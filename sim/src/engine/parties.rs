//! The parties of a run: an open-model arrival (fresh users, one search, accounts given back)
//! and a closed-model [`Slot`] (the same users searching again and again, thinking between
//! searches, pausing with the run), each drawing its behaviours from the run's seed; and the
//! error outcomes of a party that could not get accounts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::schedule::{Draws, PartySpec};
use crate::outcome::{Endpoint, ErrorKind, Outcome, PlayerRecord};
use crate::player::{self, Arrival, Party, RunCtx, SearchEnd, WorkerCtx};
use crate::scenario::{Behaviour, Plan};

/// Draws an arrival's behaviours (cancel, socket drops, DSMC check).
pub(super) fn draw_arrival(
    draws: &mut Draws,
    b: &Behaviour,
    id: u64,
    scheduled: Instant,
    spec: PartySpec,
) -> Arrival {
    let cancel_after = b
        .cancel
        .filter(|c| draws.chance(c.probability))
        .map(|c| c.after);
    let drop_after = (0..spec.size)
        .map(|_| {
            b.drop_socket
                .filter(|d| draws.chance(d.probability))
                .map(|d| d.after.mul_f64(draws.fraction()))
        })
        .collect();
    let verify = draws.chance(b.verify_server);
    Arrival {
        id,
        scheduled,
        spec,
        cancel_after,
        drop_after,
        verify,
    }
}

/// An open-model party: fresh users, one search, sockets closed.
pub(super) async fn open_party(worker: Arc<WorkerCtx>, run: Arc<RunCtx>, arrival: Arrival) {
    let taken = tokio::select! {
        taken = run.users.take(arrival.spec.size as usize) => taken.map_err(|k| (Endpoint::CreateUsers, k)),
        () = run.abort.cancelled() => Err((Endpoint::Run, ErrorKind::Unfinished)),
    };
    let users = match taken {
        Ok(users) => users,
        Err((endpoint, kind)) => {
            no_users(&worker, &arrival, endpoint, kind);
            return;
        }
    };
    let mut party = Party::new(users);
    player::search(&worker, &run, &mut party, &arrival).await;
    let users = party.close().await;
    run.users.give_back(users);
}

/// Records a party that could not get accounts: one error outcome per member.
fn no_users(worker: &WorkerCtx, arrival: &Arrival, endpoint: Endpoint, kind: ErrorKind) {
    let lag = Instant::now().saturating_duration_since(arrival.scheduled);
    worker.recorder.arrival(arrival.id, arrival.spec.size, lag);
    for member in 0..arrival.spec.size {
        worker.recorder.finish(
            PlayerRecord {
                arrival: arrival.id,
                member: u16::try_from(member).unwrap_or(u16::MAX),
                outcome: Outcome::Error,
                error: Some((endpoint, kind)),
                session: None,
                answered: None,
                found: Vec::new(),
                found_at_ms: None,
                answered_at_ms: None,
                dsmc_server: None,
            },
            None,
        );
    }
}

/// A closed-model party: the same users search again and again.
pub(super) struct Slot {
    pub(super) worker: Arc<WorkerCtx>,
    pub(super) run: Arc<RunCtx>,
    pub(super) plan: Arc<Plan>,
    pub(super) spec: PartySpec,
    pub(super) first: Instant,
    pub(super) think: Duration,
    pub(super) pause: watch::Receiver<bool>,
    pub(super) over: CancellationToken,
    pub(super) ids: Arc<Ids>,
    pub(super) draws: Draws,
}

/// The closed model's search ids: `first + k * stride` for k = 0, 1, …
pub(super) struct Ids {
    pub(super) next: AtomicU64,
    pub(super) first: u64,
    pub(super) stride: u64,
}

impl Slot {
    pub(super) async fn run(mut self) {
        tokio::select! {
            () = tokio::time::sleep_until(self.first) => {}
            () = self.over.cancelled() => return,
        }
        let size = self.spec.size as usize;
        let taken = tokio::select! {
            taken = self.run.users.take(size) => taken,
            // Arrivals ended while waiting for accounts: this party never arrived.
            () = self.over.cancelled() => return,
        };
        let users = match taken {
            Ok(users) => users,
            Err(kind) => {
                let arrival = self.next_arrival();
                no_users(&self.worker, &arrival, Endpoint::CreateUsers, kind);
                return;
            }
        };
        let mut party = Party::new(users);
        loop {
            if self.over.is_cancelled() {
                break;
            }
            if *self.pause.borrow() {
                tokio::select! {
                    _ = self.pause.wait_for(|paused| !paused) => {}
                    () = self.over.cancelled() => break,
                }
                continue;
            }
            let arrival = self.next_arrival();
            // Boxed: a search's state (~10 KiB) lives on the heap only while the search runs,
            // not for the whole life of the slot — an idle player in a match holds a small task.
            let end = Box::pin(player::search(
                &self.worker,
                &self.run,
                &mut party,
                &arrival,
            ))
            .await;
            let mut wait = self.think;
            if let SearchEnd::Matched { .. } = end {
                wait += self
                    .plan
                    .population
                    .behaviour
                    .match_length
                    .unwrap_or_default();
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.over.cancelled() => break,
            }
        }
        let users = party.close().await;
        self.run.users.give_back(users);
    }

    fn next_arrival(&mut self) -> Arrival {
        let k = self.ids.next.fetch_add(1, Ordering::Relaxed);
        let id = self.ids.first + k * self.ids.stride;
        draw_arrival(
            &mut self.draws,
            &self.plan.population.behaviour,
            id,
            Instant::now(),
            self.spec.clone(),
        )
    }
}
