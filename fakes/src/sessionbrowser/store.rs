//! Session Browser game sessions: who is in them, their settings, and the joinable rule.
//!
//! Owns the sessions of every namespace behind one mutex, with no `.await` under it. It knows
//! nothing of dedicated servers: whether a dedicated session's server is claimed is passed in
//! by the caller (the HTTP layer asks the DSMC [`crate::dsmc::fleet`]), so the two stores never
//! lock each other and cannot deadlock.
//!
//! Roster rules:
//! - a user is either a player or a spectator; `all_players` is both. Adding a user already in
//!   the session is idempotent (with the other role it moves them, taking no new seat);
//! - capacity is `max_player` if > 0, else `max_internal_player` if > 0, else unlimited (up to
//!   [`MAX_ROSTER`]); it counts players and spectators alike. Adding past it fails with
//!   [`StoreError::Full`];
//! - `current_player` and `current_internal_player` both equal the roster size (the spec's
//!   update body carries only `game_max_player`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Serialize;

/// Most sessions the store holds at once; past it creates fail (500) rather than the process
/// running out of memory under a runaway client.
pub const MAX_SESSIONS: usize = 200_000;
/// Most members (players + spectators) one session holds, even with unlimited capacity.
pub const MAX_ROSTER: usize = 1_000;

/// `dedicated` (a DSMC server hosts the game) or `p2p` (a player hosts it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SessionType {
    Dedicated,
    P2p,
}

impl SessionType {
    /// Parses the AGS spelling; anything else is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "dedicated" => Some(Self::Dedicated),
            "p2p" => Some(Self::P2p),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dedicated => "dedicated",
            Self::P2p => "p2p",
        }
    }
}

/// A session's game settings (`models.GameSessionSetting` minus the player counts, which the
/// roster determines).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SessionSettings {
    pub mode: String,
    pub map_name: String,
    pub num_bot: i32,
    pub max_player: i32,
    pub max_internal_player: i32,
    pub allow_join_in_progress: bool,
    /// Empty: no password.
    pub password: String,
    /// Free-form game settings.
    pub settings: serde_json::Map<String, serde_json::Value>,
}

/// What a create asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSession {
    pub namespace: String,
    pub session_type: SessionType,
    pub game_version: String,
    pub username: String,
    /// The hosting user of a p2p session.
    pub owner: Option<String>,
    pub settings: SessionSettings,
}

/// A snapshot of one game session.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GameSession {
    pub id: String,
    pub namespace: String,
    pub session_type: SessionType,
    pub game_version: String,
    pub username: String,
    pub owner: Option<String>,
    pub created_at: DateTime<Utc>,
    pub settings: SessionSettings,
    pub players: Vec<String>,
    pub spectators: Vec<String>,
    seq: u64,
}

impl GameSession {
    /// Seats, or `None` for unlimited.
    pub fn capacity(&self) -> Option<usize> {
        [self.settings.max_player, self.settings.max_internal_player]
            .into_iter()
            .find(|&n| n > 0)
            .and_then(|n| usize::try_from(n).ok())
    }

    /// Players plus spectators.
    pub fn roster_len(&self) -> usize {
        self.players.len() + self.spectators.len()
    }

    /// More members than seats: possible after an update lowers `max_player`.
    pub fn is_over_capacity(&self) -> bool {
        self.capacity().is_some_and(|cap| self.roster_len() > cap)
    }

    pub fn is_member(&self, user_id: &str) -> bool {
        self.players
            .iter()
            .chain(&self.spectators)
            .any(|u| u == user_id)
    }

    /// Players then spectators.
    pub fn all_players(&self) -> Vec<String> {
        self.players
            .iter()
            .chain(&self.spectators)
            .cloned()
            .collect()
    }

    pub fn current_internal_player(&self) -> i32 {
        i32::try_from(self.roster_len()).unwrap_or(i32::MAX)
    }

    pub fn current_player(&self) -> i32 {
        self.current_internal_player()
    }

    /// The joinable rule (AGS's own is undocumented; this one is ours): a session is joinable
    /// while it is not over capacity and has somewhere to play — a p2p session always (its host
    /// is a player), a dedicated one once the DSMC session with the same id has a claimed
    /// (`BUSY`) server. A full session is still joinable in this sense (the game is on); adding
    /// a member to it fails with "session is full".
    pub fn joinable(&self, server_claimed: bool) -> bool {
        let has_host = match self.session_type {
            SessionType::P2p => true,
            SessionType::Dedicated => server_claimed,
        };
        has_host && !self.is_over_capacity()
    }
}

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("session {0} not found")]
    NotFound(String),
    #[error("session is full")]
    Full,
    #[error("wrong password")]
    WrongPassword,
    #[error("the session browser already holds {MAX_SESSIONS} sessions")]
    TooManySessions,
}

