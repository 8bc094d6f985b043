//! One party's search, the way the tutorial's client does it: log in (PKCE or password), open
//! the lobby WebSocket with the token, POST the matchmaking request, and wait for
//! `found <ip> <port>` on the socket — or a 408, a cancel, a failure.
//!
//! A party is a small state machine (`Login → Connect → Search → Wait → Done`) run as one tokio
//! task; members log in and listen concurrently, the leader sends the request for all of them,
//! carrying every other member's own access token as their consent (`party_tokens`).
//! Latency is measured from the arrival's *scheduled* time, not from when the task got to run,
//! so a saturated system cannot hide its backlog (no coordinated omission).
//!
//! Owns the player's side of the matchmaker contract ([`match_request`], reading its answers
//! with the shared `accelbyte::models::matchmaking` types) and the per-player behaviours (cancel, socket drop, retry after 408, DSMC check).
//! Records into its worker's [`Recorder`]; must not know about scheduling, other parties,
//! thresholds or reports.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use accelbyte::client::{AbClient, ClientError, ErrorBody, LobbyConnection, LobbyOptions};
use accelbyte::frame::Frame;
use accelbyte::models::lobby::MessageNotif;
use accelbyte::models::matchmaking::{
    IDEMPOTENCY_KEY, MatchmakingRequest, MatchmakingResponse, MessageBody, PartyMember,
};
use futures_util::future::join_all;
use parking_lot::Mutex;
use reqwest::header::AUTHORIZATION;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use url::Url;

use crate::engine::schedule::PartySpec;
use crate::engine::users::{User, UserPool};
use crate::metrics::{Counter, Gauges, Recorder};
use crate::outcome::{Endpoint, ErrorKind, FailReason, Outcome, PlayerRecord, Release, ServerAddr};
use crate::scenario::{Behaviour, Flow, LoginFlow, Match2Plan};
use crate::token::Token;

/// The body of the matchmaking request: the matchmaker's optional body, from the contract both
/// share. The tutorial's server reads no body (the bearer token says who calls) and ignores it.
pub fn match_request(
    game_mode: &str,
    others: &[(String, String)],
    mmr: Option<u32>,
    region: Option<&str>,
) -> MatchmakingRequest {
    let mut request = MatchmakingRequest {
        game_mode: Some(game_mode.to_owned()),
        party_members: others
            .iter()
            .map(|(user, _)| PartyMember(user.clone()))
            .collect(),
        party_tokens: others.iter().map(|(_, token)| token.clone()).collect(),
        ..MatchmakingRequest::default()
    };
    if let Some(mmr) = mmr {
        request.set_mmr(mmr);
    }
    if let Some(region) = region {
        request.set_region(region);
    }
    request
}

/// How the matchmaking call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// 200 with a server and a session.
    Matched {
        session: Arc<str>,
        server: ServerAddr,
    },
    /// 408 "Timed out! Not enough players."
    TimedOut,
    /// The matchmaker refused the match.
    Failed(FailReason),
    /// The player gave up.
    Cancelled,
    Error(ErrorKind),
}

/// Reads a matchmaker answer: 200 with `{"server":{"ip","port"},"session":{"id"}}`; 408; a match
/// that failed for good (502 `{"errorCode": 510520, …}`, whose code names the failure class —
/// see [`FailReason::from_code`] — or the tutorial's 400 `{"message": "Unable to join the
/// session."}`); anything else is an error.
pub fn read_answer(status: u16, body: &[u8]) -> Answer {
    match status {
        200 => match serde_json::from_slice::<MatchmakingResponse>(body) {
            Ok(answer) if !answer.server.ip.is_empty() && !answer.session.id.is_empty() => {
                Answer::Matched {
                    session: Arc::from(answer.session.id),
                    server: ServerAddr {
                        ip: Arc::from(answer.server.ip),
                        port: answer.server.port,
                    },
                }
            }
            _ => Answer::Error(ErrorKind::Decode),
        },
        408 => Answer::TimedOut,
        // The matchmaker's failed match: the code names the failure class.
        502 => Answer::Failed(FailReason::from_code(ErrorBody::parse(body).code)),
        // A 400 in AGS's error shape is a refused request, not a failed match; the tutorial's own
        // server answers a failed match with 400 {"message": "Unable to join the session."}.
        400 if ErrorBody::parse(body).code.is_none()
            && serde_json::from_slice::<MessageBody>(body).is_ok() =>
        {
            Answer::Failed(FailReason::UNCLASSIFIED)
        }
        other => Answer::Error(ErrorKind::Status(other)),
    }
}

/// A client-credentials token of the game client, refreshed when it gets old.
///
/// Reading the current token takes a plain lock held for a clone; only a refresh waits on the
/// async one (so one task refreshes while the others wait for its token). Every call used to
/// queue on the async lock, which hands over one waiter per scheduling round: at ~1,500 server
/// releases a second on a saturated runtime, releases waited 6 s (p50) in that queue; 7 ms now.
#[derive(Debug)]
pub struct GameToken {
    client: AbClient,
    current: parking_lot::RwLock<Option<(String, Instant, Duration)>>,
    refreshing: tokio::sync::Mutex<()>,
}

