//! Session Browser (`/sessionbrowser`): game sessions players are added to, queried and joined.
//! The sessions live in [`store`]; this module is the HTTP edge that checks the caller,
//! validates bodies, adds what the DSMC fleet knows about each session's server, and converts
//! to wire types.
//!
//! Every route is Bearer with `NAMESPACE:{namespace}:SESSIONBROWSER:SESSION`: CREATE to create,
//! READ to get, query, join and bulk-get, UPDATE to add or remove players and to update a session
//! or its settings, DELETE to delete. The admin get needs
//! `ADMIN:NAMESPACE:{namespace}:SESSIONBROWSER:SESSION` READ. Checks run before the body is read:
//! token (401), namespace (404), permission (403).
//!
//! Error shapes follow the spec: create, update, settings, add, remove and join (and the admin
//! get) answer `restapi.ErrorResponseV2`; get, delete, query and bulk answer `response.Error`.
//! 500s answer in the route's shape too, except create, whose spec gives its 500 as
//! `response.Error`. Each route carries its shape as a request extension, so bad tokens, bad
//! JSON and oversized bodies answer in it too.
//!
//! Joinable, and the dedicated server: see [`store::GameSession::joinable`]. A dedicated session
//! has a server once the DSMC session with the same id (the tutorial reuses the session browser
//! id when it registers) is claimed; from then on the session's `server` carries that DS record
//! (ip, port, pod name, region, status, history). Before that it is joinable = false and its
//! `server` is empty, because there is nowhere to join.
//!
//! Deleting a dedicated session also deletes the DSMC session with the same id, releasing its
//! server: the game is over, and a leaked server would shrink the fleet for good.
//!
//! Choices where the spec is silent: `game_session_setting.password` is blanked in answers
//! except the admin get (anyone with READ could otherwise read every password); p2p sessions
//! need a user token (the host is the caller); a join by a user seats them as a player, a join
//! by a client token only checks the password; removing a user who is not in the session
//! answers `{"status": false}`; query pages default to 20 sessions (at most 1000) and there are
//! no match records, so `match_id` or `match_exist=true` select nothing.

pub mod store;

use accelbyte::models::error::codes;
use accelbyte::models::sessionbrowser::{
    AddPlayerRequest, AddPlayerResponse, CreateSessionRequest, GameSessionSetting,
    JoinSessionRequest, MatchMaking, Pagination, QuerySessionResponse, SessionByUserIdsResponse,
    SessionResponse, SessionServer, UpdateSessionRequest,
};
use accelbyte::permission::action;
use axum::extract::{FromRequestParts, RawPathParams, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri};
use axum::routing::{MethodRouter, delete, get, post, put};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::auth::Caller;
use crate::dsmc::fleet::{ServerStatus, SessionInfo};
use crate::dsmc::{page_links, page_param, parse_bool, rfc3339};
use crate::error::{ApiError, ApiResult, ErrorShape, code_for};
use crate::extract::{JsonBody, QueryParams, shape_of};
use crate::state::AppState;
use store::{GameSession, NewSession, QueryFilter, SessionSettings, SessionType, StoreError};

/// Query page size when `limit` is absent, and the most one page may hold.
const DEFAULT_PAGE: usize = 20;
const MAX_PAGE: usize = 1000;

/// The session browser routes, each tagged with its error shape.
pub fn router() -> Router<AppState> {
    const NS: &str = "/sessionbrowser/namespaces/{namespace}/gamesession";
    Router::new()
        .route("/sessionbrowser/healthz", get(healthz))
        .route(
            NS,
            v2(post(create_session))
                .layer(Extension(ServerErrorShape(ErrorShape::Rest)))
                .merge(rest(get(query_sessions))),
        )
        .route(&format!("{NS}/bulk"), rest(get(sessions_by_users)))
        .route(
            &format!("{NS}/{{sessionID}}"),
            rest(get(get_session))
                .merge(v2(put(update_session)))
                .merge(rest(delete(delete_session))),
        )
        .route(&format!("{NS}/{{sessionID}}/player"), v2(post(add_player)))
        .route(
            &format!("{NS}/{{sessionID}}/player/{{userID}}"),
            v2(delete(remove_player)),
        )
        .route(
            &format!("{NS}/{{sessionID}}/settings"),
            v2(put(update_settings)),
        )
        .route(&format!("{NS}/{{sessionID}}/join"), v2(post(join_session)))
        .route(
            "/sessionbrowser/admin/namespaces/{namespace}/gamesession/{sessionID}",
            v2(get(admin_get_session)),
        )
}

