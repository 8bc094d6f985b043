//! IAM calls: the login flows (PKCE user login, password, client credentials, refresh),
//! revocation, verification, the validator endpoints (JWKS, revocation list, roles) and user
//! creation.
//!
//! [`AbClient::login_user`] reproduces the Python SDK's `services.auth.login_user` step for step
//! (contract section 2.1), so the emulator is exercised the way the tutorial's client exercises
//! live AGS: authorize → 302 with `request_id`, authenticate → 302 with `code`, token exchange
//! with the PKCE verifier. OAuth endpoints authenticate with the configured client's Basic
//! header; the rest take a bearer token per call.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Method, StatusCode};
use rand::RngCore as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use url::Url;

use super::{AbClient, Auth, ClientError, Result, send_empty, send_json, send_redirect};
use crate::models::iam::{
    CreateTestUsersRequest, CreateTestUsersResponse, CreateUserRequestV4, CreateUserResponseV4,
    Jwks, RevocationList, RoleResponseV3, TestUser, TestUserInfo, TokenResponseV3, UserResponseV3,
};

/// The scope the Python SDK requests on authorize.
pub const LOGIN_SCOPE: &str = "commerce account social publishing analytics";

/// Country the test-user endpoint is asked for (the SDK's integration tests use `US`).
const TEST_USER_COUNTRY: &str = "US";

/// A PKCE verifier and its S256 challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkce {
    /// base64url (no padding) of 32 random bytes: 43 characters.
    pub verifier: String,
    /// base64url (no padding) of SHA-256 of the verifier's ASCII.
    pub challenge: String,
}

impl Pkce {
    /// A fresh verifier from the thread-local CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        Self::from_verifier(URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn from_verifier(verifier: String) -> Self {
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Self {
            verifier,
            challenge,
        }
    }
}

#[derive(Serialize)]
struct AuthorizeQuery<'a> {
    client_id: &'a str,
    response_type: &'a str,
    code_challenge: &'a str,
    code_challenge_method: &'a str,
    scope: &'a str,
}

#[derive(Serialize)]
struct AuthenticateForm<'a> {
    user_name: &'a str,
    password: &'a str,
    request_id: &'a str,
    client_id: &'a str,
}

/// The form of `POST /iam/v3/oauth/token`, one variant per grant.
#[derive(Serialize)]
#[serde(tag = "grant_type", rename_all = "snake_case")]
enum TokenGrant<'a> {
    AuthorizationCode {
        code: &'a str,
        code_verifier: &'a str,
    },
    Password {
        username: &'a str,
        password: &'a str,
    },
    ClientCredentials,
    RefreshToken {
        refresh_token: &'a str,
    },
}

#[derive(Serialize)]
struct TokenForm<'a> {
    token: &'a str,
}

impl AbClient {
    /// Logs a user in with the Python SDK's PKCE authorization-code flow (contract 2.1).
    ///
    /// A refusal carried in a redirect (`error` / `error_description` in the `Location` query)
    /// is a [`ClientError::Redirect`].
    pub async fn login_user(&self, username: &str, password: &str) -> Result<TokenResponseV3> {
        let pkce = Pkce::generate();
        let client_id = self.config().client_id.as_str();

        let authorize = self
            .request(
                Method::GET,
                &["iam", "v3", "oauth", "authorize"],
                Auth::Basic,
            )?
            .query(&AuthorizeQuery {
                client_id,
                response_type: "code",
                code_challenge: &pkce.challenge,
                code_challenge_method: "S256",
                scope: LOGIN_SCOPE,
            });
        let location = send_redirect(authorize).await?;
        let request_id = redirect_param(&location, "request_id")?;

        let authenticate = self
            .request(Method::POST, &["iam", "v3", "authenticate"], Auth::Basic)?
            .form(&AuthenticateForm {
                user_name: username,
                password,
                request_id: &request_id,
                client_id,
            });
        let location = send_redirect(authenticate).await?;
        let code = redirect_param(&location, "code")?;

        self.token_grant(&TokenGrant::AuthorizationCode {
            code: &code,
            code_verifier: &pkce.verifier,
        })
        .await
    }

    /// Resource-owner password grant (`grant_type=password`).
    pub async fn login_password(&self, username: &str, password: &str) -> Result<TokenResponseV3> {
        self.token_grant(&TokenGrant::Password { username, password })
            .await
    }

