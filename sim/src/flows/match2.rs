//! The Matchmaking v2 + Session v2 flow, the way a game client on AGS does it: log in, open the
//! lobby, create a match ticket in the scenario's pool, wait for `OnMatchFound` naming the
//! ticket, join the game session, and wait until its `DSInformation` settles — `AVAILABLE`
//! with a server (matched), `FAILED_TO_REQUEST` (failed) — or the ticket expires
//! (`OnMatchmakingTicketExpired`: timed out).
//!
//! Every notification names its ticket or session, so events of an earlier search on the same
//! socket are told apart exactly. Pairing latency counts from the arrival's *scheduled* time
//! to `OnMatchFound`; `ds_ready` (an endpoint latency) from `OnMatchFound` to `AVAILABLE`.
//! After the game's length the session is deleted with the game client (freeing its server),
//! once per session, and recorded as a release for the invariant check.
//!
//! A party (more than one member) first forms over Session v2, as the SDKs do it: every member
//! logs in and opens the lobby, the leader creates the party and invites the others, each
//! member joins on `OnPartyInvited`, the leader waits until `OnPartyMembersChanged` shows them
//! all joined and creates the party's ticket (`sessionID` = the party); members learn the ticket
//! from `OnMatchmakingStarted` naming their party. From there every member follows the ticket
//! like a solo player. A member's `OnMatchFound` that puts the party on more than one team is a
//! protocol error. Each search forms a new party: creating or joining one leaves the previous.
//!
//! [`setup`] creates the template, rule set and pool at start (an existing one is kept).

use std::sync::Arc;
use std::time::Duration;

use accelbyte::client::{AbClient, ClientError, V2Event};
use accelbyte::models::lobby::MessageNotif;
use accelbyte::models::match2::{
    MatchFoundNotif, MatchFunctionOverride, MatchPool, MatchTicketRequest, RuleSetPayload,
};
use accelbyte::models::session::{CreateConfigurationTemplateRequest, DsInformation, ds_status};
use tokio::time::Instant;

use crate::metrics::Counter;
use crate::outcome::{Endpoint, ErrorKind, FailReason, Outcome, ServerAddr};
use crate::player::{
    Arrival, Member, Party, RunCtx, SearchEnd, WorkerCtx, connect, prepare, record, record_release,
};
use crate::scenario::Match2Plan;

/// Creates the session template, the rule set and the match pool `plan` names, with the game
/// client's token. One that already exists (409: another worker process made it) is kept.
pub async fn setup(
    game: &AbClient,
    token: &str,
    namespace: &str,
    plan: &Match2Plan,
    regions: &[String],
) -> Result<(), String> {
    let exists = |r: Result<(), ClientError>, what: &str| match r {
        Ok(()) => Ok(()),
        Err(e) if e.status() == Some(409) => Ok(()),
        Err(e) => Err(format!("creating the match2 {what}: {e}")),
    };
    let template = CreateConfigurationTemplateRequest {
        client_version: "1.0.0".into(),
        deployment: "default".into(),
        inactive_timeout: 60,
        invite_timeout: 60,
        joinability: "INVITE_ONLY".into(),
        max_players: i32::try_from(plan.max_players).unwrap_or(i32::MAX),
        min_players: i32::try_from(plan.min_players).unwrap_or(i32::MAX),
        name: plan.template_name(),
        persistent: false,
        requested_regions: regions.to_vec(),
        text_chat: false,
        kind: "DS".into(),
        attributes: None,
        auto_join: false,
        ds_source: String::new(),
    };
    exists(
        game.session()
            .create_template(token, namespace, &template)
            .await
            .map(drop),
        "session template",
    )?;
    let rules = RuleSetPayload {
        data: plan.ruleset.clone(),
        // The matchmaker's function reads its own dialect; fakes checks only the built-in's.
        enable_custom_match_function: plan.match_function
            != crate::scenario::Match2Function::Default,
        name: plan.rule_set_name(),
    };
    exists(
        game.match2()
            .create_rule_set(token, namespace, &rules)
            .await,
        "rule set",
    )?;
    let expiry = i32::try_from(plan.ticket_expiration.as_secs().max(1)).unwrap_or(i32::MAX);
    let pool = MatchPool {
        auto_accept_backfill_proposal: false,
        backfill_proposal_expiration_seconds: 0,
        backfill_ticket_expiration_seconds: 0,
        best_latency_calculation_method: String::new(),
        crossplay_disabled: false,
        match_function: plan.match_function.pool_function_name().into(),
        match_function_override: MatchFunctionOverride::default(),
        name: plan.pool.clone(),
        platform_group_enabled: false,
        rule_set: plan.rule_set_name(),
        session_template: plan.template_name(),
        ticket_expiration_seconds: expiry,
    };
    exists(
        game.match2()
            .create_match_pool(token, namespace, &pool)
            .await,
        "match pool",
    )
}

