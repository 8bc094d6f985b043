//! The reference matchmaker's HTTP contract: the body of `POST /matchmaking` (and `/`,
//! `/v1/tickets`), the tutorial-shaped answers of the synchronous call, the matchmaker's own
//! error codes and the classes of a match that failed for good.
//!
//! This is not an AGS service but the backend the AccelByte matchmaking tutorial talks to; its
//! answers keep the tutorial's shapes for compatibility. The matchmaker serialises with these
//! types and the load generator reads with them, so a field changed here changes both sides.
//! Errors use AGS's REST shape ([`RestError`](super::error::RestError)).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The header that makes a matchmaking request safe to retry: the ticket is named by it.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The tutorial's 408 message.
pub const TIMED_OUT_MESSAGE: &str = "Timed out! Not enough players.";

/// The matchmaker's own error codes (AGS services use six-digit codes per service). A match that
/// failed for good answers the code of its [`FailureClass`] instead of [`MATCH_FAILED`].
pub mod error_codes {
    pub const NOT_FOUND: i64 = 510404;
    pub const LIVE_TICKET: i64 = 510409;
    pub const NOT_CANCELLABLE: i64 = 510410;
    pub const BODY_TIMEOUT: i64 = 510408;
    pub const BODY_TOO_LARGE: i64 = 510413;
    /// A match that failed for good with no known class.
    pub const MATCH_FAILED: i64 = 510502;
    pub const UNAVAILABLE: i64 = 510503;
    /// A listed party member did not consent: no valid token of theirs came with the request.
    pub const PARTY_CONSENT: i64 = 510403;
}

/// Why a match failed for good: the class the `failed <class>` lobby notification names and
/// the 502 answer's `errorCode` stands for. Clients read why from the code, never from the
/// message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureClass {
    /// No dedicated server was free.
    NoCapacity,
    /// The session browser session could not be created.
    SessionCreate,
    /// Registering the session with DSMC failed.
    DsmcRegister,
    /// The claim answered 409.
    ClaimConflict,
    /// The claim answered 425 until the deadline.
    ClaimNotReady,
    /// The server could not be reached (503 or no connection).
    ClaimUnreachable,
    /// The claim timed out.
    ClaimTimeout,
    /// The claim answered 404.
    ClaimNotFound,
    /// The claim failed otherwise.
    ClaimFailed,
    /// Reading the claimed session from DSMC failed, or it had no usable address.
    DsmcGet,
    /// Adding a player to the session failed.
    AddPlayer,
    /// Reading the session browser session failed.
    SessionGet,
    /// The session was not joinable.
    NotJoinable,
    /// The replica building the match lost its lease.
    LeaseLost,
    /// The replica building the match stopped and its lease ran out.
    LeaseExpired,
}

impl FailureClass {
    /// Every class, in the order of their codes.
    pub const ALL: [FailureClass; 15] = [
        FailureClass::NoCapacity,
        FailureClass::SessionCreate,
        FailureClass::DsmcRegister,
        FailureClass::ClaimConflict,
        FailureClass::ClaimNotReady,
        FailureClass::ClaimUnreachable,
        FailureClass::ClaimTimeout,
        FailureClass::ClaimNotFound,
        FailureClass::ClaimFailed,
        FailureClass::DsmcGet,
        FailureClass::AddPlayer,
        FailureClass::SessionGet,
        FailureClass::NotJoinable,
        FailureClass::LeaseLost,
        FailureClass::LeaseExpired,
    ];

    /// The class's name (`no_capacity`): the prefix of a recorded reason and the word after
    /// `failed ` in the lobby notification.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::NoCapacity => "no_capacity",
            FailureClass::SessionCreate => "session_create",
            FailureClass::DsmcRegister => "dsmc_register",
            FailureClass::ClaimConflict => "claim_conflict",
            FailureClass::ClaimNotReady => "claim_not_ready",
            FailureClass::ClaimUnreachable => "claim_unreachable",
            FailureClass::ClaimTimeout => "claim_timeout",
            FailureClass::ClaimNotFound => "claim_not_found",
            FailureClass::ClaimFailed => "claim_failed",
            FailureClass::DsmcGet => "dsmc_get",
            FailureClass::AddPlayer => "add_player",
            FailureClass::SessionGet => "session_get",
            FailureClass::NotJoinable => "not_joinable",
            FailureClass::LeaseLost => "lease_lost",
            FailureClass::LeaseExpired => "lease_expired",
        }
    }

    /// The 502 answer's `errorCode` for this class.
    pub fn code(self) -> i64 {
        match self {
            FailureClass::NoCapacity => 510520,
            FailureClass::SessionCreate => 510521,
            FailureClass::DsmcRegister => 510522,
            FailureClass::ClaimConflict => 510523,
            FailureClass::ClaimNotReady => 510524,
            FailureClass::ClaimUnreachable => 510525,
            FailureClass::ClaimTimeout => 510526,
            FailureClass::ClaimNotFound => 510527,
            FailureClass::ClaimFailed => 510528,
            FailureClass::DsmcGet => 510529,
            FailureClass::AddPlayer => 510530,
            FailureClass::SessionGet => 510531,
            FailureClass::NotJoinable => 510532,
            FailureClass::LeaseLost => 510533,
            FailureClass::LeaseExpired => 510534,
        }
    }

    /// The class named `name` (`None` for any other text).
    pub fn from_name(name: &str) -> Option<FailureClass> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The class an `errorCode` stands for (`None` for [`error_codes::MATCH_FAILED`] and any
    /// other code).
    pub fn from_code(code: i64) -> Option<FailureClass> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// The code of a match that failed with the class named `name`: its class's code, or
    /// [`error_codes::MATCH_FAILED`] when `name` is no known class.
    pub fn code_of_name(name: &str) -> i64 {
        Self::from_name(name).map_or(error_codes::MATCH_FAILED, FailureClass::code)
    }

    /// No dedicated server could be had: none was free, or claiming one failed.
    pub fn is_claim(self) -> bool {
        self == FailureClass::NoCapacity || self.as_str().starts_with("claim_")
    }
}

