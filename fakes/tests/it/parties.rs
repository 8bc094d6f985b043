//! Session v2 parties over real sockets: forming by invite and by code, the `OnParty*`
//! notifications, leader changes, kicks, updates with versions, every 4xx in Session v2's error
//! shape, and party match tickets in Matchmaking v2 (leader only, every member told, the party
//! kept on one team, the ticket cancelled when the party's members change).

use fakes::Handle;
use fakes::iam::store::UserRecord;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{self, NAMESPACE, PLAYER1, PLAYER2};
use crate::v2_support::{Ws, call, lobby, setup_pool, wait_for};

const PUBLIC: &str = "/session/v1/public/namespaces/matchbench";

/// The seeded `User` role: what a game client's player holds.
const USER_ROLE: &str = "2251438839e948d783ec0e5281daf05b";

struct Player {
    id: String,
    token: String,
    ws: Ws,
}

/// A logged-in player with an open lobby socket: a seeded one, or a new user `name`.
async fn player(handle: &Handle, name: &str) -> Player {
    let credentials = match name {
        "player1" => PLAYER1,
        "player2" => PLAYER2,
        _ => {
            handle
                .state
                .iam
                .create_user(UserRecord {
                    user_id: fakes::iam::store::new_id(),
                    username: name.to_owned(),
                    password: "PartyPass1!".to_owned(),
                    email: format!("{name}@example.com"),
                    namespace: NAMESPACE.to_owned(),
                    display_name: name.to_owned(),
                    roles: vec![USER_ROLE.to_owned()],
                    country: "US".to_owned(),
                    date_of_birth: "1990-01-01".to_owned(),
                    created_at: "2026-01-01T00:00:00Z".to_owned(),
                    enabled: true,
                    bans: Vec::new(),
                })
                .expect("user created");
            (name, "PartyPass1!")
        }
    };
    let token = common::user_token(handle, credentials);
    let ws = lobby(handle, &token.access_token).await;
    Player {
        id: token.user_id,
        token: token.access_token,
        ws,
    }
}

fn create_body(joinability: &str, max_players: i32, members: &[&str]) -> Value {
    json!({
        "attributes": {"mode": "casual"}, "configurationName": "", "inactiveTimeout": 60,
        "inviteTimeout": 60, "joinability": joinability, "maxPlayers": max_players,
        "minPlayers": 1, "textChat": false, "type": "NONE",
        "members": members.iter().map(|m| json!({"ID": m, "PlatformID": "", "PlatformUserID": ""})).collect::<Vec<_>>()
    })
}

