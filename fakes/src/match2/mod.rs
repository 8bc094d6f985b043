//! Matchmaking v2 (`/match2/v1`): rule sets and match pools (admin), match tickets (create,
//! get, delete, `me`), ticket expiry and the matchmaking notifications, with a built-in match
//! function behind a seam ([`matcher::MatchFunction`]) an external one can replace per pool:
//! [`remote::RemoteMatchFunction`] calls an AGS Extend match function over gRPC, registered by
//! name (`fakes serve --match-function NAME=URL`, `PUT /_fakes/match-functions/{name}`, or
//! [`crate::FakesConfig::match_functions`]), each call carrying a token of this IAM
//! ([`caller_token`]).
//!
//! Permissions are the spec's: `NAMESPACE:{namespace}:MATCHMAKING:RULES` for rule sets,
//! `…:MATCHMAKING:POOL` for pools, `…:MATCHMAKING:TICKET` for tickets (CREATE/READ/DELETE).
//! Errors are `response.Error` in PascalCase (`ErrorCode`, `ErrorMessage`).
//!
//! Notifications (lobby `messageNotif`, payload base64 JSON): `OnMatchmakingStarted` to the
//! ticket's players when it is queued, `OnMatchFound` to every player of a match,
//! `OnMatchmakingTicketExpired` when a ticket expires, `OnMatchmakingTicketCanceled` when a
//! party's ticket is cancelled because its members changed.
//!
//! Party tickets (AGS semantics): a ticket whose `sessionID` names a party is created by the
//! party's leader (another member gets 403, an unknown party 404) and carries every joined
//! member, leader first; each member hears `OnMatchmakingStarted` (with `partyID`) and, once
//! matched, `OnMatchFound`. A member joining, leaving or being kicked while the ticket is
//! queued cancels it (AGS: a party's match ticket is cancelled when its members change); the
//! members hear `OnMatchmakingTicketCanceled` and the leader queues again. The built-in
//! matcher keeps a ticket's players on one team.

pub mod caller_token;
pub mod engine;
pub mod matcher;
pub mod remote;
pub mod ruleset;
pub mod store;

use accelbyte::models::match2::{
    ListMatchPoolsResponse, ListRuleSetsResponse, MatchPool, MatchTicketRequest,
    MatchTicketResponse, MatchTicketStatus, MatchTicketStatuses, MatchmakingStartedNotif,
    Pagination, ProposedProposal, RuleSetPayload, topics,
};
use accelbyte::permission::action;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorShape, code_for};
use crate::extract::{JsonBody, QueryParams};
use crate::iam::store::new_id;
use crate::lobby::notify::send_json;
use crate::session::rfc3339;
use crate::state::AppState;
use store::{Match2Error, NewTicket, TicketRecord};

const SHAPE: ErrorShape = ErrorShape::LobbyNotification;

pub fn router() -> Router<AppState> {
    const NS: &str = "/match2/v1/namespaces/{namespace}";
    Router::new()
        .route("/match2/healthz", get(healthz))
        .route(
            &format!("{NS}/rulesets"),
            post(create_ruleset).get(list_rulesets),
        )
        .route(
            &format!("{NS}/rulesets/{{ruleset}}"),
            get(get_ruleset).put(update_ruleset).delete(delete_ruleset),
        )
        .route(
            &format!("{NS}/match-pools"),
            post(create_pool).get(list_pools),
        )
        .route(
            &format!("{NS}/match-pools/{{pool}}"),
            get(get_pool).delete(delete_pool),
        )
        .route(&format!("{NS}/match-tickets"), post(create_ticket))
        .route(&format!("{NS}/match-tickets/me"), get(my_tickets))
        .route(
            &format!("{NS}/match-tickets/{{ticketid}}"),
            get(get_ticket).delete(delete_ticket),
        )
        .layer(Extension(SHAPE))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"name": "match2", "healthy": true, "dependencies": [], "others": []}))
}

fn authorize(
    state: &AppState,
    caller: &Caller,
    namespace: &str,
    what: &str,
    act: u32,
) -> ApiResult<()> {
    state
        .iam
        .require_namespace(namespace)
        .map_err(|e| e.with_shape(SHAPE))?;
    caller
        .require(&format!("NAMESPACE:{namespace}:MATCHMAKING:{what}"), act)
        .map_err(|e| e.with_shape(SHAPE))
}