impl GameToken {
    pub fn new(client: AbClient) -> Self {
        GameToken {
            client,
            current: parking_lot::RwLock::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    /// A valid token (a new one once half its lifetime has passed).
    pub async fn get(&self) -> Result<String, ClientError> {
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let _refreshing = self.refreshing.lock().await;
        // Another task may have refreshed it while this one waited.
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let fresh = self.client.login_client().await?;
        let life = Duration::from_secs(u64::try_from(fresh.expires_in).unwrap_or(0).max(60));
        *self.current.write() = Some((fresh.access_token.clone(), Instant::now(), life));
        Ok(fresh.access_token)
    }

    /// Makes `call` with a valid token; answers the moment it was sent. For a delete that frees a
    /// server, that moment, not the answer's, bounds when another session may have the server.
    pub(crate) async fn send<F, Fut>(&self, call: F) -> Result<Instant, ClientError>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = Result<(), ClientError>>,
    {
        let token = self.get().await?;
        let sent = Instant::now();
        call(token).await.map(|()| sent)
    }

    /// The current token while it is younger than half its lifetime.
    fn fresh(&self) -> Option<String> {
        match self.current.read().as_ref() {
            Some((token, at, life)) if at.elapsed() < *life / 2 => Some(token.clone()),
            _ => None,
        }
    }

    pub fn client(&self) -> &AbClient {
        &self.client
    }
}

/// What all players of the run share.
#[derive(Debug)]
pub struct RunCtx {
    /// Matchmaker replicas (at least one): a search starts at the one its arrival picks and
    /// fails over to the next when a connection is refused or times out.
    pub matchmakers: Vec<Url>,
    pub namespace: String,
    pub behaviour: Behaviour,
    /// Lobby options without a source address (each worker sets its own).
    pub lobby: LobbyOptions,
    /// When arrivals started: `found_at_ms` and releases count from here.
    pub start: Instant,
    pub game_token: Option<Arc<GameToken>>,
    pub users: UserPool,
    /// Sessions whose release is already scheduled (one party per match releases it).
    pub released: Mutex<std::collections::HashSet<Arc<str>>>,
    /// Cancelled when the drain ends: players still in flight end as unfinished.
    pub abort: CancellationToken,
    /// Background release tasks (not waited for at the end).
    pub background: TaskTracker,
    /// The pool a `flow = "match2"` population queues in, and its region.
    pub match2: Option<(Arc<Match2Plan>, String)>,
}

impl RunCtx {
    pub(crate) fn ms_since_start(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.start).as_millis()).unwrap_or(u64::MAX)
    }
}

/// A worker: one HTTP connection pool, one metric shard, one source address.
#[derive(Debug, Clone)]
pub struct WorkerCtx {
    /// The player (public) client on the worker's pool.
    pub players: AbClient,
    /// The game client on the same pool.
    pub game: Option<AbClient>,
    pub http: reqwest::Client,
    pub recorder: Recorder,
    pub lobby: LobbyOptions,
    pub source: Option<IpAddr>,
}

/// Decrements a gauge when dropped, so a cancelled task cannot leak a count.
pub(crate) struct GaugeGuard {
    recorder: Recorder,
    which: fn(&Gauges) -> &std::sync::atomic::AtomicI64,
    n: i64,
}

impl GaugeGuard {
    pub(crate) fn new(
        recorder: &Recorder,
        which: fn(&Gauges) -> &std::sync::atomic::AtomicI64,
        n: i64,
    ) -> Self {
        Gauges::add(which(recorder.gauges()), n);
        GaugeGuard {
            recorder: recorder.clone(),
            which,
            n,
        }
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        Gauges::add((self.which)(self.recorder.gauges()), -self.n);
    }
}

/// An open lobby socket, counted in the `open_sockets` gauge while it lives.
pub(crate) struct Socket {
    pub(crate) conn: LobbyConnection,
    _open: GaugeGuard,
}

/// A logged-in user.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// Held decoded (see [`Token`]): a player keeps it for its whole life.
    pub(crate) access_token: Token,
    pub(crate) user_id: String,
    at: Instant,
    life: Duration,
}

/// One member of a party.
pub struct Member {
    pub user: User,
    pub(crate) session: Option<Session>,
    pub(crate) socket: Option<Socket>,
    /// The server of this member's previous match: a late `found` naming it during the next
    /// search is stray, not a second server.
    last_server: Option<ServerAddr>,
    /// Requests of this member whose answer never came (the call broke, timed out or was
    /// given up) and that have not been accounted for by a `found` yet. The matchmaker may
    /// still have matched each of them — it finishes a match it already started building when
    /// the caller goes away, and the `found` reaches the socket — so one `found` naming
    /// another server than a later answer is that match's, not a second server of the later
    /// search.
    abandoned: u32,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("user", &self.user)
            .field("logged_in", &self.session.is_some())
            .field("connected", &self.socket.is_some())
            .finish()
    }
}

/// A party: members log in once and keep their sockets across searches (closed model).
#[derive(Debug)]
pub struct Party {
    pub members: Vec<Member>,
}

impl Party {
    pub fn new(users: Vec<User>) -> Self {
        Party {
            members: users
                .into_iter()
                .map(|user| Member {
                    user,
                    session: None,
                    socket: None,
                    last_server: None,
                    abandoned: 0,
                })
                .collect(),
        }
    }

    /// Closes every socket (bounded) and hands the users back.
    pub async fn close(mut self) -> Vec<User> {
        let closes = self
            .members
            .iter_mut()
            .filter_map(|m| m.socket.as_mut())
            .map(|s| s.conn.close());
        let _ = join_all(closes).await;
        self.members.into_iter().map(|m| m.user).collect()
    }
}

