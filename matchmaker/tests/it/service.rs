//! The whole service over real sockets: fakes, the matchmaker (in-memory store unless a test
//! says Redis), players who log in and hold lobby WebSockets, as the tutorial's client does.

use std::time::Duration;

use fakes::dsmc::fleet::{ClaimFailure, ClaimOverride};
use matchmaker::config::{GameMode, Modes, SkillWindow};
use pretty_assertions::assert_eq;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::stack::{self, Api, PLAYER1, PLAYER2, Player, SOON, login, metric};

/// Two players doing what the tutorial's client does get the same server, each hears `found`
/// exactly once, and the answers have the tutorial's shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_v_one_end_to_end() {
    let fakes = stack::fakes().await;
    let mm = matchmaker::spawn(stack::config(&fakes))
        .await
        .expect("matchmaker starts");
    let api = Api::new(mm.base_url());
    let mut p1 = Player::connect(&fakes, login(&fakes, PLAYER1.0, PLAYER1.1).await).await;
    let mut p2 = Player::connect(&fakes, login(&fakes, PLAYER2.0, PLAYER2.1).await).await;

    let first = {
        let api = api.clone();
        let token = p1.account.token.clone();
        tokio::spawn(async move { api.matchmaking(&token, None).await })
    };
    assert!(
        p1.next("searching", SOON).await.is_some(),
        "p1 hears searching"
    );
    let (status2, body2) = api.matchmaking(&p2.account.token, None).await;
    let (status1, body1) = first.await.expect("p1's request");
    assert_eq!(status1, StatusCode::OK, "{body1}");
    assert_eq!(status2, StatusCode::OK, "{body2}");

    assert_eq!(body1["server"], body2["server"], "same server");
    assert_eq!(body1["session"], body2["session"], "same session");
    assert_eq!(
        body1["users"],
        json!([p1.id(), [p2.id()]]),
        "tutorial's users shape"
    );
    assert_eq!(body2["users"], json!([p2.id(), [p1.id()]]));
    let ip = body1["server"]["ip"].as_str().expect("ip").to_owned();
    let port = u16::try_from(body1["server"]["port"].as_u64().expect("port")).expect("port");
    let session = body1["session"]["id"].as_str().expect("session id");
    assert_eq!(
        body1["message"],
        format!(
            "successfully matchmade server:(ip:{ip}|port:{port})|session:(id:{session})|users:({},['{}'])",
            p1.id(),
            p2.id()
        )
    );

    assert!(
        p2.next("searching", SOON).await.is_some(),
        "p2 hears searching"
    );
    assert_eq!(p1.found().await, (ip.clone(), port));
    assert_eq!(p2.found().await, (ip, port));
    p1.no_more_found(Duration::from_millis(300)).await;
    p2.no_more_found(Duration::from_millis(300)).await;

    let stats = fakes.state.dsmc.stats();
    assert_eq!(stats.claims_succeeded, 1, "one server for one match");
    let text = api.metrics().await;
    assert_eq!(
        metric(&text, "matchmaker_matches_total{outcome=\"matched\"}"),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            "matchmaker_tickets_finished_total{mode=\"1v1\",state=\"matched\"}"
        ),
        2.0
    );
    assert_eq!(
        metric(
            &text,
            "matchmaker_notifications_total{kind=\"found\",result=\"ok\"}"
        ),
        2.0
    );
    assert_eq!(
        metric(
            &text,
            "matchmaker_time_to_match_seconds_count{mode=\"1v1\"}"
        ),
        2.0
    );
    mm.shutdown().await.expect("clean shutdown");
}

fn with_modes(config: &mut matchmaker::Config, modes: Vec<GameMode>) {
    config.default_mode = modes[0].name.clone();
    config.modes = Modes::new(modes).expect("valid modes");
}