fn error(e: Match2Error) -> ApiError {
    let status = match &e {
        Match2Error::RuleSetNotFound(_)
        | Match2Error::PoolNotFound(_)
        | Match2Error::TicketNotFound(_) => StatusCode::NOT_FOUND,
        Match2Error::RuleSetExists(_)
        | Match2Error::PoolExists(_)
        | Match2Error::AlreadyQueued { .. }
        | Match2Error::RuleSetInUse(..) => StatusCode::CONFLICT,
        Match2Error::NotOwner(_) => StatusCode::FORBIDDEN,
        Match2Error::AlreadyMatched(_) => StatusCode::NOT_ACCEPTABLE,
        Match2Error::TooMany => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, code_for(status), e.to_string()).with_shape(SHAPE)
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message).with_shape(SHAPE)
}

/// Rule set data the built-in function will read must parse; custom ones need only be JSON.
fn check_ruleset(body: &RuleSetPayload) -> ApiResult<()> {
    if body.name.is_empty() {
        return Err(bad_request("name is required"));
    }
    if !body.data.is_object() {
        return Err(bad_request("data must be a JSON object"));
    }
    if !body.enable_custom_match_function {
        ruleset::RuleSet::parse(&body.data).map_err(bad_request)?;
    }
    Ok(())
}

// ---- rule sets -----------------------------------------------------------------------------

/// POST `.../rulesets` (201, no body).
async fn create_ruleset(
    State(state): State<AppState>,
    caller: Caller,
    Path(namespace): Path<String>,
    JsonBody(body): JsonBody<RuleSetPayload>,
) -> ApiResult<StatusCode> {
    authorize(&state, &caller, &namespace, "RULES", action::CREATE)?;
    check_ruleset(&body)?;
    state
        .match2
        .create_ruleset(&namespace, body)
        .map_err(error)?;
    Ok(StatusCode::CREATED)
}

/// GET `.../rulesets` (`api.ListRuleSetsResponse`).
async fn list_rulesets(
    State(state): State<AppState>,
    caller: Caller,
    Path(namespace): Path<String>,
) -> ApiResult<Json<ListRuleSetsResponse>> {
    authorize(&state, &caller, &namespace, "RULES", action::READ)?;
    Ok(Json(ListRuleSetsResponse {
        data: state.match2.rulesets(&namespace),
        pagination: Pagination::default(),
    }))
}