/// One search of a party, with what the scheduler drew for it.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub id: u64,
    /// When the schedule said it arrives: latency counts from here.
    pub scheduled: Instant,
    pub spec: PartySpec,
    /// Give up after this long without an answer.
    pub cancel_after: Option<Duration>,
    /// Per member: drop the socket this long into the search.
    pub drop_after: Vec<Option<Duration>>,
    /// Check the server against DSMC when matched.
    pub verify: bool,
}

/// What a search ended with, for the caller's next step.
#[derive(Debug, Clone, PartialEq)]
pub enum SearchEnd {
    Matched { session: Arc<str> },
    Other(Outcome),
}

/// What one member saw on its socket.
#[derive(Debug, Default)]
struct Seen {
    /// Every `found`, in order, with when it arrived.
    found: Vec<(ServerAddr, Instant)>,
    first_found: Option<Instant>,
}

/// Runs one search of `party` and records one final outcome per member.
pub async fn search(
    w: &WorkerCtx,
    run: &RunCtx,
    party: &mut Party,
    arrival: &Arrival,
) -> SearchEnd {
    let size = party.members.len();
    let lag = Instant::now().saturating_duration_since(arrival.scheduled);
    w.recorder.arrival(arrival.id, size as u32, lag);
    let _in_flight = GaugeGuard::new(&w.recorder, |g| &g.in_flight, 1);
    if run.behaviour.flow == Flow::Match2 {
        return crate::flows::match2::search(w, run, party, arrival).await;
    }

    let result = tokio::select! {
        result = search_inner(w, run, party, arrival) => result,
        () = run.abort.cancelled() => Err((Endpoint::Run, ErrorKind::Unfinished)),
    };
    finish(w, run, party, arrival, result).await
}

/// The outcome of a search before it is recorded.
struct Done {
    answer: Answer,
    /// When the answer arrived.
    answered: Instant,
    /// One per member, in order.
    seen: Vec<Seen>,
    /// Set when a sampled DSMC check disagreed.
    dsmc_server: Option<ServerAddr>,
}

async fn search_inner(
    w: &WorkerCtx,
    run: &RunCtx,
    party: &mut Party,
    arrival: &Arrival,
) -> Result<Done, (Endpoint, ErrorKind)> {
    // Login and lobby, all members at once.
    let prepared = join_all(party.members.iter_mut().map(|m| prepare(w, run, m))).await;
    if let Some(err) = prepared.into_iter().find_map(Result::err) {
        return Err(err);
    }
    // Anything already on the sockets belongs to an earlier search.
    for m in &mut party.members {
        drain_stray(w, m).await;
    }

    let others: Vec<(String, String)> = party.members[1..]
        .iter()
        .filter_map(|m| m.session.as_ref())
        .map(|s| (s.user_id.clone(), s.access_token.text()))
        .collect();
    let request = match_request(
        &arrival.spec.game_mode,
        &others,
        arrival.spec.mmr,
        arrival.spec.region.as_deref(),
    );
    let leader_token = party.members[0]
        .session
        .as_ref()
        .map(|s| s.access_token.text())
        .unwrap_or_default();

    let search_start = Instant::now();
    let (end_tx, end_rx) = watch::channel::<Option<(bool, Instant)>>(None);
    let members = party.members.len();
    let ask = async {
        let _searching = GaugeGuard::new(&w.recorder, |g| &g.searching, members as i64);
        let answer = ask_with_retries(w, run, &leader_token, &request, arrival, search_start).await;
        let matched = matches!(answer, Answer::Matched { .. });
        let at = Instant::now();
        let _ = end_tx.send(Some((matched, at)));
        (answer, at)
    };
    let listens = join_all(party.members.iter_mut().enumerate().map(|(i, m)| {
        let drop_at = arrival
            .drop_after
            .get(i)
            .copied()
            .flatten()
            .map(|d| search_start + d);
        listen(w, run, m, end_rx.clone(), drop_at)
    }));
    let ((answer, answered), seen) = tokio::join!(ask, listens);

    let mut dsmc_server = None;
    if let (Answer::Matched { session, server }, true) = (&answer, arrival.verify) {
        dsmc_server = verify(w, run, session, server).await;
    }
    Ok(Done {
        answer,
        answered,
        seen,
        dsmc_server,
    })
}

/// Logs in (or refreshes) and connects the lobby when needed; while AGS is unreachable
/// (connection refused or reset: it is restarting) it tries again with backoff for a while.
pub(crate) async fn prepare(
    w: &WorkerCtx,
    run: &RunCtx,
    m: &mut Member,
) -> Result<(), (Endpoint, ErrorKind)> {
    let give_up = Instant::now() + UNREACHABLE_RETRY_BUDGET;
    let mut backoff = RECONNECT_BACKOFF_FIRST;
    loop {
        match prepare_once(w, run, m).await {
            Err((_, ErrorKind::Transport)) if Instant::now() + backoff < give_up => {
                // AGS unreachable (restarting): try again later, as a game client does.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(RECONNECT_BACKOFF_MAX);
            }
            other => return other,
        }
    }
}

/// How long a player keeps retrying a login or lobby connection that finds AGS unreachable.
const UNREACHABLE_RETRY_BUDGET: Duration = Duration::from_secs(8);