/// A lonely player gets the tutorial's 408 after the mode's timeout, and may queue again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lonely_player_times_out_with_408() {
    let fakes = stack::fakes().await;
    let mut config = stack::config(&fakes);
    let mut mode = GameMode::one_v_one("1v1");
    mode.timeout = Duration::from_secs(1);
    with_modes(&mut config, vec![mode]);
    let mm = matchmaker::spawn(config).await.expect("matchmaker starts");
    let api = Api::new(mm.base_url());
    let mut p1 = Player::connect(&fakes, login(&fakes, PLAYER1.0, PLAYER1.1).await).await;

    let started = tokio::time::Instant::now();
    let (status, body) = api.matchmaking(&p1.account.token, None).await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT, "{body}");
    assert_eq!(body, json!({"message": "Timed out! Not enough players."}));
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(p1.next("searching", SOON).await.is_some());
    p1.no_more_found(Duration::from_millis(200)).await;

    let (status, body) = api.create_ticket(&p1.account.token, None).await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "the player is free again: {body}"
    );
    let text = api.metrics().await;
    assert_eq!(
        metric(
            &text,
            "matchmaker_tickets_finished_total{mode=\"1v1\",state=\"timed_out\"}"
        ),
        1.0
    );
}

/// The ticket API: create, read, cancel; only party members see a ticket; one live ticket per
/// player (409).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_can_be_read_and_cancelled_by_their_players_only() {
    let fakes = stack::fakes().await;
    let mm = matchmaker::spawn(stack::config(&fakes))
        .await
        .expect("matchmaker starts");
    let api = Api::new(mm.base_url());
    let p1 = login(&fakes, PLAYER1.0, PLAYER1.1).await;
    let p2 = login(&fakes, PLAYER2.0, PLAYER2.1).await;

    let response = api
        .http
        .post(format!("{}/v1/tickets", api.base))
        .bearer_auth(&p1.token)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("location");
    let ticket: Value = response.json().await.expect("json");
    let id = ticket["ticket_id"].as_str().expect("id").to_owned();
    assert_eq!(location, format!("/v1/tickets/{id}"));
    assert_eq!(ticket["state"], "queued");
    assert_eq!(ticket["game_mode"], "1v1");
    assert_eq!(ticket["party_members"], json!([p1.user_id]));

    let (status, body) = api.create_ticket(&p1.token, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "one live ticket per player");
    assert_eq!(body["errorCode"], 510409);
    assert!(
        body["errorMessage"]
            .as_str()
            .expect("message")
            .contains(&id)
    );
    let (status, _) = api.matchmaking(&p1.token, None).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "also for the synchronous call"
    );

    let (status, body) = api.ticket(&p2.token, &id).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not p2's ticket: {body}");
    assert_eq!(api.cancel(&p2.token, &id).await, StatusCode::NOT_FOUND);

    assert_eq!(api.cancel(&p1.token, &id).await, StatusCode::NO_CONTENT);
    let (status, body) = api.ticket(&p1.token, &id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["state"], "cancelled");
    assert_eq!(api.cancel(&p1.token, &id).await, StatusCode::CONFLICT);
    let (status, _) = api.ticket(&p1.token, "no-such-ticket").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// A synchronous caller that goes away cancels its ticket: the player is free to queue again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_cancels_its_ticket() {
    let fakes = stack::fakes().await;
    let mm = matchmaker::spawn(stack::config(&fakes))
        .await
        .expect("matchmaker starts");
    let api = Api::new(mm.base_url());
    let p1 = login(&fakes, PLAYER1.0, PLAYER1.1).await;

    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let gone = impatient
        .post(format!("{}/matchmaking", api.base))
        .bearer_auth(&p1.token)
        .send()
        .await;
    assert!(gone.is_err_and(|e| e.is_timeout()), "the client gave up");

    let deadline = tokio::time::Instant::now() + SOON;
    let id = loop {
        let (status, body) = api.create_ticket(&p1.token, None).await;
        if status == StatusCode::ACCEPTED {
            break body["ticket_id"].as_str().expect("id").to_owned();
        }
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(tokio::time::Instant::now() < deadline, "never cancelled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(api.cancel(&p1.token, &id).await, StatusCode::NO_CONTENT);
    let text = api.metrics().await;
    assert_eq!(
        metric(
            &text,
            "matchmaker_tickets_finished_total{mode=\"1v1\",state=\"cancelled\"}"
        ),
        2.0
    );
}

/// A duo queues as one ticket (the leader lists the other member) and lands on one team with
/// two solos on the other; the member who sent nothing hears `found` too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_of_two_in_two_v_two() {
    let fakes = stack::fakes().await;
    let mut config = stack::config(&fakes);
    with_modes(
        &mut config,
        vec![GameMode::teams("2v2", 2, 2), GameMode::one_v_one("1v1")],
    );
    let mm = matchmaker::spawn(config).await.expect("matchmaker starts");
    let api = Api::new(mm.base_url());
    let accounts = stack::accounts(&fakes, 4).await;
    let mut players = Vec::new();
    for account in accounts {
        players.push(Player::connect(&fakes, account).await);
    }
    let ids: Vec<String> = players.iter().map(|p| p.id().to_owned()).collect();
    let (leader, member) = (players[0].account.clone(), players[1].account.clone());

    let duo = {
        let api = api.clone();
        let token = leader.token.clone();
        let body = json!({"game_mode": "2v2", "party_members": [{"user_id": member.user_id}],
                          "party_tokens": [member.token]});
        tokio::spawn(async move { api.matchmaking(&token, Some(body)).await })
    };
    for p in &mut players[..2] {
        assert!(
            p.next("searching", SOON).await.is_some(),
            "the duo hears searching"
        );
    }
    stack::wait_queued(&mm, &leader.user_id).await;
    let (status, body) = api
        .create_ticket(&member.token, Some(json!({"game_mode": "2v2"})))
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "the member is in the duo's ticket: {body}"
    );

    let solos: Vec<_> = players[2..]
        .iter()
        .map(|p| {
            let api = api.clone();
            let token = p.account.token.clone();
            tokio::spawn(async move {
                api.matchmaking(&token, Some(json!({"game_mode": "2v2"})))
                    .await
            })
        })
        .collect();
    let (status, body) = duo.await.expect("duo");
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut others: Vec<String> = body["users"][1]
        .as_array()
        .expect("others")
        .iter()
        .map(|v| v.as_str().expect("id").to_owned())
        .collect();
    others.sort();
    let mut expected = ids[1..].to_vec();
    expected.sort();
    assert_eq!(others, expected);
    for solo in solos {
        let (status, solo_body) = solo.await.expect("solo");
        assert_eq!(status, StatusCode::OK, "{solo_body}");
        assert_eq!(solo_body["server"], body["server"]);
    }
    let server = (
        body["server"]["ip"].as_str().expect("ip").to_owned(),
        u16::try_from(body["server"]["port"].as_u64().expect("port")).expect("port"),
    );
    for p in &mut players {
        assert_eq!(p.found().await, server);
    }

    // DSMC heard the teams: the duo's ticket is one party on one ally.
    let session = body["session"]["id"].as_str().expect("session");
    let sb = fakes
        .state
        .sessions
        .get(stack::NAMESPACE, session)
        .expect("session exists");
    assert_eq!(sb.players.len(), 4);
}

