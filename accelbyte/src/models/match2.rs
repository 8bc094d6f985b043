//! Matchmaking v2 (`/match2`) wire models: rule sets, match pools, match tickets and the
//! notifications matchmaking sends through the lobby (topic + base64 JSON payload).
//!
//! Field names follow the AGS `match2` OpenAPI spec (`api.RuleSetPayload`, `api.MatchPool`,
//! `api.MatchTicketRequest`, …). Errors are `response.Error` (`ErrorCode`, `ErrorMessage`), the
//! PascalCase shape of [`crate::models::error::LobbyNotificationError`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Lobby notification topics matchmaking v2 sends.
pub mod topics {
    pub const MATCHMAKING_STARTED: &str = "OnMatchmakingStarted";
    pub const MATCH_FOUND: &str = "OnMatchFound";
    pub const TICKET_EXPIRED: &str = "OnMatchmakingTicketExpired";
    pub const TICKET_CANCELED: &str = "OnMatchmakingTicketCanceled";
}

/// `api.RuleSetPayload`: a named rule set; `data` is the ruleset JSON the match function reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleSetPayload {
    pub data: serde_json::Value,
    pub enable_custom_match_function: bool,
    pub name: String,
}

/// `api.MatchFunctionOverride`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct MatchFunctionOverride {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub backfill_matches: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub enrichment: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub make_matches: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stat_codes: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub validation: Vec<String>,
}

/// `api.MatchPool` (create body and details answer). The expirations default to 300 s when
/// zero, as AGS documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchPool {
    pub auto_accept_backfill_proposal: bool,
    pub backfill_proposal_expiration_seconds: i32,
    pub backfill_ticket_expiration_seconds: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub best_latency_calculation_method: String,
    #[serde(default)]
    pub crossplay_disabled: bool,
    pub match_function: String,
    pub match_function_override: MatchFunctionOverride,
    pub name: String,
    #[serde(default)]
    pub platform_group_enabled: bool,
    pub rule_set: String,
    pub session_template: String,
    pub ticket_expiration_seconds: i32,
}

/// `api.ListRuleSetsResponse`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ListRuleSetsResponse {
    pub data: Vec<RuleSetPayload>,
    pub pagination: Pagination,
}

impl Default for RuleSetPayload {
    fn default() -> Self {
        Self {
            data: serde_json::Value::Object(serde_json::Map::new()),
            enable_custom_match_function: false,
            name: String::new(),
        }
    }
}

/// `api.ListMatchPoolsResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ListMatchPoolsResponse {
    pub data: Vec<MatchPool>,
    pub pagination: Pagination,
}

/// `models.Pagination`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Pagination {
    pub first: String,
    pub last: String,
    pub next: String,
    pub previous: String,
}

/// `api.MatchTicketRequest`. `attributes` and `latencies` are required by the spec; a party
/// leader passes the party's id in `sessionID`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchTicketRequest {
    pub attributes: serde_json::Map<String, serde_json::Value>,
    #[serde(
        rename = "excludedSessions",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub excluded_sessions: Vec<String>,
    pub latencies: BTreeMap<String, i64>,
    #[serde(rename = "matchPool")]
    pub match_pool: String,
    #[serde(
        rename = "sessionID",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub session_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<serde_json::Value>,
}

/// `api.MatchTicketResponse` (201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct MatchTicketResponse {
    #[serde(rename = "matchTicketID")]
    pub match_ticket_id: String,
    #[serde(rename = "queueTime")]
    pub queue_time: i32,
}

/// `api.ProposedProposal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ProposedProposal {
    #[serde(rename = "backfillID")]
    pub backfill_id: String,
    #[serde(rename = "proposalID")]
    pub proposal_id: String,
    pub status: String,
}

/// `api.MatchTicketStatus`: `GET .../match-tickets/{id}` and the rows of `.../me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct MatchTicketStatus {
    #[serde(rename = "isActive")]
    pub is_active: bool,
    #[serde(rename = "matchFound")]
    pub match_found: bool,
    #[serde(rename = "matchPool")]
    pub match_pool: String,
    #[serde(rename = "matchTicketID")]
    pub match_ticket_id: String,
    #[serde(rename = "proposedProposal")]
    pub proposed_proposal: ProposedProposal,
    #[serde(rename = "sessionID")]
    pub session_id: String,
}

/// `api.MatchTicketStatuses`: `GET .../match-tickets/me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct MatchTicketStatuses {
    pub data: Vec<MatchTicketStatus>,
    pub pagination: Pagination,
}

/// `OnMatchmakingStarted` payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct MatchmakingStartedNotif {
    #[serde(rename = "ticketID")]
    pub ticket_id: String,
    #[serde(rename = "partyID")]
    pub party_id: String,
    pub namespace: String,
    #[serde(rename = "createdAt")]
    pub created_at: String,
    #[serde(rename = "matchPool")]
    pub match_pool: String,
}

/// `OnMatchmakingTicketExpired` payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct TicketExpiredNotif {
    #[serde(rename = "ticketID")]
    pub ticket_id: String,
    pub namespace: String,
    #[serde(rename = "createdAt")]
    pub created_at: String,
    #[serde(rename = "matchPool")]
    pub match_pool: String,
}

/// One ticket of a match in `OnMatchFound`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct MatchedTicket {
    #[serde(rename = "ticketID")]
    pub ticket_id: String,
}

/// `OnMatchFound` payload: `id` is the game session created for the match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct MatchFoundNotif {
    pub id: String,
    pub namespace: String,
    #[serde(rename = "createdAt")]
    pub created_at: String,
    #[serde(rename = "matchPool")]
    pub match_pool: String,
    pub teams: Vec<crate::models::session::Team>,
    pub tickets: Vec<MatchedTicket>,
}
