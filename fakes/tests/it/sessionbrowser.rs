//! Session Browser routes over real sockets: the tutorial's create → register/claim → add
//! players → get flow, the joinable rule, rosters, updates, joins, queries, the error shape of
//! every route family, and the DSMC release on delete.

use fakes::FakesConfig;
use fakes::seed::{Seed, SeedClient, SeedPermission};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{self, NAMESPACE, PLAYER1, PLAYER2};
use crate::dsmc::{
    assert_rest_error, call, call_raw, claim, register, sessions_url, unprivileged_client_token,
};

/// A seeded client allowed to use the admin get.
const SB_ADMIN: (&str, &str) = ("matchbench-sb-admin", "matchbench-sb-admin-secret");

fn base(handle: &fakes::Handle) -> String {
    format!(
        "{}/sessionbrowser/namespaces/{NAMESPACE}/gamesession",
        handle.base_url()
    )
}

/// The create body exactly as the tutorial sends it.
fn tutorial_create_body(session_type: &str) -> Value {
    json!({
        "game_session_setting": {
            "allow_join_in_progress": true,
            "current_internal_player": 0,
            "current_player": 0,
            "map_name": "arena",
            "max_internal_player": 2,
            "max_player": 0,
            "mode": "1v1",
            "num_bot": 0,
            "password": "pw",
            "settings": {},
        },
        "game_version": "1.0.0",
        "namespace": NAMESPACE,
        "session_type": session_type,
        "username": "matchmaker",
    })
}

