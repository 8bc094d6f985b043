//! The matching rules, as pure functions: queued tickets of one game mode + the mode's rules +
//! the current time in, proposed matches and timed-out tickets out.
//!
//! How [`plan`] works: tickets are taken oldest first (by enqueue time, then id). Each ticket not
//! yet used becomes an *anchor* and tries to gather a match around itself:
//! - **skill**: every `mmr` in the match lies within the anchor's window (which widens with the
//!   anchor's wait), and the spread (max − min) stays within it; candidates closest in `mmr` to
//!   the anchor are tried first, then by age. Tickets without an `mmr` fit any window.
//! - **region**: a ticket with a preferred region joins only a match in that region until it has
//!   waited `region_wait`; then it accepts any region. An anchor without a firm preference takes
//!   the region of the first candidate that has one (and tries up to [`REGION_TRIES`] regions).
//! - **parties** are never split: in a team format the chosen parties must pack exactly into
//!   `teams` teams of `team_size` (checked by a bounded exact search), and the packing puts
//!   heavier parties on the team with the lowest `mmr` sum first, which balances the teams.
//! - **free-for-all**: a match forms at `max_players`, or with at least `min_players` once the
//!   anchor has waited `fill_after`.
//!
//! The result is deterministic for a given input (order included) and time. The planner only
//! proposes: a store must still claim each proposal atomically, and another replica may win.
//!
//! Must not know about stores, clocks, tasks or the pipeline.

use std::time::Duration;

use crate::clock::UnixMillis;
use crate::config::{Format, GameMode};
use crate::ticket::{MatchProposal, Ticket, TicketId, TicketState};

/// How many different regions an anchor without a firm preference tries per pass.
pub const REGION_TRIES: usize = 3;

/// Search steps allowed when checking that parties pack into teams; beyond it the candidate set
/// is treated as not packable (rare: only many odd-sized parties get near it).
const PACK_BUDGET: u32 = 20_000;

/// What one matching pass decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Disjoint proposals, oldest anchor first.
    pub proposals: Vec<MatchProposal>,
    /// Queued tickets that have waited at least the mode's timeout, oldest first.
    pub timed_out: Vec<TicketId>,
}

/// Proposes matches among the `tickets` of `mode` at time `now`. Tickets of other modes or not
/// queued are ignored; a ticket id listed twice counts once.
pub fn plan(tickets: &[Ticket], mode: &GameMode, now: UnixMillis) -> Plan {
    let mut sorted: Vec<&Ticket> = tickets
        .iter()
        .filter(|t| t.game_mode == mode.name && t.state == TicketState::Queued)
        .collect();
    sorted.sort_by(|a, b| (a.enqueued_at, &a.id).cmp(&(b.enqueued_at, &b.id)));
    sorted.dedup_by(|a, b| a.id == b.id);

    let mut timed_out = Vec::new();
    let mut entries = Vec::with_capacity(sorted.len());
    for ticket in sorted {
        let waited = now.since(ticket.enqueued_at);
        if waited >= mode.timeout {
            timed_out.push(ticket.id.clone());
            continue;
        }
        let size = u32::try_from(ticket.party.size()).unwrap_or(u32::MAX);
        if size > mode.max_party_size() {
            // Can never fit; the engine rejects these at submit, so this is only defensive.
            continue;
        }
        entries.push(Entry {
            ticket,
            size,
            mmr: ticket.attributes.mmr,
            region: ticket.attributes.region.as_deref(),
            waited,
            relaxed: waited >= mode.region_wait,
        });
    }

    let proposals = Planner::new(mode, entries).run();
    Plan {
        proposals,
        timed_out,
    }
}

struct Entry<'a> {
    ticket: &'a Ticket,
    size: u32,
    mmr: Option<u32>,
    region: Option<&'a str>,
    waited: Duration,
    relaxed: bool,
}

impl<'a> Entry<'a> {
    /// The region this ticket insists on, if it still insists.
    fn firm_region(&self) -> Option<&'a str> {
        if self.relaxed { None } else { self.region }
    }
}

struct Planner<'a> {
    mode: &'a GameMode,
    entries: Vec<Entry<'a>>,
    used: Vec<bool>,
    /// Indices not yet used, by age (compacted lazily).
    alive: Vec<usize>,
    /// `(mmr, index)` of tickets with an mmr, sorted (compacted lazily).
    by_mmr: Vec<(u32, usize)>,
    /// Indices of tickets without an mmr, by age (compacted lazily).
    no_mmr: Vec<usize>,
    dead: usize,
}