/// A route whose 500s answer in another shape than its 4xx (create, per the spec).
#[derive(Debug, Clone, Copy)]
struct ServerErrorShape(ErrorShape);

fn rest(route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route.layer(Extension(ErrorShape::Rest))
}

fn v2(route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route.layer(Extension(ErrorShape::SessionBrowserV2))
}

/// A caller allowed `ACTION` on the session browser sessions of the path's namespace (the
/// `ADMIN:` resource when `ADMIN`), plus the path parameters and the route's error shape.
/// Extracting it runs the 401/404/403 checks before any body is read.
struct Authorized<const ACTION: u32, const ADMIN: bool = false> {
    caller: Caller,
    namespace: String,
    /// Empty on routes without `{sessionID}`.
    session_id: String,
    /// Empty on routes without `{userID}`.
    user_id: String,
    shape: ErrorShape,
    server_error_shape: ErrorShape,
}

impl<const ACTION: u32, const ADMIN: bool> FromRequestParts<AppState>
    for Authorized<ACTION, ADMIN>
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let shape = shape_of(parts);
        let server_error_shape = parts
            .extensions
            .get::<ServerErrorShape>()
            .map_or(shape, |s| s.0);
        let caller = Caller::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()).with_shape(shape))?;
        let param = |name: &str| {
            params
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_owned())
                .unwrap_or_default()
        };
        let namespace = param("namespace");
        state
            .iam
            .require_namespace(&namespace)
            .map_err(|e| e.with_shape(shape))?;
        let admin = if ADMIN { "ADMIN:" } else { "" };
        caller
            .require(
                &format!("{admin}NAMESPACE:{namespace}:SESSIONBROWSER:SESSION"),
                ACTION,
            )
            .map_err(|e| e.with_shape(shape))?;
        Ok(Self {
            caller,
            namespace,
            session_id: param("sessionID"),
            user_id: param("userID"),
            shape,
            server_error_shape,
        })
    }
}

impl<const ACTION: u32, const ADMIN: bool> Authorized<ACTION, ADMIN> {
    /// Runs a handler body, rendering its errors in the route's shape (500s in the route's
    /// server-error shape, as the spec has it).
    fn run<T>(&self, body: impl FnOnce() -> ApiResult<T>) -> ApiResult<T> {
        body().map_err(|e| {
            let shape = if e.status.is_server_error() {
                self.server_error_shape
            } else {
                self.shape
            };
            e.with_shape(shape)
        })
    }
}

/// AccelByte's health shape (`healthcheck-go-sdk`).
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"name": "sessionbrowser", "healthy": true, "dependencies": [], "others": []}))
}

/// POST `.../gamesession`.
async fn create_session(
    State(state): State<AppState>,
    auth: Authorized<{ action::CREATE }>,
    JsonBody(body): JsonBody<CreateSessionRequest>,
) -> ApiResult<Json<SessionResponse>> {
    auth.run(|| {
        let session_type = SessionType::parse(&body.session_type).ok_or_else(|| {
            ApiError::bad_request(format!(
                "session_type must be dedicated or p2p, got {:?}",
                body.session_type
            ))
        })?;
        if body.namespace != auth.namespace {
            return Err(ApiError::bad_request(format!(
                "body namespace {:?} does not match path namespace {}",
                body.namespace, auth.namespace
            )));
        }
        let setting = body.game_session_setting;
        for (name, value) in [
            ("num_bot", setting.num_bot),
            ("max_player", setting.max_player),
            ("max_internal_player", setting.max_internal_player),
        ] {
            non_negative(name, value)?;
        }
        let owner = match session_type {
            SessionType::Dedicated => None,
            SessionType::P2p => {
                Some(auth.caller.user_id().map(str::to_owned).ok_or_else(|| {
                    ApiError::bad_request(
                        "a p2p session is hosted by a user: create it with a user token",
                    )
                })?)
            }
        };
        let session = state
            .sessions
            .create(NewSession {
                namespace: auth.namespace.clone(),
                session_type,
                game_version: body.game_version,
                username: body.username,
                owner,
                settings: SessionSettings {
                    mode: setting.mode,
                    map_name: setting.map_name,
                    num_bot: setting.num_bot,
                    max_player: setting.max_player,
                    max_internal_player: setting.max_internal_player,
                    allow_join_in_progress: setting.allow_join_in_progress,
                    password: setting.password,
                    settings: setting.settings,
                },
            })
            .map_err(store_error)?;
        Ok(Json(view(&session, None, false)))
    })
}

