//! The match function seam: `make_matches(rules, tickets, now) → matches`, the shape of the
//! Extend match function's `MakeMatches` call, so a pool can later be served by an external
//! gRPC match function instead of [`DefaultMatcher`]. A pool names its function in
//! `match_function` (`match_function_override.make_matches` wins when set); `default` and
//! `basic` are the built-in one, other names must be registered with
//! [`super::store::Match2::register_function`].
//!
//! [`DefaultMatcher`] honours the rule set format of [`super::ruleset`]: oldest ticket first, it
//! gathers compatible tickets (every distance rule, a shared region under the latency limit,
//! both flexed by how long the oldest ticket of the group has waited) until the alliance is
//! full, and makes a match once every team can reach its minimum. Parties (tickets with several
//! players) stay on one team.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::ruleset::{Alliance, RuleSet};

/// One ticket as a match function sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    pub id: String,
    /// The players the ticket brings (one, or a party).
    pub players: Vec<String>,
    /// The party the ticket's players came in (`sessionID` of a party ticket), or empty.
    pub party_id: String,
    pub attributes: Map<String, Value>,
    /// Region → latency in ms.
    pub latencies: BTreeMap<String, i64>,
    pub created_at: DateTime<Utc>,
}

/// One match: its tickets, the players of each team, and the region it plays in (if the
/// tickets named latencies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub tickets: Vec<String>,
    pub teams: Vec<Vec<String>>,
    pub region: Option<String>,
}

/// Why a match function gave no answer this tick (its pool's tickets stay queued).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MatchFunctionError(pub String);

/// What a call of a match function resolves to.
pub type MatchFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Proposal>, MatchFunctionError>> + Send + 'a>>;

/// A match function. It runs on the matchmaking loop with no lock held; a remote one must bound
/// its own wait (the loop waits for every pool's answer before the next tick).
pub trait MatchFunction: Send + Sync + Debug {
    /// Proposes matches among `tickets` (of one pool) under `rules` (the pool's rule set data).
    /// A ticket may appear in at most one proposal.
    fn make_matches<'a>(
        &'a self,
        rules: &'a Value,
        tickets: &'a [Ticket],
        now: DateTime<Utc>,
    ) -> MatchFuture<'a>;
}

/// The built-in match function.
#[derive(Debug, Default, Clone, Copy)]
pub struct DefaultMatcher;

fn waited(ticket: &Ticket, now: DateTime<Utc>) -> std::time::Duration {
    (now - ticket.created_at).to_std().unwrap_or_default()
}

fn number(ticket: &Ticket, attribute: &str) -> Option<f64> {
    ticket.attributes.get(attribute).and_then(Value::as_f64)
}

/// Regions `ticket` may play in under `limit` (all it named when there is no limit); `None`
/// when the ticket named no latencies (it goes anywhere).
fn regions(ticket: &Ticket, limit: Option<u64>) -> Option<HashSet<String>> {
    if ticket.latencies.is_empty() {
        return None;
    }
    Some(
        ticket
            .latencies
            .iter()
            .filter(|(_, ms)| limit.is_none_or(|l| u64::try_from(**ms).is_ok_and(|ms| ms <= l)))
            .map(|(r, _)| r.clone())
            .collect(),
    )
}

/// Splits `group` (ticket index, players) into teams for `alliance`, parties kept whole:
/// biggest parties first, each into the emptiest team with room. `None` if some team would stay
/// under its minimum.
fn teams_for(alliance: Alliance, group: &[&Ticket]) -> Option<Vec<Vec<String>>> {
    let players: usize = group.iter().map(|t| t.players.len()).sum();
    let pmax = alliance.player_max_number as usize;
    let pmin = alliance.player_min_number as usize;
    for count in (alliance.min_number as usize..=alliance.max_number as usize).rev() {
        if count * pmin > players || count * pmax < players {
            continue;
        }
        let mut sorted: Vec<&Ticket> = group.to_vec();
        sorted.sort_by_key(|t| std::cmp::Reverse(t.players.len()));
        let mut teams: Vec<Vec<String>> = vec![Vec::new(); count];
        let mut placed = true;
        for ticket in sorted {
            let slot = teams
                .iter_mut()
                .filter(|team| team.len() + ticket.players.len() <= pmax)
                .min_by_key(|team| team.len());
            match slot {
                Some(team) => team.extend(ticket.players.iter().cloned()),
                None => {
                    placed = false;
                    break;
                }
            }
        }
        if placed && teams.iter().all(|t| t.len() >= pmin) {
            return Some(teams);
        }
    }
    None
}

