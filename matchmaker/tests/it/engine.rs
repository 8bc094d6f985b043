//! The engine end to end with a recording sink: event-driven matching per game mode, widening
//! over (paused) time, regions, timeouts, requeues, leases and shutdown. Most tests run on the
//! in-memory store under tokio's paused clock; the last one runs two engines on one Redis.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use matchmaker::clock::{Clock, SystemClock, TokioClock};
use matchmaker::config::{Format, GameMode, Modes, SkillWindow};
use matchmaker::engine::{Engine, EngineConfig, MatchSink, SubmitError};
use matchmaker::store::{CancelOutcome, MemoryStore, Store, StoreError};
use matchmaker::ticket::{
    Attributes, ClaimedMatch, MatchOutcome, NewTicket, TicketId, TicketOutcome, TicketState,
};
use tokio::time::sleep;

use crate::support::{
    Behavior, Recorded, RecordingSink, T0, TestRedis, at, eventually, next_match, party, placement,
    request,
};

fn start<K: MatchSink>(
    modes: Vec<GameMode>,
    sink: K,
    clock: Arc<TokioClock>,
    config: EngineConfig,
) -> Engine<MemoryStore, K> {
    let modes = Modes::new(modes).expect("valid modes");
    Engine::start(MemoryStore::new(), sink, modes, clock, config)
}

fn team_ids(claimed: &ClaimedMatch) -> Vec<Vec<String>> {
    claimed
        .teams
        .iter()
        .map(|team| team.iter().map(|t| t.id.to_string()).collect())
        .collect()
}

fn team_players(claimed: &ClaimedMatch) -> Vec<Vec<String>> {
    claimed
        .teams
        .iter()
        .map(|team| {
            team.iter()
                .flat_map(|t| t.party.members().iter().map(|p| p.to_string()))
                .collect()
        })
        .collect()
}

async fn wait_for_state(
    engine: &Engine<MemoryStore, RecordingSink>,
    id: &TicketId,
    what: &str,
    check: impl Fn(&TicketState) -> bool,
) {
    eventually(Duration::from_secs(120), what, || async {
        let ticket = engine.ticket(id).await.expect("get");
        ticket.is_some_and(|t| check(&t.state))
    })
    .await;
}

fn is_matched(state: &TicketState) -> bool {
    matches!(state, TicketState::Matched { .. })
}

