//! Matchmaking v2 and Session v2 over real sockets: two players queue, are matched into a game
//! session made from the pool's template, join it, and see the fleet's server in
//! `DSInformation`; ticket expiry; claim failures and a fleet that never delivers; notification
//! loss; rule set and pool validation; game session join/leave/invite/update.

use std::time::Duration;

use fakes::FakesConfig;
use fakes::faults::FaultFile;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{self, NAMESPACE, PLAYER1, PLAYER2};
use crate::v2_support::{
    call, lobby, next_event, one_vs_one, setup_pool, template, ticket, wait_for, wait_for_ds,
};

fn with_faults(file: Value) -> FakesConfig {
    FakesConfig {
        faults: FaultFile::from_value(json!({"seed": 7, "faults": file}))
            .expect("valid fault file"),
        ..FakesConfig::default()
    }
}

fn session_path(id: &str) -> String {
    format!("/session/v1/public/namespaces/{NAMESPACE}/gamesessions/{id}")
}

#[tokio::test]
async fn two_players_are_matched_into_a_game_session_with_an_available_server() {
    let handle = common::start().await;
    setup_pool(&handle, "duel", one_vs_one(), 0).await;
    let p1 = common::user_token(&handle, PLAYER1);
    let p2 = common::user_token(&handle, PLAYER2);
    let mut ws1 = lobby(&handle, &p1.access_token).await;
    let mut ws2 = lobby(&handle, &p2.access_token).await;

    let t1 = ticket(&handle, &p1.access_token, "duel", 1000).await;
    let (started, _) = wait_for(&mut ws1, "OnMatchmakingStarted").await;
    assert_eq!(started["ticketID"], t1.as_str());
    assert_eq!(started["matchPool"], "duel");
    let t2 = ticket(&handle, &p2.access_token, "duel", 1050).await;

    let (found, _) = wait_for(&mut ws1, "OnMatchFound").await;
    let session_id = found["id"].as_str().expect("session id").to_owned();
    assert_eq!(found["matchPool"], "duel");
    assert_eq!(found["teams"].as_array().map(Vec::len), Some(2), "{found}");
    let tickets: Vec<&str> = found["tickets"]
        .as_array()
        .expect("tickets")
        .iter()
        .filter_map(|t| t["ticketID"].as_str())
        .collect();
    assert!(tickets.contains(&t1.as_str()) && tickets.contains(&t2.as_str()));
    let (invited, _) = wait_for(&mut ws2, "OnSessionInvited").await;
    assert_eq!(invited["sessionID"], session_id.as_str());

    // The ticket now reports its match.
    let (status, status_body) = call(
        &handle,
        Method::GET,
        &format!("/match2/v1/namespaces/{NAMESPACE}/match-tickets/{t1}"),
        &p1.access_token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(status_body["matchFound"], true);
    assert_eq!(status_body["sessionID"], session_id.as_str());

    // Both join; the server shows up in DSInformation.
    for token in [&p1.access_token, &p2.access_token] {
        let (status, body) = call(
            &handle,
            Method::POST,
            &format!("{}/join", session_path(&session_id)),
            token,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let available = wait_for_ds(&mut ws2, "AVAILABLE").await;
    let server = &available["session"]["DSInformation"]["Server"];
    assert_eq!(server["region"], "us-east-1");
    assert!(server["port"].as_i64().is_some_and(|p| p > 0), "{server}");
    let (status, session) = call(
        &handle,
        Method::GET,
        &session_path(&session_id),
        &p1.access_token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(session["DSInformation"]["StatusV2"], "AVAILABLE");
    assert_eq!(session["configuration"]["name"], "duel-template");
    assert_eq!(session["matchPool"], "duel");
    assert!(
        session["members"]
            .as_array()
            .expect("members")
            .iter()
            .all(|m| m["status"] == "JOINED"),
        "{session}"
    );
    let pod = server["pod_name"].as_str().expect("pod");
    let fleet = handle
        .state
        .dsmc
        .session(NAMESPACE, &session_id)
        .expect("fleet session");
    assert_eq!(
        fleet.pod_name, pod,
        "the fleet holds the same server for the session"
    );

    // Deleting the session gives the server back.
    let admin = common::game_token(&handle);
    let (status, _) = call(
        &handle,
        Method::DELETE,
        &session_path(&session_id),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(handle.state.dsmc.session(NAMESPACE, &session_id).is_none());
}

#[tokio::test]
async fn a_lone_ticket_expires_with_a_notification_and_then_answers_404() {
    let handle = common::start().await;
    setup_pool(&handle, "lonely", one_vs_one(), 1).await;
    let p1 = common::user_token(&handle, PLAYER1);
    let mut ws = lobby(&handle, &p1.access_token).await;
    let id = ticket(&handle, &p1.access_token, "lonely", 1000).await;
    let (expired, _) = wait_for(&mut ws, "OnMatchmakingTicketExpired").await;
    assert_eq!(expired["ticketID"], id.as_str());
    assert_eq!(expired["matchPool"], "lonely");
    let (status, body) = call(
        &handle,
        Method::GET,
        &format!("/match2/v1/namespaces/{NAMESPACE}/match-tickets/{id}"),
        &p1.access_token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["ErrorCode"].is_i64(),
        "match2 errors are PascalCase: {body}"
    );
}

#[tokio::test]
async fn a_second_ticket_in_the_same_pool_is_a_conflict_and_delete_dequeues() {
    let handle = common::start().await;
    setup_pool(&handle, "duel", one_vs_one(), 0).await;
    let p1 = common::user_token(&handle, PLAYER1);
    let id = ticket(&handle, &p1.access_token, "duel", 1000).await;
    let body = json!({"matchPool": "duel", "attributes": {}, "latencies": {}});
    let tickets = format!("/match2/v1/namespaces/{NAMESPACE}/match-tickets");
    let (status, _) = call(
        &handle,
        Method::POST,
        &tickets,
        &p1.access_token,
        Some(&body),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, mine) = call(
        &handle,
        Method::GET,
        &format!("{tickets}/me"),
        &p1.access_token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mine["data"][0]["matchTicketID"], id.as_str());
    assert_eq!(mine["data"][0]["isActive"], true);
    let (status, _) = call(
        &handle,
        Method::DELETE,
        &format!("{tickets}/{id}"),
        &p1.access_token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(handle.state.match2.queued(), 0);
    let unknown = json!({"matchPool": "nope", "attributes": {}, "latencies": {}});
    let (status, _) = call(
        &handle,
        Method::POST,
        &tickets,
        &p1.access_token,
        Some(&unknown),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let missing = json!({"matchPool": "duel", "attributes": {}});
    let (status, error) = call(
        &handle,
        Method::POST,
        &tickets,
        &p1.access_token,
        Some(&missing),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "latencies is required: {error}"
    );
}

#[tokio::test]
async fn bad_rule_sets_and_pools_are_refused_with_the_reason() {
    let handle = common::start().await;
    let admin = common::game_token(&handle);
    let base = format!("/match2/v1/namespaces/{NAMESPACE}");
    let bad = json!({"name": "r", "enable_custom_match_function": false,
        "data": {"alliance": {"min_number": 3, "max_number": 2, "player_min_number": 1, "player_max_number": 1}}});
    let (status, body) = call(
        &handle,
        Method::POST,
        &format!("{base}/rulesets"),
        &admin,
        Some(&bad),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["ErrorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("alliance")),
        "{body}"
    );
    let custom =
        json!({"name": "c", "enable_custom_match_function": true, "data": {"anything": 1}});
    let (status, _) = call(
        &handle,
        Method::POST,
        &format!("{base}/rulesets"),
        &admin,
        Some(&custom),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "custom rule sets need only be JSON"
    );
    let pool = json!({"name": "p", "rule_set": "c", "session_template": "missing",
        "match_function": "default", "match_function_override": {}, "ticket_expiration_seconds": 0,
        "backfill_ticket_expiration_seconds": 0, "backfill_proposal_expiration_seconds": 0,
        "auto_accept_backfill_proposal": false});
    let (status, body) = call(
        &handle,
        Method::POST,
        &format!("{base}/match-pools"),
        &admin,
        Some(&pool),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["ErrorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("session_template")),
        "{body}"
    );
    let p1 = common::user_token(&handle, PLAYER1);
    let (status, _) = call(
        &handle,
        Method::POST,
        &format!("{base}/rulesets"),
        &p1.access_token,
        Some(&custom),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "players may not write rule sets"
    );
}

async fn matched_session(handle: &fakes::Handle) -> (String, crate::v2_support::Ws) {
    setup_pool(handle, "duel", one_vs_one(), 0).await;
    let p1 = common::user_token(handle, PLAYER1);
    let p2 = common::user_token(handle, PLAYER2);
    let mut ws1 = lobby(handle, &p1.access_token).await;
    ticket(handle, &p1.access_token, "duel", 1000).await;
    ticket(handle, &p2.access_token, "duel", 1000).await;
    let (found, _) = wait_for(&mut ws1, "OnMatchFound").await;
    (found["id"].as_str().expect("id").to_owned(), ws1)
}

#[tokio::test]
async fn a_failed_claim_reports_failed_to_request_and_frees_the_server() {
    let handle = common::start_with(with_faults(json!([
        {"kind": "claim_outcome", "unreachable": 1.0}
    ])))
    .await;
    let (session_id, mut ws) = matched_session(&handle).await;
    let failed = wait_for_ds(&mut ws, "FAILED_TO_REQUEST").await;
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("unreachable")),
        "{failed}"
    );
    assert!(handle.state.dsmc.session(NAMESPACE, &session_id).is_none());
}

#[tokio::test]
async fn a_fleet_that_never_readies_leaves_the_session_requested() {
    let handle = common::start_with(with_faults(json!([
        {"kind": "ready_delay", "never": true}
    ])))
    .await;
    let (session_id, mut ws) = matched_session(&handle).await;
    let requested = wait_for_ds(&mut ws, "REQUESTED").await;
    assert!(
        requested["session"]["DSInformation"]["RequestedAt"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    let fleet = handle
        .state
        .dsmc
        .session(NAMESPACE, &session_id)
        .expect("registered");
    assert_eq!(fleet.status.as_str(), "CREATING");
    let p1 = common::user_token(&handle, PLAYER1);
    let (_, session) = call(
        &handle,
        Method::GET,
        &session_path(&session_id),
        &p1.access_token,
        None,
    )
    .await;
    assert_eq!(session["DSInformation"]["StatusV2"], "REQUESTED");
}

#[tokio::test]
async fn a_lost_match_found_still_leaves_the_invite_and_the_ticket_status() {
    let handle = common::start_with(with_faults(json!([
        {"kind": "drop_notification", "target": {"topic": "OnMatchFound"}}
    ])))
    .await;
    setup_pool(&handle, "duel", one_vs_one(), 0).await;
    let p1 = common::user_token(&handle, PLAYER1);
    let p2 = common::user_token(&handle, PLAYER2);
    let mut ws1 = lobby(&handle, &p1.access_token).await;
    let t1 = ticket(&handle, &p1.access_token, "duel", 1000).await;
    ticket(&handle, &p2.access_token, "duel", 1000).await;
    let (invited, before) = wait_for(&mut ws1, "OnSessionInvited").await;
    assert!(!before.contains(&"OnMatchFound".to_owned()), "{before:?}");
    let (_, status) = call(
        &handle,
        Method::GET,
        &format!("/match2/v1/namespaces/{NAMESPACE}/match-tickets/{t1}"),
        &p1.access_token,
        None,
    )
    .await;
    assert_eq!(
        status["sessionID"], invited["sessionID"],
        "polling finds the match"
    );
}

#[tokio::test]
async fn game_sessions_join_leave_invite_and_update_with_notifications() {
    let handle = common::start().await;
    let admin = common::game_token(&handle);
    let (status, body) = call(
        &handle,
        Method::POST,
        &format!("/session/v1/admin/namespaces/{NAMESPACE}/configuration"),
        &admin,
        Some(&template("lobby-game", "P2P", "INVITE_ONLY")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["namespace"], NAMESPACE);
    let p1 = common::user_token(&handle, PLAYER1);
    let p2 = common::user_token(&handle, PLAYER2);
    let mut ws1 = lobby(&handle, &p1.access_token).await;
    let mut ws2 = lobby(&handle, &p2.access_token).await;
    let (status, session) = call(
        &handle,
        Method::POST,
        &format!("/session/v1/public/namespaces/{NAMESPACE}/gamesession"),
        &p1.access_token,
        Some(&json!({"configurationName": "lobby-game"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let id = session["id"].as_str().expect("id").to_owned();
    assert_eq!(session["leaderID"], p1.user_id.as_str());
    assert_eq!(
        session["DSInformation"]["StatusV2"], "",
        "P2P has no server"
    );

    // Invite-only: p2 cannot join uninvited.
    let join = format!("{}/join", session_path(&id));
    let (status, error) = call(&handle, Method::POST, &join, &p2.access_token, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        error["errorCode"].is_i64() && error.get("attributes").is_some(),
        "{error}"
    );
    let invite = json!({"userID": p2.user_id, "platformID": ""});
    let (status, _) = call(
        &handle,
        Method::POST,
        &format!("{}/invite", session_path(&id)),
        &p1.access_token,
        Some(&invite),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (invited, _) = wait_for(&mut ws2, "OnSessionInvited").await;
    assert_eq!(invited["sessionID"], id.as_str());
    assert_eq!(invited["senderID"], p1.user_id.as_str());
    let (status, joined) = call(&handle, Method::POST, &join, &p2.access_token, None).await;
    assert_eq!(status, StatusCode::OK, "{joined}");
    let (changed, _) = wait_for(&mut ws1, "OnSessionMembersChanged").await;
    assert_eq!(changed["joinerID"], p2.user_id.as_str());
    assert_eq!(
        changed["session"]["members"].as_array().map(Vec::len),
        Some(2)
    );

    // PATCH needs the current version.
    let version = joined["version"].as_i64().expect("version");
    let stale = json!({"version": version - 1, "attributes": {"map": "dust"}});
    let (status, _) = call(
        &handle,
        Method::PATCH,
        &session_path(&id),
        &p1.access_token,
        Some(&stale),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let fresh = json!({"version": version, "attributes": {"map": "dust"}});
    let (status, updated) = call(
        &handle,
        Method::PATCH,
        &session_path(&id),
        &p1.access_token,
        Some(&fresh),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["attributes"]["map"], "dust");
    let (update, _) = wait_for(&mut ws2, "OnGameSessionUpdated").await;
    assert_eq!(update["version"], version + 1);

    // p2 leaves; p1 hears it, and p2's own list no longer has the session.
    let (status, _) = call(
        &handle,
        Method::DELETE,
        &format!("{}/leave", session_path(&id)),
        &p2.access_token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (left, _) = wait_for(&mut ws1, "OnSessionMembersChanged").await;
    let statuses: Vec<&str> = left["session"]["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["statusV2"].as_str())
        .collect();
    assert_eq!(statuses, vec!["JOINED", "LEFT"]);
    let (_, mine) = call(
        &handle,
        Method::GET,
        &format!("/session/v1/public/namespaces/{NAMESPACE}/users/me/gamesessions"),
        &p2.access_token,
        None,
    )
    .await;
    assert_eq!(mine["data"].as_array().map(Vec::len), Some(0), "{mine}");
    // Nothing else is pending for p2.
    let quiet = tokio::time::timeout(Duration::from_millis(200), next_event(&mut ws2)).await;
    assert!(quiet.is_err(), "unexpected event {quiet:?}");
}

#[tokio::test]
async fn a_ticket_expiry_storm_expires_queued_tickets_of_its_pool_only() {
    let handle = common::start_with(with_faults(json!([
        {"kind": "ticket_expiry", "after_s": 0, "pool": "stormy"}
    ])))
    .await;
    setup_pool(&handle, "stormy", one_vs_one(), 0).await;
    setup_pool(&handle, "calm", one_vs_one(), 0).await;
    let p1 = common::user_token(&handle, PLAYER1);
    let p2 = common::user_token(&handle, PLAYER2);
    let mut ws1 = lobby(&handle, &p1.access_token).await;
    let calm = ticket(&handle, &p2.access_token, "calm", 1000).await;
    let stormy = ticket(&handle, &p1.access_token, "stormy", 1000).await;
    let (expired, _) = wait_for(&mut ws1, "OnMatchmakingTicketExpired").await;
    assert_eq!(
        expired["ticketID"],
        stormy.as_str(),
        "the pool keeps tickets 300 s"
    );
    let (status, _) = call(
        &handle,
        Method::GET,
        &format!("/match2/v1/namespaces/{NAMESPACE}/match-tickets/{calm}"),
        &p2.access_token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the other pool is untouched");
    let kinds = handle.state.faults.injected_by_kind();
    assert_eq!(
        kinds[fakes::faults::model::KINDS
            .iter()
            .position(|k| *k == "ticket_expiry")
            .expect("kind")],
        1
    );
}

#[tokio::test]
async fn match_functions_are_registered_by_name_and_bad_registrations_refused() {
    let handle = common::start().await;
    let put = |name: &str, body: Value| {
        let url = format!("{}/_fakes/match-functions/{name}", handle.base_url());
        async move {
            common::http()
                .put(url)
                .json(&body)
                .send()
                .await
                .expect("put")
                .status()
        }
    };
    assert_eq!(
        put("mf", json!({"url": "not a url"})).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        put("default", json!({"url": "http://127.0.0.1:6565"})).await,
        StatusCode::BAD_REQUEST,
        "the built-in name is not replaced"
    );
    assert_eq!(
        put(
            "mf",
            json!({"url": "http://127.0.0.1:6565", "timeout_ms": 0})
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    assert!(!handle.state.match2.knows_function("mf"));
    assert_eq!(
        put(
            "mf",
            json!({"url": "http://127.0.0.1:6565", "timeout_ms": 250})
        )
        .await,
        StatusCode::NO_CONTENT
    );
    assert!(handle.state.match2.knows_function("mf"));
}
