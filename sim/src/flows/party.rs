//! Forming a Session v2 party before a match2 search, over the real API and the lobby
//! notifications, as a game client with an AGS SDK does it: the leader creates the party and
//! invites each member; a member joins when `OnPartyInvited` from its leader arrives; the leader
//! waits until `OnPartyMembersChanged` shows every member joined; members then learn the party's
//! ticket from `OnMatchmakingStarted` naming their party.
//!
//! Accounts are reused across searches, so a member checks that an invite is pending (a read of
//! the party) before it joins: an invite left on the socket by an earlier search is skipped.
//!
//! Every step is timed under [`Endpoint::Party`] (the ticket's own call under `MatchTicket`).
//! A step that finds nothing before its deadline reads the party once, so a lost notification
//! is told apart from a member that never came.

use std::collections::HashSet;

use accelbyte::client::V2Event;
use accelbyte::models::match2::MatchFoundNotif;
use accelbyte::models::session::{CreatePartyRequest, member_status};
use tokio::time::Instant;

use crate::outcome::{Endpoint, ErrorKind};
use crate::player::RunCtx;
use crate::player::{Member, WorkerCtx};

use super::match2::next_event;

type StepError = (Endpoint, ErrorKind);

/// Times one party call.
async fn call<T>(
    w: &WorkerCtx,
    future: impl std::future::Future<Output = Result<T, accelbyte::client::ClientError>>,
) -> Result<T, StepError> {
    let started = Instant::now();
    match future.await {
        Ok(value) => {
            w.recorder.call(Endpoint::Party, started.elapsed(), Ok(()));
            Ok(value)
        }
        Err(e) => {
            let kind = ErrorKind::of(&e);
            w.recorder
                .call(Endpoint::Party, started.elapsed(), Err(kind));
            Err((Endpoint::Party, kind))
        }
    }
}

/// The leader's part: creates an invite-only party of at most `invitees + 1` players, invites
/// `invitees`, and waits until all of them joined. Returns the party's id.
pub async fn lead(
    w: &WorkerCtx,
    run: &RunCtx,
    m: &mut Member,
    token: &str,
    invitees: &[String],
    deadline: Instant,
) -> Result<String, StepError> {
    let size = i32::try_from(invitees.len() + 1).unwrap_or(i32::MAX);
    let body = CreatePartyRequest {
        attributes: serde_json::Map::new(),
        configuration_name: String::new(),
        inactive_timeout: 60,
        invite_timeout: 60,
        joinability: "INVITE_ONLY".into(),
        max_players: size,
        members: Vec::new(),
        min_players: 1,
        text_chat: false,
        kind: "NONE".into(),
        password: None,
    };
    let party = call(
        w,
        w.players
            .session()
            .create_party(token, &run.namespace, &body),
    )
    .await?;
    let id = party.id;
    for user in invitees {
        call(
            w,
            w.players
                .session()
                .invite_to_party(token, &run.namespace, &id, user),
        )
        .await?;
    }
    let wanted: HashSet<&str> = invitees.iter().map(String::as_str).collect();
    let all_joined = |members: &[accelbyte::models::session::Member]| {
        let joined: HashSet<&str> = members
            .iter()
            .filter(|m| m.status_v2 == member_status::JOINED || m.status == member_status::JOINED)
            .map(|m| m.id.as_str())
            .collect();
        wanted.is_subset(&joined)
    };
    let waited = Instant::now();
    loop {
        match next_event(w, m, deadline).await {
            Some(V2Event::PartyMembersChanged(c))
                if c.session.id == id && all_joined(&c.session.members) =>
            {
                w.recorder.call(Endpoint::Party, waited.elapsed(), Ok(()));
                return Ok(id);
            }
            Some(V2Event::PartyJoined(j)) if j.party_id == id && all_joined(&j.members) => {
                w.recorder.call(Endpoint::Party, waited.elapsed(), Ok(()));
                return Ok(id);
            }
            Some(_) => {}
            None => {
                let party =
                    call(w, w.players.session().get_party(token, &run.namespace, &id)).await?;
                if all_joined(&party.members) {
                    w.recorder.error(Endpoint::Lobby, ErrorKind::NoFound);
                    return Ok(id);
                }
                w.recorder
                    .call(Endpoint::Party, waited.elapsed(), Err(ErrorKind::Timeout));
                return Err((Endpoint::Party, ErrorKind::Timeout));
            }
        }
    }
}

