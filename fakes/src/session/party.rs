//! Session v2 parties: who is in which party, invites, codes, leaders, versions.
//!
//! One mutex, no `.await` under it, no HTTP and no wire types, like [`super::store`]; the
//! routes ([`super::party_routes`]) convert snapshots at the edge and send the notifications.
//!
//! Rules (AGS documents them; where it is silent the choice is ours and said so):
//! - a user is in one party at a time: creating or joining another marks them `LEFT` in the
//!   previous one (the change is returned so its members hear of it);
//! - members are `INVITED`, `JOINED`, `REJECTED` (declined an invite; must be invited again),
//!   `LEFT` or `KICKED`; only `JOINED` members count against `maxPlayers` (`isFull`);
//! - joining needs an invite, or joinability `OPEN`, or the party's code; `CLOSED` refuses every
//!   join but a code's (ours: AGS is silent on codes of closed parties; we honour the code);
//! - the creator leads; only the leader kicks, promotes and changes joinability; when the
//!   leader leaves, the longest-joined member leads (ours); a party whose last joined member
//!   leaves is gone (ours: AGS keeps it until `inactiveTimeout`);
//! - every change bumps `version`; an update must name the current one (409 otherwise);
//! - a party is made from a configuration template when the request names one (zero or empty
//!   request fields take the template's; `maxPlayers` above the template's is ignored), else
//!   from AGS's documented default (`NONE`, `OPEN`, 1–8 players, 60 s timeouts).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use rand::Rng;
use serde_json::{Map, Value};

use accelbyte::models::session::member_status;

use super::store::{Member, Template};

/// Most parties kept, so a runaway client cannot exhaust memory.
pub const MAX_PARTIES: usize = 200_000;

/// A party's configuration (`apimodels.PublicConfiguration` as a party reports it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartyConfig {
    pub name: String,
    /// `DS`, `P2P` or `NONE`.
    pub kind: String,
    pub joinability: String,
    pub min_players: i32,
    pub max_players: i32,
    pub invite_timeout: i32,
    pub inactive_timeout: i32,
    pub text_chat: bool,
}

impl PartyConfig {
    /// AGS's default party configuration (the create route's documentation).
    pub fn default_party() -> Self {
        PartyConfig {
            name: "default".to_owned(),
            kind: "NONE".to_owned(),
            joinability: "OPEN".to_owned(),
            min_players: 1,
            max_players: 8,
            invite_timeout: 60,
            inactive_timeout: 60,
            text_chat: false,
        }
    }

    /// A template's values as a party's configuration.
    pub fn from_template(t: &Template) -> Self {
        PartyConfig {
            name: t.name.clone(),
            kind: t.kind.clone(),
            joinability: t.joinability.clone(),
            min_players: t.min_players,
            max_players: t.max_players,
            invite_timeout: t.invite_timeout,
            inactive_timeout: t.inactive_timeout,
            text_chat: t.text_chat,
        }
    }
}

/// One party.
#[derive(Debug, Clone, PartialEq)]
pub struct Party {
    pub id: String,
    pub namespace: String,
    pub config: PartyConfig,
    pub attributes: Map<String, Value>,
    /// The join code (every party gets one; AGS gives one to joinable parties).
    pub code: String,
    pub created_by: String,
    pub leader_id: String,
    pub members: Vec<Member>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

impl Party {
    pub fn member(&self, user_id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.user_id == user_id)
    }

    pub fn is_joined(&self, user_id: &str) -> bool {
        self.member(user_id)
            .is_some_and(|m| m.status == member_status::JOINED)
    }

    /// Joined members, in the order they joined (the leader first once it led from the start).
    pub fn joined(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| m.status == member_status::JOINED)
            .map(|m| m.user_id.clone())
            .collect()
    }

    pub fn is_full(&self) -> bool {
        self.config.max_players > 0
            && self.joined().len() >= usize::try_from(self.config.max_players).unwrap_or(0)
    }

    /// Members that are invited or joined (who hears about the party).
    pub fn audience(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| m.status == member_status::JOINED || m.status == member_status::INVITED)
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

    /// After `user_id` stopped being joined: a new leader if it led.
    fn hand_over(&mut self, user_id: &str) {
        if self.leader_id == user_id {
            self.leader_id = self.joined().into_iter().next().unwrap_or_default();
        }
    }
}

