//! The pipeline: what happens to a claimed match, once, on the replica that claimed it. It is
//! the tutorial's handler (contract section 0.3) made safe to run once per match instead of once
//! per player:
//!
//! 1. **Session browser create** (the tutorial's body; `max_internal_player` = the match size).
//! 2. **DSMC register** with the session browser's id reused as the DSMC session id, one
//!    matching ally per team and one party per ticket.
//! 3. **DSMC claim**, retried with exponential backoff and jitter while the answer says "try
//!    again": 425 (not ready), 503 (unreachable), a 404 within `claim_not_found_grace` of the
//!    register (DSMC may not list the session yet), 429/5xx and transport errors; bounded by
//!    `claim_attempts` and `claim_deadline` (from the register). 409 (already claimed) is final.
//!    Every failed attempt is counted by class: `conflict`, `not_ready`, `no_capacity` (a
//!    register refused with 503), `unreachable`, `timeout`, `not_found`, `other`.
//! 4. **DSMC get** (the server's ip and port) and **add players** (all at once).
//! 5. **Session browser get**: the session must be `joinable`.
//!
//! Any failure releases what was created (session browser session, DSMC session: best effort)
//! and hands the tickets back with [`TicketOutcome::Requeue`]: back in the queue at their
//! original enqueue time, one attempt counted; the store fails them once `max_attempts` is
//! reached. The recorded reason starts with the failure's class (`claim_not_ready: ...`).
//!
//! **Notifications** (free-form, topic `NOTIF` by default, sent with the game client's token):
//! - `searching` once a ticket was accepted ([`Pipeline::searching`], called by the HTTP layer
//!   after the store took the ticket, never for a refused request). While it is being sent, the
//!   `found` or `failed` of that ticket's match built on this replica waits for it, so it cannot
//!   overtake it; a match built on another replica needs the whole pipeline (six AGS calls)
//!   before its `found`, against the one call of `searching`;
//! - `found <ip> <port>` to every player of the match, **after** the store recorded the match
//!   ([`MatchSink::recorded`]). A match is recorded at most once (a lost lease makes the record
//!   fail and the pipeline's result is dropped), so the HTTP answer and the notification always
//!   name the same server. A failed notification is retried at once only when it surely did
//!   not arrive (connection refused, 429, 503). The store keeps the match's *notice* until this
//!   replica confirms every player was told; if it stops first, or a notification may have been
//!   lost (a timeout, a partition), any replica's reaper sends the notice again once it is due
//!   ([`MatchSink::redeliver`], `store::NOTICE_GRACE`): every player hears `found` at least once,
//!   and a rare second one names the same server;
//! - `failed <class>` to the players of tickets that ran out of attempts.
//!
//! Must not know about the HTTP layer or the store: it returns outcomes and the engine records
//! them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use accelbyte::client::ClientError;
use accelbyte::models::dsmc::{
    CreateSessionRequest as RegisterRequest, MatchPartyMember, MatchingAlly, MatchingParty,
};
use accelbyte::models::matchmaking::{FailureClass, notice};
use accelbyte::models::sessionbrowser::{CreateSessionRequest, GameSessionSetting};
use futures_util::future::join_all;
use rand::Rng as _;
use tokio_util::sync::CancellationToken;

use crate::ags::Ags;
use crate::clock::{Clock as _, SystemClock};
use crate::engine::MatchSink;
use crate::metrics::{FinalState, Metrics, Step};
use crate::store::{DueNotice, Reclaimed};
use crate::ticket::{
    ClaimedMatch, Completion, MatchOutcome, Placement, PlayerId, ServerAddr, Ticket, TicketId,
    TicketOutcome, TicketState,
};

