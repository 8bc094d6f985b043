//! One `MakeMatches` tick: the pool's tickets → matches, by the matchmaker's own planner
//! ([`crate::matching::plan`]) — the same teams, parties, skill widening, region and timeout
//! rules as the HTTP service — then shaped as AGS `Match` messages.
//!
//! The one thing the planner does not know is which regions a ticket can play in: after its
//! region wait a ticket accepts any region there, while here it accepts only the regions it
//! reported (within `region_latency_max_ms`). So a tick plans twice: first with every ticket
//! holding to its best region (the region wait taken as endless), then the rest under the rules'
//! region wait. A proposal of the second pass in a region some ticket cannot play in is not
//! sent; that ticket sits out this tick and the rest are planned again without it, so it never
//! holds others back, and it was not matchable in its own region this tick anyway.
//!
//! Tickets the rules refuse are left out (and counted); timed-out tickets are never matched (AGS
//! expires them by the pool's own ticket expiration).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use prost_types::value::Kind;
use prost_types::{Struct, Value};

use super::proto;
use super::rules::PoolRules;
use super::tickets::{Admitted, admit};
use crate::clock::UnixMillis;
use crate::config::Format;
use crate::matching::plan;
use crate::ticket::{MatchProposal, TicketId};

/// How many times a tick re-plans after setting aside tickets placed beyond their latency limit.
const MAX_REPLANS: usize = 8;

/// What one tick made of its tickets.
#[derive(Debug, Default)]
pub struct Tick {
    pub matches: Vec<proto::Match>,
    /// Tickets the rules refuse, with why.
    pub invalid: Vec<String>,
    /// Tickets that waited past the rules' timeout.
    pub timed_out: usize,
}

/// Matches `tickets` (one pool) under `rules` at time `now`.
pub fn make_matches(tickets: &[proto::Ticket], rules: &PoolRules, now: UnixMillis) -> Tick {
    let mut tick = Tick::default();
    let mut by_id: ById<'_> = HashMap::new();
    let mut order = Vec::new();
    for ticket in tickets {
        match admit(ticket, rules, now) {
            Ok(admitted) => {
                let id = admitted.ticket.id.clone();
                if by_id.contains_key(&id) {
                    tick.invalid
                        .push(format!("ticket {id}: sent twice in one tick"));
                    continue;
                }
                order.push(admitted.ticket.clone());
                by_id.insert(id, (ticket, admitted));
            }
            Err(e) => tick.invalid.push(e.to_string()),
        }
    }

    // First pass: everyone in their best region.
    let mut at_home = rules.mode.clone();
    at_home.region_wait = Duration::MAX;
    let first = plan(&order, &at_home, now);
    tick.timed_out = first.timed_out.len();
    let mut accepted: Vec<MatchProposal> = Vec::new();
    let mut done: HashSet<TicketId> = first.timed_out.into_iter().collect();
    for proposal in first.proposals {
        if acceptable(&proposal, &by_id) {
            done.extend(proposal.ticket_ids().cloned());
            accepted.push(proposal);
        }
    }

    // Second pass: the rest, relaxing regions after the rules' wait.
    let mut queued = order;
    queued.retain(|t| !done.contains(&t.id));
    for round in 0.. {
        let planned = plan(&queued, &rules.mode, now);
        let mut set_aside: HashSet<TicketId> = HashSet::new();
        let mut good = Vec::new();
        for proposal in planned.proposals {
            let beyond = cannot_play(&proposal, &by_id);
            if beyond.is_empty() {
                good.push(proposal);
            } else {
                set_aside.extend(beyond);
            }
        }
        if set_aside.is_empty() || round + 1 >= MAX_REPLANS {
            accepted.extend(good);
            break;
        }
        // Plan again over everything but the set-aside tickets (this round's good proposals
        // included: without the set-aside tickets they may group differently).
        queued.retain(|t| !set_aside.contains(&t.id));
    }

    tick.matches = accepted
        .iter()
        .map(|p| to_match(p, &by_id, rules))
        .collect();
    tick
}

