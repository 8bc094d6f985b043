//! The HTTP API: the tutorial-compatible synchronous call, the ticket API, health, readiness and
//! metrics.
//!
//! | route | answers |
//! |---|---|
//! | `POST /matchmaking` (also `POST /`, the tutorial's URL) | holds until the ticket finishes: **200** with the tutorial's body, **408** `{"message": "Timed out! Not enough players."}`, **502** when the match failed for good, **409** if the ticket was cancelled meanwhile, **503** when this replica shuts down first (the ticket stays queued) |
//! | `POST /v1/tickets` | **202** + the ticket (`Location: /v1/tickets/{id}`) |
//! | `GET /v1/tickets/{id}` | **200** the ticket (only for a member of its party; others get 404) |
//! | `DELETE /v1/tickets/{id}` | **204** cancelled; **409** when it is being matched or already finished |
//! | `GET /healthz` | **200** while the process serves |
//! | `GET /readyz` | **200** when the store answers and keys + revocation list are loaded; else **503** |
//! | `GET /metrics` | Prometheus text ([`crate::metrics`]) |
//!
//! **Requests.** Every matchmaking route needs exactly one `Authorization: Bearer <player
//! token>` header (validated locally, [`crate::auth`]; a second header is refused with 401). The
//! token is checked *before* the body is read, so unauthenticated uploads cost nothing; an
//! authenticated body must arrive within `body_timeout` (408, 510408). The body is optional
//! (the tutorial's client sends none), at most `max_body_bytes` (1 MiB), and a JSON object —
//! never an array, which serde would read field by field:
//!
//! ```json
//! {"game_mode": "2v2", "party_members": ["<user id>", {"user_id": "<user id>"}],
//!  "party_tokens": ["<member's access token>", "<member's access token>"],
//!  "attributes": {"mmr": 1500, "region": "eu-west-1", "anything": "else"}}
//! ```
//!
//! The caller leads the party and is always a member; `party_members` adds the others.
//! **Every other member consents** with their own access token in `party_tokens` (any order),
//! validated exactly like the leader's — signature, expiry, revocation, namespace, bans,
//! permission — and the tokens' subjects must be exactly the listed members: a member without
//! a valid token of their own is refused with **403** (510403), a token of someone not listed
//! (or a second token of one member) with 400. The party must fit the game mode (400 beyond),
//! checked before any token. `mmr` (integer) and `region` drive the matching rules; other
//! scalar attributes travel to DSMC as party attributes.
//!
//! **Nothing is sent before a request is accepted**: `searching` goes to the members only once
//! their ticket exists, so a refused request (bad body, no consent, oversize party, a live
//! ticket) notifies nobody.
//!
//! **One live ticket per player**: a request while any member of the party has a queued or
//! claimed ticket is refused with **409** (`errorCode` 510409, naming the ticket). The
//! synchronous call's ticket is cancelled when its client goes away before the answer (unless
//! the match is already being built: then it completes, and the `found` notification still
//! reaches the player).
//!
//! **Retries are safe with an `Idempotency-Key`** header (1–255 visible ASCII characters, one
//! per request the client means): the ticket's id is derived from the caller and the key, so
//! the same request sent again — after a broken connection, a replica that died or answered
//! 503 while shutting down — to any replica finds the ticket the first one made and holds until
//! *its* outcome (or answers it at once when it is final; `POST /v1/tickets` answers 200 with
//! it instead of 202), rather than a 409 or a second ticket.
//!
//! **The 200 body** is the tutorial's, kept for compatibility, including its odd `users`: the
//! caller's id, then a *list* of the other players' ids, and the message embedding that list in
//! Python's repr:
//!
//! ```json
//! {"message": "successfully matchmade server:(ip:127.0.0.1|port:7777)|session:(id:9f..)|users:(u1,['u2'])",
//!  "server": {"ip": "127.0.0.1", "port": 7777}, "session": {"id": "9f.."}, "users": ["u1", ["u2"]]}
//! ```
//!
//! **Errors** use AGS's REST shape `{"errorCode": <int>, "errorMessage": "<text>"}` (plus
//! `requiredPermission` on a 403): 400 (20002 validation, 20019 unparsable body), 401 (20001),
//! 403 (20013 permission or namespace, 20022 not a user token, 20003 banned or not comply,
//! 510403 a party member did not consent), 404 (510404), 409 (510409 live
//! ticket, 510410 not cancellable or cancelled), 408 (510408 body too slow), 413 (510413), 429 (20007: too many held
//! requests), 502 (a match that failed for good: one code per failure class, 510520
//! `no_capacity` … 510534 `lease_expired`, see [`FailureClass`]; 510502
//! when unclassified), 503 (510503 shutting down, not ready, store down).
//! No input makes a handler panic.
//!
//! **How a held request learns its outcome** — including when another replica built the match —
//! is [`crate::waiters`]: store announcements (Redis pub/sub) plus a slow re-read.