/// How the pipeline talks to AGS.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineConfig {
    /// Free-form notification topic (the tutorial's `NOTIF`).
    pub topic: String,
    /// DSMC deployment (empty: the namespace's default).
    pub deployment: String,
    /// Session browser `game_version`.
    pub game_version: String,
    /// Session browser `map_name`.
    pub map_name: String,
    /// Session browser `session_type` (`dedicated`).
    pub session_type: String,
    /// Session browser `username`.
    pub username: String,
    /// Session browser `password`.
    pub password: String,
    /// Claim attempts per match.
    pub claim_attempts: u32,
    /// Time from register after which no claim is attempted.
    pub claim_deadline: Duration,
    /// First backoff between claim attempts (doubled each time, with jitter).
    pub claim_backoff_initial: Duration,
    /// Largest backoff between claim attempts.
    pub claim_backoff_max: Duration,
    /// How long after the register a 404 on claim means "not listed yet" rather than "gone".
    pub claim_not_found_grace: Duration,
    /// Attempts per notification (retried only when it surely did not arrive).
    pub notify_attempts: u32,
    /// Bound on releasing a failed match's session and server.
    pub cleanup_timeout: Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            topic: "NOTIF".to_owned(),
            deployment: String::new(),
            game_version: "1.0.0".to_owned(),
            map_name: "default".to_owned(),
            session_type: "dedicated".to_owned(),
            username: "matchmaker".to_owned(),
            password: String::new(),
            claim_attempts: 10,
            claim_deadline: Duration::from_secs(30),
            claim_backoff_initial: Duration::from_millis(100),
            claim_backoff_max: Duration::from_secs(2),
            claim_not_found_grace: Duration::from_secs(5),
            notify_attempts: 3,
            cleanup_timeout: Duration::from_secs(5),
        }
    }
}

impl PipelineConfig {
    /// Checks the retry settings make sense.
    pub fn validate(&self) -> Result<(), String> {
        if self.claim_attempts == 0 || self.notify_attempts == 0 {
            return Err("claim_attempts and notify_attempts must be at least 1".into());
        }
        if self.claim_backoff_initial.is_zero()
            || self.claim_backoff_max < self.claim_backoff_initial
        {
            return Err("claim backoff must be positive and its max at least its start".into());
        }
        if self.claim_deadline.is_zero() {
            return Err("claim_deadline must be positive".into());
        }
        if self.topic.is_empty() {
            return Err("the notification topic must not be empty".into());
        }
        Ok(())
    }
}

/// Why a DSMC claim attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimClass {
    /// 409: the server is already claimed (final).
    Conflict,
    /// 425: the server is not ready yet.
    NotReady,
    /// The register was refused with 503: no server is free.
    NoCapacity,
    /// 503 on claim, or DSMC could not be reached.
    Unreachable,
    /// The request or the claim deadline timed out.
    Timeout,
    /// 404: the session is not (or no longer) known.
    NotFound,
    /// Anything else.
    Other,
}

impl ClaimClass {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            ClaimClass::Conflict => "conflict",
            ClaimClass::NotReady => "not_ready",
            ClaimClass::NoCapacity => "no_capacity",
            ClaimClass::Unreachable => "unreachable",
            ClaimClass::Timeout => "timeout",
            ClaimClass::NotFound => "not_found",
            ClaimClass::Other => "other",
        }
    }
}

impl std::fmt::Display for ClaimClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// Why a pipeline run failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("session browser create failed: {0}")]
    SessionCreate(Box<ClientError>),
    #[error("session browser create answered no session id")]
    NoSessionId,
    #[error("no dedicated server is free: {0}")]
    NoCapacity(Box<ClientError>),
    #[error("dsmc register failed: {0}")]
    Register(Box<ClientError>),
    #[error("dsmc claim failed ({class}) after {attempts} attempts: {detail}")]
    Claim {
        class: ClaimClass,
        attempts: u32,
        detail: String,
    },
    #[error("dsmc get failed: {0}")]
    ServerGet(Box<ClientError>),
    #[error("dsmc session has no usable server address (ip {ip:?}, port {port})")]
    NoServer { ip: String, port: i32 },
    #[error("adding player {player} failed: {source}")]
    AddPlayer {
        player: PlayerId,
        source: Box<ClientError>,
    },
    #[error("session browser get failed: {0}")]
    SessionGet(Box<ClientError>),
    #[error("session {0} is not joinable")]
    NotJoinable(String),
    #[error("the match's lease was lost")]
    LeaseLost,
}