impl std::fmt::Display for FailureClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The payloads of the free-form lobby notifications the matchmaker sends a ticket's players:
/// `searching` once the ticket exists, then `found <ip> <port>` or `failed <class>`.
pub mod notice {
    /// The ticket is queued.
    pub const SEARCHING: &str = "searching";

    /// The match's server: `found <ip> <port>`.
    pub fn found(ip: &str, port: u16) -> String {
        format!("found {ip} {port}")
    }

    /// The match failed for good with the class named `class`: `failed <class>`.
    pub fn failed(class: &str) -> String {
        format!("failed {class}")
    }

    /// Reads a `found` payload: `found <ip> <port>`, or `found <ip>:<port>` (the C# sample's
    /// form). `None` for any other payload.
    pub fn parse_found(payload: &str) -> Option<(&str, u16)> {
        let rest = payload.strip_prefix("found ")?.trim();
        let (ip, port) = match rest.split_once(' ') {
            Some((ip, port)) => (ip, port),
            None => rest.rsplit_once(':')?,
        };
        Some((ip.trim(), port.trim().parse().ok()?))
    }
}

/// Attribute names that drive the matching rules; any other scalar attribute travels to DSMC as
/// a party attribute.
pub mod attributes {
    /// The party's skill rating: an integer from 0 to 4294967295.
    pub const MMR: &str = "mmr";
    /// The region the party plays in: a string of 1–64 characters.
    pub const REGION: &str = "region";
}

/// The optional JSON body of a matchmaking request. The caller leads the party and is always a
/// member; `party_members` lists the others, and `party_tokens` carries each other member's own
/// access token as their consent. Unknown keys are refused; `attributes` stays free-form here
/// (the matchmaker checks [`attributes::MMR`] and [`attributes::REGION`] with its own
/// messages).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchmakingRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub game_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub party_members: Vec<PartyMember>,
    /// The other members' own access tokens: their consent to be queued by this leader.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub party_tokens: Vec<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub attributes: Map<String, Value>,
}

impl MatchmakingRequest {
    /// Sets [`attributes::MMR`].
    pub fn set_mmr(&mut self, mmr: u32) {
        self.attributes
            .insert(attributes::MMR.to_owned(), mmr.into());
    }

    /// Sets [`attributes::REGION`].
    pub fn set_region(&mut self, region: impl Into<String>) {
        self.attributes
            .insert(attributes::REGION.to_owned(), Value::String(region.into()));
    }
}

/// A party member: written as a bare user id; read as one or as the tutorial's
/// `{"user_id": ...}` — an object, never an array read by position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartyMember(pub String);

impl Serialize for PartyMember {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PartyMember {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Object {
            user_id: String,
        }
        match Value::deserialize(deserializer)? {
            Value::String(id) => Ok(PartyMember(id)),
            object @ Value::Object(_) => serde_json::from_value::<Object>(object)
                .map(|o| PartyMember(o.user_id))
                .map_err(serde::de::Error::custom),
            _ => Err(serde::de::Error::custom(
                "a party member is a user id or an object {\"user_id\": ...}",
            )),
        }
    }
}

/// The synchronous call's 200: the tutorial's body, including its odd `users` (the caller's id,
/// then a *list* of the other players' ids) and a message embedding that list in Python's repr.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MatchmakingResponse {
    pub message: String,
    pub server: MatchedServer,
    pub session: MatchedSession,
    pub users: MatchedUsers,
}

