//! The Session v2 and Matchmaking v2 notifications a lobby socket receives, decoded: a
//! `messageNotif` whose `topic` names the event and whose `payload` is base64 (standard
//! alphabet) of the event's JSON. Other topics (free-form notifications) are not events.

use base64::Engine;

use crate::models::lobby::MessageNotif;
use crate::models::match2::{
    MatchFoundNotif, MatchmakingStartedNotif, TicketExpiredNotif, topics as match2_topics,
};
use crate::models::session::{
    DsStatusChangedNotif, PartyInvitedNotif, PartyJoinedNotif, PartyKickedNotif,
    PartyMembersChangedNotif, PartyRejectedNotif, PartySessionResponse, SessionEndedNotif,
    SessionInvitedNotif, SessionJoinedNotif, SessionMembersChangedNotif, topics as session_topics,
};

/// One decoded v2 notification.
#[derive(Debug, Clone, PartialEq)]
pub enum V2Event {
    MatchmakingStarted(MatchmakingStartedNotif),
    MatchFound(MatchFoundNotif),
    TicketExpired(TicketExpiredNotif),
    /// `OnMatchmakingTicketCanceled`: the payload's ticket id.
    TicketCanceled(String),
    SessionInvited(SessionInvitedNotif),
    SessionJoined(SessionJoinedNotif),
    SessionMembersChanged(Box<SessionMembersChangedNotif>),
    DsStatusChanged(Box<DsStatusChangedNotif>),
    SessionEnded(SessionEndedNotif),
    PartyInvited(PartyInvitedNotif),
    PartyJoined(PartyJoinedNotif),
    PartyMembersChanged(Box<PartyMembersChangedNotif>),
    PartyRejected(PartyRejectedNotif),
    PartyKicked(PartyKickedNotif),
    /// `OnPartyUpdated`: the party as it is now.
    PartyUpdated(Box<PartySessionResponse>),
}

/// Why a v2 topic's payload could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("{topic}: payload is not base64: {source}")]
    Base64 {
        topic: String,
        source: base64::DecodeError,
    },
    #[error("{topic}: payload is not the event's JSON: {source}")]
    Json {
        topic: String,
        source: serde_json::Error,
    },
}

impl V2Event {
    /// `None` when the topic is not a v2 event; an error when it is but its payload is bad.
    pub fn from_message(message: &MessageNotif) -> Option<Result<Self, EventError>> {
        let topic = message.topic.as_str();
        let known = [
            match2_topics::MATCHMAKING_STARTED,
            match2_topics::MATCH_FOUND,
            match2_topics::TICKET_EXPIRED,
            match2_topics::TICKET_CANCELED,
            session_topics::SESSION_INVITED,
            session_topics::SESSION_JOINED,
            session_topics::SESSION_MEMBERS_CHANGED,
            session_topics::DS_STATUS_CHANGED,
            session_topics::SESSION_ENDED,
            session_topics::PARTY_INVITED,
            session_topics::PARTY_JOINED,
            session_topics::PARTY_MEMBERS_CHANGED,
            session_topics::PARTY_REJECTED,
            session_topics::PARTY_KICKED,
            session_topics::PARTY_UPDATED,
        ];
        if !known.contains(&topic) {
            return None;
        }
        Some(Self::decode(topic, &message.payload))
    }