use std::time::Duration;

use accelbyte::models::error::{RequiredPermission, RestError, codes};
use accelbyte::models::matchmaking::{
    FailureClass, IDEMPOTENCY_KEY, MatchmakingRequest, MatchmakingResponse, MessageBody,
    attributes as attribute_names, error_codes,
};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest as _, MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::{AuthError, Principal, bearer_token};
use crate::clock::UnixMillis;
use crate::engine::{SubmitError, TicketRequest};
use crate::metrics::FinalState;
use crate::store::{CancelOutcome, Store as _, StoreError};
use crate::ticket::{Attributes, Party, PartyError, PlayerId, Ticket, TicketId, TicketState};
use crate::waiters::Waiter;

/// Most party members one request may list (the game mode bounds a party further).
const MAX_PARTY_MEMBERS: usize = 100;
/// Longest party token accepted (the validator refuses longer ones anyway).
const MAX_TOKEN_CHARS: usize = 16 * 1024;
/// Longest user id accepted.
const MAX_ID_LEN: usize = 128;
/// Most attributes one request may carry.
const MAX_ATTRIBUTES: usize = 32;
const MAX_ATTRIBUTE_KEY: usize = 64;
const MAX_ATTRIBUTE_VALUE: usize = 256;

/// Limits of the HTTP layer.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpConfig {
    /// Largest request body (413 beyond).
    pub max_body_bytes: usize,
    /// Most synchronous requests held at once (429 beyond).
    pub max_waiting: usize,
    /// How often a held request re-reads its ticket when no announcement came.
    pub wait_poll: Duration,
    /// Bound on sending `searching` before a request starts waiting.
    pub searching_timeout: Duration,
    /// How long an authenticated request's body may take to arrive (408 beyond).
    pub body_timeout: Duration,
    /// How long a connection may take to send a request head (closed beyond).
    pub header_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request (closed beyond).
    pub idle_timeout: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_bytes: 1 << 20,
            max_waiting: 100_000,
            wait_poll: Duration::from_secs(2),
            searching_timeout: Duration::from_secs(2),
            body_timeout: Duration::from_secs(10),
            header_timeout: serving::Timeouts::default().header,
            idle_timeout: serving::Timeouts::default().idle,
        }
    }
}

impl HttpConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.max_body_bytes == 0 || self.max_waiting == 0 {
            return Err("max_body_bytes and max_waiting must be positive".into());
        }
        if self.wait_poll.is_zero()
            || self.body_timeout.is_zero()
            || self.header_timeout.is_zero()
            || self.idle_timeout.is_zero()
        {
            return Err("wait_poll and the http timeouts must be positive".into());
        }
        Ok(())
    }
}

/// The routes, over `state`.
pub fn router(state: AppState) -> Router {
    let max_body = state.config().http.max_body_bytes;
    Router::new()
        .route("/", post(matchmaking))
        .route("/matchmaking", post(matchmaking))
        .route("/v1/tickets", post(create_ticket))
        .route("/v1/tickets/{id}", get(get_ticket).delete(cancel_ticket))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_responses,
        ))
        .with_state(state)
}

// ---- errors --------------------------------------------------------------------------------

/// An error answer in AGS's REST shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: i64,
    pub message: String,
    pub required: Option<RequiredPermission>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: i64, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            required: None,
        }
    }

    fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, codes::VALIDATION_ERROR, message)
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, error_codes::NOT_FOUND, message)
    }

    fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            error_codes::UNAVAILABLE,
            message,
        )
    }
}

/// `Retry-After` on 429 and 503 answers, in seconds.
pub const RETRY_AFTER_SECS: &str = "1";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = RestError {
            error_code: self.code,
            error_message: self.message,
            required_permission: self.required,
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        // Overload and outages: tell clients when to come back rather than let them hammer.
        if self.status == StatusCode::TOO_MANY_REQUESTS
            || self.status == StatusCode::SERVICE_UNAVAILABLE
        {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
        }
        response
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let (status, code) = match &e {
            AuthError::NotUserToken => (StatusCode::FORBIDDEN, codes::TOKEN_IS_NOT_USER_TOKEN),
            AuthError::WrongNamespace { .. } | AuthError::Forbidden { .. } => {
                (StatusCode::FORBIDDEN, codes::INSUFFICIENT_PERMISSIONS)
            }
            AuthError::Banned { .. } | AuthError::NotComply => {
                (StatusCode::FORBIDDEN, codes::FORBIDDEN_ACCESS)
            }
            AuthError::NotReady(_) | AuthError::Unavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, error_codes::UNAVAILABLE)
            }
            _ => (StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED_ACCESS),
        };
        let required = match &e {
            AuthError::Forbidden { resource, action } => Some(RequiredPermission {
                action: *action,
                resource: resource.clone(),
            }),
            _ => None,
        };
        ApiError {
            status,
            code,
            message: e.to_string(),
            required,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { player, ticket } => ApiError::new(
                StatusCode::CONFLICT,
                error_codes::LIVE_TICKET,
                format!("player {player} already has a live ticket {ticket}"),
            ),
            other => {
                tracing::warn!(error = %other, "ticket store error");
                ApiError::unavailable(format!("ticket store unavailable: {other}"))
            }
        }
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Store(e) => e.into(),
            SubmitError::ShuttingDown => ApiError::unavailable(e.to_string()),
            SubmitError::UnknownMode(_)
            | SubmitError::PartyTooLarge { .. }
            | SubmitError::EmptyRegion => ApiError::validation(e.to_string()),
        }
    }
}

