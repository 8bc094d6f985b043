//! Session v2 calls (`/session/v1`), reached through [`AbClient::session`]: the admin's
//! configuration template, a player's game session calls (read, join, leave, delete) and party
//! calls (create, read, join by invite or code, leave, reject, invite, kick, promote, update,
//! the caller's parties). Every call takes the bearer token explicitly: templates need the game
//! client's, the rest the player's.

use http::{Method, StatusCode};

use super::{AbClient, Auth, Result, send_empty, send_json};
use crate::models::session::{
    ConfigurationTemplateResponse, CreateConfigurationTemplateRequest, CreatePartyRequest,
    GameSessionResponse, JoinByCodeRequest, JoinSessionRequest, KickResponse, PartyQueryResponse,
    PartySessionResponse, PromoteLeaderRequest, SessionInviteRequest, SessionInviteResponse,
    UpdatePartyRequest,
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

    // ---- parties -------------------------------------------------------------------------

    /// `POST .../party` (200): the caller creates a party and leads it (leaving any other).
    pub async fn create_party(
        &self,
        bearer: &str,
        namespace: &str,
        body: &CreatePartyRequest,
    ) -> Result<PartySessionResponse> {
        let request = self
            .public(Method::POST, bearer, namespace, &["party"])?
            .json(body);
        send_json(request, StatusCode::OK).await
    }

    /// `GET .../parties/{partyId}` (200).
    pub async fn get_party(
        &self,
        bearer: &str,
        namespace: &str,
        party_id: &str,
    ) -> Result<PartySessionResponse> {
        let request = self.public(Method::GET, bearer, namespace, &["parties", party_id])?;
        send_json(request, StatusCode::OK).await
    }

    /// `POST .../parties/{partyId}/users/me/join` (200): joins a party the caller was
    /// invited to, or an `OPEN` one.
    pub async fn join_party(
        &self,
        bearer: &str,
        namespace: &str,
        party_id: &str,
    ) -> Result<PartySessionResponse> {
        let request = self
            .public(
                Method::POST,
                bearer,
                namespace,
                &["parties", party_id, "users", "me", "join"],
            )?
            .json(&JoinSessionRequest::default());
        send_json(request, StatusCode::OK).await
    }

    /// `POST .../parties/users/me/join/code` (200).
    pub async fn join_party_by_code(
        &self,
        bearer: &str,
        namespace: &str,
        code: &str,
    ) -> Result<PartySessionResponse> {
        let request = self
            .public(
                Method::POST,
                bearer,
                namespace,
                &["parties", "users", "me", "join", "code"],
            )?
            .json(&JoinByCodeRequest {
                code: code.to_owned(),
            });
        send_json(request, StatusCode::OK).await
    }

    /// `DELETE .../parties/{partyId}/users/me/leave` (204).
    pub async fn leave_party(&self, bearer: &str, namespace: &str, party_id: &str) -> Result<()> {
        let request = self.public(
            Method::DELETE,
            bearer,
            namespace,
            &["parties", party_id, "users", "me", "leave"],
        )?;
        send_empty(request, StatusCode::NO_CONTENT).await
    }

    /// `DELETE .../parties/{partyId}/users/me/reject` (204): declines a pending invite.
    pub async fn reject_party(&self, bearer: &str, namespace: &str, party_id: &str) -> Result<()> {
        let request = self.public(
            Method::DELETE,
            bearer,
            namespace,
            &["parties", party_id, "users", "me", "reject"],
        )?;
        send_empty(request, StatusCode::NO_CONTENT).await
    }

    /// `POST .../parties/{partyId}/invite` (201).
    pub async fn invite_to_party(
        &self,
        bearer: &str,
        namespace: &str,
        party_id: &str,
        user_id: &str,
    ) -> Result<SessionInviteResponse> {
        let request = self
            .public(
                Method::POST,
                bearer,
                namespace,
                &["parties", party_id, "invite"],
            )?
            .json(&SessionInviteRequest {
                platform_id: String::new(),
                user_id: user_id.to_owned(),
            });
        send_json(request, StatusCode::CREATED).await
    }

    /// `DELETE .../parties/{partyId}/users/{userId}/kick` (200): the leader removes a member.
    pub async fn kick_party_member(
        &self,
        bearer: &str,
        namespace: &str,
        party_id: &str,
        user_id: &str,
    ) -> Result<KickResponse> {
        let request = self.public(
            Method::DELETE,
            bearer,
            namespace,
            &["parties", party_id, "users", user_id, "kick"],
        )?;
        send_json(request, StatusCode::OK).await
    }

    /// `POST .../parties/{partyId}/leader` (200): the leader hands over.
    pub async fn promote_party_leader(
        &self,
        bearer: &str,
        namespace: &str,
        party_id: &str,
        leader_id: &str,
    ) -> Result<PartySessionResponse> {
        let request = self
            .public(
                Method::POST,
                bearer,
                namespace,
                &["parties", party_id, "leader"],
            )?
            .json(&PromoteLeaderRequest {
                leader_id: leader_id.to_owned(),
            });
        send_json(request, StatusCode::OK).await
    }

    /// `PATCH .../parties/{partyId}` (200), naming the party's current `version`.
    pub async fn update_party(
        &self,
        bearer: &str,
        namespace: &str,
        party_id: &str,
        body: &UpdatePartyRequest,
    ) -> Result<PartySessionResponse> {
        let request = self
            .public(Method::PATCH, bearer, namespace, &["parties", party_id])?
            .json(body);
        send_json(request, StatusCode::OK).await
    }

    /// `GET .../users/me/parties` (200): the parties the caller is invited to or in.
    pub async fn my_parties(&self, bearer: &str, namespace: &str) -> Result<PartyQueryResponse> {
        let request = self.public(Method::GET, bearer, namespace, &["users", "me", "parties"])?;
        send_json(request, StatusCode::OK).await
    }
}
