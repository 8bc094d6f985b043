//! Matchmaking v2 calls (`/match2/v1`), reached through [`AbClient::match2`]: rule sets and
//! match pools (the game client's admin calls) and a player's match tickets (create, read,
//! delete). Every call takes the bearer token explicitly.

use http::{Method, StatusCode};

use super::{AbClient, Auth, Result, send_empty, send_json};
use crate::models::match2::{
    MatchPool, MatchTicketRequest, MatchTicketResponse, MatchTicketStatus, RuleSetPayload,
};

/// Matchmaking v2 operations; see [`AbClient::match2`].
#[derive(Debug, Clone, Copy)]
pub struct Match2<'a> {
    client: &'a AbClient,
}

impl AbClient {
    /// The Matchmaking v2 operations of this client.
    pub fn match2(&self) -> Match2<'_> {
        Match2 { client: self }
    }
}

impl Match2<'_> {
    fn request(
        &self,
        method: Method,
        bearer: &str,
        namespace: &str,
        rest: &[&str],
    ) -> Result<reqwest::RequestBuilder> {
        let mut segments = vec!["match2", "v1", "namespaces", namespace];
        segments.extend_from_slice(rest);
        self.client.request(method, &segments, Auth::Bearer(bearer))
    }

    /// `POST .../rulesets` (201, no body).
    pub async fn create_rule_set(
        &self,
        bearer: &str,
        namespace: &str,
        body: &RuleSetPayload,
    ) -> Result<()> {
        let request = self
            .request(Method::POST, bearer, namespace, &["rulesets"])?
            .json(body);
        send_empty(request, StatusCode::CREATED).await
    }

    /// `POST .../match-pools` (201, no body).
    pub async fn create_match_pool(
        &self,
        bearer: &str,
        namespace: &str,
        body: &MatchPool,
    ) -> Result<()> {
        let request = self
            .request(Method::POST, bearer, namespace, &["match-pools"])?
            .json(body);
        send_empty(request, StatusCode::CREATED).await
    }

    /// `POST .../match-tickets` (201): queues the caller (or the party named by `sessionID`).
    pub async fn create_match_ticket(
        &self,
        bearer: &str,
        namespace: &str,
        body: &MatchTicketRequest,
    ) -> Result<MatchTicketResponse> {
        let request = self
            .request(Method::POST, bearer, namespace, &["match-tickets"])?
            .json(body);
        send_json(request, StatusCode::CREATED).await
    }

    /// `GET .../match-tickets/{ticketid}` (200).
    pub async fn get_match_ticket(
        &self,
        bearer: &str,
        namespace: &str,
        ticket_id: &str,
    ) -> Result<MatchTicketStatus> {
        let request = self.request(
            Method::GET,
            bearer,
            namespace,
            &["match-tickets", ticket_id],
        )?;
        send_json(request, StatusCode::OK).await
    }

    /// `DELETE .../match-tickets/{ticketid}` (204): leaves the queue.
    pub async fn delete_match_ticket(
        &self,
        bearer: &str,
        namespace: &str,
        ticket_id: &str,
    ) -> Result<()> {
        let request = self.request(
            Method::DELETE,
            bearer,
            namespace,
            &["match-tickets", ticket_id],
        )?;
        send_empty(request, StatusCode::NO_CONTENT).await
    }
}