/// GET `.../gamesession/{sessionID}`.
async fn get_session(
    State(state): State<AppState>,
    auth: Authorized<{ action::READ }>,
) -> ApiResult<Json<SessionResponse>> {
    auth.run(|| {
        let session = find(&state, &auth.namespace, &auth.session_id)?;
        Ok(Json(view(
            &session,
            server_of(&state, &session).as_ref(),
            false,
        )))
    })
}

/// GET `/sessionbrowser/admin/namespaces/{namespace}/gamesession/{sessionID}`: as get, with
/// the password.
async fn admin_get_session(
    State(state): State<AppState>,
    auth: Authorized<{ action::READ }, true>,
) -> ApiResult<Json<SessionResponse>> {
    auth.run(|| {
        let session = find(&state, &auth.namespace, &auth.session_id)?;
        Ok(Json(view(
            &session,
            server_of(&state, &session).as_ref(),
            true,
        )))
    })
}

/// DELETE `.../gamesession/{sessionID}`: answers the session as it was, and releases its
/// dedicated server.
async fn delete_session(
    State(state): State<AppState>,
    auth: Authorized<{ action::DELETE }>,
) -> ApiResult<Json<SessionResponse>> {
    auth.run(|| {
        let session = state
            .sessions
            .delete(&auth.namespace, &auth.session_id)
            .ok_or_else(|| store_error(StoreError::NotFound(auth.session_id.clone())))?;
        let server = server_of(&state, &session);
        let answer = view(&session, server.as_ref(), false);
        if session.session_type == SessionType::Dedicated {
            state.dsmc.delete(&session.namespace, &session.id);
        }
        Ok(Json(answer))
    })
}

/// POST `.../gamesession/{sessionID}/player`.
async fn add_player(
    State(state): State<AppState>,
    auth: Authorized<{ action::UPDATE }>,
    JsonBody(body): JsonBody<AddPlayerRequest>,
) -> ApiResult<Json<AddPlayerResponse>> {
    auth.run(|| {
        if body.user_id.trim().is_empty() {
            return Err(ApiError::bad_request("user_id is required"));
        }
        state
            .sessions
            .add_player(
                &auth.namespace,
                &auth.session_id,
                &body.user_id,
                body.as_spectator,
            )
            .map_err(store_error)?;
        Ok(Json(AddPlayerResponse { status: true }))
    })
}

/// DELETE `.../gamesession/{sessionID}/player/{userID}`.
async fn remove_player(
    State(state): State<AppState>,
    auth: Authorized<{ action::UPDATE }>,
) -> ApiResult<Json<AddPlayerResponse>> {
    auth.run(|| {
        let (removed, _) = state
            .sessions
            .remove_player(&auth.namespace, &auth.session_id, &auth.user_id)
            .map_err(store_error)?;
        Ok(Json(AddPlayerResponse { status: removed }))
    })
}

/// PUT `.../gamesession/{sessionID}`.
async fn update_session(
    State(state): State<AppState>,
    auth: Authorized<{ action::UPDATE }>,
    JsonBody(body): JsonBody<UpdateSessionRequest>,
) -> ApiResult<Json<SessionResponse>> {
    auth.run(|| {
        non_negative("game_max_player", body.game_max_player)?;
        let session = state
            .sessions
            .update(&auth.namespace, &auth.session_id, body.game_max_player)
            .map_err(store_error)?;
        Ok(Json(view(
            &session,
            server_of(&state, &session).as_ref(),
            false,
        )))
    })
}

/// PUT `.../gamesession/{sessionID}/settings`: a JSON object merged into the settings.
async fn update_settings(
    State(state): State<AppState>,
    auth: Authorized<{ action::UPDATE }>,
    JsonBody(body): JsonBody<serde_json::Map<String, serde_json::Value>>,
) -> ApiResult<Json<SessionResponse>> {
    auth.run(|| {
        let session = state
            .sessions
            .merge_settings(&auth.namespace, &auth.session_id, body)
            .map_err(store_error)?;
        Ok(Json(view(
            &session,
            server_of(&state, &session).as_ref(),
            false,
        )))
    })
}