async fn prepare_once(
    w: &WorkerCtx,
    run: &RunCtx,
    m: &mut Member,
) -> Result<(), (Endpoint, ErrorKind)> {
    let stale = m
        .session
        .as_ref()
        .is_none_or(|s| s.at.elapsed() >= s.life / 2);
    if stale {
        if let Some(socket) = m.socket.take() {
            drop(socket);
        }
        let started = Instant::now();
        let result = match run.behaviour.login {
            LoginFlow::Pkce => {
                w.players
                    .login_user(&m.user.username, &m.user.password)
                    .await
            }
            LoginFlow::Password => {
                w.players
                    .login_password(&m.user.username, &m.user.password)
                    .await
            }
        };
        match result {
            Ok(token) => {
                w.recorder.call(Endpoint::Login, started.elapsed(), Ok(()));
                m.session = Some(Session {
                    life: Duration::from_secs(u64::try_from(token.expires_in).unwrap_or(0).max(60)),
                    access_token: Token::new(token.access_token),
                    user_id: token.user_id,
                    at: Instant::now(),
                });
            }
            Err(err) => {
                let kind = ErrorKind::of(&err);
                w.recorder
                    .call(Endpoint::Login, started.elapsed(), Err(kind));
                return Err((Endpoint::Login, kind));
            }
        }
    }
    if m.socket.is_none() {
        connect(w, m).await?;
    }
    Ok(())
}

pub(crate) async fn connect(w: &WorkerCtx, m: &mut Member) -> Result<(), (Endpoint, ErrorKind)> {
    let Some(session) = &m.session else {
        return Err((Endpoint::LobbyConnect, ErrorKind::Protocol));
    };
    let started = Instant::now();
    match w
        .players
        .connect_lobby(&session.access_token.text(), &w.lobby)
        .await
    {
        Ok(conn) => {
            w.recorder
                .call(Endpoint::LobbyConnect, started.elapsed(), Ok(()));
            m.socket = Some(Socket {
                conn,
                _open: GaugeGuard::new(&w.recorder, |g| &g.open_sockets, 1),
            });
            Ok(())
        }
        Err(err) => {
            let kind = ErrorKind::of(&err);
            w.recorder
                .call(Endpoint::LobbyConnect, started.elapsed(), Err(kind));
            Err((Endpoint::LobbyConnect, kind))
        }
    }
}

/// Reads what is already buffered on the socket (late `found`s of an earlier search).
async fn drain_stray(w: &WorkerCtx, m: &mut Member) {
    let Some(socket) = m.socket.as_mut() else {
        return;
    };
    loop {
        match tokio::time::timeout(Duration::ZERO, socket.conn.next_frame()).await {
            Ok(Ok(Some(frame))) => {
                if found_in(&frame).is_some() {
                    w.recorder.count(Counter::StrayFound);
                }
            }
            Ok(Ok(None)) | Ok(Err(_)) => {
                // Closed or broken: reconnect before the search.
                m.socket = None;
                let _ = connect(w, m).await;
                return;
            }
            Err(_) => return,
        }
    }
}

fn found_in(frame: &Frame) -> Option<ServerAddr> {
    MessageNotif::from_frame(frame).and_then(|msg| ServerAddr::from_found(&msg.payload))
}

/// Sends the request; after a 408, again (as the behaviour allows).
async fn ask_with_retries(
    w: &WorkerCtx,
    run: &RunCtx,
    token: &str,
    request: &MatchmakingRequest,
    arrival: &Arrival,
    search_start: Instant,
) -> Answer {
    let b = &run.behaviour;
    let deadline = arrival.cancel_after.map(|d| search_start + d);
    let mut retries = 0;
    loop {
        let answer = match deadline {
            Some(at) => tokio::select! {
                answer = ask(w, run, token, request, arrival.id) => answer,
                () = tokio::time::sleep_until(at) => Answer::Cancelled,
            },
            None => ask(w, run, token, request, arrival.id).await,
        };
        let retry = b.retry_on_timeout.filter(|r| retries < r.max);
        match (answer, retry) {
            (Answer::TimedOut, Some(r)) => {
                retries += 1;
                w.recorder.count(Counter::Retry);
                let resume = Instant::now() + r.delay;
                if deadline.is_some_and(|at| at <= resume) {
                    tokio::time::sleep_until(deadline.unwrap_or(resume)).await;
                    return Answer::Cancelled;
                }
                tokio::time::sleep_until(resume).await;
            }
            (answer, _) => return answer,
        }
    }
}

