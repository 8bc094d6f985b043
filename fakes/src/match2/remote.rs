//! A match function served elsewhere, called over AGS Extend's gRPC interface
//! (`accelbyte.matchmaking.matchfunction.MatchFunction/MakeMatches`): what AGS Matchmaking v2
//! does for a pool whose `match_function` names an Extend app. Each tick streams the
//! parameters (the pool's rule set JSON) and then the queued tickets, and reads the proposed
//! matches back.
//!
//! Like AGS, every call carries a bearer token in its `authorization` metadata when the function
//! was given a [`BearerSource`] (fakes gives its own IAM's, [`super::caller_token`]); a function
//! that checks tokens answers `UNAUTHENTICATED` or `PERMISSION_DENIED` otherwise.
//!
//! Every failure — the address unreachable, the call refused, no answer within the timeout, a
//! match naming a ticket it was not sent — is a [`MatchFunctionError`]: the engine logs and
//! counts it, and the pool's tickets stay queued for the next tick.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use accelbyte::extend::make_matches_request::{MakeMatchesParameters, RequestType};
use accelbyte::extend::match_function_client::MatchFunctionClient;
use accelbyte::extend::{self as pb, MakeMatchesRequest};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use prost_types::value::Kind;
use serde_json::Value;
use tonic::transport::{Channel, Endpoint};

use super::matcher::{MatchFunction, MatchFunctionError, MatchFuture, Proposal, Ticket};

/// How long one `MakeMatches` call (connect, send, read every match) may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a call's bearer token comes from; `Ok(None)`: the call goes without one.
pub trait BearerSource: Send + Sync + std::fmt::Debug {
    fn bearer(&self) -> Result<Option<String>, String>;
}

/// A remote match function at a gRPC address (`http://host:port`), or spread over several
/// replicas of it.
#[derive(Debug)]
pub struct RemoteMatchFunction {
    /// One or more; calls are balanced over them.
    endpoints: Vec<Endpoint>,
    timeout: Duration,
    /// Connected on first use (a channel needs a runtime) and reconnecting on its own after.
    channel: OnceLock<Channel>,
    bearer: Option<Arc<dyn BearerSource>>,
}

fn endpoint(url: &str) -> Result<Endpoint, MatchFunctionError> {
    let parsed =
        url::Url::parse(url).map_err(|e| MatchFunctionError(format!("url {url:?}: {e}")))?;
    if parsed.scheme() != "http" || parsed.host_str().is_none() {
        return Err(MatchFunctionError(format!(
            "url {url:?}: expected http://host:port (plain-text gRPC, as AGS Extend calls its apps)"
        )));
    }
    Ok(Endpoint::from_shared(url.to_owned())
        .map_err(|e| MatchFunctionError(format!("url {url:?}: {e}")))?
        .connect_timeout(DEFAULT_TIMEOUT)
        .tcp_nodelay(true))
}

impl RemoteMatchFunction {
    /// A function at `url` (`http://127.0.0.1:6565`); refused when it is no URI.
    pub fn new(url: &str) -> Result<Self, MatchFunctionError> {
        Self::balanced(&[url])
    }

    /// One function served by several replicas: each call goes to one of `urls`.
    pub fn balanced(urls: &[&str]) -> Result<Self, MatchFunctionError> {
        if urls.is_empty() {
            return Err(MatchFunctionError("no url given".to_owned()));
        }
        Ok(Self {
            endpoints: urls.iter().map(|u| endpoint(u)).collect::<Result<_, _>>()?,
            timeout: DEFAULT_TIMEOUT,
            channel: OnceLock::new(),
            bearer: None,
        })
    }

    /// The same function with another call timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.endpoints = self
            .endpoints
            .into_iter()
            .map(|e| e.connect_timeout(timeout))
            .collect();
        self.timeout = timeout;
        self
    }

    /// The same function, called with a token from `source` in each call's metadata.
    #[must_use]
    pub fn with_bearer(mut self, source: Arc<dyn BearerSource>) -> Self {
        self.bearer = Some(source);
        self
    }

    /// The address calls go to (several, comma separated, for replicas).
    pub fn url(&self) -> String {
        self.endpoints
            .iter()
            .map(|e| e.uri().to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    async fn call(
        &self,
        rules: &Value,
        tickets: &[Ticket],
    ) -> Result<Vec<Proposal>, MatchFunctionError> {
        let channel = self
            .channel
            .get_or_init(|| match self.endpoints.as_slice() {
                [one] => one.connect_lazy(),
                many => Channel::balance_list(many.iter().cloned()),
            })
            .clone();
        let mut client = MatchFunctionClient::new(channel);
        let mut messages = Vec::with_capacity(tickets.len() + 1);
        messages.push(MakeMatchesRequest {
            request_type: Some(RequestType::Parameters(MakeMatchesParameters {
                scope: None,
                rules: Some(pb::Rules {
                    json: rules.to_string(),
                }),
                tick_id: 0,
            })),
        });
        messages.extend(tickets.iter().map(|t| MakeMatchesRequest {
            request_type: Some(RequestType::Ticket(to_proto(t))),
        }));
        let mut request = tonic::Request::new(futures_util::stream::iter(messages));
        if let Some(source) = &self.bearer {
            if let Some(token) = source.bearer().map_err(MatchFunctionError)? {
                let value = format!("Bearer {token}").parse().map_err(|_| {
                    MatchFunctionError("the caller token is not a valid header value".to_owned())
                })?;
                request.metadata_mut().insert("authorization", value);
            }
        }
        let mut answers = client
            .make_matches(request)
            .await
            .map_err(|status| failed(&status))?
            .into_inner();
        let mut proposals = Vec::new();
        while let Some(answer) = answers.next().await {
            let answer = answer.map_err(|status| failed(&status))?;
            if let Some(found) = answer.r#match {
                proposals.push(from_proto(found, tickets)?);
            }
        }
        Ok(proposals)
    }
}