/// Static filters of a query; the joinable and server-status filters need the fleet and are
/// applied by the caller.
#[derive(Debug, Clone, Copy)]
pub struct QueryFilter<'a> {
    pub session_type: SessionType,
    pub game_mode: Option<&'a str>,
    pub game_version: Option<&'a str>,
    /// A member or the p2p host.
    pub user_id: Option<&'a str>,
}

/// Counters since start or the last reset, plus current sizes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SessionStats {
    pub sessions: usize,
    pub dedicated: usize,
    pub p2p: usize,
    /// Members over all sessions.
    pub members: usize,
    pub created: u64,
    pub deleted: u64,
    pub players_added: u64,
    pub players_removed: u64,
    pub joins_refused_full: u64,
}

/// All game sessions.
#[derive(Debug, Default)]
pub struct SessionStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Inner {
    /// namespace → session id → session.
    sessions: HashMap<String, HashMap<String, GameSession>>,
    len: usize,
    next_seq: u64,
    stats: SessionStats,
}

impl Inner {
    fn session_mut(&mut self, namespace: &str, id: &str) -> Result<&mut GameSession, StoreError> {
        self.sessions
            .get_mut(namespace)
            .and_then(|s| s.get_mut(id))
            .ok_or_else(|| StoreError::NotFound(id.to_owned()))
    }
}

