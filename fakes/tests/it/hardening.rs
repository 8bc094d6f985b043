//! IAM's redirect URIs and revocation, and the control API's token, against hostile callers.

use fakes::FakesConfig;
use fakes::seed::Seed;
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{self, GAME_CLIENT, PLAYER_CLIENT, PLAYER1};

const CALLBACK: &str = "http://127.0.0.1:9/callback";
const OTHER_CALLBACK: &str = "http://localhost:9/cb";

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

/// The player client registers two redirect URIs (AGS's comma-separated list).
async fn with_redirect_uris() -> fakes::Handle {
    let mut seed = Seed::builtin();
    let player = seed
        .clients
        .iter_mut()
        .find(|c| c.id == PLAYER_CLIENT)
        .expect("seeded player client");
    player.redirect_uri = format!("{CALLBACK}, {OTHER_CALLBACK}");
    common::start_with(FakesConfig {
        seed,
        ..FakesConfig::default()
    })
    .await
}

async fn authorize(base: &str, redirect_uri: Option<&str>) -> reqwest::Response {
    let mut query = vec![
        ("client_id", PLAYER_CLIENT),
        ("response_type", "code"),
        ("state", "s1"),
    ];
    if let Some(uri) = redirect_uri {
        query.push(("redirect_uri", uri));
    }
    common::http()
        .get(format!("{base}/iam/v3/oauth/authorize"))
        .query(&query)
        .send()
        .await
        .expect("authorize answers")
}

async fn authenticate(base: &str, request_id: &str, redirect_uri: Option<&str>) -> String {
    let mut form = vec![
        ("user_name", PLAYER1.0),
        ("password", PLAYER1.1),
        ("request_id", request_id),
        ("client_id", PLAYER_CLIENT),
    ];
    if let Some(uri) = redirect_uri {
        form.push(("redirect_uri", uri));
    }
    let resp = common::http()
        .post(format!("{base}/iam/v3/authenticate"))
        .form(&form)
        .send()
        .await
        .expect("authenticate answers");
    assert_eq!(resp.status(), StatusCode::FOUND);
    location(&resp)
}

/// A `redirect_uri` must be exactly one the client registered; errors about it go to fakes'
/// login page, never to the URI the request named, and no code is issued.
#[tokio::test]
async fn redirect_uris_must_be_registered_exactly() {
    let fakes = with_redirect_uris().await;
    let base = fakes.base_url();
    for hostile in [
        "https://evil.example/cb",
        "http://127.0.0.1:9/callback/../x",
        "http://127.0.0.1:9/callback?x=1",
        "http://127.0.0.1:9/Callback",
        "http://127.0.0.1:9/callback,https://evil.example/cb",
    ] {
        let resp = authorize(&base, Some(hostile)).await;
        assert_eq!(resp.status(), StatusCode::FOUND, "{hostile}");
        let loc = location(&resp);
        assert!(loc.starts_with("/auth/?"), "{hostile}: {loc}");
        assert_eq!(
            query_param(&loc, "error").as_deref(),
            Some("invalid_request")
        );
        assert!(
            query_param(&loc, "request_id").is_none(),
            "{hostile}: {loc}"
        );
        assert_eq!(query_param(&loc, "state").as_deref(), Some("s1"));

        // authenticate with a good request: no code goes to the unregistered URI
        let resp = authorize(&base, None).await;
        let request_id = query_param(&location(&resp), "request_id").expect("request_id");
        let loc = authenticate(&base, &request_id, Some(hostile)).await;
        assert!(loc.starts_with("/auth/?"), "{hostile}: {loc}");
        assert!(query_param(&loc, "code").is_none(), "{hostile}: {loc}");
        assert_eq!(
            query_param(&loc, "error").as_deref(),
            Some("invalid_request")
        );
    }
    // an unknown client cannot send errors to a URI of its choosing either
    let resp = common::http()
        .get(format!("{base}/iam/v3/oauth/authorize"))
        .query(&[
            ("client_id", "nobody"),
            ("response_type", "code"),
            ("redirect_uri", "https://evil.example/cb"),
        ])
        .send()
        .await
        .expect("answers");
    assert!(location(&resp).starts_with("/auth/?"));

    // registered URIs work, the first is the default
    for (given, expected) in [
        (Some(OTHER_CALLBACK), OTHER_CALLBACK),
        (Some(CALLBACK), CALLBACK),
        (None, CALLBACK),
    ] {
        let resp = authorize(&base, given).await;
        let request_id = query_param(&location(&resp), "request_id").expect("request_id");
        let loc = authenticate(&base, &request_id, given).await;
        assert!(loc.starts_with(&format!("{expected}?")), "{loc}");
        assert!(query_param(&loc, "code").is_some(), "{loc}");
    }
}