/// What a new party is made of.
#[derive(Debug, Clone)]
pub struct NewParty {
    pub namespace: String,
    pub creator: String,
    pub config: PartyConfig,
    pub attributes: Map<String, Value>,
    /// Users invited at once (the create body's `members` other than the creator).
    pub invited: Vec<String>,
}

/// What an update may change.
#[derive(Debug, Clone)]
pub struct PartyPatch {
    pub version: i32,
    pub attributes: Map<String, Value>,
    pub joinability: String,
    pub min_players: i32,
    pub max_players: i32,
    pub invite_timeout: i32,
    pub inactive_timeout: i32,
    pub kind: String,
}

/// A change and the party a user was taken out of on the way (one party at a time).
#[derive(Debug, Clone)]
pub struct Moved {
    pub party: Party,
    /// The previous party after the user left it (`None` when they were in none, or it ended).
    pub left: Option<Party>,
    /// False when the user was already joined (nothing happened).
    pub changed: bool,
}

/// Why a party operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartyError {
    #[error("party {0} not found")]
    NotFound(String),
    #[error("no party has the code {0:?}")]
    CodeNotFound(String),
    #[error("user {0} is not a member of the party")]
    NotMember(String),
    #[error("user {0} has no pending invite to the party")]
    NotInvited(String),
    #[error("only the party leader may do this")]
    NotLeader,
    #[error("party is full")]
    Full,
    #[error("party is closed")]
    Closed,
    #[error("version {given} does not match the party's version {current}")]
    VersionMismatch { given: i32, current: i32 },
    #[error("too many parties")]
    TooMany,
}

#[derive(Debug, Default)]
struct Inner {
    parties: HashMap<String, Party>,
    /// (namespace, user) → the party the user is joined in.
    party_of: HashMap<(String, String), String>,
    /// (namespace, code) → party id.
    codes: HashMap<(String, String), String>,
}

impl Inner {
    /// Marks `user` `LEFT` in their current party, except `keep`; returns that party after
    /// (or `None` if they were in none). An emptied party is removed.
    fn leave_current(
        &mut self,
        namespace: &str,
        user: &str,
        keep: Option<&str>,
        now: DateTime<Utc>,
    ) -> Option<Party> {
        let key = (namespace.to_owned(), user.to_owned());
        let current = self.party_of.get(&key)?.clone();
        if keep == Some(current.as_str()) {
            return None;
        }
        self.party_of.remove(&key);
        let party = self.parties.get_mut(&current)?;
        party.set_member(user, member_status::LEFT, now);
        party.hand_over(user);
        party.touch(now);
        let after = party.clone();
        if after.joined().is_empty() {
            self.remove(&current);
        }
        Some(after)
    }

    fn remove(&mut self, id: &str) {
        if let Some(party) = self.parties.remove(id) {
            self.codes
                .remove(&(party.namespace.clone(), party.code.clone()));
            for m in &party.members {
                let key = (party.namespace.clone(), m.user_id.clone());
                if self.party_of.get(&key).is_some_and(|p| p == id) {
                    self.party_of.remove(&key);
                }
            }
        }
    }

    fn party_mut(&mut self, namespace: &str, id: &str) -> Result<&mut Party, PartyError> {
        self.parties
            .get_mut(id)
            .filter(|p| p.namespace == namespace)
            .ok_or_else(|| PartyError::NotFound(id.to_owned()))
    }

