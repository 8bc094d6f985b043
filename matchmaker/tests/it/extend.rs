//! The match function over gRPC: a real tonic client against `extend::spawn_grpc` on
//! 127.0.0.1 (ephemeral port). Time is an input: tickets carry their `CreatedAt`, and the
//! service reads a manual clock, so widening, region waits and timeouts need no sleeping.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream;
use matchmaker::clock::{ManualClock, UnixMillis};
use matchmaker::extend::proto::match_function_client::MatchFunctionClient;
use matchmaker::extend::proto::{
    self, BackfillMakeMatchesRequest, BackfillProposal, BackfillTicket, EnrichTicketRequest,
    GetStatCodesRequest, MakeMatchesRequest, Match, Rules, Ticket, ValidateTicketRequest,
    backfill_make_matches_request, make_matches_request,
};
use matchmaker::extend::{GrpcHandle, INVALID_REASON_KEY, MatchFunctionService, spawn_grpc};
use prost_types::value::Kind;
use prost_types::{Struct, Timestamp, Value};
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::support::T0;

/// A match function on a loopback port whose clock reads `T0` until advanced.
struct Fixture {
    server: GrpcHandle,
    clock: Arc<ManualClock>,
    client: MatchFunctionClient<Channel>,
}

async fn start() -> Fixture {
    let clock = Arc::new(ManualClock::new(T0));
    let server = spawn_grpc(MatchFunctionService::new(clock.clone()))
        .await
        .expect("spawn");
    let client = MatchFunctionClient::connect(server.url())
        .await
        .expect("connect");
    Fixture {
        server,
        clock,
        client,
    }
}

fn rules(json: &str) -> Option<Rules> {
    Some(Rules {
        json: json.to_owned(),
    })
}

fn num(n: f64) -> Value {
    Value {
        kind: Some(Kind::NumberValue(n)),
    }
}

fn at(t: UnixMillis) -> Timestamp {
    Timestamp {
        seconds: i64::try_from(t.0 / 1000).expect("secs"),
        nanos: i32::try_from((t.0 % 1000) * 1_000_000).expect("nanos"),
    }
}

/// A ticket builder: players with an optional `mmr`, created `waited` before `T0`.
#[derive(Clone)]
struct T(Ticket);

fn ticket(id: &str, players: &[(&str, Option<f64>)]) -> T {
    T(Ticket {
        ticket_id: id.to_owned(),
        match_pool: "pool".to_owned(),
        created_at: Some(at(T0)),
        players: players
            .iter()
            .map(|(p, mmr)| proto::ticket::PlayerData {
                player_id: (*p).to_owned(),
                attributes: mmr.map(|m| Struct {
                    fields: BTreeMap::from([("mmr".to_owned(), num(m))]),
                }),
            })
            .collect(),
        namespace: fakes::seed::builtin::NAMESPACE.to_owned(),
        ..Default::default()
    })
}

impl T {
    fn waited(mut self, secs: u64) -> Self {
        self.0.created_at = Some(at(UnixMillis(T0.0 - secs * 1000)));
        self
    }
    fn party(mut self, id: &str) -> Self {
        self.0.party_session_id = id.to_owned();
        self
    }
    fn latency(mut self, region: &str, ms: i64) -> Self {
        self.0.latencies.insert(region.to_owned(), ms);
        self
    }
    fn excluding(mut self, session: &str) -> Self {
        self.0.excluded_sessions.push(session.to_owned());
        self
    }
    fn pool(mut self, pool: &str) -> Self {
        self.0.match_pool = pool.to_owned();
        self
    }
}

fn solo(id: &str, mmr: f64) -> T {
    ticket(id, &[(id, Some(mmr))])
}

