//! IAM routes over real sockets: the PKCE login, every grant, verify, JWKS, revocation, users
//! and roles, success and failure paths.

use accelbyte::bloom::BloomFilter;
use accelbyte::models::iam::{Jwks, JwtClaims, RevocationList, TokenResponseV3};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Digest;

use crate::common::{self, GAME_CLIENT, IAM_CLIENT, NAMESPACE, PLAYER_CLIENT, PLAYER1, PLAYER2};

fn query_param(location: &str, name: &str) -> Option<String> {
    let query = location.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Decodes a JWT's header and claims without verifying (what the tutorial does in step 3).
fn decode_jwt(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut next = || -> Value {
        let bytes = URL_SAFE_NO_PAD
            .decode(parts.next().expect("jwt part"))
            .expect("base64url");
        serde_json::from_slice(&bytes).expect("json")
    };
    (next(), next())
}

async fn password_grant(base: &str, client: (&str, &str), user: (&str, &str)) -> reqwest::Response {
    common::http()
        .post(format!("{base}/iam/v3/oauth/token"))
        .basic_auth(client.0, Some(client.1))
        .form(&[
            ("grant_type", "password"),
            ("username", user.0),
            ("password", user.1),
        ])
        .send()
        .await
        .expect("token request")
}

async fn user_token(base: &str, user: (&str, &str)) -> TokenResponseV3 {
    let resp = password_grant(base, (PLAYER_CLIENT, ""), user).await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.expect("token json")
}

async fn client_token(base: &str, client: (&str, &str)) -> TokenResponseV3 {
    let resp = common::http()
        .post(format!("{base}/iam/v3/oauth/token"))
        .basic_auth(client.0, Some(client.1))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request");
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.expect("token json")
}

/// The SDK's `login_user`: authorize → authenticate → token with a PKCE S256 verifier.
async fn pkce_login(base: &str, user: (&str, &str), verifier_sent: &str) -> reqwest::Response {
    let http = common::http();
    let verifier = URL_SAFE_NO_PAD.encode([7u8; 32]);
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let resp = http
        .get(format!("{base}/iam/v3/oauth/authorize"))
        .basic_auth(PLAYER_CLIENT, Some(""))
        .header("content-type", "application/json")
        .query(&[
            ("client_id", PLAYER_CLIENT),
            ("response_type", "code"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("scope", "commerce account social publishing analytics"),
        ])
        .send()
        .await
        .expect("authorize");
    assert_eq!(resp.status(), StatusCode::FOUND);
    let request_id = query_param(&location(&resp), "request_id").expect("request_id in Location");

    let resp = http
        .post(format!("{base}/iam/v3/authenticate"))
        .basic_auth(PLAYER_CLIENT, Some(""))
        .form(&[
            ("user_name", user.0),
            ("password", user.1),
            ("request_id", &request_id),
            ("client_id", PLAYER_CLIENT),
        ])
        .send()
        .await
        .expect("authenticate");
    assert_eq!(resp.status(), StatusCode::FOUND);
    let code = query_param(&location(&resp), "code").expect("code in Location");

    let verifier = if verifier_sent.is_empty() {
        verifier
    } else {
        verifier_sent.to_owned()
    };
    http.post(format!("{base}/iam/v3/oauth/token"))
        .basic_auth(PLAYER_CLIENT, Some(""))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .expect("token")
}

#[tokio::test]
async fn pkce_login_issues_an_rs256_token_whose_kid_is_in_the_jwks() {
    let fakes = common::start().await;
    let base = fakes.base_url();
    let resp = pkce_login(&base, PLAYER1, "").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    for field in [
        "access_token",
        "bans",
        "display_name",
        "expires_in",
        "namespace",
        "namespace_roles",
        "permissions",
        "refresh_expires_in",
        "refresh_token",
        "roles",
        "scope",
        "token_type",
        "user_id",
        "xuid",
    ] {
        assert!(
            body.get(field).is_some(),
            "token response lacks {field}: {body}"
        );
    }
    assert!(body["expires_in"].as_i64().unwrap() > 0);
    assert_eq!(body["namespace"], NAMESPACE);
    assert!(
        body["permissions"][0].get("resource").is_some(),
        "lowercase permission keys in token responses"
    );

    let (header, claims) = decode_jwt(body["access_token"].as_str().unwrap());
    assert_eq!(header["alg"], "RS256");
    let jwks: Jwks = common::http()
        .get(format!("{base}/iam/v3/oauth/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        jwks.keys
            .iter()
            .any(|k| Value::String(k.kid.clone()) == header["kid"])
    );
    assert!(claims.get("aud").is_none(), "no aud claim");
    assert_eq!(claims["sub"], body["user_id"]);
    let perms = claims["permissions"].as_array().unwrap();
    assert!(perms.iter().any(
        |p| p["Resource"] == format!("NAMESPACE:{NAMESPACE}:MATCHMAKING") && p["Action"] == 1
    ));
    let typed: JwtClaims = serde_json::from_value(claims).unwrap();
    assert!(typed.exp > typed.iat);
}

#[tokio::test]
async fn pkce_with_a_wrong_verifier_or_a_reused_code_is_refused() {
    let fakes = common::start().await;
    let resp = pkce_login(&fakes.base_url(), PLAYER1, "not-the-verifier").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn authenticate_with_a_bad_password_redirects_with_an_error() {
    let fakes = common::start().await;
    let base = fakes.base_url();
    let http = common::http();
    let resp = http
        .get(format!(
            "{base}/iam/v3/oauth/authorize?client_id={PLAYER_CLIENT}&response_type=code"
        ))
        .send()
        .await
        .unwrap();
    let request_id = query_param(&location(&resp), "request_id").unwrap();
    let resp = http
        .post(format!("{base}/iam/v3/authenticate"))
        .form(&[
            ("user_name", PLAYER1.0),
            ("password", "wrong"),
            ("request_id", &request_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let loc = location(&resp);
    assert_eq!(query_param(&loc, "error").as_deref(), Some("invalid_grant"));
    assert!(query_param(&loc, "code").is_none());
    // an unknown client is an error redirect too, never a request_id
    let resp = http
        .get(format!(
            "{base}/iam/v3/oauth/authorize?client_id=nobody&response_type=code"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert!(query_param(&location(&resp), "error").is_some());
}

#[tokio::test]
async fn password_grant_and_its_failures() {
    let fakes = common::start().await;
    let base = fakes.base_url();
    let ok = user_token(&base, PLAYER2).await;
    assert_eq!(ok.token_type, "Bearer");
    assert!(!ok.refresh_token.is_empty());

    let resp = password_grant(&base, (PLAYER_CLIENT, ""), (PLAYER2.0, "nope")).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_grant"
    );

    let resp = password_grant(&base, (GAME_CLIENT.0, "wrong-secret"), PLAYER2).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );

    let resp = common::http()
        .post(format!("{base}/iam/v3/oauth/token"))
        .basic_auth(PLAYER_CLIENT, Some(""))
        .form(&[("grant_type", "magic")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
}

#[tokio::test]
async fn client_credentials_token_has_no_sub_and_public_clients_cannot_get_one() {
    let fakes = common::start().await;
    let base = fakes.base_url();
    let token = client_token(&base, GAME_CLIENT).await;
    assert!(token.user_id.is_empty());
    let (_, claims) = decode_jwt(&token.access_token);
    assert!(claims.get("sub").is_none());
    assert_eq!(claims["client_id"], GAME_CLIENT.0);

    let resp = common::http()
        .post(format!("{base}/iam/v3/oauth/token"))
        .basic_auth(PLAYER_CLIENT, Some(""))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn refresh_rotates_and_a_used_refresh_token_fails() {
    let fakes = common::start().await;
    let base = fakes.base_url();
    let first = user_token(&base, PLAYER1).await;
    let refresh = |rt: String| {
        let base = base.clone();
        async move {
            common::http()
                .post(format!("{base}/iam/v3/oauth/token"))
                .basic_auth(PLAYER_CLIENT, Some(""))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt.as_str()),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let resp = refresh(first.refresh_token.clone()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let second: TokenResponseV3 = resp.json().await.unwrap();
    assert_eq!(second.user_id, first.user_id);
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(
        refresh(first.refresh_token).await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn verify_answers_400_not_401_for_a_bad_user_token() {
    let fakes = common::start().await;
    let base = fakes.base_url();
    let user = user_token(&base, PLAYER1).await;
    let verify = |token: String, secret: &'static str| {
        let base = base.clone();
        async move {
            common::http()
                .post(format!("{base}/iam/v3/oauth/verify"))
                .basic_auth(IAM_CLIENT.0, Some(secret))
                .form(&[("token", token)])
                .send()
                .await
                .unwrap()
        }
    };
    let resp = verify(user.access_token.clone(), IAM_CLIENT.1).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.json::<TokenResponseV3>().await.unwrap().user_id,
        user.user_id
    );
    assert_eq!(
        verify("garbage".into(), IAM_CLIENT.1).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        verify(user.access_token.clone(), "wrong").await.status(),
        StatusCode::UNAUTHORIZED
    );

    // the legacy path answers PascalCase permissions
    let resp = common::http()
        .post(format!("{base}/iam/oauth/verify"))
        .basic_auth(IAM_CLIENT.0, Some(IAM_CLIENT.1))
        .form(&[("token", user.access_token)])
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert!(body["permissions"][0].get("Resource").is_some(), "{body}");
}

/// The first verify of a token checks its signature and caches it; later ones answer from the
/// cache, which keeps one shared copy of the role permissions for users alike. Both must answer
/// each user's own claims exactly.
#[tokio::test]
async fn verify_answers_the_same_from_the_verified_token_cache() {
    let fakes = common::start().await;
    let base = fakes.base_url();
    let legacy_verify = |token: String| {
        let base = base.clone();
        async move {
            let resp = common::http()
                .post(format!("{base}/iam/oauth/verify"))
                .basic_auth(IAM_CLIENT.0, Some(IAM_CLIENT.1))
                .form(&[("token", token)])
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            resp.json::<Value>().await.unwrap()
        }
    };
    for user in [PLAYER1, PLAYER2] {
        let token = user_token(&base, user).await;
        let (_, claims) = decode_jwt(&token.access_token);
        let user_id = claims["sub"].as_str().expect("sub").to_owned();
        assert!(
            claims["permissions"]
                .as_array()
                .expect("permissions")
                .iter()
                .any(|p| p["Resource"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(&user_id)),
            "a permission names the user: {claims}"
        );
        let first = legacy_verify(token.access_token.clone()).await;
        let cached = legacy_verify(token.access_token.clone()).await;
        for body in [&first, &cached] {
            assert_eq!(body["permissions"], claims["permissions"], "{body}");
            assert_eq!(body["roles"], claims["roles"]);
            assert_eq!(body["namespace_roles"], claims["namespace_roles"]);
            assert_eq!(body["user_id"], claims["sub"]);
            assert_eq!(body["display_name"], claims["display_name"]);
            assert_eq!(body["scope"], claims["scope"]);
        }
    }
}

#[tokio::test]
async fn revocation_list_is_never_empty_and_revoked_tokens_enter_the_bloom_filter() {
    let fakes = common::start().await;
    let base = fakes.base_url();
    let get_list = || async {
        let resp = common::http()
            .get(format!("{base}/iam/v3/oauth/revocationlist"))
            .basic_auth(IAM_CLIENT.0, Some(IAM_CLIENT.1))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json::<RevocationList>().await.unwrap()
    };
    let list = get_list().await;
    assert!(!list.revoked_users.is_empty());
    for u in &list.revoked_users {
        assert!(
            u.revoked_at.ends_with('Z') && u.revoked_at.contains('.'),
            "{}",
            u.revoked_at
        );
    }
    assert!(list.revoked_tokens.k >= 1);
    assert_eq!(
        list.revoked_tokens.m,
        64 * list.revoked_tokens.bits.len() as u64
    );

    let user = user_token(&base, PLAYER1).await;
    let resp = common::http()
        .post(format!("{base}/iam/v3/oauth/revoke"))
        .basic_auth(PLAYER_CLIENT, Some(""))
        .form(&[("token", user.access_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bloom: BloomFilter = get_list().await.revoked_tokens;
    assert!(bloom.might_contain(&user.access_token));
    let me = common::http()
        .get(format!("{base}/iam/v3/public/users/me"))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    // legacy path serves the same list
    let legacy = common::http()
        .get(format!("{base}/iam/oauth/revocationlist"))
        .send()
        .await
        .unwrap();
    assert_eq!(legacy.status(), StatusCode::OK);
}

#[tokio::test]
async fn revoking_a_user_and_logging_out_invalidate_tokens() {
    let fakes = common::start().await;
    let base = fakes.base_url();
    let admin = client_token(&base, GAME_CLIENT).await;
    let p1 = user_token(&base, PLAYER1).await;
    let p2 = user_token(&base, PLAYER2).await;
    let resp = common::http()
        .post(format!(
            "{base}/iam/v3/oauth/admin/namespaces/{NAMESPACE}/users/{}/revoke",
            p1.user_id
        ))
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let list: RevocationList = common::http()
        .get(format!("{base}/iam/v3/oauth/revocationlist"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(list.revoked_users.iter().any(|u| u.id == p1.user_id));
    let me = |t: String| {
        let base = base.clone();
        async move {
            common::http()
                .get(format!("{base}/iam/v3/public/users/me"))
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(me(p1.access_token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(p2.access_token.clone()).await, StatusCode::OK);

    let resp = common::http()
        .post(format!("{base}/iam/v3/logout"))
        .bearer_auth(&p2.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(me(p2.access_token).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn users_me_and_public_user() {
    let fakes = common::start().await;
    let base = fakes.base_url();
    let user = user_token(&base, PLAYER1).await;
    let resp = common::http()
        .get(format!("{base}/iam/v3/public/users/me"))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let me: Value = resp.json().await.unwrap();
    assert_eq!(me["userName"], PLAYER1.0);
    assert_eq!(me["userId"], user.user_id.as_str());

    let client = client_token(&base, GAME_CLIENT).await;
    let resp = common::http()
        .get(format!("{base}/iam/v3/public/users/me"))
        .bearer_auth(&client.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.json::<Value>().await.unwrap()["errorCode"], 20022);

    let resp = common::http()
        .get(format!(
            "{base}/iam/v3/public/namespaces/{NAMESPACE}/users/{}",
            user.user_id
        ))
        .bearer_auth(&client.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["userName"], PLAYER1.0);

    let resp = common::http()
        .get(format!("{base}/iam/v3/public/users/me"))
        .bearer_auth("not.a.jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.json::<Value>().await.unwrap()["errorCode"], 20001);
}

#[tokio::test]
async fn create_user_v4_then_log_in_and_the_failure_paths() {
    let fakes = common::start().await;
    let base = fakes.base_url();
    let client = client_token(&base, GAME_CLIENT).await;
    let url = format!("{base}/iam/v4/public/namespaces/{NAMESPACE}/users");
    let body = json!({
        "authType": "EMAILPASSWD", "emailAddress": "new.player@example.com", "username": "new_player",
        "password": "NewPlayer1!", "country": "US", "dateOfBirth": "1995-04-01", "displayName": "New Player"
    });
    let post = |b: Value, token: Option<String>| {
        let url = url.clone();
        async move {
            let mut req = common::http().post(url).json(&b);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            req.send().await.unwrap()
        }
    };
    let resp = post(body.clone(), Some(client.access_token.clone())).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["username"], "new_player");
    assert_eq!(created["namespace"], NAMESPACE);
    assert_eq!(
        user_token(&base, ("new_player", "NewPlayer1!"))
            .await
            .user_id,
        created["userId"].as_str().unwrap()
    );

    let resp = post(body.clone(), Some(client.access_token.clone())).await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    assert_eq!(resp.json::<Value>().await.unwrap()["errorCode"], 10177);

    let mut weak = body.clone();
    weak["username"] = json!("other_player");
    weak["emailAddress"] = json!("other@example.com");
    weak["password"] = json!("weak");
    assert_eq!(
        post(weak, Some(client.access_token.clone())).await.status(),
        StatusCode::BAD_REQUEST
    );

    let missing = json!({"authType": "EMAILPASSWD", "username": "x_player"});
    let resp = post(missing, Some(client.access_token.clone())).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["errorCode"], 20002);
    assert!(
        err["errorMessage"]
            .as_str()
            .unwrap()
            .contains("missing field"),
        "{err}"
    );

    let resp = common::http()
        .post(&url)
        .bearer_auth(&client.access_token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(resp.json::<Value>().await.unwrap()["errorCode"], 20019);

    assert_eq!(
        post(body.clone(), None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let resp = common::http()
        .post(format!("{base}/iam/v4/public/namespaces/nowhere/users"))
        .bearer_auth(&client.access_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    let huge = "x".repeat(2 * 1024 * 1024);
    let resp = common::http()
        .post(&url)
        .bearer_auth(&client.access_token)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        resp.json::<Value>()
            .await
            .unwrap()
            .get("errorCode")
            .is_some()
    );
}

#[tokio::test]
async fn admin_test_users_need_the_admin_permission_and_can_log_in() {
    let fakes = common::start().await;
    let base = fakes.base_url();
    let admin = client_token(&base, GAME_CLIENT).await;
    let url = format!("{base}/iam/v4/admin/namespaces/{NAMESPACE}/test_users");
    let resp = common::http()
        .post(&url)
        .bearer_auth(&admin.access_token)
        .json(&json!({"count": 3, "userInfo": {"country": "US"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.unwrap();
    let users = body["data"].as_array().unwrap();
    assert_eq!(users.len(), 3);
    let (name, pass) = (
        users[2]["username"].as_str().unwrap(),
        users[2]["password"].as_str().unwrap(),
    );
    assert_eq!(
        user_token(&base, (name, pass)).await.user_id,
        users[2]["userId"].as_str().unwrap()
    );

    let player = user_token(&base, PLAYER1).await;
    let resp = common::http()
        .post(&url)
        .bearer_auth(&player.access_token)
        .json(&json!({"count": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["errorCode"], 20013);
    assert_eq!(
        err["requiredPermission"]["resource"],
        format!("ADMIN:NAMESPACE:{NAMESPACE}:USER")
    );

    let resp = common::http()
        .post(&url)
        .bearer_auth(&admin.access_token)
        .json(&json!({"count": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn role_lookups_in_every_form() {
    let fakes = common::start().await;
    let base = fakes.base_url();
    let iam = client_token(&base, IAM_CLIENT).await;
    let role = fakes::seed::builtin::USER_ROLE_ID;
    let get = |path: String, token: String| {
        let base = base.clone();
        async move {
            common::http()
                .get(format!("{base}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    let legacy: Value = get(format!("/iam/roles/{role}"), iam.access_token.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(legacy["RoleId"], role);
    assert!(legacy["Permissions"][0].get("Resource").is_some());

    let v3: Value = get(
        format!("/iam/v3/admin/roles/{role}"),
        iam.access_token.clone(),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v3["roleId"], role);
    assert!(
        v3["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["resource"] == "NAMESPACE:{namespace}:MATCHMAKING")
    );

    let over: Value = get(
        format!("/iam/v3/admin/namespaces/{NAMESPACE}/roleoverride/{role}/permissions"),
        iam.access_token.clone(),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(over["permissions"][0].get("Action").is_some());

    let missing = get("/iam/v3/admin/roles/nope".into(), iam.access_token.clone()).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.json::<Value>().await.unwrap()["errorCode"], 10456);

    let player = user_token(&base, PLAYER1).await;
    assert_eq!(
        get(format!("/iam/v3/admin/roles/{role}"), player.access_token)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn legacy_token_endpoint_answers_pascal_case_permissions() {
    let fakes = common::start().await;
    let resp = common::http()
        .post(format!("{}/iam/oauth/token", fakes.base_url()))
        .basic_auth(IAM_CLIENT.0, Some(IAM_CLIENT.1))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert!(body["permissions"][0].get("Resource").is_some(), "{body}");
}

#[tokio::test]
async fn unknown_routes_answer_a_json_404() {
    let fakes = common::start().await;
    let resp = common::http()
        .get(format!("{}/iam/v9/nothing", fakes.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(
        resp.json::<Value>().await.unwrap()["errorMessage"]
            .as_str()
            .unwrap()
            .contains("/iam/v9/nothing")
    );
}
