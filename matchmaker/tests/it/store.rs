//! One test suite for every [`Store`]: each test below runs against the in-memory store and
//! against a real Redis (`store_suite!` generates both). Times are explicit, so the suite is
//! deterministic on both.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use matchmaker::clock::UnixMillis;
use matchmaker::config::GameMode;
use matchmaker::matching;
use matchmaker::store::{CancelOutcome, Store, StoreError, StoreEvent};
use matchmaker::ticket::{
    Attributes, MatchId, MatchOutcome, MatchProposal, TicketId, TicketOutcome, TicketState,
};
use parking_lot::Mutex;
use pretty_assertions::assert_eq;

use crate::support::{T0, at, new_ticket, placement};

/// Generates `memory::<test>` and `redis::<test>` for each suite function (an optional
/// `[...]` before a name passes arguments to `#[tokio::test]`). A suite function
/// takes a connector that returns a new handle on one shared store each time it is called
/// (clones for memory, new connections under one key prefix for Redis).
macro_rules! store_suite {
    ($($([$($flavor:tt)*])? $name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test $(($($flavor)*))?]
                async fn $name() {
                    let store = matchmaker::store::MemoryStore::new();
                    super::$name(async || store.clone()).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test $(($($flavor)*))?]
                async fn $name() {
                    let redis = crate::support::TestRedis::start();
                    let prefix = redis.prefix(stringify!($name));
                    super::$name(async || redis.store(&prefix).await).await;
                }
            )*
        }
    };
}

store_suite!(
    enqueue_get_and_queue_order,
    one_live_ticket_per_player,
    concurrent_enqueues_for_one_player_admit_one,
    duplicate_ticket_ids_are_rejected,
    cancel_rules,
    claims_are_all_or_nothing,
    matched_tickets_free_their_players,
    requeue_keeps_the_original_time_until_attempts_run_out,
    release_and_fail_outcomes,
    outcomes_must_name_every_ticket_once,
    an_expired_lease_hands_the_tickets_back,
    renewal_extends_the_lease,
    an_expired_lease_counts_an_attempt,
    time_out_only_touches_queued_tickets,
    finished_tickets_are_announced_to_every_handle,
    [flavor = "multi_thread", worker_threads = 2]
    racing_replicas_never_put_a_player_in_two_matches,
);

fn ids(list: &[&str]) -> Vec<TicketId> {
    list.iter().map(|id| TicketId::from(*id)).collect()
}

fn proposal(teams: &[&[&str]]) -> MatchProposal {
    MatchProposal {
        game_mode: "m".into(),
        region: None,
        teams: teams.iter().map(|t| ids(t)).collect(),
    }
}

async fn state_of(store: &impl Store, id: &str) -> TicketState {
    store
        .get(&id.into())
        .await
        .expect("get")
        .unwrap_or_else(|| panic!("ticket {id} exists"))
        .state
}

async fn queued_ids(store: &impl Store, mode: &str) -> Vec<String> {
    store
        .queued(mode, 1_000)
        .await
        .expect("queued")
        .into_iter()
        .map(|t| t.id.to_string())
        .collect()
}

/// Every final state is announced, on every handle (for Redis, handles with their own
/// connections: replicas); requeues are not.
async fn finished_tickets_are_announced_to_every_handle<S: Store>(connect: impl AsyncFn() -> S) {
    let writer = connect().await;
    let reader = connect().await;
    let mut events = reader.events();
    for (id, player) in [
        ("m1", "p1"),
        ("m2", "p2"),
        ("c", "p3"),
        ("t", "p4"),
        ("r", "p5"),
    ] {
        writer
            .enqueue(new_ticket(id, &[player], T0))
            .await
            .expect("enqueue");
    }
    let claimed = writer
        .try_claim(&proposal(&[&["m1"], &["m2"]]), at(30_000))
        .await
        .expect("claim")
        .expect("claimable");
    let outcomes = MatchOutcome::All(TicketOutcome::Matched(placement("s"))).per_ticket(&claimed);
    writer
        .complete(&claimed, &outcomes)
        .await
        .expect("complete");
    writer.cancel(&"c".into()).await.expect("cancel");
    writer.time_out(&ids(&["t"])).await.expect("time out");
    let requeued = writer
        .try_claim(&proposal(&[&["r"]]), at(30_000))
        .await
        .expect("claim")
        .expect("claimable");
    let requeue =
        MatchOutcome::All(TicketOutcome::Requeue { reason: "x".into() }).per_ticket(&requeued);
    writer.complete(&requeued, &requeue).await.expect("requeue");

    let mut seen = Vec::new();
    while seen.len() < 4 {
        let event = tokio::time::timeout(std::time::Duration::from_secs(5), events.recv())
            .await
            .expect("an announcement in time")
            .expect("channel open");
        if let StoreEvent::Finished(id) = event {
            seen.push(id.to_string());
        }
    }
    seen.sort();
    assert_eq!(seen, ["c", "m1", "m2", "t"]);
    let matched = reader.get(&"m1".into()).await.expect("get").expect("m1");
    let TicketState::Matched { placement: p, .. } = matched.state else {
        panic!("m1 is matched: {:?}", matched.state);
    };
    assert_eq!(
        p,
        placement("s"),
        "the placement, players included, round-trips"
    );
}