/// POST `.../gamesession/{sessionID}/join`.
async fn join_session(
    State(state): State<AppState>,
    auth: Authorized<{ action::READ }>,
    JsonBody(body): JsonBody<JoinSessionRequest>,
) -> ApiResult<Json<SessionResponse>> {
    auth.run(|| {
        let session = state
            .sessions
            .join(
                &auth.namespace,
                &auth.session_id,
                &body.password,
                auth.caller.user_id(),
            )
            .map_err(store_error)?;
        Ok(Json(view(
            &session,
            server_of(&state, &session).as_ref(),
            false,
        )))
    })
}

/// Query of `GET .../gamesession`; everything arrives as text (the SDKs send strings) and an
/// empty value counts as absent.
#[derive(Debug, Deserialize)]
struct QueryArgs {
    session_type: Option<String>,
    game_mode: Option<String>,
    game_version: Option<String>,
    joinable: Option<String>,
    match_exist: Option<String>,
    match_id: Option<String>,
    server_status: Option<String>,
    user_id: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
}

/// GET `.../gamesession`.
async fn query_sessions(
    State(state): State<AppState>,
    auth: Authorized<{ action::READ }>,
    uri: Uri,
    QueryParams(args): QueryParams<QueryArgs>,
) -> ApiResult<Json<QuerySessionResponse>> {
    auth.run(|| {
        let present = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let session_type = match present(&args.session_type) {
            None => {
                return Err(ApiError::bad_request(
                    "session_type is required (dedicated or p2p)",
                ));
            }
            Some(text) => SessionType::parse(&text).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "session_type must be dedicated or p2p, got {text:?}"
                ))
            })?,
        };
        let joinable = present(&args.joinable)
            .map(|v| parse_bool("joinable", &v))
            .transpose()?;
        let match_exist = present(&args.match_exist)
            .map(|v| parse_bool("match_exist", &v))
            .transpose()?;
        let limit = page_param("limit", args.limit.as_deref(), DEFAULT_PAGE)?.min(MAX_PAGE);
        let offset = page_param("offset", args.offset.as_deref(), 0)?;
        let (game_mode, game_version, user_id) = (
            present(&args.game_mode),
            present(&args.game_version),
            present(&args.user_id),
        );
        let server_status = present(&args.server_status);

        let found = state.sessions.query(
            &auth.namespace,
            &QueryFilter {
                session_type,
                game_mode: game_mode.as_deref(),
                game_version: game_version.as_deref(),
                user_id: user_id.as_deref(),
            },
        );
        // There are no match records: a session never has a match.
        if present(&args.match_id).is_some() || match_exist == Some(true) {
            return Ok(Json(QuerySessionResponse::default()));
        }
        let servers = state.dsmc.sessions(
            &auth.namespace,
            found
                .iter()
                .filter(|s| s.session_type == SessionType::Dedicated)
                .map(|s| s.id.as_str()),
        );
        let matching: Vec<SessionResponse> = found
            .iter()
            .filter(|s| {
                server_status.as_deref().is_none_or(|wanted| {
                    servers
                        .get(&s.id)
                        .is_some_and(|ds| ds.status.as_str().eq_ignore_ascii_case(wanted))
                })
            })
            .map(|s| view(s, servers.get(&s.id), false))
            .filter(|v| joinable.is_none_or(|j| v.joinable == j))
            .collect();
        let (next, previous) = page_links(&uri, "limit", offset, limit, matching.len());
        Ok(Json(QuerySessionResponse {
            pagination: Pagination { next, previous },
            sessions: matching.into_iter().skip(offset).take(limit).collect(),
        }))
    })
}

#[derive(Debug, Deserialize)]
struct BulkArgs {
    user_ids: Option<String>,
}

