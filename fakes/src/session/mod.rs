//! Session v2 (`/session/v1`): configuration templates (admin) and game sessions — create, get,
//! join, leave, invite, update, delete, the caller's sessions — with the lobby notifications the
//! client SDKs listen for, and `DSInformation` driven by the fleet ([`ds`]).
//!
//! Permissions are the spec's: templates need `ADMIN:NAMESPACE:{namespace}:SESSION:CONFIGURATION`
//! (CREATE/READ/DELETE); sessions `NAMESPACE:{namespace}:SESSION:GAME` (CREATE/READ/UPDATE/DELETE);
//! join and invite `NAMESPACE:{namespace}:SESSION:GAME:PLAYER` CREATE, leave its DELETE;
//! `users/me/gamesessions` any user token of the namespace. A session that is not `OPEN` is
//! visible to its invited and joined members only (and to clients). Errors are `response.Error`
//! (`attributes`, `errorCode`, `errorMessage`, `message`, `name`).
//!
//! Notifications (lobby `messageNotif`, payload base64 JSON, sent through the hub's one send
//! path so notification faults apply): `OnSessionInvited` to an invited user, `OnSessionJoined`
//! and `OnSessionMembersChanged` to the members when someone joins, `OnSessionMembersChanged`
//! when someone leaves, `OnGameSessionUpdated` after a PATCH, `OnDSStatusChanged` at each
//! `DSInformation` change. Parties are in [`party`] (state) and [`party_routes`] (routes and
//! their `OnParty*` notifications).
//!
//! Simplification: a `DS` session asks the fleet for its server as soon as it exists (a user's
//! create, or a match); AGS documents `NEED_TO_REQUEST` until `minPlayers` are active.

pub mod ds;
pub mod party;
pub mod party_routes;
pub mod store;

use accelbyte::models::error::codes;
use accelbyte::models::session::{
    ConfigurationTemplateResponse, ConfigurationTemplatesResponse,
    CreateConfigurationTemplateRequest, CreateGameSessionRequest, DsInformation, GameServer,
    GameSessionQueryResponse, GameSessionResponse, Member, Paging, PartyMembers,
    PublicConfiguration, SessionEndedNotif, SessionInviteRequest, SessionInvitedNotif,
    SessionJoinedNotif, SessionMembersChangedNotif, Team, UpdateGameSessionRequest, topics,
};
use accelbyte::permission::action;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorShape, code_for};
use crate::extract::JsonBody;
use crate::iam::store::new_id;
use crate::lobby::notify::send_json;
use crate::state::AppState;
use store::{GameSession, NewGameSession, SessionError, SessionPatch, Template};

/// Template types and joinabilities the spec names.
const KINDS: [&str; 3] = ["DS", "P2P", "NONE"];
const JOINABILITIES: [&str; 3] = ["OPEN", "CLOSED", "INVITE_ONLY"];

pub fn router() -> Router<AppState> {
    const ADMIN: &str = "/session/v1/admin/namespaces/{namespace}";
    const PUBLIC: &str = "/session/v1/public/namespaces/{namespace}";
    Router::new()
        .route("/session/healthz", get(healthz))
        .route(&format!("{ADMIN}/configuration"), post(create_template))
        .route(&format!("{ADMIN}/configurations"), get(list_templates))
        .route(
            &format!("{ADMIN}/configurations/{{name}}"),
            get(get_template).delete(delete_template),
        )
        .route(&format!("{PUBLIC}/gamesession"), post(create_session))
        .route(
            &format!("{PUBLIC}/gamesessions/{{sessionId}}"),
            get(get_session)
                .patch(update_session)
                .delete(delete_session),
        )
        .route(
            &format!("{PUBLIC}/gamesessions/{{sessionId}}/join"),
            post(join_session),
        )
        .route(
            &format!("{PUBLIC}/gamesessions/{{sessionId}}/leave"),
            delete(leave_session),
        )
        .route(
            &format!("{PUBLIC}/gamesessions/{{sessionId}}/invite"),
            post(invite),
        )
        .route(&format!("{PUBLIC}/users/me/gamesessions"), get(my_sessions))
        .merge(party_routes::router())
        .layer(Extension(ErrorShape::SessionBrowserV2))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"name": "session", "healthy": true, "dependencies": [], "others": []}))
}

