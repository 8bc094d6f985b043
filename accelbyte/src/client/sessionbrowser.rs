//! Session Browser calls (`/sessionbrowser/namespaces/{namespace}/gamesession...`, contract
//! section 4), reached through [`AbClient::session_browser`]. Every call takes the bearer token
//! explicitly: the sample creates sessions and adds players with the *user's* token but reads
//! them back with the game client's.

use http::{Method, StatusCode};
use serde::Serialize;

use super::{AbClient, Auth, Result, send_json};
use crate::models::sessionbrowser::{
    AddPlayerRequest, AddPlayerResponse, CreateSessionRequest, JoinSessionRequest,
    QuerySessionResponse, SessionResponse, UpdateSessionRequest,
};

/// Query of `GET .../gamesession`. `session_type` (`dedicated` or `p2p`) is required by the
/// service; unset filters are not sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SessionQuery {
    pub session_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub game_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub game_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joinable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_exist: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_id: Option<String>,
    /// `CREATING`, `READY`, `BUSY`, `REMOVING` or `UNREACHABLE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
}

impl SessionQuery {
    /// A query for all sessions of one type.
    pub fn of_type(session_type: impl Into<String>) -> Self {
        Self {
            session_type: session_type.into(),
            ..Self::default()
        }
    }
}

/// Session Browser operations; see [`AbClient::session_browser`].
#[derive(Debug, Clone, Copy)]
pub struct SessionBrowser<'a> {
    client: &'a AbClient,
}

impl AbClient {
    /// The Session Browser operations of this client.
    pub fn session_browser(&self) -> SessionBrowser<'_> {
        SessionBrowser { client: self }
    }
}

impl SessionBrowser<'_> {
    fn request(
        &self,
        method: Method,
        bearer: &str,
        namespace: &str,
        rest: &[&str],
    ) -> Result<reqwest::RequestBuilder> {
        let mut segments = vec!["sessionbrowser", "namespaces", namespace, "gamesession"];
        segments.extend_from_slice(rest);
        self.client.request(method, &segments, Auth::Bearer(bearer))
    }

    /// `POST .../gamesession` (200).
    pub async fn create_session(
        &self,
        bearer: &str,
        namespace: &str,
        body: &CreateSessionRequest,
    ) -> Result<SessionResponse> {
        let request = self
            .request(Method::POST, bearer, namespace, &[])?
            .json(body);
        send_json(request, StatusCode::OK).await
    }

    /// `GET .../gamesession/{sessionID}`.
    pub async fn get_session(
        &self,
        bearer: &str,
        namespace: &str,
        session_id: &str,
    ) -> Result<SessionResponse> {
        let request = self.request(Method::GET, bearer, namespace, &[session_id])?;
        send_json(request, StatusCode::OK).await
    }

    /// `GET .../gamesession?session_type=...`.
    pub async fn query_sessions(
        &self,
        bearer: &str,
        namespace: &str,
        query: &SessionQuery,
    ) -> Result<QuerySessionResponse> {
        let request = self
            .request(Method::GET, bearer, namespace, &[])?
            .query(query);
        send_json(request, StatusCode::OK).await
    }

    /// `POST .../gamesession/{sessionID}/player` (200 `{"status": bool}`).
    pub async fn add_player(
        &self,
        bearer: &str,
        namespace: &str,
        session_id: &str,
        user_id: &str,
        as_spectator: bool,
    ) -> Result<AddPlayerResponse> {
        let body = AddPlayerRequest {
            as_spectator,
            user_id: user_id.to_owned(),
        };
        let request = self
            .request(Method::POST, bearer, namespace, &[session_id, "player"])?
            .json(&body);
        send_json(request, StatusCode::OK).await
    }

    /// `DELETE .../gamesession/{sessionID}/player/{userID}` (200 `{"status": bool}`).
    pub async fn remove_player(
        &self,
        bearer: &str,
        namespace: &str,
        session_id: &str,
        user_id: &str,
    ) -> Result<AddPlayerResponse> {
        let request = self.request(
            Method::DELETE,
            bearer,
            namespace,
            &[session_id, "player", user_id],
        )?;
        send_json(request, StatusCode::OK).await
    }

    /// `POST .../gamesession/{sessionID}/join` with the session password.
    pub async fn join_session(
        &self,
        bearer: &str,
        namespace: &str,
        session_id: &str,
        password: &str,
    ) -> Result<SessionResponse> {
        let body = JoinSessionRequest {
            password: password.to_owned(),
        };
        let request = self
            .request(Method::POST, bearer, namespace, &[session_id, "join"])?
            .json(&body);
        send_json(request, StatusCode::OK).await
    }

    /// `PUT .../gamesession/{sessionID}` (player counts).
    pub async fn update_session(
        &self,
        bearer: &str,
        namespace: &str,
        session_id: &str,
        body: &UpdateSessionRequest,
    ) -> Result<SessionResponse> {
        let request = self
            .request(Method::PUT, bearer, namespace, &[session_id])?
            .json(body);
        send_json(request, StatusCode::OK).await
    }

    /// `DELETE .../gamesession/{sessionID}` (200 with the deleted session).
    pub async fn delete_session(
        &self,
        bearer: &str,
        namespace: &str,
        session_id: &str,
    ) -> Result<SessionResponse> {
        let request = self.request(Method::DELETE, bearer, namespace, &[session_id])?;
        send_json(request, StatusCode::OK).await
    }
}

