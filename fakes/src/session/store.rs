//! Session v2 state: configuration templates and game sessions, their members and the
//! dedicated server each one got (`DSInformation`).
//!
//! Everything sits behind one mutex with no `.await` under it, like the other stores. The store
//! knows no HTTP, no wire types and no fleet: the routes convert snapshots at the edge, and
//! [`super::ds`] drives a session's server through `REQUESTED → AVAILABLE` (or
//! `FAILED_TO_REQUEST`) by calling [`GameSessions::set_ds`].
//!
//! Rules (AGS documents them; where it is silent the choice is ours and said so):
//! - a session copies its template when it is created; later template edits do not change it;
//! - members are `INVITED` (an invite, or a match when the template has no `autoJoin`) or
//!   `JOINED`; leaving marks a member `LEFT` (kept in the list, as AGS shows history), and a
//!   `LEFT` member may join again;
//! - `isFull` counts `JOINED` members against `maxPlayers`; a join past it is refused;
//! - joinability `CLOSED` refuses every join, `INVITE_ONLY` needs an invite, `OPEN` lets any
//!   user of the namespace join;
//! - the leader is the creator (a user) or the first member of a match; when the leader leaves
//!   the next joined member leads (ours);
//! - every change bumps `version`; a PATCH must name the current version (409 otherwise).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde_json::{Map, Value};

use accelbyte::models::session::{ds_status, member_status};

/// Most templates and sessions kept, so a runaway client cannot exhaust memory.
pub const MAX_TEMPLATES: usize = 10_000;
pub const MAX_SESSIONS: usize = 200_000;

/// A member's or server's status: one of AGS's constants (an alias, so saved state reads it
/// back as the constant, see [`crate::durable::wallclock::session_status`]).
pub type Status = &'static str;

/// A configuration template (`apimodels.CreateConfigurationTemplateRequest`, what fakes uses).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Template {
    pub namespace: String,
    pub name: String,
    /// `DS`, `P2P` or `NONE`.
    pub kind: String,
    pub joinability: String,
    pub min_players: i32,
    pub max_players: i32,
    pub invite_timeout: i32,
    pub inactive_timeout: i32,
    pub client_version: String,
    pub deployment: String,
    pub requested_regions: Vec<String>,
    pub persistent: bool,
    pub text_chat: bool,
    pub auto_join: bool,
    pub ds_source: String,
    pub attributes: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One member of a session.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    pub user_id: String,
    #[serde(with = "crate::durable::wallclock::session_status")]
    pub status: Status,
    #[serde(with = "crate::durable::wallclock::session_status")]
    pub previous_status: Status,
    pub updated_at: DateTime<Utc>,
}

impl Member {
    /// Moves `user_id` in `members` (a game session's or a party's) to `status`, keeping the
    /// status it had as `previous_status`; a user not yet listed is added.
    pub fn set_status(
        members: &mut Vec<Member>,
        user_id: &str,
        status: Status,
        now: DateTime<Utc>,
    ) {
        if let Some(member) = members.iter_mut().find(|m| m.user_id == user_id) {
            member.previous_status = member.status;
            member.status = status;
            member.updated_at = now;
        } else {
            members.push(Member {
                user_id: user_id.to_owned(),
                status,
                previous_status: "",
                updated_at: now,
            });
        }
    }
}

/// A team of a matched session: its users and the tickets (parties) they came in.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct TeamRecord {
    pub user_ids: Vec<String>,
    /// (party or ticket id, its users).
    pub parties: Vec<(String, Vec<String>)>,
}

/// The dedicated server a session got, as the fleet reported it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServerRecord {
    pub pod_name: String,
    pub ip: String,
    pub port: u16,
    pub region: String,
    pub deployment: String,
    pub game_version: String,
    pub status: String,
    pub last_update: DateTime<Utc>,
}

/// A session's `DSInformation`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DsState {
    /// One of [`ds_status`]'s values, or empty for sessions without a server (P2P, NONE).
    #[serde(with = "crate::durable::wallclock::session_status")]
    pub status: Status,
    pub requested_at: Option<DateTime<Utc>>,
    pub server: Option<ServerRecord>,
    /// Why the request failed (`FAILED_TO_REQUEST`).
    pub error: String,
}

