//! Fault injection over real sockets: every fault kind observed (rates within stated
//! statistical tolerances), decisions reproduced from a seed, faults changed at run time,
//! invalid faults refused naming the field, and `/_fakes/stats` and `/metrics` counting what
//! happened — including the `fakes serve --faults` binary with the DSMC brownout example.
//!
//! Every wait is bounded and polls for the state it needs; nothing sleeps to synchronise.

use std::future::Future;
use std::process::Stdio;
use std::time::{Duration, Instant};

use accelbyte::frame::Frame;
use accelbyte::models::lobby::MessageNotif;
use fakes::dsmc::fleet::{FleetConfig, RegionConfig};
use fakes::faults::{FaultFile, Faults};
use fakes::{FakesConfig, Handle};
use futures_util::{StreamExt, stream};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::common::{self, GAME_CLIENT, NAMESPACE, PLAYER_CLIENT, PLAYER1, PLAYER2};
use crate::dsmc::{call, claim, register};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Long enough for a loaded CI machine; every wait ends as soon as its condition holds.
const WAIT: Duration = Duration::from_secs(10);

const JWKS: &str = "/iam/v3/oauth/jwks";

fn with_faults(file: Value) -> FakesConfig {
    FakesConfig {
        faults: FaultFile::from_value(file).expect("valid fault file"),
        ..FakesConfig::default()
    }
}

fn url(handle: &Handle, path: &str) -> String {
    format!("{}{path}", handle.base_url())
}

