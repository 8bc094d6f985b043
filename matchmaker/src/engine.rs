//! The running matchmaker: one matching task per game mode, a lease reaper, and a task per
//! claimed match that hands it to the [`MatchSink`] (the pipeline) and records the outcome.
//!
//! - **Event-driven**: [`Engine::submit`] stores the ticket and wakes its mode's task, so a match
//!   forms as soon as the last ticket it needs arrives. A periodic tick (default 1 s) runs the
//!   same pass for what time alone changes: widening skill windows, relaxing regions,
//!   free-for-all fill waits and timeouts. Nothing polls per request.
//! - A pass reads the queue, asks [`matching::plan`] for proposals, times out what is too old,
//!   and claims each proposal atomically in the store. A claim lost to another replica makes the
//!   pass run again at once with fresh data.
//! - Each claimed match runs the sink under a lease that is renewed while the sink works. The
//!   sink's [`MatchOutcome`] is applied in the store: matched, requeued (original enqueue time,
//!   one attempt counted), released, or failed. If the lease is lost the sink is told through its
//!   `CancellationToken` and its outcome is dropped: another replica may own the tickets now.
//! - The reaper hands back the tickets of matches whose lease expired on any replica.
//! - [`Engine::shutdown`] stops matching, lets running pipelines finish within a grace period,
//!   then releases (hands back without counting an attempt) the tickets of those still running.
//! - The sink hears what was *recorded*, through hooks with empty defaults:
//!   [`MatchSink::recorded`] once the store applied a match's outcome (the pipeline tells players
//!   `found` there, so only for a match the store accepted), [`MatchSink::lease_lost`],
//!   [`MatchSink::timed_out`] and [`MatchSink::reclaimed`] (tickets of expired leases, with
//!   those that used their last attempt).
//!
//! Time comes from the injected [`Clock`]; timers are tokio's, so paused-time tests drive it all.
//! Must not know about HTTP, auth or the AccelByte services (the sink does that).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::{Instant, MissedTickBehavior, interval, interval_at, sleep, timeout};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::config::{ConfigError, GameMode, Modes};
use crate::matching;
use crate::store::{CancelOutcome, DueNotice, Reclaimed, Store, StoreError};
use crate::ticket::{
    Attributes, ClaimedMatch, Completion, MatchOutcome, NewTicket, Party, Ticket, TicketId,
    TicketOutcome,
};

/// Takes claimed matches and builds them (session, server, notifications): the pipeline.
///
/// Besides [`run`](MatchSink::run), a sink hears what the engine recorded, so it can act on
/// durable results only (tell players, count outcomes). The hooks default to doing nothing.
pub trait MatchSink: Send + Sync + 'static {
    /// Builds `claimed`. `lease_lost` is cancelled if the match's lease is lost (the tickets may
    /// already be in another match): stop and clean up, the outcome will be ignored.
    fn run(
        &self,
        claimed: ClaimedMatch,
        lease_lost: CancellationToken,
    ) -> impl Future<Output = MatchOutcome> + Send;

    /// The store recorded the outcome of a match this sink ran: `done` says where each ticket
    /// ended up. Runs in the match's task, so shutdown waits for it; keep it bounded. Returns
    /// whether every player was told: if not, the store keeps the match's notice and some
    /// replica calls [`redeliver`](MatchSink::redeliver) once it is due.
    fn recorded(
        &self,
        claimed: &ClaimedMatch,
        outcomes: &[(TicketId, TicketOutcome)],
        done: &Completion,
    ) -> impl Future<Output = bool> + Send {
        let _ = (claimed, outcomes, done);
        async { true }
    }

    /// A match recorded earlier whose players may never have been told (the replica that
    /// recorded it stopped first, or a notification failed): tell them now. Its tickets are
    /// as stored, final. Returns whether every player was told.
    fn redeliver(&self, notice: &DueNotice) -> impl Future<Output = bool> + Send {
        let _ = notice;
        async { true }
    }

    /// The sink finished `claimed` with `outcomes`, but the lease was lost before they could
    /// be recorded (this replica hung past it; another one may be rebuilding the match): undo
    /// what the outcomes hold — e.g. release the session and server a placement claimed — so
    /// nothing leaks. [`lease_lost`](MatchSink::lease_lost) is called as well.
    fn discarded(
        &self,
        claimed: &ClaimedMatch,
        outcomes: &[(TicketId, TicketOutcome)],
    ) -> impl Future<Output = ()> + Send {
        let _ = (claimed, outcomes);
        async {}
    }

    /// The match's lease was lost before its outcome was recorded; the outcome was dropped.
    fn lease_lost(&self, claimed: &ClaimedMatch) {
        let _ = claimed;
    }

    /// This replica timed out these queued tickets of `game_mode`.
    fn timed_out(&self, game_mode: &str, tickets: &[TicketId]) {
        let _ = (game_mode, tickets);
    }

    /// This replica's reaper handed back the tickets of expired leases; `failed` are those that
    /// used their last attempt doing so (as stored after the change, when still readable).
    fn reclaimed(
        &self,
        reclaimed: &Reclaimed,
        failed: Vec<Ticket>,
    ) -> impl Future<Output = ()> + Send {
        let _ = (reclaimed, failed);
        async {}
    }
}

