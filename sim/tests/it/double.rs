//! A tiny stand-in for a matchmaker that speaks the tutorial's HTTP contract, for tests and the
//! capacity benchmark until the real matchmaker can be embedded.
//!
//! `POST /matchmaking` with `Authorization: Bearer <token>` waits until a second request
//! arrives, then registers and claims a DSMC session on the fakes, sends `found <ip> <port>` to
//! both players through the fakes' notification REST with the game client's token, and answers
//! both with the tutorial's 200 body. A request left alone for `wait` gets the tutorial's 408; a
//! match whose server cannot be claimed gets the matchmaker crate's 502.
//!
//! With [`late_found_starter`] the very first request is *abandoned* the way an overloaded
//! matchmaker's caller sees it: the match it is part of is built (its partner gets the 200 and
//! `found`), but its own answer is a 503 and its `found` is delivered only once the same player
//! calls again — during the player's next search, before that search's own `found`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use accelbyte::client::{AbClient, Config};
use accelbyte::models::dsmc::{
    CreateSessionRequest, MatchPartyMember, MatchingAlly, MatchingParty,
};
use accelbyte::models::error::RestError;
use accelbyte::models::matchmaking::{
    FailureClass, MatchmakingResponse, MessageBody, error_codes, notice,
};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use parking_lot::Mutex;
use serde_json::json;
use sim::player::GameToken;
use sim::target::{EmbeddedMatchmaker, EmbeddedMatchmakerConfig, MatchmakerStarter, TargetError};
use tokio::sync::oneshot;
use url::Url;

/// What the double answers a request with.
type Answer = (StatusCode, serde_json::Value);

struct Waiting {
    id: u64,
    user: String,
    reply: oneshot::Sender<Answer>,
}

struct Inner {
    game: AbClient,
    token: GameToken,
    namespace: String,
    wait: Duration,
    waiting: Mutex<Vec<Waiting>>,
    next: AtomicU64,
    /// Matches made (for tests).
    pub matches: AtomicU64,
    /// Abandon the first request (see the module docs).
    late_found: AtomicBool,
    /// `found` messages owed to players whose request was abandoned.
    owed: Mutex<HashMap<String, String>>,
}

#[derive(Clone)]
pub struct DoubleState(Arc<Inner>);

impl DoubleState {
    pub fn matches(&self) -> u64 {
        self.0.matches.load(Ordering::Relaxed)
    }
}

/// A running double.
pub struct Double {
    pub url: Url,
    pub state: DoubleState,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Double {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EmbeddedMatchmaker for Double {
    fn url(&self) -> Url {
        self.url.clone()
    }
}

pub fn state(fakes: &Url, namespace: &str, game: (&str, &str), wait: Duration) -> DoubleState {
    let http = AbClient::http_builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("http client");
    let game = AbClient::with_http(
        Config::new(fakes.clone(), game.0, Some(game.1.to_owned()), namespace),
        http,
    )
    .expect("game client");
    DoubleState(Arc::new(Inner {
        token: GameToken::new(game.clone()),
        game,
        namespace: namespace.to_owned(),
        wait,
        waiting: Mutex::new(Vec::new()),
        next: AtomicU64::new(1),
        matches: AtomicU64::new(0),
        late_found: AtomicBool::new(false),
        owed: Mutex::new(HashMap::new()),
    }))
}

pub fn router(state: DoubleState) -> Router {
    Router::new()
        .route("/matchmaking", post(matchmaking))
        .with_state(state)
}

/// Binds 127.0.0.1 on `port` (0: any) with a deep backlog and serves until dropped.
pub async fn spawn(fakes: &Url, wait: Duration, port: u16) -> Double {
    let state = state(
        fakes,
        fakes::seed::builtin::NAMESPACE,
        fakes::seed::builtin::GAME_CLIENT,
        wait,
    );
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_reuseaddr(true).expect("reuseaddr");
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .expect("bind");
    let listener = socket.listen(4096).expect("listen");
    let addr = listener.local_addr().expect("addr");
    let app = router(state.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Double {
        url: Url::parse(&format!("http://{addr}/matchmaking")).expect("url"),
        state,
        task,
    }
}

/// A starter for the engine's embedded seam that runs the double.
pub fn starter(wait: Duration) -> MatchmakerStarter {
    Arc::new(move |config: EmbeddedMatchmakerConfig| {
        Box::pin(async move {
            let d = spawn(&config.fakes_base_url, wait, 0).await;
            Ok::<Box<dyn EmbeddedMatchmaker>, TargetError>(Box::new(d))
        })
    })
}

/// A starter like [`starter`] whose double abandons the first request and delivers its `found`
/// late (see the module docs).
pub fn late_found_starter(wait: Duration) -> MatchmakerStarter {
    Arc::new(move |config: EmbeddedMatchmakerConfig| {
        Box::pin(async move {
            let d = spawn(&config.fakes_base_url, wait, 0).await;
            d.state.0.late_found.store(true, Ordering::Relaxed);
            Ok::<Box<dyn EmbeddedMatchmaker>, TargetError>(Box::new(d))
        })
    })
}

/// The caller's user id: the token's `sub` claim (read without verification, as the tutorial's
/// Lambda does before it validates).
fn caller(headers: &HeaderMap) -> Option<String> {
    use base64::Engine as _;
    let token = headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("sub")?.as_str().map(str::to_owned)
}

async fn matchmaking(
    State(state): State<DoubleState>,
    headers: HeaderMap,
    _body: Bytes,
) -> Response {
    let Some(user) = caller(&headers) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"message": "Invalid Authorization. Expecting Bearer Auth Token."})),
        )
            .into_response();
    };
    let s = &state.0;
    let id = s.next.fetch_add(1, Ordering::Relaxed);
    // The `found` of this player's abandoned request arrives now, in its next search.
    let owed = s.owed.lock().remove(&user);
    if let Some(message) = owed {
        if let Ok(token) = s.token.get().await {
            let _ = s
                .game
                .notify_user(&token, &s.namespace, &user, "NOTIF", &message)
                .await;
        }
    }
    let (tx, rx) = oneshot::channel();
    let partner = {
        let mut waiting = s.waiting.lock();
        waiting.retain(|w| !w.reply.is_closed());
        match waiting.iter().position(|w| w.user != user) {
            Some(at) => Some(waiting.remove(at)),
            None => {
                waiting.push(Waiting {
                    id,
                    user: user.clone(),
                    reply: tx,
                });
                None
            }
        }
    };
    let (status, body) = match partner {
        Some(partner) => {
            let abandon = (partner.id == 1 && s.late_found.load(Ordering::Relaxed))
                .then_some(partner.user.as_str());
            let answer = make_match(&state, &[partner.user.clone(), user], abandon).await;
            let partner_answer = match abandon {
                Some(_) if answer.0 == StatusCode::OK => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!(RestError {
                        error_code: error_codes::UNAVAILABLE,
                        error_message: "overloaded".into(),
                        required_permission: None,
                    }),
                ),
                _ => answer.clone(),
            };
            let _ = partner.reply.send(partner_answer);
            answer
        }
        None => {
            let mut rx = rx;
            match tokio::time::timeout(s.wait, &mut rx).await {
                Ok(Ok(answer)) => answer,
                _ => {
                    let still_waiting = {
                        let mut waiting = s.waiting.lock();
                        let before = waiting.len();
                        waiting.retain(|w| w.id != id);
                        waiting.len() != before
                    };
                    if still_waiting {
                        (StatusCode::REQUEST_TIMEOUT, json!(MessageBody::timed_out()))
                    } else {
                        // A partner took us just now: its answer is on the way.
                        rx.await.unwrap_or((
                            StatusCode::INTERNAL_SERVER_ERROR,
                            json!({"message": "partner vanished"}),
                        ))
                    }
                }
            }
        }
    };
    (status, axum::Json(body)).into_response()
}