/// Namespace (404), then permission (403), in the session error shape.
fn authorize(
    state: &AppState,
    caller: &Caller,
    namespace: &str,
    resource: &str,
    act: u32,
) -> ApiResult<()> {
    let shape = ErrorShape::SessionBrowserV2;
    state
        .iam
        .require_namespace(namespace)
        .map_err(|e| e.with_shape(shape))?;
    caller
        .require(resource, act)
        .map_err(|e| e.with_shape(shape))
}

fn user_of(caller: &Caller) -> ApiResult<String> {
    caller.user_id().map(str::to_owned).ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            codes::TOKEN_IS_NOT_USER_TOKEN,
            "this call needs a user token",
        )
        .with_shape(ErrorShape::SessionBrowserV2)
    })
}

fn error(e: SessionError) -> ApiError {
    let status = match &e {
        SessionError::TemplateNotFound(_) | SessionError::NotFound(_) => StatusCode::NOT_FOUND,
        SessionError::TemplateExists(_) | SessionError::VersionMismatch { .. } => {
            StatusCode::CONFLICT
        }
        SessionError::NotMember(_) | SessionError::NotLeader | SessionError::NotInvited(_) => {
            StatusCode::FORBIDDEN
        }
        SessionError::Full | SessionError::Closed => StatusCode::BAD_REQUEST,
        SessionError::TooMany => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, code_for(status), e.to_string()).with_shape(ErrorShape::SessionBrowserV2)
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message).with_shape(ErrorShape::SessionBrowserV2)
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

// ---- templates -----------------------------------------------------------------------------

fn template_view(t: &Template) -> ConfigurationTemplateResponse {
    ConfigurationTemplateResponse {
        attributes: t.attributes.clone(),
        auto_join: t.auto_join,
        client_version: t.client_version.clone(),
        created_at: rfc3339(t.created_at),
        deployment: t.deployment.clone(),
        ds_source: t.ds_source.clone(),
        inactive_timeout: t.inactive_timeout,
        invite_timeout: t.invite_timeout,
        joinability: t.joinability.clone(),
        last: rfc3339(t.updated_at),
        max_players: t.max_players,
        min_players: t.min_players,
        name: t.name.clone(),
        namespace: t.namespace.clone(),
        persistent: t.persistent,
        requested_regions: t.requested_regions.clone(),
        text_chat: t.text_chat,
        kind: t.kind.clone(),
        updated_at: rfc3339(t.updated_at),
    }
}