/// Skill windows widen with waiting time: two players 600 apart match only once the oldest
/// ticket's window has grown to 600.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_skill_window_widens_until_two_distant_players_match() {
    let fakes = stack::fakes().await;
    let mut config = stack::config(&fakes);
    let mut mode = GameMode::one_v_one("ranked");
    mode.skill = SkillWindow {
        start: 50,
        widen_per_sec: 500,
        max: 1_000,
    };
    with_modes(&mut config, vec![mode]);
    let mm = matchmaker::spawn(config).await.expect("matchmaker starts");
    let api = Api::new(mm.base_url());
    let p1 = login(&fakes, PLAYER1.0, PLAYER1.1).await;
    let p2 = login(&fakes, PLAYER2.0, PLAYER2.1).await;

    let started = tokio::time::Instant::now();
    let low = {
        let api = api.clone();
        let token = p1.token.clone();
        tokio::spawn(async move {
            api.matchmaking(&token, Some(json!({"attributes": {"mmr": 1000}})))
                .await
        })
    };
    let (status, high) = api
        .matchmaking(&p2.token, Some(json!({"attributes": {"mmr": 1600}})))
        .await;
    assert_eq!(status, StatusCode::OK, "{high}");
    let (status, low) = low.await.expect("low");
    assert_eq!(status, StatusCode::OK, "{low}");
    assert_eq!(low["session"], high["session"]);
    let waited = started.elapsed();
    // 50 + 500/s × t ≥ 600 ⇒ t ≥ 1.1 s.
    assert!(
        waited >= Duration::from_millis(1_000),
        "matched too early: {waited:?}"
    );
}