impl MatchmakingResponse {
    /// The answer for `caller`, matched with `others` on the server `ip:port` in `session_id`.
    pub fn matched(
        ip: &str,
        port: u16,
        session_id: &str,
        caller: &str,
        others: Vec<String>,
    ) -> Self {
        let repr: Vec<String> = others.iter().map(|p| format!("'{p}'")).collect();
        let message = format!(
            "successfully matchmade server:(ip:{ip}|port:{port})|session:(id:{session_id})|users:({caller},[{}])",
            repr.join(", ")
        );
        MatchmakingResponse {
            message,
            server: MatchedServer {
                ip: ip.to_owned(),
                port,
            },
            session: MatchedSession {
                id: session_id.to_owned(),
            },
            users: MatchedUsers(caller.to_owned(), others),
        }
    }
}

/// The dedicated server of a match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MatchedServer {
    pub ip: String,
    /// Written as a number; read as a number or a numeric string (some tutorial servers).
    #[serde(deserialize_with = "port_number_or_text")]
    pub port: u16,
}

/// The session of a match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MatchedSession {
    pub id: String,
}

/// `[caller, [other, ...]]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchedUsers(pub String, pub Vec<String>);

fn port_number_or_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Port {
        Number(u64),
        Text(String),
    }
    let port = match Port::deserialize(deserializer)? {
        Port::Number(n) => u16::try_from(n).ok(),
        Port::Text(text) => text.parse().ok(),
    };
    port.ok_or_else(|| serde::de::Error::custom("port must be 0-65535"))
}

/// A body that is only a message: the 408 (`{"message": "Timed out! Not enough players."}`),
/// and the tutorial server's own failure (`400 {"message": "Unable to join the session."}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageBody {
    pub message: String,
}

impl MessageBody {
    /// The 408 of a ticket that found no match in time.
    pub fn timed_out() -> Self {
        MessageBody {
            message: TIMED_OUT_MESSAGE.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_classes_round_trip_by_name_and_code() {
        for class in FailureClass::ALL {
            assert_eq!(FailureClass::from_name(class.as_str()), Some(class));
            assert_eq!(FailureClass::from_code(class.code()), Some(class));
            assert_eq!(FailureClass::code_of_name(class.as_str()), class.code());
            assert_eq!(class.to_string(), class.as_str());
        }
        let mut codes: Vec<i64> = FailureClass::ALL.iter().map(|c| c.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), FailureClass::ALL.len(), "one code per class");
        assert!(codes.iter().all(|c| (510520..=510534).contains(c)));
    }

    #[test]
    fn unknown_classes_answer_the_generic_code() {
        assert_eq!(FailureClass::from_name("nonsense"), None);
        assert_eq!(
            FailureClass::code_of_name("nonsense"),
            error_codes::MATCH_FAILED
        );
        assert_eq!(FailureClass::from_code(error_codes::MATCH_FAILED), None);
    }

    #[test]
    fn found_payloads_read_back() {
        assert_eq!(
            notice::parse_found(&notice::found("10.0.0.2", 7777)),
            Some(("10.0.0.2", 7777))
        );
        assert_eq!(
            notice::parse_found("found 10.0.0.2:8000"),
            Some(("10.0.0.2", 8000))
        );
        assert_eq!(notice::parse_found(notice::SEARCHING), None);
        assert_eq!(notice::parse_found(&notice::failed("no_capacity")), None);
        assert_eq!(notice::parse_found("found x y"), None);
    }

    #[test]
    fn claim_classes() {
        assert!(FailureClass::NoCapacity.is_claim());
        assert!(FailureClass::ClaimUnreachable.is_claim());
        assert!(!FailureClass::SessionCreate.is_claim());
        assert!(!FailureClass::LeaseLost.is_claim());
    }

    #[test]
    fn party_members_read_both_forms() {
        let request: MatchmakingRequest =
            serde_json::from_str(r#"{"party_members": ["a", {"user_id": "b"}]}"#).expect("valid");
        assert_eq!(
            request.party_members,
            [PartyMember("a".into()), PartyMember("b".into())]
        );
        for bad in [
            r#"{"party_members": [7]}"#,
            r#"{"party_members": [["a"]]}"#,
            r#"{"party_members": [{"user_id": "a", "x": 1}]}"#,
            r#"{"gamemode": "1v1"}"#,
        ] {
            assert!(
                serde_json::from_str::<MatchmakingRequest>(bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn ports_are_read_as_numbers_or_text() {
        let read = |port: &str| {
            serde_json::from_str::<MatchedServer>(&format!(r#"{{"ip": "h", "port": {port}}}"#))
        };
        assert_eq!(read("7777").expect("number").port, 7777);
        assert_eq!(read("\"7778\"").expect("text").port, 7778);
        assert!(read("70000").is_err());
        assert!(read("\"x\"").is_err());
    }
}