/// POST `/session/v1/admin/namespaces/{namespace}/configuration` (201).
async fn create_template(
    State(state): State<AppState>,
    caller: Caller,
    Path(namespace): Path<String>,
    JsonBody(body): JsonBody<CreateConfigurationTemplateRequest>,
) -> ApiResult<(StatusCode, Json<ConfigurationTemplateResponse>)> {
    let resource = format!("ADMIN:NAMESPACE:{namespace}:SESSION:CONFIGURATION");
    authorize(&state, &caller, &namespace, &resource, action::CREATE)?;
    if body.name.is_empty() {
        return Err(bad_request("name is required"));
    }
    let kind = body.kind.to_ascii_uppercase();
    if !KINDS.contains(&kind.as_str()) {
        return Err(bad_request(format!(
            "type must be one of {KINDS:?}, got {:?}",
            body.kind
        )));
    }
    let joinability = body.joinability.to_ascii_uppercase();
    if !JOINABILITIES.contains(&joinability.as_str()) {
        return Err(bad_request(format!(
            "joinability must be one of {JOINABILITIES:?}, got {:?}",
            body.joinability
        )));
    }
    if body.min_players < 0 || body.max_players < body.min_players || body.max_players == 0 {
        return Err(bad_request(format!(
            "players must satisfy 0 <= minPlayers <= maxPlayers and maxPlayers > 0, got {}..{}",
            body.min_players, body.max_players
        )));
    }
    let now = Utc::now();
    let template = state
        .game_sessions
        .create_template(Template {
            namespace,
            name: body.name,
            kind,
            joinability,
            min_players: body.min_players,
            max_players: body.max_players,
            invite_timeout: body.invite_timeout,
            inactive_timeout: body.inactive_timeout,
            client_version: body.client_version,
            deployment: body.deployment,
            requested_regions: body.requested_regions,
            persistent: body.persistent,
            text_chat: body.text_chat,
            auto_join: body.auto_join,
            ds_source: body.ds_source,
            attributes: body.attributes.unwrap_or_default(),
            created_at: now,
            updated_at: now,
        })
        .map_err(error)?;
    Ok((StatusCode::CREATED, Json(template_view(&template))))
}

/// GET `.../configurations`.
async fn list_templates(
    State(state): State<AppState>,
    caller: Caller,
    Path(namespace): Path<String>,
) -> ApiResult<Json<ConfigurationTemplatesResponse>> {
    let resource = format!("ADMIN:NAMESPACE:{namespace}:SESSION:CONFIGURATION");
    authorize(&state, &caller, &namespace, &resource, action::READ)?;
    Ok(Json(ConfigurationTemplatesResponse {
        data: state
            .game_sessions
            .templates(&namespace)
            .iter()
            .map(template_view)
            .collect(),
        paging: Paging::default(),
    }))
}

