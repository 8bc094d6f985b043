//! DSMC calls (`/dsmcontroller`, contract section 5), reached through [`AbClient::dsmc`]:
//! register a session, claim its server, read it back, and the admin list/delete used to clean
//! up after load tests.
//!
//! Claim answers carry meaning in their status (contract 5.2): 204 claimed, 404 not registered
//! yet, 409 already claimed, 425 server not ready (retry), 503 server unreachable. They surface
//! as [`ClientError::Status`](super::ClientError::Status) so a caller's retry policy can match
//! on [`ClientError::status`](super::ClientError::status).

use http::{Method, StatusCode};
use serde::Serialize;

use super::{AbClient, Auth, Result, send_empty, send_json};
use crate::models::dsmc::{
    ClaimSessionRequest, CreateSessionRequest, ListSessionResponse, SessionResponse,
};

/// Query of the admin session list; unset fields are not sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminSessionQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Sent as `withServer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub with_server: Option<bool>,
}

/// DSMC operations; see [`AbClient::dsmc`].
#[derive(Debug, Clone, Copy)]
pub struct Dsmc<'a> {
    client: &'a AbClient,
}

impl AbClient {
    /// The DSMC operations of this client.
    pub fn dsmc(&self) -> Dsmc<'_> {
        Dsmc { client: self }
    }
}