/// A member's part: waits for `OnPartyInvited` from `leader` and joins. Returns the party's id.
pub async fn accept(
    w: &WorkerCtx,
    run: &RunCtx,
    m: &mut Member,
    token: &str,
    leader: &str,
    deadline: Instant,
) -> Result<String, StepError> {
    let id = loop {
        match next_event(w, m, deadline).await {
            Some(V2Event::PartyInvited(i)) if i.sender_id == leader => {
                // Accounts are reused: an invite from an earlier search with the same leader
                // may still be on the socket. Only a party that holds this member as INVITED
                // now is the one being formed.
                let started = Instant::now();
                let party = w
                    .players
                    .session()
                    .get_party(token, &run.namespace, &i.party_id)
                    .await;
                // 404 (the earlier party is gone) and 403 are answers here, not failures.
                let answered = match &party {
                    Ok(_) => Ok(()),
                    Err(e) if matches!(e.status(), Some(403 | 404)) => Ok(()),
                    Err(e) => Err(ErrorKind::of(e)),
                };
                w.recorder
                    .call(Endpoint::Party, started.elapsed(), answered);
                let me = m.session.as_ref().map(|s| s.user_id.as_str());
                let pending = party.as_ref().is_ok_and(|p| {
                    p.members.iter().any(|x| {
                        Some(x.id.as_str()) == me
                            && (x.status == member_status::INVITED
                                || x.status_v2 == member_status::INVITED)
                    })
                });
                if pending {
                    break i.party_id;
                }
            }
            Some(_) => {}
            None => {
                // No invite seen: the party may still be there (a lost notification).
                let mine = call(w, w.players.session().my_parties(token, &run.namespace)).await?;
                let invited = mine.data.into_iter().find(|p| {
                    p.leader_id == leader
                        && p.members.iter().any(|x| {
                            x.status == member_status::INVITED
                                && m.session.as_ref().is_some_and(|s| s.user_id == x.id)
                        })
                });
                match invited {
                    Some(p) => {
                        w.recorder.error(Endpoint::Lobby, ErrorKind::NoFound);
                        break p.id;
                    }
                    None => return Err((Endpoint::Party, ErrorKind::Timeout)),
                }
            }
        }
    };
    call(
        w,
        w.players.session().join_party(token, &run.namespace, &id),
    )
    .await?;
    Ok(id)
}

/// A member's wait for the party's ticket: `OnMatchmakingStarted` naming `party_id`. The match
/// may be found before that notification arrives (the services do not order their
/// notifications), so an `OnMatchFound` seen meanwhile that names the ticket is handed back too.
pub async fn ticket_of(
    w: &WorkerCtx,
    m: &mut Member,
    party_id: &str,
    deadline: Instant,
) -> Result<(String, Option<MatchFoundNotif>), StepError> {
    let mut found_early: Vec<MatchFoundNotif> = Vec::new();
    loop {
        match next_event(w, m, deadline).await {
            Some(V2Event::MatchmakingStarted(s)) if s.party_id == party_id => {
                let early = found_early
                    .into_iter()
                    .find(|f| f.tickets.iter().any(|t| t.ticket_id == s.ticket_id));
                return Ok((s.ticket_id, early));
            }
            Some(V2Event::MatchFound(f)) => found_early.push(f),
            Some(_) => {}
            None => {
                w.recorder.error(Endpoint::Lobby, ErrorKind::NoFound);
                return Err((Endpoint::Lobby, ErrorKind::NoFound));
            }
        }
    }
}