/// GET `.../rulesets/{ruleset}`.
async fn get_ruleset(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Json<RuleSetPayload>> {
    authorize(&state, &caller, &namespace, "RULES", action::READ)?;
    state
        .match2
        .ruleset(&namespace, &name)
        .map(Json)
        .ok_or_else(|| error(Match2Error::RuleSetNotFound(name)))
}

/// PUT `.../rulesets/{ruleset}` (`api.RuleSetPayload` both ways; the path names it).
async fn update_ruleset(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
    JsonBody(mut body): JsonBody<RuleSetPayload>,
) -> ApiResult<Json<RuleSetPayload>> {
    authorize(&state, &caller, &namespace, "RULES", action::UPDATE)?;
    body.name = name;
    check_ruleset(&body)?;
    state
        .match2
        .update_ruleset(&namespace, body.clone())
        .map_err(error)?;
    Ok(Json(body))
}

/// DELETE `.../rulesets/{ruleset}` (204; 409 while a pool uses it).
async fn delete_ruleset(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    authorize(&state, &caller, &namespace, "RULES", action::DELETE)?;
    state
        .match2
        .delete_ruleset(&namespace, &name)
        .map_err(error)?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- pools ---------------------------------------------------------------------------------

/// POST `.../match-pools` (201, no body): its rule set, session template and match function
/// must exist; zero expirations become 300 s.
async fn create_pool(
    State(state): State<AppState>,
    caller: Caller,
    Path(namespace): Path<String>,
    JsonBody(mut body): JsonBody<MatchPool>,
) -> ApiResult<StatusCode> {
    authorize(&state, &caller, &namespace, "POOL", action::CREATE)?;
    if body.name.is_empty() {
        return Err(bad_request("name is required"));
    }
    if state
        .game_sessions
        .template(&namespace, &body.session_template)
        .is_none()
    {
        return Err(bad_request(format!(
            "session_template {:?} is not a configuration template of namespace {namespace}",
            body.session_template
        )));
    }
    for name in [
        &body.match_function,
        &body.match_function_override.make_matches,
    ] {
        if !name.is_empty() && !state.match2.knows_function(name) {
            return Err(bad_request(format!(
                "match function {name:?} is not registered (built in: {:?})",
                store::BUILT_IN_FUNCTIONS
            )));
        }
    }
    if body.ticket_expiration_seconds <= 0 {
        body.ticket_expiration_seconds = store::DEFAULT_TICKET_EXPIRATION_S;
    }
    if body.backfill_ticket_expiration_seconds <= 0 {
        body.backfill_ticket_expiration_seconds = store::DEFAULT_TICKET_EXPIRATION_S;
    }
    state
        .match2
        .create_pool(&namespace, body)
        .map_err(|e| match e {
            Match2Error::RuleSetNotFound(name) => {
                bad_request(format!("rule_set {name:?} not found"))
            }
            other => error(other),
        })?;
    Ok(StatusCode::CREATED)
}

/// GET `.../match-pools`.
async fn list_pools(
    State(state): State<AppState>,
    caller: Caller,
    Path(namespace): Path<String>,
) -> ApiResult<Json<ListMatchPoolsResponse>> {
    authorize(&state, &caller, &namespace, "POOL", action::READ)?;
    Ok(Json(ListMatchPoolsResponse {
        data: state.match2.pools(&namespace),
        pagination: Pagination::default(),
    }))
}

/// GET `.../match-pools/{pool}`.
async fn get_pool(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<Json<MatchPool>> {
    authorize(&state, &caller, &namespace, "POOL", action::READ)?;
    state
        .match2
        .pool(&namespace, &name)
        .map(Json)
        .ok_or_else(|| error(Match2Error::PoolNotFound(name)))
}

/// DELETE `.../match-pools/{pool}` (204): its queued tickets are dropped.
async fn delete_pool(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    authorize(&state, &caller, &namespace, "POOL", action::DELETE)?;
    state.match2.delete_pool(&namespace, &name).map_err(error)?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- tickets -------------------------------------------------------------------------------

fn status_view(t: &TicketRecord) -> MatchTicketStatus {
    MatchTicketStatus {
        is_active: t.is_queued(),
        match_found: !t.is_queued(),
        match_pool: t.pool.clone(),
        match_ticket_id: t.id.clone(),
        proposed_proposal: ProposedProposal::default(),
        session_id: t.session_id.clone().unwrap_or_default(),
    }
}

/// POST `.../match-tickets` (201): a user queues in a pool; `OnMatchmakingStarted` follows.
async fn create_ticket(
    State(state): State<AppState>,
    caller: Caller,
    Path(namespace): Path<String>,
    JsonBody(body): JsonBody<MatchTicketRequest>,
) -> ApiResult<(StatusCode, Json<MatchTicketResponse>)> {
    authorize(&state, &caller, &namespace, "TICKET", action::CREATE)?;
    let user = caller.user_id().map(str::to_owned).ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            accelbyte::models::error::codes::TOKEN_IS_NOT_USER_TOKEN,
            "a match ticket needs a user token",
        )
        .with_shape(SHAPE)
    })?;
    if body.match_pool.is_empty() {
        return Err(bad_request("matchPool is required"));
    }
    let (players, party_id) = if body.session_id.is_empty() {
        (vec![user.clone()], String::new())
    } else {
        let party = state
            .parties
            .get(&namespace, &body.session_id)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    code_for(StatusCode::NOT_FOUND),
                    format!("party {} not found", body.session_id),
                )
                .with_shape(SHAPE)
            })?;
        if party.leader_id != user {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                code_for(StatusCode::FORBIDDEN),
                format!(
                    "only the leader of party {} may create its match ticket",
                    party.id
                ),
            )
            .with_shape(SHAPE));
        }
        let mut members = party.joined();
        members.retain(|m| *m != user);
        members.insert(0, user.clone());
        (members, party.id)
    };
    if let Some((region, ms)) = body.latencies.iter().find(|(_, ms)| **ms < 0) {
        return Err(bad_request(format!(
            "latencies.{region} must not be negative, got {ms}"
        )));
    }
    let ticket = state
        .match2
        .create_ticket(
            NewTicket {
                namespace: namespace.clone(),
                pool: body.match_pool,
                players,
                party_id,
                attributes: body.attributes,
                latencies: body.latencies,
            },
            new_id(),
        )
        .map_err(error)?;
    let started = MatchmakingStartedNotif {
        ticket_id: ticket.id.clone(),
        party_id: ticket.party_id.clone(),
        namespace: namespace.clone(),
        created_at: rfc3339(ticket.created_at),
        match_pool: ticket.pool.clone(),
    };
    for player in &ticket.players {
        send_json(
            &state.lobby,
            &namespace,
            player,
            topics::MATCHMAKING_STARTED,
            &started,
        );
    }
    // Matching starts now: OnMatchmakingStarted goes out before any OnMatchFound can (the
    // loop's periodic tick may still come first; clients must not depend on the order).
    state.match2.waker().notify_one();
    let queue_time = (ticket.expires_at - ticket.created_at).num_seconds();
    Ok((
        StatusCode::CREATED,
        Json(MatchTicketResponse {
            match_ticket_id: ticket.id,
            queue_time: i32::try_from(queue_time).unwrap_or(i32::MAX),
        }),
    ))
}

