//! Domain types: tickets, parties, match proposals, claims and outcomes.
//!
//! A [`Ticket`] is one party's request to be matched in one game mode. It keeps its original
//! enqueue time for life: a ticket that goes back to the queue after a failed pipeline keeps its
//! place. A player has at most one *live* ticket (queued or claimed) at a time.
//!
//! These are not wire types: they carry no serde derives. The HTTP layer converts to and from
//! AccelByte's JSON at the edge, and each store serialises them in its own private format.
//! Nothing here knows about Redis, HTTP or the AccelByte services.

use std::collections::BTreeMap;
use std::fmt;

use crate::clock::UnixMillis;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Wraps an existing identifier.
            pub fn new(id: impl Into<String>) -> Self {
                $name(id.into())
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(id.to_owned())
            }
        }
    };
}

string_id!(
    /// A ticket's identifier: 32 lower-case hex digits when generated here.
    TicketId
);
string_id!(
    /// An AccelByte user id.
    PlayerId
);
string_id!(
    /// A match's identifier: 32 lower-case hex digits when generated here.
    MatchId
);

/// The namespace of request-derived ticket ids (a fixed random UUID).
const REQUEST_KEY_NAMESPACE: uuid::Uuid = uuid::uuid!("6f1d3c52-8b0e-4f7a-9a41-2c5e7d9b8e13");

impl TicketId {
    /// A fresh random id (UUID v4, hex without dashes, like AccelByte's own ids).
    pub fn generate() -> Self {
        TicketId(uuid::Uuid::new_v4().simple().to_string())
    }

    /// The id of the ticket `player`'s request with idempotency key `key` makes (UUID v5 of
    /// both): a retry of the same request names the same ticket, so it can find it again on
    /// any replica, and two players' keys never collide.
    pub fn for_request(player: &PlayerId, key: &str) -> Self {
        let name = format!("{}\n{key}", player.as_str());
        TicketId(
            uuid::Uuid::new_v5(&REQUEST_KEY_NAMESPACE, name.as_bytes())
                .simple()
                .to_string(),
        )
    }
}

impl MatchId {
    /// A fresh random id (UUID v4, hex without dashes).
    pub fn generate() -> Self {
        MatchId(uuid::Uuid::new_v4().simple().to_string())
    }
}

/// Why a set of players is not a valid party.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PartyError {
    #[error("a party needs at least one member")]
    Empty,
    #[error("player {0} appears twice in the party")]
    Duplicate(PlayerId),
}

/// Players who queue together and are always placed on the same team. The first member leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Party {
    members: Vec<PlayerId>,
}

impl Party {
    /// A party of one.
    pub fn solo(player: PlayerId) -> Self {
        Party {
            members: vec![player],
        }
    }

    /// A party of `members` (leader first): at least one member, no player twice.
    pub fn new(members: Vec<PlayerId>) -> Result<Self, PartyError> {
        if members.is_empty() {
            return Err(PartyError::Empty);
        }
        for (i, member) in members.iter().enumerate() {
            if members[..i].contains(member) {
                return Err(PartyError::Duplicate(member.clone()));
            }
        }
        Ok(Party { members })
    }

    /// The party leader (the first member).
    pub fn leader(&self) -> &PlayerId {
        // `new` and `solo` guarantee at least one member.
        &self.members[0]
    }

    /// Every member, leader first.
    pub fn members(&self) -> &[PlayerId] {
        &self.members
    }

    /// How many players the party has (at least one).
    pub fn size(&self) -> usize {
        self.members.len()
    }
}

/// What the matching rules look at besides the party.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    /// Skill rating of the party (for a party, the client sends one value, e.g. the mean).
    /// `None` matches any skill.
    pub mmr: Option<u32>,
    /// Preferred region (a DSMC region name). `None` accepts any region.
    pub region: Option<String>,
    /// Free-form attributes carried through to the match (e.g. `party_attributes` for DSMC).
    pub extra: BTreeMap<String, String>,
}

/// A ticket as the caller hands it to a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTicket {
    pub id: TicketId,
    pub game_mode: String,
    pub party: Party,
    pub attributes: Attributes,
    /// When the request was made (wall clock); kept for the ticket's whole life.
    pub enqueued_at: UnixMillis,
    /// Failed pipeline attempts after which the ticket fails instead of going back to the queue.
    pub max_attempts: u32,
}

/// A stored ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    pub id: TicketId,
    pub game_mode: String,
    pub party: Party,
    pub attributes: Attributes,
    /// The original enqueue time; requeues do not change it.
    pub enqueued_at: UnixMillis,
    /// Failed pipeline attempts so far (a failed pipeline or an expired lease counts one).
    pub attempts: u32,
    pub max_attempts: u32,
    pub state: TicketState,
}

impl Ticket {
    /// A freshly queued ticket.
    pub fn queued(new: NewTicket) -> Self {
        Ticket {
            id: new.id,
            game_mode: new.game_mode,
            party: new.party,
            attributes: new.attributes,
            enqueued_at: new.enqueued_at,
            attempts: 0,
            max_attempts: new.max_attempts,
            state: TicketState::Queued,
        }
    }

    /// Queued or claimed: the ticket still holds its players.
    pub fn is_live(&self) -> bool {
        self.state.is_live()
    }
}