    /// Client-credentials grant: a token for the configured client itself.
    pub async fn login_client(&self) -> Result<TokenResponseV3> {
        self.token_grant(&TokenGrant::ClientCredentials).await
    }

    /// Refresh-token grant.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenResponseV3> {
        self.token_grant(&TokenGrant::RefreshToken { refresh_token })
            .await
    }

    async fn token_grant(&self, grant: &TokenGrant<'_>) -> Result<TokenResponseV3> {
        let request = self
            .request(Method::POST, &["iam", "v3", "oauth", "token"], Auth::Basic)?
            .form(grant);
        send_json(request, StatusCode::OK).await
    }

    /// `POST /iam/v3/oauth/revoke`: revokes `token` (200 also for an unknown token). This is
    /// what the Python SDK's `logout()` calls.
    pub async fn revoke(&self, token: &str) -> Result<()> {
        let request = self
            .request(Method::POST, &["iam", "v3", "oauth", "revoke"], Auth::Basic)?
            .form(&TokenForm { token });
        send_empty(request, StatusCode::OK).await
    }

    /// `POST /iam/v3/logout` with the user's own token (204).
    pub async fn logout(&self, access_token: &str) -> Result<()> {
        let request = self.request(
            Method::POST,
            &["iam", "v3", "logout"],
            Auth::Bearer(access_token),
        )?;
        send_empty(request, StatusCode::NO_CONTENT).await
    }

    /// `POST /iam/v3/oauth/verify`: `Some` with the token's details, `None` when IAM answers 400
    /// (unknown, expired or revoked token). Any other failure, 401 included (bad client
    /// credentials), is an error.
    pub async fn verify(&self, token: &str) -> Result<Option<TokenResponseV3>> {
        let request = self
            .request(Method::POST, &["iam", "v3", "oauth", "verify"], Auth::Basic)?
            .form(&TokenForm { token });
        match send_json(request, StatusCode::OK).await {
            Ok(details) => Ok(Some(details)),
            Err(ClientError::Status { status: 400, .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// `GET /iam/v3/oauth/jwks` (sent with Basic, as the validator SDKs do).
    pub async fn jwks(&self) -> Result<Jwks> {
        let request = self.request(Method::GET, &["iam", "v3", "oauth", "jwks"], Auth::Basic)?;
        send_json(request, StatusCode::OK).await
    }

    /// `GET /iam/v3/oauth/revocationlist` (sent with Basic, as the validator SDKs do).
    pub async fn revocation_list(&self) -> Result<RevocationList> {
        let request = self.request(
            Method::GET,
            &["iam", "v3", "oauth", "revocationlist"],
            Auth::Basic,
        )?;
        send_json(request, StatusCode::OK).await
    }

    /// `POST /iam/v4/public/namespaces/{namespace}/users` (201).
    pub async fn create_user_v4(
        &self,
        bearer: &str,
        namespace: &str,
        user: &CreateUserRequestV4,
    ) -> Result<CreateUserResponseV4> {
        let request = self
            .request(
                Method::POST,
                &["iam", "v4", "public", "namespaces", namespace, "users"],
                Auth::Bearer(bearer),
            )?
            .json(user);
        send_json(request, StatusCode::CREATED).await
    }

    /// `POST /iam/v4/admin/namespaces/{namespace}/test_users` (201): `count` users with
    /// generated credentials; the passwords are only visible in this answer.
    pub async fn create_test_users(
        &self,
        bearer: &str,
        namespace: &str,
        count: u32,
    ) -> Result<Vec<TestUser>> {
        let body = CreateTestUsersRequest {
            count,
            user_info: TestUserInfo {
                country: TEST_USER_COUNTRY.to_owned(),
            },
        };
        let request = self
            .request(
                Method::POST,
                &["iam", "v4", "admin", "namespaces", namespace, "test_users"],
                Auth::Bearer(bearer),
            )?
            .json(&body);
        let created: CreateTestUsersResponse = send_json(request, StatusCode::CREATED).await?;
        Ok(created.data)
    }

    /// `GET /iam/v3/public/users/me`.
    pub async fn me(&self, bearer: &str) -> Result<UserResponseV3> {
        let request = self.request(
            Method::GET,
            &["iam", "v3", "public", "users", "me"],
            Auth::Bearer(bearer),
        )?;
        send_json(request, StatusCode::OK).await
    }

    /// `GET /iam/v3/admin/roles/{roleId}`.
    pub async fn role_v3(&self, bearer: &str, role_id: &str) -> Result<RoleResponseV3> {
        let request = self.request(
            Method::GET,
            &["iam", "v3", "admin", "roles", role_id],
            Auth::Bearer(bearer),
        )?;
        send_json(request, StatusCode::OK).await
    }
}

/// Reads `name` from a login redirect's query; a redirect carrying `error` instead is a
/// [`ClientError::Redirect`].
fn redirect_param(location: &Url, name: &str) -> Result<String> {
    let mut wanted = None;
    let mut error = None;
    let mut description = None;
    for (key, value) in location.query_pairs() {
        match key.as_ref() {
            k if k == name && !value.is_empty() => wanted = Some(value.into_owned()),
            "error" => error = Some(value.into_owned()),
            "error_description" => description = Some(value.into_owned()),
            _ => {}
        }
    }
    // An error wins over a stray value: the server said the step failed.
    if error.is_some() || description.is_some() {
        return Err(ClientError::Redirect {
            error: error.unwrap_or_default(),
            description: description.unwrap_or_default(),
        });
    }
    wanted.ok_or_else(|| ClientError::Protocol(format!("login redirect has no {name}: {location}")))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use pretty_assertions::assert_eq;
    use wiremock::matchers::{body_string_contains, header, method, path, query_param};
    use wiremock::{Mock, MockServer, Request, ResponseTemplate};

    use super::*;
    use crate::client::test_support::*;

    const TOKEN_JSON: &str = r#"{"access_token":"at-1","refresh_token":"rt-1","expires_in":3600,
        "refresh_expires_in":86400,"token_type":"Bearer","namespace":"testgame","user_id":"u1",
        "display_name":"Alice","roles":[],"namespace_roles":[],"permissions":[],"bans":[],
        "scope":"commerce account social publishing analytics","jflgs":1,"is_comply":true,
        "platform_id":"","platform_user_id":"","xuid":""}"#;

    fn form(request: &Request) -> HashMap<String, String> {
        url::form_urlencoded::parse(&request.body)
            .into_owned()
            .collect()
    }

    fn redirect(location: &str) -> ResponseTemplate {
        ResponseTemplate::new(302).insert_header("Location", location)
    }

    async fn mount_login(
        server: &MockServer,
        authorize_location: String,
        authenticate_location: String,
    ) {
        Mock::given(method("GET"))
            .and(path("/iam/v3/oauth/authorize"))
            .and(query_param("client_id", CLIENT_ID))
            .and(query_param("response_type", "code"))
            .and(query_param("code_challenge_method", "S256"))
            .and(query_param("scope", LOGIN_SCOPE))
            .and(header("authorization", basic_header().as_str()))
            .respond_with(redirect(&authorize_location))
            .expect(1)
            .mount(server)
            .await;
        Mock::given(method("POST"))
            .and(path("/iam/v3/authenticate"))
            .and(body_string_contains("request_id=req-42"))
            .respond_with(redirect(&authenticate_location))
            .expect(1)
            .mount(server)
            .await;
        Mock::given(method("POST"))
            .and(path("/iam/v3/oauth/token"))
            .and(body_string_contains("grant_type=authorization_code"))
            .and(body_string_contains("code=code-7"))
            .respond_with(json_with_type(
                200,
                TOKEN_JSON,
                "application/json; charset=utf-8",
            ))
            .expect(1)
            .mount(server)
            .await;
    }

    /// Checks every request of a login against contract 2.1.
    async fn assert_login_wire(server: &MockServer) {
        let requests = server.received_requests().await.expect("recording on");
        assert_eq!(requests.len(), 3);
        let challenge = requests[0]
            .url
            .query_pairs()
            .find(|(k, _)| k == "code_challenge")
            .map(|(_, v)| v.into_owned())
            .expect("challenge sent");

        let authenticate = form(&requests[1]);
        assert_eq!(authenticate["user_name"], "alice");
        assert_eq!(authenticate["password"], "p@ss word");
        assert_eq!(authenticate["request_id"], "req-42");
        assert_eq!(authenticate["client_id"], CLIENT_ID);
        assert_eq!(authenticate.len(), 4, "no redirect_uri: {authenticate:?}");

        let token = form(&requests[2]);
        assert_eq!(token.len(), 3, "no redirect_uri or client_id: {token:?}");
        let verifier = &token["code_verifier"];
        assert_eq!(verifier.len(), 43);
        assert_eq!(Pkce::from_verifier(verifier.clone()).challenge, challenge);
        for request in &requests {
            assert_eq!(
                request.headers.get("authorization").expect("auth"),
                basic_header().as_str()
            );
        }
    }

    #[tokio::test]
    async fn login_user_follows_relative_then_absolute_location() {
        let server = MockServer::start().await;
        let absolute = format!("{}/app/callback?code=code-7&state=", server.uri());
        mount_login(&server, "/iam/v3/login?request_id=req-42".into(), absolute).await;
        let token = test_client(&server)
            .login_user("alice", "p@ss word")
            .await
            .expect("login");
        assert_eq!(token.access_token, "at-1");
        assert_eq!(token.expires_in, 3600);
        assert_login_wire(&server).await;
    }

    #[tokio::test]
    async fn login_user_follows_absolute_then_relative_location() {
        let server = MockServer::start().await;
        let absolute = format!(
            "{}/auth/?request_id=req-42&client_id={CLIENT_ID}",
            server.uri()
        );
        mount_login(&server, absolute, "callback?code=code-7".into()).await;
        let token = test_client(&server)
            .login_user("alice", "p@ss word")
            .await
            .expect("login");
        assert_eq!(token.user_id, "u1");
        assert_login_wire(&server).await;
    }

    #[tokio::test]
    async fn authenticate_error_in_location_is_a_redirect_error() {
        let server = MockServer::start().await;
        Mock::given(path("/iam/v3/oauth/authorize"))
            .respond_with(redirect("/auth/?request_id=req-42"))
            .mount(&server)
            .await;
        Mock::given(path("/iam/v3/authenticate"))
            .respond_with(redirect(
                "/app?error=access_denied&error_description=invalid+username+or+password",
            ))
            .mount(&server)
            .await;
        let err = test_client(&server)
            .login_user("alice", "wrong")
            .await
            .expect_err("refused");
        let ClientError::Redirect { error, description } = err else {
            panic!("expected a redirect error, got {err:?}");
        };
        assert_eq!(error, "access_denied");
        assert_eq!(description, "invalid username or password");
    }

    #[tokio::test]
    async fn redirect_without_request_id_is_a_protocol_error() {
        let server = MockServer::start().await;
        Mock::given(path("/iam/v3/oauth/authorize"))
            .respond_with(redirect("/auth/"))
            .mount(&server)
            .await;
        let err = test_client(&server)
            .login_user("a", "b")
            .await
            .expect_err("no id");
        assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
    }

    #[tokio::test]
    async fn followed_redirect_is_an_unexpected_status() {
        let server = MockServer::start().await;
        Mock::given(path("/iam/v3/oauth/authorize"))
            .respond_with(ResponseTemplate::new(200).set_body_string("<html>login</html>"))
            .mount(&server)
            .await;
        let err = test_client(&server)
            .login_user("a", "b")
            .await
            .expect_err("200");
        assert!(
            matches!(
                err,
                ClientError::UnexpectedStatus {
                    expected: 302,
                    status: 200
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn token_401_oauth_error_is_parsed() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/iam/v3/oauth/token"))
            .and(body_string_contains("grant_type=client_credentials"))
            .respond_with(json_with_type(
                401,
                r#"{"error":"invalid_client","error_description":"client authentication failed"}"#,
                "application/json",
            ))
            .mount(&server)
            .await;
        let err = test_client(&server).login_client().await.expect_err("401");
        assert_eq!(err.status(), Some(401));
        let body = err.body().expect("status error");
        assert_eq!(body.shape, Some(crate::models::error::ErrorShape::OAuth));
        assert_eq!(body.error.as_deref(), Some("invalid_client"));
        assert_eq!(body.message, "client authentication failed");
    }

    #[tokio::test]
    async fn password_and_refresh_grants_send_their_fields() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/iam/v3/oauth/token"))
            .respond_with(json_with_type(200, TOKEN_JSON, "application/json"))
            .mount(&server)
            .await;
        let client = test_client(&server);
        client.login_password("bob", "pw").await.expect("password");
        client.refresh("rt-1").await.expect("refresh");
        let requests = server.received_requests().await.expect("recording on");
        let password = form(&requests[0]);
        assert_eq!(password["grant_type"], "password");
        assert_eq!(password["username"], "bob");
        assert_eq!(password["password"], "pw");
        let refresh = form(&requests[1]);
        assert_eq!(refresh["grant_type"], "refresh_token");
        assert_eq!(refresh["refresh_token"], "rt-1");
        assert_eq!(refresh.len(), 2);
    }

    #[tokio::test]
    async fn json_served_as_text_plain_is_accepted() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/iam/v3/oauth/jwks"))
            .respond_with(json_with_type(
                200,
                r#"{"keys":[{"kty":"RSA","alg":"RS256","use":"sig","kid":"k1","n":"AQAB","e":"AQAB"}]}"#,
                "text/plain; charset=utf-8",
            ))
            .mount(&server)
            .await;
        let jwks = test_client(&server).jwks().await.expect("jwks");
        assert_eq!(jwks.keys[0].kid, "k1");
    }

    #[tokio::test]
    async fn html_success_body_is_rejected() {
        let server = MockServer::start().await;
        Mock::given(path("/iam/v3/public/users/me"))
            .respond_with(json_with_type(200, "<html></html>", "text/html"))
            .mount(&server)
            .await;
        let err = test_client(&server).me("at").await.expect_err("html");
        assert!(
            matches!(err, ClientError::UnexpectedContentType { .. }),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn verify_400_is_none_and_200_is_some() {
        let server = MockServer::start().await;
        Mock::given(path("/iam/v3/oauth/verify"))
            .and(body_string_contains("token=dead"))
            .respond_with(ResponseTemplate::new(400))
            .mount(&server)
            .await;
        Mock::given(path("/iam/v3/oauth/verify"))
            .and(body_string_contains("token=at-1"))
            .respond_with(json_with_type(200, TOKEN_JSON, "application/json"))
            .mount(&server)
            .await;
        Mock::given(path("/iam/v3/oauth/verify"))
            .and(body_string_contains("token=bad-client"))
            .respond_with(ResponseTemplate::new(401))
            .mount(&server)
            .await;
        let client = test_client(&server);
        assert_eq!(
            client.verify("dead").await.expect("400 is not an error"),
            None
        );
        let details = client.verify("at-1").await.expect("200").expect("some");
        assert_eq!(details.user_id, "u1");
        let err = client.verify("bad-client").await.expect_err("401");
        assert_eq!(err.status(), Some(401));
    }

    #[tokio::test]
    async fn revoke_logout_and_test_users() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/iam/v3/oauth/revoke"))
            .and(body_string_contains("token=at-1"))
            .and(header("authorization", basic_header().as_str()))
            .respond_with(ResponseTemplate::new(200))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/iam/v3/logout"))
            .and(header("authorization", "Bearer at-1"))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/iam/v4/admin/namespaces/testgame/test_users"))
            .and(header("authorization", "Bearer admin"))
            .and(wiremock::matchers::body_json(serde_json::json!(
                {"count": 2, "userInfo": {"country": "US"}}
            )))
            .respond_with(json_with_type(
                201,
                r#"{"data":[{"userId":"u1","username":"t1","password":"Pw1!aaaa"},{"userId":"u2"}]}"#,
                "application/json",
            ))
            .expect(1)
            .mount(&server)
            .await;
        let client = test_client(&server);
        client.revoke("at-1").await.expect("revoke");
        client.logout("at-1").await.expect("logout");
        let users = client
            .create_test_users("admin", NAMESPACE, 2)
            .await
            .expect("test users");
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].password, "Pw1!aaaa");
    }

    #[tokio::test]
    async fn path_parameters_are_encoded() {
        let server = MockServer::start().await;
        Mock::given(path("/iam/v3/admin/roles/a%2Fb"))
            .respond_with(json_with_type(
                200,
                r#"{"adminRole":false,"isWildcard":false,"permissions":[],"roleId":"a/b","roleName":"r"}"#,
                "application/json",
            ))
            .mount(&server)
            .await;
        let role = test_client(&server)
            .role_v3("at", "a/b")
            .await
            .expect("role");
        assert_eq!(role.role_id, "a/b");
    }

    #[test]
    fn pkce_matches_rfc7636_appendix_b() {
        let pkce = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into());
        assert_eq!(
            pkce.challenge,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let fresh = Pkce::generate();
        assert_eq!(fresh.verifier.len(), 43);
        assert_ne!(fresh.verifier, Pkce::generate().verifier);
    }

    fn test_client(server: &MockServer) -> AbClient {
        client(server)
    }
}