impl MatchFunction for RemoteMatchFunction {
    fn make_matches<'a>(
        &'a self,
        rules: &'a Value,
        tickets: &'a [Ticket],
        _now: DateTime<Utc>,
    ) -> MatchFuture<'a> {
        Box::pin(async move {
            tokio::time::timeout(self.timeout, self.call(rules, tickets))
                .await
                .map_err(|_| {
                    MatchFunctionError(format!(
                        "{}: no answer within {:?}",
                        self.url(),
                        self.timeout
                    ))
                })?
        })
    }
}

fn failed(status: &tonic::Status) -> MatchFunctionError {
    MatchFunctionError(format!(
        "MakeMatches: {:?}: {}",
        status.code(),
        status.message()
    ))
}

/// serde JSON → protobuf `Value`.
fn value(json: &Value) -> prost_types::Value {
    let kind = match json {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(value).collect(),
        }),
        Value::Object(map) => Kind::StructValue(structure(map)),
    };
    prost_types::Value { kind: Some(kind) }
}

fn structure(map: &serde_json::Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: map.iter().map(|(k, v)| (k.clone(), value(v))).collect(),
    }
}

/// A queued ticket as AGS sends it to a match function.
fn to_proto(ticket: &Ticket) -> pb::Ticket {
    pb::Ticket {
        ticket_id: ticket.id.clone(),
        created_at: Some(prost_types::Timestamp {
            seconds: ticket.created_at.timestamp(),
            nanos: i32::try_from(ticket.created_at.timestamp_subsec_nanos()).unwrap_or(0),
        }),
        players: ticket
            .players
            .iter()
            .map(|p| pb::ticket::PlayerData {
                player_id: p.clone(),
                attributes: Some(structure(&ticket.attributes)),
            })
            .collect(),
        ticket_attributes: Some(structure(&ticket.attributes)),
        latencies: ticket
            .latencies
            .iter()
            .map(|(r, ms)| (r.clone(), *ms))
            .collect(),
        party_session_id: ticket.party_id.clone(),
        ..pb::Ticket::default()
    }
}

/// A proposed match → a [`Proposal`]; it must name only tickets it was sent and at least one.
fn from_proto(found: pb::Match, sent: &[Ticket]) -> Result<Proposal, MatchFunctionError> {
    let mut ids = Vec::with_capacity(found.tickets.len());
    for t in &found.tickets {
        if !sent.iter().any(|s| s.id == t.ticket_id) {
            return Err(MatchFunctionError(format!(
                "MakeMatches proposed ticket {:?}, which it was not sent",
                t.ticket_id
            )));
        }
        if ids.contains(&t.ticket_id) {
            return Err(MatchFunctionError(format!(
                "MakeMatches proposed ticket {:?} twice in one match",
                t.ticket_id
            )));
        }
        ids.push(t.ticket_id.clone());
    }
    if ids.is_empty() {
        return Err(MatchFunctionError(
            "MakeMatches proposed a match without tickets".to_owned(),
        ));
    }
    Ok(Proposal {
        tickets: ids,
        teams: found.teams.into_iter().map(|t| t.user_ids).collect(),
        region: found.region_preferences.into_iter().next(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_url_that_is_not_plain_http_is_refused() {
        assert!(RemoteMatchFunction::new("not a url").is_err());
        assert!(RemoteMatchFunction::new("https://mf:6565").is_err());
        assert!(RemoteMatchFunction::new("http://127.0.0.1:6565").is_ok());
    }

    #[test]
    fn tickets_carry_their_attributes_and_latencies_and_matches_only_sent_tickets() {
        let mut attributes = serde_json::Map::new();
        attributes.insert("mmr".into(), json!(1200));
        let t = Ticket {
            id: "t1".into(),
            players: vec!["u1".into()],
            party_id: String::new(),
            attributes,
            latencies: [("eu".to_owned(), 40)].into_iter().collect(),
            created_at: DateTime::from_timestamp(1_700_000_000, 5).expect("time"),
        };
        let p = to_proto(&t);
        assert_eq!(p.latencies.get("eu"), Some(&40));
        assert_eq!(
            p.ticket_attributes.as_ref().expect("attributes").fields["mmr"].kind,
            Some(Kind::NumberValue(1200.0))
        );
        let unknown = pb::Match {
            tickets: vec![pb::Ticket {
                ticket_id: "other".into(),
                ..pb::Ticket::default()
            }],
            ..pb::Match::default()
        };
        assert!(from_proto(unknown, std::slice::from_ref(&t)).is_err());
        let good = pb::Match {
            tickets: vec![p.clone()],
            teams: vec![pb::r#match::Team {
                user_ids: vec!["u1".into()],
                ..Default::default()
            }],
            region_preferences: vec!["eu".into()],
            ..pb::Match::default()
        };
        let proposal = from_proto(good, &[t]).expect("known ticket");
        assert_eq!(proposal.tickets, vec!["t1"]);
        assert_eq!(proposal.region.as_deref(), Some("eu"));
    }
}