fn fail_first_claims(fakes: &fakes::Handle, n: usize, failure: ClaimFailure) {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let hook: ClaimOverride = std::sync::Arc::new(move |_attempt| {
        let call = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        (call < n).then_some(failure)
    });
    fakes.state.dsmc.set_claim_override(Some(hook));
}

/// Claims that keep failing past a pipeline's claim attempts send the match back to the queue
/// (tickets keep their place); the next pipeline succeeds; each player hears `found` once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_failures_requeue_the_match_then_it_succeeds() {
    let fakes = stack::fakes().await;
    fail_first_claims(&fakes, 3, ClaimFailure::Unreachable);
    let mut config = stack::config(&fakes);
    config.pipeline.claim_attempts = 2;
    config.pipeline.claim_backoff_initial = Duration::from_millis(10);
    let mm = matchmaker::spawn(config).await.expect("matchmaker starts");
    let api = Api::new(mm.base_url());
    let mut p1 = Player::connect(&fakes, login(&fakes, PLAYER1.0, PLAYER1.1).await).await;
    let mut p2 = Player::connect(&fakes, login(&fakes, PLAYER2.0, PLAYER2.1).await).await;

    let first = {
        let api = api.clone();
        let token = p1.account.token.clone();
        tokio::spawn(async move { api.matchmaking(&token, None).await })
    };
    assert!(p1.next("searching", SOON).await.is_some());
    let (status2, body2) = api.matchmaking(&p2.account.token, None).await;
    let (status1, body1) = first.await.expect("p1");
    assert_eq!(
        (status1, status2),
        (StatusCode::OK, StatusCode::OK),
        "{body1} {body2}"
    );
    assert_eq!(body1["server"], body2["server"]);
    let server = p1.found().await;
    assert_eq!(p2.found().await, server);
    p1.no_more_found(Duration::from_millis(300)).await;
    p2.no_more_found(Duration::ZERO).await;

    let text = api.metrics().await;
    assert_eq!(
        metric(
            &text,
            "matchmaker_claim_failures_total{class=\"unreachable\"}"
        ),
        3.0
    );
    assert_eq!(
        metric(&text, "matchmaker_matches_total{outcome=\"requeued\"}"),
        1.0
    );
    assert_eq!(
        metric(&text, "matchmaker_matches_total{outcome=\"matched\"}"),
        1.0
    );
    assert_eq!(
        metric(&text, "matchmaker_tickets_requeued_total{mode=\"1v1\"}"),
        2.0
    );
    let stats = fakes.state.dsmc.stats();
    assert_eq!(stats.registers, 2, "one register per pipeline run");
    assert_eq!(stats.claims_succeeded, 1);
    assert_eq!(
        fakes.state.dsmc.list(stack::NAMESPACE, None).len(),
        1,
        "the failed run's server was released"
    );
}

/// A match whose claims always fail for good ends after the mode's attempts: the held requests
/// answer 502 and each player hears `failed <class>` once, never `found`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_match_that_keeps_failing_fails_its_players_after_max_attempts() {
    let fakes = stack::fakes().await;
    fail_first_claims(&fakes, usize::MAX, ClaimFailure::Conflict);
    let mut config = stack::config(&fakes);
    let mut mode = GameMode::one_v_one("1v1");
    mode.max_attempts = 2;
    with_modes(&mut config, vec![mode]);
    let mm = matchmaker::spawn(config).await.expect("matchmaker starts");
    let api = Api::new(mm.base_url());
    let mut p1 = Player::connect(&fakes, login(&fakes, PLAYER1.0, PLAYER1.1).await).await;
    let mut p2 = Player::connect(&fakes, login(&fakes, PLAYER2.0, PLAYER2.1).await).await;

    let first = {
        let api = api.clone();
        let token = p1.account.token.clone();
        tokio::spawn(async move { api.matchmaking(&token, None).await })
    };
    assert!(p1.next("searching", SOON).await.is_some());
    let (status2, body2) = api.matchmaking(&p2.account.token, None).await;
    let (status1, body1) = first.await.expect("p1");
    for (status, body) in [(status1, &body1), (status2, &body2)] {
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
        // The code names the failure class; the message is for people.
        assert_eq!(
            body["errorCode"],
            accelbyte::models::matchmaking::FailureClass::ClaimConflict.code()
        );
        assert_eq!(body["errorCode"], 510523);
        let message = body["errorMessage"].as_str().expect("message");
        assert!(
            message.contains("gave up after 2 attempts: claim_conflict"),
            "{message}"
        );
    }
    for p in [&mut p1, &mut p2] {
        let failed = p.next("failed", SOON).await.expect("failed notification");
        assert_eq!(failed.payload, "failed claim_conflict");
        assert!(
            p.next("failed", Duration::from_millis(200)).await.is_none(),
            "once"
        );
    }
    p1.no_more_found(Duration::ZERO).await;
    let text = api.metrics().await;
    assert_eq!(
        metric(&text, "matchmaker_claim_failures_total{class=\"conflict\"}"),
        2.0
    );
    assert_eq!(
        metric(
            &text,
            "matchmaker_tickets_finished_total{mode=\"1v1\",state=\"failed\"}"
        ),
        2.0
    );
    assert_eq!(
        metric(
            &text,
            "matchmaker_notifications_total{kind=\"failed\",result=\"ok\"}"
        ),
        2.0
    );
}

