//! Session v2 calls (`/session/v1`), reached through [`AbClient::session`]: the admin's
//! configuration template and a player's game session calls (read, join, leave, delete). Every
//! call takes the bearer token explicitly: templates need the game client's, joins the player's.

use http::{Method, StatusCode};

use super::{AbClient, Auth, Result, send_empty, send_json};
use crate::models::session::{
    ConfigurationTemplateResponse, CreateConfigurationTemplateRequest, GameSessionResponse,
};

/// Session v2 operations; see [`AbClient::session`].
#[derive(Debug, Clone, Copy)]
pub struct Session<'a> {
    client: &'a AbClient,
}

impl AbClient {
    /// The Session v2 operations of this client.
    pub fn session(&self) -> Session<'_> {
        Session { client: self }
    }
}

impl Session<'_> {
    fn public(
        &self,
        method: Method,
        bearer: &str,
        namespace: &str,
        rest: &[&str],
    ) -> Result<reqwest::RequestBuilder> {
        let mut segments = vec!["session", "v1", "public", "namespaces", namespace];
        segments.extend_from_slice(rest);
        self.client.request(method, &segments, Auth::Bearer(bearer))
    }

    /// `POST /session/v1/admin/namespaces/{namespace}/configuration` (201).
    pub async fn create_template(
        &self,
        bearer: &str,
        namespace: &str,
        body: &CreateConfigurationTemplateRequest,
    ) -> Result<ConfigurationTemplateResponse> {
        let segments = [
            "session",
            "v1",
            "admin",
            "namespaces",
            namespace,
            "configuration",
        ];
        let request = self
            .client
            .request(Method::POST, &segments, Auth::Bearer(bearer))?
            .json(body);
        send_json(request, StatusCode::CREATED).await
    }

    /// `GET .../gamesessions/{sessionId}` (200).
    pub async fn get_game_session(
        &self,
        bearer: &str,
        namespace: &str,
        session_id: &str,
    ) -> Result<GameSessionResponse> {
        let request = self.public(
            Method::GET,
            bearer,
            namespace,
            &["gamesessions", session_id],
        )?;
        send_json(request, StatusCode::OK).await
    }

    /// `POST .../gamesessions/{sessionId}/join` (200): the caller joins; the answer is the
    /// session with its members and `DSInformation`.
    pub async fn join_game_session(
        &self,
        bearer: &str,
        namespace: &str,
        session_id: &str,
    ) -> Result<GameSessionResponse> {
        let request = self.public(
            Method::POST,
            bearer,
            namespace,
            &["gamesessions", session_id, "join"],
        )?;
        send_json(request, StatusCode::OK).await
    }

    /// `DELETE .../gamesessions/{sessionId}/leave` (204).
    pub async fn leave_game_session(
        &self,
        bearer: &str,
        namespace: &str,
        session_id: &str,
    ) -> Result<()> {
        let request = self.public(
            Method::DELETE,
            bearer,
            namespace,
            &["gamesessions", session_id, "leave"],
        )?;
        send_empty(request, StatusCode::NO_CONTENT).await
    }

    /// `DELETE .../gamesessions/{sessionId}` (204): ends the session and frees its server.
    pub async fn delete_game_session(
        &self,
        bearer: &str,
        namespace: &str,
        session_id: &str,
    ) -> Result<()> {
        let request = self.public(
            Method::DELETE,
            bearer,
            namespace,
            &["gamesessions", session_id],
        )?;
        send_empty(request, StatusCode::NO_CONTENT).await
    }
}