impl StepError {
    /// The failure class: the prefix of the recorded reason and of the `failed` notification.
    pub fn class(&self) -> FailureClass {
        match self {
            StepError::SessionCreate(_) | StepError::NoSessionId => FailureClass::SessionCreate,
            StepError::NoCapacity(_) => FailureClass::NoCapacity,
            StepError::Register(_) => FailureClass::DsmcRegister,
            StepError::Claim { class, .. } => match class {
                ClaimClass::Conflict => FailureClass::ClaimConflict,
                ClaimClass::NotReady => FailureClass::ClaimNotReady,
                ClaimClass::NoCapacity => FailureClass::NoCapacity,
                ClaimClass::Unreachable => FailureClass::ClaimUnreachable,
                ClaimClass::Timeout => FailureClass::ClaimTimeout,
                ClaimClass::NotFound => FailureClass::ClaimNotFound,
                ClaimClass::Other => FailureClass::ClaimFailed,
            },
            StepError::ServerGet(_) | StepError::NoServer { .. } => FailureClass::DsmcGet,
            StepError::AddPlayer { .. } => FailureClass::AddPlayer,
            StepError::SessionGet(_) => FailureClass::SessionGet,
            StepError::NotJoinable(_) => FailureClass::NotJoinable,
            StepError::LeaseLost => FailureClass::LeaseLost,
        }
    }
}

/// The failure class at the start of a recorded reason (`claim_not_ready: ...` →
/// `claim_not_ready`); the whole reason when it has no class.
pub fn reason_class(reason: &str) -> &str {
    // The store prefixes the last reason with "gave up after N attempts: ".
    let reason = match reason.strip_prefix("gave up after ") {
        Some(rest) => rest.split_once("attempts: ").map_or(rest, |(_, last)| last),
        None => reason,
    };
    reason.split_once(':').map_or(reason, |(class, _)| class)
}

/// The pipeline. Cheap to clone.
#[derive(Clone)]
pub struct Pipeline {
    inner: Arc<Inner>,
}

struct Inner {
    ags: Ags,
    config: PipelineConfig,
    metrics: Arc<Metrics>,
    /// Tickets whose `searching` is being sent; cancelled (and removed) when it is done.
    announcing: parking_lot::Mutex<HashMap<TicketId, CancellationToken>>,
}

/// Marks a ticket's `searching` done when dropped, sent or not.
struct Announcing<'a> {
    pipeline: &'a Pipeline,
    id: TicketId,
    done: CancellationToken,
}

