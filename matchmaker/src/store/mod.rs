//! Where tickets live: the [`Store`] trait and its two implementations, [`MemoryStore`] (one
//! process, the default) and [`RedisStore`] (shared by replicas, used when a Redis URL is given).
//!
//! The store is the only place correctness across replicas comes from:
//! - **one live ticket per player**: [`Store::enqueue`] fails with [`StoreError::Conflict`]
//!   while any member of the party has a queued or claimed ticket (the HTTP layer answers 409);
//! - **atomic claims**: [`Store::try_claim`] moves every ticket of a proposal from queued to
//!   claimed, or none of them, so no player is ever in two matches;
//! - **leases**: a claim holds its tickets until a deadline that the pipeline renews
//!   ([`Store::renew_lease`]); once it passes, [`Store::reclaim_expired`] (run by every
//!   replica's reaper) puts the tickets back in the queue, so a replica that dies mid-pipeline
//!   loses no player. Completing after that fails with [`StoreError::LeaseLost`];
//! - **requeue keeps the place**: a ticket that goes back to the queue keeps its original
//!   enqueue time; each failed attempt (a [`TicketOutcome::Requeue`] or an expired lease) counts,
//!   and at `max_attempts` the ticket fails instead.
//!
//! Lifecycle: `queued → claimed → matched`, with `claimed → queued` (requeue, release, expired
//! lease), `queued → cancelled | timed_out`, and `claimed → failed`. Cancelling a claimed ticket
//! is refused ([`CancelOutcome::InProgress`]): the match is already being built. Finished tickets
//! stay readable for a retention period, then disappear.
//!
//! **Announcements.** Every ticket that reaches a final state (matched, cancelled, timed out,
//! failed) is announced on [`Store::events`] to every replica sharing the store — in process for
//! [`MemoryStore`], through a Redis pub/sub channel for [`RedisStore`]. This is how an HTTP
//! request held by one replica learns the outcome of a match another replica built. Delivery is
//! best effort (a lagging receiver or a reconnect loses events and is told so with
//! [`StoreEvent::Resync`]), so waiters also re-read the ticket on a slow timer.
//!
//! Time comes from the caller (`now`, `lease_until`), never from the store's own clock.
//! Must not know about matching rules, HTTP or the AccelByte services.

use std::future::Future;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::clock::UnixMillis;
use crate::ticket::{
    ClaimedMatch, Completion, MatchId, MatchProposal, NewTicket, PlayerId, Ticket, TicketId,
    TicketOutcome,
};

pub mod any;
pub mod memory;
pub mod redis;

pub use any::AnyStore;
pub use memory::MemoryStore;
pub use redis::{RedisConfig, RedisStore};

/// How long finished tickets stay readable by default.
pub const DEFAULT_RETENTION: std::time::Duration = std::time::Duration::from_secs(600);

/// Events buffered per receiver before it lags (and gets a [`StoreEvent::Resync`]).
pub const EVENT_CAPACITY: usize = 16_384;

/// What a store announces to every replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreEvent {
    /// The ticket reached a final state (matched, cancelled, timed out or failed).
    Finished(TicketId),
    /// Announcements may have been missed (a lagging receiver, a reconnect): re-read whatever
    /// you are waiting for.
    Resync,
}

/// How long after a match's outcome was recorded its notifications count as lost if the
/// recording replica has not confirmed them ([`Store::notice_sent`]): then any replica's reaper
/// sends them ([`Store::due_notices`]).
pub const NOTICE_GRACE: Duration = Duration::from_secs(3);

/// A recorded match whose players may not have been told (its replica stopped between
/// recording and notifying): its tickets as they are now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueNotice {
    pub match_id: MatchId,
    pub tickets: Vec<Ticket>,
}

/// What can go wrong at the store boundary.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A member of the party already has a live ticket.
    #[error("player {player} already has a live ticket {ticket}")]
    Conflict { player: PlayerId, ticket: TicketId },
    /// A ticket with this id already exists.
    #[error("ticket {0} already exists")]
    DuplicateTicket(TicketId),
    /// The match's lease expired and its tickets were handed back; nothing was changed.
    #[error("match {0} lost its lease")]
    LeaseLost(MatchId),
    /// The outcomes do not name every ticket of the match exactly once.
    #[error("outcomes for match {0} do not name each of its tickets exactly once")]
    OutcomeMismatch(MatchId),
    /// A proposal with no ticket or a ticket twice.
    #[error("invalid proposal: {0}")]
    InvalidProposal(&'static str),
    /// Stored data this version cannot read.
    #[error("corrupt record {key}: {detail}")]
    Corrupt { key: String, detail: String },
    /// The Redis server or connection failed.
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
}

/// What [`Store::cancel`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The ticket was queued and is now cancelled.
    Cancelled,
    /// The ticket is claimed by a match being built; it cannot be cancelled now.
    InProgress,
    /// The ticket had already finished (matched, cancelled, timed out or failed).
    AlreadyFinished,
    /// No such ticket (or it finished longer ago than the retention period).
    NotFound,
}

/// What [`Store::reclaim_expired`] put back (or failed) after expired leases.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reclaimed {
    pub requeued: Vec<TicketId>,
    /// Tickets whose expired lease used up their last attempt.
    pub failed: Vec<TicketId>,
    /// The game modes that got tickets back (so their matchers can run), sorted, unique.
    pub game_modes: Vec<String>,
}