/// One game session.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GameSession {
    pub id: String,
    pub namespace: String,
    pub template: Template,
    pub joinability: String,
    pub min_players: i32,
    pub max_players: i32,
    pub attributes: Map<String, Value>,
    pub created_by: String,
    pub leader_id: String,
    pub match_pool: String,
    pub members: Vec<Member>,
    pub teams: Vec<TeamRecord>,
    pub ticket_ids: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
    pub ds: DsState,
}

impl GameSession {
    pub fn joined(&self) -> usize {
        self.members
            .iter()
            .filter(|m| m.status == member_status::JOINED || m.status == member_status::CONNECTED)
            .count()
    }

    pub fn is_full(&self) -> bool {
        self.max_players > 0 && self.joined() >= usize::try_from(self.max_players).unwrap_or(0)
    }

    pub fn member(&self, user_id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.user_id == user_id)
    }

    /// Members that are invited or in the session (who hears about it).
    pub fn audience(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| m.status != member_status::LEFT && m.status != member_status::KICKED)
            .map(|m| m.user_id.clone())
            .collect()
    }

    fn touch(&mut self, now: DateTime<Utc>) {
        self.updated_at = now;
        self.version += 1;
    }

    fn set_member(&mut self, user_id: &str, status: &'static str, now: DateTime<Utc>) {
        Member::set_status(&mut self.members, user_id, status, now);
    }
}

/// What a new session is made of (from the create body, or from a match).
#[derive(Debug, Clone, Default)]
pub struct NewGameSession {
    pub namespace: String,
    pub template_name: String,
    pub created_by: String,
    /// Joined at once (the creating user).
    pub joined: Vec<String>,
    /// Invited (or joined, when the template auto-joins): matched players.
    pub invited: Vec<String>,
    pub attributes: Option<Map<String, Value>>,
    pub joinability: Option<String>,
    pub min_players: Option<i32>,
    pub max_players: Option<i32>,
    pub requested_regions: Option<Vec<String>>,
    pub match_pool: String,
    pub teams: Vec<TeamRecord>,
    pub ticket_ids: Vec<String>,
}

/// What the PATCH body may change.
#[derive(Debug, Clone, Default)]
pub struct SessionPatch {
    pub version: i32,
    pub attributes: Option<Map<String, Value>>,
    pub joinability: Option<String>,
    pub min_players: Option<i32>,
    pub max_players: Option<i32>,
}

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("configuration template {0} not found")]
    TemplateNotFound(String),
    #[error("configuration template {0} already exists")]
    TemplateExists(String),
    #[error("game session {0} not found")]
    NotFound(String),
    #[error("user {0} is not a member of the game session")]
    NotMember(String),
    #[error("game session is full")]
    Full,
    #[error("game session is closed")]
    Closed,
    #[error("game session is invite only and user {0} is not invited")]
    NotInvited(String),
    #[error("version {given} does not match the game session's version {current}")]
    VersionMismatch { given: i32, current: i32 },
    #[error("only the leader may do this")]
    NotLeader,
    #[error("too many templates or sessions")]
    TooMany,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Inner {
    /// (namespace, name) → template.
    #[serde(with = "crate::durable::wallclock::pairs")]
    templates: HashMap<(String, String), Template>,
    sessions: HashMap<String, GameSession>,
}

/// Session v2's store.
#[derive(Debug, Default)]
pub struct GameSessions {
    inner: Mutex<Inner>,
}

impl GameSessions {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn reset(&self) {
        *self.inner.lock() = Inner::default();
    }

