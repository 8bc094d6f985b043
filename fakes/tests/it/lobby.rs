//! Lobby over real sockets: the WebSocket handshake and greeting, notification delivery
//! (live, queued while offline, broadcast, admin and bulk forms), odd frames, pings, session
//! replacement, the envelope, and the REST error shapes.

use std::time::Duration;

use accelbyte::frame::{self, Frame};
use accelbyte::models::lobby::{ConnectNotif, MessageNotif, OfflineNotificationResponse};
use fakes::Handle;
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::common::{self, IAM_CLIENT, NAMESPACE, PLAYER1, PLAYER2};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Long enough for a loaded CI machine; every wait ends as soon as the frame arrives.
const WAIT: Duration = Duration::from_secs(10);

/// The seeded user's id and access token.
fn player(handle: &Handle, user: (&str, &str)) -> (String, String) {
    let token = common::user_token(handle, user);
    (token.user_id, token.access_token)
}

fn iam_client_token(handle: &Handle) -> String {
    let client = handle
        .state
        .iam
        .client(IAM_CLIENT.0)
        .expect("seeded IAM client");
    handle
        .state
        .iam
        .grant_client_credentials(&client)
        .expect("client token")
        .access_token
}

fn ws_request(handle: &Handle, path: &str, token: Option<&str>) -> Request {
    let mut request = format!("ws://{}{path}", handle.addr)
        .into_client_request()
        .expect("ws request");
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().expect("header value");
        request.headers_mut().insert("Authorization", value);
    }
    request
}

/// Connects and returns the socket with its (already read) `connectNotif`.
async fn open(request: Request) -> (Ws, ConnectNotif) {
    let (mut ws, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade succeeds");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let frame = next_frame(&mut ws).await;
    let notif = ConnectNotif::from_frame(&frame)
        .unwrap_or_else(|| panic!("expected connectNotif, got {frame:?}"));
    (ws, notif)
}

async fn connect(handle: &Handle, token: &str) -> Ws {
    open(ws_request(handle, "/lobby/", Some(token))).await.0
}

/// The HTTP status and JSON body of a refused upgrade.
async fn refused(request: Request) -> (u16, Value) {
    match tokio_tungstenite::connect_async(request).await {
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().as_deref().unwrap_or_default();
            (
                response.status().as_u16(),
                serde_json::from_slice(body).unwrap_or(Value::Null),
            )
        }
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("upgrade unexpectedly succeeded"),
    }
}

async fn next_message(ws: &mut Ws) -> Message {
    match tokio::time::timeout(WAIT, ws.next()).await {
        Ok(Some(Ok(message))) => message,
        Ok(other) => panic!("socket ended: {other:?}"),
        Err(_) => panic!("no frame within {WAIT:?}"),
    }
}

