//! The matchmaking loop: expires tickets, runs each pool's match function over its queued
//! tickets, and turns every proposal into a game session — created from the pool's session
//! template with the match's teams, its players told (`OnMatchFound`, then `OnSessionInvited`
//! unless the template auto-joins), and a dedicated server asked of the fleet in the match's
//! region (see [`crate::session::ds`]).
//!
//! It runs as one task on the server's tasks (stopped with the server) holding a weak
//! reference to the state, woken when a ticket is queued
//! and otherwise every [`TICK`] (flexing rules and expiry depend on time alone). A match is
//! all-or-nothing: its tickets are marked matched only if every one is still queued, so a
//! ticket deleted or expired meanwhile never ends up in a session.

use std::time::Duration;

use accelbyte::models::match2::{MatchFoundNotif, MatchedTicket, TicketExpiredNotif, topics};
use accelbyte::models::session::{PartyMembers, Team};
use chrono::Utc;

use super::matcher::Proposal;
use super::store::{PoolWork, TicketRecord};
use crate::iam::store::new_id;
use crate::lobby::notify::send_json;
use crate::session::store::{NewGameSession, TeamRecord};
use crate::session::{announce_invites, rfc3339};
use crate::state::{AppState, WeakState};

/// How often the loop runs without a new ticket.
pub const TICK: Duration = Duration::from_millis(200);

/// Starts the loop on the server's tasks (inside a tokio runtime; a no-op outside one); it
/// ends when the server stops or the state is dropped.
pub fn spawn(state: &AppState) {
    state
        .tasks
        .spawn(run(state.downgrade(), state.match2.waker()));
}

async fn run(weak: WeakState, wake: std::sync::Arc<tokio::sync::Notify>) {
    loop {
        {
            let Some(state) = weak.upgrade() else {
                return;
            };
            tick(&state).await;
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(TICK) => {}
        }
    }
}

/// One pass: expiry, then matching in every pool with queued tickets. The pools' functions run
/// side by side (a remote one may take until its timeout); a failed call is logged and counted
/// (`/_fakes/stats` `match2`) and leaves the pool's tickets queued.
pub async fn tick(state: &AppState) {
    let now = Utc::now();
    state.faults.before_match2_tick(&state.match2, now);
    for ticket in state.match2.take_expired(now) {
        announce_expired(state, &ticket);
    }
    let calls = state.match2.work().into_iter().filter_map(|work| {
        let Some(function) = state.match2.function_for(&work.pool) else {
            tracing::debug!(pool = %work.pool.name, function = %work.pool.match_function,
                "match2: no such match function; tickets stay queued");
            return None;
        };
        Some(async move {
            let result = function.make_matches(&work.rules, &work.tickets, now).await;
            (work, result)
        })
    });
    for (work, result) in futures_util::future::join_all(calls).await {
        let name = function_name(&work);
        match result {
            Ok(proposals) => {
                state.match2.record_call(name, Ok(()));
                for proposal in proposals {
                    make_match(state, &work, proposal);
                }
            }
            Err(error) => {
                tracing::warn!(pool = %work.pool.name, function = %name, %error,
                    "match2: match function failed; tickets stay queued");
                state.match2.record_call(name, Err(&error.0));
            }
        }
    }
}

fn function_name(work: &PoolWork) -> &str {
    let chosen = &work.pool.match_function_override.make_matches;
    if chosen.is_empty() {
        &work.pool.match_function
    } else {
        chosen
    }
}

fn announce_expired(state: &AppState, ticket: &TicketRecord) {
    let body = TicketExpiredNotif {
        ticket_id: ticket.id.clone(),
        namespace: ticket.namespace.clone(),
        created_at: rfc3339(ticket.created_at),
        match_pool: ticket.pool.clone(),
    };
    for player in &ticket.players {
        send_json(
            &state.lobby,
            &ticket.namespace,
            player,
            topics::TICKET_EXPIRED,
            &body,
        );
    }
}

/// The party a ticket's players came in: its party, or the ticket itself for a solo player.
fn party_of(ticket: &super::matcher::Ticket) -> String {
    if ticket.party_id.is_empty() {
        ticket.id.clone()
    } else {
        ticket.party_id.clone()
    }
}

fn make_match(state: &AppState, work: &PoolWork, proposal: Proposal) {
    let tickets: Vec<&super::matcher::Ticket> = proposal
        .tickets
        .iter()
        .filter_map(|id| work.tickets.iter().find(|t| &t.id == id))
        .collect();
    if tickets.len() != proposal.tickets.len() {
        tracing::warn!(pool = %work.pool.name, "match2: a match function proposed an unknown ticket");
        return;
    }
    let players: Vec<String> = proposal.teams.iter().flatten().cloned().collect();
    let teams: Vec<TeamRecord> = proposal
        .teams
        .iter()
        .map(|team| TeamRecord {
            user_ids: team.clone(),
            parties: tickets
                .iter()
                .filter(|t| t.players.iter().all(|p| team.contains(p)))
                .map(|t| (party_of(t), t.players.clone()))
                .collect(),
        })
        .collect();
    let session_id = new_id();
    let created = state.game_sessions.create(
        NewGameSession {
            namespace: work.namespace.clone(),
            template_name: work.pool.session_template.clone(),
            created_by: "matchmaking".to_owned(),
            joined: Vec::new(),
            invited: players.clone(),
            match_pool: work.pool.name.clone(),
            teams,
            ticket_ids: proposal.tickets.clone(),
            ..NewGameSession::default()
        },
        session_id.clone(),
    );
    let session = match created {
        Ok(session) => session,
        Err(error) => {
            tracing::warn!(pool = %work.pool.name, %error, "match2: cannot create the match's game session");
            return;
        }
    };
    if state
        .match2
        .commit(&work.namespace, &proposal.tickets, &session_id)
        .is_none()
    {
        // A ticket left the queue while the function ran: no match.
        let _ = state
            .game_sessions
            .delete(&work.namespace, &session_id, None);
        return;
    }
    let found = MatchFoundNotif {
        id: session_id.clone(),
        namespace: work.namespace.clone(),
        created_at: rfc3339(session.created_at),
        match_pool: work.pool.name.clone(),
        teams: proposal
            .teams
            .iter()
            .enumerate()
            .map(|(i, team)| Team {
                parties: tickets
                    .iter()
                    .filter(|t| t.players.iter().all(|p| team.contains(p)))
                    .map(|t| PartyMembers {
                        party_id: party_of(t),
                        user_ids: t.players.clone(),
                    })
                    .collect(),
                team_id: format!("team-{}", i + 1),
                user_ids: team.clone(),
            })
            .collect(),
        tickets: proposal
            .tickets
            .iter()
            .map(|id| MatchedTicket {
                ticket_id: id.clone(),
            })
            .collect(),
    };
    for player in &players {
        send_json(
            &state.lobby,
            &work.namespace,
            player,
            topics::MATCH_FOUND,
            &found,
        );
    }
    announce_invites(state, &session, "");
    if session.ds.status == accelbyte::models::session::ds_status::NEED_TO_REQUEST {
        crate::session::ds::request_server(state, &session, proposal.region);
    }
}
