//! Matchmaking v2 state: rule sets, match pools and match tickets of every namespace, behind
//! one mutex with no `.await` under it, plus the registry of match functions pools may name.
//!
//! Ticket rules (AGS's, and ours where it is silent):
//! - a player has at most one queued ticket per pool (a second create answers 409);
//! - a ticket is queued until it is matched, deleted by its owner, or expires after its pool's
//!   `ticket_expiration_seconds` (300 when zero, as AGS documents);
//! - a matched ticket answers `matchFound: true` with its game session until it would have
//!   expired; an expired or deleted ticket is gone (404), which is how the client SDKs detect
//!   expiry when they poll.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use accelbyte::models::match2::{MatchPool, RuleSetPayload};
use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};
use serde_json::{Map, Value};
use tokio::sync::Notify;

use super::matcher::{DefaultMatcher, MatchFunction, Ticket};

/// Expiry when a pool leaves `ticket_expiration_seconds` at zero.
pub const DEFAULT_TICKET_EXPIRATION_S: i32 = 300;
/// Most rule sets + pools, and most tickets, kept at once.
pub const MAX_CONFIG: usize = 10_000;
pub const MAX_TICKETS: usize = 500_000;

/// Match function names that mean the built-in matcher.
pub const BUILT_IN_FUNCTIONS: [&str; 2] = ["default", "basic"];

/// One ticket.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TicketRecord {
    pub id: String,
    pub namespace: String,
    pub pool: String,
    /// The creator first, then the rest of their party.
    pub players: Vec<String>,
    pub party_id: String,
    pub attributes: Map<String, Value>,
    pub latencies: std::collections::BTreeMap<String, i64>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The game session of its match, once matched.
    pub session_id: Option<String>,
}

impl TicketRecord {
    pub fn is_queued(&self) -> bool {
        self.session_id.is_none()
    }
}

/// What a ticket create carries.
#[derive(Debug, Clone)]
pub struct NewTicket {
    pub namespace: String,
    pub pool: String,
    pub players: Vec<String>,
    pub party_id: String,
    pub attributes: Map<String, Value>,
    pub latencies: std::collections::BTreeMap<String, i64>,
}

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Match2Error {
    #[error("rule set {0} not found")]
    RuleSetNotFound(String),
    #[error("rule set {0} already exists")]
    RuleSetExists(String),
    #[error("match pool {0} not found")]
    PoolNotFound(String),
    #[error("match pool {0} already exists")]
    PoolExists(String),
    #[error("rule set {0} is used by match pool {1}")]
    RuleSetInUse(String, String),
    #[error("match ticket {0} not found")]
    TicketNotFound(String),
    #[error("player {player} already has ticket {ticket} in match pool {pool}")]
    AlreadyQueued {
        player: String,
        ticket: String,
        pool: String,
    },
    #[error("match ticket {0} is not the caller's")]
    NotOwner(String),
    #[error("match ticket {0} was already matched")]
    AlreadyMatched(String),
    #[error("too many rule sets, pools or tickets")]
    TooMany,
}

/// Queued tickets of one pool, with what its match function needs.
#[derive(Debug, Clone)]
pub struct PoolWork {
    pub namespace: String,
    pub pool: MatchPool,
    pub rules: Value,
    pub tickets: Vec<Ticket>,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Inner {
    #[serde(with = "crate::durable::wallclock::pairs")]
    rulesets: HashMap<(String, String), RuleSetPayload>,
    #[serde(with = "crate::durable::wallclock::pairs")]
    pools: HashMap<(String, String), MatchPool>,
    tickets: HashMap<String, TicketRecord>,
}

type Functions = HashMap<String, Arc<dyn MatchFunction>>;

/// Matchmaking v2's store.
#[derive(Debug, Default)]
pub struct Match2 {
    inner: Mutex<Inner>,
    functions: RwLock<Functions>,
    /// Woken when tickets are queued, so the matcher runs at once.
    wake: Arc<Notify>,
    /// How the match functions' calls went (stats).
    calls: FunctionCalls,
}

/// Counts of match function calls, for `/_fakes/stats` and `/metrics`.
#[derive(Debug, Default)]
struct FunctionCalls {
    ok: AtomicU64,
    failed: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// A snapshot of [`FunctionCalls`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FunctionCallStats {
    /// Calls that answered (with or without matches).
    pub calls_ok: u64,
    /// Calls that failed (unreachable, refused, timed out, a bad answer): tickets stayed queued.
    pub calls_failed: u64,
    /// The latest failure, naming the function.
    pub last_error: Option<String>,
}

fn key(namespace: &str, name: &str) -> (String, String) {
    (namespace.to_owned(), name.to_owned())
}

impl Match2 {
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets rule sets, pools and tickets (registered match functions stay).
    pub fn reset(&self) {
        *self.inner.lock() = Inner::default();
    }