/// One `MakeMatches` tick: parameters, the tickets, half-close; every match or the status.
async fn make(f: &mut Fixture, rules_json: &str, tickets: &[T]) -> Result<Vec<Match>, Status> {
    let mut messages = vec![MakeMatchesRequest {
        request_type: Some(make_matches_request::RequestType::Parameters(
            make_matches_request::MakeMatchesParameters {
                scope: None,
                rules: rules(rules_json),
                tick_id: 1,
            },
        )),
    }];
    messages.extend(tickets.iter().map(|t| MakeMatchesRequest {
        request_type: Some(make_matches_request::RequestType::Ticket(t.0.clone())),
    }));
    raw_make(f, messages).await
}

async fn raw_make(
    f: &mut Fixture,
    messages: Vec<MakeMatchesRequest>,
) -> Result<Vec<Match>, Status> {
    let mut responses = f
        .client
        .make_matches(stream::iter(messages))
        .await?
        .into_inner();
    let mut matches = Vec::new();
    while let Some(r) = responses.message().await? {
        matches.push(r.r#match.expect("a match"));
    }
    Ok(matches)
}

fn ticket_ids(m: &Match) -> Vec<&str> {
    m.tickets.iter().map(|t| t.ticket_id.as_str()).collect()
}

fn team_users(m: &Match) -> Vec<Vec<&str>> {
    m.teams
        .iter()
        .map(|t| t.user_ids.iter().map(String::as_str).collect())
        .collect()
}

fn assert_invalid_argument(result: Result<impl std::fmt::Debug, Status>, needle: &str) {
    let status = result.expect_err("INVALID_ARGUMENT expected");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains(needle),
        "{:?} should mention {needle:?}",
        status.message()
    );
}

async fn validate(f: &mut Fixture, rules_json: &str, t: &T) -> (bool, Option<String>) {
    let response = f
        .client
        .validate_ticket(ValidateTicketRequest {
            ticket: Some(t.0.clone()),
            rules: rules(rules_json),
        })
        .await
        .expect("validate");
    let reason = response
        .metadata()
        .get(INVALID_REASON_KEY)
        .map(|v| v.to_str().expect("ascii").to_owned());
    (response.into_inner().valid_ticket, reason)
}

#[tokio::test]
async fn one_v_one_pairs_the_oldest_tickets_and_names_its_stat_code() {
    let mut f = start().await;
    let codes = f
        .client
        .get_stat_codes(GetStatCodesRequest { rules: rules("{}") })
        .await
        .expect("stat codes")
        .into_inner()
        .codes;
    assert_eq!(codes, vec!["mmr"]);
    let codes = f
        .client
        .get_stat_codes(GetStatCodesRequest {
            rules: rules(
                r#"{"matching_rule":[{"attribute":"elo","criteria":"distance","reference":200}]}"#,
            ),
        })
        .await
        .expect("stat codes")
        .into_inner()
        .codes;
    assert_eq!(codes, vec!["elo"]);

    let tickets = [
        solo("a", 1000.0).waited(3),
        solo("b", 1050.0).waited(2),
        solo("c", 1020.0).waited(1),
    ];
    let matches = make(&mut f, "{}", &tickets).await.expect("tick");
    assert_eq!(matches.len(), 1, "{matches:?}");
    let m = &matches[0];
    // a anchors (oldest) and takes the closest skill: c.
    let mut ids = ticket_ids(m);
    ids.sort_unstable();
    assert_eq!(ids, ["a", "c"]);
    assert_eq!(m.teams.len(), 2);
    assert!(
        m.teams
            .iter()
            .all(|t| t.user_ids.len() == 1 && t.team_id.len() == 32)
    );
    assert!(!m.backfill);
}

