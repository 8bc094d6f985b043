//! [`AnyStore`]: the store a running service picked at start — Redis when a URL was given,
//! memory otherwise — behind one concrete type, so the engine, the pipeline and the HTTP layer
//! are compiled once rather than once per backend.
//!
//! Pure delegation; must not add behaviour of its own.

use tokio::sync::broadcast;

use super::{
    CancelOutcome, DueNotice, MemoryStore, Reclaimed, RedisStore, Store, StoreError, StoreEvent,
};
use crate::clock::UnixMillis;
use crate::ticket::{
    ClaimedMatch, Completion, MatchId, MatchProposal, NewTicket, PlayerId, Ticket, TicketId,
    TicketOutcome,
};

/// One of the two stores. Cheap to clone.
#[derive(Clone, Debug)]
pub enum AnyStore {
    Memory(MemoryStore),
    Redis(RedisStore),
}

impl AnyStore {
    /// `memory` or `redis`, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            AnyStore::Memory(_) => "memory",
            AnyStore::Redis(_) => "redis",
        }
    }
}

impl From<MemoryStore> for AnyStore {
    fn from(store: MemoryStore) -> Self {
        AnyStore::Memory(store)
    }
}

impl From<RedisStore> for AnyStore {
    fn from(store: RedisStore) -> Self {
        AnyStore::Redis(store)
    }
}

macro_rules! delegate {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Memory($store) => $call.await,
            AnyStore::Redis($store) => $call.await,
        }
    };
}

impl Store for AnyStore {
    async fn enqueue(&self, ticket: NewTicket) -> Result<Ticket, StoreError> {
        delegate!(self, s => s.enqueue(ticket))
    }

    async fn get(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError> {
        delegate!(self, s => s.get(id))
    }

    async fn live_ticket(&self, player: &PlayerId) -> Result<Option<Ticket>, StoreError> {
        delegate!(self, s => s.live_ticket(player))
    }

    async fn cancel(&self, id: &TicketId) -> Result<CancelOutcome, StoreError> {
        delegate!(self, s => s.cancel(id))
    }

    async fn queued(&self, game_mode: &str, limit: usize) -> Result<Vec<Ticket>, StoreError> {
        delegate!(self, s => s.queued(game_mode, limit))
    }

    async fn queue_depth(&self, game_mode: &str) -> Result<usize, StoreError> {
        delegate!(self, s => s.queue_depth(game_mode))
    }

    async fn try_claim(
        &self,
        proposal: &MatchProposal,
        lease_until: UnixMillis,
    ) -> Result<Option<ClaimedMatch>, StoreError> {
        delegate!(self, s => s.try_claim(proposal, lease_until))
    }

    async fn renew_lease(
        &self,
        match_id: &MatchId,
        lease_until: UnixMillis,
    ) -> Result<bool, StoreError> {
        delegate!(self, s => s.renew_lease(match_id, lease_until))
    }

    async fn complete(
        &self,
        claimed: &ClaimedMatch,
        outcomes: &[(TicketId, TicketOutcome)],
    ) -> Result<Completion, StoreError> {
        delegate!(self, s => s.complete(claimed, outcomes))
    }

    async fn reclaim_expired(&self, now: UnixMillis) -> Result<Reclaimed, StoreError> {
        delegate!(self, s => s.reclaim_expired(now))
    }

    async fn due_notices(&self, hold: std::time::Duration) -> Result<Vec<DueNotice>, StoreError> {
        delegate!(self, s => s.due_notices(hold))
    }

    async fn notice_sent(&self, id: &MatchId) -> Result<(), StoreError> {
        delegate!(self, s => s.notice_sent(id))
    }

    async fn time_out(&self, ids: &[TicketId]) -> Result<Vec<TicketId>, StoreError> {
        delegate!(self, s => s.time_out(ids))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        delegate!(self, s => s.ping())
    }

    fn events(&self) -> broadcast::Receiver<StoreEvent> {
        match self {
            AnyStore::Memory(s) => s.events(),
            AnyStore::Redis(s) => s.events(),
        }
    }
}
