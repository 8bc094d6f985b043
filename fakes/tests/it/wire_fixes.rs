//! Where fakes used to differ from the AGS spec, checked over real sockets: lobby sockets close
//! on logout (4021) and on admin revocation (4020); the legacy revoke paths; admin revoke errors
//! in the OAuth shape; role look-ups under `ADMIN:ROLE`; the required fields of `users/me`, the
//! public user, client info (and its 404 code) and token responses; `iss` in tokens; v4 user
//! creation's required `username` and optional `password`; user deletion's permission.

use accelbyte::models::iam::JwtClaims;
use base64::Engine;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{self, GAME_CLIENT, IAM_CLIENT, NAMESPACE, PLAYER_CLIENT, PLAYER1, PLAYER2};
use crate::v2_support::{WAIT, Ws, call, lobby};

async fn close_code(ws: &mut Ws) -> u16 {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(frame))))) => return frame.code.into(),
            Ok(Some(Ok(Message::Close(None)))) => panic!("close without a code"),
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

fn missing(value: &Value, required: &[&str]) -> Vec<String> {
    required
        .iter()
        .filter(|k| value.get(**k).is_none())
        .map(|k| (*k).to_owned())
        .collect()
}

#[tokio::test]
async fn logout_closes_the_lobby_socket_with_4021_and_admin_revoke_with_4020() {
    let handle = common::start().await;
    let p1 = common::user_token(&handle, PLAYER1);
    let p2 = common::user_token(&handle, PLAYER2);
    let mut ws1 = lobby(&handle, &p1.access_token).await;
    let mut ws2 = lobby(&handle, &p2.access_token).await;
    let (status, _) = call(
        &handle,
        Method::POST,
        "/iam/v3/logout",
        &p1.access_token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(close_code(&mut ws1).await, 4021);
    let admin = common::game_token(&handle);
    let path = format!(
        "/iam/v3/oauth/admin/namespaces/{NAMESPACE}/users/{}/revoke",
        p2.user_id
    );
    let (status, _) = call(&handle, Method::POST, &path, &admin, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(close_code(&mut ws2).await, 4020);
}

#[tokio::test]
async fn admin_revoke_errors_are_oauth_errors() {
    let handle = common::start().await;
    let p1 = common::user_token(&handle, PLAYER1);
    let path = format!(
        "/iam/v3/oauth/admin/namespaces/{NAMESPACE}/users/{}/revoke",
        p1.user_id
    );
    let (status, body) = call(&handle, Method::POST, &path, &p1.access_token, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error"].is_string() && body.get("errorCode").is_none(),
        "{body}"
    );
}

#[tokio::test]
async fn the_legacy_revoke_paths_are_revoke_token_and_revoke_user() {
    let handle = common::start().await;
    let base = handle.base_url();
    let p1 = common::user_token(&handle, PLAYER1);
    let resp = common::http()
        .post(format!("{base}/iam/oauth/revoke/token"))
        .basic_auth(PLAYER_CLIENT, Some(""))
        .form(&[("token", p1.access_token.as_str())])
        .send()
        .await
        .expect("revoke token");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(handle.state.iam.authenticate(&p1.access_token).is_err());
    let old = common::http()
        .post(format!("{base}/iam/oauth/revoke"))
        .basic_auth(PLAYER_CLIENT, Some(""))
        .form(&[("token", "x")])
        .send()
        .await
        .expect("old path");
    assert_eq!(old.status(), StatusCode::NOT_FOUND, "not a spec path");

    let p2 = common::user_token(&handle, PLAYER2);
    let admin = common::game_token(&handle);
    let resp = common::http()
        .post(format!("{base}/iam/oauth/revoke/user"))
        .bearer_auth(&admin)
        .form(&[("userID", p2.user_id.as_str())])
        .send()
        .await
        .expect("revoke user");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(handle.state.iam.authenticate(&p2.access_token).is_err());
}

#[tokio::test]
async fn user_responses_carry_the_spec_required_fields() {
    let handle = common::start().await;
    let p1 = common::user_token(&handle, PLAYER1);
    let (status, me) = call(
        &handle,
        Method::GET,
        "/iam/v3/public/users/me",
        &p1.access_token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let required_me = [
        "authType",
        "bans",
        "country",
        "createdAt",
        "deletionStatus",
        "displayName",
        "emailAddress",
        "emailVerified",
        "enabled",
        "lastDateOfBirthChangedTime",
        "lastEnabledChangedTime",
        "namespace",
        "namespaceRoles",
        "permissions",
        "phoneVerified",
        "roles",
        "userId",
    ];
    assert_eq!(missing(&me, &required_me), Vec::<String>::new(), "{me}");
    let path = format!("/iam/v3/public/namespaces/{NAMESPACE}/users/{}", p1.user_id);
    let (status, public) = call(&handle, Method::GET, &path, &p1.access_token, None).await;
    assert_eq!(status, StatusCode::OK);
    let required_public = [
        "authType",
        "bans",
        "createdAt",
        "deletionStatus",
        "displayName",
        "emailVerified",
        "enabled",
        "lastDateOfBirthChangedTime",
        "lastEnabledChangedTime",
        "namespace",
        "namespaceRoles",
        "permissions",
        "phoneVerified",
        "roles",
        "uniqueDisplayName",
        "userId",
    ];
    assert_eq!(
        missing(&public, &required_public),
        Vec::<String>::new(),
        "{public}"
    );
}

#[tokio::test]
async fn client_info_has_every_required_field_and_10365_when_missing() {
    let handle = common::start().await;
    let admin = common::game_token(&handle);
    let iam = {
        let client = handle.state.iam.client(IAM_CLIENT.0).expect("iam client");
        handle
            .state
            .iam
            .grant_client_credentials(&client)
            .expect("token")
            .access_token
    };
    let path = format!(
        "/iam/v3/admin/namespaces/{NAMESPACE}/clients/{}",
        GAME_CLIENT.0
    );
    let (status, client) = call(&handle, Method::GET, &path, &iam, None).await;
    assert_eq!(status, StatusCode::OK, "{client}");
    let required = [
        "audiences",
        "baseUri",
        "clientId",
        "clientName",
        "clientPermissions",
        "clientPlatform",
        "createdAt",
        "description",
        "modifiedAt",
        "namespace",
        "oauthClientType",
        "redirectUri",
        "scopes",
        "skipLoginQueue",
        "twoFactorEnabled",
    ];
    assert_eq!(
        missing(&client, &required),
        Vec::<String>::new(),
        "{client}"
    );
    let (status, error) = call(
        &handle,
        Method::GET,
        &format!("/iam/v3/admin/namespaces/{NAMESPACE}/clients/nope"),
        &iam,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["errorCode"], 10365);
    let _ = admin;
}

#[tokio::test]
async fn tokens_carry_unique_display_name_and_an_issuer() {
    let handle = common::start().await;
    let resp = common::http()
        .post(format!("{}/iam/v3/oauth/token", handle.base_url()))
        .basic_auth(PLAYER_CLIENT, Some(""))
        .form(&[
            ("grant_type", "password"),
            ("username", PLAYER1.0),
            ("password", PLAYER1.1),
        ])
        .send()
        .await
        .expect("token");
    let body: Value = resp.json().await.expect("json");
    assert!(body["unique_display_name"].is_string(), "{body}");
    let claims = body["access_token"]
        .as_str()
        .and_then(|t| t.split('.').nth(1))
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<JwtClaims>(&b).ok())
        .expect("claims");
    assert_eq!(claims.iss.as_deref(), Some(fakes::seed::DEFAULT_ISSUER));
}

#[tokio::test]
async fn v4_users_need_a_username_and_may_skip_the_password() {
    let handle = common::start().await;
    let admin = common::game_token(&handle);
    let path = format!("/iam/v4/public/namespaces/{NAMESPACE}/users");
    let no_password = json!({"authType": "EMAILPASSWD", "country": "US",
        "emailAddress": "bob@example.com", "username": "bob_v4"});
    let (status, body) = call(&handle, Method::POST, &path, &admin, Some(&no_password)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["username"], "bob_v4");
    let no_username = json!({"authType": "EMAILPASSWD", "country": "US",
        "emailAddress": "carol@example.com", "password": "Xk9#mQ2vLp"});
    let (status, body) = call(&handle, Method::POST, &path, &admin, Some(&no_username)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn deleting_a_user_needs_the_information_permission() {
    let handle = common::start().await;
    let p1 = common::user_token(&handle, PLAYER1);
    let p2 = common::user_token(&handle, PLAYER2);
    let path = format!(
        "/iam/v3/admin/namespaces/{NAMESPACE}/users/{}/information",
        p2.user_id
    );
    let (status, body) = call(&handle, Method::DELETE, &path, &p1.access_token, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["requiredPermission"]["resource"],
        format!(
            "ADMIN:NAMESPACE:{NAMESPACE}:INFORMATION:USER:{}",
            p2.user_id
        )
    );
    let admin = common::game_token(&handle);
    let (status, _) = call(&handle, Method::DELETE, &path, &admin, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn role_lookups_need_admin_role() {
    let handle = common::start().await;
    let p1 = common::user_token(&handle, PLAYER1);
    let path = format!("/iam/v3/admin/roles/{}", fakes::seed::builtin::USER_ROLE_ID);
    let (status, body) = call(&handle, Method::GET, &path, &p1.access_token, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["requiredPermission"]["resource"], "ADMIN:ROLE");
    let admin = common::game_token(&handle);
    let (status, _) = call(&handle, Method::GET, &path, &admin, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn session_browser_update_takes_only_game_max_player() {
    let handle = common::start().await;
    let p1 = common::user_token(&handle, PLAYER1);
    let base = format!("/sessionbrowser/namespaces/{NAMESPACE}/gamesession");
    let create = json!({"session_type": "p2p", "game_version": "1", "namespace": NAMESPACE,
        "username": PLAYER1.0, "game_session_setting": {"mode": "duel", "map_name": "m",
        "num_bot": 0, "max_player": 4, "current_player": 0, "max_internal_player": 0,
        "current_internal_player": 0, "allow_join_in_progress": true, "password": "", "settings": {}}});
    let (status, session) = call(
        &handle,
        Method::POST,
        &base,
        &p1.access_token,
        Some(&create),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let id = session["session_id"].as_str().expect("id");
    let (status, body) = call(
        &handle,
        Method::PUT,
        &format!("{base}/{id}"),
        &p1.access_token,
        Some(&json!({"game_max_player": 8})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["game_session_setting"]["max_player"], 8);
}
