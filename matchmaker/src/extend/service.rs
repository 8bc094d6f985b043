//! The `MatchFunction` gRPC service: each RPC parses the pool's rules from the request, then
//! hands the work to [`super::rules`], [`super::tickets`], [`super::matches`] and
//! [`super::backfill`].
//!
//! Errors: a ruleset that does not parse or make sense, a missing ticket, or a stream that does
//! not start with its parameters is `INVALID_ARGUMENT` with a message naming the problem. A ticket
//! the rules refuse is `valid_ticket: false` on `ValidateTicket`, with the reason in the
//! `matchbench-invalid-reason` response metadata; on the streams such tickets are left out.
//!
//! The streams read every message until the caller half-closes (as AGS does once per tick), plan
//! once, then stream the results back.

use std::pin::Pin;
use std::sync::Arc;

use futures_util::{Stream, StreamExt as _, stream};
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use super::backfill::backfill_matches;
use super::matches::make_matches;
use super::proto::{
    self, BackfillMakeMatchesRequest, BackfillResponse, EnrichTicketRequest, EnrichTicketResponse,
    GetStatCodesRequest, MakeMatchesRequest, MatchResponse, StatCodesResponse,
    ValidateTicketRequest, ValidateTicketResponse, backfill_make_matches_request,
    make_matches_request,
};
use super::rules::PoolRules;
use super::tickets::{admit, number, skill_of};
use crate::clock::{Clock, SystemClock};

/// The response metadata key that carries why `ValidateTicket` said no.
pub const INVALID_REASON_KEY: &str = "matchbench-invalid-reason";

/// The match function, serving the matchmaker's rules.
#[derive(Clone)]
pub struct MatchFunctionService {
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MatchFunctionService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MatchFunctionService")
            .finish_non_exhaustive()
    }
}

impl Default for MatchFunctionService {
    fn default() -> Self {
        Self::new(Arc::new(SystemClock))
    }
}

impl MatchFunctionService {
    /// A service that reads the time (for waits, widening and timeouts) from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        MatchFunctionService { clock }
    }
}

type ResultStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

fn parse_rules(rules: Option<&proto::Rules>) -> Result<PoolRules, Status> {
    let json = rules.map(|r| r.json.as_str()).unwrap_or_default();
    PoolRules::from_json(json).map_err(|e| Status::invalid_argument(e.to_string()))
}

fn required<T>(value: Option<T>, what: &str) -> Result<T, Status> {
    value.ok_or_else(|| Status::invalid_argument(format!("{what} is missing")))
}

/// Runs `work` when the stream is first polled and streams its items (or its error) back.
fn deferred<T: Send + 'static>(
    work: impl Future<Output = Result<Vec<T>, Status>> + Send + 'static,
) -> ResultStream<T> {
    Box::pin(stream::once(work).flat_map(|result| {
        let items: Vec<Result<T, Status>> = match result {
            Ok(items) => items.into_iter().map(Ok).collect(),
            Err(status) => vec![Err(status)],
        };
        stream::iter(items)
    }))
}

/// Every match ticket of one stream must be of the pool the first one named.
fn same_pool(pool: &mut Option<String>, ticket: &proto::Ticket) -> Result<(), Status> {
    match pool {
        None => {
            *pool = Some(ticket.match_pool.clone());
            Ok(())
        }
        Some(p) if *p == ticket.match_pool => Ok(()),
        Some(p) => Err(Status::invalid_argument(format!(
            "ticket {} is of match pool {:?}, but this stream's tickets are of {:?}: one pool per stream",
            ticket.ticket_id, ticket.match_pool, p
        ))),
    }
}

fn log_refused(rpc: &str, invalid: &[String]) {
    for why in invalid {
        tracing::info!(rpc, "left out: {why}");
    }
}

#[tonic::async_trait]
impl proto::match_function_server::MatchFunction for MatchFunctionService {
    async fn get_stat_codes(
        &self,
        request: Request<GetStatCodesRequest>,
    ) -> Result<Response<StatCodesResponse>, Status> {
        let rules = parse_rules(request.get_ref().rules.as_ref())?;
        Ok(Response::new(StatCodesResponse {
            codes: rules.stat_codes(),
        }))
    }

    async fn validate_ticket(
        &self,
        request: Request<ValidateTicketRequest>,
    ) -> Result<Response<ValidateTicketResponse>, Status> {
        let req = request.into_inner();
        let rules = parse_rules(req.rules.as_ref())?;
        let ticket = required(req.ticket, "ticket")?;
        let now = self.clock.now();
        let verdict = admit(&ticket, &rules, now)
            .map_err(|e| e.to_string())
            .and_then(|a| {
                let waited = now.since(a.ticket.enqueued_at);
                if waited >= rules.timeout() {
                    Err(format!(
                        "ticket {}: waited {:.0} s, past the rules' timeout of {:.0} s",
                        ticket.ticket_id,
                        waited.as_secs_f64(),
                        rules.timeout().as_secs_f64()
                    ))
                } else {
                    Ok(())
                }
            });
        let mut response = Response::new(ValidateTicketResponse {
            valid_ticket: verdict.is_ok(),
        });
        if let Err(why) = verdict {
            tracing::info!("ValidateTicket: {why}");
            let printable: String = why
                .chars()
                .map(|c| {
                    if c.is_ascii() && !c.is_ascii_control() {
                        c
                    } else {
                        '?'
                    }
                })
                .collect();
            if let Ok(value) = MetadataValue::try_from(printable.as_str()) {
                response.metadata_mut().insert(INVALID_REASON_KEY, value);
            }
        }
        Ok(response)
    }