/// Registers, claims and reads a DSMC session, then tells both players (`abandoned`: later).
async fn make_match(state: &DoubleState, users: &[String], abandoned: Option<&str>) -> Answer {
    let s = &state.0;
    // The matchmaker crate's shape for a match that failed for good.
    let fail = |why: String| {
        (
            StatusCode::BAD_GATEWAY,
            json!(RestError {
                error_code: FailureClass::ClaimFailed.code(),
                error_message: format!("matchmaking failed: {why}"),
                required_permission: None,
            }),
        )
    };
    let token = match s.token.get().await {
        Ok(t) => t,
        Err(e) => return fail(e.to_string()),
    };
    let session_id = format!("{:032x}", rand::random::<u128>());
    let register = CreateSessionRequest {
        client_version: String::new(),
        configuration: String::new(),
        deployment: "default".into(),
        game_mode: "1v1".into(),
        matching_allies: vec![MatchingAlly {
            matching_parties: vec![MatchingParty {
                party_id: format!("{:032x}", rand::random::<u128>()),
                party_members: users
                    .iter()
                    .map(|u| MatchPartyMember {
                        user_id: u.clone(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
        }],
        namespace: s.namespace.clone(),
        notification_payload: None,
        pod_name: String::new(),
        region: String::new(),
        session_id: session_id.clone(),
    };
    if let Err(e) = s
        .game
        .dsmc()
        .register_session(&token, &s.namespace, &register)
        .await
    {
        return fail(e.to_string());
    }
    let mut claimed = Err(String::new());
    for _ in 0..20 {
        match s
            .game
            .dsmc()
            .claim_server(&token, &s.namespace, &session_id)
            .await
        {
            Ok(()) => {
                claimed = Ok(());
                break;
            }
            Err(e) if e.status() == Some(425) => {
                claimed = Err(e.to_string());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                claimed = Err(e.to_string());
                break;
            }
        }
    }
    if let Err(why) = claimed {
        let _ = s
            .game
            .dsmc()
            .admin_delete_session(&token, &s.namespace, &session_id)
            .await;
        return fail(why);
    }
    let session = match s
        .game
        .dsmc()
        .get_session(&token, &s.namespace, &session_id)
        .await
    {
        Ok(session) => session.session,
        Err(e) => return fail(e.to_string()),
    };
    let (ip, port) = (session.server.ip.clone(), session.server.port);
    let Ok(port) = u16::try_from(port) else {
        return fail(format!("dsmc answered port {port}"));
    };
    let message = notice::found(&ip, port);
    for user in users {
        if Some(user.as_str()) == abandoned {
            s.owed.lock().insert(user.clone(), message.clone());
            continue;
        }
        let _ = s
            .game
            .notify_user(&token, &s.namespace, user, "NOTIF", &message)
            .await;
    }
    s.matches.fetch_add(1, Ordering::Relaxed);
    (
        StatusCode::OK,
        json!(MatchmakingResponse::matched(
            &ip,
            port,
            &session_id,
            &users[0],
            users[1..].to_vec(),
        )),
    )
}