/// GET `.../configurations/{name}`.
async fn get_template(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Json<ConfigurationTemplateResponse>> {
    let resource = format!("ADMIN:NAMESPACE:{namespace}:SESSION:CONFIGURATION");
    authorize(&state, &caller, &namespace, &resource, action::READ)?;
    let template = state
        .game_sessions
        .template(&namespace, &name)
        .ok_or_else(|| error(SessionError::TemplateNotFound(name)))?;
    Ok(Json(template_view(&template)))
}

/// DELETE `.../configurations/{name}` (204).
async fn delete_template(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let resource = format!("ADMIN:NAMESPACE:{namespace}:SESSION:CONFIGURATION");
    authorize(&state, &caller, &namespace, &resource, action::DELETE)?;
    state
        .game_sessions
        .delete_template(&namespace, &name)
        .map_err(error)?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- game sessions -------------------------------------------------------------------------

/// A session as the spec's `apimodels.GameSessionResponse`.
pub fn session_view(s: &GameSession) -> GameSessionResponse {
    let t = &s.template;
    GameSessionResponse {
        ds_information: DsInformation {
            created_at: rfc3339(s.created_at),
            requested_at: s.ds.requested_at.map(rfc3339).unwrap_or_default(),
            server: s.ds.server.as_ref().map(|server| GameServer {
                alternate_ips: Vec::new(),
                custom_attribute: String::new(),
                deployment: server.deployment.clone(),
                game_version: server.game_version.clone(),
                image_version: crate::dsmc::IMAGE_VERSION.to_owned(),
                ip: server.ip.clone(),
                is_override_game_version: false,
                last_update: rfc3339(server.last_update),
                namespace: s.namespace.clone(),
                pod_name: server.pod_name.clone(),
                port: i32::from(server.port),
                ports: std::collections::BTreeMap::from([(
                    crate::dsmc::PORT_NAME.to_owned(),
                    i32::from(server.port),
                )]),
                protocol: "udp".to_owned(),
                provider: crate::dsmc::PROVIDER.to_owned(),
                region: server.region.clone(),
                session_id: s.id.clone(),
                source: "AMS".to_owned(),
                status: server.status.clone(),
            }),
            status: s.ds.status.to_owned(),
            status_v2: s.ds.status.to_owned(),
        },
        attributes: s.attributes.clone(),
        backfill_ticket_id: String::new(),
        code: String::new(),
        configuration: PublicConfiguration {
            auto_join: t.auto_join,
            client_version: t.client_version.clone(),
            deployment: t.deployment.clone(),
            ds_source: t.ds_source.clone(),
            inactive_timeout: t.inactive_timeout,
            invite_timeout: t.invite_timeout,
            joinability: s.joinability.clone(),
            max_players: s.max_players,
            min_players: s.min_players,
            name: t.name.clone(),
            persistent: t.persistent,
            requested_regions: t.requested_regions.clone(),
            text_chat: t.text_chat,
            kind: t.kind.clone(),
        },
        created_at: rfc3339(s.created_at),
        created_by: s.created_by.clone(),
        id: s.id.clone(),
        is_active: true,
        is_full: s.is_full(),
        leader_id: s.leader_id.clone(),
        match_pool: s.match_pool.clone(),
        members: members_view(&s.members),
        namespace: s.namespace.clone(),
        teams: s
            .teams
            .iter()
            .enumerate()
            .map(|(i, team)| Team {
                parties: team
                    .parties
                    .iter()
                    .map(|(party, users)| PartyMembers {
                        party_id: party.clone(),
                        user_ids: users.clone(),
                    })
                    .collect(),
                team_id: format!("team-{}", i + 1),
                user_ids: team.user_ids.clone(),
            })
            .collect(),
        ticket_ids: s.ticket_ids.clone(),
        updated_at: rfc3339(s.updated_at),
        version: s.version,
    }
}

/// A session's or a party's members as the spec's `apimodels.SessionMember`.
fn members_view(members: &[store::Member]) -> Vec<Member> {
    members
        .iter()
        .map(|m| Member {
            id: m.user_id.clone(),
            platform_id: String::new(),
            platform_user_id: String::new(),
            previous_status: m.previous_status.to_owned(),
            status: m.status.to_owned(),
            status_v2: m.status.to_owned(),
            updated_at: rfc3339(m.updated_at),
        })
        .collect()
}

/// `Ok` when `user_id` is a user of `namespace`; an invite of anyone else is a 404.
fn ensure_user(state: &AppState, namespace: &str, user_id: &str) -> ApiResult<()> {
    if state
        .iam
        .user(user_id)
        .is_none_or(|u| u.namespace != namespace)
    {
        return Err(ApiError::not_found(
            codes::USER_NOT_FOUND,
            format!("user {user_id} not found"),
        )
        .with_shape(ErrorShape::SessionBrowserV2));
    }
    Ok(())
}

/// Sends `body` on `topic` to each of `users`.
pub(super) fn tell<T: serde::Serialize>(
    state: &AppState,
    namespace: &str,
    users: &[String],
    topic: &str,
    body: &T,
) {
    for user in users {
        send_json(&state.lobby, namespace, user, topic, body);
    }
}

/// Tells invited members they were invited by `sender`.
pub fn announce_invites(state: &AppState, session: &GameSession, sender: &str) {
    let invited: Vec<String> = session
        .members
        .iter()
        .filter(|m| m.status == accelbyte::models::session::member_status::INVITED)
        .map(|m| m.user_id.clone())
        .collect();
    let body = SessionInvitedNotif {
        session_id: session.id.clone(),
        sender_id: sender.to_owned(),
    };
    tell(
        state,
        &session.namespace,
        &invited,
        topics::SESSION_INVITED,
        &body,
    );
}

fn announce_members_changed(state: &AppState, session: &GameSession, joiner: &str) {
    let body = SessionMembersChangedNotif {
        session: session_view(session),
        joiner_id: joiner.to_owned(),
        leader_id: session.leader_id.clone(),
    };
    tell(
        state,
        &session.namespace,
        &session.audience(),
        topics::SESSION_MEMBERS_CHANGED,
        &body,
    );
}

/// POST `.../gamesession` (201): the caller (a user) creates and joins; a DS template's
/// session asks the fleet for a server at once.
async fn create_session(
    State(state): State<AppState>,
    caller: Caller,
    Path(namespace): Path<String>,
    JsonBody(body): JsonBody<CreateGameSessionRequest>,
) -> ApiResult<(StatusCode, Json<GameSessionResponse>)> {
    let resource = format!("NAMESPACE:{namespace}:SESSION:GAME");
    authorize(&state, &caller, &namespace, &resource, action::CREATE)?;
    if let Some(joinability) = &body.joinability {
        if !JOINABILITIES.contains(&joinability.as_str()) {
            return Err(bad_request(format!(
                "joinability must be one of {JOINABILITIES:?}, got {joinability:?}"
            )));
        }
    }
    let creator = caller.user_id().map(str::to_owned);
    let session = state
        .game_sessions
        .create(
            NewGameSession {
                namespace: namespace.clone(),
                template_name: body.configuration_name,
                created_by: creator
                    .clone()
                    .unwrap_or_else(|| caller.claims.client_id.clone()),
                joined: creator.clone().into_iter().collect(),
                invited: Vec::new(),
                attributes: body.attributes,
                joinability: body.joinability,
                min_players: body.min_players,
                max_players: body.max_players,
                requested_regions: body.requested_regions,
                match_pool: body.match_pool.unwrap_or_default(),
                teams: Vec::new(),
                ticket_ids: body.ticket_ids.unwrap_or_default(),
            },
            new_id(),
        )
        .map_err(error)?;
    if session.ds.status == accelbyte::models::session::ds_status::NEED_TO_REQUEST {
        ds::request_server(&state, &session, None);
    }
    Ok((StatusCode::CREATED, Json(session_view(&session))))
}

/// GET `.../gamesessions/{sessionId}`.
async fn get_session(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, id)): Path<(String, String)>,
) -> ApiResult<Json<GameSessionResponse>> {
    let resource = format!("NAMESPACE:{namespace}:SESSION:GAME");
    authorize(&state, &caller, &namespace, &resource, action::READ)?;
    let session = state
        .game_sessions
        .get(&namespace, &id)
        .ok_or_else(|| error(SessionError::NotFound(id)))?;
    // Only its members (invited or joined) see a session that is not OPEN; clients with the
    // permission always do.
    if let Some(user) = caller.user_id() {
        if session.joinability != "OPEN" && !session.audience().iter().any(|m| m == user) {
            return Err(error(SessionError::NotMember(user.to_owned())));
        }
    }
    Ok(Json(session_view(&session)))
}