/// One matchmaking call: to the replica `spread` picks, then to the next whenever that one
/// could not give an answer — the connection was refused, it broke mid-request (the replica
/// died, a proxy reset it), or the replica answered 503/429 (not ready, shutting down, its
/// store unreachable) — as a client behind a load balancer would, until the request timeout
/// (given one URL, its answer stands).
/// Every attempt of one call carries the same `Idempotency-Key`, so a retry finds the ticket
/// an earlier attempt made (on any replica) instead of making a second one. Each move counts as
/// a failover of the URL left behind.
async fn ask(
    w: &WorkerCtx,
    run: &RunCtx,
    token: &str,
    request: &MatchmakingRequest,
    spread: u64,
) -> Answer {
    const FIRST_BACKOFF: Duration = Duration::from_millis(100);
    const MAX_BACKOFF: Duration = Duration::from_secs(1);
    let started = Instant::now();
    let deadline = started + run.behaviour.request_timeout;
    let key = format!("{:032x}", rand::random::<u128>());
    let n = run.matchmakers.len().max(1);
    let first = usize::try_from(spread % n as u64).unwrap_or(0);
    let mut attempt = 0;
    let mut backoff = FIRST_BACKOFF;
    let answer = loop {
        let Some(url) = run.matchmakers.get((first + attempt) % n) else {
            break Answer::Error(ErrorKind::Transport);
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let sent = w
            .http
            .post(url.clone())
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header(IDEMPOTENCY_KEY, &key)
            .json(request)
            .timeout(left.max(Duration::from_millis(1)))
            .send()
            .await;
        let (answer, wait) = match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                    .map(Duration::from_secs);
                let answer = match response.bytes().await {
                    Ok(body) => read_answer(status, &body),
                    Err(err) => Answer::Error(ErrorKind::of_reqwest(&err)),
                };
                let retry = matches!(status, 429 | 503)
                    || matches!(&answer, Answer::Error(kind) if kind.is_broken_connection());
                (answer, retry.then(|| retry_after.unwrap_or(backoff)))
            }
            // Nobody there: the next replica at once.
            Err(err) if err.is_connect() => (
                Answer::Error(ErrorKind::of_reqwest(&err)),
                Some(if attempt + 1 < n {
                    Duration::ZERO
                } else {
                    backoff
                }),
            ),
            Err(err) => {
                let kind = ErrorKind::of_reqwest(&err);
                let retry = kind.is_broken_connection();
                (Answer::Error(kind), retry.then_some(backoff))
            }
        };
        // With one URL there is nowhere to go: its answer is the answer, as it always was.
        let Some(wait) = wait.filter(|_| n > 1) else {
            break answer;
        };
        let wait = wait.min(MAX_BACKOFF);
        if Instant::now() + wait >= deadline {
            break answer;
        }
        w.recorder.failover(url);
        attempt += 1;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    };
    // A 408 or a refused match is the matchmaker's answer, not a broken call.
    let result = match &answer {
        Answer::Error(kind) => Err(*kind),
        _ => Ok(()),
    };
    w.recorder
        .call(Endpoint::Matchmaking, started.elapsed(), result);
    answer
}

/// The first wait before reconnecting a lobby socket that failed to reconnect at once; it
/// doubles up to [`RECONNECT_BACKOFF_MAX`] (the AGS SDKs back off the same way).
const RECONNECT_BACKOFF_FIRST: Duration = Duration::from_millis(100);
const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Listens on one member's socket until the search's answer settles it.
async fn listen(
    w: &WorkerCtx,
    run: &RunCtx,
    m: &mut Member,
    mut end: watch::Receiver<Option<(bool, Instant)>>,
    mut drop_at: Option<Instant>,
) -> Seen {
    enum Event {
        Changed(bool),
        Deadline,
        Drop,
        Reconnect,
        Frame(Result<Option<Frame>, ClientError>),
    }
    let b = &run.behaviour;
    let far = Instant::now() + b.request_timeout * 2 + Duration::from_secs(3600);
    let mut seen = Seen::default();
    let mut sender_alive = true;
    // After a failed reconnect: when to try again, and the wait after that.
    let mut reconnect_at: Option<Instant> = None;
    let mut backoff = RECONNECT_BACKOFF_FIRST;
    loop {
        let state = *end.borrow();
        let deadline = match state {
            None => far,
            Some((true, at)) => match seen.first_found {
                None => at + b.found_grace,
                Some(first) => at.max(first) + b.linger,
            },
            Some((false, at)) => at,
        };
        let event = tokio::select! {
            biased;
            changed = end.changed(), if sender_alive => Event::Changed(changed.is_ok()),
            () = tokio::time::sleep_until(deadline) => Event::Deadline,
            () = tokio::time::sleep_until(drop_at.unwrap_or(far)), if drop_at.is_some() => Event::Drop,
            () = tokio::time::sleep_until(reconnect_at.unwrap_or(far)), if reconnect_at.is_some() => Event::Reconnect,
            frame = next_frame(&mut m.socket) => Event::Frame(frame),
        };
        match event {
            Event::Changed(alive) => sender_alive = alive,
            Event::Deadline => return seen,
            Event::Drop => {
                drop_at = None;
                // An abrupt drop: no close frame, as when a player loses its network.
                m.socket = None;
                w.recorder.count(Counter::SocketDrop);
                if b.drop_socket.is_some_and(|d| d.reconnect) && connect(w, m).await.is_ok() {
                    w.recorder.count(Counter::Reconnect);
                }
            }
            Event::Frame(Ok(Some(frame))) => {
                if let Some(server) = found_in(&frame) {
                    let at = Instant::now();
                    seen.first_found.get_or_insert(at);
                    seen.found.push((server, at));
                }
            }
            Event::Frame(Ok(None)) | Event::Frame(Err(_)) => {
                // The lobby closed the socket (or it broke): reconnect, as an SDK does, with
                // backoff while the lobby is away (what it queued meanwhile comes on reconnect).
                m.socket = None;
                w.recorder.error(Endpoint::Lobby, ErrorKind::Closed);
                backoff = RECONNECT_BACKOFF_FIRST;
                reconnect_at = Some(Instant::now());
            }
            Event::Reconnect => {
                if connect(w, m).await.is_ok() {
                    w.recorder.count(Counter::Reconnect);
                    reconnect_at = None;
                } else {
                    reconnect_at = Some(Instant::now() + backoff);
                    backoff = (backoff * 2).min(RECONNECT_BACKOFF_MAX);
                }
            }
        }
    }
}

/// The next frame, or never when there is no socket.
async fn next_frame(socket: &mut Option<Socket>) -> Result<Option<Frame>, ClientError> {
    match socket {
        Some(s) => loop {
            match s.conn.next_frame().await {
                Err(ClientError::Frame(_)) => continue,
                other => return other,
            }
        },
        None => std::future::pending().await,
    }
}