// ---- requests ------------------------------------------------------------------------------

fn read_body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                error_codes::BODY_TOO_LARGE,
                "request body is too large",
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                codes::UNABLE_TO_PARSE_REQUEST_BODY,
                format!("unable to read the request body: {rejection}"),
            )
        }
    })
}

fn check_id(what: &str, id: &str) -> Result<(), ApiError> {
    if id.is_empty()
        || id.len() > MAX_ID_LEN
        || id.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ApiError::validation(format!(
            "{what} must be 1-{MAX_ID_LEN} characters without spaces"
        )));
    }
    Ok(())
}

/// A matchmaking request as its body says, before the members' consent is checked.
#[derive(Debug)]
pub struct ParsedRequest {
    pub ticket: TicketRequest,
    /// `party_tokens`, as sent: one token per other member.
    pub party_tokens: Vec<String>,
}

/// Turns the caller and the optional body into a request (public for the fuzz targets). No
/// token in it is checked yet: [`check_consent`] does that.
pub fn parse_request(
    body: &[u8],
    caller: &Principal,
    default_mode: &str,
) -> Result<ParsedRequest, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let parsed: MatchmakingRequest = if first.is_none() {
        MatchmakingRequest::default()
    } else if first != Some(&b'{') {
        // serde would read a struct from an array by position: `[]` or `["2v2"]` must not pass.
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::UNABLE_TO_PARSE_REQUEST_BODY,
            "unable to parse the request body: expecting a JSON object",
        ));
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                codes::UNABLE_TO_PARSE_REQUEST_BODY,
                format!("unable to parse the request body: {e}"),
            )
        })?
    };
    if parsed.party_members.len() > MAX_PARTY_MEMBERS
        || parsed.party_tokens.len() > MAX_PARTY_MEMBERS
    {
        return Err(ApiError::validation(format!(
            "at most {MAX_PARTY_MEMBERS} party members and party tokens"
        )));
    }
    if parsed
        .party_tokens
        .iter()
        .any(|t| t.is_empty() || t.len() > MAX_TOKEN_CHARS)
    {
        return Err(ApiError::validation(format!(
            "party_tokens must be 1-{MAX_TOKEN_CHARS} characters each"
        )));
    }
    let mut members = vec![caller.user_id.clone()];
    for member in parsed.party_members {
        let id = member.0;
        check_id("party_members", &id)?;
        let id = PlayerId::new(id);
        if id != caller.user_id {
            members.push(id);
        }
    }
    let party = Party::new(members).map_err(|e| match e {
        PartyError::Duplicate(p) => {
            ApiError::validation(format!("party member {p} is listed twice"))
        }
        PartyError::Empty => ApiError::validation("a party needs a member"),
    })?;
    let game_mode = parsed.game_mode.unwrap_or_else(|| default_mode.to_owned());
    Ok(ParsedRequest {
        ticket: TicketRequest {
            game_mode,
            party,
            attributes: parse_attributes(parsed.attributes)?,
            id: None,
        },
        party_tokens: parsed.party_tokens,
    })
}

fn no_consent(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, error_codes::PARTY_CONSENT, message)
}

