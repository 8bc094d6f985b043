//! Session v2 (`/session/v1`) wire models: configuration templates, game sessions with their
//! members and `DSInformation`, and the notifications the session service sends through the
//! lobby (topic + base64 JSON payload).
//!
//! Parties (`apimodels.CreatePartyRequest`, `PartySessionResponse`, …) share the session's
//! member and configuration types; their notifications are `OnParty*`, leader changes riding on
//! `OnPartyMembersChanged` (its `leaderID`) and `OnPartyUpdated` as AGS sends them.
//!
//! Field names follow the AGS `session` OpenAPI spec (`apimodels.*`, `models.GameServer`,
//! `models.Team`). Errors are `response.Error` (`attributes`, `errorCode`, `errorMessage`,
//! `message`, `name`), the shape of [`crate::models::error::SessionBrowserErrorV2`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Lobby notification topics the session service sends.
pub mod topics {
    pub const SESSION_INVITED: &str = "OnSessionInvited";
    pub const SESSION_JOINED: &str = "OnSessionJoined";
    pub const SESSION_MEMBERS_CHANGED: &str = "OnSessionMembersChanged";
    pub const SESSION_KICKED: &str = "OnSessionKicked";
    pub const GAME_SESSION_UPDATED: &str = "OnGameSessionUpdated";
    pub const SESSION_ENDED: &str = "OnSessionEnded";
    pub const DS_STATUS_CHANGED: &str = "OnDSStatusChanged";
    pub const PARTY_INVITED: &str = "OnPartyInvited";
    pub const PARTY_JOINED: &str = "OnPartyJoined";
    pub const PARTY_MEMBERS_CHANGED: &str = "OnPartyMembersChanged";
    pub const PARTY_REJECTED: &str = "OnPartyRejected";
    pub const PARTY_KICKED: &str = "OnPartyKicked";
    pub const PARTY_UPDATED: &str = "OnPartyUpdated";
}

/// `DSInformation.StatusV2` values, in the order a claim goes through them.
pub mod ds_status {
    pub const NEED_TO_REQUEST: &str = "NEED_TO_REQUEST";
    pub const REQUESTED: &str = "REQUESTED";
    pub const AVAILABLE: &str = "AVAILABLE";
    pub const FAILED_TO_REQUEST: &str = "FAILED_TO_REQUEST";
    pub const ENDED: &str = "ENDED";
}

/// Member `status` / `statusV2` values.
pub mod member_status {
    pub const INVITED: &str = "INVITED";
    pub const JOINED: &str = "JOINED";
    pub const CONNECTED: &str = "CONNECTED";
    pub const LEFT: &str = "LEFT";
    pub const KICKED: &str = "KICKED";
    pub const REJECTED: &str = "REJECTED";
}

/// `apimodels.CreateConfigurationTemplateRequest` (its required fields, plus the optional ones
/// fakes acts on).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateConfigurationTemplateRequest {
    pub client_version: String,
    pub deployment: String,
    pub inactive_timeout: i32,
    pub invite_timeout: i32,
    pub joinability: String,
    pub max_players: i32,
    pub min_players: i32,
    pub name: String,
    pub persistent: bool,
    pub requested_regions: Vec<String>,
    pub text_chat: bool,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_join: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ds_source: String,
}

/// `apimodels.ConfigurationTemplateResponse`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ConfigurationTemplateResponse {
    pub attributes: Map<String, Value>,
    pub auto_join: bool,
    pub client_version: String,
    pub created_at: String,
    pub deployment: String,
    pub ds_source: String,
    pub inactive_timeout: i32,
    pub invite_timeout: i32,
    pub joinability: String,
    pub last: String,
    pub max_players: i32,
    pub min_players: i32,
    pub name: String,
    pub namespace: String,
    pub persistent: bool,
    pub requested_regions: Vec<String>,
    pub text_chat: bool,
    #[serde(rename = "type")]
    pub kind: String,
    pub updated_at: String,
}

/// `apimodels.Pagination`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Paging {
    pub first: String,
    pub last: String,
    pub next: String,
    pub previous: String,
}

/// `apimodels.ConfigurationTemplatesResponse`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ConfigurationTemplatesResponse {
    pub data: Vec<ConfigurationTemplateResponse>,
    pub paging: Paging,
}

/// `apimodels.PublicConfiguration`: the template as a session reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct PublicConfiguration {
    pub auto_join: bool,
    pub client_version: String,
    pub deployment: String,
    pub ds_source: String,
    pub inactive_timeout: i32,
    pub invite_timeout: i32,
    pub joinability: String,
    pub max_players: i32,
    pub min_players: i32,
    pub name: String,
    pub persistent: bool,
    pub requested_regions: Vec<String>,
    pub text_chat: bool,
    #[serde(rename = "type")]
    pub kind: String,
}

