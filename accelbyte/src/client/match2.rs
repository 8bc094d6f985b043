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

#[cfg(test)]
mod tests {
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer};

    use super::super::test_support::{NAMESPACE, client, json_with_type};
    use super::*;

    #[tokio::test]
    async fn ticket_create_reads_the_201_and_delete_maps_a_406() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/match2/v1/namespaces/testgame/match-tickets"))
            .and(header("authorization", "Bearer player"))
            .and(body_json(serde_json::json!({
                "attributes": {"mmr": 1500},
                "latencies": {"us-east-1": 30},
                "matchPool": "duel"
            })))
            .respond_with(json_with_type(
                201,
                r#"{"matchTicketID":"t1","queueTime":0}"#,
                "application/json",
            ))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("DELETE"))
            .and(path("/match2/v1/namespaces/testgame/match-tickets/t1"))
            .respond_with(json_with_type(
                406,
                r#"{"ErrorCode":520303,"ErrorMessage":"ticket already matched"}"#,
                "application/json",
            ))
            .mount(&server)
            .await;
        let c = client(&server);
        let body = MatchTicketRequest {
            attributes: [("mmr".to_owned(), 1500.into())].into_iter().collect(),
            excluded_sessions: Vec::new(),
            latencies: [("us-east-1".to_owned(), 30)].into_iter().collect(),
            match_pool: "duel".into(),
            session_id: String::new(),
            storage: None,
        };
        let ticket = c
            .match2()
            .create_match_ticket("player", NAMESPACE, &body)
            .await
            .expect("created");
        assert_eq!(ticket.match_ticket_id, "t1");
        let err = c
            .match2()
            .delete_match_ticket("player", NAMESPACE, "t1")
            .await
            .expect_err("406");
        assert_eq!(err.status(), Some(406));
    }
}