/// Where a ticket is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TicketState {
    /// Waiting to be matched.
    Queued,
    /// Part of a match whose pipeline is running on some replica, which holds a lease until
    /// `lease_until`; after that any replica may put the ticket back in the queue.
    Claimed {
        match_id: MatchId,
        lease_until: UnixMillis,
    },
    /// Matched and placed on a game server.
    Matched {
        match_id: MatchId,
        placement: Placement,
    },
    /// Cancelled by the player before it was matched.
    Cancelled,
    /// Waited longer than the game mode's timeout.
    TimedOut,
    /// Gave up: a permanent pipeline failure or too many attempts.
    Failed { reason: String },
}

impl TicketState {
    /// Queued or claimed.
    pub fn is_live(&self) -> bool {
        matches!(self, TicketState::Queued | TicketState::Claimed { .. })
    }

    /// A short lower-case name, for logs and error messages.
    pub fn name(&self) -> &'static str {
        match self {
            TicketState::Queued => "queued",
            TicketState::Claimed { .. } => "claimed",
            TicketState::Matched { .. } => "matched",
            TicketState::Cancelled => "cancelled",
            TicketState::TimedOut => "timed_out",
            TicketState::Failed { .. } => "failed",
        }
    }
}

/// The game server a match was placed on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerAddr {
    pub ip: String,
    pub port: u16,
}

/// The result of a successful pipeline: the session, its server and who plays in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The session id (Session Browser and DSMC share it).
    pub session_id: String,
    pub server: ServerAddr,
    /// Every player of the match, team by team (party members together). Kept with each ticket
    /// so any replica can answer "who am I playing with" without asking AGS.
    pub players: Vec<PlayerId>,
}

/// A match the rules propose: which tickets, on which team, in which region. Nothing is reserved
/// until a store claims it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchProposal {
    pub game_mode: String,
    /// The region the server should run in; `None` when no ticket expressed a preference.
    pub region: Option<String>,
    /// Tickets per team; a party's ticket sits on exactly one team.
    pub teams: Vec<Vec<TicketId>>,
}

impl MatchProposal {
    /// Every ticket id, team by team.
    pub fn ticket_ids(&self) -> impl Iterator<Item = &TicketId> {
        self.teams.iter().flatten()
    }
}

/// A match whose tickets one replica has claimed atomically and holds under a lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedMatch {
    pub id: MatchId,
    pub game_mode: String,
    pub region: Option<String>,
    /// The claimed tickets (as stored at claim time), per team.
    pub teams: Vec<Vec<Ticket>>,
    /// The lease as granted at claim time (renewals move it on in the store).
    pub lease_until: UnixMillis,
}

impl ClaimedMatch {
    /// Every ticket, team by team.
    pub fn tickets(&self) -> impl Iterator<Item = &Ticket> {
        self.teams.iter().flatten()
    }

    /// Every player, team by team, party members together.
    pub fn players(&self) -> impl Iterator<Item = &PlayerId> {
        self.tickets().flat_map(|t| t.party.members())
    }
}

/// What happens to one claimed ticket when its pipeline ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TicketOutcome {
    /// Placed on a server: the ticket is done and its players are free to queue again.
    Matched(Placement),
    /// A transient failure: back to the queue with its original enqueue time, counting one
    /// attempt; once `max_attempts` is reached it fails instead.
    Requeue { reason: String },
    /// Handed back without counting an attempt (e.g. graceful shutdown, or another player's
    /// failure broke the match).
    Release,
    /// A permanent failure.
    Fail { reason: String },
}

/// What a pipeline reports for a claimed match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MatchOutcome {
    /// The same outcome for every ticket.
    All(TicketOutcome),
    /// One outcome per ticket; must name every ticket of the match exactly once.
    PerTicket(Vec<(TicketId, TicketOutcome)>),
}

impl MatchOutcome {
    /// One outcome per ticket of `claimed`.
    pub fn per_ticket(self, claimed: &ClaimedMatch) -> Vec<(TicketId, TicketOutcome)> {
        match self {
            MatchOutcome::All(outcome) => claimed
                .tickets()
                .map(|t| (t.id.clone(), outcome.clone()))
                .collect(),
            MatchOutcome::PerTicket(outcomes) => outcomes,
        }
    }
}

/// Where each ticket of a completed (or reclaimed) match ended up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Completion {
    pub matched: Vec<TicketId>,
    /// Back in the queue (requeued or released).
    pub requeued: Vec<TicketId>,
    pub failed: Vec<TicketId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn party_rules() {
        assert_eq!(Party::new(vec![]), Err(PartyError::Empty));
        assert_eq!(
            Party::new(vec!["a".into(), "b".into(), "a".into()]),
            Err(PartyError::Duplicate("a".into()))
        );
        let party = Party::new(vec!["a".into(), "b".into()]).expect("valid party");
        assert_eq!(party.leader(), &PlayerId::from("a"));
        assert_eq!(party.size(), 2);
    }

    #[test]
    fn generated_ids_are_hex() {
        let id = TicketId::generate();
        assert_eq!(id.as_str().len(), 32);
        assert!(id.as_str().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(id, TicketId::generate());
    }

    #[test]
    fn live_states() {
        assert!(TicketState::Queued.is_live());
        assert!(
            TicketState::Claimed {
                match_id: "m".into(),
                lease_until: UnixMillis(0)
            }
            .is_live()
        );
        assert!(!TicketState::Cancelled.is_live());
        assert!(!TicketState::TimedOut.is_live());
    }
}
