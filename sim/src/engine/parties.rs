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
    /// The slot's life. A player of a closed model spends most of it asleep in a match, so the
    /// task keeps only what that sleep needs: every other state (waiting for accounts, a search,
    /// a pause, closing the sockets) is boxed and lives on the heap only while it runs.
    pub(super) async fn run(mut self) {
        tokio::select! {
            () = tokio::time::sleep_until(self.first) => {}
            () = self.over.cancelled() => return,
        }
        let Some(mut party) = Box::pin(self.arrive()).await else {
            return;
        };
        loop {
            if self.over.is_cancelled() {
                break;
            }
            if *self.pause.borrow() {
                if !Box::pin(self.resumed()).await {
                    break;
                }
                continue;
            }
            let end = Box::pin(self.search(&mut party)).await;
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
        Box::pin(self.leave(party)).await;
    }

    /// Takes the party's accounts; `None` when arrivals ended first or none could be had (then
    /// the failed arrival is recorded).
    async fn arrive(&mut self) -> Option<Party> {
        let size = self.spec.size as usize;
        let taken = tokio::select! {
            taken = self.run.users.take(size) => taken,
            // Arrivals ended while waiting for accounts: this party never arrived.
            () = self.over.cancelled() => return None,
        };
        match taken {
            Ok(users) => Some(Party::new(users)),
            Err(kind) => {
                let arrival = self.next_arrival();
                no_users(&self.worker, &arrival, Endpoint::CreateUsers, kind);
                None
            }
        }
    }

    /// Waits out a pause: `true` once the run resumes, `false` when it ends first.
    async fn resumed(&mut self) -> bool {
        tokio::select! {
            _ = self.pause.wait_for(|paused| !paused) => true,
            () = self.over.cancelled() => false,
        }
    }

    /// One search of the party (a search's state is ~10 KiB, hence boxed by the caller).
    async fn search(&mut self, party: &mut Party) -> SearchEnd {
        let arrival = self.next_arrival();
        player::search(&self.worker, &self.run, party, &arrival).await
    }

    /// Closes the party's sockets and gives its accounts back.
    async fn leave(&self, party: Party) {
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