/// How one member's search ended.
enum End {
    Matched {
        session: Arc<str>,
        server: ServerAddr,
        /// `OnMatchFound`, and when the server was seen `AVAILABLE`.
        found: Instant,
        ready: Instant,
    },
    /// The session's server could not be had (`FAILED_TO_REQUEST`).
    DsFailed {
        session: Arc<str>,
    },
    Expired,
    Cancelled,
    Error(Endpoint, ErrorKind, Option<Arc<str>>),
}

/// Runs one search of `party` (a solo player, or a party formed first) and records one final
/// outcome per member.
pub async fn search(
    w: &WorkerCtx,
    run: &RunCtx,
    party: &mut Party,
    arrival: &Arrival,
) -> SearchEnd {
    let Some((plan, region)) = run.match2.clone() else {
        // The scenario check makes this unreachable; an error outcome is still one outcome.
        for i in 0..party.members.len() {
            w.recorder.finish(
                record(
                    arrival,
                    i,
                    Outcome::Error,
                    Some((Endpoint::Run, ErrorKind::Protocol)),
                ),
                None,
            );
        }
        return SearchEnd::Other(Outcome::Error);
    };
    let size = party.members.len();
    let ends = if size > 1 {
        tokio::select! {
            ends = party_search(w, run, party, arrival, &plan, &region) => ends,
            () = run.abort.cancelled() => (0..size)
                .map(|_| End::Error(Endpoint::Run, ErrorKind::Unfinished, None))
                .collect(),
        }
    } else {
        futures_util::future::join_all(party.members.iter_mut().map(|m| {
            let plan = Arc::clone(&plan);
            let region = region.clone();
            async move {
                tokio::select! {
                    end = member_search(w, run, m, arrival, &plan, &region) => end,
                    () = run.abort.cancelled() => End::Error(Endpoint::Run, ErrorKind::Unfinished, None),
                }
            }
        }))
        .await
    };

    let mut first = None;
    for (i, end) in ends.into_iter().enumerate() {
        let (outcome, error, fail) = match &end {
            End::Matched { .. } => (Outcome::Matched, None, None),
            End::DsFailed { .. } => (
                Outcome::Failed,
                None,
                Some(FailReason::DS_FAILED_TO_REQUEST),
            ),
            End::Expired => (Outcome::TimedOut, None, None),
            End::Cancelled => (Outcome::Cancelled, None, None),
            End::Error(endpoint, kind, _) => (Outcome::Error, Some((*endpoint, *kind)), None),
        };
        if let Some((endpoint @ (Endpoint::Run | Endpoint::Lobby), kind)) = error {
            w.recorder.error(endpoint, kind);
        }
        let mut r = record(arrival, i, outcome, error);
        match &end {
            End::Matched {
                session,
                server,
                found,
                ready,
            } => {
                w.recorder
                    .pairing(found.saturating_duration_since(arrival.scheduled));
                r.session = Some(Arc::clone(session));
                r.answered = Some(server.clone());
                r.found = vec![server.clone()];
                // The session held its server by the time the player saw it AVAILABLE.
                r.found_at_ms = Some(run.ms_since_start(*ready));
                r.answered_at_ms = r.found_at_ms;
                schedule_release(w, run, session);
                first.get_or_insert_with(|| SearchEnd::Matched {
                    session: Arc::clone(session),
                });
            }
            End::DsFailed { session, .. } | End::Error(_, _, Some(session)) => {
                r.session = Some(Arc::clone(session));
                // No server to free, but the session still holds its members.
                schedule_release(w, run, session);
            }
            _ => {}
        }
        w.recorder.finish(r, fail);
        first.get_or_insert(SearchEnd::Other(outcome));
    }
    first.unwrap_or(SearchEnd::Other(Outcome::Error))
}

