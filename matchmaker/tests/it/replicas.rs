//! Several matchmaker replicas on one real Redis (a private `redis-server`, or
//! `MATCHBENCH_REDIS_URL`), with fakes: cross-replica answers, thousands of tickets, a replica
//! killed mid-pipeline, graceful shutdown.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use fakes::dsmc::fleet::{ClaimFailure, ClaimOverride};
use futures_util::StreamExt as _;
use matchmaker::store::{RedisConfig, Store as _};
use matchmaker::ticket::{PlayerId, TicketId, TicketState};
use pretty_assertions::assert_eq;
use reqwest::StatusCode;

use crate::stack::{self, Api, PLAYER1, PLAYER2, Player, SOON, login, metric};
use crate::support::TestRedis;

fn on_redis(config: &mut matchmaker::Config, redis: &TestRedis, prefix: &str) {
    config.redis = Some(RedisConfig::new(redis.url()).with_prefix(prefix));
}

/// Player 1 waits on replica A, player 2 on replica B: both hold synchronous requests, one of
/// the replicas builds the match, and the other learns the outcome through the store's
/// announcement (the slow re-read is switched off here, so only pub/sub can deliver it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_held_by_one_replica_hears_a_match_built_by_another() {
    let redis = TestRedis::start();
    let prefix = redis.prefix("cross");
    let fakes = stack::fakes().await;
    let mut config = stack::config(&fakes);
    on_redis(&mut config, &redis, &prefix);
    config.http.wait_poll = Duration::from_secs(600);
    let a = matchmaker::spawn(config.clone()).await.expect("replica a");
    let b = matchmaker::spawn(config).await.expect("replica b");
    let (api_a, api_b) = (Api::new(a.base_url()), Api::new(b.base_url()));
    let mut p1 = Player::connect(&fakes, login(&fakes, PLAYER1.0, PLAYER1.1).await).await;
    let mut p2 = Player::connect(&fakes, login(&fakes, PLAYER2.0, PLAYER2.1).await).await;

    let first = {
        let token = p1.account.token.clone();
        tokio::spawn(async move { api_a.matchmaking(&token, None).await })
    };
    assert!(p1.next("searching", SOON).await.is_some());
    let (status2, body2) = tokio::time::timeout(SOON, api_b.matchmaking(&p2.account.token, None))
        .await
        .expect("b answers in time");
    let (status1, body1) = tokio::time::timeout(SOON, first)
        .await
        .expect("a answers in time")
        .expect("p1");
    assert_eq!(
        (status1, status2),
        (StatusCode::OK, StatusCode::OK),
        "{body1} {body2}"
    );
    assert_eq!(body1["session"], body2["session"]);
    let server = p1.found().await;
    assert_eq!(p2.found().await, server);
    p1.no_more_found(Duration::from_millis(300)).await;
    p2.no_more_found(Duration::ZERO).await;
    let ready: serde_json::Value = api_b
        .http
        .get(format!("{}/readyz", api_b.base))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    assert_eq!(ready["store"], "redis");
}

