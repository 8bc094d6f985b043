//! One `BackfillMatches` tick: running sessions with open slots (backfill tickets) + queued
//! tickets → proposals that fill those slots under the pool's rules.
//!
//! For each backfill ticket, oldest first, candidates are tried oldest first; a candidate joins
//! when:
//! - it has not timed out and does not list the session in `excluded_sessions`;
//! - its whole party fits the open slots of one team (the team with the most room; in a
//!   free-for-all the ticket becomes a team of its own while the match is below `max_players`);
//! - its skill keeps the session's spread within the candidate's window (which widens with the
//!   candidate's wait, as in [`crate::config::SkillWindow`]);
//! - the session's region (its first region preference) is its own preferred region, or any
//!   region it accepts once it has waited the rules' region wait.
//!
//! Each ticket joins at most one session per tick. A session that gains nobody gets no proposal.

use std::collections::HashSet;
use std::time::Duration;

use super::matches::{new_id, team_members};
use super::proto;
use super::rules::PoolRules;
use super::tickets::{Admitted, admit, created_at, skill_of, timestamp};
use crate::clock::UnixMillis;
use crate::config::Format;

/// What one backfill tick made of its input.
#[derive(Debug, Default)]
pub struct BackfillTick {
    pub proposals: Vec<proto::BackfillProposal>,
    /// Tickets the rules refuse, with why.
    pub invalid: Vec<String>,
}

/// A team of the session as it grows.
struct Team {
    team_id: String,
    user_ids: Vec<String>,
    parties: Vec<proto::Party>,
    /// Slots left.
    open: u32,
}

/// Proposes how `tickets` fill the sessions of `backfills` under `rules` at `now`.
pub fn backfill_matches(
    backfills: &[proto::BackfillTicket],
    tickets: &[proto::Ticket],
    rules: &PoolRules,
    now: UnixMillis,
) -> BackfillTick {
    let mut tick = BackfillTick::default();
    let mut candidates: Vec<(&proto::Ticket, Admitted)> = Vec::new();
    let mut seen = HashSet::new();
    for ticket in tickets {
        match admit(ticket, rules, now) {
            Ok(a) if !seen.insert(a.ticket.id.clone()) => tick
                .invalid
                .push(format!("ticket {}: sent twice in one tick", a.ticket.id)),
            Ok(a) if now.since(a.ticket.enqueued_at) >= rules.timeout() => {}
            Ok(a) => candidates.push((ticket, a)),
            Err(e) => tick.invalid.push(e.to_string()),
        }
    }
    candidates.sort_by(|(_, a), (_, b)| {
        (a.ticket.enqueued_at, &a.ticket.id).cmp(&(b.ticket.enqueued_at, &b.ticket.id))
    });

    let mut sessions: Vec<&proto::BackfillTicket> = backfills.iter().collect();
    sessions.sort_by_key(|b| {
        (
            b.created_at.as_ref().map_or(now, created_at),
            b.ticket_id.clone(),
        )
    });
    let mut used = vec![false; candidates.len()];
    for session in sessions {
        if let Some(p) = fill(session, &candidates, &mut used, rules, now) {
            tick.proposals.push(p);
        }
    }
    tick
}

fn fill(
    session: &proto::BackfillTicket,
    candidates: &[(&proto::Ticket, Admitted)],
    used: &mut [bool],
    rules: &PoolRules,
    now: UnixMillis,
) -> Option<proto::BackfillProposal> {
    let partial = session.partial_match.clone().unwrap_or_default();
    let mut teams: Vec<Team> = Vec::new();
    let mut players: u32 = 0;
    for t in &partial.teams {
        let n = u32::try_from(t.user_ids.len()).unwrap_or(u32::MAX);
        players = players.saturating_add(n);
        teams.push(Team {
            team_id: if t.team_id.is_empty() {
                new_id()
            } else {
                t.team_id.clone()
            },
            user_ids: t.user_ids.clone(),
            parties: t.parties.clone(),
            open: 0,
        });
    }
    let mut room = match rules.mode.format {
        Format::Teams {
            teams: n,
            team_size,
        } => {
            // AGS leaves out teams nobody is on yet: add them back empty.
            while teams.len() < n as usize {
                teams.push(Team {
                    team_id: new_id(),
                    user_ids: Vec::new(),
                    parties: Vec::new(),
                    open: 0,
                });
            }
            for team in &mut teams {
                let on = u32::try_from(team.user_ids.len()).unwrap_or(u32::MAX);
                team.open = team_size.saturating_sub(on);
            }
            None
        }
        Format::FreeForAll { max_players, .. } => Some(max_players.saturating_sub(players)),
    };

    // The session's skill range, from the tickets already in it.
    let (mut lo, mut hi) = (u32::MAX, 0u32);
    for t in &partial.tickets {
        if let Ok(Some(m)) = skill_of(t, &rules.skill_attribute) {
            lo = lo.min(m);
            hi = hi.max(m);
        }
    }
    let region = partial.region_preferences.first().map(String::as_str);

    let mut added = Vec::new();
    for (k, (proto_ticket, a)) in candidates.iter().enumerate() {
        if used[k] {
            continue;
        }
        if proto_ticket
            .excluded_sessions
            .iter()
            .any(|s| s == &session.match_session_id)
        {
            continue;
        }
        let waited: Duration = now.since(a.ticket.enqueued_at);
        if let Some(region) = region {
            let firm = waited < rules.mode.region_wait;
            let preferred = a.ticket.attributes.region.as_deref();
            let fits = match (firm, preferred) {
                (true, Some(p)) => p == region,
                _ => a.accepts(region),
            };
            if !fits {
                continue;
            }
        }
        let (new_lo, new_hi) = match a.ticket.attributes.mmr {
            Some(m) => (lo.min(m), hi.max(m)),
            None => (lo, hi),
        };
        if new_lo <= new_hi && new_hi - new_lo > rules.mode.skill.at(waited) {
            continue;
        }
        let size = u32::try_from(a.ticket.party.size()).unwrap_or(u32::MAX);
        let (user_ids, parties) = team_members(std::iter::once(*proto_ticket));
        match &mut room {
            Some(left) => {
                if size > *left {
                    continue;
                }
                *left -= size;
                teams.push(Team {
                    team_id: new_id(),
                    user_ids,
                    parties,
                    open: 0,
                });
            }
            None => {
                // The team with the most room that takes the whole party (first on ties).
                let Some(team) = teams
                    .iter_mut()
                    .filter(|t| t.open >= size)
                    .reduce(|best, t| if t.open > best.open { t } else { best })
                else {
                    continue;
                };
                team.open -= size;
                team.user_ids.extend(user_ids);
                team.parties.extend(parties);
            }
        }
        (lo, hi) = (new_lo, new_hi);
        used[k] = true;
        added.push((*proto_ticket).clone());
        let full = match room {
            Some(left) => left == 0,
            None => teams.iter().all(|t| t.open == 0),
        };
        if full {
            break;
        }
    }
    if added.is_empty() {
        return None;
    }
    Some(proto::BackfillProposal {
        backfill_ticket_id: session.ticket_id.clone(),
        created_at: Some(timestamp(now)),
        added_tickets: added,
        proposed_teams: teams
            .into_iter()
            .filter(|t| !t.user_ids.is_empty())
            .map(|t| proto::backfill_proposal::Team {
                user_ids: t.user_ids,
                parties: t.parties,
                team_id: t.team_id,
            })
            .collect(),
        proposal_id: new_id(),
        match_pool: session.match_pool.clone(),
        match_session_id: session.match_session_id.clone(),
        attributes: partial.match_attributes,
    })
}