impl DefaultMatcher {
    fn propose(rules: &RuleSet, tickets: &[Ticket], now: DateTime<Utc>) -> Vec<Proposal> {
        let mut order: Vec<&Ticket> = tickets.iter().collect();
        order.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        let mut used: HashSet<&str> = HashSet::new();
        let mut proposals = Vec::new();
        for (i, anchor) in order.iter().enumerate() {
            if used.contains(anchor.id.as_str()) {
                continue;
            }
            // The oldest ticket of the group is the anchor: its wait flexes the rules.
            let wait = waited(anchor, now);
            let alliance = rules.alliance_at(wait.as_secs());
            let distances = rules.distances_at(wait.as_secs());
            let limit = rules.latency_limit_at(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
            let capacity = (alliance.max_number * alliance.player_max_number) as usize;
            if anchor.players.len() > alliance.player_max_number as usize {
                continue;
            }
            let mut group: Vec<&Ticket> = vec![anchor];
            let mut shared = regions(anchor, limit);
            let mut players = anchor.players.len();
            for candidate in &order[i + 1..] {
                if players >= capacity {
                    break;
                }
                if used.contains(candidate.id.as_str())
                    || players + candidate.players.len() > capacity
                    || candidate.players.len() > alliance.player_max_number as usize
                {
                    continue;
                }
                let close = distances.iter().all(|(attribute, reference)| {
                    let Some(value) = number(candidate, attribute) else {
                        return group.iter().all(|t| number(t, attribute).is_none());
                    };
                    group.iter().all(|t| {
                        number(t, attribute).is_some_and(|v| (v - value).abs() <= *reference)
                    })
                });
                if !close {
                    continue;
                }
                let joined = match (&shared, regions(candidate, limit)) {
                    (Some(ours), Some(theirs)) => {
                        let both: HashSet<String> = ours.intersection(&theirs).cloned().collect();
                        if both.is_empty() {
                            continue;
                        }
                        Some(both)
                    }
                    (Some(ours), None) => Some(ours.clone()),
                    (None, theirs) => theirs,
                };
                shared = joined;
                players += candidate.players.len();
                group.push(candidate);
            }
            if shared.as_ref().is_some_and(HashSet::is_empty) {
                continue;
            }
            let Some(teams) = teams_for(alliance, &group) else {
                continue;
            };
            let region = shared.and_then(|set| {
                // The shared region with the lowest worst latency.
                set.into_iter().min_by_key(|r| {
                    group
                        .iter()
                        .filter_map(|t| t.latencies.get(r))
                        .copied()
                        .max()
                        .unwrap_or(0)
                })
            });
            for t in &group {
                used.insert(t.id.as_str());
            }
            proposals.push(Proposal {
                tickets: group.iter().map(|t| t.id.clone()).collect(),
                teams,
                region,
            });
        }
        proposals
    }
}

impl MatchFunction for DefaultMatcher {
    fn make_matches<'a>(
        &'a self,
        rules: &'a Value,
        tickets: &'a [Ticket],
        now: DateTime<Utc>,
    ) -> MatchFuture<'a> {
        Box::pin(std::future::ready(Ok(Self::matches(rules, tickets, now))))
    }
}