/// A gathered match: entry indices and the region.
type Gathered<'a> = (Vec<usize>, Option<&'a str>);

impl<'a> Planner<'a> {
    fn new(mode: &'a GameMode, entries: Vec<Entry<'a>>) -> Self {
        let mut by_mmr: Vec<(u32, usize)> = entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.mmr.map(|m| (m, i)))
            .collect();
        by_mmr.sort_unstable();
        let no_mmr = (0..entries.len())
            .filter(|&i| entries[i].mmr.is_none())
            .collect();
        Planner {
            mode,
            used: vec![false; entries.len()],
            alive: (0..entries.len()).collect(),
            by_mmr,
            no_mmr,
            dead: 0,
            entries,
        }
    }

    fn run(mut self) -> Vec<MatchProposal> {
        let mut proposals = Vec::new();
        for anchor in 0..self.entries.len() {
            if self.used[anchor] {
                continue;
            }
            let Some((chosen, region)) = self.gather(anchor) else {
                continue;
            };
            let Some(teams) = self.arrange(&chosen) else {
                continue;
            };
            proposals.push(MatchProposal {
                game_mode: self.mode.name.clone(),
                region: region.map(str::to_owned),
                teams,
            });
            for &i in &chosen {
                self.used[i] = true;
            }
            self.dead += chosen.len();
            if self.dead * 4 > self.alive.len() {
                let used = &self.used;
                self.alive.retain(|&i| !used[i]);
                self.by_mmr.retain(|&(_, i)| !used[i]);
                self.no_mmr.retain(|&i| !used[i]);
                self.dead = 0;
            }
        }
        proposals
    }

    /// Tries to build a match around `anchor`, retrying other regions when the region was only
    /// picked up from a candidate.
    fn gather(&self, anchor: usize) -> Option<Gathered<'a>> {
        let window = self.mode.skill.at(self.entries[anchor].waited);
        let mut excluded: Vec<&'a str> = Vec::new();
        for _ in 0..REGION_TRIES {
            match self.fill(anchor, window, &excluded) {
                Ok(found) => return Some(found),
                Err(Some(region)) => excluded.push(region),
                Err(None) => return None,
            }
        }
        None
    }

    /// One greedy attempt. On failure, returns the region a candidate imposed (so the caller can
    /// try without it), or `None` when retrying cannot help.
    fn fill(
        &self,
        anchor: usize,
        window: u32,
        excluded: &[&'a str],
    ) -> Result<Gathered<'a>, Option<&'a str>> {
        let a = &self.entries[anchor];
        let (capacity, minimum, teams) = match self.mode.format {
            Format::Teams { teams, team_size } => {
                let n = teams.saturating_mul(team_size);
                (n, n, Some((teams, team_size)))
            }
            Format::FreeForAll {
                min_players,
                max_players,
                fill_after,
            } => {
                let min = if a.waited >= fill_after {
                    min_players
                } else {
                    max_players
                };
                (max_players, min, None)
            }
        };
        let mut target = a.firm_region();
        let target_is_anchors = target.is_some();
        let (mut lo, mut hi) = a.mmr.map_or((u32::MAX, 0), |m| (m, m));
        let mut chosen = vec![anchor];
        let mut sizes = vec![a.size];
        let mut total = a.size;

        if total < capacity {
            for c in self.candidates(anchor, window) {
                let e = &self.entries[c];
                let mut imposes = None;
                if let Some(r) = e.firm_region() {
                    match target {
                        Some(t) if t != r => continue,
                        Some(_) => {}
                        None if excluded.contains(&r) => continue,
                        None => imposes = Some(r),
                    }
                }
                let (new_lo, new_hi) = match e.mmr {
                    Some(m) => (lo.min(m), hi.max(m)),
                    None => (lo, hi),
                };
                if new_lo <= new_hi && new_hi - new_lo > window {
                    continue;
                }
                if total + e.size > capacity {
                    continue;
                }
                sizes.push(e.size);
                // A solo always fits where the rest already packs; only parties need the search.
                if let Some((n_teams, team_size)) = teams {
                    if e.size > 1
                        && pack(&sizes, &vec![0; sizes.len()], n_teams, team_size).is_none()
                    {
                        sizes.pop();
                        continue;
                    }
                }
                (lo, hi) = (new_lo, new_hi);
                if imposes.is_some() {
                    target = imposes;
                }
                chosen.push(c);
                total += e.size;
                if total == capacity {
                    break;
                }
            }
        }

        if total >= minimum {
            let region = target
                .or(a.region)
                .or_else(|| chosen.iter().find_map(|&i| self.entries[i].region));
            Ok((chosen, region))
        } else if target_is_anchors {
            Err(None)
        } else {
            Err(target)
        }
    }

    /// Unused tickets other than `anchor` that fit its window, closest `mmr` first, then by age.
    fn candidates(&self, anchor: usize, window: u32) -> impl Iterator<Item = usize> + '_ {
        let walk = match self.entries[anchor].mmr {
            Some(m) => {
                let split = self.by_mmr.partition_point(|&(v, _)| v < m);
                Walk::Outward {
                    by_mmr: &self.by_mmr,
                    no_mmr: &self.no_mmr,
                    m,
                    window,
                    left: split,
                    right: split,
                    next_no_mmr: 0,
                }
            }
            None => Walk::ByAge(self.alive.iter()),
        };
        walk.filter(move |&i| i != anchor && !self.used[i])
    }

    /// Splits the chosen tickets into teams (team format) or one side per ticket (free-for-all).
    fn arrange(&self, chosen: &[usize]) -> Option<Vec<Vec<TicketId>>> {
        let id = |i: usize| self.entries[i].ticket.id.clone();
        match self.mode.format {
            Format::FreeForAll { .. } => Some(chosen.iter().map(|&i| vec![id(i)]).collect()),
            Format::Teams { teams, team_size } => {
                let known: Vec<u64> = chosen
                    .iter()
                    .filter_map(|&i| self.entries[i].mmr.map(u64::from))
                    .collect();
                let fallback = if known.is_empty() {
                    0
                } else {
                    known.iter().sum::<u64>() / known.len() as u64
                };
                let sizes: Vec<u32> = chosen.iter().map(|&i| self.entries[i].size).collect();
                let weights: Vec<u64> = chosen
                    .iter()
                    .map(|&i| {
                        let e = &self.entries[i];
                        e.mmr.map_or(fallback, u64::from) * u64::from(e.size)
                    })
                    .collect();
                let assignment = pack(&sizes, &weights, teams, team_size)?;
                let mut out = vec![Vec::new(); teams as usize];
                for (k, &i) in chosen.iter().enumerate() {
                    out[assignment[k]].push(id(i));
                }
                Some(out)
            }
        }
    }
}