/// PATCH `.../gamesessions/{sessionId}`: the leader (or a client) changes attributes,
/// joinability or player limits, naming the current `version`.
async fn update_session(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, id)): Path<(String, String)>,
    JsonBody(body): JsonBody<UpdateGameSessionRequest>,
) -> ApiResult<Json<GameSessionResponse>> {
    let resource = format!("NAMESPACE:{namespace}:SESSION:GAME");
    authorize(&state, &caller, &namespace, &resource, action::UPDATE)?;
    if let Some(joinability) = &body.joinability {
        if !JOINABILITIES.contains(&joinability.as_str()) {
            return Err(bad_request(format!(
                "joinability must be one of {JOINABILITIES:?}, got {joinability:?}"
            )));
        }
    }
    let session = state
        .game_sessions
        .update(
            &namespace,
            &id,
            caller.user_id(),
            SessionPatch {
                version: body.version,
                attributes: body.attributes,
                joinability: body.joinability,
                min_players: body.min_players,
                max_players: body.max_players,
            },
        )
        .map_err(error)?;
    let view = session_view(&session);
    tell(
        &state,
        &namespace,
        &session.audience(),
        topics::GAME_SESSION_UPDATED,
        &view,
    );
    Ok(Json(view))
}

/// DELETE `.../gamesessions/{sessionId}` (204): the leader (or a client) ends the session; its
/// dedicated server goes back to the fleet.
async fn delete_session(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let resource = format!("NAMESPACE:{namespace}:SESSION:GAME");
    authorize(&state, &caller, &namespace, &resource, action::DELETE)?;
    let session = state
        .game_sessions
        .delete(&namespace, &id, caller.user_id())
        .map_err(error)?;
    state.dsmc.delete(&namespace, &id);
    let body = SessionEndedNotif {
        session_id: session.id.clone(),
    };
    tell(
        &state,
        &namespace,
        &session.audience(),
        topics::SESSION_ENDED,
        &body,
    );
    Ok(StatusCode::NO_CONTENT)
}