async fn add_fault(handle: &Handle, fault: Value) -> Value {
    let (status, body) = call(
        &common::http(),
        Method::POST,
        &url(handle, "/_fakes/faults"),
        None,
        Some(&fault),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

async fn status_of(http: &reqwest::Client, method: Method, url: &str) -> StatusCode {
    http.request(method, url)
        .send()
        .await
        .expect("request sent")
        .status()
}

/// Polls `check` until it holds or `timeout` passes.
async fn until<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `n` GETs of `url`, `concurrency` at a time.
async fn hammer(url: &str, n: usize, concurrency: usize) -> Vec<StatusCode> {
    let http = common::http();
    stream::iter(0..n)
        .map(|_| {
            let http = http.clone();
            async move { status_of(&http, Method::GET, url).await }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

fn count(statuses: &[StatusCode], status: StatusCode) -> u64 {
    statuses.iter().filter(|s| **s == status).count() as u64
}

async fn stats_of(base: &str) -> Value {
    let response = common::http()
        .get(format!("{base}/_fakes/stats"))
        .send()
        .await
        .expect("stats");
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("stats json")
}

async fn metrics_of(base: &str) -> String {
    let response = common::http()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.expect("metrics text")
}

/// The value of the sample whose name and labels are exactly `series`.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The request counter of `route` and `status` in a stats report.
fn route_count(stats: &Value, route: &str, status: u16) -> u64 {
    stats["requests"]["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["route"] == route && r["status"] == status)
        .map(|r| r["count"].as_u64().unwrap_or(0))
        .sum()
}

async fn password_grant(base: &str, user: (&str, &str)) -> Value {
    let response = common::http()
        .post(format!("{base}/iam/v3/oauth/token"))
        .basic_auth(PLAYER_CLIENT, Some(""))
        .form(&[
            ("grant_type", "password"),
            ("username", user.0),
            ("password", user.1),
        ])
        .send()
        .await
        .expect("token request");
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("token json")
}

async fn me(handle: &Handle, token: &str) -> StatusCode {
    let response = common::http()
        .get(url(handle, "/iam/v3/public/users/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("me request");
    response.status()
}

async fn open_socket(handle: &Handle, token: &str) -> Ws {
    let mut request = format!("ws://{}/lobby/", handle.addr)
        .into_client_request()
        .expect("ws request");
    request.headers_mut().insert(
        "Authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("socket opens");
    match next_message(&mut ws).await {
        Message::Text(text) => assert!(text.starts_with("type: connectNotif"), "{text}"),
        other => panic!("expected connectNotif, got {other:?}"),
    }
    ws
}

async fn next_message(ws: &mut Ws) -> Message {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("socket open")
            .expect("frame read");
        if !matches!(message, Message::Ping(_) | Message::Pong(_)) {
            return message;
        }
    }
}

async fn next_notif(ws: &mut Ws) -> MessageNotif {
    match next_message(ws).await {
        Message::Text(text) => {
            let frame = Frame::parse(text.as_str()).expect("frame");
            MessageNotif::from_frame(&frame).expect("messageNotif")
        }
        other => panic!("expected a notification, got {other:?}"),
    }
}

/// The close code the server closes `ws` with.
async fn close_code(ws: &mut Ws) -> u16 {
    match next_message(ws).await {
        Message::Close(Some(frame)) => u16::from(frame.code),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

async fn notify(handle: &Handle, token: &str, user_id: &str, topic: &str, message: &str) {
    let path = format!("/notification/namespaces/{NAMESPACE}/users/{user_id}/freeform");
    let body = json!({"topic": topic, "message": message});
    let (status, body) = call(
        &common::http(),
        Method::POST,
        &url(handle, &path),
        Some(token),
        Some(&body),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

#[tokio::test]
async fn a_20_percent_error_rate_over_2000_requests_lands_within_3_points_and_is_counted() {
    // Binomial: σ = √(0.2 · 0.8 / 2000) ≈ 0.9 points, so ±3 points is beyond 3σ.
    let handle = common::start_with(with_faults(json!({"seed": 1, "faults": [
        {"id": "jwks-errors", "kind": "error", "target": JWKS, "status": 503, "probability": 0.2},
    ]})))
    .await;
    let statuses = hammer(&url(&handle, JWKS), 2000, 16).await;
    let (errors, ok) = (
        count(&statuses, StatusCode::SERVICE_UNAVAILABLE),
        count(&statuses, StatusCode::OK),
    );
    assert_eq!(errors + ok, 2000);
    let rate = errors as f64 / 2000.0;
    assert!((rate - 0.2).abs() < 0.03, "error rate {rate}");

    let stats = stats_of(&handle.base_url()).await;
    assert_eq!(route_count(&stats, JWKS, 503), errors);
    assert_eq!(route_count(&stats, JWKS, 200), ok);
    assert_eq!(
        stats["requests"]["by_service"]["iam"]["by_status"]["503"],
        json!(errors)
    );
    assert_eq!(
        stats["faults"]["injected_by_fault"]["jwks-errors"],
        json!(errors)
    );
    assert_eq!(stats["faults"]["injected_by_kind"]["error"], json!(errors));

    let text = metrics_of(&handle.base_url()).await;
    let series = |status: u16| {
        format!(
            r#"fakes_http_requests_total{{service="iam",method="GET",route="{JWKS}",status="{status}"}}"#
        )
    };
    assert_eq!(metric(&text, &series(503)), Some(errors as f64), "{text}");
    assert_eq!(metric(&text, &series(200)), Some(ok as f64));
    assert_eq!(
        metric(&text, r#"fakes_faults_injected_total{kind="error"}"#),
        Some(errors as f64)
    );
    assert!(text.contains("# TYPE fakes_http_requests_total counter"));
    assert!(text.contains("# HELP fakes_dsmc_claims_failed_total "));
}

#[tokio::test]
async fn fixed_latency_delays_matching_requests_by_at_least_the_delay() {
    let handle = common::start().await;
    add_fault(&handle, json!({"id": "slow-jwks", "kind": "latency", "target": JWKS, "delay": {"dist": "fixed", "value": "250ms"}})).await;
    let http = common::http();
    for _ in 0..3 {
        let started = Instant::now();
        let response = http.get(url(&handle, JWKS)).send().await.expect("jwks");
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            started.elapsed() >= Duration::from_millis(250),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            response
                .headers()
                .get("x-fakes-fault")
                .and_then(|v| v.to_str().ok()),
            Some("slow-jwks")
        );
    }
    let response = http
        .get(url(&handle, "/iam/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers().get("x-fakes-fault").is_none(),
        "other routes untouched"
    );
}

#[tokio::test]
async fn an_outage_fails_every_call_inside_its_window_only() {
    let handle = common::start().await;
    let http = common::http();
    let browser = url(&handle, "/sessionbrowser/healthz");
    add_fault(
        &handle,
        json!({"kind": "outage", "target": "sessionbrowser", "window": {"start_s": 2, "end_s": 3}}),
    )
    .await;
    assert_eq!(
        status_of(&http, Method::GET, &browser).await,
        StatusCode::OK,
        "before the window"
    );
    let down = until(WAIT, || async {
        status_of(&http, Method::GET, &browser).await == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    assert!(down, "the outage starts");
    assert_eq!(
        status_of(&http, Method::GET, &url(&handle, JWKS)).await,
        StatusCode::OK,
        "IAM keeps working"
    );
    let back = until(WAIT, || async {
        status_of(&http, Method::GET, &browser).await == StatusCode::OK
    })
    .await;
    assert!(back, "the outage ends");
}

#[tokio::test]
async fn a_hang_holds_the_request_then_answers_or_fails() {
    let handle = common::start().await;
    let http = common::http();
    let hold = Duration::from_millis(300);
    add_fault(
        &handle,
        json!({"id": "hold", "kind": "hang", "target": JWKS, "hold": "300ms", "then": "answer"}),
    )
    .await;
    let started = Instant::now();
    assert_eq!(
        status_of(&http, Method::GET, &url(&handle, JWKS)).await,
        StatusCode::OK
    );
    assert!(started.elapsed() >= hold);

    // The deprecated spelling still works over the API.
    let replacement = json!({"kind": "hang", "target": JWKS, "hold_s": 0.3});
    let (status, _) = call(
        &http,
        Method::PUT,
        &url(&handle, "/_fakes/faults/hold"),
        None,
        Some(&replacement),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let started = Instant::now();
    let (status, body) = call(&http, Method::GET, &url(&handle, JWKS), None, None).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(body["errorCode"], 20000, "{body}");
    assert!(started.elapsed() >= hold);

    for (fault, words) in [
        (
            json!({"kind": "hang", "target": JWKS, "hold": "1s", "hold_s": 1}),
            "not both",
        ),
        (
            json!({"kind": "hang", "target": JWKS, "hold": "1 second"}),
            "\"1.5s\"",
        ),
    ] {
        let (status, body) = call(
            &http,
            Method::POST,
            &url(&handle, "/_fakes/faults"),
            None,
            Some(&fault),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let text = body["errorMessage"].as_str().unwrap_or_default();
        assert!(text.starts_with("hold: ") && text.contains(words), "{body}");
    }
}

#[tokio::test]
async fn faults_touch_only_their_service_or_route() {
    let handle = common::start().await;
    let http = common::http();
    let token = common::game_token(&handle);
    let dsmc_health = url(&handle, "/dsmcontroller/healthz");
    add_fault(
        &handle,
        json!({"id": "dsmc-down", "kind": "error", "target": "dsmc", "status": 500}),
    )
    .await;
    assert_eq!(
        status_of(&http, Method::GET, &dsmc_health).await,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        status_of(&http, Method::GET, &url(&handle, JWKS)).await,
        StatusCode::OK
    );
    assert_eq!(
        status_of(&http, Method::GET, &url(&handle, "/sessionbrowser/healthz")).await,
        StatusCode::OK
    );

    let claims_only = json!({"kind": "error", "status": 502,
        "target": {"route": "/dsmcontroller/namespaces/{namespace}/sessions/claim"}});
    let (status, _) = call(
        &http,
        Method::PUT,
        &url(&handle, "/_fakes/faults/dsmc-down"),
        None,
        Some(&claims_only),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(register(&handle, &token, "s1").await.0, StatusCode::OK);
    assert_eq!(
        claim(&handle, &token, "s1").await.0,
        StatusCode::BAD_GATEWAY
    );
    assert_eq!(
        status_of(&http, Method::GET, &dsmc_health).await,
        StatusCode::OK
    );

    let gets_only = json!({"kind": "error", "status": 502, "target": {"route": "/dsmcontroller/**", "method": "get"}});
    let (status, _) = call(
        &http,
        Method::PUT,
        &url(&handle, "/_fakes/faults/dsmc-down"),
        None,
        Some(&gets_only),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        status_of(&http, Method::GET, &dsmc_health).await,
        StatusCode::BAD_GATEWAY
    );
    assert_eq!(
        claim(&handle, &token, "s1").await.0,
        StatusCode::NO_CONTENT,
        "POST is not targeted"
    );
}

#[tokio::test]
async fn injected_errors_answer_in_the_routes_ags_shape_and_spare_the_control_api() {
    let handle = common::start_with(with_faults(
        json!({"faults": [{"kind": "error", "status": 503}]}),
    ))
    .await;
    let http = common::http();

    let response = http
        .post(url(&handle, "/iam/v3/oauth/token"))
        .basic_auth(PLAYER_CLIENT, Some(""))
        .form(&[
            ("grant_type", "password"),
            ("username", PLAYER1.0),
            ("password", PLAYER1.1),
        ])
        .send()
        .await
        .expect("token request");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.expect("oauth error");
    assert_eq!(body["error"], "server_error", "OAuth shape: {body}");
    assert!(body["error_description"].is_string());

    let (status, body) = call(
        &http,
        Method::GET,
        &url(&handle, "/dsmcontroller/healthz"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["errorCode"], 20000, "REST shape: {body}");

    let path = format!("/sessionbrowser/namespaces/{NAMESPACE}/gamesession");
    let (_, body) = call(
        &http,
        Method::POST,
        &url(&handle, &path),
        None,
        Some(&json!({})),
    )
    .await;
    assert!(
        body.get("name").is_some() && body.get("attributes").is_some(),
        "ErrorResponseV2: {body}"
    );
    let (_, body) = call(&http, Method::GET, &url(&handle, &path), None, None).await;
    assert!(
        body.get("errorCode").is_some() && body.get("name").is_none(),
        "response.Error: {body}"
    );

    let path = format!("/notification/namespaces/{NAMESPACE}/freeform");
    let (_, body) = call(
        &http,
        Method::POST,
        &url(&handle, &path),
        None,
        Some(&json!({})),
    )
    .await;
    assert_eq!(body["ErrorCode"], 20000, "lobby notification shape: {body}");

    for spared in ["/healthz", "/_fakes/faults", "/_fakes/stats", "/metrics"] {
        assert_eq!(
            status_of(&http, Method::GET, &url(&handle, spared)).await,
            StatusCode::OK,
            "{spared}"
        );
    }
}

#[tokio::test]
async fn notifications_are_dropped_duplicated_and_delayed_on_a_real_socket() {
    let handle = common::start().await;
    let player = common::user_token(&handle, PLAYER1);
    let mut ws = open_socket(&handle, &player.access_token).await;
    let game = common::game_token(&handle);
    for fault in [
        json!({"kind": "drop_notification", "target": {"topic": "drop-*"}}),
        json!({"kind": "duplicate_notification", "target": {"topic": "twice", "message_type": "messageNotif"}}),
        json!({"kind": "delay_notification", "target": {"topic": "late"}, "delay": {"dist": "fixed", "ms": 300}}),
    ] {
        add_fault(&handle, fault).await;
    }
    let user = player.user_id.as_str();

    notify(&handle, &game, user, "drop-me", "1").await;
    notify(&handle, &game, user, "keep", "2").await;
    assert_eq!(
        next_notif(&mut ws).await.payload,
        "2",
        "the dropped one never arrives"
    );

    notify(&handle, &game, user, "twice", "3").await;
    let (a, b) = (next_notif(&mut ws).await, next_notif(&mut ws).await);
    assert_eq!((a.payload.as_str(), b.payload.as_str()), ("3", "3"));
    assert_eq!(a.id, b.id, "a duplicate carries the same id");

    let sent = Instant::now();
    notify(&handle, &game, user, "late", "4").await;
    notify(&handle, &game, user, "keep", "5").await;
    assert_eq!(
        next_notif(&mut ws).await.payload,
        "5",
        "the delayed one is overtaken"
    );
    assert_eq!(next_notif(&mut ws).await.payload, "4");
    assert!(sent.elapsed() >= Duration::from_millis(300));

    let stats = stats_of(&handle.base_url()).await;
    let n = &stats["lobby"]["notifications"];
    assert_eq!(
        (
            n["fault_dropped"].as_u64(),
            n["fault_duplicated"].as_u64(),
            n["fault_delayed"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(n["delivered"], 5, "{n}");
    let text = metrics_of(&handle.base_url()).await;
    assert_eq!(
        metric(
            &text,
            r#"fakes_lobby_notification_faults_total{action="dropped"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &text,
            r#"fakes_lobby_notifications_total{outcome="delivered"}"#
        ),
        Some(5.0)
    );
}

#[tokio::test]
async fn a_disconnect_fault_closes_the_targeted_socket_with_its_close_code() {
    let handle = common::start().await;
    let (p1, p2) = (
        common::user_token(&handle, PLAYER1),
        common::user_token(&handle, PLAYER2),
    );
    let mut ws1 = open_socket(&handle, &p1.access_token).await;
    let _ws2 = open_socket(&handle, &p2.access_token).await;
    // Probability 1 per minute: closed on the first tick.
    add_fault(
        &handle,
        json!({"kind": "disconnect", "target": {"user_id": p1.user_id}, "close_code": 4444}),
    )
    .await;
    assert_eq!(close_code(&mut ws1).await, 4444);
    let lobby = &handle.state.lobby;
    assert!(common::eventually(WAIT, || !lobby.is_connected(NAMESPACE, &p1.user_id)).await);
    assert!(
        lobby.is_connected(NAMESPACE, &p2.user_id),
        "the other socket stays"
    );
    let stats = stats_of(&handle.base_url()).await;
    assert_eq!(stats["faults"]["injected_by_kind"]["disconnect"], 1);
    // The closed socket counts as open until its close handshake ends.
    drop(ws1);
    assert!(common::eventually(WAIT, || lobby.stats().connections_open == 1).await);
}

#[tokio::test]
async fn a_claim_outcome_mix_is_observed_within_tolerance() {
    // 1,000 claims of one session: σ ≤ 1.45 points per rate, so ±5 points is beyond 3σ.
    let handle = common::start().await;
    let token = common::game_token(&handle);
    add_fault(
        &handle,
        json!({"kind": "claim_outcome", "not_found": 0.1, "not_ready": 0.2, "unreachable": 0.3}),
    )
    .await;
    assert_eq!(register(&handle, &token, "mix").await.0, StatusCode::OK);
    let statuses: Vec<StatusCode> = stream::iter(0..1000)
        .map(|_| {
            let (handle, token) = (&handle, &token);
            async move { claim(handle, token, "mix").await.0 }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let share = |status| count(&statuses, status) as f64 / 1000.0;
    assert!(
        (share(StatusCode::NOT_FOUND) - 0.1).abs() < 0.05,
        "404 {}",
        share(StatusCode::NOT_FOUND)
    );
    assert!(
        (share(StatusCode::TOO_EARLY) - 0.2).abs() < 0.05,
        "425 {}",
        share(StatusCode::TOO_EARLY)
    );
    assert!(
        (share(StatusCode::SERVICE_UNAVAILABLE) - 0.3).abs() < 0.05,
        "503 {}",
        share(StatusCode::SERVICE_UNAVAILABLE)
    );
    assert_eq!(
        count(&statuses, StatusCode::NO_CONTENT),
        1,
        "the first unforced claim wins, later ones conflict"
    );

    let stats = stats_of(&handle.base_url()).await;
    let claims = &stats["dsmc"]["claims"];
    assert_eq!(claims["attempted"], 1000);
    assert_eq!(claims["succeeded"], 1);
    assert_eq!(
        claims["failed"]["not_found"],
        json!(count(&statuses, StatusCode::NOT_FOUND))
    );
    assert_eq!(
        claims["failed"]["not_ready"],
        json!(count(&statuses, StatusCode::TOO_EARLY))
    );
    assert_eq!(
        claims["failed"]["unreachable"],
        json!(count(&statuses, StatusCode::SERVICE_UNAVAILABLE))
    );
    assert_eq!(
        claims["failed"]["conflict"],
        json!(count(&statuses, StatusCode::CONFLICT))
    );
    let text = metrics_of(&handle.base_url()).await;
    let unreachable = count(&statuses, StatusCode::SERVICE_UNAVAILABLE) as f64;
    assert_eq!(
        metric(
            &text,
            r#"fakes_dsmc_claims_failed_total{reason="unreachable"}"#
        ),
        Some(unreachable)
    );
}

#[tokio::test]
async fn region_capacity_answers_503_on_register_until_the_fault_goes_and_usage_is_visible() {
    let handle = common::start_with(FakesConfig {
        fleet: FleetConfig {
            regions: vec![RegionConfig {
                name: "eu".into(),
                servers: 3,
            }],
            ..FleetConfig::default()
        },
        ..FakesConfig::default()
    })
    .await;
    let token = common::game_token(&handle);
    let base = handle.base_url();
    add_fault(
        &handle,
        json!({"id": "eu-cap", "kind": "region_capacity", "region": "eu", "capacity": 1}),
    )
    .await;
    assert_eq!(register(&handle, &token, "a").await.0, StatusCode::OK);
    assert_eq!(
        register(&handle, &token, "b").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(claim(&handle, &token, "a").await.0, StatusCode::NO_CONTENT);
    let stats = stats_of(&base).await;
    let eu = &stats["fleet"][0];
    assert_eq!(
        (
            eu["name"].as_str(),
            eu["capacity"].as_u64(),
            eu["busy"].as_u64(),
            eu["free"].as_u64()
        ),
        (Some("eu"), Some(1), Some(1), Some(0))
    );
    assert_eq!(stats["dsmc"]["register_failures"]["no_capacity"], 1);

    let http = common::http();
    assert_eq!(
        status_of(
            &http,
            Method::DELETE,
            &url(&handle, "/_fakes/faults/eu-cap")
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(register(&handle, &token, "b").await.0, StatusCode::OK);
    let admin = url(
        &handle,
        &format!("/dsmcontroller/admin/namespaces/{NAMESPACE}/sessions/a"),
    );
    let (status, _) = call(&http, Method::DELETE, &admin, Some(&token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let stats = stats_of(&base).await;
    let eu = &stats["fleet"][0];
    assert_eq!(
        (
            eu["capacity"].as_u64(),
            eu["busy"].as_u64(),
            eu["ready"].as_u64(),
            eu["free"].as_u64()
        ),
        (Some(3), Some(0), Some(1), Some(2))
    );
    let text = metrics_of(&base).await;
    assert_eq!(
        metric(&text, r#"fakes_fleet_capacity{region="eu"}"#),
        Some(3.0)
    );
    assert_eq!(
        metric(&text, r#"fakes_fleet_sessions{region="eu",status="ready"}"#),
        Some(1.0)
    );
}

#[tokio::test]
async fn ready_delay_faults_keep_new_servers_creating() {
    let handle = common::start().await;
    let token = common::game_token(&handle);
    let http = common::http();
    add_fault(
        &handle,
        json!({"id": "slow-ds", "kind": "ready_delay", "delay": {"dist": "fixed", "ms": 400}}),
    )
    .await;
    let (status, body) = register(&handle, &token, "slow").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["session"]["Server"]["status"], "CREATING", "{body}");
    assert_eq!(
        claim(&handle, &token, "slow").await.0,
        StatusCode::TOO_EARLY
    );
    assert!(
        until(WAIT, || async {
            claim(&handle, &token, "slow").await.0 == StatusCode::NO_CONTENT
        })
        .await,
        "ready after the delay"
    );

    let never = json!({"kind": "ready_delay", "never": true});
    let (status, _) = call(
        &http,
        Method::PUT,
        &url(&handle, "/_fakes/faults/slow-ds"),
        None,
        Some(&never),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        register(&handle, &token, "never").await.1["session"]["Server"]["status"],
        "CREATING"
    );
    assert_eq!(
        status_of(
            &http,
            Method::DELETE,
            &url(&handle, "/_fakes/faults/slow-ds")
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        register(&handle, &token, "quick").await.1["session"]["Server"]["status"],
        "READY",
        "configured delay again"
    );
    assert_eq!(
        claim(&handle, &token, "never").await.0,
        StatusCode::TOO_EARLY,
        "a server keeps the delay it got"
    );
}

#[tokio::test]
async fn token_expiry_faults_shorten_expires_in() {
    let handle = common::start().await;
    let base = handle.base_url();
    add_fault(
        &handle,
        json!({"id": "short", "kind": "token_expiry", "access_s": 7, "refresh_s": 30}),
    )
    .await;
    let token = password_grant(&base, PLAYER1).await;
    assert_eq!(
        (
            token["expires_in"].as_i64(),
            token["refresh_expires_in"].as_i64()
        ),
        (Some(7), Some(30))
    );
    assert_eq!(
        status_of(
            &common::http(),
            Method::DELETE,
            &url(&handle, "/_fakes/faults/short")
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        password_grant(&base, PLAYER1).await["expires_in"],
        3600,
        "restored once the fault is gone"
    );
}

#[tokio::test]
async fn revoking_a_user_mid_run_fails_their_token_and_closes_their_socket() {
    let handle = common::start().await;
    let (p1, p2) = (
        common::user_token(&handle, PLAYER1),
        common::user_token(&handle, PLAYER2),
    );
    let mut ws = open_socket(&handle, &p1.access_token).await;
    assert_eq!(me(&handle, &p1.access_token).await, StatusCode::OK);
    // The window opens a second after the fault is added: the driver revokes, not the API call.
    add_fault(
        &handle,
        json!({"kind": "revoke_user", "user_id": p1.user_id, "window": {"start_s": 1}}),
    )
    .await;
    assert!(
        until(WAIT, || async {
            me(&handle, &p1.access_token).await == StatusCode::UNAUTHORIZED
        })
        .await
    );
    assert_eq!(
        me(&handle, &p2.access_token).await,
        StatusCode::OK,
        "other users keep working"
    );
    assert_eq!(close_code(&mut ws).await, 4020, "token revoked");
}

#[tokio::test]
async fn jwks_rotation_publishes_a_new_key_that_signs_new_tokens_while_old_ones_validate() {
    let handle = common::start().await;
    let http = common::http();
    let jwks = || async {
        call(&http, Method::GET, &url(&handle, JWKS), None, None)
            .await
            .1
    };
    let kid = |token: &str| {
        jsonwebtoken::decode_header(token)
            .expect("jwt header")
            .kid
            .expect("kid")
    };
    let old = common::user_token(&handle, PLAYER1);
    assert_eq!(jwks().await["keys"].as_array().map(Vec::len), Some(1));
    add_fault(&handle, json!({"kind": "jwks_rotation"})).await;
    // Generating an RSA key takes a moment.
    let rotated = until(Duration::from_secs(30), || async {
        jwks().await["keys"].as_array().map(Vec::len) == Some(2)
    })
    .await;
    assert!(rotated, "a second key is published");
    let new = common::user_token(&handle, PLAYER1);
    assert_ne!(kid(&new.access_token), kid(&old.access_token));
    let published: Vec<Value> = jwks().await["keys"].as_array().cloned().unwrap_or_default();
    assert!(published.iter().any(|k| k["kid"] == kid(&new.access_token)));
    assert_eq!(
        me(&handle, &old.access_token).await,
        StatusCode::OK,
        "old tokens still validate"
    );
    assert_eq!(me(&handle, &new.access_token).await, StatusCode::OK);
}

/// `n` sequential GETs of the JWKS: the statuses, in order.
async fn sequence(handle: &Handle, n: usize) -> Vec<u16> {
    let http = common::http();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(
            status_of(&http, Method::GET, &url(handle, JWKS))
                .await
                .as_u16(),
        );
    }
    out
}

#[tokio::test]
async fn the_same_seed_and_call_order_reproduce_the_decisions() {
    let file = json!({"seed": 1234, "faults": [
        {"kind": "error", "target": JWKS, "status": 503, "probability": 0.4},
        {"kind": "error", "target": JWKS, "status": 429, "probability": 0.3},
    ]});
    let a = common::start_with(with_faults(file.clone())).await;
    let b = common::start_with(with_faults(file)).await;
    let first = sequence(&a, 100).await;
    assert_eq!(
        first,
        sequence(&b, 100).await,
        "two fresh instances, same seed"
    );
    assert!(
        [200, 429, 503].iter().all(|s| first.contains(s)),
        "{first:?}"
    );

    let http = common::http();
    let reseed = |seed: u64| {
        let (http, a) = (&http, &a);
        async move {
            let (status, _) = call(
                http,
                Method::PUT,
                &url(a, "/_fakes/faults/seed"),
                None,
                Some(&json!({"seed": seed})),
            )
            .await;
            assert_eq!(status, StatusCode::OK);
        }
    };
    reseed(1234).await;
    assert_eq!(
        sequence(&a, 100).await,
        first,
        "reseeding restarts the decisions"
    );
    reseed(4321).await;
    assert_ne!(
        sequence(&a, 100).await,
        first,
        "another seed, other decisions"
    );
}

#[tokio::test]
async fn faults_change_at_run_time_without_restart() {
    let handle = common::start().await;
    let http = common::http();
    let jwks = url(&handle, JWKS);
    let faults = url(&handle, "/_fakes/faults");
    assert_eq!(status_of(&http, Method::GET, &jwks).await, StatusCode::OK);

    let response = http
        .post(&faults)
        .json(&json!({"id": "x", "kind": "error", "target": JWKS, "status": 503}))
        .send()
        .await
        .expect("add");
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok()),
        Some("/_fakes/faults/x")
    );
    assert_eq!(
        status_of(&http, Method::GET, &jwks).await,
        StatusCode::SERVICE_UNAVAILABLE
    );

    let replacement = json!({"kind": "error", "target": JWKS, "status": 429});
    let (status, _) = call(
        &http,
        Method::PUT,
        &format!("{faults}/x"),
        None,
        Some(&replacement),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        status_of(&http, Method::GET, &jwks).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    let (_, list) = call(&http, Method::GET, &faults, None, None).await;
    assert_eq!(list["faults"][0]["id"], "x");
    assert_eq!(list["faults"][0]["status"], 429);
    assert_eq!(list["faults"][0]["state"]["injected"], 1);
    assert_eq!(list["faults"][0]["state"]["active"], true);
    // A listed fault can be sent back as is (its `state` is ignored).
    let (status, _) = call(
        &http,
        Method::PUT,
        &format!("{faults}/x"),
        None,
        Some(&list["faults"][0]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    assert_eq!(
        status_of(&http, Method::DELETE, &format!("{faults}/x")).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(status_of(&http, Method::GET, &jwks).await, StatusCode::OK);

    add_fault(&handle, json!({"kind": "outage", "target": "iam"})).await;
    add_fault(
        &handle,
        json!({"kind": "latency", "delay": {"dist": "fixed", "ms": 1}}),
    )
    .await;
    assert_eq!(
        status_of(&http, Method::GET, &jwks).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        status_of(&http, Method::DELETE, &faults).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(status_of(&http, Method::GET, &jwks).await, StatusCode::OK);

    let whole = json!({"seed": 5, "faults": [{"kind": "outage", "target": "iam"}]});
    let (status, list) = call(&http, Method::PUT, &faults, None, Some(&whole)).await;
    assert_eq!((status, list["seed"].as_u64()), (StatusCode::OK, Some(5)));
    assert_eq!(
        status_of(&http, Method::GET, &jwks).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        status_of(&http, Method::POST, &url(&handle, "/_fakes/reset")).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        status_of(&http, Method::GET, &jwks).await,
        StatusCode::OK,
        "reset restores the configured (empty) set"
    );
}

#[tokio::test]
async fn invalid_faults_are_refused_with_the_field_named() {
    let handle = common::start().await;
    let http = common::http();
    let faults = url(&handle, "/_fakes/faults");
    let cases = [
        (
            Method::POST,
            json!({"kind": "error", "status": 503, "probability": 1.5}),
            "probability: ",
        ),
        (
            Method::POST,
            json!({"kind": "error", "stauts": 503}),
            "stauts: ",
        ),
        (Method::POST, json!({"kind": "teleport"}), "kind: "),
        (
            Method::POST,
            json!({"kind": "latency", "delay": {"dist": "log_normal", "p50_ms": 900, "p99_ms": 100}}),
            "delay.p99_ms: ",
        ),
        (
            Method::POST,
            json!({"kind": "region_capacity", "region": "mars", "capacity": 0}),
            "region: ",
        ),
        (
            Method::POST,
            json!({"kind": "error", "status": 503, "target": {"topic": "x"}}),
            "target.topic: ",
        ),
        (
            Method::POST,
            json!({"kind": "disconnect", "close_code": 1006}),
            "close_code: ",
        ),
        (
            Method::PUT,
            json!({"faults": [{"kind": "outage"}, {"kind": "outage", "window": {"start_s": -1}}]}),
            "faults[1].window.start_s: ",
        ),
        (Method::PUT, json!({"fault": []}), "fault: "),
    ];
    for (method, body, field) in cases {
        let (status, answer) = call(&http, method, &faults, None, Some(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {answer}");
        assert_eq!(answer["errorCode"], 20002, "{answer}");
        let message = answer["errorMessage"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(field),
            "{body}: {message:?} should start with {field:?}"
        );
    }
    let (status, _) =
        crate::dsmc::call_raw(&http, Method::POST, &faults, "unused", "kind = error").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "not JSON");
    assert_eq!(
        status_of(&http, Method::DELETE, &format!("{faults}/nope")).await,
        StatusCode::NOT_FOUND
    );
    add_fault(
        &handle,
        json!({"id": "once", "kind": "outage", "target": "lobby"}),
    )
    .await;
    let (status, _) = call(
        &http,
        Method::POST,
        &faults,
        None,
        Some(&json!({"id": "once", "kind": "outage"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = call(
        &http,
        Method::PUT,
        &format!("{faults}/seed"),
        None,
        Some(&json!({"seed": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, list) = call(&http, Method::GET, &faults, None, None).await;
    assert_eq!(
        list["faults"].as_array().map(Vec::len),
        Some(1),
        "refused faults change nothing: {list}"
    );
}

fn examples_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

#[test]
fn every_example_fault_file_parses_and_says_what_it_simulates() {
    let context = FakesConfig::default().fault_context();
    let mut seen = 0;
    for entry in std::fs::read_dir(examples_dir()).expect("examples dir") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        assert!(
            text.starts_with("# "),
            "{} opens with a comment",
            path.display()
        );
        let file =
            FaultFile::from_toml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!file.faults.is_empty(), "{}", path.display());
        Faults::check_file(&file, &context).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        seen += 1;
    }
    assert!(seen >= 4, "{seen} example files");
}

/// Runs `fakes serve` with `args` and returns the child and its base URL (from the banner).
async fn serve_binary(args: &[&str]) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fakes"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("fakes starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let base = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("banner") {
            if line.contains("AB_BASE_URL") {
                return line.split_whitespace().last().map(str::to_owned);
            }
        }
        None
    })
    .await
    .expect("banner in time")
    .expect("AB_BASE_URL line");
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, base)
}

#[tokio::test]
async fn fakes_serve_with_the_brownout_example_shows_claim_failures_in_stats_and_metrics() {
    let example = examples_dir().join("dsmc-brownout.toml");
    let (mut child, base) = serve_binary(&["--faults", &example.to_string_lossy()]).await;
    let http = common::http();
    let response = http
        .post(format!("{base}/iam/v3/oauth/token"))
        .basic_auth(GAME_CLIENT.0, Some(GAME_CLIENT.1))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token");
    let token: Value = response.json().await.expect("token json");
    let token = token["access_token"]
        .as_str()
        .expect("access token")
        .to_owned();
    let sessions = format!("{base}/dsmcontroller/namespaces/{NAMESPACE}/sessions");
    let admin = format!("{base}/dsmcontroller/admin/namespaces/{NAMESPACE}/sessions");
    let mut failed = 0;
    for i in 0..60 {
        let id = format!("brownout-{i}");
        let body = crate::dsmc::tutorial_register_body(&id, &["u1", "u2"]);
        assert_eq!(
            call(&http, Method::POST, &sessions, Some(&token), Some(&body))
                .await
                .0,
            StatusCode::OK
        );
        let (status, _) = call(
            &http,
            Method::POST,
            &format!("{sessions}/claim"),
            Some(&token),
            Some(&json!({"session_id": id})),
        )
        .await;
        if status != StatusCode::NO_CONTENT {
            failed += 1;
        }
        assert_eq!(
            call(
                &http,
                Method::DELETE,
                &format!("{admin}/{id}"),
                Some(&token),
                None
            )
            .await
            .0,
            StatusCode::NO_CONTENT
        );
    }
    let stats = stats_of(&base).await;
    let claims = &stats["dsmc"]["claims"];
    assert_eq!(claims["attempted"], 60);
    let unreachable = claims["failed"]["unreachable"].as_u64().unwrap_or(0);
    let not_ready = claims["failed"]["not_ready"].as_u64().unwrap_or(0);
    assert!(unreachable > 0 && not_ready > 0, "{claims}");
    assert_eq!(unreachable + not_ready, failed);
    assert_eq!(stats["faults"]["seed"], 42);
    assert_eq!(stats["fleet"][0]["capacity"], 20);
    let text = metrics_of(&base).await;
    assert_eq!(
        metric(
            &text,
            r#"fakes_dsmc_claims_failed_total{reason="unreachable"}"#
        ),
        Some(unreachable as f64)
    );
    assert_eq!(
        metric(
            &text,
            r#"fakes_dsmc_claims_failed_total{reason="not_ready"}"#
        ),
        Some(not_ready as f64)
    );
    assert_eq!(
        metric(&text, r#"fakes_fleet_capacity{region="us-east-1"}"#),
        Some(20.0)
    );
    let _ = child.kill().await;
}

#[tokio::test]
async fn fakes_serve_refuses_a_bad_fault_file_naming_the_file_and_the_field() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let path = std::env::temp_dir().join(format!(
        "matchbench-bad-faults-{}-{nanos}.toml",
        std::process::id()
    ));
    std::fs::write(
        &path,
        "[[faults]]\nkind = \"error\"\nstatus = 503\nprobabilty = 0.2\n",
    )
    .expect("write");
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_fakes"))
            .args(["serve", "--addr", "127.0.0.1:0", "--faults"])
            .arg(&path)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("exits in time")
    .expect("runs");
    let _ = std::fs::remove_file(&path);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    assert!(
        stderr.contains(&name) && stderr.contains("faults[0].probabilty"),
        "{stderr}"
    );
}
