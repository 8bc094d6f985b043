//! Session Browser wire models (`/sessionbrowser`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `models.GameSessionSetting`. Every field but `settings` is required on create.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GameSessionSetting {
    pub allow_join_in_progress: bool,
    pub current_internal_player: i32,
    pub current_player: i32,
    pub map_name: String,
    pub max_internal_player: i32,
    pub max_player: i32,
    pub mode: String,
    pub num_bot: i32,
    pub password: String,
    #[serde(default)]
    pub settings: serde_json::Map<String, serde_json::Value>,
}

/// `POST /sessionbrowser/namespaces/{ns}/gamesession` body (`models.CreateSessionRequest`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateSessionRequest {
    pub game_session_setting: GameSessionSetting,
    pub game_version: String,
    pub namespace: String,
    /// `dedicated` or `p2p`.
    pub session_type: String,
    pub username: String,
}

/// `POST .../gamesession/{id}/player` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddPlayerRequest {
    pub as_spectator: bool,
    pub user_id: String,
}

/// Answer of add/remove player.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AddPlayerResponse {
    pub status: bool,
}

/// `PUT .../gamesession/{id}` body (`models.UpdateSessionRequest`: `game_max_player` only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateSessionRequest {
    pub game_max_player: i32,
}

/// `POST .../gamesession/{id}/join` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinSessionRequest {
    pub password: String,
}

/// One member of a matched party.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct MatchPartyMember {
    pub user_id: String,
    /// Left out when empty: DSMC's `models.RequestMatchMember` (which shares this type) has only
    /// `user_id`, and the sample's DSMC create body lists members as `{"user_id": ...}`.
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra_attributes: serde_json::Map<String, serde_json::Value>,
}

/// A party inside a match ally.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct MatchingParty {
    pub party_id: String,
    pub party_attributes: serde_json::Map<String, serde_json::Value>,
    pub party_members: Vec<MatchPartyMember>,
}

/// One team of a match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct MatchingAlly {
    pub matching_parties: Vec<MatchingParty>,
}

/// `models.MatchMaking`: the match record a session may carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct MatchMaking {
    pub channel: String,
    pub client_version: String,
    pub created_at: String,
    pub deployment: String,
    pub event: String,
    pub game_mode: String,
    pub joinable: bool,
    pub match_id: String,
    pub matching_allies: Vec<MatchingAlly>,
    pub namespace: String,
    pub party_attributes: serde_json::Map<String, serde_json::Value>,
    pub party_id: String,
    pub queued_at: i64,
    pub region: String,
    pub server_name: String,
    pub status: String,
    pub sub_game_mode: Vec<String>,
}

/// A status change of a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct StatusHistory {
    pub status: String,
    pub time_stamp: String,
}

/// `models.Server` as the session browser copies it from DSMC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct SessionServer {
    pub allocation_id: String,
    pub alternate_ips: Vec<String>,
    pub cpu_limit: i32,
    pub cpu_request: String,
    pub deployment: String,
    pub game_version: String,
    pub image_version: String,
    pub ip: String,
    pub is_override_game_version: bool,
    pub last_update: String,
    pub mem_limit: i32,
    pub mem_request: String,
    pub namespace: String,
    pub params: String,
    pub pod_name: String,
    pub port: i32,
    pub ports: BTreeMap<String, i32>,
    pub provider: String,
    pub region: String,
    pub session_id: String,
    pub status: String,
    pub status_history: Vec<StatusHistory>,
}

/// `models.SessionResponse` (also `models.GameSession` inside query results).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionResponse {
    #[serde(default)]
    pub all_players: Vec<String>,
    #[serde(default)]
    pub created_at: String,
    pub game_session_setting: GameSessionSetting,
    #[serde(default)]
    pub game_version: String,
    #[serde(default)]
    pub joinable: bool,
    #[serde(default, rename = "match")]
    pub match_: MatchMaking,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub players: Vec<String>,
    #[serde(default)]
    pub server: SessionServer,
    pub session_id: String,
    #[serde(default)]
    pub session_type: String,
    #[serde(default)]
    pub spectators: Vec<String>,
    #[serde(default)]
    pub user_id: String,
    #[serde(default)]
    pub username: String,
}

/// Cursor links of a query page; empty strings when there is no such page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Pagination {
    pub next: String,
    pub previous: String,
}

/// `GET .../gamesession` (query) answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct QuerySessionResponse {
    pub pagination: Pagination,
    pub sessions: Vec<SessionResponse>,
}

/// `GET .../gamesession/bulk` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct SessionByUserIdsResponse {
    pub data: Vec<SessionResponse>,
}