/// Checks every listed member consented: `party_tokens` holds one token per member other than
/// the leader, each validated exactly like the leader's (signature, expiry, revocation,
/// namespace, bans, permission), and their subjects are exactly the listed members. A member
/// without a valid token of their own is refused with 403 (510403); tokens of users not listed,
/// or two of one user, with 400. Nothing is sent and nothing is queued before this passes.
pub async fn check_consent(
    auth: &crate::auth::Auth,
    request: &ParsedRequest,
) -> Result<(), ApiError> {
    let members = request.ticket.party.members();
    let others = members.get(1..).unwrap_or_default();
    let tokens = &request.party_tokens;
    if tokens.len() < others.len() {
        return Err(no_consent(format!(
            "{} party members are listed but {} party tokens came: every member other than the \
             leader consents with their own token in party_tokens",
            others.len(),
            tokens.len()
        )));
    }
    if tokens.len() > others.len() {
        return Err(ApiError::validation(format!(
            "{} party tokens for {} other party members: one token per listed member",
            tokens.len(),
            others.len()
        )));
    }
    let mut consented: Vec<&PlayerId> = Vec::with_capacity(tokens.len());
    let mut subjects = Vec::with_capacity(tokens.len());
    for (i, token) in tokens.iter().enumerate() {
        let principal = match auth.authenticate(token).await {
            Ok(principal) => principal,
            // The matchmaker cannot tell (keys not loaded, IAM down): not the member's fault.
            Err(e) if e.status() == 503 => return Err(e.into()),
            Err(e) => return Err(no_consent(format!("party_tokens[{i}]: {e}"))),
        };
        subjects.push(principal.user_id);
    }
    for (i, subject) in subjects.iter().enumerate() {
        let Some(member) = others.iter().find(|m| *m == subject) else {
            return Err(ApiError::validation(format!(
                "party_tokens[{i}] belongs to {subject}, who is not another listed party member"
            )));
        };
        if consented.contains(&member) {
            return Err(ApiError::validation(format!(
                "party_tokens[{i}] is a second token of {subject}"
            )));
        }
        consented.push(member);
    }
    // Same count, no duplicates, all listed: every listed member consented.
    Ok(())
}

fn parse_attributes(map: serde_json::Map<String, Value>) -> Result<Attributes, ApiError> {
    if map.len() > MAX_ATTRIBUTES {
        return Err(ApiError::validation(format!(
            "at most {MAX_ATTRIBUTES} attributes"
        )));
    }
    let mut attributes = Attributes::default();
    for (key, value) in map {
        match key.as_str() {
            attribute_names::MMR => {
                let mmr = value.as_u64().and_then(|v| u32::try_from(v).ok());
                attributes.mmr = Some(mmr.ok_or_else(|| {
                    ApiError::validation("attributes.mmr must be an integer from 0 to 4294967295")
                })?);
            }
            attribute_names::REGION => match value {
                Value::String(region)
                    if !region.is_empty() && region.len() <= MAX_ATTRIBUTE_KEY =>
                {
                    attributes.region = Some(region);
                }
                _ => {
                    return Err(ApiError::validation(format!(
                        "attributes.region must be a string of 1-{MAX_ATTRIBUTE_KEY} characters"
                    )));
                }
            },
            _ => {
                if key.is_empty() || key.len() > MAX_ATTRIBUTE_KEY {
                    return Err(ApiError::validation(format!(
                        "attribute names must be 1-{MAX_ATTRIBUTE_KEY} characters"
                    )));
                }
                let text = match value {
                    Value::String(s) => s,
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    Value::Null => continue,
                    Value::Array(_) | Value::Object(_) => {
                        return Err(ApiError::validation(format!(
                            "attributes.{key} must be a string, number or boolean"
                        )));
                    }
                };
                if text.len() > MAX_ATTRIBUTE_VALUE {
                    return Err(ApiError::validation(format!(
                        "attributes.{key} is longer than {MAX_ATTRIBUTE_VALUE} characters"
                    )));
                }
                attributes.extra.insert(key, text);
            }
        }
    }
    Ok(attributes)
}

async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let header = values.next().map(HeaderValue::to_str);
    let token = if values.next().is_some() {
        // Which one would a proxy in front have checked? Refuse rather than pick one.
        Err(AuthError::DuplicateHeader)
    } else {
        match header.transpose().map_err(|_| AuthError::NotBearer) {
            Ok(header) => bearer_token(header),
            Err(e) => Err(e),
        }
    };
    let token = match token {
        Ok(token) => token,
        Err(e) => {
            state.metrics().auth_rejected(e.reason());
            return Err(e.into());
        }
    };
    Ok(state.auth().authenticate(token).await?)
}