/// Checks the answer's server against DSMC; `Some(dsmc's)` when they disagree.
async fn verify(
    w: &WorkerCtx,
    run: &RunCtx,
    session: &str,
    server: &ServerAddr,
) -> Option<ServerAddr> {
    let (Some(game), Some(token)) = (&w.game, &run.game_token) else {
        return None;
    };
    let started = Instant::now();
    let token = match token.get().await {
        Ok(token) => token,
        Err(err) => {
            w.recorder.call(
                Endpoint::DsmcCheck,
                started.elapsed(),
                Err(ErrorKind::of(&err)),
            );
            return None;
        }
    };
    match game
        .dsmc()
        .get_session(&token, &run.namespace, session)
        .await
    {
        Ok(found) => {
            w.recorder
                .call(Endpoint::DsmcCheck, started.elapsed(), Ok(()));
            w.recorder.count(Counter::Verified);
            let s = &found.session.server;
            let dsmc = ServerAddr {
                ip: Arc::from(s.ip.as_str()),
                port: u16::try_from(s.port).unwrap_or(0),
            };
            (dsmc != *server).then_some(dsmc)
        }
        Err(err) => {
            w.recorder.call(
                Endpoint::DsmcCheck,
                started.elapsed(),
                Err(ErrorKind::of(&err)),
            );
            None
        }
    }
}

/// Records one final outcome per member and schedules the server's release.
async fn finish(
    w: &WorkerCtx,
    run: &RunCtx,
    party: &mut Party,
    arrival: &Arrival,
    result: Result<Done, (Endpoint, ErrorKind)>,
) -> SearchEnd {
    let mut done = match result {
        Ok(done) => done,
        Err((endpoint, kind)) => {
            if endpoint == Endpoint::Run {
                w.recorder.error(endpoint, kind);
            }
            for i in 0..party.members.len() {
                w.recorder.finish(
                    record(arrival, i, Outcome::Error, Some((endpoint, kind))),
                    None,
                );
            }
            return SearchEnd::Other(Outcome::Error);
        }
    };
    let (session, server) = match &done.answer {
        Answer::Matched { session, server } => (Some(session.clone()), Some(server.clone())),
        _ => (None, None),
    };
    // A request whose answer never came may still have been matched (see `Member::abandoned`).
    let unanswered = match &done.answer {
        Answer::Cancelled => true,
        // Refused (401, 403, 409 live ticket, 429): no ticket was made.
        Answer::Error(ErrorKind::Status(status)) => !(400..500).contains(status),
        Answer::Error(_) => true,
        Answer::Matched { .. } | Answer::TimedOut | Answer::Failed(_) => false,
    };
    let mut any_matched = false;
    for (i, seen) in done.seen.iter_mut().enumerate() {
        let member = &mut party.members[i];
        let stray = drop_stray_founds(seen, member, server.as_ref());
        for _ in 0..stray {
            w.recorder.count(Counter::StrayFound);
        }
        if server.is_some() {
            member.last_server = server.clone();
        }
        if unanswered && seen.found.is_empty() {
            member.abandoned += 1;
        }
        let (outcome, error, fail) = match &done.answer {
            Answer::Matched { .. } if seen.first_found.is_some() => (Outcome::Matched, None, None),
            Answer::Matched { .. } => (
                Outcome::Error,
                Some((Endpoint::Lobby, ErrorKind::NoFound)),
                None,
            ),
            Answer::TimedOut => (Outcome::TimedOut, None, None),
            Answer::Cancelled => (Outcome::Cancelled, None, None),
            Answer::Failed(reason) => (Outcome::Failed, None, Some(*reason)),
            Answer::Error(kind) => (Outcome::Error, Some((Endpoint::Matchmaking, *kind)), None),
        };
        if let Some((Endpoint::Lobby, kind)) = error {
            w.recorder.error(Endpoint::Lobby, kind);
        }
        if let (Outcome::Matched, Some(first)) = (outcome, seen.first_found) {
            w.recorder
                .pairing(first.saturating_duration_since(arrival.scheduled));
            any_matched = true;
        }
        let mut r = record(arrival, i, outcome, error);
        r.session = session.clone();
        r.answered = server.clone();
        r.found = seen.found.iter().map(|(f, _)| f.clone()).collect();
        r.found_at_ms = seen.first_found.map(|at| run.ms_since_start(at));
        r.answered_at_ms = r
            .session
            .is_some()
            .then(|| run.ms_since_start(done.answered));
        r.dsmc_server = done.dsmc_server.clone();
        w.recorder.finish(r, fail);
    }
    match session {
        Some(session) => {
            // The match holds its server whatever this party's sockets saw.
            schedule_release(w, run, &session);
            if any_matched {
                SearchEnd::Matched { session }
            } else {
                SearchEnd::Other(Outcome::Error)
            }
        }
        None => SearchEnd::Other(match done.answer {
            Answer::TimedOut => Outcome::TimedOut,
            Answer::Cancelled => Outcome::Cancelled,
            Answer::Failed(_) => Outcome::Failed,
            _ => Outcome::Error,
        }),
    }
}