async fn enqueue_get_and_queue_order<S: Store>(connect: impl AsyncFn() -> S) {
    let store = connect().await;
    let mut rich = new_ticket("b", &["p2", "p3"], at(1_000));
    rich.attributes = Attributes {
        mmr: Some(1_500),
        region: Some("eu-west".into()),
        extra: [("party_attributes".to_owned(), "{\"x\":1}".to_owned())].into(),
    };
    rich.max_attempts = 5;
    let stored = store.enqueue(rich.clone()).await.expect("enqueue b");
    assert_eq!(stored.state, TicketState::Queued);
    assert_eq!(stored.attempts, 0);
    store
        .enqueue(new_ticket("c", &["p4"], at(2_000)))
        .await
        .expect("enqueue c");
    store
        .enqueue(new_ticket("a", &["p1"], at(0)))
        .await
        .expect("enqueue a");
    let mut other = new_ticket("x", &["p9"], at(0));
    other.game_mode = "other".into();
    store.enqueue(other).await.expect("enqueue x");

    let got = store
        .get(&"b".into())
        .await
        .expect("get")
        .expect("b exists");
    assert_eq!(got, stored);
    assert_eq!(got.party.members(), rich.party.members());
    assert_eq!(got.attributes, rich.attributes);
    assert_eq!(got.enqueued_at, at(1_000));
    assert_eq!(got.max_attempts, 5);

    assert_eq!(
        queued_ids(&store, "m").await,
        ["a", "b", "c"],
        "oldest first"
    );
    assert_eq!(queued_ids(&store, "other").await, ["x"]);
    assert_eq!(store.queue_depth("m").await.expect("depth"), 3);
    assert_eq!(store.queue_depth("none").await.expect("depth"), 0);
    let two = store.queued("m", 2).await.expect("queued");
    assert_eq!(two.len(), 2);
    assert!(store.get(&"nope".into()).await.expect("get").is_none());
}