/// GET `.../gamesession/bulk?user_ids=a,b`: sessions any of the users is in (or hosts).
async fn sessions_by_users(
    State(state): State<AppState>,
    auth: Authorized<{ action::READ }>,
    QueryParams(args): QueryParams<BulkArgs>,
) -> ApiResult<Json<SessionByUserIdsResponse>> {
    auth.run(|| {
        let raw = args.user_ids.unwrap_or_default();
        let user_ids: Vec<&str> = raw
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        if user_ids.is_empty() {
            return Err(ApiError::bad_request(
                "user_ids is required (comma separated)",
            ));
        }
        let found = state.sessions.by_users(&auth.namespace, &user_ids);
        let servers = state.dsmc.sessions(
            &auth.namespace,
            found
                .iter()
                .filter(|s| s.session_type == SessionType::Dedicated)
                .map(|s| s.id.as_str()),
        );
        Ok(Json(SessionByUserIdsResponse {
            data: found
                .iter()
                .map(|s| view(s, servers.get(&s.id), false))
                .collect(),
        }))
    })
}

fn find(state: &AppState, namespace: &str, id: &str) -> ApiResult<GameSession> {
    state
        .sessions
        .get(namespace, id)
        .ok_or_else(|| store_error(StoreError::NotFound(id.to_owned())))
}

/// The DSMC session of a dedicated session (same namespace and id), if any.
fn server_of(state: &AppState, session: &GameSession) -> Option<SessionInfo> {
    match session.session_type {
        SessionType::Dedicated => state.dsmc.session(&session.namespace, &session.id),
        SessionType::P2p => None,
    }
}

fn store_error(e: StoreError) -> ApiError {
    let message = e.to_string();
    match e {
        StoreError::NotFound(_) => ApiError::not_found(code_for(StatusCode::NOT_FOUND), message),
        StoreError::Full => ApiError::bad_request(message),
        StoreError::WrongPassword => ApiError::forbidden(message),
        StoreError::TooManySessions => ApiError::internal(message),
    }
}

fn non_negative(name: &str, value: i32) -> ApiResult<()> {
    if value < 0 {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::VALIDATION_ERROR,
            format!("{name} must not be negative, got {value}"),
        ))
    } else {
        Ok(())
    }
}

/// A session as the session browser reports it. `ds` is the DSMC session with the same id;
/// its server shows only once it is claimed and the session joinable.
fn view(session: &GameSession, ds: Option<&SessionInfo>, reveal_password: bool) -> SessionResponse {
    let claimed = ds.filter(|d| d.status == ServerStatus::Busy);
    let joinable = session.joinable(claimed.is_some());
    let server = match claimed {
        Some(info) if joinable => sb_server(info),
        _ => SessionServer::default(),
    };
    let settings = &session.settings;
    SessionResponse {
        all_players: session.all_players(),
        created_at: rfc3339(session.created_at),
        game_session_setting: GameSessionSetting {
            allow_join_in_progress: settings.allow_join_in_progress,
            current_internal_player: session.current_internal_player(),
            current_player: session.current_player(),
            map_name: settings.map_name.clone(),
            max_internal_player: settings.max_internal_player,
            max_player: settings.max_player,
            mode: settings.mode.clone(),
            num_bot: settings.num_bot,
            password: if reveal_password {
                settings.password.clone()
            } else {
                String::new()
            },
            settings: settings.settings.clone(),
        },
        game_version: session.game_version.clone(),
        joinable,
        match_: MatchMaking::default(),
        namespace: session.namespace.clone(),
        players: session.players.clone(),
        server,
        session_id: session.id.clone(),
        session_type: session.session_type.as_str().to_owned(),
        spectators: session.spectators.clone(),
        user_id: session.owner.clone().unwrap_or_default(),
        username: session.username.clone(),
    }
}

/// The session browser's copy of a DSMC server record.
fn sb_server(info: &SessionInfo) -> SessionServer {
    let wire = crate::dsmc::wire_server(info);
    SessionServer {
        allocation_id: wire.allocation_id,
        alternate_ips: wire.alternate_ips,
        cpu_limit: wire.cpu_limit,
        cpu_request: String::new(),
        deployment: wire.deployment,
        game_version: wire.game_version,
        image_version: wire.image_version,
        ip: wire.ip,
        is_override_game_version: wire.is_override_game_version,
        last_update: wire.last_update,
        mem_limit: wire.mem_limit,
        mem_request: String::new(),
        namespace: wire.namespace,
        params: wire.params,
        pod_name: wire.pod_name,
        port: wire.port,
        ports: wire.ports,
        provider: wire.provider,
        region: wire.region,
        session_id: wire.session_id,
        status: wire.status,
        status_history: wire.status_history,
    }
}