/// POST `.../gamesessions/{sessionId}/join`.
async fn join_session(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, id)): Path<(String, String)>,
) -> ApiResult<Json<GameSessionResponse>> {
    let resource = format!("NAMESPACE:{namespace}:SESSION:GAME:PLAYER");
    authorize(&state, &caller, &namespace, &resource, action::CREATE)?;
    let user = user_of(&caller)?;
    let session = state
        .game_sessions
        .join(&namespace, &id, &user)
        .map_err(error)?;
    let joined = SessionJoinedNotif {
        session_id: session.id.clone(),
        members: members_view(&session.members),
    };
    tell(
        &state,
        &namespace,
        &session.audience(),
        topics::SESSION_JOINED,
        &joined,
    );
    announce_members_changed(&state, &session, &user);
    Ok(Json(session_view(&session)))
}

/// DELETE `.../gamesessions/{sessionId}/leave` (204).
async fn leave_session(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let resource = format!("NAMESPACE:{namespace}:SESSION:GAME:PLAYER");
    authorize(&state, &caller, &namespace, &resource, action::DELETE)?;
    let user = user_of(&caller)?;
    let session = state
        .game_sessions
        .leave(&namespace, &id, &user)
        .map_err(error)?;
    announce_members_changed(&state, &session, "");
    Ok(StatusCode::NO_CONTENT)
}

/// POST `.../gamesessions/{sessionId}/invite` (201): a joined member invites a user.
async fn invite(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, id)): Path<(String, String)>,
    JsonBody(body): JsonBody<SessionInviteRequest>,
) -> ApiResult<StatusCode> {
    let resource = format!("NAMESPACE:{namespace}:SESSION:GAME:PLAYER");
    authorize(&state, &caller, &namespace, &resource, action::CREATE)?;
    let user = user_of(&caller)?;
    ensure_user(&state, &namespace, &body.user_id)?;
    let session = state
        .game_sessions
        .invite(&namespace, &id, &user, &body.user_id)
        .map_err(error)?;
    let notif = SessionInvitedNotif {
        session_id: session.id.clone(),
        sender_id: user,
    };
    send_json(
        &state.lobby,
        &namespace,
        &body.user_id,
        topics::SESSION_INVITED,
        &notif,
    );
    Ok(StatusCode::CREATED)
}

/// GET `.../users/me/gamesessions`: sessions the caller is invited to or in.
async fn my_sessions(
    State(state): State<AppState>,
    caller: Caller,
    Path(namespace): Path<String>,
) -> ApiResult<Json<GameSessionQueryResponse>> {
    state
        .iam
        .require_namespace(&namespace)
        .map_err(|e| e.with_shape(ErrorShape::SessionBrowserV2))?;
    let user = user_of(&caller)?;
    Ok(Json(GameSessionQueryResponse {
        data: state
            .game_sessions
            .of_user(&namespace, &user)
            .iter()
            .map(session_view)
            .collect(),
        paging: Paging::default(),
    }))
}