/// Authenticates, then reads the body, parses, checks the party's consent and queues; the
/// common start of both matchmaking routes. The body is read only once the token is good, so
/// unauthenticated uploads cost nothing (hyper closes the connection instead of reading them).
/// Sends nothing: `searching` goes out only once the ticket exists ([`announce`]).
async fn submit(state: &AppState, request: Request) -> Result<Submitted, ApiError> {
    let caller = authenticate(state, request.headers()).await?;
    let key = idempotency_key(request.headers())?;
    let read = Bytes::from_request(request, &());
    let body = match tokio::time::timeout(state.config().http.body_timeout, read).await {
        Ok(body) => read_body(body)?,
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                error_codes::BODY_TIMEOUT,
                "the request body did not arrive in time",
            ));
        }
    };
    let mut request = parse_request(&body, &caller, &state.config().default_mode)?;
    request.ticket.id = key.map(|k| TicketId::for_request(&caller.user_id, &k));
    // A retry of a request that made its ticket already: that ticket, live or finished.
    if let Some(ticket) = resumable(state, request.ticket.id.as_ref()).await? {
        return Ok(Submitted {
            ticket,
            resumed: true,
        });
    }
    if state.is_draining() {
        return Err(ApiError::unavailable("the matchmaker is shutting down"));
    }
    // Mode and party size first: an oversize party costs no signature check.
    state.engine().check(&request.ticket)?;
    check_consent(state.auth(), &request).await?;
    let id = request.ticket.id.clone();
    let ticket = match state.engine().submit(request.ticket).await {
        Ok(ticket) => ticket,
        // The same request, retried at the same moment elsewhere: that one made the ticket.
        Err(SubmitError::Store(
            StoreError::Conflict { ticket, .. } | StoreError::DuplicateTicket(ticket),
        )) if id.as_ref() == Some(&ticket) => {
            let ticket = resumable(state, Some(&ticket)).await?.ok_or_else(|| {
                ApiError::unavailable(format!("ticket {ticket} vanished while resuming it"))
            })?;
            return Ok(Submitted {
                ticket,
                resumed: true,
            });
        }
        Err(e) => return Err(e.into()),
    };
    state.metrics().ticket_created(&ticket.game_mode);
    Ok(Submitted {
        ticket,
        resumed: false,
    })
}

/// A queued ticket, and whether the request was a retry that found its ticket already made.
struct Submitted {
    ticket: Ticket,
    resumed: bool,
}

/// The ticket `id` names, if it exists (an idempotent retry resumes it).
async fn resumable(state: &AppState, id: Option<&TicketId>) -> Result<Option<Ticket>, ApiError> {
    match id {
        Some(id) => Ok(state.engine().ticket(id).await?),
        None => Ok(None),
    }
}

/// The request's `Idempotency-Key` (at most one; 1–255 visible ASCII characters). A request
/// that carries one names its ticket by it ([`TicketId::for_request`]), so a client whose
/// connection broke — its replica crashed, a proxy reset it, it was told the replica is
/// shutting down — sends the same request again, to any replica, and gets the outcome of the
/// ticket it already has instead of a 409 or a second ticket.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(IDEMPOTENCY_KEY).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::validation("more than one Idempotency-Key header"));
    }
    let key = value
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::validation("Idempotency-Key must be 1 to 255 visible ASCII characters")
        })?;
    Ok(Some(key.to_owned()))
}

/// Tells the members of an accepted ticket `searching`, bounded by `searching_timeout`. The
/// pipeline holds back this ticket's `found` or `failed` until it is done, so they never
/// overtake it.
async fn announce(state: &AppState, ticket: &Ticket) {
    let within = state.config().http.searching_timeout;
    if !state.pipeline().searching(ticket, within).await {
        state.metrics().notification("searching", "timeout");
    }
}

// ---- the synchronous call ------------------------------------------------------------------

/// Cancels the ticket of a held request whose client went away (the handler future is dropped
/// before it answered).
struct CancelOnDrop {
    state: AppState,
    ticket: Option<(TicketId, String)>,
}

impl CancelOnDrop {
    fn disarm(mut self) {
        self.ticket = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let Some((id, mode)) = self.ticket.take() else {
            return;
        };
        let state = self.state.clone();
        let tasks = state.tasks().clone();
        // Watched, not stopped by the server's token: a client leaving during the drain
        // still gets its ticket cancelled (the call is short).
        tasks.spawn_watched(async move {
                match state.engine().cancel(&id).await {
                    Ok(CancelOutcome::Cancelled) => {
                        state
                            .metrics()
                            .tickets_finished(&mode, FinalState::Cancelled, 1);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(ticket = %id, error = %e, "cancelling an abandoned ticket failed");
                    }
                }
            });
    }
}

/// Counts a held request in `matchmaker_waiting_requests` while alive.
struct Holding<'a>(&'a AppState);

impl<'a> Holding<'a> {
    fn new(state: &'a AppState) -> Self {
        state.metrics().waiting(1);
        Holding(state)
    }
}

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        self.0.metrics().waiting(-1);
    }
}

/// How a held request ended.
enum Waited {
    Final(Box<Ticket>),
    /// This replica shuts down; the ticket stays queued.
    Released,
    /// Nobody timed the ticket out; the request did (cancelled) at its own deadline.
    Expired,
    /// The ticket disappeared (it finished longer ago than the retention period).
    Gone,
}

