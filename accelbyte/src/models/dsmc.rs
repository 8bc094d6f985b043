//! DSMC wire models (`/dsmcontroller`): register a session, claim its server, read it back.
//!
//! `Session` serialises its server under a capital `Server` key: the Python SDK reads only that
//! spelling, and a lowercase key would leave the sample's `session.Server.ip` unset.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use crate::models::sessionbrowser::{
    MatchPartyMember, MatchingAlly, MatchingParty, StatusHistory,
};

/// Server statuses.
pub mod status {
    pub const CREATING: &str = "CREATING";
    pub const READY: &str = "READY";
    pub const BUSY: &str = "BUSY";
    pub const REMOVING: &str = "REMOVING";
    pub const UNREACHABLE: &str = "UNREACHABLE";
}

/// `POST /dsmcontroller/namespaces/{ns}/sessions` body (`models.CreateSessionRequest`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateSessionRequest {
    pub client_version: String,
    pub configuration: String,
    pub deployment: String,
    pub game_mode: String,
    pub matching_allies: Vec<MatchingAlly>,
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_payload: Option<serde_json::Value>,
    pub pod_name: String,
    pub region: String,
    pub session_id: String,
}

/// `POST .../sessions/claim` body. Only `session_id` is required; the 2025 spec's extra fields
/// are accepted and ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimSessionRequest {
    pub session_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub game_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matching_allies: Option<Vec<MatchingAlly>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_payload: Option<serde_json::Value>,
}

/// `models.Server`: one dedicated server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Server {
    pub allocation_id: String,
    pub alternate_ips: Vec<String>,
    pub artifact_path: String,
    pub cpu_limit: i32,
    pub created_at: String,
    pub custom_attribute: String,
    pub deployment: String,
    pub game_version: String,
    pub image_version: String,
    pub ip: String,
    pub is_override_game_version: bool,
    pub is_override_region: bool,
    pub job_id: String,
    pub last_update: String,
    pub mem_limit: i32,
    pub namespace: String,
    pub params: String,
    pub pod_name: String,
    pub port: i32,
    pub ports: BTreeMap<String, i32>,
    pub protocol: String,
    pub provider: String,
    pub region: String,
    pub session_id: String,
    pub status: String,
    pub status_history: Vec<StatusHistory>,
    pub termination_reason: String,
    pub ulimit_file_size: i32,
}

/// `models.Session`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Session {
    #[serde(rename = "Server")]
    pub server: Server,
    pub id: String,
    pub namespace: String,
    pub provider: String,
    pub region: String,
}

/// `models.SessionResponse`: the answer of register and get.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct SessionResponse {
    pub session: Session,
}

/// Cursor links of an admin list page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Paging {
    pub next: String,
    pub previous: String,
}

/// `GET /dsmcontroller/admin/namespaces/{ns}/sessions` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ListSessionResponse {
    pub paging: Paging,
    pub sessions: Vec<Session>,
}