#[cfg(test)]
mod tests {
    use wiremock::matchers::{body_json, header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::client::ClientError;
    use crate::client::test_support::*;

    #[tokio::test]
    async fn add_player_and_query_hit_the_contract_paths() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(
                "/sessionbrowser/namespaces/testgame/gamesession/s1/player",
            ))
            .and(header("authorization", "Bearer user"))
            .and(body_json(
                serde_json::json!({"as_spectator": false, "user_id": "u1"}),
            ))
            .respond_with(json_with_type(
                200,
                r#"{"status":true}"#,
                "application/json",
            ))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/sessionbrowser/namespaces/testgame/gamesession"))
            .and(query_param("session_type", "dedicated"))
            .and(query_param("joinable", "true"))
            .respond_with(json_with_type(
                200,
                r#"{"pagination":{"next":"","previous":""},"sessions":[]}"#,
                "application/json",
            ))
            .expect(1)
            .mount(&server)
            .await;
        let client = client(&server);
        let sb = client.session_browser();
        let added = sb
            .add_player("user", NAMESPACE, "s1", "u1", false)
            .await
            .expect("add");
        assert!(added.status);
        let query = SessionQuery {
            joinable: Some(true),
            ..SessionQuery::of_type("dedicated")
        };
        let page = sb
            .query_sessions("game", NAMESPACE, &query)
            .await
            .expect("query");
        assert!(page.sessions.is_empty());
    }

    #[tokio::test]
    async fn v2_error_body_is_parsed() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/sessionbrowser/namespaces/testgame/gamesession/s1/join"))
            .respond_with(ResponseTemplate::new(403).set_body_raw(
                r#"{"attributes":{},"errorCode":20003,"errorMessage":"user is banned","message":"user is banned","name":"Forbidden"}"#,
                "application/json",
            ))
            .mount(&server)
            .await;
        let err = client(&server)
            .session_browser()
            .join_session("user", NAMESPACE, "s1", "pw")
            .await
            .expect_err("403");
        let ClientError::Status { status, body, .. } = &err else {
            panic!("expected status error, got {err:?}");
        };
        assert_eq!(*status, 403);
        assert_eq!(
            body.shape,
            Some(crate::models::error::ErrorShape::SessionBrowserV2)
        );
        assert_eq!(body.code, Some(20003));
    }
}