/// Timing and sizing of the engine.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// How long a claim holds its tickets without renewal.
    pub lease: Duration,
    /// How often a running pipeline renews its lease (well under `lease`).
    pub renew_every: Duration,
    /// How often the reaper looks for expired leases.
    pub reap_every: Duration,
    /// How often each mode's pass runs without an enqueue (widening, timeouts).
    pub tick: Duration,
    /// The most queued tickets one pass looks at (oldest first).
    pub scan_limit: usize,
    /// Passes in a row after lost claims before waiting for the next wake-up.
    pub max_rematch: u32,
}

impl EngineConfig {
    /// Checks the timings make sense: all positive, renewals well inside the lease.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |why: &str| Err(ConfigError::Engine(why.to_owned()));
        if [self.lease, self.renew_every, self.reap_every, self.tick]
            .iter()
            .any(Duration::is_zero)
        {
            return bad("lease, renew_every, reap_every and tick must be positive");
        }
        if self.renew_every * 2 > self.lease {
            return bad("renew_every must be at most half the lease");
        }
        if self.scan_limit == 0 {
            return bad("scan_limit must be at least 1");
        }
        Ok(())
    }

    /// The same with zero durations raised to 1 ms (tokio intervals cannot be zero).
    fn sanitized(mut self) -> Self {
        for d in [
            &mut self.lease,
            &mut self.renew_every,
            &mut self.reap_every,
            &mut self.tick,
        ] {
            *d = (*d).max(Duration::from_millis(1));
        }
        self.scan_limit = self.scan_limit.max(1);
        self
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            lease: Duration::from_secs(30),
            renew_every: Duration::from_secs(10),
            reap_every: Duration::from_secs(1),
            tick: Duration::from_secs(1),
            scan_limit: 10_000,
            max_rematch: 8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation() {
        assert!(EngineConfig::default().validate().is_ok());
        let zero_tick = EngineConfig {
            tick: Duration::ZERO,
            ..EngineConfig::default()
        };
        assert!(zero_tick.validate().is_err());
        assert_eq!(zero_tick.sanitized().tick, Duration::from_millis(1));
        let slow_renewal = EngineConfig {
            renew_every: Duration::from_secs(20),
            ..EngineConfig::default()
        };
        assert!(slow_renewal.validate().is_err());
    }
}

/// A matchmaking request, before it becomes a ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketRequest {
    pub game_mode: String,
    pub party: Party,
    pub attributes: Attributes,
    /// The ticket's id when the request chose it ([`TicketId::for_request`]); else random.
    pub id: Option<TicketId>,
}

/// Why a request was not queued.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("unknown game mode {0}")]
    UnknownMode(String),
    #[error("a party of {size} does not fit game mode {mode} (at most {max})")]
    PartyTooLarge { mode: String, size: usize, max: u32 },
    #[error("region must not be empty")]
    EmptyRegion,
    #[error("the matchmaker is shutting down")]
    ShuttingDown,
    /// Includes [`StoreError::Conflict`]: a member already has a live ticket.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A running engine. Cheap to clone; every clone drives the same tasks.
pub struct Engine<S: Store, K: MatchSink> {
    shared: Arc<Shared<S, K>>,
}