impl Drop for Announcing<'_> {
    fn drop(&mut self) {
        self.pipeline.inner.announcing.lock().remove(&self.id);
        self.done.cancel();
    }
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    pub fn new(ags: Ags, config: PipelineConfig, metrics: Arc<Metrics>) -> Self {
        Pipeline {
            inner: Arc::new(Inner {
                ags,
                config,
                metrics,
                announcing: parking_lot::Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Tells every member of an accepted ticket `searching`, for at most `within`; `false` when
    /// that ran out. Until this returns (or is dropped) the ticket's `found` or `failed` from
    /// this replica waits.
    pub async fn searching(&self, ticket: &Ticket, within: Duration) -> bool {
        let done = CancellationToken::new();
        self.inner
            .announcing
            .lock()
            .insert(ticket.id.clone(), done.clone());
        let _announcing = Announcing {
            pipeline: self,
            id: ticket.id.clone(),
            done,
        };
        let notes = ticket
            .party
            .members()
            .iter()
            .map(|p| self.notify(p, notice::SEARCHING, "searching"));
        tokio::time::timeout(within, join_all(notes)).await.is_ok()
    }

    /// Waits until the `searching` of each of `tickets` that is being sent is done.
    async fn after_searching<'a>(&self, tickets: impl Iterator<Item = &'a TicketId>) {
        let pending: Vec<CancellationToken> = {
            let announcing = self.inner.announcing.lock();
            tickets
                .filter_map(|id| announcing.get(id).cloned())
                .collect()
        };
        for done in pending {
            done.cancelled().await;
        }
    }

    async fn build(
        &self,
        claimed: &ClaimedMatch,
        lease_lost: &CancellationToken,
        session: &mut Option<String>,
    ) -> Result<Placement, StepError> {
        let ags = &self.inner.ags;
        let metrics = &self.inner.metrics;
        let players: Vec<PlayerId> = claimed.players().cloned().collect();

        let t = Instant::now();
        let created = ags
            .create_session(&self.session_request(claimed, players.len()))
            .await
            .map_err(|e| StepError::SessionCreate(Box::new(e)))?;
        metrics.step(Step::SessionCreate, t.elapsed());
        if created.session_id.is_empty() {
            return Err(StepError::NoSessionId);
        }
        let session_id = created.session_id;
        *session = Some(session_id.clone());
        let sid = session_id.as_str();
        lease_held(lease_lost)?;

        let t = Instant::now();
        ags.register(&self.register_request(claimed, sid))
            .await
            .map_err(|e| {
                if e.status() == Some(503) {
                    metrics.claim_failure(ClaimClass::NoCapacity.label());
                    StepError::NoCapacity(Box::new(e))
                } else {
                    StepError::Register(Box::new(e))
                }
            })?;
        let registered = Instant::now();
        metrics.step(Step::DsmcRegister, registered - t);
        lease_held(lease_lost)?;

        self.claim(sid, registered, lease_lost).await?;
        lease_held(lease_lost)?;

        let server = async {
            let t = Instant::now();
            let got = ags.server(sid).await;
            metrics.step(Step::DsmcGet, t.elapsed());
            got
        };
        let added = async {
            let t = Instant::now();
            let adds = players.iter().map(|p| async move {
                ags.add_player(sid, p.as_str())
                    .await
                    .map_err(|source| StepError::AddPlayer {
                        player: p.clone(),
                        source: Box::new(source),
                    })
            });
            let results = join_all(adds).await;
            metrics.step(Step::AddPlayers, t.elapsed());
            results.into_iter().collect::<Result<Vec<()>, _>>()
        };
        let (server, added) = tokio::join!(server, added);
        let server = server
            .map_err(|e| StepError::ServerGet(Box::new(e)))?
            .session
            .server;
        added?;
        let port = u16::try_from(server.port).ok().filter(|p| *p != 0);
        let (ip, port) = match port {
            Some(port) if !server.ip.is_empty() => (server.ip, port),
            _ => {
                return Err(StepError::NoServer {
                    ip: server.ip,
                    port: server.port,
                });
            }
        };
        lease_held(lease_lost)?;

        let t = Instant::now();
        let joinable = ags
            .session(sid)
            .await
            .map_err(|e| StepError::SessionGet(Box::new(e)))?
            .joinable;
        metrics.step(Step::SessionGet, t.elapsed());
        if !joinable {
            return Err(StepError::NotJoinable(session_id));
        }
        Ok(Placement {
            session_id,
            server: ServerAddr { ip, port },
            players,
        })
    }

    /// The tutorial's session browser body, sized for this match.
    fn session_request(&self, claimed: &ClaimedMatch, players: usize) -> CreateSessionRequest {
        let config = &self.inner.config;
        CreateSessionRequest {
            game_session_setting: GameSessionSetting {
                allow_join_in_progress: true,
                current_internal_player: 0,
                current_player: 0,
                map_name: config.map_name.clone(),
                max_internal_player: i32::try_from(players).unwrap_or(i32::MAX),
                max_player: 0,
                mode: claimed.game_mode.clone(),
                num_bot: 0,
                password: config.password.clone(),
                settings: serde_json::Map::new(),
            },
            game_version: config.game_version.clone(),
            namespace: self.inner.ags.namespace().to_owned(),
            session_type: config.session_type.clone(),
            username: config.username.clone(),
        }
    }

    /// The DSMC register body: one ally per team, one party per ticket.
    fn register_request(&self, claimed: &ClaimedMatch, session_id: &str) -> RegisterRequest {
        let allies = claimed
            .teams
            .iter()
            .map(|team| MatchingAlly {
                matching_parties: team.iter().map(matching_party).collect(),
            })
            .collect();
        RegisterRequest {
            client_version: String::new(),
            configuration: String::new(),
            deployment: self.inner.config.deployment.clone(),
            game_mode: claimed.game_mode.clone(),
            matching_allies: allies,
            namespace: self.inner.ags.namespace().to_owned(),
            notification_payload: None,
            pod_name: String::new(),
            region: claimed.region.clone().unwrap_or_default(),
            session_id: session_id.to_owned(),
        }
    }

    /// Claims the server, retrying what may succeed later (see the module docs).
    async fn claim(
        &self,
        session_id: &str,
        registered: Instant,
        lease_lost: &CancellationToken,
    ) -> Result<(), StepError> {
        let config = &self.inner.config;
        let started = Instant::now();
        let deadline = registered + config.claim_deadline;
        let mut backoff = config.claim_backoff_initial;
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let answer = tokio::select! {
                () = lease_lost.cancelled() => break Err(StepError::LeaseLost),
                answer = tokio::time::timeout(remaining, self.inner.ags.claim(session_id)) => answer,
            };
            let (class, retry, detail) = match answer {
                Ok(Ok(())) => break Ok(()),
                Ok(Err(e)) => {
                    let in_grace = registered.elapsed() < config.claim_not_found_grace;
                    let (class, retry) = classify_claim(&e, in_grace);
                    (class, retry, e.to_string())
                }
                Err(_) => (
                    ClaimClass::Timeout,
                    false,
                    "claim deadline passed".to_owned(),
                ),
            };
            self.inner.metrics.claim_failure(class.label());
            let pause = jitter(backoff);
            if !retry || attempt >= config.claim_attempts || Instant::now() + pause >= deadline {
                break Err(StepError::Claim {
                    class,
                    attempts: attempt,
                    detail,
                });
            }
            tokio::select! {
                () = lease_lost.cancelled() => break Err(StepError::LeaseLost),
                () = tokio::time::sleep(pause) => {}
            }
            backoff = (backoff * 2).min(config.claim_backoff_max);
        };
        self.inner.metrics.step(Step::DsmcClaim, started.elapsed());
        result
    }

    /// Releases what a failed run created, best effort and bounded.
    async fn release(&self, session_id: &str) {
        let ags = &self.inner.ags;
        let cleanup = async {
            if let Err(e) = ags.delete_session(session_id).await {
                tracing::debug!(session_id, error = %e, "deleting a failed session failed");
            }
            // On AGS the session browser does not release DSMC; on fakes it already did (404).
            match ags.release_server(session_id).await {
                Ok(()) => {}
                Err(e) if e.status() == Some(404) => {}
                Err(e) => tracing::debug!(session_id, error = %e, "releasing a server failed"),
            }
        };
        if tokio::time::timeout(self.inner.config.cleanup_timeout, cleanup)
            .await
            .is_err()
        {
            tracing::debug!(session_id, "releasing a failed session timed out");
        }
    }

    /// Sends one free-form notification, retrying only when it surely did not arrive.
    async fn notify(&self, player: &PlayerId, message: &str, kind: &'static str) -> bool {
        let config = &self.inner.config;
        let mut backoff = Duration::from_millis(50);
        for attempt in 1..=config.notify_attempts {
            match self
                .inner
                .ags
                .notify(player.as_str(), &config.topic, message)
                .await
            {
                Ok(()) => {
                    self.inner.metrics.notification(kind, "ok");
                    return true;
                }
                Err(e) => {
                    if !surely_not_delivered(&e) || attempt == config.notify_attempts {
                        self.inner.metrics.notification(kind, "error");
                        tracing::debug!(player = %player, kind, error = %e, "notification failed");
                        return false;
                    }
                    tokio::time::sleep(jitter(backoff)).await;
                    backoff *= 2;
                }
            }
        }
        false
    }

    /// Tells the players of `tickets` their match failed; whether every one was told.
    async fn notify_failed(&self, tickets: &[&Ticket], reason: &str) -> bool {
        let message = notice::failed(reason_class(reason));
        let notes = tickets
            .iter()
            .flat_map(|t| t.party.members())
            .map(|p| self.notify(p, &message, "failed"));
        join_all(notes).await.into_iter().all(|told| told)
    }

    /// Tells `players` their server; whether every one was told.
    async fn notify_found(&self, players: &[PlayerId], server: &ServerAddr) -> bool {
        let message = notice::found(&server.ip, server.port);
        join_all(players.iter().map(|p| self.notify(p, &message, "found")))
            .await
            .into_iter()
            .all(|told| told)
    }
}

impl MatchSink for Pipeline {
    async fn run(&self, claimed: ClaimedMatch, lease_lost: CancellationToken) -> MatchOutcome {
        let started = Instant::now();
        let mut session = None;
        let result = self.build(&claimed, &lease_lost, &mut session).await;
        self.inner.metrics.step(Step::Pipeline, started.elapsed());
        match result {
            Ok(placement) => MatchOutcome::All(TicketOutcome::Matched(placement)),
            Err(e) => {
                if let Some(session_id) = &session {
                    self.release(session_id).await;
                }
                if matches!(e, StepError::LeaseLost) {
                    return MatchOutcome::All(TicketOutcome::Release);
                }
                tracing::debug!(match_id = %claimed.id, error = %e, "pipeline failed; requeueing");
                MatchOutcome::All(TicketOutcome::Requeue {
                    reason: format!("{}: {e}", e.class()),
                })
            }
        }
    }

    async fn recorded(
        &self,
        claimed: &ClaimedMatch,
        outcomes: &[(TicketId, TicketOutcome)],
        done: &Completion,
    ) -> bool {
        let metrics = &self.inner.metrics;
        let mode = claimed.game_mode.as_str();
        let ticket = |id: &TicketId| claimed.tickets().find(|t| &t.id == id);
        let outcome = |id: &TicketId| outcomes.iter().find(|(o, _)| o == id).map(|(_, o)| o);

        let label = if !done.matched.is_empty() {
            "matched"
        } else if !done.failed.is_empty() {
            "failed"
        } else if outcomes
            .iter()
            .all(|(_, o)| matches!(o, TicketOutcome::Release))
        {
            "released"
        } else {
            "requeued"
        };
        metrics.match_outcome(label);
        metrics.tickets_finished(mode, FinalState::Matched, done.matched.len() as u64);
        metrics.tickets_finished(mode, FinalState::Failed, done.failed.len() as u64);
        let requeued = done
            .requeued
            .iter()
            .filter(|id| matches!(outcome(id), Some(TicketOutcome::Requeue { .. })))
            .count();
        metrics.tickets_requeued(mode, requeued as u64);

        let now = SystemClock.now();
        let mut found = Vec::new();
        let mut placement = None;
        for id in &done.matched {
            if let Some(t) = ticket(id) {
                metrics.time_to_match(mode, now.since(t.enqueued_at));
                found.extend(t.party.members().iter().cloned());
            }
            if let Some(TicketOutcome::Matched(p)) = outcome(id) {
                placement = Some(p);
            }
        }
        let found_all = async {
            let Some(p) = placement else { return true };
            let t = Instant::now();
            let told = self.notify_found(&found, &p.server).await;
            metrics.step(Step::NotifyFound, t.elapsed());
            told
        };
        let failed: Vec<&Ticket> = done.failed.iter().filter_map(ticket).collect();
        let reason = done
            .failed
            .first()
            .and_then(outcome)
            .map(|o| match o {
                TicketOutcome::Requeue { reason } | TicketOutcome::Fail { reason } => {
                    reason.as_str()
                }
                _ => "failed",
            })
            .unwrap_or("failed");
        self.after_searching(claimed.tickets().map(|t| &t.id)).await;
        let (found_told, failed_told) =
            tokio::join!(found_all, self.notify_failed(&failed, reason));
        found_told && failed_told
    }

    async fn discarded(&self, _claimed: &ClaimedMatch, outcomes: &[(TicketId, TicketOutcome)]) {
        // Every ticket of a match shares its placement: one session, one server.
        let session = outcomes.iter().find_map(|(_, o)| match o {
            TicketOutcome::Matched(p) => Some(p.session_id.as_str()),
            _ => None,
        });
        if let Some(session_id) = session {
            tracing::info!(
                session_id,
                "releasing the session of a match whose lease was lost"
            );
            self.release(session_id).await;
        }
    }

    async fn redeliver(&self, notice: &DueNotice) -> bool {
        let mut told = true;
        for ticket in &notice.tickets {
            told &= match &ticket.state {
                TicketState::Matched { placement, .. } => {
                    self.notify_found(ticket.party.members(), &placement.server)
                        .await
                }
                TicketState::Failed { reason } => self.notify_failed(&[ticket], reason).await,
                _ => true,
            };
        }
        told
    }

    fn lease_lost(&self, _claimed: &ClaimedMatch) {
        self.inner.metrics.match_outcome("lease_lost");
    }

    fn timed_out(&self, game_mode: &str, tickets: &[TicketId]) {
        self.inner
            .metrics
            .tickets_finished(game_mode, FinalState::TimedOut, tickets.len() as u64);
    }

    async fn reclaimed(&self, _reclaimed: &Reclaimed, failed: Vec<Ticket>) {
        for ticket in &failed {
            self.inner
                .metrics
                .tickets_finished(&ticket.game_mode, FinalState::Failed, 1);
        }
        let refs: Vec<&Ticket> = failed.iter().collect();
        self.after_searching(failed.iter().map(|t| &t.id)).await;
        let reason = format!(
            "{}: the replica building the match stopped",
            FailureClass::LeaseExpired
        );
        self.notify_failed(&refs, &reason).await;
    }
}

fn matching_party(ticket: &Ticket) -> MatchingParty {
    let attributes = ticket
        .attributes
        .extra
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    MatchingParty {
        party_id: ticket.id.to_string(),
        party_attributes: attributes,
        party_members: ticket
            .party
            .members()
            .iter()
            .map(|p| MatchPartyMember {
                user_id: p.to_string(),
                extra_attributes: serde_json::Map::new(),
            })
            .collect(),
    }
}

fn lease_held(lease_lost: &CancellationToken) -> Result<(), StepError> {
    if lease_lost.is_cancelled() {
        Err(StepError::LeaseLost)
    } else {
        Ok(())
    }
}

/// `(class, retry)` of a failed claim; `in_grace`: the register was recent enough for a 404 to
/// mean "not listed yet".
fn classify_claim(e: &ClientError, in_grace: bool) -> (ClaimClass, bool) {
    match e.status() {
        Some(409) => (ClaimClass::Conflict, false),
        Some(425) => (ClaimClass::NotReady, true),
        Some(503) => (ClaimClass::Unreachable, true),
        Some(404) => (ClaimClass::NotFound, in_grace),
        Some(429 | 500..=599) => (ClaimClass::Other, true),
        Some(_) => (ClaimClass::Other, false),
        None if e.is_timeout() => (ClaimClass::Timeout, true),
        None if e.is_transport() => (ClaimClass::Unreachable, true),
        None => (ClaimClass::Other, false),
    }
}

/// Whether a failed notification certainly was not delivered (so a retry cannot duplicate it).
fn surely_not_delivered(e: &ClientError) -> bool {
    match e {
        ClientError::Transport(t) => t.is_connect(),
        _ => matches!(e.status(), Some(429 | 503)),
    }
}

/// Half the backoff plus a random share of the other half ("equal jitter"): spreads retries of
/// matches that failed together without ever waiting less than half.
fn jitter(backoff: Duration) -> Duration {
    let half = backoff / 2;
    let spread = u64::try_from(half.as_micros()).unwrap_or(u64::MAX);
    half + Duration::from_micros(rand::thread_rng().gen_range(0..=spread))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> ClientError {
        ClientError::from_status(code, br#"{"errorCode":20000,"errorMessage":"x"}"#)
    }

    #[test]
    fn claim_answers_are_classified() {
        assert_eq!(
            classify_claim(&status(409), true),
            (ClaimClass::Conflict, false)
        );
        assert_eq!(
            classify_claim(&status(425), false),
            (ClaimClass::NotReady, true)
        );
        assert_eq!(
            classify_claim(&status(503), false),
            (ClaimClass::Unreachable, true)
        );
        assert_eq!(
            classify_claim(&status(404), true),
            (ClaimClass::NotFound, true)
        );
        assert_eq!(
            classify_claim(&status(404), false),
            (ClaimClass::NotFound, false)
        );
        assert_eq!(
            classify_claim(&status(500), false),
            (ClaimClass::Other, true)
        );
        assert_eq!(
            classify_claim(&status(400), false),
            (ClaimClass::Other, false)
        );
        let timeout = ClientError::Timeout("x");
        assert_eq!(classify_claim(&timeout, false), (ClaimClass::Timeout, true));
    }

    #[test]
    fn jitter_stays_between_half_and_whole() {
        for _ in 0..100 {
            let d = jitter(Duration::from_millis(200));
            assert!(
                d >= Duration::from_millis(100) && d <= Duration::from_millis(200),
                "{d:?}"
            );
        }
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn reasons_keep_their_class() {
        assert_eq!(
            reason_class("claim_not_ready: dsmc claim failed"),
            "claim_not_ready"
        );
        assert_eq!(
            reason_class("gave up after 3 attempts: no_capacity: no dedicated server is free"),
            "no_capacity"
        );
        assert_eq!(
            reason_class("gave up after 2 attempts: claim_not_ready: after 9 attempts: http 425"),
            "claim_not_ready"
        );
        assert_eq!(reason_class("plain"), "plain");
    }

    #[test]
    fn only_safe_notification_failures_are_retried() {
        assert!(surely_not_delivered(&status(503)));
        assert!(surely_not_delivered(&status(429)));
        assert!(!surely_not_delivered(&status(500)));
        assert!(!surely_not_delivered(&ClientError::Timeout("x")));
    }
}