/// Drops from `seen` the `found`s that belong to earlier searches of `member` rather than to
/// this one, whose answer named `answered`: one naming the server of the member's previous match
/// (a late or repeated `found`), and one per request the member abandoned (see
/// [`Member::abandoned`]) naming any other server. Recomputes when the first `found` of this
/// search arrived. Returns how many were dropped.
///
/// Without match ids in the tutorial's `found <ip> <port>`, this is as exact as attribution
/// gets: a `found` for another server is still reported (as a second server) whenever no
/// earlier request of the member can explain it.
fn drop_stray_founds(seen: &mut Seen, member: &mut Member, answered: Option<&ServerAddr>) -> usize {
    let before = seen.found.len();
    // The abandoned request's match may have had the very server this one has (freed since):
    // then the earlier of two `found`s for it is the stray, and only the later one says when
    // this search's session started.
    let mut answered_left = seen
        .found
        .iter()
        .filter(|(f, _)| Some(f) == answered)
        .count();
    seen.found.retain(|(f, _)| {
        if Some(f) == answered {
            answered_left -= 1;
            if answered_left > 0 && member.abandoned > 0 {
                member.abandoned -= 1;
                return false;
            }
            true
        } else if member.last_server.as_ref() == Some(f) {
            false
        } else if member.abandoned > 0 {
            member.abandoned -= 1;
            false
        } else {
            true
        }
    });
    seen.first_found = seen.found.first().map(|(_, at)| *at);
    before - seen.found.len()
}

pub(crate) fn record(
    arrival: &Arrival,
    member: usize,
    outcome: Outcome,
    error: Option<(Endpoint, ErrorKind)>,
) -> PlayerRecord {
    PlayerRecord {
        arrival: arrival.id,
        member: u16::try_from(member).unwrap_or(u16::MAX),
        outcome,
        error,
        session: None,
        answered: None,
        found: Vec::new(),
        found_at_ms: None,
        answered_at_ms: None,
        dsmc_server: None,
    }
}

/// After the match's game length, deletes its DSMC session (once per match), freeing the
/// server as a finished game would.
fn schedule_release(w: &WorkerCtx, run: &RunCtx, session: &Arc<str>) {
    let Some(length) = run.behaviour.match_length else {
        return;
    };
    let (Some(game), Some(_)) = (&w.game, &run.game_token) else {
        return;
    };
    if !run.released.lock().insert(Arc::clone(session)) {
        return;
    }
    let game = game.clone();
    let recorder = w.recorder.clone();
    let session = Arc::clone(session);
    let namespace = run.namespace.clone();
    let abort = run.abort.clone();
    let token = run.game_token.clone();
    let start = run.start;
    // Only the sleep stays in the task for the game's length; the delete's state (an HTTP
    // call, perhaps a token refresh: ~1.5 KB) is boxed once the game is over.
    run.background.spawn(async move {
        tokio::select! {
            () = tokio::time::sleep(length) => {}
            () = abort.cancelled() => return,
        }
        Box::pin(release(game, recorder, session, namespace, token, start)).await;
    });
}

/// Deletes a finished match's DSMC session and records when its server became free.
async fn release(
    game: AbClient,
    recorder: Recorder,
    session: Arc<str>,
    namespace: String,
    token: Option<Arc<GameToken>>,
    start: Instant,
) {
    let Some(token) = token else { return };
    let started = Instant::now();
    let (game, namespace, id) = (&game, &namespace, &session);
    let result = token
        .send(|token| async move {
            game.dsmc()
                .admin_delete_session(&token, namespace, id)
                .await
        })
        .await;
    record_release(&recorder, session, start, started, result);
}