/// `restapi.ErrorResponseV2`: `attributes`, `errorCode`, `errorMessage`, `message`, `name`.
fn assert_v2_error(body: &Value, code: i64) {
    assert_eq!(body["errorCode"], json!(code), "{body}");
    assert!(
        body["attributes"].is_object(),
        "not ErrorResponseV2: {body}"
    );
    assert!(
        body["errorMessage"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(body["message"], body["errorMessage"], "{body}");
    assert!(
        body["name"].as_str().is_some_and(|n| !n.is_empty()),
        "{body}"
    );
}

async fn create(handle: &fakes::Handle, token: &str, body: &Value) -> (StatusCode, Value) {
    call(
        &common::http(),
        Method::POST,
        &base(handle),
        Some(token),
        Some(body),
    )
    .await
}

/// Creates a session from the tutorial body with `edit` applied; returns its id.
async fn create_ok(
    handle: &fakes::Handle,
    token: &str,
    session_type: &str,
    edit: impl FnOnce(&mut Value),
) -> String {
    let mut body = tutorial_create_body(session_type);
    edit(&mut body);
    let (status, created) = create(handle, token, &body).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    created["session_id"]
        .as_str()
        .expect("session_id")
        .to_owned()
}

async fn get(handle: &fakes::Handle, token: &str, id: &str) -> (StatusCode, Value) {
    call(
        &common::http(),
        Method::GET,
        &format!("{}/{id}", base(handle)),
        Some(token),
        None,
    )
    .await
}

async fn add(
    handle: &fakes::Handle,
    token: &str,
    id: &str,
    user_id: &str,
    as_spectator: bool,
) -> (StatusCode, Value) {
    let url = format!("{}/{id}/player", base(handle));
    let body = json!({"as_spectator": as_spectator, "user_id": user_id});
    call(
        &common::http(),
        Method::POST,
        &url,
        Some(token),
        Some(&body),
    )
    .await
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect()
}

fn session_ids(page: &Value, key: &str) -> Vec<String> {
    page[key]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| s["session_id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn the_tutorial_flow_ends_joinable_with_the_servers_address() {
    let handle = common::start().await;
    let p1 = common::user_token(&handle, PLAYER1);
    let p2 = common::user_token(&handle, PLAYER2);
    let game = common::game_token(&handle);

    let (status, created) = create(
        &handle,
        &p1.access_token,
        &tutorial_create_body("dedicated"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let id = created["session_id"]
        .as_str()
        .expect("session_id")
        .to_owned();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert!(
        chrono::DateTime::parse_from_rfc3339(created["created_at"].as_str().unwrap_or_default())
            .is_ok(),
        "{created}"
    );
    assert_eq!(created["joinable"], false, "no server yet");
    assert_eq!(created["session_type"], "dedicated");
    assert_eq!(created["namespace"], NAMESPACE);
    assert_eq!(created["username"], "matchmaker");
    assert_eq!(created["user_id"], "", "dedicated sessions have no owner");
    assert_eq!(created["game_session_setting"]["max_internal_player"], 2);
    assert_eq!(
        created["game_session_setting"]["password"], "",
        "passwords are not echoed"
    );

    let (status, registered) = register(&handle, &game, &id).await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    let (_, before) = get(&handle, &game, &id).await;
    assert_eq!(
        before["joinable"], false,
        "registered but not claimed: {before}"
    );
    assert_eq!(before["server"]["ip"], "", "{before}");

    let (status, _) = claim(&handle, &game, &id).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for user in [&p1.user_id, &p2.user_id] {
        let (status, body) = add(&handle, &p1.access_token, &id, user, false).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"status": true})));
    }

    let (status, after) = get(&handle, &game, &id).await;
    assert_eq!(status, StatusCode::OK, "{after}");
    assert_eq!(after["joinable"], true, "{after}");
    assert_eq!(
        strings(&after["players"]),
        [p1.user_id.clone(), p2.user_id.clone()]
    );
    assert_eq!(strings(&after["all_players"]), strings(&after["players"]));
    assert_eq!(after["spectators"], json!([]));
    assert_eq!(after["game_session_setting"]["current_player"], 2);
    assert_eq!(after["game_session_setting"]["current_internal_player"], 2);
    let ds = &registered["session"]["Server"];
    assert_eq!(after["server"]["ip"], "127.0.0.1");
    assert_eq!(after["server"]["port"], ds["port"]);
    assert_eq!(after["server"]["pod_name"], ds["pod_name"]);
    assert_eq!(after["server"]["status"], "BUSY");
    assert_eq!(after["server"]["session_id"], json!(id));
    let history: Vec<Value> = after["server"]["status_history"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|h| h["status"].clone())
        .collect();
    assert_eq!(history, [json!("CREATING"), json!("READY"), json!("BUSY")]);

    // The game is over: deleting the session releases its server.
    let (status, error) = call(
        &common::http(),
        Method::DELETE,
        &format!("{}/{id}", base(&handle)),
        Some(&p1.access_token),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "players may not delete sessions"
    );
    assert_rest_error(&error, 20013);
    assert_eq!(handle.state.dsmc.stats().regions[0].busy, 1);
    let (status, deleted) = call(
        &common::http(),
        Method::DELETE,
        &format!("{}/{id}", base(&handle)),
        Some(&game),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(deleted["session_id"], json!(id));
    let (status, error) = get(&handle, &game, &id).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_rest_error(&error, 20002);
    let (status, _) = call(
        &common::http(),
        Method::GET,
        &format!("{}/{id}", sessions_url(&handle)),
        Some(&game),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the DSMC session went with it"
    );
    let stats = handle.state.dsmc.stats();
    assert_eq!(
        (
            stats.regions[0].busy,
            stats.regions[0].free,
            stats.sessions_deleted
        ),
        (0, 100, 1)
    );
}

#[tokio::test]
async fn a_dedicated_session_is_joinable_only_once_its_server_is_claimed() {
    let handle = common::start().await;
    let game = common::game_token(&handle);
    let id = create_ok(&handle, &game, "dedicated", |_| {}).await;
    for user in ["a", "b"] {
        assert_eq!(
            add(&handle, &game, &id, user, false).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(
        get(&handle, &game, &id).await.1["joinable"],
        false,
        "no DSMC session"
    );

    let (status, _) = register(&handle, &game, &id).await;
    assert_eq!(status, StatusCode::OK);
    let (_, ready) = get(&handle, &game, &id).await;
    assert_eq!(ready["joinable"], false, "READY but not claimed: {ready}");
    assert_eq!(
        (
            ready["server"]["ip"].clone(),
            ready["server"]["port"].clone()
        ),
        (json!(""), json!(0))
    );

    assert_eq!(claim(&handle, &game, &id).await.0, StatusCode::NO_CONTENT);
    let (_, claimed) = get(&handle, &game, &id).await;
    assert_eq!(claimed["joinable"], true, "{claimed}");
    assert_eq!(claimed["server"]["status"], "BUSY");

    let (status, error) = add(&handle, &game, &id, "c", false).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "max_internal_player 2 is the capacity"
    );
    assert_v2_error(&error, 20002);
    assert_eq!(
        get(&handle, &game, &id).await.1["joinable"],
        true,
        "full is still joinable"
    );
}

#[tokio::test]
async fn p2p_sessions_are_hosted_by_the_calling_user() {
    let handle = common::start().await;
    let p1 = common::user_token(&handle, PLAYER1);
    let (status, created) = create(&handle, &p1.access_token, &tutorial_create_body("p2p")).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(created["user_id"], json!(p1.user_id));
    assert_eq!(created["joinable"], true, "a p2p session needs no server");

    let (status, error) = create(
        &handle,
        &common::game_token(&handle),
        &tutorial_create_body("p2p"),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a client token cannot host"
    );
    assert_v2_error(&error, 20002);
}

#[tokio::test]
async fn create_refuses_bad_requests_in_the_v2_shape() {
    let handle = common::start().await;
    let game = common::game_token(&handle);
    let http = common::http();
    let url = base(&handle);

    let mut bad_bodies: Vec<(&str, Value)> = Vec::new();
    let mut missing = tutorial_create_body("dedicated");
    missing.as_object_mut().expect("object").remove("username");
    bad_bodies.push(("missing username", missing));
    let mut missing_nested = tutorial_create_body("dedicated");
    missing_nested["game_session_setting"]
        .as_object_mut()
        .expect("object")
        .remove("max_player");
    bad_bodies.push(("missing max_player", missing_nested));
    let mut bad_type = tutorial_create_body("dedicated");
    bad_type["session_type"] = json!("lan");
    bad_bodies.push(("unknown session_type", bad_type));
    let mut other_ns = tutorial_create_body("dedicated");
    other_ns["namespace"] = json!("elsewhere");
    bad_bodies.push(("namespace mismatch", other_ns));
    let mut negative = tutorial_create_body("dedicated");
    negative["game_session_setting"]["max_player"] = json!(-1);
    bad_bodies.push(("negative max_player", negative));
    let mut mistyped = tutorial_create_body("dedicated");
    mistyped["game_session_setting"]["num_bot"] = json!("two");
    bad_bodies.push(("mistyped num_bot", mistyped));
    for (what, body) in &bad_bodies {
        let (status, error) = create(&handle, &game, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {error}");
        assert_v2_error(&error, 20002);
    }

    let (status, error) = call_raw(&http, Method::POST, &url, &game, "{\"namespace\": }").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_v2_error(&error, 20019);
    let (status, error) = call_raw(
        &http,
        Method::POST,
        &url,
        &game,
        vec![b' '; 2 * 1024 * 1024],
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_v2_error(&error, 20002);

    let body = tutorial_create_body("dedicated");
    let (status, error) = call(&http, Method::POST, &url, None, Some(&body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_v2_error(&error, 20001);
    let (status, error) = call(&http, Method::POST, &url, Some("garbage"), Some(&body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_v2_error(&error, 20001);
    let (status, error) = call(
        &http,
        Method::POST,
        &url,
        Some(&unprivileged_client_token(&handle)),
        Some(&body),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_v2_error(&error, 20013);
    let elsewhere = url.replace(NAMESPACE, "no-such-namespace");
    let (status, error) = call(&http, Method::POST, &elsewhere, Some(&game), Some(&body)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_v2_error(&error, 20002);

    assert_eq!(
        handle.state.sessions.stats().created,
        0,
        "nothing was created"
    );
}

#[tokio::test]
async fn reads_and_deletes_answer_errors_as_response_error() {
    let handle = common::start().await;
    let game = common::game_token(&handle);
    let http = common::http();
    let id = create_ok(&handle, &game, "dedicated", |_| {}).await;
    let url = format!("{}/{id}", base(&handle));

    for method in [Method::GET, Method::DELETE] {
        let missing = format!("{}/0123456789abcdef0123456789abcdef", base(&handle));
        let (status, error) = call(&http, method.clone(), &missing, Some(&game), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}");
        assert_rest_error(&error, 20002);
        let (status, error) = call(&http, method.clone(), &url, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method}");
        assert_rest_error(&error, 20001);
        let (status, error) = call(
            &http,
            method.clone(),
            &url,
            Some(&unprivileged_client_token(&handle)),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method}");
        assert_rest_error(&error, 20013);
        let elsewhere = url.replace(NAMESPACE, "no-such-namespace");
        let (status, error) = call(&http, method.clone(), &elsewhere, Some(&game), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}");
        assert_rest_error(&error, 20002);
    }
    assert_eq!(
        get(&handle, &game, &id).await.0,
        StatusCode::OK,
        "still there"
    );
    let (status, deleted) = call(&http, Method::DELETE, &url, Some(&game), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deleted["session_id"], json!(id));
    assert_eq!(get(&handle, &game, &id).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn rosters_respect_capacity_roles_and_idempotence() {
    let handle = common::start().await;
    let p1 = common::user_token(&handle, PLAYER1).access_token;
    let http = common::http();
    let id = create_ok(&handle, &p1, "p2p", |b| {
        b["game_session_setting"]["max_player"] = json!(2)
    })
    .await;

    assert_eq!(add(&handle, &p1, &id, "a", false).await.0, StatusCode::OK);
    assert_eq!(add(&handle, &p1, &id, "b", false).await.0, StatusCode::OK);
    let (status, error) = add(&handle, &p1, &id, "c", false).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_v2_error(&error, 20002);
    assert_eq!(error["errorMessage"], "session is full");
    let (status, body) = add(&handle, &p1, &id, "a", false).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"status": true})),
        "adding twice is idempotent"
    );
    assert_eq!(
        add(&handle, &p1, &id, "a", true).await.0,
        StatusCode::OK,
        "switching role keeps the seat"
    );
    let (_, session) = get(&handle, &p1, &id).await;
    assert_eq!(
        (
            strings(&session["players"]),
            strings(&session["spectators"])
        ),
        (vec!["b".to_owned()], vec!["a".to_owned()])
    );
    assert_eq!(strings(&session["all_players"]), ["b", "a"]);
    assert_eq!(session["game_session_setting"]["current_player"], 2);

    let remove_url = format!("{}/{id}/player/b", base(&handle));
    let (status, body) = call(&http, Method::DELETE, &remove_url, Some(&p1), None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": true})));
    let (status, body) = call(&http, Method::DELETE, &remove_url, Some(&p1), None).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"status": false})),
        "b was no longer in it"
    );
    assert_eq!(
        get(&handle, &p1, &id).await.1["game_session_setting"]["current_player"],
        1
    );

    let unknown = "0123456789abcdef0123456789abcdef";
    let (status, error) = add(&handle, &p1, unknown, "a", false).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_v2_error(&error, 20002);
    let (status, error) = call(
        &http,
        Method::DELETE,
        &format!("{}/{unknown}/player/a", base(&handle)),
        Some(&p1),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_v2_error(&error, 20002);

    let add_url = format!("{}/{id}/player", base(&handle));
    for (what, body) in [
        ("missing as_spectator", json!({"user_id": "d"})),
        (
            "empty user_id",
            json!({"as_spectator": false, "user_id": " "}),
        ),
    ] {
        let (status, error) = call(&http, Method::POST, &add_url, Some(&p1), Some(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}");
        assert_v2_error(&error, 20002);
    }
    let (status, error) = call_raw(&http, Method::POST, &add_url, &p1, "{").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_v2_error(&error, 20019);
    let body = json!({"as_spectator": false, "user_id": "d"});
    let (status, error) = call(&http, Method::POST, &add_url, None, Some(&body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_v2_error(&error, 20001);
    let (status, error) = call(
        &http,
        Method::POST,
        &add_url,
        Some(&unprivileged_client_token(&handle)),
        Some(&body),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_v2_error(&error, 20013);
    assert_eq!(
        get(&handle, &p1, &id).await.1["all_players"],
        json!(["a"]),
        "refused adds changed nothing"
    );
}

#[tokio::test]
async fn updates_and_settings_change_the_session() {
    let handle = common::start().await;
    let p1 = common::user_token(&handle, PLAYER1).access_token;
    let http = common::http();
    let id = create_ok(&handle, &p1, "p2p", |b| {
        b["game_session_setting"]["settings"] = json!({"map": "a"})
    })
    .await;
    add(&handle, &p1, &id, "a", false).await;
    add(&handle, &p1, &id, "b", false).await;
    let url = format!("{}/{id}", base(&handle));

    let (status, updated) = call(
        &http,
        Method::PUT,
        &url,
        Some(&p1),
        Some(&json!({"game_max_player": 1})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "models.UpdateSessionRequest has only game_max_player: {updated}"
    );
    assert_eq!(updated["game_session_setting"]["max_player"], 1);
    assert_eq!(
        updated["game_session_setting"]["current_player"], 2,
        "the roster's size"
    );
    assert_eq!(
        updated["joinable"], false,
        "two members, one seat: over capacity"
    );

    for (what, body) in [
        ("missing field", json!({"game_current_player": 1})),
        ("negative", json!({"game_max_player": -1})),
    ] {
        let (status, error) = call(&http, Method::PUT, &url, Some(&p1), Some(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}");
        assert_v2_error(&error, 20002);
    }
    let unknown = format!("{}/0123456789abcdef0123456789abcdef", base(&handle));
    let body = json!({"game_max_player": 1});
    let (status, error) = call(&http, Method::PUT, &unknown, Some(&p1), Some(&body)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_v2_error(&error, 20002);

    let settings_url = format!("{url}/settings");
    let (status, _) = call(
        &http,
        Method::PUT,
        &settings_url,
        Some(&p1),
        Some(&json!({"region": "eu"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, merged) = call(
        &http,
        Method::PUT,
        &settings_url,
        Some(&p1),
        Some(&json!({"map": "b", "rounds": 3})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        merged["game_session_setting"]["settings"],
        json!({"map": "b", "region": "eu", "rounds": 3})
    );
    let (status, error) = call(
        &http,
        Method::PUT,
        &settings_url,
        Some(&p1),
        Some(&json!([1, 2])),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "settings must be an object"
    );
    assert_v2_error(&error, 20002);
    let (status, error) = call(
        &http,
        Method::PUT,
        &format!("{unknown}/settings"),
        Some(&p1),
        Some(&json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_v2_error(&error, 20002);
    let (status, error) = call(&http, Method::PUT, &settings_url, None, Some(&json!({}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_v2_error(&error, 20001);
}

#[tokio::test]
async fn join_checks_the_password_and_seats_the_user() {
    let handle = common::start().await;
    let p1 = common::user_token(&handle, PLAYER1).access_token;
    let p2 = common::user_token(&handle, PLAYER2);
    let http = common::http();
    let id = create_ok(&handle, &p1, "p2p", |_| {}).await;
    let url = format!("{}/{id}/join", base(&handle));

    let (status, error) = call(
        &http,
        Method::POST,
        &url,
        Some(&p2.access_token),
        Some(&json!({"password": "wrong"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_v2_error(&error, 20003);
    let (status, joined) = call(
        &http,
        Method::POST,
        &url,
        Some(&p2.access_token),
        Some(&json!({"password": "pw"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{joined}");
    assert_eq!(strings(&joined["players"]), [p2.user_id.as_str()]);

    let (status, error) = call(
        &http,
        Method::POST,
        &url,
        Some(&p2.access_token),
        Some(&json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_v2_error(&error, 20002);
    let unknown = format!("{}/0123456789abcdef0123456789abcdef/join", base(&handle));
    let (status, error) = call(
        &http,
        Method::POST,
        &unknown,
        Some(&p2.access_token),
        Some(&json!({"password": "pw"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_v2_error(&error, 20002);
}

#[tokio::test]
async fn queries_filter_page_and_link() {
    let handle = common::start().await;
    let game = common::game_token(&handle);
    let p1 = common::user_token(&handle, PLAYER1).access_token;
    let http = common::http();

    let s1 = create_ok(&handle, &game, "dedicated", |_| {}).await;
    let s2 = create_ok(&handle, &game, "dedicated", |_| {}).await;
    let s3 = create_ok(&handle, &game, "dedicated", |b| {
        b["game_session_setting"]["mode"] = json!("2v2")
    })
    .await;
    let s4 = create_ok(&handle, &p1, "p2p", |_| {}).await;
    register(&handle, &game, &s1).await;
    claim(&handle, &game, &s1).await;
    add(&handle, &game, &s2, "zed", false).await;

    let query = |params: &str| {
        let url = format!("{}?{params}", base(&handle));
        let (http, token) = (http.clone(), game.clone());
        async move { call(&http, Method::GET, &url, Some(&token), None).await }
    };

    let (status, page1) = query("session_type=dedicated&limit=2").await;
    assert_eq!(status, StatusCode::OK, "{page1}");
    assert_eq!(
        session_ids(&page1, "sessions"),
        [s1.clone(), s2.clone()],
        "oldest first"
    );
    assert_eq!(page1["pagination"]["previous"], "");
    assert_eq!(
        page1["sessions"][0]["server"]["ip"], "127.0.0.1",
        "the claimed one carries its server"
    );
    let next = page1["pagination"]["next"]
        .as_str()
        .expect("next")
        .to_owned();
    let (_, page2) = call(
        &http,
        Method::GET,
        &format!("{}{next}", handle.base_url()),
        Some(&game),
        None,
    )
    .await;
    assert_eq!(session_ids(&page2, "sessions"), [s3.as_str()]);
    assert_eq!(page2["pagination"]["next"], "");
    assert!(
        page2["pagination"]["previous"]
            .as_str()
            .is_some_and(|p| p.contains("offset=0") && p.contains("session_type=dedicated")),
        "{page2}"
    );

    for (params, expected) in [
        ("session_type=dedicated&game_mode=2v2", vec![s3.clone()]),
        ("session_type=dedicated&joinable=true", vec![s1.clone()]),
        (
            "session_type=dedicated&joinable=false",
            vec![s2.clone(), s3.clone()],
        ),
        (
            "session_type=dedicated&server_status=BUSY",
            vec![s1.clone()],
        ),
        ("session_type=dedicated&user_id=zed", vec![s2.clone()]),
        ("session_type=dedicated&game_version=9.9", vec![]),
        ("session_type=dedicated&match_id=m1", vec![]),
        ("session_type=p2p", vec![s4.clone()]),
        (
            "session_type=dedicated&offset=&limit=",
            vec![s1.clone(), s2.clone(), s3.clone()],
        ),
    ] {
        let (status, page) = query(params).await;
        assert_eq!(status, StatusCode::OK, "{params}: {page}");
        assert_eq!(session_ids(&page, "sessions"), expected, "{params}");
    }

    for (params, code) in [
        ("", 20002),
        ("session_type=lan", 20002),
        ("session_type=p2p&limit=ten", 20021),
        ("session_type=p2p&joinable=perhaps", 20002),
    ] {
        let (status, error) = query(params).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{params}");
        assert_rest_error(&error, code);
    }
    let (status, error) = call(
        &http,
        Method::GET,
        &format!("{}?session_type=p2p", base(&handle)),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_rest_error(&error, 20001);
}

#[tokio::test]
async fn bulk_finds_sessions_by_member() {
    let handle = common::start().await;
    let game = common::game_token(&handle);
    let http = common::http();
    let s1 = create_ok(&handle, &game, "dedicated", |_| {}).await;
    let s2 = create_ok(&handle, &game, "dedicated", |_| {}).await;
    create_ok(&handle, &game, "dedicated", |_| {}).await;
    add(&handle, &game, &s1, "amy", false).await;
    add(&handle, &game, &s2, "bob", true).await;

    let url = format!("{}/bulk", base(&handle));
    let (status, found) = call(
        &http,
        Method::GET,
        &format!("{url}?user_ids=amy,bob,nobody"),
        Some(&game),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(session_ids(&found, "data"), [s1, s2]);
    let (status, error) = call(&http, Method::GET, &url, Some(&game), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_rest_error(&error, 20002);
    let (status, error) = call(
        &http,
        Method::GET,
        &format!("{url}?user_ids=amy"),
        Some(&unprivileged_client_token(&handle)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_rest_error(&error, 20013);
}

#[tokio::test]
async fn the_admin_get_needs_the_admin_permission_and_shows_the_password() {
    let mut seed = Seed::builtin();
    seed.clients.push(SeedClient {
        id: SB_ADMIN.0.to_owned(),
        secret: Some(SB_ADMIN.1.to_owned()),
        namespace: NAMESPACE.to_owned(),
        name: "session browser admin".to_owned(),
        redirect_uri: String::new(),
        permissions: vec![SeedPermission {
            resource: "ADMIN:NAMESPACE:{namespace}:SESSIONBROWSER:SESSION".to_owned(),
            action: 2,
        }],
    });
    let handle = common::start_with(FakesConfig {
        seed,
        ..Default::default()
    })
    .await;
    let client = handle.state.iam.client(SB_ADMIN.0).expect("admin client");
    let admin = handle
        .state
        .iam
        .grant_client_credentials(&client)
        .expect("token")
        .access_token;
    let game = common::game_token(&handle);
    let http = common::http();
    let id = create_ok(&handle, &game, "dedicated", |_| {}).await;
    let url = format!(
        "{}/sessionbrowser/admin/namespaces/{NAMESPACE}/gamesession/{id}",
        handle.base_url()
    );

    let (status, session) = call(&http, Method::GET, &url, Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(session["game_session_setting"]["password"], "pw");
    assert_eq!(
        get(&handle, &game, &id).await.1["game_session_setting"]["password"],
        ""
    );

    let (status, error) = call(&http, Method::GET, &url, Some(&game), None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the game client is no session browser admin"
    );
    assert_v2_error(&error, 20013);
    let unknown = url.replace(&id, "0123456789abcdef0123456789abcdef");
    let (status, error) = call(&http, Method::GET, &unknown, Some(&admin), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_v2_error(&error, 20002);
}

#[tokio::test]
async fn healthz_needs_no_token() {
    let handle = common::start().await;
    let url = format!("{}/sessionbrowser/healthz", handle.base_url());
    let (status, body) = call(&common::http(), Method::GET, &url, None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["name"].clone(), body["healthy"].clone()),
        (json!("sessionbrowser"), json!(true))
    );
}
