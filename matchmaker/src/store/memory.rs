//! The in-memory [`Store`]: one process, no persistence. The default when no Redis URL is given,
//! and what the simulator embeds.
//!
//! A cheap-clone handle around one mutex-guarded state; no `.await` happens under the lock, so
//! every method is trivially atomic. Clones share the state, so "replicas" in one process (tests)
//! are just clones. Finished tickets are dropped by [`Store::reclaim_expired`] once they are
//! older than the retention period (measured from the first reclaim pass that saw them, so up to
//! one reaper interval more). Finished tickets are announced on an in-process broadcast channel
//! ([`Store::events`]), sent under the lock so announcements follow the order of changes.
//!
//! Must not know about matching rules or the engine.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::broadcast;

use super::{
    CancelOutcome, DEFAULT_RETENTION, EVENT_CAPACITY, Reclaimed, Store, StoreError, StoreEvent,
    check_outcomes, check_proposal, gave_up, lease_expired,
};
use crate::clock::UnixMillis;
use crate::ticket::{
    ClaimedMatch, Completion, MatchId, MatchProposal, NewTicket, PlayerId, Ticket, TicketId,
    TicketOutcome, TicketState,
};

/// The in-memory store. Clones share one state.
#[derive(Clone, Debug)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    retention: Duration,
}

#[derive(Debug)]
struct State {
    /// Announces finished tickets (see [`Store::events`]).
    events: broadcast::Sender<StoreEvent>,
    tickets: HashMap<TicketId, Ticket>,
    /// Player → their live ticket.
    players: HashMap<PlayerId, TicketId>,
    /// Game mode → queued tickets by (enqueue time, id).
    queues: HashMap<String, BTreeSet<(UnixMillis, TicketId)>>,
    matches: HashMap<MatchId, Lease>,
    /// (lease end, match) for every claimed match.
    leases: BTreeSet<(UnixMillis, MatchId)>,
    /// Tickets finished since the last reclaim pass (not yet timestamped).
    newly_finished: Vec<TicketId>,
    /// (first seen finished, ticket), oldest first.
    finished: VecDeque<(UnixMillis, TicketId)>,
}

#[derive(Debug)]
struct Lease {
    tickets: Vec<TicketId>,
    until: UnixMillis,
}

impl MemoryStore {
    /// An empty store keeping finished tickets for [`DEFAULT_RETENTION`].
    pub fn new() -> Self {
        Self::with_retention(DEFAULT_RETENTION)
    }