#[tokio::test]
async fn team_modes_keep_parties_whole_on_one_team() {
    let mut f = start().await;
    let rules_json = r#"{"alliance":{"min_number":2,"max_number":2,"player_min_number":3,"player_max_number":3},
                         "mmr_window":{"start":500,"widen_per_sec":0,"max":500}}"#;
    let tickets = [
        ticket(
            "p3",
            &[
                ("a1", Some(1000.0)),
                ("a2", Some(1000.0)),
                ("a3", Some(1000.0)),
            ],
        )
        .party("party-a"),
        ticket("p2", &[("b1", Some(1100.0)), ("b2", Some(1100.0))]).party("party-b"),
        solo("s1", 1050.0),
        // A party of four never fits a team of three: refused, never split.
        ticket(
            "p4",
            &[("c1", None), ("c2", None), ("c3", None), ("c4", None)],
        )
        .party("party-c"),
    ];
    let matches = make(&mut f, rules_json, &tickets).await.expect("tick");
    assert_eq!(matches.len(), 1, "{matches:?}");
    let m = &matches[0];
    let teams = team_users(m);
    assert_eq!(teams.len(), 2);
    assert!(teams.iter().all(|t| t.len() == 3), "{teams:?}");
    let team_of = |user: &str| {
        teams
            .iter()
            .position(|t| t.contains(&user))
            .expect("placed")
    };
    assert!(
        ["a1", "a2", "a3"]
            .iter()
            .all(|u| team_of(u) == team_of("a1"))
    );
    assert_eq!(team_of("b1"), team_of("b2"));
    assert_eq!(team_of("b1"), team_of("s1"));
    assert_ne!(team_of("a1"), team_of("b1"));
    let parties: HashMap<&str, usize> = m
        .teams
        .iter()
        .flat_map(|t| {
            t.parties
                .iter()
                .map(|p| (p.party_id.as_str(), p.user_ids.len()))
        })
        .collect();
    assert_eq!(parties, HashMap::from([("party-a", 3), ("party-b", 2)]));
    assert!(!ticket_ids(m).contains(&"p4"));

    // Two parties of two and a solo are five players: 3v3 needs six, and no party is split
    // to make do.
    let tickets = [
        ticket("q1", &[("d1", None), ("d2", None)]).party("pd"),
        ticket("q2", &[("e1", None), ("e2", None)]).party("pe"),
        solo("s2", 1000.0),
    ];
    let matches = make(&mut f, rules_json, &tickets).await.expect("tick");
    assert!(matches.is_empty(), "5 players cannot fill 3v3: {matches:?}");
}

#[tokio::test]
async fn the_skill_window_widens_with_the_time_tickets_have_waited() {
    let mut f = start().await;
    let rules_json = r#"{"mmr_window":{"start":100,"widen_per_sec":10,"max":1000}}"#;
    // 300 apart: too far for a fresh window of 100.
    let fresh = [solo("lo", 1000.0), solo("hi", 1300.0)];
    assert!(
        make(&mut f, rules_json, &fresh)
            .await
            .expect("tick")
            .is_empty()
    );
    // After 15 s the window is 250: still too narrow.
    let waited = [solo("lo", 1000.0).waited(15), solo("hi", 1300.0).waited(15)];
    assert!(
        make(&mut f, rules_json, &waited)
            .await
            .expect("tick")
            .is_empty()
    );
    // The same tickets a later tick: the clock moved 20 s on (35 s waited, window 450).
    f.clock.advance(Duration::from_secs(20));
    let matches = make(&mut f, rules_json, &waited).await.expect("tick");
    assert_eq!(matches.len(), 1);
    // The oldest ticket anchors and its window counts: 400 apart is beyond the newer ticket's
    // 300 (20 s) but within the older one's 450 (35 s).
    let mixed = [solo("old", 1000.0).waited(15), solo("new", 1400.0)];
    assert_eq!(
        make(&mut f, rules_json, &mixed).await.expect("tick").len(),
        1
    );
}

