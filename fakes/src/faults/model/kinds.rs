//! What a fault does: one struct per kind (HTTP latency, error, outage, hang; lobby drop,
//! delay, duplicate, disconnect; DSMC claim outcome, region capacity, ready delay; IAM token
//! expiry, user revocation, key rotation; Matchmaking v2 ticket expiry), the [`FaultKind`] that
//! tags them by `kind`, and the [`Scope`] that says where each acts.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::distribution::Distribution;
use super::error::{FieldError, de};

/// HTTP: add a delay before the request is handled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    pub delay: Distribution,
}

/// HTTP: answer with an error instead of handling the request, in the service's AGS error shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorFault {
    /// 400–599.
    pub status: u16,
    /// The AGS `errorCode`; default: the code AGS pairs with the status (20000 for 5xx).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn status_503() -> u16 {
    503
}

fn status_504() -> u16 {
    504
}

/// HTTP: every call fails while the fault is active (the probability is always 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outage {
    #[serde(default = "status_503")]
    pub status: u16,
}

/// What a held request does once its time is up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HangThen {
    /// Answer `status` (default 504).
    #[default]
    Fail,
    /// Handle the request normally.
    Answer,
}

/// HTTP: hold the request for `hold_s`, then fail or answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hang {
    pub hold_s: f64,
    #[serde(default)]
    pub then: HangThen,
    #[serde(default = "status_504")]
    pub status: u16,
}

/// Lobby: the notification is lost (the sender still sees success).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropNotification {}

/// Lobby: the notification is delivered late (later ones may overtake it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelayNotification {
    pub delay: Distribution,
}

fn one() -> u32 {
    1
}

/// Lobby: the notification is delivered `1 + copies` times, with the same id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DuplicateNotification {
    #[serde(default = "one")]
    pub copies: u32,
}

/// The close code of an injected disconnect by default: the Unity SDK's `ServerShuttingDown`,
/// a server-side cause after which clients reconnect.
pub const DEFAULT_CLOSE_CODE: u16 = 4000;

fn close_4000() -> u16 {
    DEFAULT_CLOSE_CODE
}

/// Lobby: close sockets. By default the fault's `probability` is the chance that each matching
/// socket is closed within a minute; with `per_minute`, that many sockets per minute are closed
/// on average, spread over the matching sockets (and `probability` must not be set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disconnect {
    #[serde(default = "close_4000")]
    pub close_code: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_minute: Option<f64>,
}

/// DSMC: force claim outcomes. Each claim of an existing session fails with 404, 409, 425 or
/// 503 at these rates (their sum at most 1); otherwise the normal rules decide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimOutcome {
    /// 404 session not found.
    #[serde(default)]
    pub not_found: f64,
    /// 409 already claimed.
    #[serde(default)]
    pub conflict: f64,
    /// 425 not ready.
    #[serde(default)]
    pub not_ready: f64,
    /// 503 server unreachable.
    #[serde(default)]
    pub unreachable: f64,
    /// Only claims of servers in this region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

impl ClaimOutcome {
    pub fn total(&self) -> f64 {
        self.not_found + self.conflict + self.not_ready + self.unreachable
    }
}

/// DSMC: at most `capacity` servers of `region` in use at once (0: no capacity). Registers
/// beyond it answer 503; servers already held are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionCapacity {
    pub region: String,
    pub capacity: usize,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// DSMC: servers registered while active take `delay` to become ready, or never do.
/// `probability` is the share of registers affected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadyDelay {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Distribution>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub never: bool,
}

/// Matchmaking v2: an expiry storm — while active, every queued match ticket (of `pool`, if
/// given) that has waited at least `after_s` seconds expires at the next matchmaking pass, with
/// `OnMatchmakingTicketExpired`, however long its pool would have kept it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketExpiry {
    #[serde(default)]
    pub after_s: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
}

/// IAM: tokens issued while active live `access_s` (and `refresh_s`) seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenExpiry {
    pub access_s: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_s: Option<u64>,
}

/// IAM: revoke every token of a user when the window starts (once), and close their lobby
/// socket with 4020 (token revoked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeUser {
    pub user_id: String,
}

/// IAM: generate a new signing key when the window starts (and every `every_s` after, while
/// active). Old keys stay in the JWKS, so tokens issued before still validate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwksRotation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_s: Option<f64>,
}