/// GET `.../match-tickets/{ticketid}`: 404 once expired or deleted.
async fn get_ticket(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, id)): Path<(String, String)>,
) -> ApiResult<Json<MatchTicketStatus>> {
    authorize(&state, &caller, &namespace, "TICKET", action::READ)?;
    state
        .match2
        .ticket(&namespace, &id)
        .map(|t| Json(status_view(&t)))
        .ok_or_else(|| error(Match2Error::TicketNotFound(id)))
}

/// DELETE `.../match-tickets/{ticketid}` (204; 406 once matched).
async fn delete_ticket(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    authorize(&state, &caller, &namespace, "TICKET", action::DELETE)?;
    state
        .match2
        .delete_ticket(&namespace, &id, caller.user_id())
        .map_err(error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct MineQuery {
    #[serde(rename = "matchPool")]
    match_pool: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

/// GET `.../match-tickets/me`: the caller's tickets, optionally of one pool.
async fn my_tickets(
    State(state): State<AppState>,
    caller: Caller,
    Path(namespace): Path<String>,
    QueryParams(query): QueryParams<MineQuery>,
) -> ApiResult<Json<MatchTicketStatuses>> {
    authorize(&state, &caller, &namespace, "TICKET", action::READ)?;
    let user = caller.user_id().unwrap_or_default().to_owned();
    let offset = query.offset.unwrap_or(0);
    let limit = query.limit.unwrap_or(20).min(100);
    Ok(Json(MatchTicketStatuses {
        data: state
            .match2
            .tickets_of(
                &namespace,
                &user,
                query.match_pool.as_deref().filter(|p| !p.is_empty()),
            )
            .iter()
            .skip(offset)
            .take(limit)
            .map(status_view)
            .collect(),
        pagination: Pagination::default(),
    }))
}

/// Cancels party `party_id`'s queued tickets whose players are no longer its joined members and
/// tells their players (`OnMatchmakingTicketCanceled`). The party is read now, not from the
/// change's snapshot: a join announced late must not cancel a ticket its leader created after
/// seeing that join.
pub fn cancel_party_tickets(state: &AppState, namespace: &str, party_id: &str) {
    let members = state.parties.get(namespace, party_id).map(|p| p.joined());
    for ticket in state
        .match2
        .cancel_party(namespace, party_id, members.as_deref())
    {
        let body = serde_json::json!({
            "ticketID": ticket.id,
            "partyID": ticket.party_id,
            "namespace": ticket.namespace,
            "matchPool": ticket.pool,
        });
        for player in &ticket.players {
            send_json(
                &state.lobby,
                namespace,
                player,
                topics::TICKET_CANCELED,
                &body,
            );
        }
    }
}