impl SessionStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes every session as JSON (saved state).
    pub fn save_to(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, &*self.inner.lock())
    }

    /// Replaces every session with saved ones.
    pub fn restore_from(&self, saved: serde_json::Value) -> serde_json::Result<()> {
        *self.inner.lock() = serde_json::from_value(saved)?;
        Ok(())
    }

    /// Drops every session and zeroes the counters.
    pub fn reset(&self) {
        *self.inner.lock() = Inner::default();
    }

    /// Creates a session with a new 32-hex id and an empty roster.
    pub fn create(&self, new: NewSession) -> Result<GameSession, StoreError> {
        let created_at = Utc::now();
        let mut inner = self.inner.lock();
        if inner.len >= MAX_SESSIONS {
            return Err(StoreError::TooManySessions);
        }
        let session = GameSession {
            id: uuid::Uuid::new_v4().simple().to_string(),
            namespace: new.namespace,
            session_type: new.session_type,
            game_version: new.game_version,
            username: new.username,
            owner: new.owner,
            created_at,
            settings: new.settings,
            players: Vec::new(),
            spectators: Vec::new(),
            seq: inner.next_seq,
        };
        inner.next_seq += 1;
        inner.len += 1;
        inner.stats.created += 1;
        inner
            .sessions
            .entry(session.namespace.clone())
            .or_default()
            .insert(session.id.clone(), session.clone());
        Ok(session)
    }

    pub fn get(&self, namespace: &str, id: &str) -> Option<GameSession> {
        self.inner.lock().sessions.get(namespace)?.get(id).cloned()
    }

    /// Removes the session and returns it as it was.
    pub fn delete(&self, namespace: &str, id: &str) -> Option<GameSession> {
        let mut inner = self.inner.lock();
        let sessions = inner.sessions.get_mut(namespace)?;
        let removed = sessions.remove(id)?;
        if sessions.is_empty() {
            inner.sessions.remove(namespace);
        }
        inner.len -= 1;
        inner.stats.deleted += 1;
        Some(removed)
    }

    /// Adds `user_id` as a player or spectator (see the module doc for the rules).
    pub fn add_player(
        &self,
        namespace: &str,
        id: &str,
        user_id: &str,
        as_spectator: bool,
    ) -> Result<GameSession, StoreError> {
        let mut inner = self.inner.lock();
        let result = add_member(inner.session_mut(namespace, id)?, user_id, as_spectator);
        match result {
            Ok(added) => {
                inner.stats.players_added += u64::from(added);
                inner.session_mut(namespace, id).cloned()
            }
            Err(e) => {
                inner.stats.joins_refused_full += 1;
                Err(e)
            }
        }
    }

    /// Removes `user_id`; the flag says whether they were in the session.
    pub fn remove_player(
        &self,
        namespace: &str,
        id: &str,
        user_id: &str,
    ) -> Result<(bool, GameSession), StoreError> {
        let mut inner = self.inner.lock();
        let session = inner.session_mut(namespace, id)?;
        let before = session.roster_len();
        session.players.retain(|u| u != user_id);
        session.spectators.retain(|u| u != user_id);
        let removed = session.roster_len() < before;
        let snapshot = session.clone();
        inner.stats.players_removed += u64::from(removed);
        Ok((removed, snapshot))
    }

    /// Sets `max_player` (already checked non-negative).
    pub fn update(
        &self,
        namespace: &str,
        id: &str,
        max_player: i32,
    ) -> Result<GameSession, StoreError> {
        let mut inner = self.inner.lock();
        let session = inner.session_mut(namespace, id)?;
        session.settings.max_player = max_player;
        Ok(session.clone())
    }

    /// Merges `settings` into the free-form settings, key by key.
    pub fn merge_settings(
        &self,
        namespace: &str,
        id: &str,
        settings: serde_json::Map<String, serde_json::Value>,
    ) -> Result<GameSession, StoreError> {
        let mut inner = self.inner.lock();
        let session = inner.session_mut(namespace, id)?;
        session.settings.settings.extend(settings);
        Ok(session.clone())
    }

    /// Checks the password and, for a user caller, seats them as a player.
    pub fn join(
        &self,
        namespace: &str,
        id: &str,
        password: &str,
        user_id: Option<&str>,
    ) -> Result<GameSession, StoreError> {
        let mut inner = self.inner.lock();
        let session = inner.session_mut(namespace, id)?;
        if !session.settings.password.is_empty() && session.settings.password != password {
            return Err(StoreError::WrongPassword);
        }
        let Some(user_id) = user_id else {
            return Ok(session.clone());
        };
        match add_member(session, user_id, false) {
            Ok(added) => {
                let snapshot = session.clone();
                inner.stats.players_added += u64::from(added);
                Ok(snapshot)
            }
            Err(e) => {
                inner.stats.joins_refused_full += 1;
                Err(e)
            }
        }
    }

    /// Sessions of `namespace` passing `filter`, oldest first.
    pub fn query(&self, namespace: &str, filter: &QueryFilter<'_>) -> Vec<GameSession> {
        let inner = self.inner.lock();
        let Some(sessions) = inner.sessions.get(namespace) else {
            return Vec::new();
        };
        let mut found: Vec<GameSession> = sessions
            .values()
            .filter(|s| s.session_type == filter.session_type)
            .filter(|s| filter.game_mode.is_none_or(|m| s.settings.mode == m))
            .filter(|s| filter.game_version.is_none_or(|v| s.game_version == v))
            .filter(|s| {
                filter
                    .user_id
                    .is_none_or(|u| s.is_member(u) || s.owner.as_deref() == Some(u))
            })
            .cloned()
            .collect();
        found.sort_by_key(|s| s.seq);
        found
    }

    /// Sessions any of `user_ids` is a member or host of, oldest first.
    pub fn by_users(&self, namespace: &str, user_ids: &[&str]) -> Vec<GameSession> {
        let inner = self.inner.lock();
        let Some(sessions) = inner.sessions.get(namespace) else {
            return Vec::new();
        };
        let mut found: Vec<GameSession> = sessions
            .values()
            .filter(|s| {
                user_ids
                    .iter()
                    .any(|u| s.is_member(u) || s.owner.as_deref() == Some(u))
            })
            .cloned()
            .collect();
        found.sort_by_key(|s| s.seq);
        found
    }

    pub fn stats(&self) -> SessionStats {
        let inner = self.inner.lock();
        let mut stats = inner.stats.clone();
        for session in inner.sessions.values().flat_map(HashMap::values) {
            stats.sessions += 1;
            stats.members += session.roster_len();
            match session.session_type {
                SessionType::Dedicated => stats.dedicated += 1,
                SessionType::P2p => stats.p2p += 1,
            }
        }
        stats
    }
}