/// Bad input gets an AGS-shaped error, never a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_ags_shaped_errors() {
    let fakes = stack::fakes().await;
    let mm = matchmaker::spawn(stack::config(&fakes))
        .await
        .expect("matchmaker starts");
    let api = Api::new(mm.base_url());
    let p1 = login(&fakes, PLAYER1.0, PLAYER1.1).await;
    let game_token = stack::game_client(&fakes)
        .login_client()
        .await
        .expect("client token")
        .access_token;
    let url = format!("{}/matchmaking", api.base);
    let send = |request: reqwest::RequestBuilder| async move {
        let response = request.send().await.expect("answers");
        let status = response.status();
        let body: Value = response.json().await.expect("a json body");
        (status, body)
    };

    let cases: Vec<(&str, reqwest::RequestBuilder, StatusCode, i64)> = vec![
        (
            "no token",
            api.http.post(&url),
            StatusCode::UNAUTHORIZED,
            20001,
        ),
        (
            "basic auth",
            api.http.post(&url).basic_auth("a", Some("b")),
            StatusCode::UNAUTHORIZED,
            20001,
        ),
        (
            "garbage token",
            api.http.post(&url).bearer_auth("not.a.jwt"),
            StatusCode::UNAUTHORIZED,
            20001,
        ),
        (
            "client token",
            api.http.post(&url).bearer_auth(&game_token),
            StatusCode::FORBIDDEN,
            20022,
        ),
        (
            "bad json",
            api.http.post(&url).bearer_auth(&p1.token).body("{"),
            StatusCode::BAD_REQUEST,
            20019,
        ),
        (
            "unknown field",
            api.http
                .post(&url)
                .bearer_auth(&p1.token)
                .json(&json!({"gamemode": "1v1"})),
            StatusCode::BAD_REQUEST,
            20019,
        ),
        (
            "unknown mode",
            api.http
                .post(&url)
                .bearer_auth(&p1.token)
                .json(&json!({"game_mode": "9v9"})),
            StatusCode::BAD_REQUEST,
            20002,
        ),
        (
            "party too large",
            api.http
                .post(&url)
                .bearer_auth(&p1.token)
                .json(&json!({"party_members": ["someone"]})),
            StatusCode::BAD_REQUEST,
            20002,
        ),
        (
            "body too large",
            api.http
                .post(&url)
                .bearer_auth(&p1.token)
                .body(vec![b' '; (1 << 20) + 1]),
            StatusCode::PAYLOAD_TOO_LARGE,
            510413,
        ),
        (
            "unknown route",
            api.http.get(format!("{}/nope", api.base)),
            StatusCode::NOT_FOUND,
            510404,
        ),
        (
            "wrong method",
            api.http.get(&url),
            StatusCode::METHOD_NOT_ALLOWED,
            20002,
        ),
    ];
    for (name, request, status, code) in cases {
        let (got, body) = send(request).await;
        assert_eq!(got, status, "{name}: {body}");
        assert_eq!(body["errorCode"], code, "{name}: {body}");
        assert!(body["errorMessage"].is_string(), "{name}: {body}");
    }
    let text = api.metrics().await;
    assert!(
        metric(
            &text,
            "matchmaker_auth_rejections_total{reason=\"missing\"}"
        ) >= 1.0
    );
    assert!(
        metric(
            &text,
            "matchmaker_auth_rejections_total{reason=\"malformed\"}"
        ) >= 1.0
    );
    assert!(
        metric(
            &text,
            "matchmaker_http_responses_total{route=\"/matchmaking\",status=\"401\"}"
        ) >= 3.0
    );

    let health = api
        .http
        .get(format!("{}/healthz", api.base))
        .send()
        .await
        .expect("answers");
    assert_eq!(health.status(), StatusCode::OK);
    let ready = api
        .http
        .get(format!("{}/readyz", api.base))
        .send()
        .await
        .expect("answers");
    assert_eq!(ready.status(), StatusCode::OK);
    let ready: Value = ready.json().await.expect("json");
    assert_eq!(ready, json!({"ready": true, "store": "memory"}));
}