async fn create_party(handle: &Handle, leader: &Player, body: &Value) -> Value {
    let (status, party) = call(
        handle,
        Method::POST,
        &format!("{PUBLIC}/party"),
        &leader.token,
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{party}");
    party
}

async fn party_call(
    handle: &Handle,
    method: Method,
    rest: &str,
    who: &Player,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    call(
        handle,
        method,
        &format!("{PUBLIC}/{rest}"),
        &who.token,
        body,
    )
    .await
}

/// The body is Session v2's `response.Error`.
fn assert_session_error(body: &Value, status: StatusCode) {
    assert!(body["errorCode"].is_i64(), "{body}");
    assert!(body["errorMessage"].is_string(), "{body}");
    assert_eq!(body["message"], body["errorMessage"], "{body}");
    assert!(!status.is_success());
}

fn status_of(party: &Value, user: &str) -> String {
    party["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["id"] == user)
        .map(|m| m["statusV2"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_party_forms_by_invite_and_code_and_its_members_hear_every_change() {
    let handle = common::start().await;
    let mut p1 = player(&handle, "player1").await;
    let mut p2 = player(&handle, "player2").await;
    let mut p3 = player(&handle, "partier3").await;
    let p4 = player(&handle, "partier4").await;

    // Created with p2 invited in the body; the default configuration, our limits.
    let party = create_party(&handle, &p1, &create_body("INVITE_ONLY", 3, &[&p2.id])).await;
    let id = party["id"].as_str().expect("id").to_owned();
    let code = party["code"].as_str().expect("code").to_owned();
    assert_eq!(party["leaderID"], p1.id.as_str());
    assert_eq!(party["configuration"]["name"], "default");
    assert_eq!(party["configuration"]["maxPlayers"], 3);
    assert_eq!(party["attributes"]["mode"], "casual");
    assert_eq!(status_of(&party, &p1.id), "JOINED");
    assert_eq!(status_of(&party, &p2.id), "INVITED");
    let (invited, _) = wait_for(&mut p2.ws, "OnPartyInvited").await;
    assert_eq!(invited, json!({"partyID": id, "senderID": p1.id}));

    // p2 sees it among its parties and joins; p1 hears OnPartyJoined and the members change.
    let (status, mine) = party_call(&handle, Method::GET, "users/me/parties", &p2, None).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(mine["data"][0]["id"], id.as_str());
    let (status, joined) = party_call(
        &handle,
        Method::POST,
        &format!("parties/{id}/users/me/join"),
        &p2,
        Some(&json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{joined}");
    assert_eq!(status_of(&joined, &p2.id), "JOINED");
    let (joined_notif, _) = wait_for(&mut p1.ws, "OnPartyJoined").await;
    assert_eq!(joined_notif["partyID"], id.as_str());
    let (changed, _) = wait_for(&mut p1.ws, "OnPartyMembersChanged").await;
    assert_eq!(changed["joinerID"], p2.id.as_str());
    assert_eq!(changed["leaderID"], p1.id.as_str());
    assert_eq!(changed["session"]["id"], id.as_str());

    // p3 joins by code (no invite needed); the party is then full and p4's code join fails.
    let (status, by_code) = party_call(
        &handle,
        Method::POST,
        "parties/users/me/join/code",
        &p3,
        Some(&json!({"code": code})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{by_code}");
    assert_eq!(by_code["isFull"], true);
    let (status, full) = party_call(
        &handle,
        Method::POST,
        "parties/users/me/join/code",
        &p4,
        Some(&json!({"code": code})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{full}");
    assert_session_error(&full, status);

    // The leader hands over to p2: members hear the new leader.
    let (status, promoted) = party_call(
        &handle,
        Method::POST,
        &format!("parties/{id}/leader"),
        &p1,
        Some(&json!({"leaderID": p2.id})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{promoted}");
    assert_eq!(promoted["leaderID"], p2.id.as_str());
    loop {
        let (changed, _) = wait_for(&mut p3.ws, "OnPartyMembersChanged").await;
        if changed["leaderID"] == p2.id.as_str() {
            break;
        }
    }
    let (updated, _) = wait_for(&mut p3.ws, "OnPartyUpdated").await;
    assert_eq!(updated["leaderID"], p2.id.as_str());

    // Only the leader kicks: p1 no longer may; p2 kicks p3, who hears OnPartyKicked.
    let (status, refused) = party_call(
        &handle,
        Method::DELETE,
        &format!("parties/{id}/users/{}/kick", p3.id),
        &p1,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_session_error(&refused, status);
    let (status, kicked) = party_call(
        &handle,
        Method::DELETE,
        &format!("parties/{id}/users/{}/kick", p3.id),
        &p2,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{kicked}");
    assert_eq!(kicked["partyID"], id.as_str());
    assert_eq!(kicked["leaderID"], p2.id.as_str());
    let (kick_notif, _) = wait_for(&mut p3.ws, "OnPartyKicked").await;
    assert_eq!(kick_notif, json!({"partyID": id}));

    // Updates name the current version: a stale one is 409, the current one is applied.
    let (_, current) = party_call(&handle, Method::GET, &format!("parties/{id}"), &p1, None).await;
    let version = current["version"].as_i64().expect("version");
    let update = |version: i64| {
        json!({"attributes": {"mode": "ranked"}, "inactiveTimeout": 0, "inviteTimeout": 0,
               "joinability": "", "maxPlayers": 0, "minPlayers": 0, "type": "", "version": version})
    };
    let (status, stale) = party_call(
        &handle,
        Method::PATCH,
        &format!("parties/{id}"),
        &p1,
        Some(&update(version - 1)),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{stale}");
    assert_session_error(&stale, status);
    let (status, patched) = party_call(
        &handle,
        Method::PATCH,
        &format!("parties/{id}"),
        &p1,
        Some(&update(version)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["attributes"]["mode"], "ranked");
    assert_eq!(patched["version"], version + 1);
    let (status, put) = party_call(
        &handle,
        Method::PUT,
        &format!("parties/{id}"),
        &p2,
        Some(&update(version + 1)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{put}");
    loop {
        let (updated, _) = wait_for(&mut p1.ws, "OnPartyUpdated").await;
        if updated["attributes"]["mode"] == "ranked" {
            break;
        }
    }

    // p1 leaves (204); leaving again is refused; p2 hears the members change.
    let (status, _) = party_call(
        &handle,
        Method::DELETE,
        &format!("parties/{id}/users/me/leave"),
        &p1,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, again) = party_call(
        &handle,
        Method::DELETE,
        &format!("parties/{id}/users/me/leave"),
        &p1,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{again}");
    loop {
        let (changed, _) = wait_for(&mut p2.ws, "OnPartyMembersChanged").await;
        if status_of(&changed["session"], &p1.id) == "LEFT" {
            assert_eq!(changed["joinerID"], "");
            break;
        }
    }
}

#[tokio::test]
async fn party_routes_refuse_bad_requests_in_the_session_error_shape() {
    let handle = common::start().await;
    let p1 = player(&handle, "player1").await;
    let mut p2 = player(&handle, "player2").await;
    let p3 = player(&handle, "outsider3").await;
    let party = create_party(&handle, &p1, &create_body("INVITE_ONLY", 4, &[])).await;
    let id = party["id"].as_str().expect("id").to_owned();

    // Bad JSON, and a body missing a required field.
    let response = common::http()
        .post(format!("{}{PUBLIC}/party", handle.base_url()))
        .bearer_auth(&p1.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json error");
    assert_session_error(&body, StatusCode::BAD_REQUEST);
    let mut missing = create_body("OPEN", 4, &[]);
    missing
        .as_object_mut()
        .expect("object")
        .remove("joinability");
    let (status, body) = call(
        &handle,
        Method::POST,
        &format!("{PUBLIC}/party"),
        &p1.token,
        Some(&missing),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_session_error(&body, status);
    let (status, body) = call(
        &handle,
        Method::POST,
        &format!("{PUBLIC}/party"),
        &p1.token,
        Some(&create_body("SOMETIMES", 4, &[])),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // A join body that is not JSON.
    let response = common::http()
        .post(format!(
            "{}{PUBLIC}/parties/{id}/users/me/join",
            handle.base_url()
        ))
        .bearer_auth(&p2.token)
        .header("content-type", "application/json")
        .body("{bad")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json error");
    assert_session_error(&body, StatusCode::BAD_REQUEST);

    // Unknown party: 404 on every route that names one.
    for (method, rest) in [
        (Method::GET, "parties/nope".to_owned()),
        (Method::POST, "parties/nope/users/me/join".to_owned()),
        (Method::DELETE, "parties/nope/users/me/leave".to_owned()),
        (Method::DELETE, "parties/nope/users/me/reject".to_owned()),
    ] {
        let (status, body) = party_call(&handle, method, &rest, &p1, Some(&json!({}))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{rest}: {body}");
        assert_session_error(&body, status);
    }
    let (status, body) = party_call(
        &handle,
        Method::POST,
        "parties/users/me/join/code",
        &p3,
        Some(&json!({"code": "ZZZZZZ"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // Not a member: no reading, no inviting, no joining an invite-only party uninvited.
    let (status, body) =
        party_call(&handle, Method::GET, &format!("parties/{id}"), &p3, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_session_error(&body, status);
    let (status, body) = party_call(
        &handle,
        Method::POST,
        &format!("parties/{id}/invite"),
        &p3,
        Some(&json!({"platformID": "", "userID": p2.id})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = party_call(
        &handle,
        Method::POST,
        &format!("parties/{id}/users/me/join"),
        &p3,
        Some(&json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // Inviting a user that does not exist.
    let (status, body) = party_call(
        &handle,
        Method::POST,
        &format!("parties/{id}/invite"),
        &p1,
        Some(&json!({"platformID": "", "userID": "no-such-user"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // Not the leader: no promoting.
    let (status, body) = party_call(
        &handle,
        Method::POST,
        &format!("parties/{id}/leader"),
        &p3,
        Some(&json!({"leaderID": p3.id})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // Reject: only with a pending invite; then the members hear OnPartyRejected.
    let (status, _) = party_call(
        &handle,
        Method::DELETE,
        &format!("parties/{id}/users/me/reject"),
        &p2,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = party_call(
        &handle,
        Method::POST,
        &format!("parties/{id}/invite"),
        &p1,
        Some(&json!({"platformID": "", "userID": p2.id})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (invite, _) = wait_for(&mut p2.ws, "OnPartyInvited").await;
    assert_eq!(invite["partyID"], id.as_str());
    let (status, _) = party_call(
        &handle,
        Method::DELETE,
        &format!("parties/{id}/users/me/reject"),
        &p2,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, party) = party_call(&handle, Method::GET, &format!("parties/{id}"), &p1, None).await;
    assert_eq!(status_of(&party, &p2.id), "REJECTED");
    // Rejected: joining needs a new invite.
    let (status, _) = party_call(
        &handle,
        Method::POST,
        &format!("parties/{id}/users/me/join"),
        &p2,
        Some(&json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// A 2v2 pool: two teams of exactly two.
fn two_vs_two() -> Value {
    json!({
        "alliance": {"min_number": 2, "max_number": 2, "player_min_number": 2, "player_max_number": 2},
        "matching_rule": [{"attribute": "mmr", "criteria": "distance", "reference": 500}]
    })
}

async fn ticket_for(handle: &Handle, who: &Player, party: Option<&str>) -> (StatusCode, Value) {
    let mut body =
        json!({"matchPool": "duo", "attributes": {"mmr": 1000}, "latencies": {"us-east-1": 30}});
    if let Some(party) = party {
        body["sessionID"] = json!(party);
    }
    call(
        handle,
        Method::POST,
        &format!("/match2/v1/namespaces/{NAMESPACE}/match-tickets"),
        &who.token,
        Some(&body),
    )
    .await
}

/// p1 leads a party with p2: forms it and returns its id.
async fn duo(handle: &Handle, p1: &Player, p2: &mut Player) -> String {
    let party = create_party(handle, p1, &create_body("INVITE_ONLY", 2, &[&p2.id])).await;
    let id = party["id"].as_str().expect("id").to_owned();
    let (invited, _) = wait_for(&mut p2.ws, "OnPartyInvited").await;
    assert_eq!(invited["partyID"], id.as_str());
    // No body at all, as older SDKs send the join.
    let (status, body) = party_call(
        handle,
        Method::POST,
        &format!("parties/{id}/users/me/join"),
        p2,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    id
}

#[tokio::test]
async fn a_party_ticket_is_the_leaders_carries_every_member_and_stays_on_one_team() {
    let handle = common::start().await;
    setup_pool(&handle, "duo", two_vs_two(), 0).await;
    let mut p1 = player(&handle, "player1").await;
    let mut p2 = player(&handle, "player2").await;
    let mut p3 = player(&handle, "solo3").await;
    let mut p4 = player(&handle, "solo4").await;
    let party = duo(&handle, &p1, &mut p2).await;

    // A member is not the leader; an unknown party is 404 (match2's PascalCase error shape).
    let (status, body) = ticket_for(&handle, &p2, Some(&party)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["ErrorCode"].is_i64(), "{body}");
    let (status, body) = ticket_for(&handle, &p1, Some("no-such-party")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let (status, body) = ticket_for(&handle, &p1, Some(&party)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let ticket = body["matchTicketID"].as_str().expect("ticket").to_owned();
    for ws in [&mut p1.ws, &mut p2.ws] {
        let (started, _) = wait_for(ws, "OnMatchmakingStarted").await;
        assert_eq!(started["ticketID"], ticket.as_str());
        assert_eq!(started["partyID"], party.as_str());
    }
    // The member's own solo ticket in the same pool would put it in twice.
    let (status, body) = ticket_for(&handle, &p2, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let (status, body) = ticket_for(&handle, &p3, None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = ticket_for(&handle, &p4, None).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let mut sessions = Vec::new();
    for ws in [&mut p1.ws, &mut p2.ws, &mut p3.ws, &mut p4.ws] {
        let (found, _) = wait_for(ws, "OnMatchFound").await;
        let teams = found["teams"].as_array().expect("teams").clone();
        assert_eq!(teams.len(), 2, "{found}");
        let party_team = teams
            .iter()
            .find(|t| {
                t["userIDs"]
                    .as_array()
                    .expect("users")
                    .contains(&json!(p1.id))
            })
            .expect("p1 placed");
        assert!(
            party_team["userIDs"]
                .as_array()
                .expect("users")
                .contains(&json!(p2.id)),
            "the party was split: {found}"
        );
        assert!(
            party_team["parties"]
                .as_array()
                .expect("parties")
                .iter()
                .any(|p| p["partyID"] == party.as_str()),
            "{found}"
        );
        sessions.push(found["id"].as_str().expect("session").to_owned());
    }
    sessions.dedup();
    assert_eq!(sessions.len(), 1, "one game session for all four");
    // The game session's teams keep the party together too.
    let (status, session) = call(
        &handle,
        Method::GET,
        &format!("{PUBLIC}/gamesessions/{}", sessions[0]),
        &p1.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let together = session["teams"].as_array().expect("teams").iter().any(|t| {
        let users = t["userIDs"].as_array().expect("users");
        users.contains(&json!(p1.id)) && users.contains(&json!(p2.id))
    });
    assert!(together, "{session}");
}

#[tokio::test]
async fn a_member_leaving_cancels_the_partys_queued_ticket() {
    let handle = common::start().await;
    setup_pool(&handle, "duo", two_vs_two(), 0).await;
    let mut p1 = player(&handle, "player1").await;
    let mut p2 = player(&handle, "player2").await;
    let party = duo(&handle, &p1, &mut p2).await;
    let (status, body) = ticket_for(&handle, &p1, Some(&party)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let ticket = body["matchTicketID"].as_str().expect("ticket").to_owned();

    let (status, _) = party_call(
        &handle,
        Method::DELETE,
        &format!("parties/{party}/users/me/leave"),
        &p2,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for ws in [&mut p1.ws, &mut p2.ws] {
        let (cancelled, _) = wait_for(ws, "OnMatchmakingTicketCanceled").await;
        assert_eq!(cancelled["ticketID"], ticket.as_str());
        assert_eq!(cancelled["partyID"], party.as_str());
    }
    let (status, _) = call(
        &handle,
        Method::GET,
        &format!("/match2/v1/namespaces/{NAMESPACE}/match-tickets/{ticket}"),
        &p1.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