/// The order candidates are visited in.
enum Walk<'p> {
    /// Every unused ticket by age (the anchor has no mmr).
    ByAge(std::slice::Iter<'p, usize>),
    /// Tickets without an mmr (distance 0) and tickets with one, outward from the anchor's mmr
    /// up to the window, merged by (distance, age).
    Outward {
        by_mmr: &'p [(u32, usize)],
        no_mmr: &'p [usize],
        m: u32,
        window: u32,
        left: usize,
        right: usize,
        next_no_mmr: usize,
    },
}

impl Iterator for Walk<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        match self {
            Walk::ByAge(iter) => iter.next().copied(),
            Walk::Outward {
                by_mmr,
                no_mmr,
                m,
                window,
                left,
                right,
                next_no_mmr,
            } => {
                let from_left = (*left > 0)
                    .then(|| by_mmr[*left - 1])
                    .map(|(v, i)| (*m - v, i))
                    .filter(|&(d, _)| d <= *window);
                let from_right = by_mmr
                    .get(*right)
                    .map(|&(v, i)| (v - *m, i))
                    .filter(|&(d, _)| d <= *window);
                let from_none = no_mmr.get(*next_no_mmr).map(|&i| (0, i));
                let best = [from_none, from_left, from_right]
                    .into_iter()
                    .enumerate()
                    .filter_map(|(source, c)| c.map(|c| (c, source)))
                    .min()?;
                match best.1 {
                    0 => *next_no_mmr += 1,
                    1 => *left -= 1,
                    _ => *right += 1,
                }
                Some(best.0.1)
            }
        }
    }
}