    /// An empty store keeping finished tickets for `retention`.
    pub fn with_retention(retention: Duration) -> Self {
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        MemoryStore {
            state: Arc::new(Mutex::new(State {
                events,
                tickets: HashMap::new(),
                players: HashMap::new(),
                queues: HashMap::new(),
                matches: HashMap::new(),
                leases: BTreeSet::new(),
                newly_finished: Vec::new(),
                finished: VecDeque::new(),
            })),
            retention,
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl State {
    fn enqueue(&mut self, new: NewTicket) -> Result<Ticket, StoreError> {
        if self.tickets.contains_key(&new.id) {
            return Err(StoreError::DuplicateTicket(new.id));
        }
        for player in new.party.members() {
            if let Some(held) = self.players.get(player) {
                if self.tickets.get(held).is_some_and(Ticket::is_live) {
                    return Err(StoreError::Conflict {
                        player: player.clone(),
                        ticket: held.clone(),
                    });
                }
            }
        }
        let ticket = Ticket::queued(new);
        for player in ticket.party.members() {
            self.players.insert(player.clone(), ticket.id.clone());
        }
        self.queue(&ticket);
        self.tickets.insert(ticket.id.clone(), ticket.clone());
        Ok(ticket)
    }

    fn queue(&mut self, ticket: &Ticket) {
        self.queues
            .entry(ticket.game_mode.clone())
            .or_default()
            .insert((ticket.enqueued_at, ticket.id.clone()));
    }

    fn unqueue(&mut self, ticket: &Ticket) {
        if let Some(queue) = self.queues.get_mut(&ticket.game_mode) {
            queue.remove(&(ticket.enqueued_at, ticket.id.clone()));
        }
    }

    /// Moves a ticket to a final state and frees its players.
    fn finish(&mut self, id: &TicketId, state: TicketState) {
        let Some(ticket) = self.tickets.get_mut(id) else {
            return;
        };
        ticket.state = state;
        let ticket = ticket.clone();
        self.unqueue(&ticket);
        for player in ticket.party.members() {
            if self.players.get(player) == Some(id) {
                self.players.remove(player);
            }
        }
        self.newly_finished.push(id.clone());
        // No receiver is not an error: nobody is waiting.
        let _ = self.events.send(StoreEvent::Finished(id.clone()));
    }

    /// Puts a claimed ticket back in the queue at its original place.
    fn requeue(&mut self, id: &TicketId) {
        let Some(ticket) = self.tickets.get_mut(id) else {
            return;
        };
        ticket.state = TicketState::Queued;
        let ticket = ticket.clone();
        self.queue(&ticket);
    }

    /// Counts a failed attempt: back to the queue, or failed once attempts run out.
    /// Returns whether the ticket went back to the queue.
    fn failed_attempt(&mut self, id: &TicketId, reason: &str) -> bool {
        let Some(ticket) = self.tickets.get_mut(id) else {
            return false;
        };
        ticket.attempts = ticket.attempts.saturating_add(1);
        if ticket.attempts >= ticket.max_attempts {
            let reason = gave_up(ticket.attempts, reason);
            self.finish(id, TicketState::Failed { reason });
            false
        } else {
            self.requeue(id);
            true
        }
    }

    fn held_by(&self, id: &TicketId, match_id: &MatchId) -> bool {
        self.tickets.get(id).is_some_and(
            |t| matches!(&t.state, TicketState::Claimed { match_id: m, .. } if m == match_id),
        )
    }

    fn try_claim(
        &mut self,
        proposal: &MatchProposal,
        lease_until: UnixMillis,
    ) -> Result<Option<ClaimedMatch>, StoreError> {
        let ids = check_proposal(proposal)?;
        let claimable = ids.iter().all(|id| {
            self.tickets.get(id).is_some_and(|t| {
                t.state == TicketState::Queued && t.game_mode == proposal.game_mode
            })
        });
        if !claimable {
            return Ok(None);
        }
        let match_id = MatchId::generate();
        let mut teams = Vec::with_capacity(proposal.teams.len());
        for team in &proposal.teams {
            let mut claimed_team = Vec::with_capacity(team.len());
            for id in team {
                let Some(ticket) = self.tickets.get_mut(id) else {
                    continue;
                };
                ticket.state = TicketState::Claimed {
                    match_id: match_id.clone(),
                    lease_until,
                };
                let ticket = ticket.clone();
                self.unqueue(&ticket);
                claimed_team.push(ticket);
            }
            teams.push(claimed_team);
        }
        self.matches.insert(
            match_id.clone(),
            Lease {
                tickets: ids,
                until: lease_until,
            },
        );
        self.leases.insert((lease_until, match_id.clone()));
        Ok(Some(ClaimedMatch {
            id: match_id,
            game_mode: proposal.game_mode.clone(),
            region: proposal.region.clone(),
            teams,
            lease_until,
        }))
    }

    fn renew(&mut self, match_id: &MatchId, until: UnixMillis) -> bool {
        let Some(lease) = self.matches.get_mut(match_id) else {
            return false;
        };
        self.leases.remove(&(lease.until, match_id.clone()));
        lease.until = until;
        self.leases.insert((until, match_id.clone()));
        for id in &lease.tickets {
            if let Some(ticket) = self.tickets.get_mut(id) {
                if let TicketState::Claimed { lease_until, .. } = &mut ticket.state {
                    *lease_until = until;
                }
            }
        }
        true
    }

    fn complete(
        &mut self,
        claimed: &ClaimedMatch,
        outcomes: &[(TicketId, TicketOutcome)],
    ) -> Result<Completion, StoreError> {
        let Some(lease) = self.matches.get(&claimed.id) else {
            return Err(StoreError::LeaseLost(claimed.id.clone()));
        };
        check_outcomes(claimed, outcomes)?;
        let mut held: Vec<&TicketId> = lease.tickets.iter().collect();
        let mut named: Vec<&TicketId> = outcomes.iter().map(|(id, _)| id).collect();
        held.sort();
        named.sort();
        if held != named {
            return Err(StoreError::OutcomeMismatch(claimed.id.clone()));
        }
        if !outcomes.iter().all(|(id, _)| self.held_by(id, &claimed.id)) {
            return Err(StoreError::LeaseLost(claimed.id.clone()));
        }
        let mut done = Completion::default();
        for (id, outcome) in outcomes {
            match outcome {
                TicketOutcome::Matched(placement) => {
                    let state = TicketState::Matched {
                        match_id: claimed.id.clone(),
                        placement: placement.clone(),
                    };
                    self.finish(id, state);
                    done.matched.push(id.clone());
                }
                TicketOutcome::Requeue { reason } => {
                    if self.failed_attempt(id, reason) {
                        done.requeued.push(id.clone());
                    } else {
                        done.failed.push(id.clone());
                    }
                }
                TicketOutcome::Release => {
                    self.requeue(id);
                    done.requeued.push(id.clone());
                }
                TicketOutcome::Fail { reason } => {
                    let reason = reason.clone();
                    self.finish(id, TicketState::Failed { reason });
                    done.failed.push(id.clone());
                }
            }
        }
        if let Some(lease) = self.matches.remove(&claimed.id) {
            self.leases.remove(&(lease.until, claimed.id.clone()));
        }
        Ok(done)
    }

    fn reclaim(&mut self, now: UnixMillis, retention: Duration) -> Reclaimed {
        let mut out = Reclaimed::default();
        while let Some((until, match_id)) = self.leases.first().cloned() {
            if until > now {
                break;
            }
            self.leases.pop_first();
            let Some(lease) = self.matches.remove(&match_id) else {
                continue;
            };
            let reason = lease_expired(&match_id);
            for id in &lease.tickets {
                if !self.held_by(id, &match_id) {
                    continue;
                }
                if let Some(mode) = self.tickets.get(id).map(|t| t.game_mode.clone()) {
                    if !out.game_modes.contains(&mode) {
                        out.game_modes.push(mode);
                    }
                }
                if self.failed_attempt(id, &reason) {
                    out.requeued.push(id.clone());
                } else {
                    out.failed.push(id.clone());
                }
            }
        }
        out.game_modes.sort();

        for id in self.newly_finished.drain(..) {
            self.finished.push_back((now, id));
        }
        while let Some((since, _)) = self.finished.front() {
            if *since + retention > now {
                break;
            }
            if let Some((_, id)) = self.finished.pop_front() {
                if self.tickets.get(&id).is_some_and(|t| !t.is_live()) {
                    self.tickets.remove(&id);
                }
            }
        }
        out
    }
}

impl Store for MemoryStore {
    async fn enqueue(&self, ticket: NewTicket) -> Result<Ticket, StoreError> {
        self.state.lock().enqueue(ticket)
    }

    async fn get(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError> {
        Ok(self.state.lock().tickets.get(id).cloned())
    }

    async fn live_ticket(&self, player: &PlayerId) -> Result<Option<Ticket>, StoreError> {
        let state = self.state.lock();
        Ok(state
            .players
            .get(player)
            .and_then(|id| state.tickets.get(id))
            .filter(|t| t.is_live())
            .cloned())
    }

    async fn cancel(&self, id: &TicketId) -> Result<CancelOutcome, StoreError> {
        let mut state = self.state.lock();
        let Some(ticket) = state.tickets.get(id) else {
            return Ok(CancelOutcome::NotFound);
        };
        Ok(match ticket.state {
            TicketState::Queued => {
                state.finish(id, TicketState::Cancelled);
                CancelOutcome::Cancelled
            }
            TicketState::Claimed { .. } => CancelOutcome::InProgress,
            _ => CancelOutcome::AlreadyFinished,
        })
    }

    async fn queued(&self, game_mode: &str, limit: usize) -> Result<Vec<Ticket>, StoreError> {
        let state = self.state.lock();
        let Some(queue) = state.queues.get(game_mode) else {
            return Ok(Vec::new());
        };
        Ok(queue
            .iter()
            .filter_map(|(_, id)| state.tickets.get(id))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn queue_depth(&self, game_mode: &str) -> Result<usize, StoreError> {
        Ok(self
            .state
            .lock()
            .queues
            .get(game_mode)
            .map_or(0, BTreeSet::len))
    }

    async fn try_claim(
        &self,
        proposal: &MatchProposal,
        lease_until: UnixMillis,
    ) -> Result<Option<ClaimedMatch>, StoreError> {
        self.state.lock().try_claim(proposal, lease_until)
    }

    async fn renew_lease(
        &self,
        match_id: &MatchId,
        lease_until: UnixMillis,
    ) -> Result<bool, StoreError> {
        Ok(self.state.lock().renew(match_id, lease_until))
    }

    async fn complete(
        &self,
        claimed: &ClaimedMatch,
        outcomes: &[(TicketId, TicketOutcome)],
    ) -> Result<Completion, StoreError> {
        self.state.lock().complete(claimed, outcomes)
    }

    async fn reclaim_expired(&self, now: UnixMillis) -> Result<Reclaimed, StoreError> {
        Ok(self.state.lock().reclaim(now, self.retention))
    }

    async fn time_out(&self, ids: &[TicketId]) -> Result<Vec<TicketId>, StoreError> {
        let mut state = self.state.lock();
        let mut changed = Vec::new();
        for id in ids {
            if state
                .tickets
                .get(id)
                .is_some_and(|t| t.state == TicketState::Queued)
            {
                state.finish(id, TicketState::TimedOut);
                changed.push(id.clone());
            }
        }
        Ok(changed)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn events(&self) -> broadcast::Receiver<StoreEvent> {
        self.state.lock().events.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ticket::{Attributes, Party};

    fn new_ticket(id: &str, at: u64) -> NewTicket {
        NewTicket {
            id: id.into(),
            game_mode: "m".into(),
            party: Party::solo(id.into()),
            attributes: Attributes::default(),
            enqueued_at: UnixMillis(at),
            max_attempts: 3,
        }
    }

    #[tokio::test]
    async fn finished_tickets_are_dropped_after_the_retention_period() {
        let store = MemoryStore::with_retention(Duration::from_secs(10));
        store.enqueue(new_ticket("a", 0)).await.expect("enqueue");
        store.cancel(&"a".into()).await.expect("cancel");
        store
            .reclaim_expired(UnixMillis(1_000))
            .await
            .expect("pass");
        assert!(store.get(&"a".into()).await.expect("get").is_some());
        store
            .reclaim_expired(UnixMillis(10_999))
            .await
            .expect("pass");
        assert!(store.get(&"a".into()).await.expect("get").is_some());
        store
            .reclaim_expired(UnixMillis(11_000))
            .await
            .expect("pass");
        assert!(store.get(&"a".into()).await.expect("get").is_none());
    }

    #[tokio::test]
    async fn finished_tickets_are_announced() {
        let store = MemoryStore::new();
        let mut events = store.events();
        store.enqueue(new_ticket("a", 0)).await.expect("enqueue");
        store.enqueue(new_ticket("b", 0)).await.expect("enqueue");
        store.cancel(&"b".into()).await.expect("cancel");
        store.time_out(&["a".into()]).await.expect("time out");
        assert_eq!(
            events.try_recv().ok(),
            Some(StoreEvent::Finished("b".into()))
        );
        assert_eq!(
            events.try_recv().ok(),
            Some(StoreEvent::Finished("a".into()))
        );
        assert!(
            events.try_recv().is_err(),
            "queued tickets are not announced"
        );
    }
}
