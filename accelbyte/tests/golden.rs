//! Golden fixtures: JSON bodies and lobby frames written by hand from the AGS contract, not
//! produced by our serializer, so a misnamed field or a wrong casing in `accelbyte::models`
//! fails here instead of hiding behind a round trip through our own code.
//!
//! For every JSON fixture: it deserialises into our type, and serialising that value yields the
//! same JSON (compared as `serde_json::Value`, so key order does not matter). Request bodies also
//! have their exact key set checked, since a server must accept precisely what the SDK sends.
//! For every frame fixture: parse → typed message → `to_frame().encode()` gives back the file
//! byte for byte.

use std::collections::BTreeSet;
use std::path::PathBuf;

use accelbyte::bloom::BloomFilter;
use accelbyte::client::ErrorBody;
use accelbyte::frame::Frame;
use accelbyte::models::error::ErrorShape;
use accelbyte::models::{dsmc, error, iam, lobby, match2, matchmaking, session, sessionbrowser};
use pretty_assertions::assert_eq;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(name)
}

fn fixture(name: &str) -> String {
    let path = fixture_path(name);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
}

fn fixture_value(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).unwrap_or_else(|err| panic!("{name} is not json: {err}"))
}

/// Deserialises `name` into `T` and checks that serialising it back gives the same JSON.
fn round_trip<T: DeserializeOwned + Serialize>(name: &str) -> T {
    let expected = fixture_value(name);
    let typed: T = serde_json::from_value(expected.clone())
        .unwrap_or_else(|err| panic!("{name} does not deserialise: {err}"));
    let back = serde_json::to_value(&typed).unwrap_or_else(|err| panic!("{name}: {err}"));
    assert_eq!(back, expected, "{name}: serialising back changed the json");
    typed
}

/// [`round_trip`] plus: the serialised request carries exactly the fixture's keys, at every
/// depth (reported as paths, so a stray or missing key names itself).
fn request_round_trip<T: DeserializeOwned + Serialize>(name: &str) -> T {
    let typed: T = round_trip(name);
    let ours = serde_json::to_value(&typed).unwrap_or_else(|err| panic!("{name}: {err}"));
    assert_eq!(
        key_paths(&ours),
        key_paths(&fixture_value(name)),
        "{name}: key set"
    );
    typed
}