/// A party's search: every member logs in and opens the lobby, the party forms
/// ([`super::party`]), the leader creates the party's ticket and every member follows it.
async fn party_search(
    w: &WorkerCtx,
    run: &RunCtx,
    party: &mut Party,
    arrival: &Arrival,
    plan: &Match2Plan,
    default_region: &str,
) -> Vec<End> {
    let prepared =
        futures_util::future::join_all(party.members.iter_mut().map(|m| prepare(w, run, m))).await;
    let mut users = Vec::with_capacity(prepared.len());
    let mut tokens = Vec::with_capacity(prepared.len());
    let mut failed = None;
    for (m, result) in party.members.iter().zip(&prepared) {
        match (result, m.session.as_ref()) {
            (Ok(()), Some(s)) => {
                users.push(s.user_id.clone());
                tokens.push(s.access_token.text());
            }
            (Err(e), _) => {
                failed.get_or_insert(*e);
            }
            (Ok(()), None) => {
                failed.get_or_insert((Endpoint::Login, ErrorKind::Protocol));
            }
        }
    }
    if let Some((endpoint, kind)) = failed {
        // The party cannot form without every member: each member ends with the first failure.
        return prepared
            .iter()
            .map(|r| {
                let (endpoint, kind) = r.err().unwrap_or((endpoint, kind));
                End::Error(endpoint, kind, None)
            })
            .collect();
    }
    let deadline = Instant::now() + run.behaviour.request_timeout;
    let (users, tokens) = (&users, &tokens);
    futures_util::future::join_all(
        party
            .members
            .iter_mut()
            .enumerate()
            .map(|(i, m)| async move {
                let token = tokens[i].as_str();
                if i == 0 {
                    let id = match super::party::lead(w, run, m, token, &users[1..], deadline).await
                    {
                        Ok(id) => id,
                        Err((endpoint, kind)) => return End::Error(endpoint, kind, None),
                    };
                    let started = Instant::now();
                    let ticket = match create_ticket(
                        w,
                        run,
                        arrival,
                        plan,
                        default_region,
                        token,
                        &id,
                    )
                    .await
                    {
                        Ok(ticket) => ticket,
                        Err(end) => return end,
                    };
                    follow_ticket(
                        w, run, m, arrival, plan, token, &ticket, started, users, None,
                    )
                    .await
                } else {
                    let id = match super::party::accept(w, run, m, token, &users[0], deadline).await
                    {
                        Ok(id) => id,
                        Err((endpoint, kind)) => return End::Error(endpoint, kind, None),
                    };
                    let started = Instant::now();
                    let ticket_deadline = started + run.behaviour.request_timeout;
                    let (ticket, early) =
                        match super::party::ticket_of(w, m, &id, ticket_deadline).await {
                            Ok(found) => found,
                            Err((endpoint, kind)) => return End::Error(endpoint, kind, None),
                        };
                    follow_ticket(
                        w, run, m, arrival, plan, token, &ticket, started, users, early,
                    )
                    .await
                }
            }),
    )
    .await
}

async fn member_search(
    w: &WorkerCtx,
    run: &RunCtx,
    m: &mut Member,
    arrival: &Arrival,
    plan: &Match2Plan,
    default_region: &str,
) -> End {
    if let Err((endpoint, kind)) = prepare(w, run, m).await {
        return End::Error(endpoint, kind, None);
    }
    let Some(token) = m.session.as_ref().map(|s| s.access_token.text()) else {
        return End::Error(Endpoint::Login, ErrorKind::Protocol, None);
    };
    let started = Instant::now();
    let ticket = match create_ticket(w, run, arrival, plan, default_region, &token, "").await {
        Ok(ticket) => ticket,
        Err(end) => return end,
    };
    follow_ticket(
        w,
        run,
        m,
        arrival,
        plan,
        &token,
        &ticket,
        started,
        &[],
        None,
    )
    .await
}

/// Creates the ticket (of party `party_id`, or a solo one when empty) with the arrival's skill
/// and region.
async fn create_ticket(
    w: &WorkerCtx,
    run: &RunCtx,
    arrival: &Arrival,
    plan: &Match2Plan,
    default_region: &str,
    token: &str,
    party_id: &str,
) -> Result<String, End> {
    let mut attributes = serde_json::Map::new();
    if let Some(mmr) = arrival.spec.mmr {
        attributes.insert("mmr".into(), mmr.into());
    }
    let region = arrival
        .spec
        .region
        .clone()
        .unwrap_or_else(|| default_region.to_owned());
    let request = MatchTicketRequest {
        attributes,
        excluded_sessions: Vec::new(),
        latencies: [(region, 30)].into_iter().collect(),
        match_pool: plan.pool.clone(),
        session_id: party_id.to_owned(),
        storage: None,
    };
    let started = Instant::now();
    match w
        .players
        .match2()
        .create_match_ticket(token, &run.namespace, &request)
        .await
    {
        Ok(t) => {
            w.recorder
                .call(Endpoint::MatchTicket, started.elapsed(), Ok(()));
            Ok(t.match_ticket_id)
        }
        Err(e) => {
            let kind = ErrorKind::of(&e);
            w.recorder
                .call(Endpoint::MatchTicket, started.elapsed(), Err(kind));
            Err(End::Error(Endpoint::MatchTicket, kind, None))
        }
    }
}