    fn new_code(&self, namespace: &str) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        let mut rng = rand::thread_rng();
        loop {
            let code: String = (0..6)
                .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
                .collect();
            if !self
                .codes
                .contains_key(&(namespace.to_owned(), code.clone()))
            {
                return code;
            }
        }
    }

    /// `user` joins `id` (allowed by invite, `OPEN`, or `by_code`), leaving any other party.
    fn join(
        &mut self,
        namespace: &str,
        id: &str,
        user: &str,
        by_code: bool,
        now: DateTime<Utc>,
    ) -> Result<Moved, PartyError> {
        let party = self.party_mut(namespace, id)?;
        if party.is_joined(user) {
            return Ok(Moved {
                party: party.clone(),
                left: None,
                changed: false,
            });
        }
        let invited = party
            .member(user)
            .is_some_and(|m| m.status == member_status::INVITED);
        match party.config.joinability.as_str() {
            _ if by_code => {}
            "CLOSED" => return Err(PartyError::Closed),
            "OPEN" => {}
            _ if invited => {}
            _ => return Err(PartyError::NotInvited(user.to_owned())),
        }
        if party.is_full() {
            return Err(PartyError::Full);
        }
        let left = self.leave_current(namespace, user, Some(id), now);
        let party = self.party_mut(namespace, id)?;
        party.set_member(user, member_status::JOINED, now);
        if party.leader_id.is_empty() {
            party.leader_id = user.to_owned();
        }
        party.touch(now);
        let party = party.clone();
        self.party_of
            .insert((namespace.to_owned(), user.to_owned()), id.to_owned());
        Ok(Moved {
            party,
            left,
            changed: true,
        })
    }
}

/// The parties of every namespace.
#[derive(Debug, Default)]
pub struct Parties {
    inner: Mutex<Inner>,
}

impl Parties {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn reset(&self) {
        *self.inner.lock() = Inner::default();
    }

