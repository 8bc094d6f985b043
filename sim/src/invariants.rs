//! The invariant check run after every run, over what players recorded:
//! - every virtual player ended in exactly one final outcome;
//! - no player was sent two different servers (two `found`s, or a `found` that disagrees with
//!   the matchmaker's answer);
//! - no dedicated server was claimed for two sessions at once: a server may serve a later
//!   session only after the sim released the earlier one. A session starts, at the latest, when
//!   its first player heard of it (a `found` or the 200), and is free, at the earliest, when the
//!   sim sent its release; a server freed by someone else (the matchmaker, another shard) or
//!   by a delete whose answer was lost cannot be timed and is not held against it;
//! - players of one match (one session) got the same server;
//! - sampled DSMC checks agreed with what players were told;
//! - a party was never split: the matched members of one search (one arrival) are all in one
//!   session. (A split across the teams of one session is caught by the flow, which sees the
//!   teams: the match2 flow records it as a `lobby` protocol error.)
//!
//! Pure: records in, every violation out. Knows nothing about how records were produced.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::outcome::{Outcome, PlayerRecord, Release, ServerAddr};

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Violation {
    /// A player that started has no final outcome.
    NoOutcome { arrival: u64, member: u16 },
    /// A player has more than one final outcome.
    SeveralOutcomes {
        arrival: u64,
        member: u16,
        outcomes: Vec<Outcome>,
    },
    /// An outcome for a player that never started.
    UnknownPlayer { arrival: u64, member: u16 },
    /// One player was told about different servers.
    TwoServers {
        arrival: u64,
        member: u16,
        servers: Vec<ServerAddr>,
    },
    /// Players of one session were told different servers.
    MatchSplit {
        session: Arc<str>,
        servers: Vec<ServerAddr>,
    },
    /// One server held two sessions at once.
    ServerReused {
        server: ServerAddr,
        first: Arc<str>,
        second: Arc<str>,
    },
    /// DSMC reported another server for the session than players were told.
    DsmcMismatch {
        session: Arc<str>,
        told: ServerAddr,
        dsmc: ServerAddr,
    },
    /// The matched members of one party's search were put in different sessions.
    PartySplit {
        arrival: u64,
        sessions: Vec<Arc<str>>,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |s: &[ServerAddr]| {
            s.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Violation::NoOutcome { arrival, member } => {
                write!(f, "player {arrival}/{member} ended with no outcome")
            }
            Violation::SeveralOutcomes {
                arrival,
                member,
                outcomes,
            } => {
                let names: Vec<_> = outcomes.iter().map(|o| o.as_str()).collect();
                write!(
                    f,
                    "player {arrival}/{member} ended {} times: {}",
                    outcomes.len(),
                    names.join(", ")
                )
            }
            Violation::UnknownPlayer { arrival, member } => {
                write!(
                    f,
                    "outcome for player {arrival}/{member}, which never started"
                )
            }
            Violation::TwoServers {
                arrival,
                member,
                servers,
            } => write!(
                f,
                "player {arrival}/{member} was sent different servers: {}",
                list(servers)
            ),
            Violation::MatchSplit { session, servers } => write!(
                f,
                "players of session {session} were sent different servers: {}",
                list(servers)
            ),
            Violation::ServerReused {
                server,
                first,
                second,
            } => write!(
                f,
                "server {server} was given to session {second} while session {first} still held it"
            ),
            Violation::DsmcMismatch {
                session,
                told,
                dsmc,
            } => write!(
                f,
                "session {session}: players were sent {told} but DSMC reports {dsmc}"
            ),
            Violation::PartySplit { arrival, sessions } => write!(
                f,
                "party {arrival} was split across sessions: {}",
                sessions
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// The result of the check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InvariantReport {
    /// Players checked.
    pub players: u64,
    /// Sessions checked.
    pub sessions: u64,
    pub violations: Vec<Violation>,
}

impl InvariantReport {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Checks `records` against the players that `started` (`(arrival, party size)`), with the
/// servers the sim `released`.
pub fn check(
    started: &[(u64, u16)],
    records: &[PlayerRecord],
    releases: &[Release],
) -> InvariantReport {
    let mut violations = Vec::new();

    // Exactly one outcome per started player.
    let mut outcomes: HashMap<(u64, u16), Vec<Outcome>> = HashMap::with_capacity(records.len());
    for r in records {
        outcomes
            .entry((r.arrival, r.member))
            .or_default()
            .push(r.outcome);
    }
    let mut expected: BTreeSet<(u64, u16)> = BTreeSet::new();
    for &(arrival, size) in started {
        for member in 0..size {
            expected.insert((arrival, member));
        }
    }
    for key in &expected {
        match outcomes.get(key) {
            None => violations.push(Violation::NoOutcome {
                arrival: key.0,
                member: key.1,
            }),
            Some(list) if list.len() > 1 => violations.push(Violation::SeveralOutcomes {
                arrival: key.0,
                member: key.1,
                outcomes: list.clone(),
            }),
            Some(_) => {}
        }
    }
    let mut unknown: Vec<_> = outcomes
        .keys()
        .filter(|k| !expected.contains(k))
        .copied()
        .collect();
    unknown.sort_unstable();
    for (arrival, member) in unknown {
        violations.push(Violation::UnknownPlayer { arrival, member });
    }

    // One server per player, per session; DSMC agrees.
    struct SessionUse {
        servers: BTreeSet<ServerAddr>,
        start_ms: Option<u64>,
    }
    let mut sessions: BTreeMap<Arc<str>, SessionUse> = BTreeMap::new();
    let mut dsmc_reported: BTreeSet<Arc<str>> = BTreeSet::new();
    for r in records {
        let mut told: BTreeSet<ServerAddr> = r.found.iter().cloned().collect();
        told.extend(r.answered.iter().cloned());
        if told.len() > 1 {
            violations.push(Violation::TwoServers {
                arrival: r.arrival,
                member: r.member,
                servers: told.iter().cloned().collect(),
            });
        }
        if let Some(session) = &r.session {
            let entry = sessions.entry(Arc::clone(session)).or_insert(SessionUse {
                servers: BTreeSet::new(),
                start_ms: None,
            });
            entry.servers.extend(told.iter().cloned());
            // The session held its server by the time anyone heard of it.
            for at in [r.found_at_ms, r.answered_at_ms].into_iter().flatten() {
                entry.start_ms = Some(entry.start_ms.map_or(at, |s| s.min(at)));
            }
            if let (Some(dsmc), Some(first)) = (&r.dsmc_server, told.iter().next()) {
                if dsmc != first && dsmc_reported.insert(Arc::clone(session)) {
                    violations.push(Violation::DsmcMismatch {
                        session: Arc::clone(session),
                        told: first.clone(),
                        dsmc: dsmc.clone(),
                    });
                }
            }
        }
    }
    for (session, usage) in &sessions {
        if usage.servers.len() > 1 {
            violations.push(Violation::MatchSplit {
                session: Arc::clone(session),
                servers: usage.servers.iter().cloned().collect(),
            });
        }
    }

    // A server holds one session at a time: the next may start only after a release.
    let released: HashMap<&str, u64> = releases.iter().map(|r| (&*r.session, r.at_ms)).collect();
    let mut by_server: BTreeMap<&ServerAddr, Vec<(u64, &Arc<str>)>> = BTreeMap::new();
    for (session, usage) in &sessions {
        // A session nobody heard of at a known time cannot be ordered; skip it.
        if let (1, Some(start)) = (usage.servers.len(), usage.start_ms) {
            if let Some(server) = usage.servers.iter().next() {
                by_server.entry(server).or_default().push((start, session));
            }
        }
    }
    for (server, mut uses) in by_server {
        uses.sort();
        for pair in uses.windows(2) {
            let (_, first) = pair[0];
            let (second_start, second) = pair[1];
            let free = released.get(&**first).is_some_and(|&at| at <= second_start);
            if !free {
                violations.push(Violation::ServerReused {
                    server: server.clone(),
                    first: Arc::clone(first),
                    second: Arc::clone(second),
                });
            }
        }
    }

    // A party stays together: its matched members share one session.
    let mut party_sessions: BTreeMap<u64, BTreeSet<Arc<str>>> = BTreeMap::new();
    for r in records {
        if let (Outcome::Matched, Some(session)) = (r.outcome, &r.session) {
            party_sessions
                .entry(r.arrival)
                .or_default()
                .insert(Arc::clone(session));
        }
    }
    for (arrival, set) in party_sessions {
        if set.len() > 1 {
            violations.push(Violation::PartySplit {
                arrival,
                sessions: set.into_iter().collect(),
            });
        }
    }

    InvariantReport {
        players: expected.len() as u64,
        sessions: sessions.len() as u64,
        violations,
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;
    use crate::outcome::{Endpoint, ErrorKind};

    fn server(port: u16) -> ServerAddr {
        ServerAddr {
            ip: Arc::from("127.0.0.1"),
            port,
        }
    }

    fn matched(arrival: u64, session: &str, port: u16, at: u64) -> PlayerRecord {
        PlayerRecord {
            arrival,
            member: 0,
            outcome: Outcome::Matched,
            error: None,
            session: Some(Arc::from(session)),
            answered: Some(server(port)),
            found: vec![server(port)],
            found_at_ms: Some(at),
            answered_at_ms: Some(at),
            dsmc_server: None,
        }
    }

    fn errored(arrival: u64, member: u16) -> PlayerRecord {
        PlayerRecord {
            arrival,
            member,
            outcome: Outcome::Error,
            error: Some((Endpoint::Login, ErrorKind::Transport)),
            session: None,
            answered: None,
            found: Vec::new(),
            found_at_ms: None,
            answered_at_ms: None,
            dsmc_server: None,
        }
    }

    #[test]
    fn a_clean_run_passes() {
        let records = vec![
            matched(1, "s1", 7777, 100),
            matched(2, "s1", 7777, 110),
            matched(3, "s2", 7777, 5000),
            matched(4, "s2", 7777, 5001),
            errored(5, 0),
        ];
        let releases = vec![Release {
            session: Arc::from("s1"),
            at_ms: 4000,
        }];
        let report = check(
            &[(1, 1), (2, 1), (3, 1), (4, 1), (5, 1)],
            &records,
            &releases,
        );
        assert_eq!(report.violations, Vec::new());
        assert_eq!((report.players, report.sessions), (5, 2));
        assert!(report.passed());
    }

    #[test]
    fn every_kind_of_violation_is_found() {
        let mut two_found = matched(3, "s3", 7003, 10);
        two_found.found.push(server(7004));
        let mut dsmc = matched(6, "s6", 7006, 10);
        dsmc.dsmc_server = Some(server(9999));
        let records = vec![
            // 1: no outcome. 2: two outcomes.
            errored(2, 0),
            errored(2, 0),
            two_found,
            // s4: split between two servers.
            matched(4, "s4", 7040, 10),
            matched(5, "s4", 7041, 10),
            dsmc,
            // s7 and s8 on one server, s7 never released.
            matched(7, "s7", 7070, 10),
            matched(8, "s8", 7070, 20),
            // Never started.
            errored(99, 0),
        ];
        let started = [
            (1, 1),
            (2, 1),
            (3, 1),
            (4, 1),
            (5, 1),
            (6, 1),
            (7, 1),
            (8, 1),
        ];
        let report = check(&started, &records, &[]);
        let text: Vec<String> = report.violations.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            vec![
                "player 1/0 ended with no outcome",
                "player 2/0 ended 2 times: error, error",
                "outcome for player 99/0, which never started",
                "player 3/0 was sent different servers: 127.0.0.1:7003, 127.0.0.1:7004",
                "session s6: players were sent 127.0.0.1:7006 but DSMC reports 127.0.0.1:9999",
                "players of session s3 were sent different servers: 127.0.0.1:7003, 127.0.0.1:7004",
                "players of session s4 were sent different servers: 127.0.0.1:7040, 127.0.0.1:7041",
                "server 127.0.0.1:7070 was given to session s8 while session s7 still held it",
            ]
        );
        assert!(!report.passed());
    }

    #[test]
    fn a_party_split_across_sessions_is_a_violation() {
        let mut second = matched(1, "s2", 7002, 10);
        second.member = 1;
        let mut third = matched(1, "s1", 7001, 10);
        third.member = 2;
        let records = vec![matched(1, "s1", 7001, 10), second, third];
        let report = check(&[(1, 3)], &records, &[]);
        assert_eq!(
            report.violations,
            vec![Violation::PartySplit {
                arrival: 1,
                sessions: vec![Arc::from("s1"), Arc::from("s2")],
            }]
        );
        assert_eq!(
            report.violations[0].to_string(),
            "party 1 was split across sessions: s1, s2"
        );
        // Together, the same party passes.
        let mut together = records.clone();
        together[1] = matched(1, "s1", 7001, 10);
        together[1].member = 1;
        assert!(check(&[(1, 3)], &together, &[]).passed());
    }

    #[test]
    fn a_release_after_the_next_session_started_is_still_a_reuse() {
        let records = vec![matched(1, "a", 7000, 100), matched(2, "b", 7000, 200)];
        let late = [Release {
            session: Arc::from("a"),
            at_ms: 300,
        }];
        let report = check(&[(1, 1), (2, 1)], &records, &late);
        assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
    }

    #[test]
    fn a_release_at_an_unknown_moment_frees_the_server() {
        // The sim's delete of "a" failed (its answer lost, or another shard deleted "a"): the
        // release is recorded at 0, and "b" on the same server is not a reuse.
        let records = vec![matched(1, "a", 7000, 100), matched(2, "b", 7000, 200)];
        let unknown = [Release {
            session: Arc::from("a"),
            at_ms: 0,
        }];
        let report = check(&[(1, 1), (2, 1)], &records, &unknown);
        assert_eq!(report.violations, Vec::new());
        // Without any release it is one.
        let report = check(&[(1, 1), (2, 1)], &records, &[]);
        assert_eq!(report.violations.len(), 1, "{:?}", report.violations);
    }
}