impl<S: Store, K: MatchSink> Clone for Engine<S, K> {
    fn clone(&self) -> Self {
        Engine {
            shared: self.shared.clone(),
        }
    }
}

impl<S: Store, K: MatchSink> std::fmt::Debug for Engine<S, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

struct Shared<S, K> {
    store: S,
    sink: K,
    modes: Modes,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    wake: HashMap<String, Arc<Notify>>,
    /// Stops the matching and reaper tasks (and new submissions).
    stop: CancellationToken,
    /// Tells running pipelines to hand their tickets back now.
    hand_back: CancellationToken,
    tasks: TaskTracker,
}

impl<S: Store, K: MatchSink> Engine<S, K> {
    /// Starts the matching tasks (one per mode) and the reaper on the current tokio runtime
    /// (so it must be called inside one). Check `config` with [`EngineConfig::validate`] first;
    /// zero durations are raised to 1 ms here rather than panicking.
    pub fn start(
        store: S,
        sink: K,
        modes: Modes,
        clock: Arc<dyn Clock>,
        config: EngineConfig,
    ) -> Self {
        let wake = modes
            .iter()
            .map(|m| (m.name.clone(), Arc::new(Notify::new())))
            .collect();
        let shared = Arc::new(Shared {
            store,
            sink,
            modes,
            clock,
            config: config.sanitized(),
            wake,
            stop: CancellationToken::new(),
            hand_back: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        for mode in shared.modes.iter() {
            let task = matching_loop(shared.clone(), mode.clone());
            shared.tasks.spawn(task);
        }
        shared.tasks.spawn(reaper(shared.clone()));
        Engine { shared }
    }

    /// Checks a request against the rules without queueing it (what [`Engine::submit`] checks
    /// first): a known game mode, a party that fits it, no empty region, not shutting down.
    pub fn check(&self, request: &TicketRequest) -> Result<(), SubmitError> {
        self.rules_for(request).map(drop)
    }

    fn rules_for(&self, request: &TicketRequest) -> Result<&Arc<GameMode>, SubmitError> {
        let shared = &self.shared;
        if shared.stop.is_cancelled() {
            return Err(SubmitError::ShuttingDown);
        }
        let mode = shared
            .modes
            .get(&request.game_mode)
            .ok_or_else(|| SubmitError::UnknownMode(request.game_mode.clone()))?;
        let max = mode.max_party_size();
        if u32::try_from(request.party.size()).is_ok_and(|n| n > max) {
            return Err(SubmitError::PartyTooLarge {
                mode: mode.name.clone(),
                size: request.party.size(),
                max,
            });
        }
        if request.attributes.region.as_deref() == Some("") {
            return Err(SubmitError::EmptyRegion);
        }
        Ok(mode)
    }

    /// Queues a request and wakes its game mode's matcher. A member who already has a live
    /// ticket makes it fail with [`StoreError::Conflict`] (HTTP 409).
    pub async fn submit(&self, request: TicketRequest) -> Result<Ticket, SubmitError> {
        let shared = &self.shared;
        let mode = self.rules_for(&request)?;
        let ticket = shared
            .store
            .enqueue(NewTicket {
                id: request.id.unwrap_or_else(TicketId::generate),
                game_mode: request.game_mode,
                party: request.party,
                attributes: request.attributes,
                enqueued_at: shared.clock.now(),
                max_attempts: mode.max_attempts,
            })
            .await?;
        self.wake(&ticket.game_mode);
        Ok(ticket)
    }

    /// Cancels a queued ticket.
    pub async fn cancel(&self, id: &TicketId) -> Result<CancelOutcome, StoreError> {
        self.shared.store.cancel(id).await
    }

    /// A ticket, live or recently finished.
    pub async fn ticket(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError> {
        self.shared.store.get(id).await
    }

    /// Whether the store answers (for readiness checks).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.shared.store.ping().await
    }

    /// The store the engine runs on.
    pub fn store(&self) -> &S {
        &self.shared.store
    }

    /// The game modes the engine runs.
    pub fn modes(&self) -> &Modes {
        &self.shared.modes
    }

    /// Runs a matching pass for `game_mode` soon (e.g. after tickets were added elsewhere).
    pub fn wake(&self, game_mode: &str) {
        if let Some(notify) = self.shared.wake.get(game_mode) {
            notify.notify_one();
        }
    }

    /// Stops matching and new submissions, waits up to `grace` for running pipelines, then
    /// releases the tickets of those still running and waits for that to be recorded.
    pub async fn shutdown(&self, grace: Duration) {
        let shared = &self.shared;
        shared.stop.cancel();
        shared.tasks.close();
        if timeout(grace, shared.tasks.wait()).await.is_err() {
            tracing::info!("shutdown grace period over; releasing matches still in flight");
            shared.hand_back.cancel();
            shared.tasks.wait().await;
        }
    }
}

impl<S, K> Shared<S, K> {
    fn wake(&self, game_mode: &str) {
        if let Some(notify) = self.wake.get(game_mode) {
            notify.notify_one();
        }
    }
}

async fn matching_loop<S: Store, K: MatchSink>(shared: Arc<Shared<S, K>>, mode: Arc<GameMode>) {
    let Some(wake) = shared.wake.get(&mode.name).cloned() else {
        return;
    };
    let mut tick = interval(shared.config.tick);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = shared.stop.cancelled() => return,
            () = wake.notified() => {}
            _ = tick.tick() => {}
        }
        for _ in 0..=shared.config.max_rematch {
            match pass(&shared, &mode).await {
                Ok(true) if !shared.stop.is_cancelled() => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(game_mode = %mode.name, error = %e, "matching pass failed");
                    break;
                }
            }
        }
    }
}