    /// Writes templates and game sessions as JSON (saved state).
    pub fn save_to(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, &*self.inner.lock())
    }

    /// Replaces templates and game sessions with saved ones.
    pub fn restore_from(&self, saved: serde_json::Value) -> serde_json::Result<()> {
        *self.inner.lock() = serde_json::from_value(saved)?;
        Ok(())
    }

    // ---- templates -------------------------------------------------------------------------

    pub fn create_template(&self, template: Template) -> Result<Template, SessionError> {
        let mut inner = self.inner.lock();
        let key = (template.namespace.clone(), template.name.clone());
        if inner.templates.contains_key(&key) {
            return Err(SessionError::TemplateExists(template.name));
        }
        if inner.templates.len() >= MAX_TEMPLATES {
            return Err(SessionError::TooMany);
        }
        inner.templates.insert(key, template.clone());
        Ok(template)
    }

    pub fn template(&self, namespace: &str, name: &str) -> Option<Template> {
        self.inner
            .lock()
            .templates
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Templates of `namespace`, by name.
    pub fn templates(&self, namespace: &str) -> Vec<Template> {
        let inner = self.inner.lock();
        let mut list: Vec<Template> = inner
            .templates
            .values()
            .filter(|t| t.namespace == namespace)
            .cloned()
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    pub fn delete_template(&self, namespace: &str, name: &str) -> Result<(), SessionError> {
        self.inner
            .lock()
            .templates
            .remove(&(namespace.to_owned(), name.to_owned()))
            .map(|_| ())
            .ok_or_else(|| SessionError::TemplateNotFound(name.to_owned()))
    }

    // ---- sessions --------------------------------------------------------------------------

    /// Creates a session from its template. A `DS` template's session starts in
    /// `NEED_TO_REQUEST`; the caller then asks the fleet (see [`super::ds`]).
    pub fn create(&self, new: NewGameSession, id: String) -> Result<GameSession, SessionError> {
        let now = Utc::now();
        let mut inner = self.inner.lock();
        let template = inner
            .templates
            .get(&(new.namespace.clone(), new.template_name.clone()))
            .cloned()
            .ok_or_else(|| SessionError::TemplateNotFound(new.template_name.clone()))?;
        if inner.sessions.len() >= MAX_SESSIONS {
            return Err(SessionError::TooMany);
        }
        let invited_status = if template.auto_join {
            member_status::JOINED
        } else {
            member_status::INVITED
        };
        let mut members = Vec::new();
        for user in &new.joined {
            members.push(Member {
                user_id: user.clone(),
                status: member_status::JOINED,
                previous_status: "",
                updated_at: now,
            });
        }
        for user in &new.invited {
            if !new.joined.contains(user) {
                members.push(Member {
                    user_id: user.clone(),
                    status: invited_status,
                    previous_status: "",
                    updated_at: now,
                });
            }
        }
        let leader_id = members
            .first()
            .map(|m| m.user_id.clone())
            .unwrap_or_default();
        let ds_status = if template.kind.eq_ignore_ascii_case("DS") {
            ds_status::NEED_TO_REQUEST
        } else {
            ""
        };
        let session = GameSession {
            id: id.clone(),
            namespace: new.namespace,
            joinability: new
                .joinability
                .unwrap_or_else(|| template.joinability.clone()),
            min_players: new.min_players.unwrap_or(template.min_players),
            max_players: new.max_players.unwrap_or(template.max_players),
            attributes: new
                .attributes
                .unwrap_or_else(|| template.attributes.clone()),
            template: Template {
                requested_regions: new
                    .requested_regions
                    .unwrap_or_else(|| template.requested_regions.clone()),
                ..template
            },
            created_by: new.created_by,
            leader_id,
            match_pool: new.match_pool,
            members,
            teams: new.teams,
            ticket_ids: new.ticket_ids,
            created_at: now,
            updated_at: now,
            version: 1,
            ds: DsState {
                status: ds_status,
                requested_at: None,
                server: None,
                error: String::new(),
            },
        };
        inner.sessions.insert(id, session.clone());
        Ok(session)
    }

    pub fn get(&self, namespace: &str, id: &str) -> Option<GameSession> {
        self.inner
            .lock()
            .sessions
            .get(id)
            .filter(|s| s.namespace == namespace)
            .cloned()
    }

    /// Sessions where `user_id` is invited or joined, newest first.
    pub fn of_user(&self, namespace: &str, user_id: &str) -> Vec<GameSession> {
        let inner = self.inner.lock();
        let mut list: Vec<GameSession> = inner
            .sessions
            .values()
            .filter(|s| s.namespace == namespace)
            .filter(|s| s.audience().iter().any(|u| u == user_id))
            .cloned()
            .collect();
        list.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        list
    }

    fn with_session<T>(
        &self,
        namespace: &str,
        id: &str,
        change: impl FnOnce(&mut GameSession, DateTime<Utc>) -> Result<T, SessionError>,
    ) -> Result<T, SessionError> {
        let now = Utc::now();
        let mut inner = self.inner.lock();
        let session = inner
            .sessions
            .get_mut(id)
            .filter(|s| s.namespace == namespace)
            .ok_or_else(|| SessionError::NotFound(id.to_owned()))?;
        change(session, now)
    }

    /// `user_id` joins: allowed when invited, or when the session is `OPEN`; a member already
    /// joined joins again without change.
    pub fn join(
        &self,
        namespace: &str,
        id: &str,
        user_id: &str,
    ) -> Result<GameSession, SessionError> {
        self.with_session(namespace, id, |s, now| {
            let status = s.member(user_id).map(|m| m.status);
            if matches!(
                status,
                Some(member_status::JOINED | member_status::CONNECTED)
            ) {
                return Ok(s.clone());
            }
            let invited = status == Some(member_status::INVITED);
            match s.joinability.as_str() {
                "CLOSED" => return Err(SessionError::Closed),
                "OPEN" => {}
                _ if invited => {}
                _ => return Err(SessionError::NotInvited(user_id.to_owned())),
            }
            if s.is_full() {
                return Err(SessionError::Full);
            }
            s.set_member(user_id, member_status::JOINED, now);
            if s.leader_id.is_empty() {
                s.leader_id = user_id.to_owned();
            }
            s.touch(now);
            Ok(s.clone())
        })
    }

    /// `user_id` leaves (marked `LEFT`); a leaving leader hands over to the next joined member.
    pub fn leave(
        &self,
        namespace: &str,
        id: &str,
        user_id: &str,
    ) -> Result<GameSession, SessionError> {
        self.with_session(namespace, id, |s, now| {
            if s.member(user_id)
                .is_none_or(|m| m.status == member_status::LEFT)
            {
                return Err(SessionError::NotMember(user_id.to_owned()));
            }
            s.set_member(user_id, member_status::LEFT, now);
            if s.leader_id == user_id {
                s.leader_id = s
                    .members
                    .iter()
                    .find(|m| m.status == member_status::JOINED)
                    .map(|m| m.user_id.clone())
                    .unwrap_or_default();
            }
            s.touch(now);
            Ok(s.clone())
        })
    }

    /// `inviter` (a joined member) invites `user_id`.
    pub fn invite(
        &self,
        namespace: &str,
        id: &str,
        inviter: &str,
        user_id: &str,
    ) -> Result<GameSession, SessionError> {
        self.with_session(namespace, id, |s, now| {
            if s.member(inviter)
                .is_none_or(|m| m.status != member_status::JOINED)
            {
                return Err(SessionError::NotMember(inviter.to_owned()));
            }
            let already = s
                .member(user_id)
                .is_some_and(|m| m.status == member_status::JOINED);
            if !already {
                s.set_member(user_id, member_status::INVITED, now);
                s.touch(now);
            }
            Ok(s.clone())
        })
    }

    /// PATCH: the caller must be the leader (or a client), and name the current version.
    pub fn update(
        &self,
        namespace: &str,
        id: &str,
        caller: Option<&str>,
        patch: SessionPatch,
    ) -> Result<GameSession, SessionError> {
        self.with_session(namespace, id, |s, now| {
            if caller.is_some_and(|c| c != s.leader_id) {
                return Err(SessionError::NotLeader);
            }
            if patch.version != s.version {
                return Err(SessionError::VersionMismatch {
                    given: patch.version,
                    current: s.version,
                });
            }
            if let Some(attributes) = patch.attributes {
                s.attributes = attributes;
            }
            if let Some(joinability) = patch.joinability {
                s.joinability = joinability;
            }
            if let Some(min) = patch.min_players {
                s.min_players = min;
            }
            if let Some(max) = patch.max_players {
                s.max_players = max;
            }
            s.touch(now);
            Ok(s.clone())
        })
    }

    /// Deletes the session; a user caller must be its leader.
    pub fn delete(
        &self,
        namespace: &str,
        id: &str,
        caller: Option<&str>,
    ) -> Result<GameSession, SessionError> {
        let mut inner = self.inner.lock();
        let session = inner
            .sessions
            .get(id)
            .filter(|s| s.namespace == namespace)
            .ok_or_else(|| SessionError::NotFound(id.to_owned()))?;
        if caller.is_some_and(|c| c != session.leader_id) {
            return Err(SessionError::NotLeader);
        }
        Ok(inner.sessions.remove(id).expect("checked above"))
    }

    /// Records a new `DSInformation` state (from [`super::ds`]).
    pub fn set_ds(
        &self,
        namespace: &str,
        id: &str,
        ds: DsState,
    ) -> Result<GameSession, SessionError> {
        self.with_session(namespace, id, |s, now| {
            s.ds = ds;
            s.touch(now);
            Ok(s.clone())
        })
    }

    /// Sessions held, for stats.
    pub fn len(&self) -> usize {
        self.inner.lock().sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