/// `models.PartyMembers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct PartyMembers {
    #[serde(rename = "partyID")]
    pub party_id: String,
    #[serde(rename = "userIDs")]
    pub user_ids: Vec<String>,
}

/// `models.Team`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Team {
    pub parties: Vec<PartyMembers>,
    #[serde(rename = "teamID")]
    pub team_id: String,
    #[serde(rename = "userIDs")]
    pub user_ids: Vec<String>,
}

/// `apimodels.UserResponse`: a session member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Member {
    pub id: String,
    #[serde(rename = "platformID")]
    pub platform_id: String,
    #[serde(rename = "platformUserID")]
    pub platform_user_id: String,
    #[serde(rename = "previousStatus")]
    pub previous_status: String,
    pub status: String,
    #[serde(rename = "statusV2")]
    pub status_v2: String,
    #[serde(rename = "updatedAt")]
    pub updated_at: String,
}

/// `models.GameServer`: the dedicated server a session got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct GameServer {
    pub alternate_ips: Vec<String>,
    pub custom_attribute: String,
    pub deployment: String,
    pub game_version: String,
    pub image_version: String,
    pub ip: String,
    pub is_override_game_version: bool,
    pub last_update: String,
    pub namespace: String,
    pub pod_name: String,
    pub port: i32,
    pub ports: std::collections::BTreeMap<String, i32>,
    pub protocol: String,
    pub provider: String,
    pub region: String,
    pub session_id: String,
    pub source: String,
    pub status: String,
}

/// `apimodels.DSInformationResponse` (PascalCase keys on the wire).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct DsInformation {
    #[serde(rename = "CreatedAt")]
    pub created_at: String,
    #[serde(rename = "RequestedAt")]
    pub requested_at: String,
    #[serde(rename = "Server", skip_serializing_if = "Option::is_none")]
    pub server: Option<GameServer>,
    #[serde(rename = "Status")]
    pub status: String,
    #[serde(rename = "StatusV2")]
    pub status_v2: String,
}

/// `apimodels.GameSessionResponse`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct GameSessionResponse {
    #[serde(rename = "DSInformation")]
    pub ds_information: DsInformation,
    pub attributes: Map<String, Value>,
    #[serde(rename = "backfillTicketID")]
    pub backfill_ticket_id: String,
    pub code: String,
    pub configuration: PublicConfiguration,
    #[serde(rename = "createdAt")]
    pub created_at: String,
    #[serde(rename = "createdBy")]
    pub created_by: String,
    pub id: String,
    #[serde(rename = "isActive")]
    pub is_active: bool,
    #[serde(rename = "isFull")]
    pub is_full: bool,
    #[serde(rename = "leaderID")]
    pub leader_id: String,
    #[serde(rename = "matchPool")]
    pub match_pool: String,
    pub members: Vec<Member>,
    pub namespace: String,
    pub teams: Vec<Team>,
    #[serde(rename = "ticketIDs")]
    pub ticket_ids: Vec<String>,
    #[serde(rename = "updatedAt")]
    pub updated_at: String,
    pub version: i32,
}

/// `apimodels.GameSessionQueryResponse` (`users/me/gamesessions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct GameSessionQueryResponse {
    pub data: Vec<GameSessionResponse>,
    pub paging: Paging,
}

/// `apimodels.CreateGameSessionRequest`. The spec lists every field as required, but the client
/// SDKs send only what they set (Unity: `EmitDefaultValue = false`), so only
/// `configurationName` is required here; the rest default to the template's values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateGameSessionRequest {
    pub configuration_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joinability: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_pool: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_players: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_players: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_regions: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams: Option<Vec<Team>>,
    #[serde(rename = "ticketIDs", default, skip_serializing_if = "Option::is_none")]
    pub ticket_ids: Option<Vec<String>>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// `apimodels.UpdateGameSessionRequest` (PATCH): `version` must match the session's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateGameSessionRequest {
    pub version: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joinability: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_players: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_players: Option<i32>,
}

/// `apimodels.SessionInviteRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInviteRequest {
    #[serde(rename = "platformID", default)]
    pub platform_id: String,
    #[serde(rename = "userID")]
    pub user_id: String,
}

/// `OnSessionInvited` payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct SessionInvitedNotif {
    #[serde(rename = "sessionID")]
    pub session_id: String,
    #[serde(rename = "senderID")]
    pub sender_id: String,
}

/// `OnSessionJoined` payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct SessionJoinedNotif {
    #[serde(rename = "sessionID")]
    pub session_id: String,
    pub members: Vec<Member>,
}