async fn next_text(ws: &mut Ws) -> String {
    match next_message(ws).await {
        Message::Text(text) => text.as_str().to_owned(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

async fn next_frame(ws: &mut Ws) -> Frame {
    let text = next_text(ws).await;
    Frame::parse(&text).unwrap_or_else(|e| panic!("unparsable frame {text:?}: {e}"))
}

async fn next_notif(ws: &mut Ws) -> MessageNotif {
    let frame = next_frame(ws).await;
    MessageNotif::from_frame(&frame)
        .unwrap_or_else(|| panic!("expected messageNotif, got {frame:?}"))
}

async fn send_text(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.expect("send frame");
}

async fn post(
    handle: &Handle,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut request = common::http()
        .post(format!("{}{path}", handle.base_url()))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    send(request).await
}

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("request");
    let status = response.status();
    let bytes = response.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn user_path(user_id: &str) -> String {
    format!("/notification/namespaces/{NAMESPACE}/users/{user_id}/freeform")
}

fn admin_user_path(user_id: &str) -> String {
    format!("/lobby/v1/admin/notification/namespaces/{NAMESPACE}/users/{user_id}/freeform/notify")
}

fn is_lower_hex_32(s: &str) -> bool {
    s.len() == 32 && s.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
}

/// Asserts the `/notification` error shape (PascalCase) and returns the code.
fn pascal_error(body: &Value) -> i64 {
    assert!(
        body["ErrorMessage"].is_string(),
        "PascalCase error body expected: {body}"
    );
    assert!(
        body.get("errorCode").is_none(),
        "no camelCase keys expected: {body}"
    );
    body["ErrorCode"]
        .as_i64()
        .unwrap_or_else(|| panic!("ErrorCode missing: {body}"))
}

/// Asserts the `/lobby/v1/admin` and IAM error shape (camelCase) and returns the code.
fn camel_error(body: &Value) -> i64 {
    assert!(
        body["errorMessage"].is_string(),
        "camelCase error body expected: {body}"
    );
    assert!(
        body.get("ErrorCode").is_none(),
        "no PascalCase keys expected: {body}"
    );
    body["errorCode"]
        .as_i64()
        .unwrap_or_else(|| panic!("errorCode missing: {body}"))
}

#[tokio::test]
async fn connect_greets_with_connect_notif_on_both_paths() {
    let handle = common::start().await;
    let (_, token) = player(&handle, PLAYER1);
    let mut session_ids = Vec::new();
    for path in ["/lobby/", "/lobby"] {
        let (_ws, notif) = open(ws_request(&handle, path, Some(&token))).await;
        assert_eq!(notif.login_type, "NewRegister", "{path}");
        assert_eq!(notif.reconnect_from_code, 5000, "{path}");
        assert!(
            is_lower_hex_32(&notif.lobby_session_id),
            "{path}: {}",
            notif.lobby_session_id
        );
        assert_eq!(notif.sequence_number, 1, "{path}");
        assert!(
            notif.sequence_id > 1_600_000_000,
            "{path}: sequenceID is the connect time"
        );
        session_ids.push(notif.lobby_session_id);
    }
    assert_ne!(
        session_ids[0], session_ids[1],
        "every connection is a new session"
    );
    assert_eq!(handle.state.lobby.stats().connects_total, 2);
}

#[tokio::test]
async fn connect_notif_lines_are_in_live_order() {
    let handle = common::start().await;
    let (_, token) = player(&handle, PLAYER1);
    let (mut ws, _) =
        tokio_tungstenite::connect_async(ws_request(&handle, "/lobby/", Some(&token)))
            .await
            .expect("upgrade");
    let text = next_text(&mut ws).await;
    let keys: Vec<&str> = text
        .lines()
        .map(|l| l.split(": ").next().unwrap_or_default())
        .collect();
    assert_eq!(
        keys,
        [
            "type",
            "loginType",
            "reconnectFromCode",
            "lobbySessionID",
            "sequenceID",
            "sequenceNumber"
        ]
    );
}

#[tokio::test]
async fn an_unknown_lobby_session_id_header_still_connects_as_new() {
    let handle = common::start().await;
    let (_, token) = player(&handle, PLAYER1);
    let mut request = ws_request(&handle, "/lobby/", Some(&token));
    let stale = "0123456789abcdef0123456789abcdef";
    request
        .headers_mut()
        .insert("X-Ab-LobbySessionID", stale.parse().expect("header"));
    let (_ws, notif) = open(request).await;
    assert_eq!(notif.login_type, "NewRegister");
    assert_ne!(notif.lobby_session_id, stale);
}

#[tokio::test]
async fn bad_tokens_are_refused_at_the_upgrade_with_401() {
    let handle = common::start().await;
    let (_, revoked) = player(&handle, PLAYER2);
    handle.state.iam.revoke_token(&revoked);
    let game = common::game_token(&handle);
    let cases = [
        ("missing", None),
        ("garbage", Some("not-a-jwt")),
        ("revoked", Some(revoked.as_str())),
        ("client token", Some(game.as_str())),
    ];
    for (name, token) in cases {
        let (status, body) = refused(ws_request(&handle, "/lobby/", token)).await;
        assert_eq!(status, 401, "{name}");
        assert_eq!(camel_error(&body), 20001, "{name}");
    }
    assert_eq!(handle.state.lobby.stats().connects_total, 0);
}

#[tokio::test]
async fn a_plain_get_with_a_good_token_is_not_an_upgrade() {
    let handle = common::start().await;
    let (_, token) = player(&handle, PLAYER1);
    let request = common::http()
        .get(format!("{}/lobby/", handle.base_url()))
        .bearer_auth(&token);
    let (status, body) = send(request).await;
    assert!(status.is_client_error(), "{status}");
    assert_eq!(camel_error(&body), 20002);
}

#[tokio::test]
async fn user_notification_arrives_as_message_notif_in_contract_order() {
    let handle = common::start().await;
    let (user_id, token) = player(&handle, PLAYER1);
    let mut ws = connect(&handle, &token).await;
    let game = common::game_token(&handle);
    let body = json!({"topic": "NOTIF", "message": "found 127.0.0.1 7777"});
    let (status, _) = post(&handle, &user_path(&user_id), Some(&game), body).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let text = next_text(&mut ws).await;
    let lines: Vec<&str> = text.split('\n').collect();
    assert_eq!(lines.len(), 7, "{text}");
    let id = lines[1]
        .strip_prefix("id: ")
        .unwrap_or_else(|| panic!("line 2 must be the id: {text}"));
    assert!(is_lower_hex_32(id), "{id}");
    assert_eq!(lines[0], "type: messageNotif");
    assert_eq!(lines[2], "from: system");
    assert_eq!(lines[3], format!("to: {user_id}"));
    assert_eq!(lines[4], "topic: NOTIF");
    assert_eq!(lines[5], "payload: found 127.0.0.1 7777");
    let sent_at = lines[6]
        .strip_prefix("sentAt: ")
        .unwrap_or_else(|| panic!("last line is sentAt: {text}"));
    chrono::NaiveDateTime::parse_from_str(sent_at, "%Y-%m-%dT%H:%M:%SZ")
        .unwrap_or_else(|e| panic!("sentAt {sent_at:?} is not RFC 3339 whole seconds: {e}"));
    assert_eq!(handle.state.lobby.stats().notifications_delivered, 1);
}

#[tokio::test]
async fn a_player_may_notify_another_player_with_their_own_token() {
    // The tutorial sends "found" to the other player with the caller's token.
    let handle = common::start().await;
    let (_, token1) = player(&handle, PLAYER1);
    let (user2, token2) = player(&handle, PLAYER2);
    let mut ws2 = connect(&handle, &token2).await;
    let body = json!({"topic": "NOTIF", "message": "searching"});
    let (status, _) = post(&handle, &user_path(&user2), Some(&token1), body).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let notif = next_notif(&mut ws2).await;
    assert_eq!(
        (notif.to.as_str(), notif.payload.as_str()),
        (user2.as_str(), "searching")
    );
}

#[tokio::test]
async fn notifications_for_an_offline_user_arrive_in_order_after_connect_notif() {
    let handle = common::start().await;
    let (user_id, token) = player(&handle, PLAYER2);
    let game = common::game_token(&handle);
    for i in 0..3 {
        let body = json!({"topic": "NOTIF", "message": format!("queued {i}")});
        let (status, _) = post(&handle, &user_path(&user_id), Some(&game), body).await;
        assert_eq!(
            status,
            StatusCode::NO_CONTENT,
            "offline users still get 204"
        );
    }
    assert_eq!(handle.state.lobby.backlog_len(NAMESPACE, &user_id), 3);

    // `open` asserts the first frame is the connectNotif; the backlog follows it.
    let mut ws = connect(&handle, &token).await;
    for i in 0..3 {
        let notif = next_notif(&mut ws).await;
        assert_eq!(notif.payload, format!("queued {i}"));
        assert_eq!(notif.to, user_id);
    }
    // Live notifications follow the backlog.
    let body = json!({"topic": "NOTIF", "message": "live"});
    post(&handle, &user_path(&user_id), Some(&game), body).await;
    assert_eq!(next_notif(&mut ws).await.payload, "live");
    assert_eq!(handle.state.lobby.backlog_len(NAMESPACE, &user_id), 0);
    let stats = handle.state.lobby.stats();
    assert_eq!(
        (stats.notifications_queued, stats.notifications_delivered),
        (3, 4)
    );
}

#[tokio::test]
async fn offline_notification_request_is_answered_with_code_zero() {
    let handle = common::start().await;
    let (_, token) = player(&handle, PLAYER1);
    let mut ws = connect(&handle, &token).await;
    send_text(&mut ws, "type: offlineNotificationRequest\nid: req-7").await;
    let text = next_text(&mut ws).await;
    assert_eq!(
        text,
        "type: offlineNotificationResponse\nid: req-7\ncode: 0"
    );
    let parsed = OfflineNotificationResponse::from_frame(&Frame::parse(&text).expect("frame"));
    assert_eq!(
        parsed,
        Some(OfflineNotificationResponse {
            id: "req-7".into(),
            code: 0
        })
    );
}

#[tokio::test]
async fn broadcast_reaches_every_connected_user_of_the_namespace() {
    let handle = common::start().await;
    let (user1, token1) = player(&handle, PLAYER1);
    let (user2, token2) = player(&handle, PLAYER2);
    let mut ws1 = connect(&handle, &token1).await;
    let mut ws2 = connect(&handle, &token2).await;
    let game = common::game_token(&handle);
    let body = json!({"topic": "ANNOUNCE", "message": "maintenance at noon"});
    let path = format!("/notification/namespaces/{NAMESPACE}/freeform");
    let (status, _) = post(&handle, &path, Some(&game), body).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    for (ws, user) in [(&mut ws1, &user1), (&mut ws2, &user2)] {
        let notif = next_notif(ws).await;
        assert_eq!(&notif.to, user);
        assert_eq!(
            (notif.topic.as_str(), notif.payload.as_str()),
            ("ANNOUNCE", "maintenance at noon")
        );
    }
}

#[tokio::test]
async fn admin_user_namespace_and_bulk_forms_deliver() {
    let handle = common::start().await;
    let (user1, token1) = player(&handle, PLAYER1);
    let (user2, token2) = player(&handle, PLAYER2);
    let mut ws1 = connect(&handle, &token1).await;
    let mut ws2 = connect(&handle, &token2).await;
    let game = common::game_token(&handle);

    let body = json!({"topicName": "ADMIN", "message": "just you"});
    let (status, _) = post(&handle, &admin_user_path(&user1), Some(&game), body).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let notif = next_notif(&mut ws1).await;
    assert_eq!(
        (
            notif.to.as_str(),
            notif.topic.as_str(),
            notif.payload.as_str()
        ),
        (user1.as_str(), "ADMIN", "just you")
    );

    let path = format!("/lobby/v1/admin/notification/namespaces/{NAMESPACE}/freeform/notify");
    let body = json!({"topicName": "ADMIN", "message": "everyone"});
    let (status, _) = post(&handle, &path, Some(&game), body).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(next_notif(&mut ws1).await.payload, "everyone");
    assert_eq!(next_notif(&mut ws2).await.payload, "everyone");

    let path =
        format!("/lobby/v1/admin/notification/namespaces/{NAMESPACE}/bulkUsers/freeform/notify");
    let body =
        json!({"topicName": "BULK", "message": "some of you", "userIds": [user1, user2, user1]});
    let (status, _) = post(&handle, &path, Some(&game), body).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for (ws, user) in [(&mut ws1, &user1), (&mut ws2, &user2)] {
        let notif = next_notif(ws).await;
        assert_eq!(
            (&notif.to, notif.topic.as_str(), notif.payload.as_str()),
            (user, "BULK", "some of you")
        );
    }
    // user1 was listed twice but is notified once: the next frame is the marker, not a copy.
    let body = json!({"topicName": "ADMIN", "message": "marker"});
    post(&handle, &admin_user_path(&user1), Some(&game), body).await;
    assert_eq!(next_notif(&mut ws1).await.payload, "marker");
}

#[tokio::test]
async fn the_tutorial_odd_frame_gets_an_error_notif_and_the_socket_stays_open() {
    let handle = common::start().await;
    let (user_id, token) = player(&handle, PLAYER1);
    let mut ws = connect(&handle, &token).await;
    // client.py strips the `id: ` prefix, leaving a bare 24-hex line.
    send_text(&mut ws, "type: messageNotif\n0123456789abcdef01234567").await;
    let error = next_frame(&mut ws).await;
    assert_eq!(error.message_type(), "errorNotif");
    let code: i64 = error
        .get("code")
        .and_then(|c| c.parse().ok())
        .expect("numeric code");
    assert_ne!(code, 0);
    assert!(error.get("message").is_some_and(|m| !m.is_empty()));

    // An unknown but well-formed request: the error echoes its id.
    send_text(&mut ws, "type: partyCreateRequest\nid: p-1").await;
    let error = next_frame(&mut ws).await;
    assert_eq!(error.message_type(), "errorNotif");
    assert_eq!(error.get("id"), Some("p-1"));

    // Heartbeats are accepted silently: the next frame answers the request after it.
    send_text(&mut ws, "type: heartbeat").await;
    send_text(
        &mut ws,
        "type: offlineNotificationRequest\nid: after-heartbeat",
    )
    .await;
    let response = next_frame(&mut ws).await;
    assert_eq!(response.message_type(), "offlineNotificationResponse");
    assert_eq!(response.get("id"), Some("after-heartbeat"));

    // And the socket still delivers notifications.
    let game = common::game_token(&handle);
    let body = json!({"topic": "NOTIF", "message": "still here"});
    post(&handle, &user_path(&user_id), Some(&game), body).await;
    assert_eq!(next_notif(&mut ws).await.payload, "still here");
    let stats = handle.state.lobby.stats();
    assert_eq!((stats.frames_received, stats.error_frames_sent), (4, 2));
}

#[tokio::test]
async fn pings_are_answered_with_pongs() {
    let handle = common::start().await;
    let (_, token) = player(&handle, PLAYER1);
    let mut ws = connect(&handle, &token).await;
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .expect("ping");
    match next_message(&mut ws).await {
        Message::Pong(payload) => assert_eq!(payload.as_ref(), b"are you there"),
        other => panic!("expected a pong, got {other:?}"),
    }
}

#[tokio::test]
async fn a_second_connection_closes_the_first_with_4041() {
    let handle = common::start().await;
    let (user_id, token) = player(&handle, PLAYER1);
    let mut first = connect(&handle, &token).await;
    let mut second = connect(&handle, &token).await;
    match next_message(&mut first).await {
        Message::Close(Some(close)) => assert_eq!(u16::from(close.code), 4041),
        other => panic!("expected close 4041, got {other:?}"),
    }
    // Reading on answers the close handshake; then the old socket ends.
    let end = tokio::time::timeout(WAIT, first.next())
        .await
        .expect("old socket ends");
    assert!(
        !matches!(end, Some(Ok(Message::Text(_)))),
        "no frames after the close: {end:?}"
    );
    // Notifications now go to the new connection, and the old socket's cleanup did not
    // unregister it.
    let game = common::game_token(&handle);
    let body = json!({"topic": "NOTIF", "message": "to the new one"});
    post(&handle, &user_path(&user_id), Some(&game), body).await;
    assert_eq!(next_notif(&mut second).await.payload, "to the new one");
    let lobby = &handle.state.lobby;
    assert!(common::eventually(WAIT, || lobby.stats().connections_open == 1).await);
    assert!(lobby.is_connected(NAMESPACE, &user_id));
    assert_eq!(lobby.stats().sessions_replaced, 1);
}

#[tokio::test]
async fn closing_the_socket_unregisters_the_user() {
    let handle = common::start().await;
    let (user_id, token) = player(&handle, PLAYER1);
    let mut ws = connect(&handle, &token).await;
    assert!(handle.state.lobby.is_connected(NAMESPACE, &user_id));
    ws.close(None).await.expect("close");
    let lobby = &handle.state.lobby;
    assert!(common::eventually(WAIT, || !lobby.is_connected(NAMESPACE, &user_id)).await);
    assert_eq!(lobby.stats().connections_open, 0);
    // Notifications after the disconnect are queued again.
    let game = common::game_token(&handle);
    let body = json!({"topic": "NOTIF", "message": "later"});
    let (status, _) = post(&handle, &user_path(&user_id), Some(&game), body).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(lobby.backlog_len(NAMESPACE, &user_id), 1);
}

#[tokio::test]
async fn envelope_headers_wrap_outgoing_frames_and_are_stripped_from_incoming() {
    let handle = common::start().await;
    let (user_id, token) = player(&handle, PLAYER1);
    let mut request = ws_request(&handle, "/lobby/", Some(&token));
    request
        .headers_mut()
        .insert("X-Ab-EnvelopeStart", "LbS".parse().expect("header"));
    request
        .headers_mut()
        .insert("X-Ab-EnvelopeEnd", "LbE".parse().expect("header"));
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade");

    let greeting = next_text(&mut ws).await;
    assert!(
        greeting.starts_with("LbStype: connectNotif\n") && greeting.ends_with("LbE"),
        "{greeting}"
    );
    let frame = Frame::parse(frame::strip_envelope(&greeting)).expect("frame");
    assert!(ConnectNotif::from_frame(&frame).is_some());

    send_text(&mut ws, "LbStype: offlineNotificationRequest\nid: env-1LbE").await;
    assert_eq!(
        next_text(&mut ws).await,
        "LbStype: offlineNotificationResponse\nid: env-1\ncode: 0LbE"
    );

    let game = common::game_token(&handle);
    let body = json!({"topic": "NOTIF", "message": "wrapped"});
    post(&handle, &user_path(&user_id), Some(&game), body).await;
    let text = next_text(&mut ws).await;
    assert!(
        text.starts_with("LbStype: messageNotif\n") && text.ends_with("LbE"),
        "{text}"
    );
    let frame = Frame::parse(frame::strip_envelope(&text)).expect("frame");
    assert_eq!(
        MessageNotif::from_frame(&frame).map(|n| n.payload),
        Some("wrapped".to_owned())
    );
}

#[tokio::test]
async fn without_envelope_headers_frames_are_plain() {
    let handle = common::start().await;
    let (_, token) = player(&handle, PLAYER1);
    let (mut ws, _) =
        tokio_tungstenite::connect_async(ws_request(&handle, "/lobby/", Some(&token)))
            .await
            .expect("upgrade");
    assert!(next_text(&mut ws).await.starts_with("type: connectNotif\n"));
}

#[tokio::test]
async fn notification_errors_use_the_pascal_case_shape() {
    let handle = common::start().await;
    let (user_id, _) = player(&handle, PLAYER1);
    let game = common::game_token(&handle);
    let path = user_path(&user_id);

    let (status, body) = post(&handle, &path, Some(&game), json!({"message": "no topic"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(pascal_error(&body), 20002);

    let (status, body) = post(
        &handle,
        &path,
        Some(&game),
        json!({"topic": " ", "message": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "empty topic");
    assert_eq!(pascal_error(&body), 20002);

    let malformed = common::http()
        .post(format!("{}{path}", handle.base_url()))
        .bearer_auth(&game)
        .header("Content-Type", "application/json")
        .body("{\"topic\": ");
    let (status, body) = send(malformed).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(pascal_error(&body), 20019);

    let huge = json!({"topic": "NOTIF", "message": "x".repeat(1024 * 1024)});
    let (status, body) = post(&handle, &path, Some(&game), huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    pascal_error(&body);

    let unknown = format!("/notification/namespaces/nowhere/users/{user_id}/freeform");
    let (status, body) = post(
        &handle,
        &unknown,
        Some(&game),
        json!({"topic": "T", "message": "m"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    pascal_error(&body);

    let (status, body) = post(&handle, &path, None, json!({"topic": "T", "message": "m"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(pascal_error(&body), 20001);

    // The IAM validator client holds no notification permission.
    let iam = iam_client_token(&handle);
    let (status, body) = post(
        &handle,
        &path,
        Some(&iam),
        json!({"topic": "T", "message": "m"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(pascal_error(&body), 20013);
    let broadcast = format!("/notification/namespaces/{NAMESPACE}/freeform");
    let (status, body) = post(
        &handle,
        &broadcast,
        Some(&iam),
        json!({"topic": "T", "message": "m"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(pascal_error(&body), 20013);

    assert_eq!(
        handle.state.lobby.backlog_len(NAMESPACE, &user_id),
        0,
        "no error queued anything"
    );
}

#[tokio::test]
async fn admin_errors_use_the_camel_case_shape() {
    let handle = common::start().await;
    let (user_id, player_token) = player(&handle, PLAYER1);
    let game = common::game_token(&handle);
    let path = admin_user_path(&user_id);

    let (status, body) = post(
        &handle,
        &path,
        Some(&game),
        json!({"topic": "NOTIF", "message": "m"}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "admin bodies use topicName"
    );
    assert_eq!(camel_error(&body), 20002);

    let malformed = common::http()
        .post(format!("{}{path}", handle.base_url()))
        .bearer_auth(&game)
        .header("Content-Type", "application/json")
        .body("not json");
    let (status, body) = send(malformed).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(camel_error(&body), 20019);

    let huge = json!({"topicName": "NOTIF", "message": "x".repeat(1024 * 1024)});
    let (status, body) = post(&handle, &path, Some(&game), huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    camel_error(&body);

    let unknown =
        format!("/lobby/v1/admin/notification/namespaces/nowhere/users/{user_id}/freeform/notify");
    let (status, body) = post(
        &handle,
        &unknown,
        Some(&game),
        json!({"topicName": "T", "message": "m"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    camel_error(&body);

    // Players may notify each other, but not through the admin API.
    let (status, body) = post(
        &handle,
        &path,
        Some(&player_token),
        json!({"topicName": "T", "message": "m"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(camel_error(&body), 20013);
    assert_eq!(
        body["requiredPermission"]["resource"],
        format!("ADMIN:NAMESPACE:{NAMESPACE}:NOTIFICATION")
    );

    let bulk =
        format!("/lobby/v1/admin/notification/namespaces/{NAMESPACE}/bulkUsers/freeform/notify");
    let (status, body) = post(
        &handle,
        &bulk,
        Some(&game),
        json!({"topicName": "T", "message": "m", "userIds": []}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "empty userIds");
    assert_eq!(camel_error(&body), 20002);
    let (status, body) = post(
        &handle,
        &bulk,
        Some(&game),
        json!({"topicName": "T", "message": "m"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "missing userIds");
    assert_eq!(camel_error(&body), 20002);

    let (status, body) = post(
        &handle,
        &path,
        None,
        json!({"topicName": "T", "message": "m"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(camel_error(&body), 20001);
}

#[tokio::test]
async fn lobby_healthz_answers() {
    let handle = common::start().await;
    let (status, body) =
        send(common::http().get(format!("{}/lobby/healthz", handle.base_url()))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["healthy"], true);
}

/// The same lobby with its sockets held by shard processes behind the one base URL.
mod sharded {
    use super::*;
    use crate::redis::TestRedis;
    use fakes::lobby::cluster::{ClusterConfig, ShardCommand};

    async fn start_sharded(redis: &TestRedis, shards: usize) -> Handle {
        let cluster = ClusterConfig {
            shards,
            redis_url: redis.url.clone(),
            command: ShardCommand {
                program: env!("CARGO_BIN_EXE_fakes").into(),
                args: vec!["lobby-shard".to_owned()],
            },
        };
        fakes::server::spawn_with(fakes::FakesConfig::default(), Some(cluster))
            .await
            .expect("fakes starts with lobby shards")
    }

    fn handed_off(handle: &Handle) -> u64 {
        handle.state.accept.handed_off()
    }

    async fn next_close(ws: &mut Ws) -> u16 {
        loop {
            match next_message(ws).await {
                Message::Close(Some(frame)) => return frame.code.into(),
                Message::Close(None) => panic!("close without a code"),
                _ => continue,
            }
        }
    }

    #[tokio::test]
    async fn shards_hold_the_sockets_and_the_hub_still_decides() {
        let redis = TestRedis::start();
        let handle = start_sharded(&redis, 2).await;
        let primary = handle.lobby_shards.clone().expect("shards running");
        assert_eq!(primary.live_shards(), 2);
        let (user1, token1) = player(&handle, PLAYER1);
        let (user2, token2) = player(&handle, PLAYER2);
        let game = common::game_token(&handle);

        // Queued while offline, delivered in order after connectNotif.
        for i in 0..3 {
            let body = json!({"topic": "NOTIF", "message": format!("queued {i}")});
            let (status, _) = post(&handle, &user_path(&user2), Some(&game), body).await;
            assert_eq!(status, StatusCode::NO_CONTENT);
        }
        let mut ws1 = connect(&handle, &token1).await;
        let mut ws2 = connect(&handle, &token2).await;
        // Counted once the hand-off completed, which may be just after the client's handshake.
        assert!(
            common::eventually(WAIT, || handed_off(&handle) == 2).await,
            "both upgrades went to shards"
        );
        for i in 0..3 {
            let notif = next_notif(&mut ws2).await;
            assert_eq!(
                (notif.to.as_str(), notif.payload.as_str()),
                (user2.as_str(), format!("queued {i}").as_str())
            );
        }

        // Live delivery, through the primary's hub and the bus.
        let body = json!({"topic": "NOTIF", "message": "found 127.0.0.1 7777"});
        let (status, _) = post(&handle, &user_path(&user1), Some(&game), body).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let notif = next_notif(&mut ws1).await;
        assert_eq!(
            (notif.to.as_str(), notif.payload.as_str()),
            (user1.as_str(), "found 127.0.0.1 7777")
        );

        // Broadcast reaches both shards' sockets once each.
        let body = json!({"topic": "ANNOUNCE", "message": "hello"});
        let path = format!("/notification/namespaces/{NAMESPACE}/freeform");
        let (status, _) = post(&handle, &path, Some(&game), body).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(next_notif(&mut ws1).await.payload, "hello");
        assert_eq!(next_notif(&mut ws2).await.payload, "hello");

        // The shard answers frames as a single process does.
        send_text(&mut ws1, "type: offlineNotificationRequest\nid: req-7").await;
        assert_eq!(
            next_text(&mut ws1).await,
            "type: offlineNotificationResponse\nid: req-7\ncode: 0"
        );
        send_text(&mut ws1, "type: messageNotif\n0123456789abcdef01234567").await;
        let error = next_frame(&mut ws1).await;
        assert_eq!(error.message_type(), "errorNotif");

        // A second socket of user 1 (on the other, less-loaded shard) replaces the first: 4041.
        let mut again = connect(&handle, &token1).await;
        assert_eq!(next_close(&mut ws1).await, 4041);
        let body = json!({"topic": "NOTIF", "message": "to the new socket"});
        post(&handle, &user_path(&user1), Some(&game), body).await;
        assert_eq!(next_notif(&mut again).await.payload, "to the new socket");

        // Refusals stay the primary's, byte for byte.
        let (status, body) = refused(ws_request(&handle, "/lobby/", Some("not-a-token"))).await;
        assert_eq!(status, 401);
        assert!(body.is_object(), "{body}");
        assert_eq!(
            handed_off(&handle),
            3,
            "the refused upgrade was not handed off"
        );

        // The shards' own counters reach /_fakes/stats.
        assert!(
            common::eventually(WAIT, || {
                let stats = fakes::stats::report(&handle.state);
                stats.lobby.frames_received >= 2
                    && stats.lobby.error_frames_sent >= 1
                    && stats.lobby.shards.len() == 2
            })
            .await,
            "shard counters reach the primary's stats"
        );
    }

    #[tokio::test]
    async fn a_dead_shard_takes_only_its_own_sockets() {
        let redis = TestRedis::start();
        let handle = start_sharded(&redis, 2).await;
        let primary = handle.lobby_shards.clone().expect("shards running");
        let (user1, token1) = player(&handle, PLAYER1);
        let (user2, token2) = player(&handle, PLAYER2);
        let game = common::game_token(&handle);
        // Least-loaded placement: user 1 on shard 0, user 2 on shard 1.
        let mut ws1 = connect(&handle, &token1).await;
        let mut ws2 = connect(&handle, &token2).await;

        let pid = primary.shard_pids()[0].expect("shard 0 pid");
        let killed = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(killed.success());
        // User 1's socket ends with the process.
        let ended = tokio::time::timeout(WAIT, async {
            loop {
                match ws1.next().await {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                    Some(Ok(_)) => {}
                }
            }
        })
        .await;
        assert!(ended.is_ok(), "the dead shard's socket closed");
        assert!(
            common::eventually(WAIT, || primary.live_shards() == 1).await,
            "the primary noticed"
        );
        assert!(
            common::eventually(WAIT, || !handle.state.lobby.is_connected(NAMESPACE, &user1)).await,
            "the hub unregistered the dead shard's user"
        );

        // User 2 on the surviving shard is untouched.
        let body = json!({"topic": "NOTIF", "message": "still here"});
        post(&handle, &user_path(&user2), Some(&game), body).await;
        assert_eq!(next_notif(&mut ws2).await.payload, "still here");

        // User 1 reconnects (to the live shard) and gets what was sent meanwhile.
        let body = json!({"topic": "NOTIF", "message": "while you were away"});
        post(&handle, &user_path(&user1), Some(&game), body).await;
        let mut back = connect(&handle, &token1).await;
        assert_eq!(next_notif(&mut back).await.payload, "while you were away");
    }
}