fn key_paths(value: &Value) -> BTreeSet<String> {
    fn walk(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let path = format!("{prefix}/{key}");
                    out.insert(path.clone());
                    walk(child, &path, out);
                }
            }
            Value::Array(items) => {
                for (index, child) in items.iter().enumerate() {
                    walk(child, &format!("{prefix}/{index}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(value, "", &mut out);
    out
}

/// Deserialising `value` into `T` must fail (a required field is missing or misnamed).
fn rejects<T: DeserializeOwned + std::fmt::Debug>(what: &str, value: Value) {
    let result = serde_json::from_value::<T>(value);
    assert!(result.is_err(), "{what}: accepted {result:?}");
}

// ---------------------------------------------------------------------------------------------
// IAM

#[test]
fn token_response_v3() {
    let token: iam::TokenResponseV3 = round_trip("token_response_v3.json");
    assert_eq!(token.token_type, "Bearer");
    assert!(
        token.expires_in > 0,
        "validators schedule refresh at 0.8 × expires_in"
    );
    assert_eq!(
        token.permissions[0].resource,
        "NAMESPACE:testgame:MATCHMAKING"
    );
    assert_eq!(token.permissions[1].sched_action, Some(0));
    assert_eq!(
        token.namespace_roles[0].role_id,
        "2251438839e948d783ec0e5281daf05b"
    );
    assert_eq!(token.bans[0].end_date, "2022-08-21T10:00:00Z");
    assert_eq!(
        token.bans[0].disabled_date.as_deref(),
        Some("2022-08-20T10:00:00Z")
    );
}

#[test]
fn token_response_legacy_has_pascal_case_permissions() {
    let token: iam::TokenResponseLegacy = round_trip("token_response_legacy.json");
    assert_eq!(
        token.permissions[0].resource,
        "NAMESPACE:testgame:MATCHMAKING"
    );
    assert_eq!(token.permissions[0].action, 1);
    // The casings are not interchangeable: a required `resource`/`Resource` goes missing.
    rejects::<iam::TokenResponseV3>(
        "legacy body as v3",
        fixture_value("token_response_legacy.json"),
    );
    rejects::<iam::TokenResponseLegacy>(
        "v3 body as legacy",
        fixture_value("token_response_v3.json"),
    );
}

#[test]
fn jwt_claims() {
    let claims: iam::JwtClaims = round_trip("jwt_claims.json");
    assert_eq!(
        claims.sub.as_deref(),
        Some("8a9b7c6d5e4f40318a2b1c0d9e8f7a6b")
    );
    assert_eq!(
        claims.permissions[0].resource,
        "NAMESPACE:testgame:MATCHMAKING"
    );
    assert_eq!(claims.bans.as_ref().map(Vec::len), Some(1));
    assert!(
        fixture_value("jwt_claims.json").get("aud").is_none(),
        "no aud: old validators reject any audience"
    );
    assert!(
        serde_json::to_value(&claims)
            .expect("json")
            .get("aud")
            .is_none()
    );
}

#[test]
fn client_token_claims_omit_sub() {
    let claims: iam::JwtClaims = serde_json::from_value(json!({
        "bans": null, "client_id": "0f8b2a6c4d3e4f5a9b7c1d2e3f405162", "country": "",
        "display_name": "", "exp": 1661391932, "iat": 1661388332, "is_comply": false, "jflgs": 0,
        "namespace": "testgame", "namespace_roles": [], "permissions": [], "roles": [],
        "scope": "commerce account social publishing analytics"
    }))
    .expect("client claims");
    assert_eq!(claims.sub, None);
    let back = serde_json::to_value(&claims).expect("json");
    assert!(back.get("sub").is_none(), "{back}");
    assert_eq!(back["bans"], Value::Null);
}

#[test]
fn jwks() {
    let jwks: iam::Jwks = round_trip("jwks.json");
    let key = &jwks.keys[0];
    assert_eq!(
        (key.kty.as_str(), key.alg.as_str(), key.use_.as_str()),
        ("RSA", "RS256", "sig")
    );
    assert_eq!(key.e, "AQAB");
    assert_eq!(key.kid, "5b3f6e2a9c1d4e8a96f052b84c7d3a19");
}

#[test]
fn revocation_list_carries_the_contract_test_vector() {
    let list: iam::RevocationList = round_trip("revocation_list.json");
    let filter: &BloomFilter = &list.revoked_tokens;
    assert_eq!((filter.m, filter.k), (256, 3));
    filter.validate().expect("valid filter");
    assert_eq!(filter.indexes("abc").collect::<Vec<_>>(), [103, 185, 11]);
    assert!(filter.might_contain("abc"));

    let revoked_at = &list.revoked_users[0].revoked_at;
    assert!(revoked_at.ends_with('Z'), "{revoked_at}");
    assert_eq!(
        revoked_at.as_bytes().get(19),
        Some(&b'.'),
        "fraction required: {revoked_at}"
    );
    chrono::DateTime::parse_from_rfc3339(revoked_at).expect("rfc 3339");
}

#[test]
fn roles() {
    let v3: iam::RoleResponseV3 = round_trip("role_v3.json");
    assert_eq!(
        v3.permissions[0].resource,
        "NAMESPACE:{namespace}:MATCHMAKING"
    );
    let legacy: iam::RoleResponseLegacy = round_trip("role_legacy.json");
    assert_eq!(legacy.role_id, v3.role_id);
    assert_eq!(
        legacy.permissions[1].resource,
        "NAMESPACE:{namespace}:USER:{userId}:NOTIFICATION"
    );
    let overrides: iam::RoleOverridePermissions = round_trip("role_override.json");
    assert_eq!(overrides.permissions[0].action, 3);
}

#[test]
fn create_user_v4() {
    let request: iam::CreateUserRequestV4 = request_round_trip("create_user_v4_request.json");
    assert_eq!(request.auth_type, "EMAILPASSWD");
    assert_eq!(
        request.verified, None,
        "only the test-user endpoint sends verified"
    );
    let response: iam::CreateUserResponseV4 = round_trip("create_user_v4_response.json");
    assert_eq!(response.user_id, "8a9b7c6d5e4f40318a2b1c0d9e8f7a6b");

    // The SDK's full body carries fields we do not model; a server must still accept it.
    let mut sdk_body = fixture_value("create_user_v4_request.json");
    sdk_body["code"] = json!("");
    sdk_body["passwordMD5Sum"] = json!("");
    sdk_body["acceptedPolicies"] = json!([]);
    serde_json::from_value::<iam::CreateUserRequestV4>(sdk_body).expect("extra sdk fields");

    // account.createUserRequestV4 requires authType, country, emailAddress and username; the
    // password is optional.
    for missing in ["authType", "emailAddress", "username", "country"] {
        let mut body = fixture_value("create_user_v4_request.json");
        body.as_object_mut().expect("object").remove(missing);
        rejects::<iam::CreateUserRequestV4>(missing, body);
    }
    let no_password: iam::CreateUserRequestV4 =
        request_round_trip("create_user_v4_no_password_request.json");
    assert_eq!(no_password.password, None);
    assert_eq!(no_password.username, "bob");
}

/// Every key the spec's definition lists as required is present in `value`.
fn assert_required(what: &str, value: &Value, required: &[&str]) {
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|key| value.get(key).is_none())
        .collect();
    assert!(missing.is_empty(), "{what} lacks required {missing:?}");
}

#[test]
fn user_responses_carry_every_required_field() {
    // model.UserResponseV3's required list in the IAM spec.
    const ME: [&str; 17] = [
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
    // model.PublicUserResponseV3's.
    const PUBLIC: [&str; 16] = [
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
    let me = serde_json::to_value(iam::UserResponseV3::default()).expect("json");
    assert_required("UserResponseV3", &me, &ME);
    assert_required("user_me.json", &fixture_value("user_me.json"), &ME);
    let public: iam::PublicUserResponseV3 = round_trip("public_user_v3.json");
    assert_eq!(public.unique_display_name, "alice");
    let public = serde_json::to_value(public).expect("json");
    assert_required("PublicUserResponseV3", &public, &PUBLIC);
}

#[test]
fn client_v3_response_carries_every_required_field() {
    // clientmodel.ClientV3Response's required list in the IAM spec.
    const REQUIRED: [&str; 15] = [
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
    let client: iam::ClientV3Response = round_trip("client_v3.json");
    assert_eq!(client.oauth_client_type, "Confidential");
    assert_required(
        "ClientV3Response",
        &serde_json::to_value(client).expect("json"),
        &REQUIRED,
    );
}

#[test]
fn token_response_v3_has_unique_display_name() {
    let token: iam::TokenResponseV3 = round_trip("token_response_v3.json");
    assert_eq!(token.unique_display_name, token.display_name);
}

#[test]
fn dsmc_server_carries_every_required_field() {
    // models.Server's required list in the DSMC spec.
    const REQUIRED: [&str; 24] = [
        "allocation_id",
        "artifact_path",
        "cpu_limit",
        "created_at",
        "deployment",
        "game_version",
        "image_version",
        "ip",
        "is_override_game_version",
        "is_override_region",
        "job_id",
        "last_update",
        "mem_limit",
        "namespace",
        "params",
        "pod_name",
        "port",
        "protocol",
        "provider",
        "region",
        "session_id",
        "status",
        "termination_reason",
        "ulimit_file_size",
    ];
    let server = serde_json::to_value(dsmc::Server::default()).expect("json");
    assert_required("Server", &server, &REQUIRED);
    let fixture = fixture_value("dsmc_session_response.json");
    assert_required("fixture Server", &fixture["session"]["Server"], &REQUIRED);
}

#[test]
fn sb_update_session_request_is_max_player_only() {
    let request: sessionbrowser::UpdateSessionRequest =
        request_round_trip("sb_update_session_request.json");
    assert_eq!(request.game_max_player, 8);
    rejects::<sessionbrowser::UpdateSessionRequest>(
        "no game_max_player",
        json!({"game_current_player": 1}),
    );
}

#[test]
fn test_users() {
    let request: iam::CreateTestUsersRequest = request_round_trip("test_users_request.json");
    assert_eq!(request.count, 2);
    assert_eq!(request.user_info.country, "US");
    let response: iam::CreateTestUsersResponse = round_trip("test_users_response.json");
    assert_eq!(response.data.len(), 2);
    assert!(response.data.iter().all(|user| !user.password.is_empty()));
    rejects::<iam::CreateTestUsersRequest>("no count", json!({"userInfo": {"country": "US"}}));
}

#[test]
fn user_me() {
    let me: iam::UserResponseV3 = round_trip("user_me.json");
    assert_eq!(me.user_name, "alice");
    assert_eq!(me.namespace_roles[0].namespace, "testgame");
}

// ---------------------------------------------------------------------------------------------
// Error bodies: our models, and the client's lenient reader.

#[test]
fn oauth_error() {
    let err: error::OAuthError = round_trip("oauth_error.json");
    assert_eq!(err.error, "invalid_grant");
    let body = ErrorBody::parse(fixture("oauth_error.json").as_bytes());
    assert_eq!(body.shape, Some(ErrorShape::OAuth));
    assert_eq!(body.error.as_deref(), Some("invalid_grant"));
    assert_eq!(body.message, "invalid username or password");
}

#[test]
fn rest_errors() {
    let err: error::RestError = round_trip("rest_error.json");
    assert_eq!(err.error_code, error::codes::UNAUTHORIZED_ACCESS);
    let forbidden: error::RestError = round_trip("rest_error_forbidden.json");
    let required = forbidden.required_permission.expect("required permission");
    assert_eq!(required.resource, "ADMIN:NAMESPACE:testgame:USER");
    for name in ["rest_error.json", "rest_error_forbidden.json"] {
        let body = ErrorBody::parse(fixture(name).as_bytes());
        assert_eq!(body.shape, Some(ErrorShape::Rest), "{name}");
    }
}

#[test]
fn lobby_notification_error_is_pascal_case() {
    let err: error::LobbyNotificationError = round_trip("lobby_notification_error.json");
    assert_eq!(err.error_code, error::codes::INSUFFICIENT_PERMISSIONS);
    let body = ErrorBody::parse(fixture("lobby_notification_error.json").as_bytes());
    assert_eq!(body.shape, Some(ErrorShape::LobbyNotification));
    assert_eq!(body.code, Some(20013));
    assert_eq!(body.message, "insufficient permissions");
    rejects::<error::LobbyNotificationError>(
        "camelCase",
        json!({"errorCode": 20013, "errorMessage": "x"}),
    );
}

#[test]
fn sessionbrowser_error_v2() {
    let err: error::SessionBrowserErrorV2 = round_trip("sessionbrowser_error_v2.json");
    assert_eq!(err.name, "ValidationError");
    let body = ErrorBody::parse(fixture("sessionbrowser_error_v2.json").as_bytes());
    assert_eq!(body.shape, Some(ErrorShape::SessionBrowserV2));
    assert_eq!(body.code, Some(error::codes::VALIDATION_ERROR));
    assert_eq!(body.message, "validation error");
}

// ---------------------------------------------------------------------------------------------
// Lobby REST bodies

#[test]
fn free_form_notifications() {
    let user: lobby::FreeFormNotificationRequest = request_round_trip("notification_user.json");
    assert_eq!(
        (user.topic.as_str(), user.message.as_str()),
        ("NOTIF", "searching")
    );
    let broadcast: lobby::FreeFormNotificationRequest =
        request_round_trip("notification_broadcast.json");
    assert_eq!(broadcast.topic, "ANNOUNCEMENT");
    let admin: lobby::AdminFreeFormNotificationRequest =
        request_round_trip("notification_admin.json");
    assert_eq!(admin.topic_name, "NOTIF");
    let bulk: lobby::BulkUsersFreeFormNotificationRequest =
        request_round_trip("notification_bulk_users.json");
    assert_eq!(bulk.user_ids.len(), 2);

    rejects::<lobby::FreeFormNotificationRequest>("no topic", json!({"message": "searching"}));
    rejects::<lobby::FreeFormNotificationRequest>("no message", json!({"topic": "NOTIF"}));
    rejects::<lobby::AdminFreeFormNotificationRequest>(
        "topic instead of topicName",
        json!({"message": "m", "topic": "NOTIF"}),
    );
    rejects::<lobby::BulkUsersFreeFormNotificationRequest>(
        "no userIds",
        json!({"message": "m", "topicName": "NOTIF"}),
    );
}

// ---------------------------------------------------------------------------------------------
// Session Browser

#[test]
fn sb_create_request_is_the_tutorial_body() {
    let request: sessionbrowser::CreateSessionRequest =
        request_round_trip("sb_create_session_request.json");
    let setting = &request.game_session_setting;
    assert_eq!((setting.max_internal_player, setting.max_player), (2, 0));
    assert!(setting.allow_join_in_progress);
    assert!(setting.settings.is_empty());

    for missing in [
        "game_session_setting",
        "game_version",
        "namespace",
        "session_type",
        "username",
    ] {
        let mut body = fixture_value("sb_create_session_request.json");
        body.as_object_mut().expect("object").remove(missing);
        rejects::<sessionbrowser::CreateSessionRequest>(missing, body);
    }
    let mut body = fixture_value("sb_create_session_request.json");
    body["game_session_setting"]
        .as_object_mut()
        .expect("object")
        .remove("max_internal_player");
    rejects::<sessionbrowser::CreateSessionRequest>("setting without max_internal_player", body);
}

#[test]
fn sb_session_response() {
    let session: sessionbrowser::SessionResponse = round_trip("sb_session_response.json");
    assert_eq!(session.session_id, "1e380e499e9f9cd3725d0738fabcef2d");
    assert!(session.joinable);
    assert_eq!(session.server.ip, "127.0.0.1");
    assert_eq!(session.server.port, 7777);
    assert_eq!(session.server.ports.get("query"), Some(&7778));
    let party = &session.match_.matching_allies[0].matching_parties[0];
    assert_eq!(
        party.party_members[1].extra_attributes["skill"],
        json!(1180)
    );

    let page: sessionbrowser::QuerySessionResponse = round_trip("sb_query_response.json");
    assert_eq!(page.sessions.len(), 1);
    assert_eq!(page.pagination.next, "");
}

#[test]
fn sb_add_player() {
    let request: sessionbrowser::AddPlayerRequest =
        request_round_trip("sb_add_player_request.json");
    assert!(!request.as_spectator);
    let response: sessionbrowser::AddPlayerResponse = round_trip("sb_add_player_response.json");
    assert!(response.status);
    rejects::<sessionbrowser::AddPlayerRequest>("no as_spectator", json!({"user_id": "u1"}));
    rejects::<sessionbrowser::AddPlayerRequest>("no user_id", json!({"as_spectator": false}));
}

// ---------------------------------------------------------------------------------------------
// DSMC

#[test]
fn dsmc_create_request_is_the_tutorial_body() {
    let request: dsmc::CreateSessionRequest =
        request_round_trip("dsmc_create_session_request.json");
    assert_eq!(request.session_id, "1e380e499e9f9cd3725d0738fabcef2d");
    assert_eq!(request.notification_payload, None);
    let members = &request.matching_allies[0].matching_parties[0].party_members;
    assert_eq!(members.len(), 2);

    for missing in [
        "session_id",
        "namespace",
        "game_mode",
        "deployment",
        "region",
        "client_version",
        "configuration",
        "pod_name",
        "matching_allies",
    ] {
        let mut body = fixture_value("dsmc_create_session_request.json");
        body.as_object_mut().expect("object").remove(missing);
        rejects::<dsmc::CreateSessionRequest>(missing, body);
    }
}

#[test]
fn dsmc_claim_request() {
    let claim: dsmc::ClaimSessionRequest = request_round_trip("dsmc_claim_request.json");
    assert_eq!(claim.session_id, "1e380e499e9f9cd3725d0738fabcef2d");
    rejects::<dsmc::ClaimSessionRequest>("no session_id", json!({}));
    // The 2025 spec's extra fields are accepted.
    serde_json::from_value::<dsmc::ClaimSessionRequest>(json!({
        "session_id": "s", "game_mode": "1v1", "namespace": "testgame",
        "matching_allies": [], "notification_payload": {}
    }))
    .expect("2025 claim body");
}

#[test]
fn dsmc_session_response_uses_capital_server() {
    let response: dsmc::SessionResponse = round_trip("dsmc_session_response.json");
    let server = &response.session.server;
    assert_eq!((server.ip.as_str(), server.port), ("127.0.0.1", 7777));
    assert_eq!(server.status, dsmc::status::BUSY);
    let ours = serde_json::to_value(&response).expect("json");
    assert!(ours["session"].get("Server").is_some());
    assert!(ours["session"].get("server").is_none());
}

#[test]
fn dsmc_lowercase_server_does_not_fill_server() {
    let response: dsmc::SessionResponse =
        serde_json::from_value(json!({"session": {"server": {"ip": "127.0.0.1", "port": 7777}}}))
            .expect("unknown keys are ignored");
    assert_eq!(response.session.server, dsmc::Server::default());
}

#[test]
fn dsmc_sample_minimal_body_is_enough() {
    // Contract 5.3: the smallest body the sample accepts.
    let response: dsmc::SessionResponse =
        serde_json::from_value(json!({"session": {"Server": {"ip": "127.0.0.1", "port": 7777}}}))
            .expect("minimal body");
    assert_eq!(response.session.server.port, 7777);
}

#[test]
fn dsmc_admin_list() {
    let page: dsmc::ListSessionResponse = round_trip("dsmc_admin_list.json");
    assert_eq!(page.sessions.len(), 2);
    assert_eq!(page.sessions[1].server.status, dsmc::status::READY);
}

#[test]
fn match_members_without_attributes_serialise_as_the_sample_sends_them() {
    let member = sessionbrowser::MatchPartyMember {
        user_id: "u1".into(),
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_value(&member).expect("json"),
        json!({"user_id": "u1"})
    );
}

// ---------------------------------------------------------------------------------------------
// Lobby frames

fn frame_fixture(name: &str) -> String {
    fixture(&format!("frames/{name}"))
}

#[test]
fn connect_notif_frame() {
    let text = frame_fixture("connect_notif.txt");
    let frame = Frame::parse(&text).expect("parse");
    let notif = lobby::ConnectNotif::from_frame(&frame).expect("connectNotif");
    assert_eq!(notif.lobby_session_id, "9f2c4e6a8b0d41f3a5c7e9b1d3f5a7c9");
    assert_eq!(notif.login_type, "NewRegister");
    assert_eq!(notif.reconnect_from_code, 5000);
    assert_eq!(notif.to_frame().encode(), text);
}

#[test]
fn message_notif_frames() {
    for (name, payload) in [
        ("message_notif_searching.txt", "searching"),
        ("message_notif_found.txt", "found 127.0.0.1 7777"),
    ] {
        let text = frame_fixture(name);
        let frame = Frame::parse(&text).expect("parse");
        let notif = lobby::MessageNotif::from_frame(&frame).expect("messageNotif");
        assert_eq!(notif.payload, payload, "{name}");
        assert_eq!(notif.from, "system");
        assert_eq!(notif.topic, "NOTIF");
        assert_eq!(notif.to_frame().encode(), text, "{name}");
        // The Python SDK requires `id` on line 2 of a messageNotif.
        assert!(
            text.lines()
                .nth(1)
                .is_some_and(|line| line.starts_with("id: ")),
            "{name}"
        );
    }
}

#[test]
fn error_notif_frame() {
    let text = frame_fixture("error_notif.txt");
    let frame = Frame::parse(&text).expect("parse");
    let notif = lobby::ErrorNotif::from_frame(&frame).expect("errorNotif");
    assert_eq!(notif.id.as_deref(), Some("0123456789abcdef01234567"));
    assert_eq!(notif.code, error::codes::UNABLE_TO_PARSE_REQUEST_BODY);
    assert_eq!(notif.to_frame().encode(), text);
}

#[test]
fn typed_readers_reject_other_types() {
    let frame = Frame::parse(&frame_fixture("connect_notif.txt")).expect("parse");
    assert!(lobby::MessageNotif::from_frame(&frame).is_none());
    assert!(lobby::ErrorNotif::from_frame(&frame).is_none());
    let frame = Frame::parse(&frame_fixture("message_notif_found.txt")).expect("parse");
    assert!(lobby::ConnectNotif::from_frame(&frame).is_none());
}

// ---------------------------------------------------------------------------------------------
// Session v2 and Matchmaking v2, required fields from the `session` and `match2` specs

#[test]
fn match2_ticket_request_and_status() {
    let request: match2::MatchTicketRequest = request_round_trip("match2_ticket_request.json");
    assert_eq!(request.latencies["eu-central-1"], 45);
    for missing in ["attributes", "latencies", "matchPool"] {
        let mut body = fixture_value("match2_ticket_request.json");
        body.as_object_mut().expect("object").remove(missing);
        rejects::<match2::MatchTicketRequest>(missing, body);
    }
    let status: match2::MatchTicketStatus = round_trip("match2_ticket_status.json");
    assert!(status.match_found);
    // api.MatchTicketStatus requires matchFound and sessionID.
    assert_required(
        "MatchTicketStatus",
        &fixture_value("match2_ticket_status.json"),
        &["matchFound", "sessionID"],
    );
}

#[test]
fn match2_pool_carries_every_required_field() {
    const REQUIRED: [&str; 9] = [
        "auto_accept_backfill_proposal",
        "backfill_proposal_expiration_seconds",
        "backfill_ticket_expiration_seconds",
        "match_function",
        "match_function_override",
        "name",
        "rule_set",
        "session_template",
        "ticket_expiration_seconds",
    ];
    let pool: match2::MatchPool = round_trip("match2_pool.json");
    assert_eq!(pool.session_template, "duel-template");
    assert_required(
        "MatchPool",
        &serde_json::to_value(pool).expect("json"),
        &REQUIRED,
    );
}

#[test]
fn session_game_session_carries_every_required_field() {
    // apimodels.GameSessionResponse, DSInformationResponse, models.GameServer,
    // apimodels.UserResponse and apimodels.PublicConfiguration in the session spec.
    const SESSION: [&str; 14] = [
        "DSInformation",
        "backfillTicketID",
        "configuration",
        "createdAt",
        "createdBy",
        "id",
        "isActive",
        "isFull",
        "leaderID",
        "matchPool",
        "members",
        "namespace",
        "updatedAt",
        "version",
    ];
    const SERVER: [&str; 8] = [
        "custom_attribute",
        "is_override_game_version",
        "last_update",
        "namespace",
        "region",
        "session_id",
        "source",
        "status",
    ];
    const MEMBER: [&str; 6] = [
        "id",
        "platformID",
        "platformUserID",
        "status",
        "statusV2",
        "updatedAt",
    ];
    const CONFIGURATION: [&str; 12] = [
        "autoJoin",
        "clientVersion",
        "deployment",
        "inactiveTimeout",
        "inviteTimeout",
        "joinability",
        "maxPlayers",
        "minPlayers",
        "name",
        "persistent",
        "textChat",
        "type",
    ];
    let typed: session::GameSessionResponse = round_trip("session_game_session.json");
    assert_eq!(
        typed.ds_information.status_v2,
        session::ds_status::AVAILABLE
    );
    let ours = serde_json::to_value(session::GameSessionResponse::default()).expect("json");
    assert_required("GameSessionResponse", &ours, &SESSION);
    assert_required(
        "DSInformation",
        &ours["DSInformation"],
        &["CreatedAt", "RequestedAt"],
    );
    assert_required(
        "PublicConfiguration",
        &ours["configuration"],
        &CONFIGURATION,
    );
    let member = serde_json::to_value(session::Member::default()).expect("json");
    assert_required("UserResponse", &member, &MEMBER);
    let server = serde_json::to_value(session::GameServer::default()).expect("json");
    assert_required("GameServer", &server, &SERVER);
}

#[test]
fn session_template_request_requires_what_the_spec_requires() {
    let request: session::CreateConfigurationTemplateRequest =
        request_round_trip("session_template_request.json");
    assert_eq!(request.kind, "DS");
    for missing in [
        "name",
        "type",
        "joinability",
        "maxPlayers",
        "requestedRegions",
    ] {
        let mut body = fixture_value("session_template_request.json");
        body.as_object_mut().expect("object").remove(missing);
        rejects::<session::CreateConfigurationTemplateRequest>(missing, body);
    }
}

// ---------------------------------------------------------------------------------------------
// The reference matchmaker's HTTP API (the tutorial's shapes)

/// Reads `name` into `T` and writes it back byte for byte (the fixture is one compact line, as
/// the matchmaker sends it).
fn byte_round_trip<T: DeserializeOwned + Serialize>(name: &str) -> T {
    let text = fixture(name);
    let text = text.trim_end();
    let typed: T = serde_json::from_str(text)
        .unwrap_or_else(|err| panic!("{name} does not deserialise: {err}"));
    let back = serde_json::to_string(&typed).unwrap_or_else(|err| panic!("{name}: {err}"));
    assert_eq!(back, text, "{name}: serialising back changed the bytes");
    typed
}

#[test]
fn matchmaking_request() {
    let request: matchmaking::MatchmakingRequest = byte_round_trip("matchmaking_request.json");
    assert_eq!(request.game_mode.as_deref(), Some("2v2"));
    assert_eq!(
        request.party_members,
        [matchmaking::PartyMember("u2".into())]
    );
    let mut built = matchmaking::MatchmakingRequest {
        game_mode: Some("2v2".into()),
        party_members: vec![matchmaking::PartyMember("u2".into())],
        party_tokens: vec!["token-of-u2".into()],
        ..Default::default()
    };
    built.set_mmr(1500);
    built.set_region("eu-west-1");
    assert_eq!(built, request, "the setters write the documented keys");
    assert_eq!(
        serde_json::to_string(&matchmaking::MatchmakingRequest::default()).expect("json"),
        "{}",
        "an empty request is an empty object (the tutorial sends no body at all)"
    );
}

#[test]
fn matchmaking_matched_answer() {
    let answer: matchmaking::MatchmakingResponse = byte_round_trip("matchmaking_matched.json");
    let built = matchmaking::MatchmakingResponse::matched(
        "127.0.0.1",
        7777,
        "9f2c",
        "u1",
        vec!["u2".into(), "u3".into()],
    );
    assert_eq!(
        built, answer,
        "the message embeds the others in Python's repr"
    );
}

#[test]
fn matchmaking_timed_out_and_failed_answers() {
    let timed_out: matchmaking::MessageBody = byte_round_trip("matchmaking_timed_out.json");
    assert_eq!(timed_out, matchmaking::MessageBody::timed_out());
    let failed: error::RestError = byte_round_trip("matchmaking_failed.json");
    assert_eq!(
        matchmaking::FailureClass::from_code(failed.error_code),
        Some(matchmaking::FailureClass::NoCapacity)
    );
}

#[test]
fn session_party_request_requires_what_the_spec_requires() {
    // apimodels.CreatePartyRequest and apimodels.RequestMember in the session spec.
    let request: session::CreatePartyRequest =
        request_round_trip("session_create_party_request.json");
    assert_eq!(request.members[0].platform_id, "STEAM");
    for missing in [
        "attributes",
        "configurationName",
        "inactiveTimeout",
        "inviteTimeout",
        "joinability",
        "maxPlayers",
        "members",
        "minPlayers",
        "textChat",
        "type",
    ] {
        let mut body = fixture_value("session_create_party_request.json");
        body.as_object_mut().expect("object").remove(missing);
        rejects::<session::CreatePartyRequest>(missing, body);
    }
    for missing in ["ID", "PlatformID", "PlatformUserID"] {
        let mut body = fixture_value("session_create_party_request.json");
        body["members"][0]
            .as_object_mut()
            .expect("object")
            .remove(missing);
        rejects::<session::CreatePartyRequest>(missing, body);
    }
}

#[test]
fn session_party_carries_every_required_field() {
    // apimodels.PartySessionResponse's required list in the session spec.
    const PARTY: [&str; 12] = [
        "code",
        "configuration",
        "createdAt",
        "createdBy",
        "id",
        "isActive",
        "isFull",
        "leaderID",
        "members",
        "namespace",
        "updatedAt",
        "version",
    ];
    let typed: session::PartySessionResponse = round_trip("session_party.json");
    assert_eq!(typed.members[1].status_v2, session::member_status::INVITED);
    let ours = serde_json::to_value(session::PartySessionResponse::default()).expect("json");
    assert_required("PartySessionResponse", &ours, &PARTY);
    let changed: session::PartyMembersChangedNotif =
        round_trip("session_party_members_changed_notif.json");
    assert_eq!(changed.session.id, "c0ffee00c0ffee00c0ffee00c0ffee00");
    // The notification's payload is what the lobby's base64 carries; the events decoder reads it.
    let message = accelbyte::models::lobby::MessageNotif {
        id: "n1".into(),
        from: "system".into(),
        to: changed.joiner_id.clone(),
        topic: session::topics::PARTY_MEMBERS_CHANGED.into(),
        payload: base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            fixture("session_party_members_changed_notif.json"),
        ),
        sent_at: "2026-03-01T10:00:05Z".into(),
    };
    match accelbyte::client::V2Event::from_message(&message) {
        Some(Ok(accelbyte::client::V2Event::PartyMembersChanged(decoded))) => {
            assert_eq!(*decoded, changed);
        }
        other => panic!("{other:?}"),
    }
}