    /// Writes rule sets, pools and tickets as JSON (saved state); registered match functions
    /// are configuration, not state.
    pub fn save_to(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, &*self.inner.lock())
    }

    /// Replaces rule sets, pools and tickets with saved ones and wakes the matcher.
    pub fn restore_from(&self, saved: serde_json::Value) -> serde_json::Result<()> {
        *self.inner.lock() = serde_json::from_value(saved)?;
        self.wake.notify_one();
        Ok(())
    }

    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// Makes `name` a match function pools may name (an external `MakeMatches` client, say).
    pub fn register_function(&self, name: &str, function: Arc<dyn MatchFunction>) {
        self.functions.write().insert(name.to_owned(), function);
    }

    /// Counts one match function call; a failure keeps its message.
    pub fn record_call(&self, function: &str, result: Result<(), &str>) {
        match result {
            Ok(()) => {
                self.calls.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                self.calls.failed.fetch_add(1, Ordering::Relaxed);
                *self.calls.last_error.lock() = Some(format!("{function}: {error}"));
            }
        }
    }

    /// How match function calls went so far.
    pub fn call_stats(&self) -> FunctionCallStats {
        FunctionCallStats {
            calls_ok: self.calls.ok.load(Ordering::Relaxed),
            calls_failed: self.calls.failed.load(Ordering::Relaxed),
            last_error: self.calls.last_error.lock().clone(),
        }
    }

    /// The function serving `pool`: the override's `make_matches`, else `match_function`.
    pub fn function_for(&self, pool: &MatchPool) -> Option<Arc<dyn MatchFunction>> {
        let name = if pool.match_function_override.make_matches.is_empty() {
            pool.match_function.as_str()
        } else {
            pool.match_function_override.make_matches.as_str()
        };
        if let Some(function) = self.functions.read().get(name) {
            return Some(Arc::clone(function));
        }
        BUILT_IN_FUNCTIONS
            .contains(&name)
            .then(|| Arc::new(DefaultMatcher) as Arc<dyn MatchFunction>)
    }

    /// Whether pools may name `name`.
    pub fn knows_function(&self, name: &str) -> bool {
        BUILT_IN_FUNCTIONS.contains(&name) || self.functions.read().contains_key(name)
    }

    // ---- rule sets -------------------------------------------------------------------------

    pub fn create_ruleset(
        &self,
        namespace: &str,
        ruleset: RuleSetPayload,
    ) -> Result<(), Match2Error> {
        let mut inner = self.inner.lock();
        let k = key(namespace, &ruleset.name);
        if inner.rulesets.contains_key(&k) {
            return Err(Match2Error::RuleSetExists(ruleset.name));
        }
        if inner.rulesets.len() + inner.pools.len() >= MAX_CONFIG {
            return Err(Match2Error::TooMany);
        }
        inner.rulesets.insert(k, ruleset);
        Ok(())
    }

    pub fn ruleset(&self, namespace: &str, name: &str) -> Option<RuleSetPayload> {
        self.inner
            .lock()
            .rulesets
            .get(&key(namespace, name))
            .cloned()
    }