    fn decode(topic: &str, payload: &str) -> Result<Self, EventError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(payload.trim())
            .map_err(|source| EventError::Base64 {
                topic: topic.to_owned(),
                source,
            })?;
        let json = |source| EventError::Json {
            topic: topic.to_owned(),
            source,
        };
        Ok(match topic {
            match2_topics::MATCHMAKING_STARTED => {
                Self::MatchmakingStarted(serde_json::from_slice(&bytes).map_err(json)?)
            }
            match2_topics::MATCH_FOUND => {
                Self::MatchFound(serde_json::from_slice(&bytes).map_err(json)?)
            }
            match2_topics::TICKET_EXPIRED => {
                Self::TicketExpired(serde_json::from_slice(&bytes).map_err(json)?)
            }
            match2_topics::TICKET_CANCELED => {
                let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(json)?;
                Self::TicketCanceled(
                    value
                        .get("ticketID")
                        .and_then(|t| t.as_str())
                        .unwrap_or_default()
                        .to_owned(),
                )
            }
            session_topics::SESSION_INVITED => {
                Self::SessionInvited(serde_json::from_slice(&bytes).map_err(json)?)
            }
            session_topics::SESSION_JOINED => {
                Self::SessionJoined(serde_json::from_slice(&bytes).map_err(json)?)
            }
            session_topics::SESSION_MEMBERS_CHANGED => {
                Self::SessionMembersChanged(serde_json::from_slice(&bytes).map_err(json)?)
            }
            session_topics::DS_STATUS_CHANGED => {
                Self::DsStatusChanged(serde_json::from_slice(&bytes).map_err(json)?)
            }
            session_topics::PARTY_INVITED => {
                Self::PartyInvited(serde_json::from_slice(&bytes).map_err(json)?)
            }
            session_topics::PARTY_JOINED => {
                Self::PartyJoined(serde_json::from_slice(&bytes).map_err(json)?)
            }
            session_topics::PARTY_MEMBERS_CHANGED => {
                Self::PartyMembersChanged(serde_json::from_slice(&bytes).map_err(json)?)
            }
            session_topics::PARTY_REJECTED => {
                Self::PartyRejected(serde_json::from_slice(&bytes).map_err(json)?)
            }
            session_topics::PARTY_KICKED => {
                Self::PartyKicked(serde_json::from_slice(&bytes).map_err(json)?)
            }
            session_topics::PARTY_UPDATED => {
                Self::PartyUpdated(serde_json::from_slice(&bytes).map_err(json)?)
            }
            _ => Self::SessionEnded(serde_json::from_slice(&bytes).map_err(json)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(topic: &str, json: &str) -> MessageNotif {
        MessageNotif {
            id: "n1".into(),
            from: "system".into(),
            to: "u1".into(),
            topic: topic.into(),
            payload: base64::engine::general_purpose::STANDARD.encode(json),
            sent_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn decodes_v2_topics_and_skips_others() {
        let found = message(
            "OnMatchFound",
            r#"{"id":"gs1","namespace":"ns","matchPool":"duel","tickets":[{"ticketID":"t1"}]}"#,
        );
        match V2Event::from_message(&found) {
            Some(Ok(V2Event::MatchFound(f))) => {
                assert_eq!(
                    (f.id.as_str(), f.tickets[0].ticket_id.as_str()),
                    ("gs1", "t1")
                );
            }
            other => panic!("{other:?}"),
        }
        let ds = message(
            "OnDSStatusChanged",
            r#"{"sessionID":"gs1","error":"","session":{"id":"gs1","DSInformation":{"StatusV2":"AVAILABLE","Server":{"ip":"127.0.0.1","port":7777}}}}"#,
        );
        match V2Event::from_message(&ds) {
            Some(Ok(V2Event::DsStatusChanged(d))) => {
                assert_eq!(d.session.ds_information.status_v2, "AVAILABLE");
                assert_eq!(d.session.ds_information.server.map(|s| s.port), Some(7777));
            }
            other => panic!("{other:?}"),
        }
        let expired = message("OnMatchmakingTicketExpired", r#"{"ticketID":"t9"}"#);
        assert!(matches!(
            V2Event::from_message(&expired),
            Some(Ok(V2Event::TicketExpired(t))) if t.ticket_id == "t9"
        ));
        let invited = message("OnPartyInvited", r#"{"partyID":"p1","senderID":"u1"}"#);
        assert!(matches!(
            V2Event::from_message(&invited),
            Some(Ok(V2Event::PartyInvited(i))) if i.party_id == "p1" && i.sender_id == "u1"
        ));
        let changed = message(
            "OnPartyMembersChanged",
            r#"{"session":{"id":"p1","leaderID":"u2","members":[{"id":"u2","status":"JOINED"}]},"joinerID":"","leaderID":"u2"}"#,
        );
        match V2Event::from_message(&changed) {
            Some(Ok(V2Event::PartyMembersChanged(c))) => {
                assert_eq!((c.session.id.as_str(), c.leader_id.as_str()), ("p1", "u2"));
                assert_eq!(c.session.members[0].status, "JOINED");
            }
            other => panic!("{other:?}"),
        }
        assert!(V2Event::from_message(&message("chat", "{}")).is_none());
        let mut bad = message("OnMatchFound", "{}");
        bad.payload = "%%%".into();
        assert!(matches!(
            V2Event::from_message(&bad),
            Some(Err(EventError::Base64 { .. }))
        ));
        let not_json = message("OnSessionJoined", "[1");
        assert!(matches!(
            V2Event::from_message(&not_json),
            Some(Err(EventError::Json { .. }))
        ));
    }
}