/// `OnSessionMembersChanged` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct SessionMembersChangedNotif {
    pub session: GameSessionResponse,
    #[serde(rename = "joinerID")]
    pub joiner_id: String,
    #[serde(rename = "leaderID")]
    pub leader_id: String,
}

/// `OnDSStatusChanged` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct DsStatusChangedNotif {
    pub session: GameSessionResponse,
    #[serde(rename = "sessionID")]
    pub session_id: String,
    pub error: String,
}

/// `OnSessionEnded` payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct SessionEndedNotif {
    #[serde(rename = "sessionID")]
    pub session_id: String,
}

// ---- parties -------------------------------------------------------------------------------

/// `apimodels.RequestMember`: a member named in a party's create body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestMember {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "PlatformID")]
    pub platform_id: String,
    #[serde(rename = "PlatformUserID")]
    pub platform_user_id: String,
}

/// `apimodels.CreatePartyRequest` (every field the spec requires is required). An empty
/// `configurationName` means AGS's default party configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatePartyRequest {
    pub attributes: Map<String, Value>,
    pub configuration_name: String,
    pub inactive_timeout: i32,
    pub invite_timeout: i32,
    pub joinability: String,
    pub max_players: i32,
    pub members: Vec<RequestMember>,
    pub min_players: i32,
    pub text_chat: bool,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// `apimodels.UpdatePartyRequest` (PUT replaces, PATCH updates; both name the current
/// `version`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdatePartyRequest {
    pub attributes: Map<String, Value>,
    pub inactive_timeout: i32,
    pub invite_timeout: i32,
    pub joinability: String,
    pub max_players: i32,
    pub min_players: i32,
    #[serde(rename = "type")]
    pub kind: String,
    pub version: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// `apimodels.PartySessionResponse`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct PartySessionResponse {
    pub attributes: Map<String, Value>,
    pub code: String,
    pub configuration: PublicConfiguration,
    #[serde(rename = "createdAt")]
    pub created_at: String,
    #[serde(rename = "createdBy")]
    pub created_by: String,
    #[serde(rename = "expiredAt", skip_serializing_if = "String::is_empty")]
    pub expired_at: String,
    pub id: String,
    #[serde(rename = "isActive")]
    pub is_active: bool,
    #[serde(rename = "isFull")]
    pub is_full: bool,
    #[serde(rename = "leaderID")]
    pub leader_id: String,
    pub members: Vec<Member>,
    pub namespace: String,
    #[serde(rename = "updatedAt")]
    pub updated_at: String,
    pub version: i32,
}

/// `apimodels.PartyQueryResponse` (`users/me/parties`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct PartyQueryResponse {
    pub data: Vec<PartySessionResponse>,
    pub paging: Paging,
}

/// `apimodels.JoinSessionRequest` (the party join body; `password` for protected parties).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct JoinSessionRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// `apimodels.JoinByCodeRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinByCodeRequest {
    pub code: String,
}

/// `apimodels.PromoteLeaderRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromoteLeaderRequest {
    #[serde(rename = "leaderID")]
    pub leader_id: String,
}

/// `apimodels.SessionInviteResponse` (a party invite's 201 answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct SessionInviteResponse {
    #[serde(rename = "platformUserID")]
    pub platform_user_id: String,
}

/// `apimodels.KickResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct KickResponse {
    #[serde(rename = "leaderID")]
    pub leader_id: String,
    pub members: Vec<Member>,
    #[serde(rename = "partyID")]
    pub party_id: String,
}

/// `OnPartyInvited` payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct PartyInvitedNotif {
    #[serde(rename = "partyID")]
    pub party_id: String,
    #[serde(rename = "senderID")]
    pub sender_id: String,
}

/// `OnPartyJoined` payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct PartyJoinedNotif {
    #[serde(rename = "partyID")]
    pub party_id: String,
    pub members: Vec<Member>,
}

/// `OnPartyMembersChanged` payload: the party after the change, who joined (empty when
/// someone left or was kicked) and the leader (a leader change is announced here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct PartyMembersChangedNotif {
    pub session: PartySessionResponse,
    #[serde(rename = "joinerID")]
    pub joiner_id: String,
    #[serde(rename = "leaderID")]
    pub leader_id: String,
}

/// `OnPartyRejected` payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct PartyRejectedNotif {
    #[serde(rename = "partyID")]
    pub party_id: String,
    #[serde(rename = "rejectedID")]
    pub rejected_id: String,
    pub members: Vec<Member>,
}

/// `OnPartyKicked` payload (to the kicked user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct PartyKickedNotif {
    #[serde(rename = "partyID")]
    pub party_id: String,
}