/// Follows `ticket` from its creation (`started`) to the match's server: `OnMatchFound`, the
/// game session's join, `DSInformation` settling. `party` holds the user ids of the member's
/// party (empty for a solo player); a match that splits it is a protocol error. `early` is an
/// `OnMatchFound` for the ticket that arrived before the member learned the ticket.
#[allow(clippy::too_many_arguments)]
async fn follow_ticket(
    w: &WorkerCtx,
    run: &RunCtx,
    m: &mut Member,
    arrival: &Arrival,
    plan: &Match2Plan,
    token: &str,
    ticket: &str,
    started: Instant,
    party: &[String],
    early: Option<MatchFoundNotif>,
) -> End {
    let mut early = early.map(V2Event::MatchFound);
    let token = token.to_owned();
    let ticket = ticket.to_owned();

    // Wait for the match (or the ticket's expiry), bounded by the request timeout and the
    // player's patience.
    let searching = crate::player::GaugeGuard::new(&w.recorder, |g| &g.searching, 1);
    let mut give_up = Instant::now() + run.behaviour.request_timeout;
    let cancel_at = arrival.cancel_after.map(|d| started + d);
    if let Some(at) = cancel_at {
        give_up = give_up.min(at);
    }
    let found = loop {
        let event = match early.take() {
            Some(event) => Some(event),
            None => next_event(w, m, give_up).await,
        };
        match event {
            Some(V2Event::MatchFound(f)) if f.tickets.iter().any(|t| t.ticket_id == ticket) => {
                let session = Arc::<str>::from(f.id.as_str());
                let together = f
                    .teams
                    .iter()
                    .any(|team| party.iter().all(|u| team.user_ids.iter().any(|t| t == u)));
                if !party.is_empty() && !together {
                    w.recorder.error(Endpoint::Lobby, ErrorKind::Protocol);
                    return End::Error(Endpoint::Lobby, ErrorKind::Protocol, Some(session));
                }
                break (session, Instant::now());
            }
            Some(V2Event::TicketExpired(t)) if t.ticket_id == ticket => return End::Expired,
            Some(V2Event::TicketCanceled(id)) if id == ticket => return End::Cancelled,
            Some(_) => {}
            None => {
                // Given up: take the ticket out of the queue, as a client's cancel does.
                let started = Instant::now();
                let result = w
                    .players
                    .match2()
                    .delete_match_ticket(&token, &run.namespace, &ticket)
                    .await;
                let matched_meanwhile = matches!(&result, Err(e) if e.status() == Some(406));
                w.recorder.call(
                    Endpoint::MatchTicket,
                    started.elapsed(),
                    result
                        .as_ref()
                        .map(drop)
                        .map_err(ErrorKind::of)
                        .or_else(|k| {
                            // 404/406: expired or matched in the meantime — an answer, not an error.
                            if matches!(k, ErrorKind::Status(404 | 406)) {
                                Ok(())
                            } else {
                                Err(k)
                            }
                        }),
                );
                if matched_meanwhile {
                    // The match exists all the same; its OnMatchFound is on the socket.
                    give_up = Instant::now() + Duration::from_secs(5);
                    continue;
                }
                return if cancel_at.is_some_and(|at| Instant::now() >= at) {
                    End::Cancelled
                } else {
                    End::Error(Endpoint::Lobby, ErrorKind::NoFound, None)
                };
            }
        }
    };
    drop(searching);
    let (session, found_at) = found;

    // Join, then wait for the server.
    let started = Instant::now();
    let joined = w
        .players
        .session()
        .join_game_session(&token, &run.namespace, &session)
        .await;
    let mut ds = match joined {
        Ok(s) => {
            w.recorder
                .call(Endpoint::GameSession, started.elapsed(), Ok(()));
            s.ds_information
        }
        Err(e) => {
            let kind = ErrorKind::of(&e);
            w.recorder
                .call(Endpoint::GameSession, started.elapsed(), Err(kind));
            return End::Error(Endpoint::GameSession, kind, Some(session));
        }
    };
    let deadline = found_at + plan.ds_timeout;
    loop {
        match settled(&ds) {
            Some(Ok(server)) => {
                let ready = Instant::now();
                w.recorder.call(
                    Endpoint::DsReady,
                    ready.saturating_duration_since(found_at),
                    Ok(()),
                );
                return End::Matched {
                    session,
                    server,
                    found: found_at,
                    ready,
                };
            }
            Some(Err(())) => return End::DsFailed { session },
            None => {}
        }
        match next_event(w, m, deadline).await {
            Some(V2Event::DsStatusChanged(d))
                if d.session_id == *session || d.session.id == *session =>
            {
                ds = d.session.ds_information;
            }
            Some(_) => {}
            None => {
                // No notification in time: read the session once (a lost notification is the
                // lobby's fault, not the server's).
                let started = Instant::now();
                match w
                    .players
                    .session()
                    .get_game_session(&token, &run.namespace, &session)
                    .await
                {
                    Ok(s) if settled(&s.ds_information).is_some() => {
                        w.recorder
                            .call(Endpoint::GameSession, started.elapsed(), Ok(()));
                        w.recorder.error(Endpoint::Lobby, ErrorKind::NoFound);
                        ds = s.ds_information;
                        continue;
                    }
                    Ok(_) => {
                        w.recorder
                            .call(Endpoint::GameSession, started.elapsed(), Ok(()));
                        w.recorder.call(
                            Endpoint::DsReady,
                            Instant::now().saturating_duration_since(found_at),
                            Err(ErrorKind::Timeout),
                        );
                        return End::Error(Endpoint::DsReady, ErrorKind::Timeout, Some(session));
                    }
                    Err(e) => {
                        let kind = ErrorKind::of(&e);
                        w.recorder
                            .call(Endpoint::GameSession, started.elapsed(), Err(kind));
                        return End::Error(Endpoint::GameSession, kind, Some(session));
                    }
                }
            }
        }
    }
}