impl DefaultMatcher {
    /// The built-in function's answer, computed at once.
    pub fn matches(rules: &Value, tickets: &[Ticket], now: DateTime<Utc>) -> Vec<Proposal> {
        match RuleSet::parse(rules) {
            Ok(rules) => Self::propose(&rules, tickets, now),
            Err(error) => {
                tracing::warn!(%error, "match2: pool's rule set is not one the default matcher reads");
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ticket(id: &str, players: &[&str], mmr: f64, lat: &[(&str, i64)], age_s: i64) -> Ticket {
        let mut attributes = Map::new();
        attributes.insert("mmr".into(), json!(mmr));
        Ticket {
            id: id.into(),
            players: players.iter().map(|p| (*p).to_owned()).collect(),
            party_id: String::new(),
            attributes,
            latencies: lat.iter().map(|(r, ms)| ((*r).to_owned(), *ms)).collect(),
            created_at: now() - chrono::Duration::seconds(age_s),
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).expect("time")
    }

    fn rules() -> Value {
        json!({
            "alliance": {"min_number": 2, "max_number": 2, "player_min_number": 1, "player_max_number": 2},
            "matching_rule": [{"attribute": "mmr", "criteria": "distance", "reference": 100}],
            "flexing_rule": [{"duration": 30, "attribute": "mmr", "criteria": "distance", "reference": 1000}],
            "region_latency_initial_range_ms": 100, "region_expansion_range_ms": 100,
            "region_expansion_rate_ms": 10000, "region_latency_max_ms": 300
        })
    }

    #[test]
    fn close_tickets_match_into_two_teams_in_their_best_shared_region() {
        let tickets = [
            ticket("a", &["u1"], 1000.0, &[("eu", 40), ("us", 90)], 2),
            ticket("b", &["u2"], 1050.0, &[("eu", 80), ("us", 30)], 1),
        ];
        let out = DefaultMatcher::matches(&rules(), &tickets, now());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].tickets, vec!["a", "b"]);
        assert_eq!(out[0].teams.len(), 2);
        assert!(out[0].teams.iter().all(|t| t.len() == 1));
        assert_eq!(
            out[0].region.as_deref(),
            Some("eu"),
            "eu's worst latency is 80, us's 90"
        );
    }

    #[test]
    fn distant_skill_waits_until_the_rule_flexes() {
        let fresh = [
            ticket("a", &["u1"], 1000.0, &[], 5),
            ticket("b", &["u2"], 1500.0, &[], 1),
        ];
        assert!(DefaultMatcher::matches(&rules(), &fresh, now()).is_empty());
        let old = [
            ticket("a", &["u1"], 1000.0, &[], 31),
            ticket("b", &["u2"], 1500.0, &[], 1),
        ];
        assert_eq!(DefaultMatcher::matches(&rules(), &old, now()).len(), 1);
    }

    #[test]
    fn no_shared_region_under_the_limit_means_no_match_until_it_expands() {
        let tickets = [
            ticket("a", &["u1"], 1000.0, &[("eu", 50), ("us", 250)], 1),
            ticket("b", &["u2"], 1000.0, &[("eu", 250), ("us", 50)], 1),
        ];
        assert!(DefaultMatcher::matches(&rules(), &tickets, now()).is_empty());
        let later = [
            ticket("a", &["u1"], 1000.0, &[("eu", 50), ("us", 250)], 25),
            ticket("b", &["u2"], 1000.0, &[("eu", 250), ("us", 50)], 1),
        ];
        assert_eq!(
            DefaultMatcher::matches(&rules(), &later, now()).len(),
            1,
            "after 20 s the limit is 300 ms"
        );
    }

    #[test]
    fn a_party_stays_on_one_team_and_a_lone_ticket_is_not_a_match() {
        let tickets = [
            ticket("p", &["u1", "u2"], 1000.0, &[], 2),
            ticket("a", &["u3"], 1000.0, &[], 1),
            ticket("b", &["u4"], 1000.0, &[], 1),
        ];
        let out = DefaultMatcher::matches(&rules(), &tickets, now());
        assert_eq!(out.len(), 1);
        let party_team = out[0]
            .teams
            .iter()
            .find(|t| t.contains(&"u1".to_owned()))
            .expect("party placed");
        assert!(party_team.contains(&"u2".to_owned()));
        let alone = [ticket("a", &["u1"], 1000.0, &[], 1)];
        assert!(DefaultMatcher::matches(&rules(), &alone, now()).is_empty());
    }
}
