//! fakes' match2 calling the matchmaker as its Extend match function over gRPC, end to end:
//! the function on a loopback port, registered in fakes by name; a pool naming it; two players
//! queue, hear `OnMatchFound` on their lobby sockets, join the game session and see its
//! dedicated server AVAILABLE. And a pool whose function is unreachable keeps its tickets
//! queued, with the failure counted in fakes' stats. The function checks its callers' tokens
//! against fakes' IAM, as an Extend app does against AGS's: fakes' match2 presents its own
//! client's token; a function wanting a permission that client lacks refuses every call.

use accelbyte::models::lobby::MessageNotif;
use base64::Engine;
use std::sync::Arc;
use std::time::Duration;

use accelbyte::permission::Permission;
use matchmaker::ags::Ags;
use matchmaker::auth::{Auth, AuthConfig};
use matchmaker::extend::{CallerCheck, MatchFunctionService, RequireToken, spawn_grpc_with};
use matchmaker::metrics::Metrics;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::stack::{self, NAMESPACE, Player, SOON};

async fn call(
    fakes: &fakes::Handle,
    method: Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", fakes.base_url()))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The matchmaker's token validator against `fakes`' IAM, loaded.
async fn validator(fakes: &fakes::Handle) -> Auth {
    let config = stack::config(fakes);
    let metrics = Arc::new(Metrics::new(["1v1"], "memory"));
    let ags = Ags::new(config.ags, Duration::from_secs(5), metrics.clone()).expect("client");
    let auth = Auth::new(ags, AuthConfig::default(), metrics);
    auth.refresh_keys().await.expect("keys");
    auth.refresh_revocations().await.expect("revocation list");
    auth
}

/// Registers the function at `url` as `name` through fakes' control API.
async fn register(fakes: &fakes::Handle, name: &str, url: &str, timeout_ms: u64) {
    let answer = reqwest::Client::new()
        .put(format!(
            "{}/_fakes/match-functions/{name}",
            fakes.base_url()
        ))
        .json(&json!({"url": url, "timeout_ms": timeout_ms}))
        .send()
        .await
        .expect("register");
    assert_eq!(answer.status(), StatusCode::NO_CONTENT);
}

/// A DS template, a rule set in the matchmaker's rules dialect, and a pool naming `function`.
async fn pool(fakes: &fakes::Handle, admin: &str, name: &str, function: &str) {
    let template = json!({
        "name": format!("{name}-template"), "type": "DS", "joinability": "INVITE_ONLY",
        "minPlayers": 2, "maxPlayers": 2, "inviteTimeout": 60, "inactiveTimeout": 60,
        "clientVersion": "1.0.0", "deployment": "default", "requestedRegions": ["us-east-1"],
        "persistent": false, "textChat": false
    });
    let (status, body) = call(
        fakes,
        Method::POST,
        &format!("/session/v1/admin/namespaces/{NAMESPACE}/configuration"),
        admin,
        Some(&template),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let rules = json!({
        "name": format!("{name}-rules"), "enable_custom_match_function": true,
        "data": {
            "alliance": {"min_number": 2, "max_number": 2, "player_min_number": 1, "player_max_number": 1},
            "skill_attribute": "mmr",
            "mmr_window": {"start": 100, "widen_per_sec": 10, "max": 1000}
        }
    });
    let base = format!("/match2/v1/namespaces/{NAMESPACE}");
    let (status, body) = call(
        fakes,
        Method::POST,
        &format!("{base}/rulesets"),
        admin,
        Some(&rules),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let pool = json!({
        "name": name, "rule_set": format!("{name}-rules"),
        "session_template": format!("{name}-template"), "match_function": function,
        "match_function_override": {}, "ticket_expiration_seconds": 120,
        "backfill_ticket_expiration_seconds": 0, "backfill_proposal_expiration_seconds": 0,
        "auto_accept_backfill_proposal": false
    });
    let (status, body) = call(
        fakes,
        Method::POST,
        &format!("{base}/match-pools"),
        admin,
        Some(&pool),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn ticket(fakes: &fakes::Handle, token: &str, pool: &str, mmr: i64) -> String {
    let body =
        json!({"matchPool": pool, "attributes": {"mmr": mmr}, "latencies": {"us-east-1": 30}});
    let (status, answer) = call(
        fakes,
        Method::POST,
        &format!("/match2/v1/namespaces/{NAMESPACE}/match-tickets"),
        token,
        Some(&body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer["matchTicketID"]
        .as_str()
        .expect("ticket id")
        .to_owned()
}

/// The next service notification on `topic` whose payload passes `check`, decoded.
async fn event(player: &mut Player, topic: &str, check: impl Fn(&Value) -> bool) -> Value {
    let decode = |m: &MessageNotif| -> Option<Value> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&m.payload)
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    let wanted = |m: &MessageNotif| m.topic == topic && decode(m).is_some_and(|v| check(&v));
    let message = tokio::time::timeout(SOON, player.lobby.wait_message(wanted))
        .await
        .unwrap_or_else(|_| panic!("{} hears {topic} within {SOON:?}", player.id()))
        .expect("lobby stays open");
    decode(&message).expect("decoded above")
}

async fn stats(fakes: &fakes::Handle) -> Value {
    reqwest::get(format!("{}/_fakes/stats", fakes.base_url()))
        .await
        .expect("stats")
        .json()
        .await
        .expect("stats json")
}

#[tokio::test]
async fn fakes_match2_pool_is_matched_by_the_matchmaker_as_its_extend_function() {
    let fakes = stack::fakes().await;
    let callers = RequireToken::new(CallerCheck::new(validator(&fakes).await));
    let function = spawn_grpc_with(MatchFunctionService::default(), callers)
        .await
        .expect("match function starts");
    register(&fakes, "matchbench-mf", &function.url(), 5_000).await;
    let admin = stack::game_client(&fakes)
        .login_client()
        .await
        .expect("game token")
        .access_token;
    pool(&fakes, &admin, "extend-duel", "matchbench-mf").await;

    let accounts = stack::accounts(&fakes, 2).await;
    let mut players = Vec::new();
    for account in accounts {
        players.push(Player::connect(&fakes, account).await);
    }
    let t1 = ticket(&fakes, &players[0].account.token, "extend-duel", 1000).await;
    let t2 = ticket(&fakes, &players[1].account.token, "extend-duel", 1040).await;

    let mut session_id = String::new();
    for player in &mut players {
        let found = event(player, "OnMatchFound", |_| true).await;
        assert_eq!(found["matchPool"], "extend-duel");
        let tickets: Vec<&str> = found["tickets"]
            .as_array()
            .expect("tickets")
            .iter()
            .filter_map(|t| t["ticketID"].as_str())
            .collect();
        assert!(
            tickets.contains(&t1.as_str()) && tickets.contains(&t2.as_str()),
            "{found}"
        );
        let teams = found["teams"].as_array().expect("teams");
        assert_eq!(teams.len(), 2, "one player a team: {found}");
        session_id = found["id"].as_str().expect("session id").to_owned();
    }

    let path = format!("/session/v1/public/namespaces/{NAMESPACE}/gamesessions/{session_id}");
    for player in &players {
        let (status, body) = call(
            &fakes,
            Method::POST,
            &format!("{path}/join"),
            &player.account.token,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    event(&mut players[1], "OnDSStatusChanged", |p| {
        p["session"]["DSInformation"]["StatusV2"] == "AVAILABLE"
    })
    .await;
    let (status, session) = call(&fakes, Method::GET, &path, &players[0].account.token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(session["DSInformation"]["StatusV2"], "AVAILABLE");
    assert_eq!(session["matchPool"], "extend-duel");
    let stats = stats(&fakes).await;
    assert!(
        stats["match2"]["calls_ok"].as_u64().is_some_and(|n| n >= 1),
        "{stats}"
    );
    function.shutdown().await.expect("function stops");
}

#[tokio::test]
async fn a_function_refusing_fakes_token_keeps_tickets_queued_and_says_why() {
    let fakes = stack::fakes().await;
    // fakes' match2 client holds MATCHMAKING:FUNCTIONS, not this.
    let wanted = Permission::new("ADMIN:NAMESPACE:{namespace}:EXTEND:APP", 2);
    let callers = RequireToken::new(CallerCheck::with_permission(
        validator(&fakes).await,
        wanted,
    ));
    let function = spawn_grpc_with(MatchFunctionService::default(), callers)
        .await
        .expect("match function starts");
    register(&fakes, "strict", &function.url(), 5_000).await;
    let admin = stack::game_client(&fakes)
        .login_client()
        .await
        .expect("game token")
        .access_token;
    pool(&fakes, &admin, "strict-duel", "strict").await;
    let accounts = stack::accounts(&fakes, 2).await;
    for account in &accounts {
        ticket(&fakes, &account.token, "strict-duel", 1000).await;
    }
    fakes::match2::engine::tick(&fakes.state).await;
    let stats = stats(&fakes).await;
    assert_eq!(stats["match2"]["calls_ok"], 0, "{stats}");
    let error = stats["match2"]["last_error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("strict: ")
            && error.contains("PermissionDenied")
            && error.contains("ADMIN:NAMESPACE:matchbench:EXTEND:APP"),
        "the token was presented, checked and found short of the permission: {stats}"
    );
    assert_eq!(fakes.state.match2.queued(), 2);
    function.shutdown().await.expect("function stops");
}

#[tokio::test]
async fn an_unreachable_function_keeps_tickets_queued_and_is_counted() {
    // A port that was just free: nothing listens there.
    let vacant = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", vacant.local_addr().expect("addr"));
    drop(vacant);
    let fakes = stack::fakes().await;
    register(&fakes, "gone", &url, 500).await;
    let admin = stack::game_client(&fakes)
        .login_client()
        .await
        .expect("game token")
        .access_token;
    pool(&fakes, &admin, "orphan", "gone").await;
    let accounts = stack::accounts(&fakes, 2).await;
    let mut ids = Vec::new();
    for account in &accounts {
        ids.push(ticket(&fakes, &account.token, "orphan", 1000).await);
    }
    // A pass of the matching loop calls the function, which fails: counted, named, no match.
    fakes::match2::engine::tick(&fakes.state).await;
    let failed = stats(&fakes).await;
    assert!(
        failed["match2"]["calls_failed"]
            .as_u64()
            .is_some_and(|n| n >= 1),
        "{failed}"
    );
    assert_eq!(failed["match2"]["calls_ok"], 0, "{failed}");
    let error = failed["match2"]["last_error"].as_str().unwrap_or_default();
    assert!(error.starts_with("gone: "), "{failed}");
    for (account, id) in accounts.iter().zip(&ids) {
        let (status, body) = call(
            &fakes,
            Method::GET,
            &format!("/match2/v1/namespaces/{NAMESPACE}/match-tickets/{id}"),
            &account.token,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["isActive"], true, "still queued: {body}");
        assert_eq!(body["matchFound"], false, "{body}");
    }
    assert_eq!(fakes.state.match2.queued(), 2);
}