/// `Some(Ok(server))` when `AVAILABLE` with a server, `Some(Err)` when it failed or ended,
/// `None` while it is still coming.
fn settled(ds: &DsInformation) -> Option<Result<ServerAddr, ()>> {
    match ds.status_v2.as_str() {
        ds_status::AVAILABLE => {
            let server = ds.server.as_ref()?;
            let port = u16::try_from(server.port).ok().filter(|p| *p != 0)?;
            if server.ip.is_empty() {
                return None;
            }
            Some(Ok(ServerAddr {
                ip: Arc::from(server.ip.as_str()),
                port,
            }))
        }
        ds_status::FAILED_TO_REQUEST | ds_status::ENDED => Some(Err(())),
        _ => None,
    }
}

/// The next v2 event on the member's socket before `deadline` (`None` when it passes).
/// A closed socket is reconnected, as an SDK does; the lobby delivers what it queued meanwhile.
pub(super) async fn next_event(
    w: &WorkerCtx,
    m: &mut Member,
    deadline: Instant,
) -> Option<V2Event> {
    loop {
        let Some(socket) = m.socket.as_mut() else {
            if connect(w, m).await.is_err() {
                tokio::time::sleep_until(deadline).await;
                return None;
            }
            w.recorder.count(Counter::Reconnect);
            continue;
        };
        let frame = tokio::select! {
            frame = socket.conn.next_frame() => frame,
            () = tokio::time::sleep_until(deadline) => return None,
        };
        match frame {
            Ok(Some(frame)) => {
                let Some(message) = MessageNotif::from_frame(&frame) else {
                    continue;
                };
                match V2Event::from_message(&message) {
                    Some(Ok(event)) => return Some(event),
                    Some(Err(_)) => w.recorder.error(Endpoint::Lobby, ErrorKind::Decode),
                    None => {}
                }
            }
            Err(ClientError::Frame(_)) => {}
            Ok(None) | Err(_) => {
                m.socket = None;
                w.recorder.error(Endpoint::Lobby, ErrorKind::Closed);
            }
        }
    }
}

/// After the match's game length, deletes the game session with the game client (once per
/// session), which frees its server as a finished game would.
fn schedule_release(w: &WorkerCtx, run: &RunCtx, session: &Arc<str>) {
    let Some(length) = run.behaviour.match_length else {
        return;
    };
    let (Some(game), Some(token)) = (w.game.clone(), run.game_token.clone()) else {
        return;
    };
    if !run.released.lock().insert(Arc::clone(session)) {
        return;
    }
    let recorder = w.recorder.clone();
    let session = Arc::clone(session);
    let namespace = run.namespace.clone();
    let abort = run.abort.clone();
    let start = run.start;
    run.background.spawn(async move {
        tokio::select! {
            () = tokio::time::sleep(length) => {}
            () = abort.cancelled() => return,
        }
        let started = Instant::now();
        let (game, namespace, id) = (&game, &namespace, &session);
        let result = token
            .send(|token| async move {
                game.session()
                    .delete_game_session(&token, namespace, id)
                    .await
            })
            .await;
        record_release(&recorder, session, start, started, result);
    });
}