    /// Creates a party led by its creator, who leaves any other party first.
    pub fn create(&self, new: NewParty, id: String) -> Result<Moved, PartyError> {
        let now = Utc::now();
        let mut inner = self.inner.lock();
        if inner.parties.len() >= MAX_PARTIES {
            return Err(PartyError::TooMany);
        }
        let left = inner.leave_current(&new.namespace, &new.creator, None, now);
        let code = inner.new_code(&new.namespace);
        let mut members = vec![Member {
            user_id: new.creator.clone(),
            status: member_status::JOINED,
            previous_status: "",
            updated_at: now,
        }];
        for user in new.invited.iter().filter(|u| **u != new.creator) {
            if !members.iter().any(|m| &m.user_id == user) {
                members.push(Member {
                    user_id: user.clone(),
                    status: member_status::INVITED,
                    previous_status: "",
                    updated_at: now,
                });
            }
        }
        let party = Party {
            id: id.clone(),
            namespace: new.namespace.clone(),
            config: new.config,
            attributes: new.attributes,
            code: code.clone(),
            created_by: new.creator.clone(),
            leader_id: new.creator.clone(),
            members,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        inner.parties.insert(id.clone(), party.clone());
        inner
            .codes
            .insert((new.namespace.clone(), code), id.clone());
        inner.party_of.insert((new.namespace, new.creator), id);
        Ok(Moved {
            party,
            left,
            changed: true,
        })
    }

    pub fn get(&self, namespace: &str, id: &str) -> Option<Party> {
        self.inner
            .lock()
            .parties
            .get(id)
            .filter(|p| p.namespace == namespace)
            .cloned()
    }

    /// Parties where `user` is invited or joined, newest first.
    pub fn of_user(&self, namespace: &str, user: &str) -> Vec<Party> {
        let inner = self.inner.lock();
        let mut list: Vec<Party> = inner
            .parties
            .values()
            .filter(|p| p.namespace == namespace && p.audience().iter().any(|u| u == user))
            .cloned()
            .collect();
        list.sort_by_key(|p| std::cmp::Reverse(p.created_at));
        list
    }

    /// `user` joins party `id` by invite (or because it is `OPEN`).
    pub fn join(&self, namespace: &str, id: &str, user: &str) -> Result<Moved, PartyError> {
        self.inner
            .lock()
            .join(namespace, id, user, false, Utc::now())
    }

    /// `user` joins the party whose code is `code`.
    pub fn join_by_code(
        &self,
        namespace: &str,
        code: &str,
        user: &str,
    ) -> Result<Moved, PartyError> {
        let mut inner = self.inner.lock();
        let id = inner
            .codes
            .get(&(namespace.to_owned(), code.to_owned()))
            .cloned()
            .ok_or_else(|| PartyError::CodeNotFound(code.to_owned()))?;
        inner.join(namespace, &id, user, true, Utc::now())
    }

    /// `user` (joined) leaves; the party after it, possibly with no one joined (then gone).
    pub fn leave(&self, namespace: &str, id: &str, user: &str) -> Result<Party, PartyError> {
        let mut inner = self.inner.lock();
        let party = inner.party_mut(namespace, id)?;
        if !party.is_joined(user) {
            return Err(PartyError::NotMember(user.to_owned()));
        }
        inner
            .leave_current(namespace, user, None, Utc::now())
            .ok_or_else(|| PartyError::NotMember(user.to_owned()))
    }

    /// `user` declines a pending invite (`REJECTED`).
    pub fn reject(&self, namespace: &str, id: &str, user: &str) -> Result<Party, PartyError> {
        let now = Utc::now();
        let mut inner = self.inner.lock();
        let party = inner.party_mut(namespace, id)?;
        if party
            .member(user)
            .is_none_or(|m| m.status != member_status::INVITED)
        {
            return Err(PartyError::NotInvited(user.to_owned()));
        }
        party.set_member(user, member_status::REJECTED, now);
        party.touch(now);
        Ok(party.clone())
    }

    /// `inviter` (joined) invites `user`; inviting a joined member changes nothing.
    pub fn invite(
        &self,
        namespace: &str,
        id: &str,
        inviter: &str,
        user: &str,
    ) -> Result<Party, PartyError> {
        let now = Utc::now();
        let mut inner = self.inner.lock();
        let party = inner.party_mut(namespace, id)?;
        if !party.is_joined(inviter) {
            return Err(PartyError::NotMember(inviter.to_owned()));
        }
        if !party.is_joined(user) {
            party.set_member(user, member_status::INVITED, now);
            party.touch(now);
        }
        Ok(party.clone())
    }

    /// The leader removes `user` (joined or invited), who becomes `KICKED`.
    pub fn kick(
        &self,
        namespace: &str,
        id: &str,
        leader: &str,
        user: &str,
    ) -> Result<Party, PartyError> {
        let now = Utc::now();
        let mut inner = self.inner.lock();
        let party = inner.party_mut(namespace, id)?;
        if party.leader_id != leader {
            return Err(PartyError::NotLeader);
        }
        if party
            .member(user)
            .is_none_or(|m| m.status != member_status::JOINED && m.status != member_status::INVITED)
        {
            return Err(PartyError::NotMember(user.to_owned()));
        }
        party.set_member(user, member_status::KICKED, now);
        party.hand_over(user);
        party.touch(now);
        let after = party.clone();
        let key = (namespace.to_owned(), user.to_owned());
        if inner.party_of.get(&key).is_some_and(|p| p == id) {
            inner.party_of.remove(&key);
        }
        Ok(after)
    }

    /// The leader hands leadership to `new_leader`, a joined member.
    pub fn promote(
        &self,
        namespace: &str,
        id: &str,
        leader: &str,
        new_leader: &str,
    ) -> Result<Party, PartyError> {
        let now = Utc::now();
        let mut inner = self.inner.lock();
        let party = inner.party_mut(namespace, id)?;
        if party.leader_id != leader {
            return Err(PartyError::NotLeader);
        }
        if !party.is_joined(new_leader) {
            return Err(PartyError::NotMember(new_leader.to_owned()));
        }
        party.leader_id = new_leader.to_owned();
        party.touch(now);
        Ok(party.clone())
    }

    /// A joined member updates the party (joinability only by the leader); zero limits and
    /// empty strings keep the current value.
    pub fn update(
        &self,
        namespace: &str,
        id: &str,
        caller: &str,
        patch: PartyPatch,
    ) -> Result<Party, PartyError> {
        let now = Utc::now();
        let mut inner = self.inner.lock();
        let party = inner.party_mut(namespace, id)?;
        if !party.is_joined(caller) {
            return Err(PartyError::NotMember(caller.to_owned()));
        }
        if !patch.joinability.is_empty()
            && patch.joinability != party.config.joinability
            && party.leader_id != caller
        {
            return Err(PartyError::NotLeader);
        }
        if patch.version != party.version {
            return Err(PartyError::VersionMismatch {
                given: patch.version,
                current: party.version,
            });
        }
        party.attributes = patch.attributes;
        let config = &mut party.config;
        if !patch.joinability.is_empty() {
            config.joinability = patch.joinability;
        }
        if !patch.kind.is_empty() {
            config.kind = patch.kind;
        }
        for (value, slot) in [
            (patch.min_players, &mut config.min_players),
            (patch.max_players, &mut config.max_players),
            (patch.invite_timeout, &mut config.invite_timeout),
            (patch.inactive_timeout, &mut config.inactive_timeout),
        ] {
            if value > 0 {
                *slot = value;
            }
        }
        party.touch(now);
        Ok(party.clone())
    }

    /// Parties held, for stats.
    pub fn len(&self) -> usize {
        self.inner.lock().parties.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_party(creator: &str, invited: &[&str]) -> NewParty {
        NewParty {
            namespace: "ns".into(),
            creator: creator.into(),
            config: PartyConfig {
                joinability: "INVITE_ONLY".into(),
                max_players: 2,
                ..PartyConfig::default_party()
            },
            attributes: Map::new(),
            invited: invited.iter().map(|u| (*u).to_owned()).collect(),
        }
    }

    #[test]
    fn one_party_at_a_time_and_the_leader_hands_over() {
        let parties = Parties::new();
        let a = parties
            .create(new_party("u1", &["u2"]), "a".into())
            .unwrap();
        assert_eq!(a.party.leader_id, "u1");
        assert_eq!(
            parties.join("ns", "a", "u3").unwrap_err(),
            PartyError::NotInvited("u3".into())
        );
        parties.join("ns", "a", "u2").unwrap();
        // Full at two: a code does not get past maxPlayers.
        assert_eq!(
            parties.join_by_code("ns", &a.party.code, "u3").unwrap_err(),
            PartyError::Full
        );
        // u1 creates another party: it leaves "a", where u2 now leads.
        let b = parties.create(new_party("u1", &[]), "b".into()).unwrap();
        let left = b.left.expect("left a");
        assert_eq!((left.id.as_str(), left.leader_id.as_str()), ("a", "u2"));
        // u2 leaves too: "a" is gone.
        let after = parties.leave("ns", "a", "u2").unwrap();
        assert!(after.joined().is_empty());
        assert!(parties.get("ns", "a").is_none());
        assert_eq!(parties.len(), 1);
    }

    #[test]
    fn only_the_leader_kicks_and_promotes_and_versions_must_match() {
        let parties = Parties::new();
        parties
            .create(new_party("u1", &["u2"]), "a".into())
            .unwrap();
        parties.join("ns", "a", "u2").unwrap();
        assert_eq!(
            parties.kick("ns", "a", "u2", "u1"),
            Err(PartyError::NotLeader)
        );
        let p = parties.promote("ns", "a", "u1", "u2").unwrap();
        assert_eq!(p.leader_id, "u2");
        let kicked = parties.kick("ns", "a", "u2", "u1").unwrap();
        assert_eq!(
            kicked.member("u1").map(|m| m.status),
            Some(member_status::KICKED)
        );
        let patch = PartyPatch {
            version: 1,
            attributes: Map::new(),
            joinability: String::new(),
            min_players: 0,
            max_players: 4,
            invite_timeout: 0,
            inactive_timeout: 0,
            kind: String::new(),
        };
        assert!(matches!(
            parties.update("ns", "a", "u2", patch.clone()),
            Err(PartyError::VersionMismatch { given: 1, .. })
        ));
        let updated = parties
            .update(
                "ns",
                "a",
                "u2",
                PartyPatch {
                    version: kicked.version,
                    ..patch
                },
            )
            .unwrap();
        assert_eq!(updated.config.max_players, 4);
    }
}