/// Shutdown lets a match in flight finish within the grace period: both held requests get their
/// 200 and both players their `found`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_matches_in_flight() {
    let fakes = stack::fakes_with(10, Duration::from_millis(800)).await;
    let mut config = stack::config(&fakes);
    config.shutdown_grace = Duration::from_secs(10);
    let mm = matchmaker::spawn(config).await.expect("matchmaker starts");
    let api = Api::new(mm.base_url());
    let mut p1 = Player::connect(&fakes, login(&fakes, PLAYER1.0, PLAYER1.1).await).await;
    let mut p2 = Player::connect(&fakes, login(&fakes, PLAYER2.0, PLAYER2.1).await).await;

    let requests: Vec<_> = [&p1, &p2]
        .iter()
        .map(|p| {
            let api = api.clone();
            let token = p.account.token.clone();
            tokio::spawn(async move { api.matchmaking(&token, None).await })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + SOON;
    while fakes.state.dsmc.stats().registers == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no pipeline started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        fakes.state.dsmc.stats().claims_succeeded,
        0,
        "still claiming"
    );
    mm.shutdown().await.expect("clean shutdown");
    for request in requests {
        let (status, body) = request.await.expect("request");
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(p1.found().await, p2.found().await);
}

/// The `matchmaker` binary, configured only through the environment variables the README
/// names, serves the tutorial's client (PKCE login, lobby socket, the client's odd frame, a
/// bodiless `POST /`) on Redis, and exits cleanly on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_the_tutorial_client_and_stops_on_sigterm() {
    let redis = crate::support::TestRedis::start();
    let prefix = redis.prefix("binary");
    let fakes = stack::fakes().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_matchmaker"))
        .arg("serve")
        .env("AB_BASE_URL", fakes.base_url())
        .env("AB_CLIENT_ID", stack::GAME_CLIENT.0)
        .env("AB_CLIENT_SECRET", stack::GAME_CLIENT.1)
        .env("AB_NAMESPACE", stack::NAMESPACE)
        .env("MATCHMAKER_REDIS_URL", redis.url())
        .env("MATCHMAKER_REDIS_PREFIX", &prefix)
        .env("MATCHMAKER_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("the matchmaker binary starts");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + SOON;
    loop {
        let ready = http.get(format!("{base}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status() == StatusCode::OK) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let client = stack::player_client(&fakes);
    let mut players = Vec::new();
    for (user, password) in [PLAYER1, PLAYER2] {
        let token = client.login_user(user, password).await.expect("pkce login");
        let account = stack::Account {
            user_id: token.user_id,
            token: token.access_token,
        };
        let mut player = Player::connect(&fakes, account).await;
        // The tutorial's client sends a malformed messageNotif (id prefix stripped).
        player
            .lobby
            .send_text("type: messageNotif\n5f0c6a1b2c3d4e5f60718293")
            .await
            .expect("send");
        players.push(player);
    }
    let posts: Vec<_> = players
        .iter()
        .map(|p| {
            let request = http.post(format!("{base}/")).bearer_auth(&p.account.token);
            tokio::spawn(async move {
                let response = request.send().await.expect("answers");
                (
                    response.status(),
                    response.json::<Value>().await.expect("json"),
                )
            })
        })
        .collect();
    let mut servers = Vec::new();
    for post in posts {
        let (status, body) = post.await.expect("post");
        assert_eq!(status, StatusCode::OK, "{body}");
        servers.push(body["server"].clone());
    }
    assert_eq!(servers[0], servers[1]);
    let found = players[0].found().await;
    assert_eq!(players[1].found().await, found);

    let pid = child.id().expect("pid").to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill runs");
    assert!(killed.success());
    let exit = tokio::time::timeout(SOON, child.wait())
        .await
        .expect("exits after SIGTERM")
        .expect("wait");
    assert!(exit.success(), "clean exit: {exit}");
}

/// Past `max_waiting` held requests a new one is refused at once with 429, the AGS error shape
/// and `Retry-After`, and nothing is queued for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_refused_early_with_retry_after() {
    let fakes = stack::fakes().await;
    let mut config = stack::config(&fakes);
    config.http.max_waiting = 1;
    let mm = matchmaker::spawn(config).await.expect("matchmaker starts");
    let api = Api::new(mm.base_url());
    let mut p1 = Player::connect(&fakes, login(&fakes, PLAYER1.0, PLAYER1.1).await).await;
    let p2 = login(&fakes, PLAYER2.0, PLAYER2.1).await;
    let held = {
        let api = api.clone();
        let token = p1.account.token.clone();
        tokio::spawn(async move { api.matchmaking(&token, None).await })
    };
    assert!(p1.next("searching", SOON).await.is_some());
    // `searching` goes out as the ticket is queued, just before the request starts waiting.
    let deadline = tokio::time::Instant::now() + SOON;
    while metric(&api.metrics().await, "matchmaker_waiting_requests") < 1.0 {
        assert!(tokio::time::Instant::now() < deadline, "never held");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let response = reqwest::Client::new()
        .post(format!("{}/matchmaking", mm.base_url()))
        .bearer_auth(&p2.token)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["errorCode"], 20007, "{body}");
    let text = api.metrics().await;
    let created: f64 = text
        .lines()
        .filter(|l| l.starts_with("matchmaker_tickets_created_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert_eq!(created, 1.0, "only the held request made a ticket");
    held.abort();
}

/// A request with an `Idempotency-Key` names its ticket by it: sent again (as a client does after
/// a broken connection or a 503 from a replica shutting down) it finds that ticket — queued or
/// finished — instead of a 409 or a second ticket; another key is still one live ticket too many.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_with_an_idempotency_key_resume_their_ticket() {
    let fakes = stack::fakes().await;
    let mm = matchmaker::spawn(stack::config(&fakes))
        .await
        .expect("matchmaker starts");
    let api = Api::new(mm.base_url());
    let p1 = login(&fakes, PLAYER1.0, PLAYER1.1).await;
    let p2 = login(&fakes, PLAYER2.0, PLAYER2.1).await;
    let post = |path: &'static str, token: &str, keys: &[&str]| {
        let mut request = api
            .http
            .post(format!("{}{path}", api.base))
            .bearer_auth(token);
        for key in keys {
            request = request.header("Idempotency-Key", *key);
        }
        async move {
            let response = request.send().await.expect("answers");
            let status = response.status();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };

    let (status, first) = post("/v1/tickets", &p1.token, &["search-1"]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let id = first["ticket_id"].as_str().expect("id").to_owned();
    let (status, again) = post("/v1/tickets", &p1.token, &["search-1"]).await;
    assert_eq!(status, StatusCode::OK, "a retry finds its ticket: {again}");
    assert_eq!(again["ticket_id"], id.as_str());
    assert_eq!(again["state"], "queued");
    let (status, body) = post("/v1/tickets", &p1.token, &["search-2"]).await;
    assert_eq!(status, StatusCode::CONFLICT, "another search: {body}");
    assert_eq!(body["errorCode"], 510409);
    // The same key from another player is another ticket.
    let (status, body) = post("/v1/tickets", &p2.token, &["search-1"]).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_ne!(body["ticket_id"], id.as_str());

    // The two are matched; the synchronous retry of p1's request answers with that match.
    let matched = api
        .wait_state(&p1.token, &id, "matched", Duration::from_secs(20))
        .await;
    let (status, answer) = post("/matchmaking", &p1.token, &["search-1"]).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["session"]["id"], matched["match"]["session_id"]);
    assert_eq!(answer["server"], matched["match"]["server"]);

    // Keys are bounded and single.
    let long = "k".repeat(256);
    let (status, body) = post("/matchmaking", &p1.token, &[long.as_str()]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errorCode"], 20002);
    let (status, body) = post("/matchmaking", &p1.token, &["a", "b"]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}