async fn wait_final(state: &AppState, ticket: &Ticket, waiter: &Waiter) -> Waited {
    let config = state.config();
    let timeout = state
        .engine()
        .modes()
        .get(&ticket.game_mode)
        .map_or(crate::config::DEFAULT_TIMEOUT, |m| m.timeout);
    // Every replica's matcher times tickets out on its tick; this only bounds the wait should
    // none be running.
    let slack = config.engine.lease + config.engine.tick * 2 + Duration::from_secs(5);
    let mut deadline = tokio::time::Instant::now() + timeout + slack;
    loop {
        match state.engine().ticket(&ticket.id).await {
            Ok(Some(t)) if !t.is_live() => return Waited::Final(Box::new(t)),
            Ok(Some(_)) => {}
            Ok(None) => return Waited::Gone,
            Err(e) => {
                tracing::debug!(ticket = %ticket.id, error = %e, "re-reading a ticket failed")
            }
        }
        tokio::select! {
            () = waiter.woken() => {}
            () = tokio::time::sleep(config.http.wait_poll) => {}
            () = state.waiters_released() => return Waited::Released,
            () = tokio::time::sleep_until(deadline) => {
                if let Ok(CancelOutcome::Cancelled) = state.engine().cancel(&ticket.id).await {
                    return Waited::Expired;
                }
                // Claimed: a pipeline is on it; give it a lease more.
                deadline = tokio::time::Instant::now() + config.engine.lease;
            }
        }
    }
}

/// `POST /matchmaking` and `POST /`: queue, hold, answer like the tutorial.
async fn matchmaking(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    if state.waiters().len() >= state.config().http.max_waiting {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            codes::TOO_MANY_REQUESTS,
            "too many matchmaking requests are waiting; retry later or use /v1/tickets",
        ));
    }
    let Submitted { ticket, resumed } = submit(&state, request).await?;
    let _holding = Holding::new(&state);
    let waiter = state.waiters().register(ticket.id.clone());
    let guard = CancelOnDrop {
        state: state.clone(),
        ticket: Some((ticket.id.clone(), ticket.game_mode.clone())),
    };
    // A resumed ticket's players heard `searching` when it was made.
    if !resumed {
        announce(&state, &ticket).await;
    }
    let waited = wait_final(&state, &ticket, &waiter).await;
    guard.disarm();
    let caller = ticket.party.leader();
    Ok(match waited {
        Waited::Final(done) => match done.state {
            TicketState::Matched { placement, .. } => {
                let others: Vec<String> = placement
                    .players
                    .iter()
                    .filter(|p| *p != caller)
                    .map(|p| p.as_str().to_owned())
                    .collect();
                Json(MatchmakingResponse::matched(
                    &placement.server.ip,
                    placement.server.port,
                    &placement.session_id,
                    caller.as_str(),
                    others,
                ))
                .into_response()
            }
            TicketState::TimedOut => timed_out(),
            TicketState::Failed { reason } => ApiError::new(
                StatusCode::BAD_GATEWAY,
                FailureClass::code_of_name(crate::pipeline::reason_class(&reason)),
                format!("matchmaking failed: {reason}"),
            )
            .into_response(),
            TicketState::Cancelled => ApiError::new(
                StatusCode::CONFLICT,
                error_codes::NOT_CANCELLABLE,
                format!("ticket {} was cancelled", done.id),
            )
            .into_response(),
            TicketState::Queued | TicketState::Claimed { .. } => {
                ApiError::unavailable("ticket is still live").into_response()
            }
        },
        Waited::Expired => timed_out(),
        Waited::Released => ApiError::unavailable(format!(
            "the matchmaker is shutting down; ticket {} stays queued (GET /v1/tickets/{})",
            ticket.id, ticket.id
        ))
        .into_response(),
        Waited::Gone => {
            ApiError::not_found(format!("ticket {} is gone", ticket.id)).into_response()
        }
    })
}

fn timed_out() -> Response {
    (StatusCode::REQUEST_TIMEOUT, Json(MessageBody::timed_out())).into_response()
}

// ---- the ticket API ------------------------------------------------------------------------