    pub fn rulesets(&self, namespace: &str) -> Vec<RuleSetPayload> {
        let inner = self.inner.lock();
        let mut list: Vec<RuleSetPayload> = inner
            .rulesets
            .iter()
            .filter(|((ns, _), _)| ns == namespace)
            .map(|(_, r)| r.clone())
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    pub fn update_ruleset(
        &self,
        namespace: &str,
        ruleset: RuleSetPayload,
    ) -> Result<(), Match2Error> {
        let mut inner = self.inner.lock();
        let slot = inner
            .rulesets
            .get_mut(&key(namespace, &ruleset.name))
            .ok_or_else(|| Match2Error::RuleSetNotFound(ruleset.name.clone()))?;
        *slot = ruleset;
        Ok(())
    }

    pub fn delete_ruleset(&self, namespace: &str, name: &str) -> Result<(), Match2Error> {
        let mut inner = self.inner.lock();
        if let Some(((_, pool), _)) = inner
            .pools
            .iter()
            .find(|((ns, _), p)| ns == namespace && p.rule_set == name)
        {
            return Err(Match2Error::RuleSetInUse(name.to_owned(), pool.clone()));
        }
        inner
            .rulesets
            .remove(&key(namespace, name))
            .map(|_| ())
            .ok_or_else(|| Match2Error::RuleSetNotFound(name.to_owned()))
    }

    // ---- pools -----------------------------------------------------------------------------

    /// Adds a pool whose rule set exists (the caller checked its session template).
    pub fn create_pool(&self, namespace: &str, pool: MatchPool) -> Result<(), Match2Error> {
        let mut inner = self.inner.lock();
        if !inner.rulesets.contains_key(&key(namespace, &pool.rule_set)) {
            return Err(Match2Error::RuleSetNotFound(pool.rule_set));
        }
        let k = key(namespace, &pool.name);
        if inner.pools.contains_key(&k) {
            return Err(Match2Error::PoolExists(pool.name));
        }
        if inner.rulesets.len() + inner.pools.len() >= MAX_CONFIG {
            return Err(Match2Error::TooMany);
        }
        inner.pools.insert(k, pool);
        Ok(())
    }

    pub fn pool(&self, namespace: &str, name: &str) -> Option<MatchPool> {
        self.inner.lock().pools.get(&key(namespace, name)).cloned()
    }

    pub fn pools(&self, namespace: &str) -> Vec<MatchPool> {
        let inner = self.inner.lock();
        let mut list: Vec<MatchPool> = inner
            .pools
            .iter()
            .filter(|((ns, _), _)| ns == namespace)
            .map(|(_, p)| p.clone())
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// Deletes a pool and its queued tickets (returned, so their players can be told).
    pub fn delete_pool(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Vec<TicketRecord>, Match2Error> {
        let mut inner = self.inner.lock();
        inner
            .pools
            .remove(&key(namespace, name))
            .ok_or_else(|| Match2Error::PoolNotFound(name.to_owned()))?;
        let gone: Vec<String> = inner
            .tickets
            .values()
            .filter(|t| t.namespace == namespace && t.pool == name)
            .map(|t| t.id.clone())
            .collect();
        Ok(gone
            .iter()
            .filter_map(|id| inner.tickets.remove(id))
            .filter(TicketRecord::is_queued)
            .collect())
    }

    // ---- tickets ---------------------------------------------------------------------------

    pub fn create_ticket(&self, new: NewTicket, id: String) -> Result<TicketRecord, Match2Error> {
        let now = Utc::now();
        let mut inner = self.inner.lock();
        let pool = inner
            .pools
            .get(&key(&new.namespace, &new.pool))
            .ok_or_else(|| Match2Error::PoolNotFound(new.pool.clone()))?;
        let expiration = if pool.ticket_expiration_seconds > 0 {
            pool.ticket_expiration_seconds
        } else {
            DEFAULT_TICKET_EXPIRATION_S
        };
        if let Some((player, existing)) = inner.tickets.values().find_map(|t| {
            (t.is_queued() && t.namespace == new.namespace && t.pool == new.pool)
                .then(|| {
                    new.players
                        .iter()
                        .find(|p| t.players.contains(p))
                        .map(|p| (p, t))
                })
                .flatten()
        }) {
            return Err(Match2Error::AlreadyQueued {
                player: player.clone(),
                ticket: existing.id.clone(),
                pool: new.pool,
            });
        }
        if inner.tickets.len() >= MAX_TICKETS {
            return Err(Match2Error::TooMany);
        }
        let ticket = TicketRecord {
            id: id.clone(),
            namespace: new.namespace,
            pool: new.pool,
            players: new.players,
            party_id: new.party_id,
            attributes: new.attributes,
            latencies: new.latencies,
            created_at: now,
            expires_at: now + chrono::Duration::seconds(i64::from(expiration)),
            session_id: None,
        };
        inner.tickets.insert(id, ticket.clone());
        // The caller wakes the matching loop (see `waker`) once it has told the players.
        Ok(ticket)
    }

    pub fn ticket(&self, namespace: &str, id: &str) -> Option<TicketRecord> {
        self.inner
            .lock()
            .tickets
            .get(id)
            .filter(|t| t.namespace == namespace)
            .cloned()
    }

    /// Tickets that carry `user_id`, oldest first, optionally of one pool.
    pub fn tickets_of(
        &self,
        namespace: &str,
        user_id: &str,
        pool: Option<&str>,
    ) -> Vec<TicketRecord> {
        let inner = self.inner.lock();
        let mut list: Vec<TicketRecord> = inner
            .tickets
            .values()
            .filter(|t| t.namespace == namespace && t.players.iter().any(|p| p == user_id))
            .filter(|t| pool.is_none_or(|p| t.pool == p))
            .cloned()
            .collect();
        list.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        list
    }

    /// Deletes a queued ticket of `user_id` (one of its players).
    pub fn delete_ticket(
        &self,
        namespace: &str,
        id: &str,
        user_id: Option<&str>,
    ) -> Result<TicketRecord, Match2Error> {
        let mut inner = self.inner.lock();
        let ticket = inner
            .tickets
            .get(id)
            .filter(|t| t.namespace == namespace)
            .ok_or_else(|| Match2Error::TicketNotFound(id.to_owned()))?;
        if user_id.is_some_and(|u| !ticket.players.iter().any(|p| p == u)) {
            return Err(Match2Error::NotOwner(id.to_owned()));
        }
        if !ticket.is_queued() {
            return Err(Match2Error::AlreadyMatched(id.to_owned()));
        }
        Ok(inner.tickets.remove(id).expect("checked above"))
    }

    /// Removes the queued tickets of party `party_id` whose players are not `members` (the
    /// party's joined members now, `None` when it is gone); returns them.
    pub fn cancel_party(
        &self,
        namespace: &str,
        party_id: &str,
        members: Option<&[String]>,
    ) -> Vec<TicketRecord> {
        let same = |players: &[String]| {
            members.is_some_and(|m| {
                let mut a = m.to_vec();
                let mut b = players.to_vec();
                a.sort_unstable();
                b.sort_unstable();
                a == b
            })
        };
        let mut inner = self.inner.lock();
        let ids: Vec<String> = inner
            .tickets
            .values()
            .filter(|t| t.namespace == namespace && t.party_id == party_id && t.is_queued())
            .filter(|t| !same(&t.players))
            .map(|t| t.id.clone())
            .collect();
        ids.iter()
            .filter_map(|id| inner.tickets.remove(id))
            .collect()
    }

    /// Removes every ticket whose time is up at `now`; returns the ones still queued (their
    /// players are told they expired). Matched tickets just stop being answered.
    pub fn take_expired(&self, now: DateTime<Utc>) -> Vec<TicketRecord> {
        let mut inner = self.inner.lock();
        let due: Vec<String> = inner
            .tickets
            .values()
            .filter(|t| t.expires_at <= now)
            .map(|t| t.id.clone())
            .collect();
        due.iter()
            .filter_map(|id| inner.tickets.remove(id))
            .filter(TicketRecord::is_queued)
            .collect()
    }

    /// Ids of queued tickets (of `pool`, if given) whose creation time passes `due`.
    pub fn queued_ids(
        &self,
        pool: Option<&str>,
        due: impl Fn(DateTime<Utc>) -> bool,
    ) -> Vec<String> {
        self.inner
            .lock()
            .tickets
            .values()
            .filter(|t| t.is_queued() && pool.is_none_or(|p| t.pool == p) && due(t.created_at))
            .map(|t| t.id.clone())
            .collect()
    }

    /// Makes `ids` (all still queued) expire now (fault injection's expiry storm).
    pub fn expire_now(&self, ids: &[String], now: DateTime<Utc>) {
        let mut inner = self.inner.lock();
        for id in ids {
            if let Some(t) = inner.tickets.get_mut(id).filter(|t| t.is_queued()) {
                t.expires_at = now;
            }
        }
    }

    /// Queued tickets grouped by pool, with each pool's rule set data.
    pub fn work(&self) -> Vec<PoolWork> {
        let inner = self.inner.lock();
        let mut by_pool: HashMap<(String, String), Vec<Ticket>> = HashMap::new();
        for t in inner.tickets.values().filter(|t| t.is_queued()) {
            by_pool
                .entry(key(&t.namespace, &t.pool))
                .or_default()
                .push(Ticket {
                    id: t.id.clone(),
                    players: t.players.clone(),
                    party_id: t.party_id.clone(),
                    attributes: t.attributes.clone(),
                    latencies: t.latencies.clone(),
                    created_at: t.created_at,
                });
        }
        by_pool
            .into_iter()
            .filter_map(|((namespace, name), tickets)| {
                let pool = inner.pools.get(&key(&namespace, &name))?.clone();
                let rules = inner
                    .rulesets
                    .get(&key(&namespace, &pool.rule_set))?
                    .data
                    .clone();
                Some(PoolWork {
                    namespace,
                    pool,
                    rules,
                    tickets,
                })
            })
            .collect()
    }

    /// Marks `ids` matched into `session_id`, all or none: `None` if one is no longer queued
    /// (deleted or expired meanwhile), else their records.
    pub fn commit(
        &self,
        namespace: &str,
        ids: &[String],
        session_id: &str,
    ) -> Option<Vec<TicketRecord>> {
        let mut inner = self.inner.lock();
        let all_queued = ids.iter().all(|id| {
            inner
                .tickets
                .get(id)
                .is_some_and(|t| t.namespace == namespace && t.is_queued())
        });
        if !all_queued {
            return None;
        }
        let mut matched = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(t) = inner.tickets.get_mut(id) {
                t.session_id = Some(session_id.to_owned());
                matched.push(t.clone());
            }
        }
        Some(matched)
    }

    /// Queued tickets right now (for stats and tests).
    pub fn queued(&self) -> usize {
        self.inner
            .lock()
            .tickets
            .values()
            .filter(|t| t.is_queued())
            .count()
    }
}
