//! Helpers for the Session v2 / Matchmaking v2 tests: HTTP calls with bearer tokens, a lobby
//! socket that reads service notifications (topic + decoded JSON payload), and the admin setup
//! (template, rule set, pool) the flows share.

use std::time::Duration;

use accelbyte::frame::Frame;
use accelbyte::models::lobby::MessageNotif;
use base64::Engine;
use fakes::Handle;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::common::{self, NAMESPACE};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Long enough for a loaded CI machine; every wait ends as soon as its event arrives.
pub const WAIT: Duration = Duration::from_secs(15);

pub async fn call(
    handle: &Handle,
    method: Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = common::http()
        .request(method, format!("{}{path}", handle.base_url()))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Opens `token`'s lobby socket and reads past its `connectNotif`.
pub async fn lobby(handle: &Handle, token: &str) -> Ws {
    let mut request = format!("ws://{}/lobby/", handle.addr)
        .into_client_request()
        .expect("ws request");
    request.headers_mut().insert(
        "Authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("lobby upgrade");
    let first = next_message(&mut ws).await;
    assert!(
        matches!(&first, Message::Text(t) if t.as_str().starts_with("type: connectNotif")),
        "{first:?}"
    );
    ws
}

pub async fn next_message(ws: &mut Ws) -> Message {
    match tokio::time::timeout(WAIT, ws.next()).await {
        Ok(Some(Ok(message))) => message,
        Ok(other) => panic!("socket ended: {other:?}"),
        Err(_) => panic!("nothing within {WAIT:?}"),
    }
}

/// The next `messageNotif`'s topic and its payload decoded from base64 JSON.
pub async fn next_event(ws: &mut Ws) -> (String, Value) {
    loop {
        let Message::Text(text) = next_message(ws).await else {
            continue;
        };
        let frame = Frame::parse(text.as_str()).expect("frame");
        let Some(notif) = MessageNotif::from_frame(&frame) else {
            continue;
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&notif.payload)
            .unwrap_or_else(|e| panic!("{} payload is not base64: {e}", notif.topic));
        let payload: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{} payload is not json: {e}", notif.topic));
        return (notif.topic, payload);
    }
}

/// Reads events until one on `topic`, returning its payload and the topics seen before it.
pub async fn wait_for(ws: &mut Ws, topic: &str) -> (Value, Vec<String>) {
    let mut before = Vec::new();
    loop {
        let (seen, payload) = next_event(ws).await;
        if seen == topic {
            return (payload, before);
        }
        before.push(seen);
    }
}

/// Reads `OnDSStatusChanged` events until the session's `StatusV2` is `status`.
pub async fn wait_for_ds(ws: &mut Ws, status: &str) -> Value {
    loop {
        let (payload, _) = wait_for(ws, "OnDSStatusChanged").await;
        if payload["session"]["DSInformation"]["StatusV2"] == status {
            return payload;
        }
    }
}

pub fn template(name: &str, kind: &str, joinability: &str) -> Value {
    json!({
        "name": name, "type": kind, "joinability": joinability,
        "minPlayers": 2, "maxPlayers": 4, "inviteTimeout": 60, "inactiveTimeout": 60,
        "clientVersion": "1.0.0", "deployment": "default", "requestedRegions": ["us-east-1"],
        "persistent": false, "textChat": false
    })
}

pub fn one_vs_one() -> Value {
    json!({
        "alliance": {"min_number": 2, "max_number": 2, "player_min_number": 1, "player_max_number": 1},
        "matching_rule": [{"attribute": "mmr", "criteria": "distance", "reference": 100}]
    })
}

/// Creates a template, a rule set and a pool with the game client's token.
pub async fn setup_pool(handle: &Handle, pool: &str, ruleset: Value, expiry_s: i32) {
    let admin = common::game_token(handle);
    let base = format!("/match2/v1/namespaces/{NAMESPACE}");
    let (status, body) = call(
        handle,
        Method::POST,
        &format!("/session/v1/admin/namespaces/{NAMESPACE}/configuration"),
        &admin,
        Some(&template(&format!("{pool}-template"), "DS", "INVITE_ONLY")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let rules = json!({"name": format!("{pool}-rules"), "enable_custom_match_function": false, "data": ruleset});
    let (status, body) = call(
        handle,
        Method::POST,
        &format!("{base}/rulesets"),
        &admin,
        Some(&rules),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let pool_body = json!({
        "name": pool, "rule_set": format!("{pool}-rules"),
        "session_template": format!("{pool}-template"), "match_function": "default",
        "match_function_override": {}, "ticket_expiration_seconds": expiry_s,
        "backfill_ticket_expiration_seconds": 0, "backfill_proposal_expiration_seconds": 0,
        "auto_accept_backfill_proposal": false
    });
    let (status, body) = call(
        handle,
        Method::POST,
        &format!("{base}/match-pools"),
        &admin,
        Some(&pool_body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// Queues `token`'s player in `pool` and returns the ticket id.
pub async fn ticket(handle: &Handle, token: &str, pool: &str, mmr: i64) -> String {
    let body =
        json!({"matchPool": pool, "attributes": {"mmr": mmr}, "latencies": {"us-east-1": 30}});
    let (status, answer) = call(
        handle,
        Method::POST,
        &format!("/match2/v1/namespaces/{NAMESPACE}/match-tickets"),
        token,
        Some(&body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert!(answer["queueTime"].is_i64(), "{answer}");
    answer["matchTicketID"]
        .as_str()
        .expect("ticket id")
        .to_owned()
}