type ById<'a> = HashMap<TicketId, (&'a proto::Ticket, Admitted)>;

/// The tickets of `proposal` that cannot play in its region.
fn cannot_play(proposal: &MatchProposal, by_id: &ById<'_>) -> Vec<TicketId> {
    match &proposal.region {
        Some(region) => proposal
            .ticket_ids()
            .filter(|id| !by_id[*id].1.accepts(region))
            .cloned()
            .collect(),
        None => Vec::new(),
    }
}

fn acceptable(proposal: &MatchProposal, by_id: &ById<'_>) -> bool {
    cannot_play(proposal, by_id).is_empty()
}

fn to_match(proposal: &MatchProposal, by_id: &ById<'_>, rules: &PoolRules) -> proto::Match {
    let members: Vec<&Admitted> = proposal.ticket_ids().map(|id| &by_id[id].1).collect();
    let teams = proposal
        .teams
        .iter()
        .map(|team| {
            let (user_ids, parties) = team_members(team.iter().map(|id| by_id[id].0));
            proto::r#match::Team {
                user_ids,
                parties,
                team_id: new_id(),
            }
        })
        .collect();
    let players: usize = members.iter().map(|a| a.ticket.party.size()).sum();
    let backfill = rules.auto_backfill
        && matches!(rules.mode.format, Format::FreeForAll { .. })
        && u32::try_from(players).is_ok_and(|n| n < rules.capacity());
    proto::Match {
        tickets: proposal
            .ticket_ids()
            .map(|id| by_id[id].0.clone())
            .collect(),
        teams,
        region_preferences: region_preferences(proposal.region.as_deref(), &members),
        match_attributes: Some(Struct {
            fields: BTreeMap::from([(
                "matched_by".to_owned(),
                Value {
                    kind: Some(Kind::StringValue("matchbench".to_owned())),
                },
            )]),
        }),
        backfill,
        server_name: String::new(),
        client_version: String::new(),
        server_pool: None,
    }
}

/// The user ids of `tickets` in order, and a party entry for each party ticket.
pub fn team_members<'a>(
    tickets: impl Iterator<Item = &'a proto::Ticket>,
) -> (Vec<String>, Vec<proto::Party>) {
    let mut user_ids = Vec::new();
    let mut parties = Vec::new();
    for ticket in tickets {
        let ids: Vec<String> = ticket.players.iter().map(|p| p.player_id.clone()).collect();
        if !ticket.party_session_id.is_empty() {
            parties.push(proto::Party {
                party_id: ticket.party_session_id.clone(),
                user_ids: ids.clone(),
            });
        }
        user_ids.extend(ids);
    }
    (user_ids, parties)
}

/// The match's region first, then every other region all its tickets accept, by the worst
/// latency any of them reported (then by name). Empty when nobody reported latencies.
fn region_preferences(chosen: Option<&str>, members: &[&Admitted]) -> Vec<String> {
    let reporting: Vec<&&Admitted> = members.iter().filter(|a| a.reported_latencies).collect();
    let mut worst: BTreeMap<&str, i64> = BTreeMap::new();
    if let Some((first, rest)) = reporting.split_first() {
        for (region, ms) in &first.regions {
            let mut max = *ms;
            let everyone = rest.iter().all(|a| {
                a.regions
                    .iter()
                    .find(|(r, _)| r == region)
                    .map(|(_, ms)| max = max.max(*ms))
                    .is_some()
            });
            if everyone {
                worst.insert(region, max);
            }
        }
    }
    let mut others: Vec<(&str, i64)> = worst
        .into_iter()
        .filter(|(r, _)| Some(*r) != chosen)
        .collect();
    others.sort_by_key(|&(r, ms)| (ms, r));
    chosen
        .into_iter()
        .chain(others.into_iter().map(|(r, _)| r))
        .map(str::to_owned)
        .collect()
}

/// A fresh id in AGS's style: a UUID without hyphens.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