#[tokio::test]
async fn regions_follow_latency_within_the_limit_and_widen_after_the_wait() {
    let mut f = start().await;
    let rules_json = r#"{"region_latency_max_ms":100,"region_wait_secs":10}"#;
    let tickets = [
        solo("a", 1000.0)
            .latency("eu-west", 30)
            .latency("us-east", 150),
        solo("b", 1000.0).latency("us-east", 20),
        solo("c", 1000.0)
            .latency("eu-west", 40)
            .latency("us-east", 90),
    ];
    let matches = make(&mut f, rules_json, &tickets).await.expect("tick");
    assert_eq!(matches.len(), 1, "{matches:?}");
    let mut ids = ticket_ids(&matches[0]);
    ids.sort_unstable();
    assert_eq!(
        ids,
        ["a", "c"],
        "a and c prefer eu-west; b insists on us-east"
    );
    // eu-west first; us-east is out: a reported it above the limit.
    assert_eq!(matches[0].region_preferences, ["eu-west"]);

    // After the region wait a ticket accepts its other regions, never one above the limit.
    let tickets = [
        solo("d", 1000.0).latency("eu-west", 20),
        solo("e", 1000.0)
            .latency("us-east", 30)
            .latency("eu-west", 300)
            .waited(60),
    ];
    assert!(
        make(&mut f, rules_json, &tickets)
            .await
            .expect("tick")
            .is_empty()
    );
    let tickets = [
        solo("d", 1000.0).latency("eu-west", 20),
        solo("e", 1000.0)
            .latency("us-east", 30)
            .latency("eu-west", 80)
            .waited(60),
    ];
    let matches = make(&mut f, rules_json, &tickets).await.expect("tick");
    assert_eq!(matches.len(), 1);
    assert_eq!(matches[0].region_preferences[0], "eu-west");

    // A ticket past its region wait still plays at home first: the closer skill across the
    // ocean does not cost it the partner in its own region.
    let tickets = [
        solo("x", 1000.0).latency("eu-west", 20).waited(60),
        solo("y", 1000.0).latency("us-east", 20),
        solo("z", 1090.0).latency("eu-west", 25),
    ];
    let matches = make(&mut f, rules_json, &tickets).await.expect("tick");
    assert_eq!(matches.len(), 1, "{matches:?}");
    let mut ids = ticket_ids(&matches[0]);
    ids.sort_unstable();
    assert_eq!(ids, ["x", "z"]);

    // A ticket with no region within the limit can never match: ValidateTicket says why.
    let far = solo("far", 1000.0).latency("ap-south", 250);
    let (valid, reason) = validate(&mut f, rules_json, &far).await;
    assert!(!valid);
    let reason = reason.expect("a reason");
    assert!(
        reason.contains("region_latency_max_ms 100") && reason.contains("ap-south"),
        "{reason}"
    );
}

#[tokio::test]
async fn invalid_tickets_are_refused_with_a_reason_and_left_out_of_matches() {
    let mut f = start().await;
    let rules_json = "{}";
    let (valid, reason) = validate(&mut f, rules_json, &solo("ok", 1000.0)).await;
    assert!(valid);
    assert_eq!(reason, None);

    let cases = [
        (ticket("empty", &[]), "at least one member"),
        (ticket("dup", &[("x", None), ("x", None)]), "appears twice"),
        (
            ticket("big", &[("y", None), ("z", None)]).party("p"),
            "at most 1 players",
        ),
        (ticket("", &[("w", None)]), "ticket_id is empty"),
        (
            {
                let mut t = solo("nan", 0.0);
                t.0.players[0].attributes = Some(Struct {
                    fields: BTreeMap::from([(
                        "mmr".to_owned(),
                        Value {
                            kind: Some(Kind::StringValue("high".into())),
                        },
                    )]),
                });
                t
            },
            "players[0].attributes.mmr is the string \"high\"",
        ),
        (
            solo("old", 1000.0).waited(500),
            "past the rules' timeout of 100 s",
        ),
    ];
    for (t, needle) in &cases {
        let (valid, reason) = validate(&mut f, rules_json, t).await;
        assert!(!valid, "{needle}");
        let reason = reason.expect("a reason");
        assert!(
            reason.contains(needle),
            "{reason:?} should mention {needle:?}"
        );
    }

    let missing = f
        .client
        .validate_ticket(ValidateTicketRequest {
            ticket: None,
            rules: rules("{}"),
        })
        .await;
    assert_invalid_argument(missing, "ticket is missing");

    // In a tick the refused and the timed-out are left out; the rest still match.
    let tickets = [
        cases[1].0.clone(),
        cases[5].0.clone(),
        solo("g1", 1000.0),
        solo("g2", 1000.0),
    ];
    let matches = make(&mut f, rules_json, &tickets).await.expect("tick");
    assert_eq!(matches.len(), 1);
    let mut ids = ticket_ids(&matches[0]);
    ids.sort_unstable();
    assert_eq!(ids, ["g1", "g2"]);
}