#[tokio::test(start_paused = true)]
async fn one_v_one_forms_when_the_second_player_arrives_not_on_a_tick() {
    let clock = Arc::new(TokioClock::starting_at(T0));
    let (sink, mut rx) = RecordingSink::matching(clock.clone());
    let engine = Engine::start(
        MemoryStore::new(),
        sink,
        Modes::default(),
        clock.clone(),
        EngineConfig::default(),
    );
    sleep(Duration::from_millis(300)).await;
    let alice = engine
        .submit(request("1v1", &["alice"]))
        .await
        .expect("alice");
    sleep(Duration::from_millis(200)).await;
    assert!(rx.try_recv().is_err(), "one player makes no match");
    let bob = engine.submit(request("1v1", &["bob"])).await.expect("bob");

    let m = next_match(&mut rx, Duration::from_secs(1)).await;
    assert_eq!(m.at, at(500), "formed on bob's enqueue, between ticks");
    assert_eq!(
        team_ids(&m.claimed),
        [[alice.id.to_string()], [bob.id.to_string()]]
    );
    assert_eq!(m.claimed.game_mode, "1v1");
    wait_for_state(&engine, &alice.id, "alice is matched", is_matched).await;
    let ticket = engine.ticket(&bob.id).await.expect("get").expect("bob");
    assert_eq!(
        ticket.state,
        TicketState::Matched {
            match_id: m.claimed.id.clone(),
            placement: placement(m.claimed.id.as_str()),
        }
    );
    engine.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn two_v_two_keeps_a_party_of_two_on_one_team() {
    let clock = Arc::new(TokioClock::starting_at(T0));
    let (sink, mut rx) = RecordingSink::matching(clock.clone());
    let engine = start(
        vec![GameMode::teams("2v2", 2, 2)],
        sink,
        clock.clone(),
        EngineConfig::default(),
    );
    engine.submit(request("2v2", &["s1"])).await.expect("s1");
    let duo = engine
        .submit(request("2v2", &["p1", "p2"]))
        .await
        .expect("duo");
    assert!(rx.try_recv().is_err());
    engine.submit(request("2v2", &["s2"])).await.expect("s2");

    let m = next_match(&mut rx, Duration::from_secs(1)).await;
    assert_eq!(m.at, T0);
    let mut teams = team_players(&m.claimed);
    teams.iter_mut().for_each(|t| t.sort());
    teams.sort();
    assert_eq!(teams, [["p1", "p2"], ["s1", "s2"]]);
    let duo_team = m
        .claimed
        .teams
        .iter()
        .find(|team| team.iter().any(|t| t.id == duo.id))
        .expect("duo placed");
    assert_eq!(duo_team.len(), 1, "the duo fills its team alone");
    engine.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn five_v_five_packs_parties_without_splitting_them() {
    let clock = Arc::new(TokioClock::starting_at(T0));
    let (sink, mut rx) = RecordingSink::matching(clock.clone());
    let engine = start(
        vec![GameMode::teams("5v5", 2, 5)],
        sink,
        clock.clone(),
        EngineConfig::default(),
    );
    let parties: [&[&str]; 6] = [
        &["a1", "a2", "a3"],
        &["b1", "b2"],
        &["c1", "c2"],
        &["d1"],
        &["e1"],
        &["f1"],
    ];
    for (i, members) in parties.iter().enumerate() {
        engine
            .submit(request("5v5", members))
            .await
            .expect("submit");
        if i < parties.len() - 1 {
            assert!(rx.try_recv().is_err(), "not ten players yet");
        }
    }
    let m = next_match(&mut rx, Duration::from_secs(1)).await;
    let teams = team_players(&m.claimed);
    assert_eq!(teams.iter().map(Vec::len).collect::<Vec<_>>(), [5, 5]);
    for members in parties {
        let team_of = |p: &str| teams.iter().position(|t| t.iter().any(|x| x == p));
        let first = team_of(members[0]);
        assert!(
            members.iter().all(|p| team_of(p) == first),
            "{members:?} split"
        );
    }
    engine.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn free_for_all_starts_at_max_or_with_min_after_the_fill_wait() {
    let clock = Arc::new(TokioClock::starting_at(T0));
    let (sink, mut rx) = RecordingSink::matching(clock.clone());
    let mut ffa = GameMode::free_for_all("ffa", 3, 6);
    ffa.format = Format::FreeForAll {
        min_players: 3,
        max_players: 6,
        fill_after: Duration::from_secs(5),
    };
    let engine = start(vec![ffa], sink, clock.clone(), EngineConfig::default());
    for i in 0..4 {
        engine
            .submit(request("ffa", &[&format!("early{i}")]))
            .await
            .expect("submit");
    }
    let m = next_match(&mut rx, Duration::from_secs(30)).await;
    assert!(
        (at(5_000)..=at(6_000)).contains(&m.at),
        "four players start after the 5 s fill wait, at the next tick: {}",
        m.at
    );
    assert_eq!(m.claimed.teams.len(), 4, "one side per player");

    let before = clock.now();
    engine
        .submit(request("ffa", &["duo1", "duo2"]))
        .await
        .expect("duo");
    for i in 0..4 {
        engine
            .submit(request("ffa", &[&format!("late{i}")]))
            .await
            .expect("submit");
    }
    let full = next_match(&mut rx, Duration::from_secs(1)).await;
    assert_eq!(full.at, before, "a full lobby starts at once");
    assert_eq!(full.claimed.players().count(), 6);
    assert_eq!(full.claimed.teams.len(), 5, "the duo is one side");
    engine.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn the_skill_window_widens_with_waiting_time() {
    let clock = Arc::new(TokioClock::starting_at(T0));
    let (sink, mut rx) = RecordingSink::matching(clock.clone());
    let ranked = GameMode {
        skill: SkillWindow {
            start: 100,
            widen_per_sec: 50,
            max: 1_000,
        },
        ..GameMode::one_v_one("ranked")
    };
    let engine = start(vec![ranked], sink, clock.clone(), EngineConfig::default());
    let mut low = request("ranked", &["low"]);
    low.attributes.mmr = Some(1_000);
    let mut high = request("ranked", &["high"]);
    high.attributes.mmr = Some(1_300);
    let mut near = request("ranked", &["near"]);
    near.attributes.mmr = Some(1_080);
    engine.submit(low).await.expect("low");
    engine.submit(high).await.expect("high");

    // 300 apart: the window reaches 300 after (300 - 100) / 50 = 4 s.
    let m = next_match(&mut rx, Duration::from_secs(10)).await;
    assert_eq!(
        m.at,
        at(4_000),
        "matched on the first tick with a wide enough window"
    );
    let mut players: Vec<String> = m.claimed.players().map(|p| p.to_string()).collect();
    players.sort();
    assert_eq!(players, ["high", "low"]);

    // Two close players match at once.
    let mut low2 = request("ranked", &["low2"]);
    low2.attributes.mmr = Some(1_000);
    let before = clock.now();
    engine.submit(low2).await.expect("low2");
    engine.submit(near).await.expect("near");
    let quick = next_match(&mut rx, Duration::from_secs(1)).await;
    assert_eq!(quick.at, before);
    engine.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn region_preference_holds_then_relaxes() {
    let clock = Arc::new(TokioClock::starting_at(T0));
    let (sink, mut rx) = RecordingSink::matching(clock.clone());
    let engine = start(
        vec![GameMode::one_v_one("1v1")], // region_wait 10 s
        sink,
        clock.clone(),
        EngineConfig::default(),
    );
    let in_region = |player: &str, region: &str| {
        let mut r = request("1v1", &[player]);
        r.attributes.region = Some(region.into());
        r
    };
    engine.submit(in_region("eu1", "eu")).await.expect("eu1");
    let us = engine.submit(in_region("us1", "us")).await.expect("us1");
    sleep(Duration::from_millis(2_500)).await;
    assert!(rx.try_recv().is_err(), "eu and us do not mix yet");
    engine.submit(in_region("eu2", "eu")).await.expect("eu2");
    let eu = next_match(&mut rx, Duration::from_secs(1)).await;
    assert_eq!(eu.at, at(2_500));
    assert_eq!(eu.claimed.region.as_deref(), Some("eu"));
    let mut players: Vec<String> = eu.claimed.players().map(|p| p.to_string()).collect();
    players.sort();
    assert_eq!(players, ["eu1", "eu2"]);

    // us1 insists on us for 10 s; an ap player arriving at 3 s insists on ap until 13 s. At
    // 10 s us1 relaxes and joins the ap player in ap.
    sleep(Duration::from_millis(500)).await;
    engine.submit(in_region("ap1", "ap")).await.expect("ap1");
    let relaxed = next_match(&mut rx, Duration::from_secs(30)).await;
    assert_eq!(relaxed.at, at(10_000));
    assert_eq!(relaxed.claimed.region.as_deref(), Some("ap"));
    assert!(relaxed.claimed.tickets().any(|t| t.id == us.id));
    engine.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_lonely_ticket_times_out_and_frees_its_player() {
    let clock = Arc::new(TokioClock::starting_at(T0));
    let (sink, mut rx) = RecordingSink::matching(clock.clone());
    let quick = GameMode {
        timeout: Duration::from_secs(5),
        ..GameMode::one_v_one("1v1")
    };
    let engine = start(vec![quick], sink, clock.clone(), EngineConfig::default());
    let alone = engine
        .submit(request("1v1", &["alone"]))
        .await
        .expect("submit");
    sleep(Duration::from_millis(4_900)).await;
    let ticket = engine
        .ticket(&alone.id)
        .await
        .expect("get")
        .expect("ticket");
    assert_eq!(ticket.state, TicketState::Queued);
    wait_for_state(&engine, &alone.id, "timed out", |s| {
        *s == TicketState::TimedOut
    })
    .await;
    assert!(
        clock.now() <= at(6_000),
        "timed out on the first tick after 5 s"
    );
    assert!(rx.try_recv().is_err());
    engine
        .submit(request("1v1", &["alone"]))
        .await
        .expect("the player may queue again");
    engine.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_pipeline_requeues_with_the_original_time_then_fails() {
    let clock = Arc::new(TokioClock::starting_at(T0));
    let (sink, mut rx) = RecordingSink::new(clock.clone(), |_, _| {
        Behavior::Return(MatchOutcome::All(TicketOutcome::Requeue {
            reason: "dsmc not ready".into(),
        }))
    });
    let engine = start(
        vec![GameMode::one_v_one("1v1")], // max_attempts 3
        sink,
        clock.clone(),
        EngineConfig::default(),
    );
    let a = engine.submit(request("1v1", &["a"])).await.expect("a");
    sleep(Duration::from_millis(100)).await;
    let b = engine.submit(request("1v1", &["b"])).await.expect("b");

    for attempt in 0..3 {
        let m = next_match(&mut rx, Duration::from_secs(5)).await;
        for t in m.claimed.tickets() {
            assert_eq!(t.attempts, attempt, "attempts so far");
            let original = if t.id == a.id { T0 } else { at(100) };
            assert_eq!(t.enqueued_at, original, "requeue keeps the enqueue time");
        }
    }
    for id in [&a.id, &b.id] {
        wait_for_state(&engine, id, "failed", |s| {
            *s == TicketState::Failed {
                reason: "gave up after 3 attempts: dsmc not ready".into(),
            }
        })
        .await;
    }
    sleep(Duration::from_secs(5)).await;
    assert!(rx.try_recv().is_err(), "no fourth attempt");
    engine.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_released_ticket_keeps_its_place_and_is_matched_next() {
    let clock = Arc::new(TokioClock::starting_at(T0));
    let (sink, mut rx) = RecordingSink::new(clock.clone(), |claimed, n| {
        if n == 0 {
            // The second player's account is broken: fail them, hand the first one back.
            let mut tickets = claimed.tickets();
            let first = tickets.next().expect("two tickets").id.clone();
            let second = tickets.next().expect("two tickets").id.clone();
            Behavior::Return(MatchOutcome::PerTicket(vec![
                (first, TicketOutcome::Release),
                (
                    second,
                    TicketOutcome::Fail {
                        reason: "user banned".into(),
                    },
                ),
            ]))
        } else {
            Behavior::Return(MatchOutcome::All(TicketOutcome::Matched(placement("s2"))))
        }
    });
    let engine = start(
        vec![GameMode::one_v_one("1v1")],
        sink,
        clock.clone(),
        EngineConfig::default(),
    );
    engine.submit(request("1v1", &["x"])).await.expect("x");
    engine.submit(request("1v1", &["y"])).await.expect("y");
    let first = next_match(&mut rx, Duration::from_secs(1)).await;
    let kept = first.claimed.teams[0][0].clone();
    let dropped = first.claimed.teams[1][0].clone();
    wait_for_state(&engine, &dropped.id, "failed", |s| {
        matches!(s, TicketState::Failed { .. })
    })
    .await;
    sleep(Duration::from_secs(3)).await;
    let z = engine.submit(request("1v1", &["z"])).await.expect("z");
    let second = next_match(&mut rx, Duration::from_secs(1)).await;
    let ids: Vec<&TicketId> = second.claimed.tickets().map(|t| &t.id).collect();
    assert_eq!(ids, [&kept.id, &z.id]);
    let again = second.claimed.teams[0][0].clone();
    assert_eq!((again.enqueued_at, again.attempts), (kept.enqueued_at, 0));
    engine.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_dead_replicas_tickets_come_back_within_the_lease_bound() {
    let clock = Arc::new(TokioClock::starting_at(T0));
    let store = MemoryStore::new();
    // The dead replica: claimed a match at T0 with a 30 s lease, then vanished.
    for (id, player) in [("a", "pa"), ("b", "pb")] {
        store
            .enqueue(NewTicket {
                id: id.into(),
                game_mode: "1v1".into(),
                party: party(&[player]),
                attributes: Attributes::default(),
                enqueued_at: T0,
                max_attempts: 3,
            })
            .await
            .expect("enqueue");
    }
    let queued = store.queued("1v1", 10).await.expect("queued");
    let proposal = matchmaker::matching::plan(&queued, &GameMode::one_v_one("1v1"), T0)
        .proposals
        .remove(0);
    let config = EngineConfig::default(); // lease 30 s, reaper every 1 s
    store
        .try_claim(&proposal, T0 + config.lease)
        .await
        .expect("claim")
        .expect("claimable");

    // A live replica with its reaper.
    let (sink, mut rx) = RecordingSink::matching(clock.clone());
    let engine = Engine::start(
        store.clone(),
        sink,
        Modes::default(),
        clock.clone(),
        config.clone(),
    );
    sleep(Duration::from_millis(29_900)).await;
    let a = store.get(&"a".into()).await.expect("get").expect("a");
    assert!(
        matches!(a.state, TicketState::Claimed { .. }),
        "lease still valid"
    );
    assert!(rx.try_recv().is_err());

    let m = next_match(&mut rx, Duration::from_secs(5)).await;
    let bound = T0 + config.lease + config.reap_every;
    assert!(
        m.at >= T0 + config.lease && m.at <= bound,
        "{} within the bound",
        m.at
    );
    for t in m.claimed.tickets() {
        assert_eq!(
            (t.enqueued_at, t.attempts),
            (T0, 1),
            "original time, one attempt"
        );
    }
    wait_for_state(&engine, &"a".into(), "matched", is_matched).await;
    engine.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_slow_pipeline_keeps_its_lease_by_renewing_it() {
    let clock = Arc::new(TokioClock::starting_at(T0));
    let (sink, mut rx) = RecordingSink::new(clock.clone(), |claimed, _| {
        Behavior::After(
            Duration::from_secs(20),
            MatchOutcome::All(TicketOutcome::Matched(placement(claimed.id.as_str()))),
        )
    });
    let config = EngineConfig {
        lease: Duration::from_secs(3),
        renew_every: Duration::from_secs(1),
        reap_every: Duration::from_millis(250),
        ..EngineConfig::default()
    };
    let engine = start(
        vec![GameMode::one_v_one("1v1")],
        sink,
        clock.clone(),
        config,
    );
    let a = engine.submit(request("1v1", &["a"])).await.expect("a");
    engine.submit(request("1v1", &["b"])).await.expect("b");
    let m = next_match(&mut rx, Duration::from_secs(1)).await;
    wait_for_state(&engine, &a.id, "matched", is_matched).await;
    assert!(
        clock.now() >= at(20_000),
        "the pipeline took 20 s with a 3 s lease"
    );
    let ticket = engine.ticket(&a.id).await.expect("get").expect("a");
    assert_eq!(ticket.attempts, 0, "never reclaimed");
    assert!(
        matches!(ticket.state, TicketState::Matched { match_id, .. } if match_id == m.claimed.id)
    );
    assert!(rx.try_recv().is_err(), "built once");
    engine.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_pipeline_that_lost_its_lease_is_told_and_ignored() {
    let clock = Arc::new(TokioClock::starting_at(T0));
    let (sink, mut rx) = RecordingSink::new(clock.clone(), |_, n| {
        if n == 0 {
            Behavior::UntilLeaseLost(MatchOutcome::All(TicketOutcome::Matched(placement(
                "too-late",
            ))))
        } else {
            Behavior::Return(MatchOutcome::All(TicketOutcome::Matched(placement(
                "second",
            ))))
        }
    });
    let told = sink.lease_losses();
    let config = EngineConfig {
        lease: Duration::from_secs(3),
        renew_every: Duration::from_secs(1),
        reap_every: Duration::from_secs(3_600), // this replica's reaper stays out of the way
        ..EngineConfig::default()
    };
    let engine = start(
        vec![GameMode::one_v_one("1v1")],
        sink,
        clock.clone(),
        config,
    );
    let a = engine.submit(request("1v1", &["a"])).await.expect("a");
    engine.submit(request("1v1", &["b"])).await.expect("b");
    let first = next_match(&mut rx, Duration::from_secs(1)).await;

    // Another replica's reaper judges the lease expired (say, after a long pause here).
    let reclaimed = engine
        .store()
        .reclaim_expired(at(3_600_000))
        .await
        .expect("reclaim");
    assert_eq!(reclaimed.requeued.len(), 2);

    let second = next_match(&mut rx, Duration::from_secs(5)).await;
    assert_ne!(second.claimed.id, first.claimed.id);
    wait_for_state(
        &engine,
        &a.id,
        "matched by the second match",
        |s| matches!(s, TicketState::Matched { match_id, .. } if *match_id == second.claimed.id),
    )
    .await;
    sleep(Duration::from_secs(5)).await;
    assert_eq!(
        *told.lock(),
        [at(1_000)],
        "told at its first renewal after the reclaim"
    );
    let ticket = engine.ticket(&a.id).await.expect("get").expect("a");
    assert!(
        matches!(&ticket.state, TicketState::Matched { placement: p, .. } if p.session_id == "second"),
        "the stale pipeline's outcome was ignored: {:?}",
        ticket.state
    );
    engine.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_hands_back_matches_still_in_flight() {
    let clock = Arc::new(TokioClock::starting_at(T0));
    let (sink, mut rx) = RecordingSink::new(clock.clone(), |_, _| Behavior::Hang);
    let engine = start(
        vec![GameMode::one_v_one("1v1")],
        sink,
        clock.clone(),
        EngineConfig::default(),
    );
    let a = engine.submit(request("1v1", &["a"])).await.expect("a");
    let b = engine.submit(request("1v1", &["b"])).await.expect("b");
    next_match(&mut rx, Duration::from_secs(1)).await;

    engine.shutdown(Duration::from_secs(2)).await;
    assert!(clock.now() >= at(2_000), "waited for the grace period");
    for id in [&a.id, &b.id] {
        let t = engine.ticket(id).await.expect("get").expect("ticket");
        assert_eq!(
            (t.state, t.attempts),
            (TicketState::Queued, 0),
            "released, no attempt"
        );
    }
    let late = engine.submit(request("1v1", &["c"])).await;
    assert!(matches!(late, Err(SubmitError::ShuttingDown)), "{late:?}");
}

#[tokio::test(start_paused = true)]
async fn submit_rejects_bad_requests_and_second_tickets() {
    let clock = Arc::new(TokioClock::starting_at(T0));
    let (sink, _rx) = RecordingSink::matching(clock.clone());
    let engine = start(
        vec![GameMode::one_v_one("1v1"), GameMode::teams("2v2", 2, 2)],
        sink,
        clock.clone(),
        EngineConfig::default(),
    );
    let unknown = engine.submit(request("3v3", &["a"])).await;
    assert!(matches!(unknown, Err(SubmitError::UnknownMode(m)) if m == "3v3"));
    let too_big = engine.submit(request("1v1", &["a", "b"])).await;
    assert!(
        matches!(
            too_big,
            Err(SubmitError::PartyTooLarge {
                size: 2,
                max: 1,
                ..
            })
        ),
        "{too_big:?}"
    );
    let mut empty_region = request("1v1", &["a"]);
    empty_region.attributes.region = Some(String::new());
    assert!(matches!(
        engine.submit(empty_region).await,
        Err(SubmitError::EmptyRegion)
    ));

    let first = engine
        .submit(request("2v2", &["a", "b"]))
        .await
        .expect("first");
    // The HTTP layer answers 409 Conflict to this, naming the live ticket.
    let second = engine.submit(request("1v1", &["b"])).await;
    match second {
        Err(SubmitError::Store(StoreError::Conflict { player, ticket })) => {
            assert_eq!(player.as_str(), "b");
            assert_eq!(ticket, first.id);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    engine.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_ticket_is_never_matched() {
    let clock = Arc::new(TokioClock::starting_at(T0));
    let (sink, mut rx) = RecordingSink::matching(clock.clone());
    let engine = start(
        vec![GameMode::one_v_one("1v1")],
        sink,
        clock.clone(),
        EngineConfig::default(),
    );
    let a = engine.submit(request("1v1", &["a"])).await.expect("a");
    assert_eq!(
        engine.cancel(&a.id).await.expect("cancel"),
        CancelOutcome::Cancelled
    );
    assert_eq!(
        engine.cancel(&a.id).await.expect("cancel"),
        CancelOutcome::AlreadyFinished
    );
    engine.submit(request("1v1", &["b"])).await.expect("b");
    sleep(Duration::from_secs(3)).await;
    assert!(rx.try_recv().is_err(), "b waits alone");
    let a2 = engine
        .submit(request("1v1", &["a"]))
        .await
        .expect("a again");
    let m = next_match(&mut rx, Duration::from_secs(1)).await;
    assert!(m.claimed.tickets().any(|t| t.id == a2.id));
    engine.shutdown(Duration::from_secs(1)).await;
}

/// Two engines on one Redis, players arriving at both: 2,000 players, 1,000 matches, nobody
/// in two of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_on_one_redis_match_every_player_exactly_once() {
    const PLAYERS: usize = 2_000;
    let redis = TestRedis::start();
    let prefix = redis.prefix("two_engines");
    let clock: Arc<SystemClock> = Arc::new(SystemClock);
    let mut engines = Vec::new();
    let mut receivers = Vec::new();
    for _ in 0..2 {
        let (sink, rx) = RecordingSink::matching(clock.clone());
        let engine = Engine::start(
            redis.store(&prefix).await,
            sink,
            Modes::default(),
            clock.clone(),
            EngineConfig::default(),
        );
        engines.push(engine);
        receivers.push(rx);
    }
    let mut feeders = Vec::new();
    for (e, engine) in engines.iter().enumerate() {
        let engine = engine.clone();
        feeders.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in (e..PLAYERS).step_by(2) {
                let ticket = engine
                    .submit(request("1v1", &[&format!("player{i:05}")]))
                    .await
                    .expect("submit");
                ids.push(ticket.id);
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for feeder in feeders {
        ids.extend(feeder.await.expect("feeder"));
    }

    let mut recorded: Vec<Recorded> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while recorded.len() < PLAYERS / 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} matches",
            recorded.len()
        );
        for rx in &mut receivers {
            while let Ok(m) = rx.try_recv() {
                recorded.push(m);
            }
        }
        sleep(Duration::from_millis(20)).await;
    }
    let mut seen = HashSet::new();
    for m in &recorded {
        assert_eq!(m.claimed.players().count(), 2);
        for p in m.claimed.players() {
            assert!(seen.insert(p.clone()), "{p} in two matches");
        }
    }
    assert_eq!(seen.len(), PLAYERS);
    let store = engines[0].store().clone();
    eventually(
        Duration::from_secs(30),
        "every ticket is matched",
        || async {
            for id in &ids {
                let t = store.get(id).await.expect("get").expect("ticket");
                if !is_matched(&t.state) {
                    return false;
                }
            }
            true
        },
    )
    .await;
    assert!(recorded.iter().any(|m| m.claimed.players().count() == 2));
    for engine in &engines {
        engine.shutdown(Duration::from_secs(5)).await;
    }
    assert_eq!(store.queue_depth("1v1").await.expect("depth"), 0);
}

/// A store whose lease renewals can be made to fail, as if Redis were unreachable.
struct FlakyRenewals {
    inner: MemoryStore,
    failing: Arc<std::sync::atomic::AtomicBool>,
}

impl Store for FlakyRenewals {
    async fn enqueue(&self, t: NewTicket) -> Result<matchmaker::Ticket, StoreError> {
        self.inner.enqueue(t).await
    }
    async fn get(&self, id: &TicketId) -> Result<Option<matchmaker::Ticket>, StoreError> {
        self.inner.get(id).await
    }
    async fn live_ticket(
        &self,
        p: &matchmaker::PlayerId,
    ) -> Result<Option<matchmaker::Ticket>, StoreError> {
        self.inner.live_ticket(p).await
    }
    async fn cancel(&self, id: &TicketId) -> Result<CancelOutcome, StoreError> {
        self.inner.cancel(id).await
    }
    async fn queued(
        &self,
        mode: &str,
        limit: usize,
    ) -> Result<Vec<matchmaker::Ticket>, StoreError> {
        self.inner.queued(mode, limit).await
    }
    async fn queue_depth(&self, mode: &str) -> Result<usize, StoreError> {
        self.inner.queue_depth(mode).await
    }
    async fn try_claim(
        &self,
        p: &matchmaker::ticket::MatchProposal,
        lease_until: matchmaker::UnixMillis,
    ) -> Result<Option<ClaimedMatch>, StoreError> {
        self.inner.try_claim(p, lease_until).await
    }
    async fn renew_lease(
        &self,
        id: &matchmaker::ticket::MatchId,
        lease_until: matchmaker::UnixMillis,
    ) -> Result<bool, StoreError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Corrupt {
                key: "test".into(),
                detail: "renewal failure injected".into(),
            });
        }
        self.inner.renew_lease(id, lease_until).await
    }
    async fn complete(
        &self,
        c: &ClaimedMatch,
        o: &[(TicketId, TicketOutcome)],
    ) -> Result<matchmaker::ticket::Completion, StoreError> {
        self.inner.complete(c, o).await
    }
    async fn reclaim_expired(
        &self,
        now: matchmaker::UnixMillis,
    ) -> Result<matchmaker::store::Reclaimed, StoreError> {
        self.inner.reclaim_expired(now).await
    }
    async fn time_out(&self, ids: &[TicketId]) -> Result<Vec<TicketId>, StoreError> {
        self.inner.time_out(ids).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}

/// If renewals keep failing until the lease runs out, the pipeline is told the lease is lost
/// (another replica may already own the tickets) and its outcome is not recorded.
#[tokio::test(start_paused = true)]
async fn failing_renewals_past_the_lease_count_as_a_lost_lease() {
    let clock = Arc::new(TokioClock::starting_at(T0));
    let failing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let store = FlakyRenewals {
        inner: MemoryStore::new(),
        failing: failing.clone(),
    };
    let lost_at = Arc::new(parking_lot::Mutex::new(None));
    let (sink, mut rx) = RecordingSink::new(clock.clone(), |_, _| {
        Behavior::UntilLeaseLost(MatchOutcome::All(TicketOutcome::Matched(placement("x"))))
    });
    let told = sink.lease_losses();
    let config = EngineConfig {
        lease: Duration::from_secs(3),
        renew_every: Duration::from_secs(1),
        reap_every: Duration::from_secs(3_600),
        ..EngineConfig::default()
    };
    let modes = Modes::new([GameMode::one_v_one("1v1")]).expect("modes");
    let engine = Engine::start(store, sink, modes, clock.clone(), config);
    let a = engine.submit(request("1v1", &["a"])).await.expect("a");
    engine.submit(request("1v1", &["b"])).await.expect("b");
    next_match(&mut rx, Duration::from_secs(1)).await;
    sleep(Duration::from_millis(2_500)).await; // two renewals succeed: lease until 5 s
    failing.store(true, std::sync::atomic::Ordering::SeqCst);
    {
        let lost_at = lost_at.clone();
        let clock = clock.clone();
        let store = engine.store().inner.clone();
        let id = a.id.clone();
        // Watch for the ticket leaving the claimed state (it must not become matched).
        tokio::spawn(async move {
            loop {
                let t = store.get(&id).await.expect("get").expect("ticket");
                if !matches!(t.state, TicketState::Claimed { .. }) {
                    *lost_at.lock() = Some((clock.now(), t.state));
                    return;
                }
                sleep(Duration::from_millis(100)).await;
            }
        });
    }
    sleep(Duration::from_secs(10)).await;
    // Claimed at 0 s with a 3 s lease, renewed at 1 s and 2 s (to 5 s); renewals fail from 3 s,
    // so at the 5 s renewal the lease is known to be gone.
    assert_eq!(
        *told.lock(),
        [at(5_000)],
        "the sink was told once, when the lease ran out"
    );
    assert!(
        lost_at.lock().is_none(),
        "nothing recorded by the abandoned pipeline"
    );
    let t = engine.ticket(&a.id).await.expect("get").expect("a");
    assert!(
        matches!(t.state, TicketState::Claimed { .. }),
        "left to the lease: {:?}",
        t.state
    );
    // Any replica's reaper now hands the tickets back.
    let reclaimed = engine
        .store()
        .inner
        .reclaim_expired(clock.now())
        .await
        .expect("reclaim");
    assert_eq!(reclaimed.requeued.len(), 2);
    engine.shutdown(Duration::from_secs(1)).await;
}