/// The tickets of every replica. Cheap to share; every method is atomic on its own.
pub trait Store: Send + Sync + 'static {
    /// Stores a new queued ticket. Fails with [`StoreError::Conflict`] if any member of the
    /// party already has a live ticket.
    fn enqueue(&self, ticket: NewTicket)
    -> impl Future<Output = Result<Ticket, StoreError>> + Send;

    /// The ticket, live or finished (within the retention period).
    fn get(&self, id: &TicketId)
    -> impl Future<Output = Result<Option<Ticket>, StoreError>> + Send;

    /// The player's live ticket, if any.
    fn live_ticket(
        &self,
        player: &PlayerId,
    ) -> impl Future<Output = Result<Option<Ticket>, StoreError>> + Send;

    /// Cancels a queued ticket and frees its players.
    fn cancel(
        &self,
        id: &TicketId,
    ) -> impl Future<Output = Result<CancelOutcome, StoreError>> + Send;

    /// Up to `limit` queued tickets of `game_mode`, oldest first (for the matcher). A record
    /// that cannot be read is skipped with a warning rather than blocking the whole mode.
    fn queued(
        &self,
        game_mode: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Ticket>, StoreError>> + Send;

    /// How many tickets of `game_mode` are queued.
    fn queue_depth(
        &self,
        game_mode: &str,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Claims every ticket of `proposal` under a new match held until `lease_until`, atomically:
    /// `Ok(None)` (and no change) if any of them is no longer queued in that game mode.
    fn try_claim(
        &self,
        proposal: &MatchProposal,
        lease_until: UnixMillis,
    ) -> impl Future<Output = Result<Option<ClaimedMatch>, StoreError>> + Send;

    /// Moves the lease of `match_id` to `lease_until`. `Ok(false)` if the lease was already
    /// lost (the match was completed or reclaimed): the pipeline must stop.
    fn renew_lease(
        &self,
        match_id: &MatchId,
        lease_until: UnixMillis,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Ends a claimed match: one outcome per ticket, applied atomically. Fails with
    /// [`StoreError::LeaseLost`] (changing nothing) if the lease was reclaimed meanwhile.
    fn complete(
        &self,
        claimed: &ClaimedMatch,
        outcomes: &[(TicketId, TicketOutcome)],
    ) -> impl Future<Output = Result<Completion, StoreError>> + Send;

    /// Hands back the tickets of every match whose lease ended at or before `now` (each counts a
    /// failed attempt). Also drops finished tickets older than the retention period where the
    /// backend does not expire them itself.
    /// Notices of recorded matches that are due (see [`NOTICE_GRACE`]), each taken for `hold`
    /// so no other replica sends it meanwhile. A store shared by no other process has none.
    fn due_notices(
        &self,
        hold: Duration,
    ) -> impl Future<Output = Result<Vec<DueNotice>, StoreError>> + Send {
        let _ = hold;
        async { Ok(Vec::new()) }
    }

    /// The players of match `id` were told its outcome: forget its notice.
    fn notice_sent(&self, id: &MatchId) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = id;
        async { Ok(()) }
    }

    fn reclaim_expired(
        &self,
        now: UnixMillis,
    ) -> impl Future<Output = Result<Reclaimed, StoreError>> + Send;

    /// Times out those of `ids` that are still queued; returns the ones it changed.
    fn time_out(
        &self,
        ids: &[TicketId],
    ) -> impl Future<Output = Result<Vec<TicketId>, StoreError>> + Send;

    /// Checks the backend answers (for readiness probes).
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Announcements of finished tickets, from every replica sharing this store (best effort:
    /// see the module docs). The default announces nothing: the receiver is closed at once, and
    /// waiters fall back to re-reading tickets on a timer.
    fn events(&self) -> broadcast::Receiver<StoreEvent> {
        broadcast::channel(1).1
    }
}

/// Checks a proposal names at least one ticket and none twice.
pub(crate) fn check_proposal(proposal: &MatchProposal) -> Result<Vec<TicketId>, StoreError> {
    let ids: Vec<TicketId> = proposal.ticket_ids().cloned().collect();
    if ids.is_empty() {
        return Err(StoreError::InvalidProposal("no tickets"));
    }
    let mut sorted: Vec<&TicketId> = ids.iter().collect();
    sorted.sort();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return Err(StoreError::InvalidProposal("a ticket appears twice"));
    }
    Ok(ids)
}

/// Checks `outcomes` name each ticket of `claimed` exactly once.
pub(crate) fn check_outcomes(
    claimed: &ClaimedMatch,
    outcomes: &[(TicketId, TicketOutcome)],
) -> Result<(), StoreError> {
    let mut expected: Vec<&TicketId> = claimed.tickets().map(|t| &t.id).collect();
    let mut given: Vec<&TicketId> = outcomes.iter().map(|(id, _)| id).collect();
    expected.sort();
    given.sort();
    if expected == given {
        Ok(())
    } else {
        Err(StoreError::OutcomeMismatch(claimed.id.clone()))
    }
}

/// The reason recorded when a ticket runs out of attempts.
pub(crate) fn gave_up(attempts: u32, reason: &str) -> String {
    format!("gave up after {attempts} attempts: {reason}")
}

/// The reason recorded for an attempt lost to an expired lease.
pub(crate) fn lease_expired(match_id: &MatchId) -> String {
    format!("the lease of match {match_id} expired")
}