impl Dsmc<'_> {
    fn sessions(
        &self,
        method: Method,
        bearer: &str,
        namespace: &str,
        rest: &[&str],
    ) -> Result<reqwest::RequestBuilder> {
        let mut segments = vec!["dsmcontroller", "namespaces", namespace, "sessions"];
        segments.extend_from_slice(rest);
        self.client.request(method, &segments, Auth::Bearer(bearer))
    }

    fn admin_sessions(
        &self,
        method: Method,
        bearer: &str,
        namespace: &str,
        rest: &[&str],
    ) -> Result<reqwest::RequestBuilder> {
        let mut segments = vec![
            "dsmcontroller",
            "admin",
            "namespaces",
            namespace,
            "sessions",
        ];
        segments.extend_from_slice(rest);
        self.client.request(method, &segments, Auth::Bearer(bearer))
    }

    /// `POST /dsmcontroller/namespaces/{namespace}/sessions` (200): registers a session and
    /// starts (or assigns) its server; the answer's server status may still be `CREATING`.
    pub async fn register_session(
        &self,
        bearer: &str,
        namespace: &str,
        body: &CreateSessionRequest,
    ) -> Result<SessionResponse> {
        let request = self
            .sessions(Method::POST, bearer, namespace, &[])?
            .json(body);
        send_json(request, StatusCode::OK).await
    }

    /// `POST .../sessions/claim` with `{"session_id"}` (204, no body).
    pub async fn claim_server(
        &self,
        bearer: &str,
        namespace: &str,
        session_id: &str,
    ) -> Result<()> {
        let body = ClaimSessionRequest {
            session_id: session_id.to_owned(),
            game_mode: None,
            namespace: None,
            matching_allies: None,
            notification_payload: None,
        };
        let request = self
            .sessions(Method::POST, bearer, namespace, &["claim"])?
            .json(&body);
        send_empty(request, StatusCode::NO_CONTENT).await
    }

    /// `GET .../sessions/{sessionID}`: the server is under `session.Server`.
    pub async fn get_session(
        &self,
        bearer: &str,
        namespace: &str,
        session_id: &str,
    ) -> Result<SessionResponse> {
        let request = self.sessions(Method::GET, bearer, namespace, &[session_id])?;
        send_json(request, StatusCode::OK).await
    }

    /// `DELETE .../sessions/{sessionID}/cancel` (204; only while the server is `CREATING`).
    pub async fn cancel_session(
        &self,
        bearer: &str,
        namespace: &str,
        session_id: &str,
    ) -> Result<()> {
        let request = self.sessions(Method::DELETE, bearer, namespace, &[session_id, "cancel"])?;
        send_empty(request, StatusCode::NO_CONTENT).await
    }

    /// `GET /dsmcontroller/admin/namespaces/{namespace}/sessions`.
    pub async fn admin_list_sessions(
        &self,
        bearer: &str,
        namespace: &str,
        query: &AdminSessionQuery,
    ) -> Result<ListSessionResponse> {
        let request = self
            .admin_sessions(Method::GET, bearer, namespace, &[])?
            .query(query);
        send_json(request, StatusCode::OK).await
    }

    /// `DELETE /dsmcontroller/admin/namespaces/{namespace}/sessions/{sessionID}` (204).
    pub async fn admin_delete_session(
        &self,
        bearer: &str,
        namespace: &str,
        session_id: &str,
    ) -> Result<()> {
        let request = self.admin_sessions(Method::DELETE, bearer, namespace, &[session_id])?;
        send_empty(request, StatusCode::NO_CONTENT).await
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
    async fn claim_204_with_empty_body_is_ok() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/dsmcontroller/namespaces/testgame/sessions/claim"))
            .and(header("authorization", "Bearer game"))
            .and(body_json(serde_json::json!({"session_id": "s1"})))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        client(&server)
            .dsmc()
            .claim_server("game", NAMESPACE, "s1")
            .await
            .expect("claimed");
    }

    #[tokio::test]
    async fn claim_425_is_a_status_error() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/dsmcontroller/namespaces/testgame/sessions/claim"))
            .respond_with(json_with_type(
                425,
                r#"{"errorCode":20000,"errorMessage":"DS is not ready to be claimed"}"#,
                "application/json",
            ))
            .mount(&server)
            .await;
        let err = client(&server)
            .dsmc()
            .claim_server("game", NAMESPACE, "s1")
            .await
            .expect_err("425");
        assert!(
            matches!(err, ClientError::Status { status: 425, .. }),
            "{err:?}"
        );
        assert_eq!(err.status(), Some(425));
        assert_eq!(
            err.body().map(|b| b.message.as_str()),
            Some("DS is not ready to be claimed")
        );
    }

    #[tokio::test]
    async fn claim_answered_200_is_an_unexpected_status() {
        let server = MockServer::start().await;
        Mock::given(path("/dsmcontroller/namespaces/testgame/sessions/claim"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&server)
            .await;
        let err = client(&server)
            .dsmc()
            .claim_server("game", NAMESPACE, "s1")
            .await
            .expect_err("200");
        assert!(
            matches!(
                err,
                ClientError::UnexpectedStatus {
                    expected: 204,
                    status: 200
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn get_session_reads_capital_server_and_admin_list_sends_query() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/dsmcontroller/namespaces/testgame/sessions/s1"))
            .respond_with(json_with_type(
                200,
                r#"{"session":{"Server":{"ip":"127.0.0.1","port":7777}}}"#,
                "application/json",
            ))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/dsmcontroller/admin/namespaces/testgame/sessions"))
            .and(query_param("count", "10"))
            .and(query_param("withServer", "true"))
            .respond_with(json_with_type(
                200,
                r#"{"paging":{"next":"","previous":""},"sessions":[]}"#,
                "application/json",
            ))
            .mount(&server)
            .await;
        let client = client(&server);
        let session = client
            .dsmc()
            .get_session("game", NAMESPACE, "s1")
            .await
            .expect("get");
        assert_eq!(session.session.server.ip, "127.0.0.1");
        assert_eq!(session.session.server.port, 7777);
        let query = AdminSessionQuery {
            count: Some(10),
            with_server: Some(true),
            ..AdminSessionQuery::default()
        };
        let page = client
            .dsmc()
            .admin_list_sessions("admin", NAMESPACE, &query)
            .await
            .expect("list");
        assert!(page.sessions.is_empty());
    }
}