/// `revoke` revokes only tokens issued to the calling client.
#[tokio::test]
async fn revoke_only_revokes_the_calling_clients_tokens() {
    let fakes = common::start().await;
    let base = fakes.base_url();
    let player = common::user_token(&fakes, PLAYER1);
    let game = common::game_token(&fakes);
    let revoke = |client: (&'static str, &'static str), token: String| {
        let base = base.clone();
        async move {
            common::http()
                .post(format!("{base}/iam/v3/oauth/revoke"))
                .basic_auth(client.0, Some(client.1))
                .form(&[("token", token)])
                .send()
                .await
                .expect("revoke answers")
        }
    };
    let valid = |token: &str| fakes.state.iam.verify(token).is_some();

    for token in [player.access_token.clone(), player.refresh_token.clone()] {
        let resp = revoke(GAME_CLIENT, token).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["error"], "unauthorized_client", "{body}");
    }
    assert!(
        valid(&player.access_token),
        "another client's token stays valid"
    );
    let refreshed = fakes.state.iam.grant_refresh(
        &fakes.state.iam.client(PLAYER_CLIENT).expect("client"),
        &player.refresh_token,
    );
    assert!(
        refreshed.is_ok(),
        "another client's refresh token stays valid"
    );

    let resp = revoke(GAME_CLIENT, game.clone()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(!valid(&game), "its own token is revoked");
    let resp = revoke(GAME_CLIENT, "not-a-token".to_owned()).await;
    assert_eq!(resp.status(), StatusCode::OK, "an invalid token is a no-op");
}

/// With a control token, `/_fakes/*` needs it; health and metrics stay open.
#[tokio::test]
async fn the_control_api_needs_its_token_when_one_is_set() {
    let fakes = common::start_with(FakesConfig {
        control_token: Some("s3cret".into()),
        ..FakesConfig::default()
    })
    .await;
    let base = fakes.base_url();
    let http = common::http();
    // `/_fakes/reset` would drop every token: this one tells whether a reset got through
    let token = common::user_token(&fakes, PLAYER1).access_token;
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Basic s3cret"),
        Some("Bearer s3cre"),
    ] {
        for (method, path) in [
            (reqwest::Method::GET, "/_fakes/stats"),
            (reqwest::Method::POST, "/_fakes/reset"),
            (reqwest::Method::DELETE, "/_fakes/faults"),
            (reqwest::Method::PUT, "/_fakes/faults/seed"),
        ] {
            let mut request = http.request(method.clone(), format!("{base}{path}"));
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            let resp = request.send().await.expect("answers");
            assert_eq!(
                resp.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path} {auth:?}"
            );
            let body: Value = resp.json().await.expect("json");
            assert_eq!(body["errorCode"], 20001, "{body}");
            assert!(body["errorMessage"].is_string());
        }
    }
    // two headers, the first right: refused
    let resp = http
        .get(format!("{base}/_fakes/stats"))
        .header("authorization", "Bearer s3cret")
        .header("authorization", "Bearer wrong")
        .send()
        .await
        .expect("answers");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(
        fakes.state.iam.verify(&token).is_some(),
        "no reset got through"
    );

    let resp = http
        .get(format!("{base}/_fakes/stats"))
        .bearer_auth("s3cret")
        .send()
        .await
        .expect("answers");
    assert_eq!(resp.status(), StatusCode::OK);
    for path in ["/healthz", "/metrics"] {
        let resp = http
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("answers");
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
    }
    // without a token configured (loopback), the control API stays open as before
    let open = common::start().await;
    let resp = http
        .get(format!("{}/_fakes/stats", open.base_url()))
        .send()
        .await
        .expect("answers");
    assert_eq!(resp.status(), StatusCode::OK);
}
