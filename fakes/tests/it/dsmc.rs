//! DSMC routes over real sockets: the tutorial's register → claim → get, every failure status,
//! the CREATING → READY → BUSY lifecycle with a ready delay, releasing servers, fault hooks, and
//! a race of many registers and claims against a small fleet.
//!
//! Also holds the request helpers the session browser tests share.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use fakes::FakesConfig;
use fakes::dsmc::fleet::{ClaimAttempt, ClaimFailure, FleetConfig, RegionConfig};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{self, NAMESPACE, PLAYER1};

/// Sends a request and returns the status and the JSON body (`Null` when empty).
pub(crate) async fn call(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = http.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let text = response.text().await.expect("body read");
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("non-JSON body {text:?}: {e}"))
    };
    (status, json)
}

/// Sends raw bytes as a JSON body.
pub(crate) async fn call_raw(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    token: &str,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, Value) {
    let response = http
        .request(method, url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request sent");
    let status = response.status();
    let json = response.json().await.unwrap_or(Value::Null);
    (status, json)
}

/// `response.Error`: `errorCode` + `errorMessage`, none of ErrorResponseV2's extra keys.
pub(crate) fn assert_rest_error(body: &Value, code: i64) {
    assert_eq!(body["errorCode"], json!(code), "{body}");
    assert!(
        body["errorMessage"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(
        body.get("name").is_none() && body.get("attributes").is_none(),
        "not response.Error: {body}"
    );
}

/// A token of the seeded IAM validator client, which holds no session browser or DSM permission.
pub(crate) fn unprivileged_client_token(handle: &fakes::Handle) -> String {
    let client = handle
        .state
        .iam
        .client(common::IAM_CLIENT.0)
        .expect("seeded iam client");
    handle
        .state
        .iam
        .grant_client_credentials(&client)
        .expect("client token")
        .access_token
}

/// The DSMC register body exactly as the tutorial sends it.
pub(crate) fn tutorial_register_body(session_id: &str, user_ids: &[&str]) -> Value {
    let members: Vec<Value> = user_ids.iter().map(|u| json!({"user_id": u})).collect();
    json!({
        "client_version": "",
        "configuration": "",
        "deployment": "default",
        "game_mode": "1v1",
        "matching_allies": [{"matching_parties": [{
            "party_attributes": {},
            "party_id": "0f8e3c7d9a2b4e6f8a1c3e5d7b9f2a4c",
            "party_members": members,
        }]}],
        "namespace": NAMESPACE,
        "pod_name": "",
        "region": "",
        "session_id": session_id,
    })
}

pub(crate) fn sessions_url(handle: &fakes::Handle) -> String {
    format!(
        "{}/dsmcontroller/namespaces/{NAMESPACE}/sessions",
        handle.base_url()
    )
}

fn admin_url(handle: &fakes::Handle) -> String {
    format!(
        "{}/dsmcontroller/admin/namespaces/{NAMESPACE}/sessions",
        handle.base_url()
    )
}

/// Registers `session_id` (tutorial body) and returns status and body.
pub(crate) async fn register(
    handle: &fakes::Handle,
    token: &str,
    session_id: &str,
) -> (StatusCode, Value) {
    let body = tutorial_register_body(session_id, &["u1", "u2"]);
    call(
        &common::http(),
        Method::POST,
        &sessions_url(handle),
        Some(token),
        Some(&body),
    )
    .await
}

pub(crate) async fn claim(
    handle: &fakes::Handle,
    token: &str,
    session_id: &str,
) -> (StatusCode, Value) {
    let url = format!("{}/claim", sessions_url(handle));
    call(
        &common::http(),
        Method::POST,
        &url,
        Some(token),
        Some(&json!({"session_id": session_id})),
    )
    .await
}

async fn get(handle: &fakes::Handle, token: &str, session_id: &str) -> (StatusCode, Value) {
    let url = format!("{}/{session_id}", sessions_url(handle));
    call(&common::http(), Method::GET, &url, Some(token), None).await
}

fn fleet(regions: &[(&str, usize)], ready_delay: Duration) -> FakesConfig {
    FakesConfig {
        fleet: FleetConfig {
            regions: regions
                .iter()
                .map(|(name, servers)| RegionConfig {
                    name: (*name).to_owned(),
                    servers: *servers,
                })
                .collect(),
            ready_delay,
            ..FleetConfig::default()
        },
        ..FakesConfig::default()
    }
}

/// Polls GET until the session's server reports `status`, for at most `timeout`.
async fn wait_for_status(
    handle: &fakes::Handle,
    token: &str,
    session_id: &str,
    status: &str,
    timeout: Duration,
) -> Value {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let (code, body) = get(handle, token, session_id).await;
        assert_eq!(code, StatusCode::OK, "{body}");
        if body["session"]["Server"]["status"] == status {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never reached {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn assert_rfc3339(text: &Value) {
    let text = text.as_str().unwrap_or_default();
    assert!(
        chrono::DateTime::parse_from_rfc3339(text).is_ok(),
        "not RFC 3339: {text:?}"
    );
}

#[tokio::test]
async fn the_tutorial_registers_claims_and_reads_the_server() {
    let handle = common::start().await;
    let token = common::game_token(&handle);

    let (status, body) = register(&handle, &token, "tutorialsession01").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let server = &body["session"]["Server"];
    assert!(
        body["session"].get("server").is_none(),
        "the key is capital S: {body}"
    );
    assert_eq!(server["ip"], "127.0.0.1");
    assert_eq!(server["port"], 7777);
    assert_eq!(
        server["status"], "READY",
        "a zero ready delay is ready at once"
    );
    assert_eq!(server["pod_name"], "ds-us-east-1-1");
    assert_eq!(server["region"], "us-east-1");
    assert_eq!(server["deployment"], "default");
    assert_eq!(body["session"]["id"], "tutorialsession01");
    assert_eq!(body["session"]["namespace"], NAMESPACE);

    let (status, body) = claim(&handle, &token, "tutorialsession01").await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));

    let (status, body) = get(&handle, &token, "tutorialsession01").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let server = &body["session"]["Server"];
    assert_eq!(
        (server["ip"].clone(), server["port"].clone()),
        (json!("127.0.0.1"), json!(7777))
    );
    assert_eq!(server["status"], "BUSY");
    let history: Vec<&str> = server["status_history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(history, ["CREATING", "READY", "BUSY"]);
    for entry in server["status_history"].as_array().expect("history") {
        assert_rfc3339(&entry["time_stamp"]);
    }
    assert_rfc3339(&server["created_at"]);
    assert_rfc3339(&server["last_update"]);

    let stats = handle.state.dsmc.stats();
    assert_eq!(
        (
            stats.registers,
            stats.claims_attempted,
            stats.claims_succeeded
        ),
        (1, 1, 1)
    );
    assert_eq!(stats.regions[0].busy, 1);
    assert_eq!(stats.regions[0].free, 99);
}

#[tokio::test]
async fn bad_register_bodies_are_refused() {
    let handle = common::start().await;
    let token = common::game_token(&handle);
    let http = common::http();
    let url = sessions_url(&handle);

    let mut missing = tutorial_register_body("s1", &["u1"]);
    missing
        .as_object_mut()
        .expect("object")
        .remove("deployment");
    let (status, body) = call(&http, Method::POST, &url, Some(&token), Some(&missing)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_rest_error(&body, 20002);

    let (status, body) = call_raw(&http, Method::POST, &url, &token, "{\"session_id\": ").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_rest_error(&body, 20019);

    let (status, body) = call(
        &http,
        Method::POST,
        &url,
        Some(&token),
        Some(&tutorial_register_body("", &[])),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_rest_error(&body, 20002);

    let mut other_ns = tutorial_register_body("s1", &["u1"]);
    other_ns["namespace"] = json!("elsewhere");
    let (status, body) = call(&http, Method::POST, &url, Some(&token), Some(&other_ns)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let mut unknown_region = tutorial_register_body("s1", &["u1"]);
    unknown_region["region"] = json!("mars-1");
    let (status, body) = call(
        &http,
        Method::POST,
        &url,
        Some(&token),
        Some(&unknown_region),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("us-east-1")),
        "{body}"
    );

    let mut unknown_pod = tutorial_register_body("s1", &["u1"]);
    unknown_pod["pod_name"] = json!("ds-nowhere-1");
    let (status, body) = call(&http, Method::POST, &url, Some(&token), Some(&unknown_pod)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_rest_error(&body, 20002);

    let (status, _) = register(&handle, &token, "s1").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = register(&handle, &token, "s1").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_rest_error(&body, 20002);

    let stats = handle.state.dsmc.stats();
    assert_eq!(stats.registers, 1);
    assert_eq!(stats.register_failures.exists, 1);
    assert_eq!(stats.register_failures.pod_not_found, 1);
    assert_eq!(stats.register_failures.invalid, 1);
    assert_eq!(stats.regions[0].free, 99, "failed registers hold no server");
}

#[tokio::test]
async fn every_route_checks_token_namespace_and_permission() {
    let handle = common::start().await;
    let game = common::game_token(&handle);
    let player = common::user_token(&handle, PLAYER1).access_token;
    let base = handle.base_url();
    let http = common::http();
    let (status, _) = register(&handle, &game, "authcheck").await;
    assert_eq!(status, StatusCode::OK);

    let claim_body = json!({"session_id": "authcheck"});
    let register_body = tutorial_register_body("authcheck2", &["u1"]);
    let routes: Vec<(Method, String, Option<&Value>)> = vec![
        (
            Method::POST,
            "/dsmcontroller/namespaces/{ns}/sessions".into(),
            Some(&register_body),
        ),
        (
            Method::POST,
            "/dsmcontroller/namespaces/{ns}/sessions/claim".into(),
            Some(&claim_body),
        ),
        (
            Method::GET,
            "/dsmcontroller/namespaces/{ns}/sessions/authcheck".into(),
            None,
        ),
        (
            Method::DELETE,
            "/dsmcontroller/namespaces/{ns}/sessions/authcheck/cancel".into(),
            None,
        ),
        (
            Method::GET,
            "/dsmcontroller/admin/namespaces/{ns}/sessions".into(),
            None,
        ),
        (
            Method::DELETE,
            "/dsmcontroller/admin/namespaces/{ns}/sessions/authcheck".into(),
            None,
        ),
    ];
    for (method, path, body) in &routes {
        let url = format!("{base}{}", path.replace("{ns}", NAMESPACE));
        let (status, error) = call(&http, method.clone(), &url, None, *body).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} without a token"
        );
        assert_rest_error(&error, 20001);

        let (status, error) = call(&http, method.clone(), &url, Some("not-a-jwt"), *body).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} with garbage"
        );
        assert_rest_error(&error, 20001);

        let (status, error) = call(&http, method.clone(), &url, Some(&player), *body).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{method} {path}: players hold no DSM permission"
        );
        assert_rest_error(&error, 20013);

        let elsewhere = format!("{base}{}", path.replace("{ns}", "no-such-namespace"));
        let (status, error) = call(&http, method.clone(), &elsewhere, Some(&game), *body).await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "{method} {path} in an unknown namespace"
        );
        assert_rest_error(&error, 20002);
    }
    // None of the refused calls touched the session.
    let (status, body) = get(&handle, &game, "authcheck").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["session"]["Server"]["status"], "READY");
}

#[tokio::test]
async fn claims_fail_for_unknown_claimed_and_malformed_requests() {
    let handle = common::start().await;
    let token = common::game_token(&handle);
    let http = common::http();
    let url = format!("{}/claim", sessions_url(&handle));

    let (status, body) = claim(&handle, &token, "never-registered").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_rest_error(&body, 20002);

    let (status, body) = call(&http, Method::POST, &url, Some(&token), Some(&json!({}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_rest_error(&body, 20002);

    let (status, body) = call_raw(&http, Method::POST, &url, &token, "not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_rest_error(&body, 20019);

    register(&handle, &token, "claimed").await;
    // The 2025 spec's extra fields are accepted.
    let full = json!({"session_id": "claimed", "game_mode": "1v1", "namespace": NAMESPACE,
        "matching_allies": [], "notification_payload": {"k": "v"}});
    let (status, _) = call(&http, Method::POST, &url, Some(&token), Some(&full)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = claim(&handle, &token, "claimed").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_rest_error(&body, 20002);

    let (status, body) = get(&handle, &token, "never-registered").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_rest_error(&body, 20002);

    let stats = handle.state.dsmc.stats();
    assert_eq!(
        stats.claims_attempted, 3,
        "malformed bodies never reach the fleet"
    );
    assert_eq!(stats.claims_succeeded, 1);
    assert_eq!(
        (stats.claims_failed.not_found, stats.claims_failed.conflict),
        (1, 1)
    );
}

#[tokio::test]
async fn a_ready_delay_gives_425_until_ready_and_cancel_only_while_creating() {
    let handle = common::start_with(fleet(&[("us-east-1", 3)], Duration::from_secs(1))).await;
    let token = common::game_token(&handle);
    let http = common::http();

    let (status, body) = register(&handle, &token, "slow").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["session"]["Server"]["status"], "CREATING");
    let (status, body) = claim(&handle, &token, "slow").await;
    assert_eq!(status, StatusCode::TOO_EARLY, "{body}");
    assert_rest_error(&body, 20002);

    // Cancelling a CREATING session frees its server at once.
    let (status, _) = register(&handle, &token, "cancelled").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(handle.state.dsmc.stats().regions[0].free, 1);
    let cancel_url = format!("{}/cancelled/cancel", sessions_url(&handle));
    let (status, body) = call(&http, Method::DELETE, &cancel_url, Some(&token), None).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    assert_eq!(handle.state.dsmc.stats().regions[0].free, 2);
    let (status, _) = call(&http, Method::DELETE, &cancel_url, Some(&token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "cancelled sessions are gone");

    let body = wait_for_status(&handle, &token, "slow", "READY", Duration::from_secs(10)).await;
    let history = body["session"]["Server"]["status_history"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(history.len(), 2, "{body}");
    let at = |i: usize| {
        chrono::DateTime::parse_from_rfc3339(history[i]["time_stamp"].as_str().unwrap_or_default())
            .expect("time")
    };
    assert!(
        at(1) - at(0) >= chrono::Duration::milliseconds(999),
        "READY is stamped when it became ready"
    );

    let (status, _) = claim(&handle, &token, "slow").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let cancel_url = format!("{}/slow/cancel", sessions_url(&handle));
    let (status, body) = call(&http, Method::DELETE, &cancel_url, Some(&token), None).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a BUSY server cannot be cancelled"
    );
    assert_rest_error(&body, 20002);

    let stats = handle.state.dsmc.stats();
    assert_eq!(
        (
            stats.claims_failed.not_ready,
            stats.claims_succeeded,
            stats.sessions_cancelled
        ),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn a_full_fleet_answers_503_until_a_delete_releases_a_server() {
    let handle = common::start_with(fleet(&[("us-east-1", 2)], Duration::ZERO)).await;
    let token = common::game_token(&handle);
    let http = common::http();

    let (_, first) = register(&handle, &token, "one").await;
    let (status, _) = register(&handle, &token, "two").await;
    assert_eq!(status, StatusCode::OK);
    claim(&handle, &token, "one").await;
    let (status, body) = register(&handle, &token, "three").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_rest_error(&body, 20000);

    let delete_url = format!("{}/one", admin_url(&handle));
    let (status, body) = call(&http, Method::DELETE, &delete_url, Some(&token), None).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (status, body) = call(&http, Method::DELETE, &delete_url, Some(&token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_rest_error(&body, 20002);
    let (status, _) = get(&handle, &token, "one").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = register(&handle, &token, "three").await;
    assert_eq!(status, StatusCode::OK, "the released server is free again");
    assert_eq!(
        body["session"]["Server"]["pod_name"],
        first["session"]["Server"]["pod_name"]
    );
    assert_eq!(
        body["session"]["Server"]["status"], "READY",
        "a reused server starts over"
    );

    let stats = handle.state.dsmc.stats();
    assert_eq!(
        (stats.register_failures.no_capacity, stats.sessions_deleted),
        (1, 1)
    );
}

#[tokio::test]
async fn regions_pods_and_the_admin_list() {
    let handle = common::start_with(fleet(
        &[("eu-west-1", 2), ("ap-south-1", 2)],
        Duration::ZERO,
    ))
    .await;
    let token = common::game_token(&handle);
    let http = common::http();
    let url = sessions_url(&handle);

    for id in ["a", "b", "c"] {
        let (status, body) = register(&handle, &token, id).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let mut pinned = tutorial_register_body("d", &["u1"]);
    pinned["pod_name"] = json!("ds-ap-south-1-2");
    let (status, body) = call(&http, Method::POST, &url, Some(&token), Some(&pinned)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["session"]["Server"]["pod_name"], "ds-ap-south-1-2");
    assert_eq!(body["session"]["Server"]["port"], 7777 + 3);
    pinned["session_id"] = json!("e");
    let (status, _) = call(&http, Method::POST, &url, Some(&token), Some(&pinned)).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "that server is taken"
    );
    pinned["region"] = json!("eu-west-1");
    let (status, _) = call(&http, Method::POST, &url, Some(&token), Some(&pinned)).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the pod is not in that region"
    );

    let list_url = format!("{}?count=2", admin_url(&handle));
    let (status, page1) = call(&http, Method::GET, &list_url, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{page1}");
    let ids = |page: &Value| -> Vec<String> {
        page["sessions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|s| s["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(ids(&page1), ["a", "b"], "oldest first");
    let regions: Vec<Value> = page1["sessions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| s["region"].clone())
        .collect();
    assert_eq!(
        regions,
        [json!("eu-west-1"), json!("eu-west-1")],
        "the first configured region first"
    );
    assert_eq!(page1["paging"]["previous"], "");
    let next = page1["paging"]["next"]
        .as_str()
        .expect("next link")
        .to_owned();
    let (status, page2) = call(
        &http,
        Method::GET,
        &format!("{}{next}", handle.base_url()),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&page2), ["c", "d"]);
    assert_eq!(
        page2["sessions"][0]["region"], "ap-south-1",
        "the first region was full"
    );
    assert_eq!(page2["paging"]["next"], "");
    assert!(
        page2["paging"]["previous"]
            .as_str()
            .is_some_and(|p| p.contains("offset=0")),
        "{page2}"
    );

    let (_, filtered) = call(
        &http,
        Method::GET,
        &format!("{}?region=ap-south-1&withServer=true", admin_url(&handle)),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(ids(&filtered), ["c", "d"]);
    let (status, body) = call(
        &http,
        Method::GET,
        &format!("{}?count=many", admin_url(&handle)),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_rest_error(&body, 20021);
    let (status, _) = call(
        &http,
        Method::GET,
        &format!("{}?withServer=maybe", admin_url(&handle)),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let usage = handle.state.dsmc.stats().regions;
    assert_eq!(
        (usage[0].ready, usage[0].free, usage[1].ready, usage[1].free),
        (2, 0, 2, 0)
    );
}

#[tokio::test]
async fn fault_hooks_force_claim_outcomes_and_shrink_regions() {
    let handle = common::start_with(fleet(&[("us-east-1", 3)], Duration::ZERO)).await;
    let token = common::game_token(&handle);
    register(&handle, &token, "flaky").await;

    handle
        .state
        .dsmc
        .set_claim_override(Some(Arc::new(|attempt: &ClaimAttempt<'_>| {
            (attempt.session_id == "flaky").then_some(ClaimFailure::Unreachable)
        })));
    let (status, body) = claim(&handle, &token, "flaky").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_rest_error(&body, 20000);
    handle.state.dsmc.set_claim_override(None);
    let (status, _) = claim(&handle, &token, "flaky").await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "a failed claim leaves the session claimable"
    );

    assert_eq!(handle.state.dsmc.set_region_capacity("us-east-1", 1), Ok(1));
    let (status, _) = register(&handle, &token, "over").await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "one server in use is the limit"
    );
    assert!(handle.state.dsmc.set_region_capacity("mars-1", 5).is_err());
    assert_eq!(
        handle.state.dsmc.set_region_capacity("us-east-1", 50),
        Ok(3),
        "clamped to the servers"
    );
    let (status, _) = register(&handle, &token, "over").await;
    assert_eq!(status, StatusCode::OK);

    let stats = handle.state.dsmc.stats();
    assert_eq!(stats.claims_failed.unreachable, 1);
    handle.state.reset();
    let stats = handle.state.dsmc.stats();
    assert_eq!(
        (stats.registers, stats.regions[0].free),
        (0, 3),
        "reset frees everything"
    );
}

/// 400 racing register+claim attempts against 10 servers: exactly 10 sessions get a server, each
/// is claimed exactly once (the second concurrent claim of each gets 409), and no server is in
/// two sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registers_and_claims_never_share_a_server() {
    let handle = common::start_with(fleet(&[("us-east-1", 10)], Duration::ZERO)).await;
    let token = Arc::new(common::game_token(&handle));
    let http = common::http();
    let url = Arc::new(sessions_url(&handle));

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..400 {
        let (http, token, url) = (http.clone(), token.clone(), url.clone());
        tasks.spawn(async move {
            let id = format!("race-{i}");
            let body = tutorial_register_body(&id, &["u1"]);
            let (registered, _) = call(&http, Method::POST, &url, Some(&token), Some(&body)).await;
            let mut claims = Vec::new();
            if registered == StatusCode::OK {
                let claim_url = format!("{url}/claim");
                let claim_body = json!({"session_id": id});
                let (a, b) = tokio::join!(
                    call(
                        &http,
                        Method::POST,
                        &claim_url,
                        Some(&token),
                        Some(&claim_body)
                    ),
                    call(
                        &http,
                        Method::POST,
                        &claim_url,
                        Some(&token),
                        Some(&claim_body)
                    ),
                );
                claims = vec![a.0, b.0];
            }
            (registered, claims)
        });
    }
    let mut registered = 0;
    let mut claimed = 0;
    while let Some(result) = tasks.join_next().await {
        let (status, claims) = result.expect("task finished");
        match status {
            StatusCode::OK => registered += 1,
            StatusCode::SERVICE_UNAVAILABLE => {}
            other => panic!("register answered {other}"),
        }
        for status in claims {
            match status {
                StatusCode::NO_CONTENT => claimed += 1,
                StatusCode::CONFLICT => {}
                other => panic!("claim answered {other}"),
            }
        }
    }
    assert_eq!((registered, claimed), (10, 10));

    let list_url = format!("{}?count=1000", admin_url(&handle));
    let (status, list) = call(&http, Method::GET, &list_url, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    let sessions = list["sessions"].as_array().cloned().unwrap_or_default();
    assert_eq!(sessions.len(), 10);
    let endpoints: HashSet<String> = sessions
        .iter()
        .map(|s| {
            format!(
                "{}:{}",
                s["Server"]["ip"].as_str().unwrap_or_default(),
                s["Server"]["port"]
            )
        })
        .collect();
    assert_eq!(
        endpoints.len(),
        10,
        "a server appears in two sessions: {endpoints:?}"
    );
    assert!(sessions.iter().all(|s| s["Server"]["status"] == "BUSY"));

    let stats = handle.state.dsmc.stats();
    assert_eq!(
        (stats.registers, stats.register_failures.no_capacity),
        (10, 390)
    );
    assert_eq!(
        (stats.claims_succeeded, stats.claims_failed.conflict),
        (10, 10)
    );
    assert_eq!((stats.regions[0].busy, stats.regions[0].free), (10, 0));
}

#[tokio::test]
async fn healthz_needs_no_token() {
    let handle = common::start().await;
    let url = format!("{}/dsmcontroller/healthz", handle.base_url());
    let (status, body) = call(&common::http(), Method::GET, &url, None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["name"].clone(), body["healthy"].clone()),
        (json!("dsmcontroller"), json!(true))
    );
}