/// Seats `user_id`; `Ok(true)` if they took a new seat, `Ok(false)` if they were already in.
fn add_member(
    session: &mut GameSession,
    user_id: &str,
    as_spectator: bool,
) -> Result<bool, StoreError> {
    let (target, other) = if as_spectator {
        (&mut session.spectators, &mut session.players)
    } else {
        (&mut session.players, &mut session.spectators)
    };
    if target.iter().any(|u| u == user_id) {
        return Ok(false);
    }
    if let Some(pos) = other.iter().position(|u| u == user_id) {
        // Switching role keeps the seat.
        other.remove(pos);
        target.push(user_id.to_owned());
        return Ok(false);
    }
    let limit = session.capacity().unwrap_or(MAX_ROSTER).min(MAX_ROSTER);
    if session.roster_len() >= limit {
        return Err(StoreError::Full);
    }
    let list = if as_spectator {
        &mut session.spectators
    } else {
        &mut session.players
    };
    list.push(user_id.to_owned());
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(max_player: i32, max_internal_player: i32) -> SessionSettings {
        SessionSettings {
            mode: "1v1".into(),
            map_name: "map".into(),
            num_bot: 0,
            max_player,
            max_internal_player,
            allow_join_in_progress: true,
            password: String::new(),
            settings: serde_json::Map::new(),
        }
    }

    fn new(session_type: SessionType, settings: SessionSettings) -> NewSession {
        NewSession {
            namespace: "ns".into(),
            session_type,
            game_version: "1.0".into(),
            username: "host".into(),
            owner: None,
            settings,
        }
    }

    #[test]
    fn tutorial_parameters_seat_two_players_and_are_joinable_after_the_claim() {
        let store = SessionStore::new();
        let s = store
            .create(new(SessionType::Dedicated, settings(0, 2)))
            .expect("created");
        assert_eq!(s.capacity(), Some(2));
        assert!(!s.joinable(false), "no server yet");
        store.add_player("ns", &s.id, "a", false).expect("a");
        let s = store.add_player("ns", &s.id, "b", false).expect("b");
        assert!(s.joinable(true));
        assert_eq!((s.current_player(), s.current_internal_player()), (2, 2));
        assert_eq!(
            store.add_player("ns", &s.id, "c", false),
            Err(StoreError::Full)
        );
    }

    #[test]
    fn adding_twice_is_idempotent_and_switching_role_keeps_the_seat() {
        let store = SessionStore::new();
        let s = store
            .create(new(SessionType::P2p, settings(1, 0)))
            .expect("created");
        store.add_player("ns", &s.id, "a", false).expect("first");
        store.add_player("ns", &s.id, "a", false).expect("again");
        let s = store
            .add_player("ns", &s.id, "a", true)
            .expect("to spectator");
        assert_eq!(
            (s.players.len(), s.spectators.clone()),
            (0, vec!["a".to_owned()])
        );
        assert_eq!(s.all_players(), vec!["a".to_owned()]);
    }

    #[test]
    fn lowering_max_player_below_the_roster_makes_it_not_joinable() {
        let store = SessionStore::new();
        let s = store
            .create(new(SessionType::P2p, settings(0, 0)))
            .expect("created");
        assert_eq!(s.capacity(), None);
        store.add_player("ns", &s.id, "a", false).expect("a");
        store.add_player("ns", &s.id, "b", false).expect("b");
        let s = store.update("ns", &s.id, 1).expect("updated");
        assert!(s.is_over_capacity());
        assert!(!s.joinable(false));
        assert_eq!(s.current_player(), 2, "the roster's size");
        let (removed, s) = store.remove_player("ns", &s.id, "b").expect("removed");
        assert!(removed);
        assert!(s.joinable(false));
        assert_eq!(s.current_player(), 1);
    }

    #[test]
    fn join_checks_the_password() {
        let store = SessionStore::new();
        let mut with_password = settings(2, 0);
        with_password.password = "secret".into();
        let s = store
            .create(new(SessionType::P2p, with_password))
            .expect("created");
        assert_eq!(
            store.join("ns", &s.id, "nope", Some("a")),
            Err(StoreError::WrongPassword)
        );
        let s = store
            .join("ns", &s.id, "secret", Some("a"))
            .expect("joined");
        assert_eq!(s.players, vec!["a".to_owned()]);
    }

    #[test]
    fn delete_removes_and_reports_stats() {
        let store = SessionStore::new();
        let s = store
            .create(new(SessionType::Dedicated, settings(0, 2)))
            .expect("created");
        assert!(store.delete("ns", &s.id).is_some());
        assert!(store.delete("ns", &s.id).is_none());
        let stats = store.stats();
        assert_eq!((stats.sessions, stats.created, stats.deleted), (0, 1, 1));
    }
}