/// What a fault does. Tagged by `kind`; every variant refuses fields it does not know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultKind {
    Latency(Latency),
    Error(ErrorFault),
    Outage(Outage),
    Hang(Hang),
    DropNotification(DropNotification),
    DelayNotification(DelayNotification),
    DuplicateNotification(DuplicateNotification),
    Disconnect(Disconnect),
    ClaimOutcome(ClaimOutcome),
    RegionCapacity(RegionCapacity),
    ReadyDelay(ReadyDelay),
    TokenExpiry(TokenExpiry),
    RevokeUser(RevokeUser),
    JwksRotation(JwksRotation),
    TicketExpiry(TicketExpiry),
}

/// Every kind's name, in [`FaultKind::index`] order.
pub const KINDS: [&str; 15] = [
    "latency",
    "error",
    "outage",
    "hang",
    "drop_notification",
    "delay_notification",
    "duplicate_notification",
    "disconnect",
    "claim_outcome",
    "region_capacity",
    "ready_delay",
    "token_expiry",
    "revoke_user",
    "jwks_rotation",
    "ticket_expiry",
];

/// Where a kind acts, which decides the target fields it understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Http,
    Notification,
    Socket,
    Dsmc,
    Iam,
    Match2,
}

impl FaultKind {
    /// Position in [`KINDS`].
    pub fn index(&self) -> usize {
        match self {
            Self::Latency(_) => 0,
            Self::Error(_) => 1,
            Self::Outage(_) => 2,
            Self::Hang(_) => 3,
            Self::DropNotification(_) => 4,
            Self::DelayNotification(_) => 5,
            Self::DuplicateNotification(_) => 6,
            Self::Disconnect(_) => 7,
            Self::ClaimOutcome(_) => 8,
            Self::RegionCapacity(_) => 9,
            Self::ReadyDelay(_) => 10,
            Self::TokenExpiry(_) => 11,
            Self::RevokeUser(_) => 12,
            Self::JwksRotation(_) => 13,
            Self::TicketExpiry(_) => 14,
        }
    }

    pub fn name(&self) -> &'static str {
        KINDS[self.index()]
    }

    pub fn scope(&self) -> Scope {
        match self {
            Self::Latency(_) | Self::Error(_) | Self::Outage(_) | Self::Hang(_) => Scope::Http,
            Self::DropNotification(_)
            | Self::DelayNotification(_)
            | Self::DuplicateNotification(_) => Scope::Notification,
            Self::Disconnect(_) => Scope::Socket,
            Self::ClaimOutcome(_) | Self::RegionCapacity(_) | Self::ReadyDelay(_) => Scope::Dsmc,
            Self::TokenExpiry(_) | Self::RevokeUser(_) | Self::JwksRotation(_) => Scope::Iam,
            Self::TicketExpiry(_) => Scope::Match2,
        }
    }

    /// Kinds that change state rather than roll per call: their probability is always 1.
    pub(super) fn probability_must_be_one(&self) -> bool {
        matches!(
            self,
            Self::Outage(_)
                | Self::RegionCapacity(_)
                | Self::TokenExpiry(_)
                | Self::RevokeUser(_)
                | Self::JwksRotation(_)
                | Self::TicketExpiry(_)
        )
    }

    /// Parses the kind's own fields (everything but the common ones) from `fields`.
    pub(super) fn parse(kind: &str, fields: Map<String, Value>) -> Result<Self, FieldError> {
        let fields = Value::Object(fields);
        Ok(match kind {
            "latency" => Self::Latency(de("", fields)?),
            "error" => Self::Error(de("", fields)?),
            "outage" => Self::Outage(de("", fields)?),
            "hang" => Self::Hang(de("", fields)?),
            "drop_notification" => Self::DropNotification(de("", fields)?),
            "delay_notification" => Self::DelayNotification(de("", fields)?),
            "duplicate_notification" => Self::DuplicateNotification(de("", fields)?),
            "disconnect" => Self::Disconnect(de("", fields)?),
            "claim_outcome" => Self::ClaimOutcome(de("", fields)?),
            "region_capacity" => Self::RegionCapacity(de("", fields)?),
            "ready_delay" => Self::ReadyDelay(de("", fields)?),
            "token_expiry" => Self::TokenExpiry(de("", fields)?),
            "revoke_user" => Self::RevokeUser(de("", fields)?),
            "jwks_rotation" => Self::JwksRotation(de("", fields)?),
            "ticket_expiry" => Self::TicketExpiry(de("", fields)?),
            other => {
                return Err(FieldError::new(
                    "kind",
                    format!(
                        "unknown kind `{other}`, expected one of {}",
                        KINDS.join(", ")
                    ),
                ));
            }
        })
    }
}