#[tokio::test]
async fn bad_rules_and_bad_streams_are_invalid_argument_and_the_server_keeps_serving() {
    let mut f = start().await;
    for (json, needle) in [
        ("{", "rules JSON: EOF"),
        ("", "rules JSON: empty"),
        (r#"{"teamsize":2}"#, "unknown field `teamsize`"),
        (
            r#"{"alliance":{"min_number":3,"max_number":2,"player_min_number":1,"player_max_number":1}}"#,
            "max_number (2) is less than min_number (3)",
        ),
        (r#"{"alliance":{"min_number":"2"}}"#, "alliance.min_number"),
        (
            r#"{"mmr_window":{"start":500,"widen_per_sec":1,"max":100}}"#,
            "start at or below its max",
        ),
    ] {
        let result = f
            .client
            .get_stat_codes(GetStatCodesRequest { rules: rules(json) })
            .await;
        assert_invalid_argument(result, needle);
        let result = f
            .client
            .validate_ticket(ValidateTicketRequest {
                ticket: Some(solo("a", 1.0).0),
                rules: rules(json),
            })
            .await;
        assert_invalid_argument(result, needle);
        assert_invalid_argument(make(&mut f, json, &[solo("a", 1.0)]).await, needle);
    }
    let no_rules = f
        .client
        .get_stat_codes(GetStatCodesRequest { rules: None })
        .await;
    assert_invalid_argument(no_rules, "empty");

    // A stream must open with its parameters, once, and carry one pool.
    let ticket_first = vec![MakeMatchesRequest {
        request_type: Some(make_matches_request::RequestType::Ticket(solo("a", 1.0).0)),
    }];
    assert_invalid_argument(
        raw_make(&mut f, ticket_first).await,
        "first MakeMatches message",
    );
    let empty = vec![];
    assert_invalid_argument(raw_make(&mut f, empty).await, "first MakeMatches message");
    let two_pools = [solo("a", 1.0), solo("b", 1.0).pool("other")];
    assert_invalid_argument(make(&mut f, "{}", &two_pools).await, "one pool per stream");

    // Still serving.
    let matches = make(&mut f, "{}", &[solo("a", 1.0), solo("b", 1.0)])
        .await
        .expect("tick");
    assert_eq!(matches.len(), 1);
}

#[tokio::test]
async fn enrich_adds_the_tickets_skill_and_keeps_its_own() {
    let mut f = start().await;
    let t = ticket("t", &[("a", Some(1000.0)), ("b", Some(1201.0))]).party("p");
    let enriched = f
        .client
        .enrich_ticket(EnrichTicketRequest {
            ticket: Some(t.0.clone()),
            rules: rules(r#"{"teams":2,"team_size":2}"#),
        })
        .await
        .expect("enrich")
        .into_inner()
        .ticket
        .expect("ticket");
    let attrs = enriched.ticket_attributes.expect("attributes");
    assert_eq!(attrs.fields.get("mmr"), Some(&num(1101.0)));
    assert_eq!(
        enriched.players, t.0.players,
        "everything else passes through"
    );

    let mut own = t.clone();
    own.0.ticket_attributes = Some(Struct {
        fields: BTreeMap::from([("mmr".to_owned(), num(7.0))]),
    });
    let enriched = f
        .client
        .enrich_ticket(EnrichTicketRequest {
            ticket: Some(own.0.clone()),
            rules: rules("{}"),
        })
        .await
        .expect("enrich")
        .into_inner()
        .ticket
        .expect("ticket");
    assert_eq!(enriched, own.0);
}

#[tokio::test]
async fn timeouts_and_free_for_all_fill_follow_the_ticket_age() {
    let mut f = start().await;
    let rules_json = r#"{"free_for_all":{"min_players":3,"max_players":5,"fill_after_secs":10},
                         "timeout_secs":60,"auto_backfill":true}"#;
    let fresh = [solo("a", 1.0), solo("b", 1.0), solo("c", 1.0)];
    assert!(
        make(&mut f, rules_json, &fresh)
            .await
            .expect("tick")
            .is_empty(),
        "waits for 5"
    );
    let waited: Vec<T> = fresh.iter().cloned().map(|t| t.waited(20)).collect();
    let matches = make(&mut f, rules_json, &waited).await.expect("tick");
    assert_eq!(matches.len(), 1);
    assert_eq!(matches[0].teams.len(), 3, "one side per ticket");
    assert!(matches[0].backfill, "below max_players with auto_backfill");

    let expired: Vec<T> = fresh.iter().cloned().map(|t| t.waited(61)).collect();
    assert!(
        make(&mut f, rules_json, &expired)
            .await
            .expect("tick")
            .is_empty()
    );
}

async fn backfill(
    f: &mut Fixture,
    rules_json: &str,
    sessions: &[BackfillTicket],
    tickets: &[T],
) -> Result<Vec<BackfillProposal>, Status> {
    use backfill_make_matches_request::RequestType;
    let mut messages = vec![BackfillMakeMatchesRequest {
        request_type: Some(RequestType::Parameters(
            backfill_make_matches_request::MakeMatchesParameters {
                scope: None,
                rules: rules(rules_json),
                tick_id: 7,
            },
        )),
    }];
    messages.extend(sessions.iter().map(|s| BackfillMakeMatchesRequest {
        request_type: Some(RequestType::BackfillTicket(s.clone())),
    }));
    messages.extend(tickets.iter().map(|t| BackfillMakeMatchesRequest {
        request_type: Some(RequestType::Ticket(t.0.clone())),
    }));
    let mut responses = f
        .client
        .backfill_matches(stream::iter(messages))
        .await?
        .into_inner();
    let mut out = Vec::new();
    while let Some(r) = responses.message().await? {
        out.push(r.backfill_proposal.expect("proposal"));
    }
    Ok(out)
}

fn session(id: &str, teams: &[&[&str]], skill: f64) -> BackfillTicket {
    BackfillTicket {
        ticket_id: format!("bf-{id}"),
        match_pool: "pool".into(),
        created_at: Some(at(T0)),
        match_session_id: id.into(),
        partial_match: Some(proto::backfill_ticket::PartialMatch {
            tickets: teams
                .iter()
                .flat_map(|t| t.iter())
                .map(|u| solo(u, skill).0)
                .collect(),
            teams: teams
                .iter()
                .enumerate()
                .map(|(i, t)| proto::backfill_ticket::Team {
                    user_ids: t.iter().map(|u| (*u).to_owned()).collect(),
                    parties: vec![],
                    team_id: format!("team{i}"),
                })
                .collect(),
            region_preferences: vec![],
            match_attributes: None,
            backfill: true,
            server_name: String::new(),
            client_version: String::new(),
        }),
    }
}

#[tokio::test]
async fn backfill_fills_open_slots_by_the_same_rules() {
    let mut f = start().await;
    let rules_json =
        r#"{"teams":2,"team_size":2,"mmr_window":{"start":100,"widen_per_sec":0,"max":100}}"#;
    // Team 0 is full, team 1 has one slot.
    let s = session("sess-1", &[&["u1", "u2"], &["u3"]], 1000.0);
    let tickets = [
        ticket("pair", &[("p1", Some(1000.0)), ("p2", Some(1000.0))]).party("pp"), // no room for 2
        solo("far", 1500.0),                                                       // skill too far
        solo("no", 1000.0).excluding("sess-1"),                                    // opted out
        solo("fit", 1050.0),
        solo("next", 1000.0), // after "fit": the one slot is gone
    ];
    let proposals = backfill(&mut f, rules_json, std::slice::from_ref(&s), &tickets)
        .await
        .expect("tick");
    assert_eq!(proposals.len(), 1, "{proposals:?}");
    let p = &proposals[0];
    assert_eq!(p.backfill_ticket_id, "bf-sess-1");
    assert_eq!(p.match_session_id, "sess-1");
    let added: Vec<&str> = p
        .added_tickets
        .iter()
        .map(|t| t.ticket_id.as_str())
        .collect();
    assert_eq!(added, ["fit"]);
    let teams: Vec<(&str, Vec<&str>)> = p
        .proposed_teams
        .iter()
        .map(|t| {
            (
                t.team_id.as_str(),
                t.user_ids.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(teams[0], ("team0", vec!["u1", "u2"]));
    assert_eq!(teams[1].0, "team1");
    assert_eq!(teams[1].1.len(), 2);

    // A session missing a whole team takes a party there; each ticket joins one session only.
    let half = session("sess-2", &[&["v1"]], 1000.0);
    let half_b = session("sess-3", &[&["w1"]], 1000.0);
    let tickets = [ticket("pair", &[("p1", Some(1000.0)), ("p2", Some(1000.0))]).party("pp")];
    let proposals = backfill(&mut f, rules_json, &[half, half_b], &tickets)
        .await
        .expect("tick");
    assert_eq!(proposals.len(), 1);
    let users: HashSet<&str> = proposals[0]
        .proposed_teams
        .iter()
        .flat_map(|t| t.user_ids.iter().map(String::as_str))
        .collect();
    assert_eq!(users, HashSet::from(["v1", "p1", "p2"]));
    let pair_team = proposals[0]
        .proposed_teams
        .iter()
        .find(|t| t.user_ids.contains(&"p1".to_owned()))
        .expect("placed");
    assert_eq!(pair_team.parties.len(), 1);
    assert_eq!(pair_team.user_ids.len(), 2, "the party fills the new team");

    // Bad rules: the same clear refusal.
    assert_invalid_argument(backfill(&mut f, "[]", &[], &[]).await, "rules JSON");
}

#[tokio::test]
async fn the_health_service_reports_the_match_function_serving() {
    let f = start().await;
    let channel = Channel::from_shared(f.server.url())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "accelbyte.matchmaking.matchfunction.MatchFunction".into(),
        })
        .await
        .expect("check")
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

#[tokio::test]
async fn the_match_function_command_serves_on_the_address_it_is_given() {
    use tokio::io::{AsyncBufReadExt as _, BufReader};
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_matchmaker"))
        .args(["match-function", "--grpc-addr", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env_remove("MATCHMAKER_CONFIG")
        .env_remove("MATCHMAKER_GRPC_ADDR")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the matchmaker binary");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("read stderr") {
            if let Some((_, rest)) = line.split_once("match function listening on ") {
                let addr: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                return addr;
            }
        }
        panic!("the binary exited without announcing its address");
    })
    .await
    .expect("announced within 30 s");
    let mut client = MatchFunctionClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    let codes = client
        .get_stat_codes(GetStatCodesRequest {
            rules: rules(r#"{"skill_attribute":"rating"}"#),
        })
        .await
        .expect("stat codes")
        .into_inner()
        .codes;
    assert_eq!(codes, ["rating"]);
    child.kill().await.expect("stop");
}