    async fn enrich_ticket(
        &self,
        request: Request<EnrichTicketRequest>,
    ) -> Result<Response<EnrichTicketResponse>, Status> {
        let req = request.into_inner();
        let rules = parse_rules(req.rules.as_ref())?;
        let mut ticket = required(req.ticket, "ticket")?;
        // The ticket's skill, computed once from its players, so every tick reads one number.
        // A ticket whose values are not numbers passes through: ValidateTicket says why.
        let attribute = &rules.skill_attribute;
        let has_own = ticket
            .ticket_attributes
            .as_ref()
            .is_some_and(|a| a.fields.contains_key(attribute));
        if !has_own {
            if let Ok(Some(skill)) = skill_of(&ticket, attribute) {
                ticket
                    .ticket_attributes
                    .get_or_insert_with(Default::default)
                    .fields
                    .insert(attribute.clone(), number(f64::from(skill)));
            }
        }
        Ok(Response::new(EnrichTicketResponse {
            ticket: Some(ticket),
        }))
    }

    type MakeMatchesStream = ResultStream<MatchResponse>;

    async fn make_matches(
        &self,
        request: Request<Streaming<MakeMatchesRequest>>,
    ) -> Result<Response<Self::MakeMatchesStream>, Status> {
        use make_matches_request::RequestType;
        let clock = Arc::clone(&self.clock);
        let mut inbound = request.into_inner();
        Ok(Response::new(deferred(async move {
            let first = inbound.message().await?;
            let Some(RequestType::Parameters(params)) = first.and_then(|m| m.request_type) else {
                return Err(Status::invalid_argument(
                    "the first MakeMatches message must be the parameters",
                ));
            };
            let rules = parse_rules(params.rules.as_ref())?;
            let mut tickets = Vec::new();
            let mut pool = None;
            while let Some(message) = inbound.message().await? {
                match message.request_type {
                    Some(RequestType::Ticket(t)) => {
                        same_pool(&mut pool, &t)?;
                        tickets.push(t);
                    }
                    Some(RequestType::Parameters(_)) => {
                        return Err(Status::invalid_argument(
                            "parameters were sent twice on one MakeMatches stream",
                        ));
                    }
                    None => {
                        return Err(Status::invalid_argument(
                            "a MakeMatches message carries neither parameters nor a ticket",
                        ));
                    }
                }
            }
            let tick_id = params.tick_id;
            let now = clock.now();
            let received = tickets.len();
            let tick = tokio::task::spawn_blocking(move || make_matches(&tickets, &rules, now))
                .await
                .map_err(|e| Status::internal(format!("matching failed: {e}")))?;
            log_refused("MakeMatches", &tick.invalid);
            tracing::debug!(
                tick_id,
                received,
                matches = tick.matches.len(),
                invalid = tick.invalid.len(),
                timed_out = tick.timed_out,
                "MakeMatches"
            );
            Ok(tick
                .matches
                .into_iter()
                .map(|m| MatchResponse { r#match: Some(m) })
                .collect())
        })))
    }

    type BackfillMatchesStream = ResultStream<BackfillResponse>;

    async fn backfill_matches(
        &self,
        request: Request<Streaming<BackfillMakeMatchesRequest>>,
    ) -> Result<Response<Self::BackfillMatchesStream>, Status> {
        use backfill_make_matches_request::RequestType;
        let clock = Arc::clone(&self.clock);
        let mut inbound = request.into_inner();
        Ok(Response::new(deferred(async move {
            let first = inbound.message().await?;
            let Some(RequestType::Parameters(params)) = first.and_then(|m| m.request_type) else {
                return Err(Status::invalid_argument(
                    "the first BackfillMatches message must be the parameters",
                ));
            };
            let rules = parse_rules(params.rules.as_ref())?;
            let mut backfills = Vec::new();
            let mut tickets = Vec::new();
            let mut pool = None;
            while let Some(message) = inbound.message().await? {
                match message.request_type {
                    Some(RequestType::BackfillTicket(b)) => backfills.push(b),
                    Some(RequestType::Ticket(t)) => {
                        same_pool(&mut pool, &t)?;
                        tickets.push(t);
                    }
                    Some(RequestType::Parameters(_)) => {
                        return Err(Status::invalid_argument(
                            "parameters were sent twice on one BackfillMatches stream",
                        ));
                    }
                    None => {
                        return Err(Status::invalid_argument(
                            "a BackfillMatches message carries neither parameters, a backfill \
                             ticket nor a ticket",
                        ));
                    }
                }
            }
            let now = clock.now();
            let tick = tokio::task::spawn_blocking(move || {
                backfill_matches(&backfills, &tickets, &rules, now)
            })
            .await
            .map_err(|e| Status::internal(format!("backfill failed: {e}")))?;
            log_refused("BackfillMatches", &tick.invalid);
            Ok(tick
                .proposals
                .into_iter()
                .map(|p| BackfillResponse {
                    backfill_proposal: Some(p),
                })
                .collect())
        })))
    }
}