/// One matching pass. Returns whether a claim was lost (so the queue changed under us).
async fn pass<S: Store, K: MatchSink>(
    shared: &Arc<Shared<S, K>>,
    mode: &Arc<GameMode>,
) -> Result<bool, StoreError> {
    let tickets = shared
        .store
        .queued(&mode.name, shared.config.scan_limit)
        .await?;
    if tickets.is_empty() {
        return Ok(false);
    }
    let plan = matching::plan(&tickets, mode, shared.clock.now());
    if !plan.timed_out.is_empty() {
        let timed_out = shared.store.time_out(&plan.timed_out).await?;
        if !timed_out.is_empty() {
            tracing::debug!(game_mode = %mode.name, count = timed_out.len(), "tickets timed out");
            shared.sink.timed_out(&mode.name, &timed_out);
        }
    }
    let mut lost = false;
    for proposal in &plan.proposals {
        if shared.stop.is_cancelled() {
            break;
        }
        let lease_until = shared.clock.now() + shared.config.lease;
        match shared.store.try_claim(proposal, lease_until).await? {
            Some(claimed) => {
                let task = run_match(shared.clone(), claimed);
                shared.tasks.spawn(task);
            }
            None => lost = true,
        }
    }
    Ok(lost)
}

/// Runs the sink for one claimed match under its lease, then records the outcome.
async fn run_match<S: Store, K: MatchSink>(shared: Arc<Shared<S, K>>, claimed: ClaimedMatch) {
    let config = &shared.config;
    let lease_lost = CancellationToken::new();
    let work = shared.sink.run(claimed.clone(), lease_lost.clone());
    tokio::pin!(work);
    let mut renew = interval_at(Instant::now() + config.renew_every, config.renew_every);
    renew.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // The lease we know we hold; if renewals keep failing past it, another replica may reclaim
    // the tickets at any moment, so the match is treated as lost.
    let mut held_until = claimed.lease_until;

    let outcome = loop {
        tokio::select! {
            biased;
            outcome = &mut work => break outcome,
            () = shared.hand_back.cancelled() => break MatchOutcome::All(TicketOutcome::Release),
            _ = renew.tick() => {
                let until = shared.clock.now() + config.lease;
                let lost = match shared.store.renew_lease(&claimed.id, until).await {
                    Ok(true) => {
                        held_until = until;
                        false
                    }
                    Ok(false) => true,
                    Err(e) => {
                        tracing::warn!(match_id = %claimed.id, error = %e, "lease renewal failed");
                        shared.clock.now() >= held_until
                    }
                };
                if lost {
                    tracing::warn!(match_id = %claimed.id, "lease lost; abandoning the match");
                    lease_lost.cancel();
                    shared.sink.lease_lost(&claimed);
                    // Give the sink a moment to clean up, then drop it.
                    let _ = timeout(config.renew_every, &mut work).await;
                    return;
                }
            }
        }
    };

    let outcomes = outcome.per_ticket(&claimed);
    let mut backoff = Duration::from_millis(50);
    let deadline = Instant::now() + config.lease;
    loop {
        match shared.store.complete(&claimed, &outcomes).await {
            Ok(done) => {
                if !done.requeued.is_empty() {
                    shared.wake(&claimed.game_mode);
                }
                let told = shared.sink.recorded(&claimed, &outcomes, &done).await;
                if told && (!done.matched.is_empty() || !done.failed.is_empty()) {
                    confirm_notice(&shared, &claimed.id).await;
                }
                return;
            }
            Err(StoreError::LeaseLost(_)) => {
                tracing::warn!(match_id = %claimed.id, "lease lost before the outcome was recorded");
                shared.sink.lease_lost(&claimed);
                shared.sink.discarded(&claimed, &outcomes).await;
                return;
            }
            Err(e @ (StoreError::OutcomeMismatch(_) | StoreError::InvalidProposal(_))) => {
                // A sink bug: hand the tickets back rather than leave them to the lease.
                tracing::error!(match_id = %claimed.id, error = %e, "sink outcome rejected; releasing");
                let release = MatchOutcome::All(TicketOutcome::Release).per_ticket(&claimed);
                match shared.store.complete(&claimed, &release).await {
                    Ok(done) => {
                        shared.wake(&claimed.game_mode);
                        shared.sink.recorded(&claimed, &release, &done).await;
                    }
                    Err(e) => {
                        tracing::warn!(match_id = %claimed.id, error = %e, "release failed; the lease will expire");
                    }
                }
                return;
            }
            Err(e) => {
                if Instant::now() + backoff >= deadline {
                    tracing::warn!(match_id = %claimed.id, error = %e, "cannot record the outcome; the lease will expire");
                    return;
                }
                tracing::warn!(match_id = %claimed.id, error = %e, "recording the outcome failed; retrying");
                sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// Tells the store a match's players were told; on failure the notice stays and is sent again
/// once due (a duplicate `found` names the same server).
async fn confirm_notice<S: Store, K: MatchSink>(
    shared: &Shared<S, K>,
    id: &crate::ticket::MatchId,
) {
    if let Err(e) = shared.store.notice_sent(id).await {
        tracing::warn!(match_id = %id, error = %e, "cannot confirm a match's notifications");
    }
}

/// Sends the notifications of matches recorded by a replica that stopped before sending them.
async fn redeliver_notices<S: Store, K: MatchSink>(shared: &Shared<S, K>) {
    // Taken for a lease: long enough to send, short enough to be retried soon if this
    // replica stops too.
    match shared.store.due_notices(shared.config.lease).await {
        Ok(notices) => {
            for notice in notices {
                tracing::info!(match_id = %notice.match_id, "sending the notifications of a match another replica recorded");
                if shared.sink.redeliver(&notice).await {
                    confirm_notice(shared, &notice.match_id).await;
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "reading due notices failed"),
    }
}

async fn reaper<S: Store, K: MatchSink>(shared: Arc<Shared<S, K>>) {
    let mut tick = interval(shared.config.reap_every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = shared.stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        redeliver_notices(&shared).await;
        match shared.store.reclaim_expired(shared.clock.now()).await {
            Ok(reclaimed) => {
                if !reclaimed.requeued.is_empty() || !reclaimed.failed.is_empty() {
                    tracing::info!(
                        requeued = reclaimed.requeued.len(),
                        failed = reclaimed.failed.len(),
                        "handed back tickets of expired leases"
                    );
                }
                for mode in &reclaimed.game_modes {
                    shared.wake(mode);
                }
                if !reclaimed.requeued.is_empty() || !reclaimed.failed.is_empty() {
                    let mut failed = Vec::with_capacity(reclaimed.failed.len());
                    for id in &reclaimed.failed {
                        match shared.store.get(id).await {
                            Ok(Some(ticket)) => failed.push(ticket),
                            Ok(None) => {}
                            Err(e) => {
                                tracing::warn!(ticket = %id, error = %e, "cannot read a failed ticket")
                            }
                        }
                    }
                    shared.sink.reclaimed(&reclaimed, failed).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "reclaiming expired leases failed"),
        }
    }
}