/// Two replicas on one Redis, 2,000 tickets submitted alternately to each: every player ends up
/// in exactly one match, none is lost, and no server is claimed twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_match_two_thousand_tickets_exactly_once() {
    const TICKETS: usize = 2_000;
    let redis = TestRedis::start();
    let prefix = redis.prefix("replicas");
    let fakes = stack::fakes_with(TICKETS, Duration::ZERO).await;
    let mut config = stack::config(&fakes);
    on_redis(&mut config, &redis, &prefix);
    let a = matchmaker::spawn(config.clone()).await.expect("replica a");
    let b = matchmaker::spawn(config).await.expect("replica b");
    let apis = [Api::new(a.base_url()), Api::new(b.base_url())];
    let accounts = stack::accounts(&fakes, u32::try_from(TICKETS).expect("fits")).await;

    let submitted: Vec<(String, String)> = futures_util::stream::iter(accounts.iter().enumerate())
        .map(|(i, account)| {
            let api = apis[i % 2].clone();
            async move {
                let (status, body) = api.create_ticket(&account.token, None).await;
                assert_eq!(status, StatusCode::ACCEPTED, "{body}");
                (
                    account.user_id.clone(),
                    body["ticket_id"].as_str().expect("id").to_owned(),
                )
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;

    let matched = async || {
        let mut n = 0.0;
        for api in &apis {
            n += metric(
                &api.metrics().await,
                "matchmaker_tickets_finished_total{mode=\"1v1\",state=\"matched\"}",
            );
        }
        n
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while matched().await < TICKETS as f64 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {TICKETS} matched",
            matched().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let store = redis.store(&prefix).await;
    let mut sessions: HashMap<String, Vec<PlayerId>> = HashMap::new();
    for (player, id) in &submitted {
        let ticket = store
            .get(&TicketId::new(id.clone()))
            .await
            .expect("get")
            .expect("ticket kept");
        let TicketState::Matched { placement, .. } = ticket.state else {
            panic!("ticket {id} of {player} is {:?}", ticket.state);
        };
        assert!(placement.players.contains(&PlayerId::new(player.clone())));
        sessions
            .entry(placement.session_id)
            .or_default()
            .push(PlayerId::new(player.clone()));
    }
    assert_eq!(sessions.len(), TICKETS / 2, "one session per pair");
    let mut seen = HashSet::new();
    for players in sessions.values() {
        assert_eq!(players.len(), 2, "two players per session");
        for p in players {
            assert!(seen.insert(p.clone()), "{p} is in two matches");
        }
    }
    assert_eq!(seen.len(), TICKETS, "nobody lost");
    let stats = fakes.state.dsmc.stats();
    assert_eq!(
        stats.claims_succeeded as usize,
        TICKETS / 2,
        "no server claimed twice"
    );
    for api in &apis {
        let formed = metric(
            &api.metrics().await,
            "matchmaker_matches_total{outcome=\"matched\"}",
        );
        assert!(formed > 0.0, "both replicas formed matches");
    }
}

/// A replica dies (its runtime is torn down, nothing handed back) while its pipeline retries a
/// claim; once the lease expires the other replica requeues the tickets, matches them, and each
/// player hears `found` exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_pipeline_loses_no_player() {
    let redis = TestRedis::start();
    let prefix = redis.prefix("killed");
    let fakes = stack::fakes().await;
    let blocked = Arc::new(AtomicBool::new(true));
    let attempts = Arc::new(AtomicUsize::new(0));
    let hook: ClaimOverride = {
        let (blocked, attempts) = (blocked.clone(), attempts.clone());
        Arc::new(move |_| {
            attempts.fetch_add(1, Ordering::SeqCst);
            blocked
                .load(Ordering::SeqCst)
                .then_some(ClaimFailure::NotReady)
        })
    };
    fakes.state.dsmc.set_claim_override(Some(hook));
    let mut config = stack::config(&fakes);
    on_redis(&mut config, &redis, &prefix);
    config.engine.lease = Duration::from_secs(2);
    config.engine.renew_every = Duration::from_millis(500);
    config.pipeline.claim_attempts = 1_000;
    config.pipeline.claim_backoff_initial = Duration::from_millis(20);
    config.pipeline.claim_backoff_max = Duration::from_millis(50);

    let doomed = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime for replica a");
    let a = doomed
        .spawn(matchmaker::spawn(config.clone()))
        .await
        .expect("spawned")
        .expect("replica a");
    let api_a = Api::new(a.base_url());
    let mut p1 = Player::connect(&fakes, login(&fakes, PLAYER1.0, PLAYER1.1).await).await;
    let mut p2 = Player::connect(&fakes, login(&fakes, PLAYER2.0, PLAYER2.1).await).await;
    let (_, t1) = api_a.create_ticket(&p1.account.token, None).await;
    let (_, t2) = api_a.create_ticket(&p2.account.token, None).await;
    let deadline = tokio::time::Instant::now() + SOON;
    while attempts.load(Ordering::SeqCst) < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "replica a never claimed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    doomed.shutdown_background();
    drop(a);

    let store = redis.store(&prefix).await;
    let id1 = TicketId::new(t1["ticket_id"].as_str().expect("id"));
    let claimed = store.get(&id1).await.expect("get").expect("ticket");
    assert!(
        matches!(claimed.state, TicketState::Claimed { .. }),
        "held by the dead replica: {:?}",
        claimed.state
    );

    blocked.store(false, Ordering::SeqCst);
    let b = matchmaker::spawn(config).await.expect("replica b");
    let api_b = Api::new(b.base_url());
    let server = p1.found().await;
    assert_eq!(p2.found().await, server);
    for (p, t) in [(&p1, &t1), (&p2, &t2)] {
        let id = t["ticket_id"].as_str().expect("id");
        let ticket = api_b
            .wait_state(&p.account.token, id, "matched", SOON)
            .await;
        assert_eq!(
            ticket["attempts"], 1,
            "the expired lease counted one attempt"
        );
    }
    p1.no_more_found(Duration::from_millis(300)).await;
    p2.no_more_found(Duration::ZERO).await;
}

/// On shutdown a replica answers its held requests 503 but leaves their tickets queued in
/// Redis; another replica matches them and the player still hears `found`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_leaves_queued_tickets_for_the_other_replicas() {
    let redis = TestRedis::start();
    let prefix = redis.prefix("drain");
    let fakes = stack::fakes().await;
    let mut config = stack::config(&fakes);
    on_redis(&mut config, &redis, &prefix);
    config.shutdown_grace = Duration::from_millis(200);
    let a = matchmaker::spawn(config.clone()).await.expect("replica a");
    let api_a = Api::new(a.base_url());
    let mut p1 = Player::connect(&fakes, login(&fakes, PLAYER1.0, PLAYER1.1).await).await;
    let p2 = login(&fakes, PLAYER2.0, PLAYER2.1).await;

    let held = {
        let token = p1.account.token.clone();
        tokio::spawn(async move { api_a.matchmaking(&token, None).await })
    };
    assert!(p1.next("searching", SOON).await.is_some());
    let store = redis.store(&prefix).await;
    let deadline = tokio::time::Instant::now() + SOON;
    while store
        .live_ticket(&PlayerId::new(p1.id()))
        .await
        .expect("read")
        .is_none()
    {
        assert!(tokio::time::Instant::now() < deadline, "never queued");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    a.shutdown().await.expect("clean shutdown");
    let (status, body) = held.await.expect("held request");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["errorCode"], 510503);
    assert!(
        body["errorMessage"]
            .as_str()
            .expect("message")
            .contains("stays queued")
    );
    let kept = store
        .live_ticket(&PlayerId::new(p1.id()))
        .await
        .expect("read")
        .expect("p1's ticket is still live");
    assert_eq!(kept.state, TicketState::Queued);

    let b = matchmaker::spawn(config).await.expect("replica b");
    let (status, body) = Api::new(b.base_url()).matchmaking(&p2.token, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let server = p1.found().await;
    assert_eq!(
        server,
        (
            body["server"]["ip"].as_str().expect("ip").to_owned(),
            u16::try_from(body["server"]["port"].as_u64().expect("port")).expect("port")
        )
    );
}