fn rfc3339(at: UnixMillis) -> String {
    i64::try_from(at.as_millis())
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// A ticket as the API shows it.
pub fn ticket_view(ticket: &Ticket) -> Value {
    let mut view = json!({
        "ticket_id": ticket.id.as_str(),
        "game_mode": ticket.game_mode,
        "state": ticket.state.name(),
        "party_members": ticket.party.members().iter().map(PlayerId::as_str).collect::<Vec<_>>(),
        "enqueued_at": rfc3339(ticket.enqueued_at),
        "attempts": ticket.attempts,
        "max_attempts": ticket.max_attempts,
    });
    match &ticket.state {
        TicketState::Matched {
            match_id,
            placement,
        } => {
            view["match"] = json!({
                "match_id": match_id.as_str(),
                "session_id": placement.session_id,
                "server": {"ip": placement.server.ip, "port": placement.server.port},
                "users": placement.players.iter().map(PlayerId::as_str).collect::<Vec<_>>(),
            });
        }
        TicketState::Failed { reason } => view["reason"] = json!(reason),
        _ => {}
    }
    view
}

/// `POST /v1/tickets`: queue and answer at once.
async fn create_ticket(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let Submitted { ticket, resumed } = submit(&state, request).await?;
    // A resumed ticket's players heard `searching` when it was made.
    if !resumed {
        announce(&state, &ticket).await;
    }
    let location = format!("/v1/tickets/{}", ticket.id);
    // A retry that found its ticket: 200 with it as it is now, not a second 202.
    let status = if resumed {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let mut response = (status, Json(ticket_view(&ticket))).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// The ticket `id` if the caller is a member of its party (404 otherwise, so ids of other
/// players' tickets reveal nothing).
async fn owned_ticket(state: &AppState, headers: &HeaderMap, id: &str) -> Result<Ticket, ApiError> {
    let caller = authenticate(state, headers).await?;
    let not_found = || ApiError::not_found(format!("ticket {id} not found"));
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(not_found());
    }
    let ticket = state
        .engine()
        .ticket(&TicketId::new(id))
        .await?
        .ok_or_else(not_found)?;
    if !ticket.party.members().contains(&caller.user_id) {
        return Err(not_found());
    }
    Ok(ticket)
}

/// `GET /v1/tickets/{id}`.
async fn get_ticket(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let ticket = owned_ticket(&state, &headers, &id).await?;
    Ok(Json(ticket_view(&ticket)))
}

/// `DELETE /v1/tickets/{id}`.
async fn cancel_ticket(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let ticket = owned_ticket(&state, &headers, &id).await?;
    match state.engine().cancel(&ticket.id).await? {
        CancelOutcome::Cancelled => {
            state
                .metrics()
                .tickets_finished(&ticket.game_mode, FinalState::Cancelled, 1);
            Ok(StatusCode::NO_CONTENT)
        }
        CancelOutcome::InProgress => Err(ApiError::new(
            StatusCode::CONFLICT,
            error_codes::NOT_CANCELLABLE,
            format!("ticket {id} is being matched and cannot be cancelled"),
        )),
        CancelOutcome::AlreadyFinished => Err(ApiError::new(
            StatusCode::CONFLICT,
            error_codes::NOT_CANCELLABLE,
            format!("ticket {id} already finished"),
        )),
        CancelOutcome::NotFound => Err(ApiError::not_found(format!("ticket {id} not found"))),
    }
}

// ---- operations ----------------------------------------------------------------------------

async fn healthz() -> Json<Value> {
    Json(json!({"name": "matchmaker", "healthy": true}))
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.readiness().await {
        Ok(()) => Json(json!({"ready": true, "store": state.store().kind()})).into_response(),
        Err(reasons) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ready": false, "store": state.store().kind(), "reasons": reasons})),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut depths = Vec::new();
    for mode in state.engine().modes().iter() {
        if let Ok(depth) = state.store().queue_depth(&mode.name).await {
            depths.push((mode.name.clone(), depth));
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.metrics().render(&depths) + &accept_metrics(state.accept_stats()),
    )
        .into_response()
}

/// The accept loop's figures in the Prometheus text format.
fn accept_metrics(accept: &serving::AcceptStats) -> String {
    format!(
        "# HELP matchmaker_connections_open HTTP connections open now.\n\
         # TYPE matchmaker_connections_open gauge\n\
         matchmaker_connections_open {}\n\
         # HELP matchmaker_connections_refused_total Connections refused with 503 + Retry-After at the connection cap.\n\
         # TYPE matchmaker_connections_refused_total counter\n\
         matchmaker_connections_refused_total {}\n\
         # HELP matchmaker_accept_resource_errors_total accept() failures for lack of descriptors or memory (the loop backs off).\n\
         # TYPE matchmaker_accept_resource_errors_total counter\n\
         matchmaker_accept_resource_errors_total {}\n",
        accept.open(),
        accept.refused_over_cap(),
        accept.resource_errors()
    )
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        codes::VALIDATION_ERROR,
        "method not allowed",
    )
}

/// Counts every response by route and status.
async fn count_responses(
    State(state): State<AppState>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let route = match matched.as_ref().map(MatchedPath::as_str) {
        Some("/") => "/",
        Some("/matchmaking") => "/matchmaking",
        Some("/v1/tickets") => "/v1/tickets",
        Some("/v1/tickets/{id}") => "/v1/tickets/{id}",
        Some("/healthz") => "/healthz",
        Some("/readyz") => "/readyz",
        Some("/metrics") => "/metrics",
        _ => "other",
    };
    let response = next.run(request).await;
    state
        .metrics()
        .http_response(route, response.status().as_u16());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> Principal {
        Principal {
            user_id: "me".into(),
            namespace: "ns".into(),
            display_name: String::new(),
        }
    }

    #[test]
    fn an_empty_body_is_the_tutorials_request() {
        let request = parse_request(b"", &caller(), "1v1").expect("valid").ticket;
        assert_eq!(request.game_mode, "1v1");
        assert_eq!(request.party.members(), [PlayerId::from("me")]);
        assert_eq!(request.attributes, Attributes::default());
        assert!(parse_request(b"  \n", &caller(), "1v1").is_ok());
    }

    #[test]
    fn bodies_are_read_strictly() {
        let body =
            br#"{"game_mode": "2v2", "party_members": ["a", {"user_id": "me"}, {"user_id": "b"}],
            "attributes": {"mmr": 1500, "region": "eu", "rank": 3, "tag": "x", "none": null}}"#;
        let request = parse_request(body, &caller(), "1v1").expect("valid").ticket;
        assert_eq!(request.game_mode, "2v2");
        let members: Vec<&str> = request
            .party
            .members()
            .iter()
            .map(PlayerId::as_str)
            .collect();
        assert_eq!(members, ["me", "a", "b"], "caller leads, listed once");
        assert_eq!(request.attributes.mmr, Some(1500));
        assert_eq!(request.attributes.region.as_deref(), Some("eu"));
        assert_eq!(request.attributes.extra.len(), 2);

        for (bad, status) in [
            (&b"{"[..], StatusCode::BAD_REQUEST),
            (br#"{"gamemode": "1v1"}"#, StatusCode::BAD_REQUEST),
            (br#"{"party_members": ["a", "a"]}"#, StatusCode::BAD_REQUEST),
            (br#"{"party_members": [""]}"#, StatusCode::BAD_REQUEST),
            (br#"{"party_members": [7]}"#, StatusCode::BAD_REQUEST),
            (br#"{"attributes": {"mmr": -1}}"#, StatusCode::BAD_REQUEST),
            (br#"{"attributes": {"mmr": 1.5}}"#, StatusCode::BAD_REQUEST),
            (
                br#"{"attributes": {"region": ""}}"#,
                StatusCode::BAD_REQUEST,
            ),
            (
                br#"{"attributes": {"deep": {"x": 1}}}"#,
                StatusCode::BAD_REQUEST,
            ),
            (br#"[1, 2]"#, StatusCode::BAD_REQUEST),
            (b" []", StatusCode::BAD_REQUEST),
            (br#"["2v2"]"#, StatusCode::BAD_REQUEST),
            (br#"{"party_members": [["a"]]}"#, StatusCode::BAD_REQUEST),
            (br#"{"party_tokens": [""]}"#, StatusCode::BAD_REQUEST),
            (br#"{"party_tokens": "t"}"#, StatusCode::BAD_REQUEST),
            (br#"{"party_tokens": [7]}"#, StatusCode::BAD_REQUEST),
        ] {
            let err = parse_request(bad, &caller(), "1v1").expect_err("refused");
            assert_eq!(err.status, status, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn party_tokens_are_read_as_sent() {
        let body = br#"{"party_members": ["a", "b"], "party_tokens": ["ta", "tb"]}"#;
        let request = parse_request(body, &caller(), "1v1").expect("valid");
        assert_eq!(request.party_tokens, ["ta", "tb"]);
        let many = format!(
            r#"{{"party_tokens": [{}]}}"#,
            vec!["\"t\""; MAX_PARTY_MEMBERS + 1].join(",")
        );
        let err = parse_request(many.as_bytes(), &caller(), "1v1").expect_err("too many");
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn failed_matches_answer_a_code_per_class() {
        assert_eq!(
            FailureClass::code_of_name(crate::pipeline::reason_class(
                "gave up after 3 attempts: no_capacity: no dedicated server is free"
            )),
            510520
        );
        assert_eq!(
            FailureClass::code_of_name(crate::pipeline::reason_class("plain")),
            error_codes::MATCH_FAILED
        );
    }

    #[test]
    fn auth_errors_map_to_ags_statuses() {
        let e = ApiError::from(AuthError::Expired);
        assert_eq!((e.status, e.code), (StatusCode::UNAUTHORIZED, 20001));
        let e = ApiError::from(AuthError::Forbidden {
            resource: "NAMESPACE:ns:MATCHMAKING".into(),
            action: 1,
        });
        assert_eq!((e.status, e.code), (StatusCode::FORBIDDEN, 20013));
        assert_eq!(
            e.required.map(|r| r.resource).as_deref(),
            Some("NAMESPACE:ns:MATCHMAKING")
        );
        let e = ApiError::from(AuthError::NotReady("x"));
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
    }
}