async fn one_live_ticket_per_player<S: Store>(connect: impl AsyncFn() -> S) {
    let store = connect().await;
    store
        .enqueue(new_ticket("t1", &["alice"], T0))
        .await
        .expect("first ticket");

    let again = store.enqueue(new_ticket("t2", &["alice"], at(1))).await;
    match again {
        Err(StoreError::Conflict { player, ticket }) => {
            assert_eq!(player.as_str(), "alice");
            assert_eq!(ticket.as_str(), "t1");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // A party containing alice conflicts too, and nothing of it is stored.
    let party = store
        .enqueue(new_ticket("t3", &["bob", "alice"], at(2)))
        .await;
    assert!(
        matches!(party, Err(StoreError::Conflict { .. })),
        "{party:?}"
    );
    assert!(store.get(&"t3".into()).await.expect("get").is_none());
    assert!(
        store
            .live_ticket(&"bob".into())
            .await
            .expect("live")
            .is_none()
    );

    let live = store.live_ticket(&"alice".into()).await.expect("live");
    assert_eq!(live.map(|t| t.id.to_string()).as_deref(), Some("t1"));

    // Claimed is still live.
    store
        .enqueue(new_ticket("t4", &["bob"], at(3)))
        .await
        .expect("bob");
    let claimed = store
        .try_claim(&proposal(&[&["t1"], &["t4"]]), at(60_000))
        .await
        .expect("claim")
        .expect("claimable");
    let during = store.enqueue(new_ticket("t5", &["bob"], at(4))).await;
    assert!(
        matches!(during, Err(StoreError::Conflict { .. })),
        "{during:?}"
    );

    // Once finished, the players may queue again.
    let outcomes = MatchOutcome::All(TicketOutcome::Matched(placement("s"))).per_ticket(&claimed);
    store.complete(&claimed, &outcomes).await.expect("complete");
    assert!(
        store
            .live_ticket(&"alice".into())
            .await
            .expect("live")
            .is_none()
    );
    store
        .enqueue(new_ticket("t6", &["alice", "bob"], at(5)))
        .await
        .expect("free again after the match");
    assert_eq!(
        store.cancel(&"t6".into()).await.expect("cancel"),
        CancelOutcome::Cancelled
    );
    store
        .enqueue(new_ticket("t7", &["alice"], at(6)))
        .await
        .expect("free again after cancel");
}

async fn concurrent_enqueues_for_one_player_admit_one<S: Store>(connect: impl AsyncFn() -> S) {
    let mut handles = Vec::new();
    for _ in 0..4 {
        handles.push(Arc::new(connect().await));
    }
    let mut tasks = Vec::new();
    for i in 0..24 {
        let store = handles[i % handles.len()].clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("t{i}");
            store
                .enqueue(new_ticket(
                    &id,
                    &["same", &format!("friend{i}")],
                    at(i as u64),
                ))
                .await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => ok += 1,
            Err(StoreError::Conflict { player, .. }) => assert_eq!(player.as_str(), "same"),
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(ok, 1, "exactly one live ticket for the player");
    assert_eq!(handles[0].queue_depth("m").await.expect("depth"), 1);
}

async fn duplicate_ticket_ids_are_rejected<S: Store>(connect: impl AsyncFn() -> S) {
    let store = connect().await;
    store
        .enqueue(new_ticket("t", &["a"], T0))
        .await
        .expect("first");
    let dup = store.enqueue(new_ticket("t", &["b"], T0)).await;
    assert!(
        matches!(dup, Err(StoreError::DuplicateTicket(_))),
        "{dup:?}"
    );
    assert!(
        store
            .live_ticket(&"b".into())
            .await
            .expect("live")
            .is_none()
    );
}

async fn cancel_rules<S: Store>(connect: impl AsyncFn() -> S) {
    let store = connect().await;
    for (id, player) in [("a", "pa"), ("b", "pb"), ("c", "pc")] {
        store
            .enqueue(new_ticket(id, &[player], T0))
            .await
            .expect("enqueue");
    }
    assert_eq!(
        store.cancel(&"a".into()).await.expect("cancel"),
        CancelOutcome::Cancelled
    );
    assert_eq!(state_of(&store, "a").await, TicketState::Cancelled);
    assert_eq!(queued_ids(&store, "m").await, ["b", "c"]);
    assert!(
        store
            .live_ticket(&"pa".into())
            .await
            .expect("live")
            .is_none()
    );
    assert_eq!(
        store.cancel(&"a".into()).await.expect("cancel"),
        CancelOutcome::AlreadyFinished
    );
    assert_eq!(
        store.cancel(&"zz".into()).await.expect("cancel"),
        CancelOutcome::NotFound
    );
    store
        .try_claim(&proposal(&[&["b"], &["c"]]), at(60_000))
        .await
        .expect("claim")
        .expect("claimable");
    assert_eq!(
        store.cancel(&"b".into()).await.expect("cancel"),
        CancelOutcome::InProgress
    );
    assert!(matches!(
        state_of(&store, "b").await,
        TicketState::Claimed { .. }
    ));
}

async fn claims_are_all_or_nothing<S: Store>(connect: impl AsyncFn() -> S) {
    let store = connect().await;
    for (i, id) in ["a", "b", "c", "d"].iter().enumerate() {
        store
            .enqueue(new_ticket(id, &[&format!("p{id}")], at(i as u64)))
            .await
            .expect("enqueue");
    }
    let mut foreign = new_ticket("e", &["pe"], at(9));
    foreign.game_mode = "other".into();
    store.enqueue(foreign).await.expect("enqueue e");

    let lease = at(30_000);
    let first = store
        .try_claim(&proposal(&[&["a"], &["b"]]), lease)
        .await
        .expect("claim")
        .expect("a and b are queued");
    assert_eq!(first.game_mode, "m");
    assert_eq!(first.lease_until, lease);
    let teams: Vec<Vec<&str>> = first
        .teams
        .iter()
        .map(|t| t.iter().map(|t| t.id.as_str()).collect())
        .collect();
    assert_eq!(teams, [["a"], ["b"]]);
    for ticket in first.tickets() {
        assert_eq!(
            ticket.state,
            TicketState::Claimed {
                match_id: first.id.clone(),
                lease_until: lease
            }
        );
        assert_eq!(state_of(&store, ticket.id.as_str()).await, ticket.state);
    }
    assert_eq!(queued_ids(&store, "m").await, ["c", "d"]);

    // b is taken: nothing of this proposal may be claimed, c stays queued.
    let overlap = store
        .try_claim(&proposal(&[&["c"], &["b"]]), lease)
        .await
        .expect("claim");
    assert!(overlap.is_none());
    assert_eq!(state_of(&store, "c").await, TicketState::Queued);
    assert_eq!(queued_ids(&store, "m").await, ["c", "d"]);

    // A ticket of another mode, or an unknown one, spoils the claim too.
    let wrong_mode = store
        .try_claim(&proposal(&[&["c"], &["e"]]), lease)
        .await
        .expect("claim");
    assert!(wrong_mode.is_none());
    let unknown = store
        .try_claim(&proposal(&[&["c"], &["ghost"]]), lease)
        .await
        .expect("claim");
    assert!(unknown.is_none());
    assert_eq!(queued_ids(&store, "m").await, ["c", "d"]);

    let twice = store.try_claim(&proposal(&[&["c"], &["c"]]), lease).await;
    assert!(
        matches!(twice, Err(StoreError::InvalidProposal(_))),
        "{twice:?}"
    );
    let empty = store.try_claim(&proposal(&[]), lease).await;
    assert!(
        matches!(empty, Err(StoreError::InvalidProposal(_))),
        "{empty:?}"
    );

    let second = store
        .try_claim(&proposal(&[&["d"], &["c"]]), lease)
        .await
        .expect("claim")
        .expect("c and d are queued");
    assert_ne!(second.id, first.id);
    assert_eq!(store.queue_depth("m").await.expect("depth"), 0);
}

async fn matched_tickets_free_their_players<S: Store>(connect: impl AsyncFn() -> S) {
    let store = connect().await;
    store
        .enqueue(new_ticket("a", &["p1", "p2"], T0))
        .await
        .expect("a");
    store
        .enqueue(new_ticket("b", &["p3"], at(1)))
        .await
        .expect("b");
    let claimed = store
        .try_claim(&proposal(&[&["a"], &["b"]]), at(30_000))
        .await
        .expect("claim")
        .expect("claimable");
    let outcomes =
        MatchOutcome::All(TicketOutcome::Matched(placement("session-1"))).per_ticket(&claimed);
    let done = store.complete(&claimed, &outcomes).await.expect("complete");
    assert_eq!(done.matched, ids(&["a", "b"]));
    assert!(done.requeued.is_empty() && done.failed.is_empty());
    for id in ["a", "b"] {
        assert_eq!(
            state_of(&store, id).await,
            TicketState::Matched {
                match_id: claimed.id.clone(),
                placement: placement("session-1"),
            }
        );
    }
    for player in ["p1", "p2", "p3"] {
        assert!(
            store
                .live_ticket(&player.into())
                .await
                .expect("live")
                .is_none()
        );
    }
    // The match is over: a late renewal or a second completion finds no lease.
    assert!(
        !store
            .renew_lease(&claimed.id, at(60_000))
            .await
            .expect("renew")
    );
    let again = store.complete(&claimed, &outcomes).await;
    assert!(matches!(again, Err(StoreError::LeaseLost(_))), "{again:?}");
    let reclaimed = store.reclaim_expired(at(1_000_000)).await.expect("reclaim");
    assert!(reclaimed.requeued.is_empty() && reclaimed.failed.is_empty());
}

async fn requeue_keeps_the_original_time_until_attempts_run_out<S: Store>(
    connect: impl AsyncFn() -> S,
) {
    let store = connect().await;
    for (id, ms) in [("a", 0), ("b", 1_000)] {
        let mut ticket = new_ticket(id, &[&format!("p{id}")], at(ms));
        ticket.max_attempts = 2;
        store.enqueue(ticket).await.expect("enqueue");
    }
    store
        .enqueue(new_ticket("late", &["plate"], at(5_000)))
        .await
        .expect("late");

    let requeue = TicketOutcome::Requeue {
        reason: "dsmc claim failed".into(),
    };
    let claimed = store
        .try_claim(&proposal(&[&["a"], &["b"]]), at(40_000))
        .await
        .expect("claim")
        .expect("claimable");
    let done = store
        .complete(
            &claimed,
            &MatchOutcome::All(requeue.clone()).per_ticket(&claimed),
        )
        .await
        .expect("complete");
    assert_eq!(done.requeued, ids(&["a", "b"]));

    // Back ahead of the later ticket, with the original enqueue time and one attempt counted.
    assert_eq!(queued_ids(&store, "m").await, ["a", "b", "late"]);
    let a = store.get(&"a".into()).await.expect("get").expect("a");
    assert_eq!(
        (a.state, a.enqueued_at, a.attempts),
        (TicketState::Queued, at(0), 1)
    );
    assert!(
        store
            .live_ticket(&"pa".into())
            .await
            .expect("live")
            .is_some()
    );

    let claimed = store
        .try_claim(&proposal(&[&["b"], &["a"]]), at(80_000))
        .await
        .expect("claim")
        .expect("claimable again");
    assert_eq!(
        claimed.tickets().map(|t| t.attempts).collect::<Vec<_>>(),
        [1, 1]
    );
    let done = store
        .complete(&claimed, &MatchOutcome::All(requeue).per_ticket(&claimed))
        .await
        .expect("complete");
    assert_eq!(done.failed, ids(&["b", "a"]));
    assert_eq!(
        state_of(&store, "a").await,
        TicketState::Failed {
            reason: "gave up after 2 attempts: dsmc claim failed".into()
        }
    );
    assert!(
        store
            .live_ticket(&"pa".into())
            .await
            .expect("live")
            .is_none()
    );
    assert_eq!(queued_ids(&store, "m").await, ["late"]);
}

async fn release_and_fail_outcomes<S: Store>(connect: impl AsyncFn() -> S) {
    let store = connect().await;
    store
        .enqueue(new_ticket("a", &["pa"], T0))
        .await
        .expect("a");
    store
        .enqueue(new_ticket("b", &["pb"], at(1)))
        .await
        .expect("b");
    let claimed = store
        .try_claim(&proposal(&[&["a"], &["b"]]), at(30_000))
        .await
        .expect("claim")
        .expect("claimable");
    let outcomes = vec![
        ("a".into(), TicketOutcome::Release),
        (
            "b".into(),
            TicketOutcome::Fail {
                reason: "banned".into(),
            },
        ),
    ];
    let done = store.complete(&claimed, &outcomes).await.expect("complete");
    assert_eq!((done.requeued, done.failed), (ids(&["a"]), ids(&["b"])));
    let a = store.get(&"a".into()).await.expect("get").expect("a");
    assert_eq!(
        (a.state, a.attempts),
        (TicketState::Queued, 0),
        "release is free"
    );
    assert_eq!(
        state_of(&store, "b").await,
        TicketState::Failed {
            reason: "banned".into()
        }
    );
    assert!(
        store
            .live_ticket(&"pb".into())
            .await
            .expect("live")
            .is_none()
    );
}

async fn outcomes_must_name_every_ticket_once<S: Store>(connect: impl AsyncFn() -> S) {
    let store = connect().await;
    store
        .enqueue(new_ticket("a", &["pa"], T0))
        .await
        .expect("a");
    store
        .enqueue(new_ticket("b", &["pb"], at(1)))
        .await
        .expect("b");
    let claimed = store
        .try_claim(&proposal(&[&["a"], &["b"]]), at(30_000))
        .await
        .expect("claim")
        .expect("claimable");
    let matched = TicketOutcome::Matched(placement("s"));
    for bad in [
        vec![("a".into(), matched.clone())],
        vec![("a".into(), matched.clone()), ("a".into(), matched.clone())],
        vec![
            ("a".into(), matched.clone()),
            ("b".into(), matched.clone()),
            ("c".into(), matched.clone()),
        ],
    ] {
        let result = store.complete(&claimed, &bad).await;
        assert!(
            matches!(result, Err(StoreError::OutcomeMismatch(_))),
            "{result:?}"
        );
    }
    assert!(matches!(
        state_of(&store, "a").await,
        TicketState::Claimed { .. }
    ));
    assert!(matches!(
        state_of(&store, "b").await,
        TicketState::Claimed { .. }
    ));
}

async fn an_expired_lease_hands_the_tickets_back<S: Store>(connect: impl AsyncFn() -> S) {
    // One replica claims and "dies"; another replica's reaper finds the expired lease.
    let dead = connect().await;
    let reaper = connect().await;
    dead.enqueue(new_ticket("a", &["pa"], at(0)))
        .await
        .expect("a");
    dead.enqueue(new_ticket("b", &["pb"], at(500)))
        .await
        .expect("b");
    dead.enqueue(new_ticket("c", &["pc"], at(900)))
        .await
        .expect("c");
    let lease = at(30_000);
    let claimed = dead
        .try_claim(&proposal(&[&["a"], &["b"]]), lease)
        .await
        .expect("claim")
        .expect("claimable");

    let early = reaper
        .reclaim_expired(UnixMillis(lease.0 - 1))
        .await
        .expect("reclaim");
    assert!(early.requeued.is_empty(), "the lease still holds");
    assert!(matches!(
        state_of(&reaper, "a").await,
        TicketState::Claimed { .. }
    ));

    let reclaimed = reaper.reclaim_expired(lease).await.expect("reclaim");
    let mut requeued = reclaimed.requeued.clone();
    requeued.sort();
    assert_eq!(requeued, ids(&["a", "b"]));
    assert!(reclaimed.failed.is_empty());
    assert_eq!(reclaimed.game_modes, ["m"]);
    for (id, enqueued) in [("a", at(0)), ("b", at(500))] {
        let t = reaper.get(&id.into()).await.expect("get").expect("ticket");
        assert_eq!(
            (t.state, t.enqueued_at, t.attempts),
            (TicketState::Queued, enqueued, 1)
        );
    }
    assert_eq!(
        queued_ids(&reaper, "m").await,
        ["a", "b", "c"],
        "original places"
    );

    // The dead replica comes back too late: its lease is gone and nothing changes.
    assert!(
        !dead
            .renew_lease(&claimed.id, at(90_000))
            .await
            .expect("renew")
    );
    let late = dead
        .complete(
            &claimed,
            &MatchOutcome::All(TicketOutcome::Matched(placement("s"))).per_ticket(&claimed),
        )
        .await;
    assert!(matches!(late, Err(StoreError::LeaseLost(_))), "{late:?}");
    assert_eq!(state_of(&reaper, "a").await, TicketState::Queued);

    // A second pass finds nothing more.
    let again = reaper.reclaim_expired(at(100_000)).await.expect("reclaim");
    assert!(again.requeued.is_empty() && again.game_modes.is_empty());
}

async fn renewal_extends_the_lease<S: Store>(connect: impl AsyncFn() -> S) {
    let store = connect().await;
    store
        .enqueue(new_ticket("a", &["pa"], T0))
        .await
        .expect("a");
    store
        .enqueue(new_ticket("b", &["pb"], at(1)))
        .await
        .expect("b");
    let claimed = store
        .try_claim(&proposal(&[&["a"], &["b"]]), at(30_000))
        .await
        .expect("claim")
        .expect("claimable");
    assert!(
        store
            .renew_lease(&claimed.id, at(50_000))
            .await
            .expect("renew")
    );
    assert_eq!(
        state_of(&store, "a").await,
        TicketState::Claimed {
            match_id: claimed.id.clone(),
            lease_until: at(50_000)
        }
    );
    let at_old_end = store.reclaim_expired(at(30_000)).await.expect("reclaim");
    assert!(at_old_end.requeued.is_empty());
    let at_new_end = store.reclaim_expired(at(50_000)).await.expect("reclaim");
    assert_eq!(at_new_end.requeued.len(), 2);
    let unknown = MatchId::new("no-such-match");
    assert!(
        !store
            .renew_lease(&unknown, at(60_000))
            .await
            .expect("renew")
    );
}

async fn an_expired_lease_counts_an_attempt<S: Store>(connect: impl AsyncFn() -> S) {
    let store = connect().await;
    for id in ["a", "b"] {
        let mut t = new_ticket(id, &[&format!("p{id}")], T0);
        t.max_attempts = 1;
        store.enqueue(t).await.expect("enqueue");
    }
    let claimed = store
        .try_claim(&proposal(&[&["a"], &["b"]]), at(10))
        .await
        .expect("claim")
        .expect("claimable");
    let reclaimed = store.reclaim_expired(at(10)).await.expect("reclaim");
    let mut failed = reclaimed.failed.clone();
    failed.sort();
    assert_eq!(failed, ids(&["a", "b"]));
    assert_eq!(
        state_of(&store, "a").await,
        TicketState::Failed {
            reason: format!(
                "gave up after 1 attempts: the lease of match {} expired",
                claimed.id
            )
        }
    );
    assert!(
        store
            .live_ticket(&"pa".into())
            .await
            .expect("live")
            .is_none()
    );
    assert_eq!(store.queue_depth("m").await.expect("depth"), 0);
}

async fn time_out_only_touches_queued_tickets<S: Store>(connect: impl AsyncFn() -> S) {
    let store = connect().await;
    for id in ["a", "b", "c"] {
        store
            .enqueue(new_ticket(id, &[&format!("p{id}")], T0))
            .await
            .expect("enqueue");
    }
    store
        .try_claim(&proposal(&[&["b"], &["c"]]), at(30_000))
        .await
        .expect("claim")
        .expect("claimable");
    let changed = store
        .time_out(&ids(&["a", "b", "ghost"]))
        .await
        .expect("time out");
    assert_eq!(changed, ids(&["a"]));
    assert_eq!(state_of(&store, "a").await, TicketState::TimedOut);
    assert!(matches!(
        state_of(&store, "b").await,
        TicketState::Claimed { .. }
    ));
    assert!(
        store
            .live_ticket(&"pa".into())
            .await
            .expect("live")
            .is_none()
    );
    assert_eq!(store.queue_depth("m").await.expect("depth"), 0);
    assert!(store.time_out(&[]).await.expect("time out").is_empty());
}

/// Three replicas (separate handles; for Redis separate connections) race to match 2,000
/// tickets while they are still being enqueued; one replica sometimes fails its pipeline, which
/// sends tickets back. No ticket may ever be held by two claims at once, none may be matched
/// twice, and in the end every ticket is matched exactly once.
async fn racing_replicas_never_put_a_player_in_two_matches<S: Store>(connect: impl AsyncFn() -> S) {
    const TICKETS: usize = 2_000;
    const REPLICAS: usize = 3;
    let rules = GameMode {
        max_attempts: 1_000,
        ..GameMode::one_v_one("m")
    };
    let now = at(1_000);
    let held: Arc<Mutex<HashSet<TicketId>>> = Arc::default();
    let matched: Arc<Mutex<HashMap<TicketId, MatchId>>> = Arc::default();
    let enqueued_all = Arc::new(AtomicBool::new(false));

    let feeder = Arc::new(connect().await);
    let feed = {
        let feeder = feeder.clone();
        let enqueued_all = enqueued_all.clone();
        tokio::spawn(async move {
            for i in 0..TICKETS {
                let id = format!("t{i:05}");
                let mut ticket = new_ticket(&id, &[&format!("p{i:05}")], at(i as u64 % 1_000));
                ticket.max_attempts = 1_000;
                feeder.enqueue(ticket).await.expect("enqueue");
                if i % 100 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            enqueued_all.store(true, Ordering::SeqCst);
        })
    };

    let mut replicas = Vec::new();
    for r in 0..REPLICAS {
        let store = connect().await;
        let rules = rules.clone();
        let held = held.clone();
        let matched = matched.clone();
        let enqueued_all = enqueued_all.clone();
        replicas.push(tokio::spawn(async move {
            let mut claims = 0usize;
            let mut lost = 0usize;
            loop {
                let finished = enqueued_all.load(Ordering::SeqCst);
                let queued = store.queued("m", 10_000).await.expect("queued");
                let plan = matching::plan(&queued, &rules, now);
                if plan.proposals.is_empty() {
                    if finished && held.lock().is_empty() && queued.len() < 2 {
                        break;
                    }
                    tokio::task::yield_now().await;
                    continue;
                }
                // Each replica walks the proposals from a different point, to collide often
                // but not always.
                let n = plan.proposals.len();
                for k in 0..n {
                    let p = &plan.proposals[(k + r * n / REPLICAS) % n];
                    let Some(claimed) = store.try_claim(p, at(3_600_000)).await.expect("claim")
                    else {
                        lost += 1;
                        continue;
                    };
                    claims += 1;
                    {
                        let mut held = held.lock();
                        for t in claimed.tickets() {
                            assert!(held.insert(t.id.clone()), "{} claimed twice", t.id);
                        }
                    }
                    let outcome = if r == 0 && claims % 5 == 0 {
                        TicketOutcome::Requeue {
                            reason: "injected".into(),
                        }
                    } else {
                        TicketOutcome::Matched(placement(claimed.id.as_str()))
                    };
                    // Release our hold first: until `complete` returns, the store still holds
                    // the tickets, so no other replica can claim them in between.
                    {
                        let mut held = held.lock();
                        for t in claimed.tickets() {
                            held.remove(&t.id);
                        }
                    }
                    let done = store
                        .complete(&claimed, &MatchOutcome::All(outcome).per_ticket(&claimed))
                        .await
                        .expect("complete");
                    let mut matched = matched.lock();
                    for id in done.matched {
                        let previous = matched.insert(id.clone(), claimed.id.clone());
                        assert!(previous.is_none(), "{id} matched twice");
                    }
                }
            }
            (claims, lost)
        }));
    }
    feed.await.expect("feeder");
    let mut total_claims = 0;
    for replica in replicas {
        let (claims, _lost) = replica.await.expect("replica");
        total_claims += claims;
    }
    assert!(total_claims >= TICKETS / 2);

    let matched = matched.lock().clone();
    assert_eq!(matched.len(), TICKETS, "every ticket matched exactly once");
    let mut per_match: HashMap<&MatchId, usize> = HashMap::new();
    for i in 0..TICKETS {
        let id = TicketId::new(format!("t{i:05}"));
        let ticket = feeder.get(&id).await.expect("get").expect("ticket kept");
        let TicketState::Matched { match_id, .. } = &ticket.state else {
            panic!("{id} ended {:?}", ticket.state);
        };
        assert_eq!(Some(match_id), matched.get(&id));
        *per_match
            .entry(matched.get(&id).expect("recorded"))
            .or_default() += 1;
    }
    assert!(
        per_match.values().all(|&n| n == 2),
        "1v1 matches hold two tickets"
    );
    assert_eq!(feeder.queue_depth("m").await.expect("depth"), 0);
    let leftovers = feeder
        .reclaim_expired(at(u64::MAX / 2))
        .await
        .expect("reclaim");
    assert!(leftovers.requeued.is_empty(), "no lease was left behind");
}

/// Redis only: what the keys look like, and that a finished match leaves nothing but expiring
/// ticket hashes behind.
/// A recorded match keeps a notice until its replica confirms its players were told; if that
/// replica stops first, the notice comes due for any replica, one at a time.
#[tokio::test]
async fn redis_unconfirmed_notices_come_due_once_and_go_when_confirmed() {
    let redis = crate::support::TestRedis::start();
    let mut config =
        matchmaker::store::RedisConfig::new(redis.url()).with_prefix(redis.prefix("notices"));
    config.notice_grace = std::time::Duration::ZERO;
    let store = matchmaker::store::RedisStore::connect(config)
        .await
        .expect("connect");
    let hold = std::time::Duration::from_secs(60);
    assert!(store.due_notices(hold).await.expect("none yet").is_empty());

    store
        .enqueue(new_ticket("a", &["p1"], T0))
        .await
        .expect("a");
    store
        .enqueue(new_ticket("b", &["p2"], at(1)))
        .await
        .expect("b");
    let claimed = store
        .try_claim(&proposal(&[&["a"], &["b"]]), at(30_000))
        .await
        .expect("claim")
        .expect("claimable");
    let outcomes =
        MatchOutcome::All(TicketOutcome::Matched(placement("session-1"))).per_ticket(&claimed);
    store.complete(&claimed, &outcomes).await.expect("complete");

    // Not confirmed (the recording replica "stopped"): due, with the tickets as recorded.
    let due = store.due_notices(hold).await.expect("due");
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(due[0].match_id, claimed.id);
    let mut tickets: Vec<_> = due[0].tickets.iter().map(|t| t.id.to_string()).collect();
    tickets.sort();
    assert_eq!(tickets, ["a", "b"]);
    assert!(due[0].tickets.iter().all(|t| matches!(
        &t.state,
        TicketState::Matched { placement: p, .. } if *p == placement("session-1")
    )));
    // Taken for `hold`: no other replica gets it meanwhile.
    assert!(store.due_notices(hold).await.expect("held").is_empty());
    // Taken back at once when the hold is zero, and gone once confirmed.
    let again = store
        .due_notices(std::time::Duration::ZERO)
        .await
        .expect("due");
    assert!(again.is_empty(), "held for a minute by the first taker");
    store.notice_sent(&claimed.id).await.expect("confirm");
    assert!(store.due_notices(hold).await.expect("gone").is_empty());

    // A match whose outcome tells nobody anything (all released) leaves no notice.
    store
        .enqueue(new_ticket("c", &["p3"], at(2)))
        .await
        .expect("c");
    store
        .enqueue(new_ticket("d", &["p4"], at(3)))
        .await
        .expect("d");
    let claimed = store
        .try_claim(&proposal(&[&["c"], &["d"]]), at(30_000))
        .await
        .expect("claim")
        .expect("claimable");
    let release = MatchOutcome::All(TicketOutcome::Release).per_ticket(&claimed);
    store.complete(&claimed, &release).await.expect("release");
    assert!(store.due_notices(hold).await.expect("none").is_empty());
}

#[tokio::test]
async fn redis_keys_follow_the_documented_layout() {
    let redis = crate::support::TestRedis::start();
    let prefix = redis.prefix("layout");
    let store = redis.store(&prefix).await;
    let mut raw = ::redis::Client::open(redis.url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let keys = async |raw: &mut ::redis::aio::MultiplexedConnection| {
        let mut keys: Vec<String> = ::redis::cmd("KEYS")
            .arg(format!("{prefix}:*"))
            .query_async(raw)
            .await
            .expect("keys");
        for key in &mut keys {
            *key = key[prefix.len() + 1..].to_owned();
        }
        keys.sort();
        keys
    };

    store
        .enqueue(new_ticket("a", &["pa"], T0))
        .await
        .expect("a");
    store
        .enqueue(new_ticket("b", &["pb", "pc"], at(1)))
        .await
        .expect("b");
    assert_eq!(
        keys(&mut raw).await,
        [
            "player:pa",
            "player:pb",
            "player:pc",
            "queue:m",
            "ticket:a",
            "ticket:b"
        ]
    );
    let score: String = ::redis::cmd("ZSCORE")
        .arg(format!("{prefix}:queue:m"))
        .arg("b")
        .query_async(&mut raw)
        .await
        .expect("zscore");
    assert_eq!(score, at(1).0.to_string(), "scored by enqueue time");

    let claimed = store
        .try_claim(&proposal(&[&["a"], &["b"]]), at(30_000))
        .await
        .expect("claim")
        .expect("claimable");
    assert_eq!(
        keys(&mut raw).await,
        [
            "leases".to_owned(),
            format!("match:{}", claimed.id),
            "player:pa".into(),
            "player:pb".into(),
            "player:pc".into(),
            "ticket:a".into(),
            "ticket:b".into(),
        ]
    );

    let outcomes = MatchOutcome::All(TicketOutcome::Matched(placement("s"))).per_ticket(&claimed);
    store.complete(&claimed, &outcomes).await.expect("complete");
    // Until the players were told, the match's notice stays.
    let notice = format!("notice:{}", claimed.id);
    assert_eq!(
        keys(&mut raw).await,
        [notice.as_str(), "notices", "ticket:a", "ticket:b"]
    );
    store.notice_sent(&claimed.id).await.expect("told");
    assert_eq!(keys(&mut raw).await, ["ticket:a", "ticket:b"]);
    let ttl: i64 = ::redis::cmd("PTTL")
        .arg(format!("{prefix}:ticket:a"))
        .query_async(&mut raw)
        .await
        .expect("pttl");
    assert!(ttl > 0, "finished tickets expire");
}

/// Redis only: a record this version cannot read is reported by `get` and skipped by the
/// matcher's `queued`, instead of blocking the whole game mode.
#[tokio::test]
async fn redis_corrupt_records_are_errors_not_blockers() {
    let redis = crate::support::TestRedis::start();
    let prefix = redis.prefix("corrupt");
    let store = redis.store(&prefix).await;
    store
        .enqueue(new_ticket("a", &["pa"], T0))
        .await
        .expect("a");
    store
        .enqueue(new_ticket("b", &["pb"], at(1)))
        .await
        .expect("b");
    let mut raw = ::redis::Client::open(redis.url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let _: () = ::redis::cmd("HSET")
        .arg(format!("{prefix}:ticket:a"))
        .arg("enqueued_at")
        .arg("yesterday")
        .query_async(&mut raw)
        .await
        .expect("hset");
    let err = store.get(&"a".into()).await.expect_err("corrupt");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert_eq!(queued_ids(&store, "m").await, ["b"]);
    store.ping().await.expect("ping");
}