/// Records a release (a DSMC or game-session delete) made at `started`: the moment its delete
/// was sent when it succeeded, else an unknown moment — a 404 means another process (a shard
/// whose player was in the same match) deleted it first; any other error may have been applied
/// with its answer lost (a timeout, a reset connection). From an unknown moment on, the server
/// may be free, so the invariant check must not hold a later session on it against the
/// matchmaker.
pub(crate) fn record_release(
    recorder: &Recorder,
    session: Arc<str>,
    start: Instant,
    started: Instant,
    result: Result<Instant, ClientError>,
) {
    match result {
        Ok(sent) => {
            recorder.call(Endpoint::ReleaseServer, started.elapsed(), Ok(()));
            recorder.release(Release {
                session,
                at_ms: u64::try_from(sent.saturating_duration_since(start).as_millis())
                    .unwrap_or(u64::MAX),
            });
        }
        Err(err) => {
            let gone = err.status() == Some(404);
            recorder.call(
                Endpoint::ReleaseServer,
                started.elapsed(),
                if gone {
                    Ok(())
                } else {
                    Err(ErrorKind::of(&err))
                },
            );
            recorder.release(Release { session, at_ms: 0 });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_of_the_tutorial_contract() {
        let ok = br#"{"message":"successfully matchmade","server":{"ip":"127.0.0.1","port":7777},"session":{"id":"s1"},"users":["a",["b"]]}"#;
        assert_eq!(
            read_answer(200, ok),
            Answer::Matched {
                session: Arc::from("s1"),
                server: ServerAddr {
                    ip: Arc::from("127.0.0.1"),
                    port: 7777
                }
            }
        );
        assert_eq!(
            read_answer(408, br#"{"message":"Timed out! Not enough players."}"#),
            Answer::TimedOut
        );
        assert_eq!(
            read_answer(400, br#"{"message":"Unable to join the session."}"#),
            Answer::Failed(FailReason::UNCLASSIFIED)
        );
        // The class comes from the code, whatever the message says.
        let no_capacity = read_answer(
            502,
            br#"{"errorCode":510520,"errorMessage":"matchmaking failed: a claim of a server"}"#,
        );
        assert_eq!(
            no_capacity,
            Answer::Failed(FailReason::from_code(Some(510520)))
        );
        let Answer::Failed(reason) = no_capacity else {
            unreachable!()
        };
        assert_eq!((reason.class(), reason.is_claim()), ("no_capacity", true));
        assert_eq!(
            read_answer(
                502,
                br#"{"errorCode":510502,"errorMessage":"claim_unreachable: dedicated server is unreachable"}"#
            ),
            Answer::Failed(FailReason::UNCLASSIFIED)
        );
        assert_eq!(
            read_answer(502, b"bad gateway"),
            Answer::Failed(FailReason::UNCLASSIFIED)
        );
        assert_eq!(
            read_answer(400, br#"{"errorCode":20002,"errorMessage":"validation"}"#),
            Answer::Error(ErrorKind::Status(400))
        );
        assert_eq!(read_answer(200, b"{}"), Answer::Error(ErrorKind::Decode));
        assert_eq!(read_answer(401, b""), Answer::Error(ErrorKind::Status(401)));
        assert_eq!(
            read_answer(503, b"{}"),
            Answer::Error(ErrorKind::Status(503))
        );
    }

    #[test]
    fn request_body_is_the_matchmakers_optional_body() {
        let solo = serde_json::to_string(&match_request("1v1", &[], None, None)).expect("json");
        assert_eq!(solo, r#"{"game_mode":"1v1"}"#);
        let party = serde_json::to_string(&match_request(
            "5v5",
            &[("u2".into(), "t2".into())],
            Some(1500),
            Some("eu"),
        ))
        .expect("json");
        assert_eq!(
            party,
            r#"{"game_mode":"5v5","party_members":["u2"],"party_tokens":["t2"],"attributes":{"mmr":1500,"region":"eu"}}"#
        );
    }

    fn port(p: u16) -> ServerAddr {
        ServerAddr {
            ip: Arc::from("127.0.0.1"),
            port: p,
        }
    }

    fn member(last: Option<u16>, abandoned: u32) -> Member {
        Member {
            user: User {
                username: Arc::from("u"),
                password: Arc::from("p"),
            },
            session: None,
            socket: None,
            last_server: last.map(port),
            abandoned,
        }
    }

    fn seen(ports: &[u16], t0: Instant) -> Seen {
        let found: Vec<_> = ports
            .iter()
            .enumerate()
            .map(|(i, p)| (port(*p), t0 + Duration::from_millis(i as u64 * 10)))
            .collect();
        Seen {
            first_found: found.first().map(|(_, at)| *at),
            found,
        }
    }

    #[test]
    fn a_late_found_of_an_abandoned_request_is_not_a_second_server() {
        let t0 = Instant::now();
        // The abandoned request's match (7001) reached the socket before this one's (7002).
        let mut s = seen(&[7001, 7002], t0);
        let mut m = member(None, 1);
        assert_eq!(drop_stray_founds(&mut s, &mut m, Some(&port(7002))), 1);
        assert_eq!(s.found, vec![(port(7002), t0 + Duration::from_millis(10))]);
        // The search's first found is its own, not the stray's.
        assert_eq!(s.first_found, Some(t0 + Duration::from_millis(10)));
        assert_eq!(m.abandoned, 0);

        // Nothing abandoned: a found for another server stays, and the check reports it.
        let mut s = seen(&[7001, 7002], t0);
        let mut m = member(None, 0);
        assert_eq!(drop_stray_founds(&mut s, &mut m, Some(&port(7002))), 0);
        assert_eq!(s.found.len(), 2);

        // One abandoned request explains one found, not two.
        let mut s = seen(&[7001, 7003, 7002], t0);
        let mut m = member(None, 1);
        assert_eq!(drop_stray_founds(&mut s, &mut m, Some(&port(7002))), 1);
        assert_eq!(
            s.found.iter().map(|(f, _)| f.port).collect::<Vec<_>>(),
            vec![7003, 7002]
        );

        // The previous match's server is stray too, and costs no abandoned request.
        let mut s = seen(&[7000, 7002], t0);
        let mut m = member(Some(7000), 1);
        assert_eq!(drop_stray_founds(&mut s, &mut m, Some(&port(7002))), 1);
        assert_eq!(m.abandoned, 1);

        // A found of the answered server itself is never stray, even when it was the last one.
        let mut s = seen(&[7002], t0);
        let mut m = member(Some(7002), 1);
        assert_eq!(drop_stray_founds(&mut s, &mut m, Some(&port(7002))), 0);
        assert_eq!((s.found.len(), m.abandoned), (1, 1));

        // The abandoned match had this very server (freed and claimed again since): the
        // earlier found is the stray, and the session started at the later one. Timing the
        // session from the stray made the check see it start before the earlier session on
        // that server was released (`server_reused`).
        let mut s = seen(&[7002, 7002], t0);
        let mut m = member(None, 1);
        assert_eq!(drop_stray_founds(&mut s, &mut m, Some(&port(7002))), 1);
        assert_eq!(s.first_found, Some(t0 + Duration::from_millis(10)));
        assert_eq!(m.abandoned, 0);
        // Without an abandoned request both stay, and the check sees them.
        let mut s = seen(&[7002, 7002], t0);
        let mut m = member(None, 0);
        assert_eq!(drop_stray_founds(&mut s, &mut m, Some(&port(7002))), 0);
        assert_eq!(s.first_found, Some(t0));
    }
}