/// Assigns parties of `sizes` to `teams` teams of `team_size` without splitting any, placing
/// heavier (`weights`) parties on the lightest team first. Returns the team of each party, or
/// `None` if no packing exists (or the search budget ran out).
fn pack(sizes: &[u32], weights: &[u64], teams: u32, team_size: u32) -> Option<Vec<usize>> {
    let teams = teams as usize;
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by(|&x, &y| {
        sizes[y]
            .cmp(&sizes[x])
            .then(weights[y].cmp(&weights[x]))
            .then(x.cmp(&y))
    });
    let split = order.partition_point(|&p| sizes[p] > 1);
    let (parties, solos) = order.split_at(split);

    let mut remaining = vec![team_size; teams];
    let mut sums = vec![0u64; teams];
    let mut assignment = vec![usize::MAX; sizes.len()];

    // Exact search over the parties of two or more (iterative, so deep inputs cannot overflow
    // the stack). Teams with equal remaining room are interchangeable for feasibility, so only
    // the first of them is tried at each level.
    struct Frame {
        options: Vec<usize>,
        next: usize,
        placed: Option<usize>,
    }
    let options = |size: u32, remaining: &[u32], sums: &[u64]| {
        let mut fit: Vec<usize> = (0..remaining.len())
            .filter(|&t| remaining[t] >= size)
            .collect();
        fit.sort_by_key(|&t| (sums[t], t));
        let mut seen = Vec::new();
        fit.retain(|&t| {
            let fresh = !seen.contains(&remaining[t]);
            seen.push(remaining[t]);
            fresh
        });
        fit
    };
    if !parties.is_empty() {
        let mut budget = PACK_BUDGET;
        let mut frames = vec![Frame {
            options: options(sizes[parties[0]], &remaining, &sums),
            next: 0,
            placed: None,
        }];
        // Invariant at the top of the loop: `frames` is not empty.
        loop {
            let depth = frames.len() - 1;
            let party = parties[depth];
            let frame = frames.last_mut()?;
            if let Some(t) = frame.placed.take() {
                remaining[t] += sizes[party];
                sums[t] -= weights[party];
            }
            if budget == 0 {
                return None;
            }
            budget -= 1;
            let Some(&t) = frame.options.get(frame.next) else {
                frames.pop();
                if frames.is_empty() {
                    return None;
                }
                continue;
            };
            frame.next += 1;
            frame.placed = Some(t);
            remaining[t] -= sizes[party];
            sums[t] += weights[party];
            assignment[party] = t;
            if depth + 1 == parties.len() {
                break;
            }
            let next = parties[depth + 1];
            frames.push(Frame {
                options: options(sizes[next], &remaining, &sums),
                next: 0,
                placed: None,
            });
        }
    }

    for &solo in solos {
        let t = (0..teams)
            .filter(|&t| remaining[t] > 0)
            .min_by_key(|&t| (sums[t], t))?;
        remaining[t] -= 1;
        sums[t] += weights[solo];
        assignment[solo] = t;
    }
    Some(assignment)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::config::SkillWindow;
    use crate::ticket::{Attributes, Party, PlayerId};

    const T0: UnixMillis = UnixMillis(1_700_000_000_000);

    fn ticket(id: &str, players: &[&str], mmr: Option<u32>, region: Option<&str>) -> Ticket {
        ticket_at(id, players, mmr, region, T0)
    }

    fn ticket_at(
        id: &str,
        players: &[&str],
        mmr: Option<u32>,
        region: Option<&str>,
        at: UnixMillis,
    ) -> Ticket {
        let members = players.iter().map(|p| PlayerId::from(*p)).collect();
        Ticket {
            id: id.into(),
            game_mode: "m".into(),
            party: Party::new(members).expect("valid party"),
            attributes: Attributes {
                mmr,
                region: region.map(str::to_owned),
                extra: BTreeMap::new(),
            },
            enqueued_at: at,
            attempts: 0,
            max_attempts: 3,
            state: TicketState::Queued,
        }
    }

    fn solo(id: &str) -> Ticket {
        ticket(id, &[id], None, None)
    }

    fn mode(format: Format) -> GameMode {
        GameMode {
            format,
            ..GameMode::one_v_one("m")
        }
    }

    fn teams(teams: u32, team_size: u32) -> GameMode {
        mode(Format::Teams { teams, team_size })
    }

    fn ids(team: &[TicketId]) -> Vec<&str> {
        team.iter().map(TicketId::as_str).collect()
    }

    #[test]
    fn one_v_one_pairs_oldest_first() {
        let at = |s: u64| T0 + Duration::from_secs(s);
        let tickets = vec![
            ticket_at("c", &["c"], None, None, at(2)),
            ticket_at("a", &["a"], None, None, at(0)),
            ticket_at("b", &["b"], None, None, at(1)),
        ];
        let plan = plan(&tickets, &teams(2, 1), at(3));
        assert_eq!(plan.proposals.len(), 1);
        let p = &plan.proposals[0];
        assert_eq!(p.teams.len(), 2);
        assert_eq!(ids(&p.teams[0]), ["a"]);
        assert_eq!(ids(&p.teams[1]), ["b"]);
        assert_eq!(p.region, None);
        assert!(plan.timed_out.is_empty());
    }

    #[test]
    fn a_lone_ticket_makes_no_match() {
        let plan = plan(&[solo("a")], &teams(2, 1), T0);
        assert!(plan.proposals.is_empty());
    }

    #[test]
    fn other_modes_and_non_queued_tickets_are_ignored() {
        let mut other = solo("b");
        other.game_mode = "other".into();
        let mut claimed = solo("c");
        claimed.state = TicketState::Cancelled;
        let plan = plan(&[solo("a"), other, claimed], &teams(2, 1), T0);
        assert!(plan.proposals.is_empty());
    }

    #[test]
    fn two_v_two_keeps_a_party_together() {
        let tickets = vec![
            solo("s1"),
            ticket("duo", &["p1", "p2"], None, None),
            solo("s2"),
        ];
        let plan = plan(&tickets, &teams(2, 2), T0);
        assert_eq!(plan.proposals.len(), 1);
        let teams = &plan.proposals[0].teams;
        let duo_team = teams
            .iter()
            .find(|t| t.contains(&"duo".into()))
            .expect("duo placed");
        assert_eq!(ids(duo_team), ["duo"], "the duo fills its own team");
        let other = teams
            .iter()
            .find(|t| !t.contains(&"duo".into()))
            .expect("other team");
        assert_eq!(ids(other), ["s1", "s2"]);
    }

    #[test]
    fn two_v_two_skips_a_party_that_cannot_fit() {
        // d1 and s1 are taken first; d2 would overflow, so s2 completes the match and d2 waits.
        let at = |s: u64| T0 + Duration::from_secs(s);
        let tickets = vec![
            ticket_at("d1", &["a", "b"], None, None, at(0)),
            ticket_at("s1", &["s1"], None, None, at(1)),
            ticket_at("d2", &["c", "d"], None, None, at(2)),
            ticket_at("s2", &["s2"], None, None, at(3)),
        ];
        let plan = plan(&tickets, &teams(2, 2), at(4));
        assert_eq!(plan.proposals.len(), 1);
        let teams: Vec<Vec<&str>> = plan.proposals[0].teams.iter().map(|t| ids(t)).collect();
        assert_eq!(teams, [vec!["d1"], vec!["s1", "s2"]]);
    }

    #[test]
    fn five_v_five_packs_parties_exactly() {
        // Sizes 3, 2, 2, 1, 1, 1 = 10: the only packings are {3,2}/{2,1,1,1} and {3,1,1}/{2,2,1}.
        let tickets = vec![
            ticket("trio", &["a", "b", "c"], None, None),
            ticket("duo1", &["d", "e"], None, None),
            ticket("duo2", &["f", "g"], None, None),
            solo("h"),
            solo("i"),
            solo("j"),
        ];
        let plan = plan(&tickets, &teams(2, 5), T0);
        assert_eq!(plan.proposals.len(), 1);
        let sizes: Vec<usize> = plan.proposals[0]
            .teams
            .iter()
            .map(|team| {
                team.iter()
                    .map(|id| {
                        tickets
                            .iter()
                            .find(|t| &t.id == id)
                            .expect("known")
                            .party
                            .size()
                    })
                    .sum()
            })
            .collect();
        assert_eq!(sizes, [5, 5]);
    }

    #[test]
    fn parties_that_cannot_pack_make_no_match() {
        // Any ten of 3 + 3 + 3 + 2 players would split a party across the 5 + 5 teams.
        let tickets = vec![
            ticket("t1", &["a", "b", "c"], None, None),
            ticket("t2", &["d", "e", "f"], None, None),
            ticket("t3", &["g", "h", "i"], None, None),
            ticket("d1", &["j", "k"], None, None),
        ];
        let plan = plan(&tickets, &teams(2, 5), T0);
        assert!(plan.proposals.is_empty(), "{plan:?}");
    }

    #[test]
    fn teams_are_balanced_by_mmr() {
        let tickets = vec![
            ticket("a", &["a"], Some(1_400), None),
            ticket("b", &["b"], Some(1_300), None),
            ticket("c", &["c"], Some(1_200), None),
            ticket("d", &["d"], Some(1_100), None),
        ];
        let mut rules = teams(2, 2);
        rules.skill = SkillWindow {
            start: 1_000,
            widen_per_sec: 0,
            max: 1_000,
        };
        let plan = plan(&tickets, &rules, T0);
        let mut teams: Vec<Vec<&str>> = plan.proposals[0].teams.iter().map(|t| ids(t)).collect();
        for team in &mut teams {
            team.sort();
        }
        teams.sort();
        assert_eq!(teams, [vec!["a", "d"], vec!["b", "c"]]);
    }

    #[test]
    fn free_for_all_forms_at_max_or_at_min_after_the_fill_wait() {
        let rules = mode(Format::FreeForAll {
            min_players: 3,
            max_players: 5,
            fill_after: Duration::from_secs(10),
        });
        let four: Vec<Ticket> = ["a", "b", "c", "d"].iter().map(|id| solo(id)).collect();
        assert!(
            plan(&four, &rules, T0).proposals.is_empty(),
            "below max, no wait yet"
        );
        let later = plan(&four, &rules, T0 + Duration::from_secs(10));
        assert_eq!(later.proposals.len(), 1);
        assert_eq!(later.proposals[0].teams.len(), 4, "one side per ticket");

        let mut five = four.clone();
        five.push(ticket("duo", &["e", "f"], None, None));
        five.push(solo("g"));
        let now = plan(&five, &rules, T0);
        assert_eq!(now.proposals.len(), 1);
        let sides: Vec<Vec<&str>> = now.proposals[0].teams.iter().map(|t| ids(t)).collect();
        assert_eq!(
            sides,
            [["a"], ["b"], ["c"], ["d"], ["g"]],
            "the duo would overflow five players, so g completes the lobby"
        );

        let two: Vec<Ticket> = ["a", "b"].iter().map(|id| solo(id)).collect();
        assert!(
            plan(&two, &rules, T0 + Duration::from_secs(50))
                .proposals
                .is_empty(),
            "never below min"
        );
    }

    #[test]
    fn skill_window_widens_with_the_anchors_wait() {
        let mut rules = teams(2, 1);
        rules.skill = SkillWindow {
            start: 100,
            widen_per_sec: 50,
            max: 1_000,
        };
        let tickets = vec![
            ticket("low", &["low"], Some(1_000), None),
            ticket("high", &["high"], Some(1_300), None),
        ];
        assert!(
            plan(&tickets, &rules, T0 + Duration::from_secs(3))
                .proposals
                .is_empty()
        );
        let at4 = plan(&tickets, &rules, T0 + Duration::from_secs(4));
        assert_eq!(at4.proposals.len(), 1);
    }

    #[test]
    fn closest_skill_is_preferred() {
        let mut rules = teams(2, 1);
        rules.skill = SkillWindow {
            start: 500,
            widen_per_sec: 0,
            max: 500,
        };
        let tickets = vec![
            ticket("anchor", &["x"], Some(1_000), None),
            ticket("far", &["y"], Some(1_400), None),
            ticket("near", &["z"], Some(1_050), None),
        ];
        let plan = plan(&tickets, &rules, T0);
        let mut chosen: Vec<&str> = plan.proposals[0]
            .ticket_ids()
            .map(TicketId::as_str)
            .collect();
        chosen.sort();
        assert_eq!(chosen, ["anchor", "near"]);
    }

    #[test]
    fn spread_stays_within_the_window() {
        let mut rules = teams(2, 2);
        rules.skill = SkillWindow {
            start: 100,
            widen_per_sec: 0,
            max: 100,
        };
        // 1000 anchors; 920 and 1080 are each within 100 of it but 160 apart.
        let tickets = vec![
            ticket("a", &["a"], Some(1_000), None),
            ticket("b", &["b"], Some(920), None),
            ticket("c", &["c"], Some(1_080), None),
            ticket("d", &["d"], Some(1_010), None),
        ];
        assert!(plan(&tickets, &rules, T0).proposals.is_empty());
    }

    #[test]
    fn region_preference_then_any_region() {
        let rules = teams(2, 1); // region_wait 10 s
        let eu = ticket("eu", &["a"], None, Some("eu"));
        let us = ticket_at("us", &["b"], None, Some("us"), T0 + Duration::from_secs(1));
        let both = vec![eu.clone(), us.clone()];
        assert!(
            plan(&both, &rules, T0 + Duration::from_secs(5))
                .proposals
                .is_empty()
        );

        let eu2 = ticket_at("eu2", &["c"], None, Some("eu"), T0 + Duration::from_secs(2));
        let with_eu2 = plan(
            &[eu.clone(), us.clone(), eu2],
            &rules,
            T0 + Duration::from_secs(5),
        );
        assert_eq!(with_eu2.proposals.len(), 1);
        assert_eq!(with_eu2.proposals[0].region.as_deref(), Some("eu"));
        let chosen: Vec<&str> = with_eu2.proposals[0]
            .ticket_ids()
            .map(TicketId::as_str)
            .collect();
        assert_eq!(chosen, ["eu", "eu2"]);

        // Both have waited 10+ s: they accept any region; the older ticket's region wins.
        let relaxed = plan(&both, &rules, T0 + Duration::from_secs(11));
        assert_eq!(relaxed.proposals.len(), 1);
        assert_eq!(relaxed.proposals[0].region.as_deref(), Some("eu"));
    }

    #[test]
    fn a_relaxed_anchor_still_cannot_pull_a_firm_ticket_out_of_its_region() {
        let rules = teams(2, 1);
        let eu = ticket("eu", &["a"], None, Some("eu"));
        let us = ticket_at("us", &["b"], None, Some("us"), T0 + Duration::from_secs(5));
        // eu has waited 11 s (relaxed); us only 6 s: the match must be in us.
        let plan = plan(&[eu, us], &rules, T0 + Duration::from_secs(11));
        assert_eq!(plan.proposals.len(), 1);
        assert_eq!(plan.proposals[0].region.as_deref(), Some("us"));
    }

    #[test]
    fn an_anchor_without_region_tries_another_region() {
        let rules = teams(2, 2);
        // "any" takes "us" from the first firm candidate, but only one us ticket exists;
        // the retry excludes us and fills from eu.
        let at = |s: u64| T0 + Duration::from_secs(s);
        let tickets = vec![
            ticket_at("any", &["a"], None, None, at(0)),
            ticket_at("us", &["b"], None, Some("us"), at(1)),
            ticket_at("eu1", &["c"], None, Some("eu"), at(2)),
            ticket_at("eu2", &["d"], None, Some("eu"), at(3)),
            ticket_at("eu3", &["e"], None, Some("eu"), at(4)),
        ];
        let plan = plan(&tickets, &rules, at(5));
        assert_eq!(plan.proposals.len(), 1);
        assert_eq!(plan.proposals[0].region.as_deref(), Some("eu"));
        assert!(!plan.proposals[0].ticket_ids().any(|id| id.as_str() == "us"));
    }

    #[test]
    fn timed_out_tickets_are_reported_not_matched() {
        let rules = teams(2, 1); // timeout 100 s
        let old = ticket("old", &["a"], None, None);
        let new = ticket_at("new", &["b"], None, None, T0 + Duration::from_secs(50));
        let plan = plan(&[old, new], &rules, T0 + Duration::from_secs(100));
        assert_eq!(plan.timed_out, vec![TicketId::from("old")]);
        assert!(plan.proposals.is_empty());
    }

    #[test]
    fn pack_finds_exact_fits_and_rejects_impossible_ones() {
        assert!(pack(&[3, 2, 2, 2, 1], &[0; 5], 2, 5).is_some());
        assert!(pack(&[3, 3, 2, 2], &[0; 4], 2, 5).is_some());
        assert!(pack(&[3, 3, 3, 1], &[0; 4], 2, 5).is_none());
        assert!(pack(&[4, 4, 1, 1], &[0; 4], 2, 5).is_some());
        assert!(pack(&[1, 1, 1], &[0; 3], 1, 2).is_none());
        let assignment = pack(&[2, 1, 1], &[0; 3], 2, 2).expect("fits");
        assert_ne!(assignment[1], assignment[0]);
        assert_eq!(assignment[1], assignment[2]);
    }

    #[test]
    fn deterministic_for_the_same_input() {
        let tickets = random_tickets(&mut StdRng::seed_from_u64(7), 300);
        let rules = teams(2, 3);
        let now = T0 + Duration::from_secs(30);
        assert_eq!(plan(&tickets, &rules, now), plan(&tickets, &rules, now));
    }

    fn random_tickets(rng: &mut StdRng, n: usize) -> Vec<Ticket> {
        let regions = ["eu", "us", "ap"];
        (0..n)
            .map(|i| {
                let size = [1, 1, 1, 1, 2, 2, 3][rng.gen_range(0..7)];
                let players: Vec<String> = (0..size).map(|k| format!("p{i}-{k}")).collect();
                let players: Vec<&str> = players.iter().map(String::as_str).collect();
                let mmr = rng.gen_bool(0.8).then(|| rng.gen_range(500..2_500));
                let region = rng.gen_bool(0.5).then(|| regions[rng.gen_range(0..3)]);
                let at = T0 + Duration::from_millis(rng.gen_range(0..60_000));
                ticket_at(&format!("t{i}"), &players, mmr, region, at)
            })
            .collect()
    }

    /// Invariants over many random queues: disjoint proposals, whole parties, exact team sizes,
    /// spread within the anchor's window, firm regions respected.
    #[test]
    fn random_queues_keep_every_invariant() {
        let mut rng = StdRng::seed_from_u64(42);
        let formats = [
            Format::Teams {
                teams: 2,
                team_size: 1,
            },
            Format::Teams {
                teams: 2,
                team_size: 2,
            },
            Format::Teams {
                teams: 2,
                team_size: 5,
            },
            Format::Teams {
                teams: 4,
                team_size: 3,
            },
            Format::FreeForAll {
                min_players: 4,
                max_players: 12,
                fill_after: Duration::from_secs(20),
            },
        ];
        let mut formed = 0;
        for round in 0..100 {
            let n = rng.gen_range(0..200);
            let tickets = random_tickets(&mut rng, n);
            let rules = GameMode {
                skill: SkillWindow {
                    start: 50,
                    widen_per_sec: 20,
                    max: 800,
                },
                region_wait: Duration::from_secs(30),
                ..mode(formats[round % formats.len()].clone())
            };
            let now = T0 + Duration::from_millis(rng.gen_range(60_000..100_000));
            let plan = plan(&tickets, &rules, now);
            let by_id: BTreeMap<&TicketId, &Ticket> = tickets.iter().map(|t| (&t.id, t)).collect();
            let mut seen = HashSet::new();
            for p in &plan.proposals {
                formed += 1;
                let members: Vec<&Ticket> = p.ticket_ids().map(|id| by_id[id]).collect();
                for t in &members {
                    assert!(seen.insert(&t.id), "ticket {} in two proposals", t.id);
                    assert!(t.enqueued_at <= now);
                }
                let sizes: Vec<usize> = p
                    .teams
                    .iter()
                    .map(|team| team.iter().map(|id| by_id[id].party.size()).sum())
                    .collect();
                match rules.format {
                    Format::Teams { teams, team_size } => {
                        assert_eq!(p.teams.len(), teams as usize);
                        assert!(sizes.iter().all(|&s| s == team_size as usize), "{sizes:?}");
                    }
                    Format::FreeForAll {
                        min_players,
                        max_players,
                        ..
                    } => {
                        assert!(p.teams.iter().all(|team| team.len() == 1));
                        let total: usize = sizes.iter().sum();
                        assert!((min_players as usize..=max_players as usize).contains(&total));
                    }
                }
                let oldest = members
                    .iter()
                    .map(|t| t.enqueued_at)
                    .min()
                    .expect("non-empty");
                let window = rules.skill.at(now.since(oldest));
                let mmrs: Vec<u32> = members.iter().filter_map(|t| t.attributes.mmr).collect();
                if let (Some(lo), Some(hi)) = (mmrs.iter().min(), mmrs.iter().max()) {
                    assert!(hi - lo <= window, "spread {} > window {window}", hi - lo);
                }
                for t in &members {
                    let waited = now.since(t.enqueued_at);
                    if let Some(r) = &t.attributes.region {
                        if waited < rules.region_wait {
                            assert_eq!(p.region.as_ref(), Some(r), "firm region ignored");
                        }
                    }
                    assert!(waited < rules.timeout);
                }
            }
            for id in &plan.timed_out {
                assert!(!seen.contains(id));
            }
        }
        assert!(
            formed > 100,
            "the random queues should form matches: {formed}"
        );
    }
}
