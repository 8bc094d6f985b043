//! The HTTP fault layer: middleware in front of every service route (not `/_fakes/*`,
//! `/metrics` or `/healthz`) that counts each request and applies the HTTP faults.
//!
//! Per request, in the fault set's order, every active fault whose target matches draws from
//! the HTTP stream: latencies that fire add up; the first error, outage or hang that fires
//! decides the answer and ends the evaluation. Then the layer waits out the latency, and
//! answers the error in the AGS shape of the route (see [`error_shape`]), or holds the request
//! (a hang) before failing or handling it, or hands it to the route. Responses that a fault
//! touched carry an `x-fakes-fault` header with the faults' ids.
//!
//! The layer also samples the ready delay for DSMC registers (see [`super::dsmc`]) and records
//! every request in [`crate::stats::RequestStats`] by service, route pattern, method and status.

use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

use super::{FaultKind, Faults, HangThen, Service, Stream, roll};
use crate::error::{ApiError, ErrorShape, code_for};
use crate::state::AppState;

/// Names the faults that acted on a response.
pub const FAULT_HEADER: HeaderName = HeaderName::from_static("x-fakes-fault");

/// The route label of requests no route matched.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// An error a fault answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: StatusCode,
    pub code: Option<i64>,
    pub message: String,
}

impl Failure {
    fn new(status: u16, code: Option<i64>, message: String) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        Self {
            status,
            code,
            message,
        }
    }

    /// The AGS error body in `shape`.
    pub fn into_response(self, shape: ErrorShape) -> Response {
        let code = self.code.unwrap_or_else(|| code_for(self.status));
        ApiError::new(self.status, code, self.message)
            .with_shape(shape)
            .into_response()
    }
}

/// What the HTTP faults decided for one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum HttpAction {
    #[default]
    Pass,
    Fail(Failure),
    /// Hold for `hold`, then fail (`Some`) or handle the request (`None`).
    Hang {
        hold: Duration,
        fail: Option<Failure>,
    },
}

/// The decisions for one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpPlan {
    /// Added latency, before anything else.
    pub delay: Duration,
    pub action: HttpAction,
    /// Ids of the faults that fired.
    pub fired: Vec<String>,
}

impl Faults {
    /// Decides the HTTP faults for one request (see the module docs). Draws nothing when no
    /// active fault matches.
    pub fn plan_http(&self, service: Service, method: &str, path: &str) -> HttpPlan {
        let snapshot = self.snapshot();
        let mut plan = HttpPlan::default();
        if snapshot.http.is_empty() {
            return plan;
        }
        let now = Instant::now();
        let mut rng = None;
        for entry in &snapshot.http {
            let fault = &entry.fault;
            if !entry.active(now) || !fault.target.matches_http(service, method, path) {
                continue;
            }
            let rng = rng.get_or_insert_with(|| self.stream(Stream::Http));
            if !roll(&mut **rng, fault.probability) {
                continue;
            }
            self.hit(entry);
            plan.fired.push(fault.id.clone());
            match &fault.kind {
                FaultKind::Latency(latency) => {
                    plan.delay = plan.delay.saturating_add(latency.delay.sample(&mut **rng));
                }
                FaultKind::Error(error) => {
                    let message = error
                        .message
                        .clone()
                        .unwrap_or_else(|| format!("injected error ({})", fault.id));
                    plan.action = HttpAction::Fail(Failure::new(error.status, error.code, message));
                    break;
                }
                FaultKind::Outage(outage) => {
                    let message =
                        format!("{service} is unavailable (injected outage {})", fault.id);
                    plan.action = HttpAction::Fail(Failure::new(outage.status, None, message));
                    break;
                }
                FaultKind::Hang(hang) => {
                    let hold = Duration::try_from_secs_f64(hang.hold_s).unwrap_or_default();
                    let fail = (hang.then == HangThen::Fail).then(|| {
                        Failure::new(
                            hang.status,
                            None,
                            format!("request timed out (injected hang {})", fault.id),
                        )
                    });
                    plan.action = HttpAction::Hang { hold, fail };
                    break;
                }
                _ => {}
            }
        }
        plan
    }
}

/// The middleware (install with `axum::middleware::from_fn_with_state`).
pub async fn apply(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let service = Service::of_path(request.uri().path());
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let plan = state
        .faults
        .plan_http(service, method.as_str(), request.uri().path());
    let path = match plan.action {
        HttpAction::Pass => String::new(),
        _ => request.uri().path().to_owned(),
    };
    let respond = |failure: Failure| {
        let shape = error_shape(service, &method, &path, failure.status);
        failure.into_response(shape)
    };
    if !plan.delay.is_zero() {
        tokio::time::sleep(plan.delay).await;
    }
    let mut response = match plan.action {
        HttpAction::Pass => handle(&state, service, &method, route.as_ref(), request, next).await,
        HttpAction::Fail(failure) => respond(failure),
        HttpAction::Hang { hold, fail } => {
            tokio::time::sleep(hold).await;
            match fail {
                Some(failure) => respond(failure),
                None => handle(&state, service, &method, route.as_ref(), request, next).await,
            }
        }
    };
    if !plan.fired.is_empty() {
        if let Ok(value) = HeaderValue::try_from(plan.fired.join(",")) {
            response.headers_mut().insert(FAULT_HEADER, value);
        }
    }
    let route = route.as_ref().map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
    state
        .requests
        .record(service, &method, route, response.status().as_u16());
    response
}

/// Hands the request to its route, sampling a ready delay first for DSMC registers.
async fn handle(
    state: &AppState,
    service: Service,
    method: &Method,
    route: Option<&MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    if service == Service::Dsmc
        && method == Method::POST
        && route.is_some_and(|r| r.as_str() == super::dsmc::REGISTER_ROUTE)
    {
        state.faults.before_register(&state.dsmc);
    }
    next.run(request).await
}

/// The AGS error shape a route answers in, mirroring the shapes the service routers attach
/// (the layer runs before them, so it cannot read their extension):
/// - IAM: OAuth (`error`, `error_description`) on the OAuth endpoints, REST elsewhere;
/// - lobby: `{"ErrorCode", "ErrorMessage"}` on `/notification/...`, REST elsewhere;
/// - session browser: `ErrorResponseV2` on writes (create, update, settings, add, join, remove
///   player) and the admin get, `response.Error` on reads and delete; a create's 500 is
///   `response.Error` (its spec says so);
/// - session v2: `response.Error` with `attributes`, `message`, `name` (the `ErrorResponseV2`
///   shape); match2: `response.Error` in PascalCase (`ErrorCode`, `ErrorMessage`);
/// - DSMC and anything else: REST (`errorCode`, `errorMessage`).
pub fn error_shape(
    service: Service,
    method: &Method,
    path: &str,
    status: StatusCode,
) -> ErrorShape {
    match service {
        Service::Iam if is_oauth_endpoint(path) => ErrorShape::OAuth,
        Service::Lobby if path.starts_with("/notification/") => ErrorShape::LobbyNotification,
        Service::SessionBrowser => {
            let create = *method == Method::POST && path.ends_with("/gamesession");
            let v2 = match *method {
                _ if create && status == StatusCode::INTERNAL_SERVER_ERROR => false,
                Method::POST | Method::PUT => true,
                Method::DELETE => path.contains("/player/"),
                Method::GET => path.starts_with("/sessionbrowser/admin/"),
                _ => false,
            };
            if v2 {
                ErrorShape::SessionBrowserV2
            } else {
                ErrorShape::Rest
            }
        }
        Service::Session => ErrorShape::SessionBrowserV2,
        Service::Match2 => ErrorShape::LobbyNotification,
        _ => ErrorShape::Rest,
    }
}

fn is_oauth_endpoint(path: &str) -> bool {
    matches!(
        path,
        "/iam/v3/oauth/authorize"
            | "/iam/v3/authenticate"
            | "/iam/v3/oauth/token"
            | "/iam/oauth/token"
            | "/iam/v3/oauth/verify"
            | "/iam/oauth/verify"
            | "/iam/v3/oauth/revoke"
            | "/iam/oauth/revoke/token"
            | "/iam/oauth/revoke/user"
    ) || (path.starts_with("/iam/v3/oauth/admin/namespaces/") && path.ends_with("/revoke"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::{Context, FaultFile, model::parse_fault};
    use serde_json::json;

    fn faults(seed: u64, list: serde_json::Value) -> Faults {
        let list = list.as_array().cloned().unwrap_or_default();
        let faults = list
            .into_iter()
            .map(|f| parse_fault(f).expect("valid"))
            .collect();
        Faults::new(
            &FaultFile {
                seed: Some(seed),
                faults,
                ..FaultFile::default()
            },
            Context::default(),
        )
    }

    fn shape_4xx(service: Service, method: &Method, path: &str) -> ErrorShape {
        error_shape(service, method, path, StatusCode::BAD_REQUEST)
    }

    #[test]
    fn a_session_browser_create_answers_500_as_response_error() {
        let sb = "/sessionbrowser/namespaces/n/gamesession";
        let status = StatusCode::INTERNAL_SERVER_ERROR;
        assert_eq!(
            error_shape(Service::SessionBrowser, &Method::POST, sb, status),
            ErrorShape::Rest
        );
        assert_eq!(
            error_shape(
                Service::SessionBrowser,
                &Method::PUT,
                &format!("{sb}/s"),
                status
            ),
            ErrorShape::SessionBrowserV2,
            "update's 500 is ErrorResponseV2"
        );
    }

    #[test]
    fn shapes_follow_the_routes() {
        assert_eq!(
            shape_4xx(Service::Iam, &Method::POST, "/iam/v3/oauth/token"),
            ErrorShape::OAuth
        );
        assert_eq!(
            shape_4xx(Service::Iam, &Method::GET, "/iam/v3/oauth/jwks"),
            ErrorShape::Rest
        );
        assert_eq!(
            shape_4xx(
                Service::Lobby,
                &Method::POST,
                "/notification/namespaces/n/freeform"
            ),
            ErrorShape::LobbyNotification
        );
        assert_eq!(
            shape_4xx(Service::Lobby, &Method::GET, "/lobby/"),
            ErrorShape::Rest
        );
        let sb = "/sessionbrowser/namespaces/n/gamesession";
        assert_eq!(
            shape_4xx(Service::SessionBrowser, &Method::POST, sb),
            ErrorShape::SessionBrowserV2
        );
        assert_eq!(
            shape_4xx(Service::SessionBrowser, &Method::GET, sb),
            ErrorShape::Rest
        );
        assert_eq!(
            shape_4xx(Service::SessionBrowser, &Method::DELETE, &format!("{sb}/s")),
            ErrorShape::Rest
        );
        assert_eq!(
            shape_4xx(
                Service::SessionBrowser,
                &Method::DELETE,
                &format!("{sb}/s/player/u")
            ),
            ErrorShape::SessionBrowserV2
        );
        assert_eq!(
            shape_4xx(Service::Dsmc, &Method::POST, "/dsmcontroller/x"),
            ErrorShape::Rest
        );
    }

    #[test]
    fn latencies_add_up_and_the_first_terminal_fault_wins() {
        let f = faults(
            1,
            json!([
                {"id": "l1", "kind": "latency", "delay": {"dist": "fixed", "ms": 100}},
                {"id": "l2", "kind": "latency", "target": "iam", "delay": {"dist": "fixed", "ms": 50}},
                {"id": "e", "kind": "error", "target": "iam", "status": 502},
                {"id": "o", "kind": "outage"},
            ]),
        );
        let plan = f.plan_http(Service::Iam, "GET", "/iam/v3/oauth/jwks");
        assert_eq!(plan.delay, Duration::from_millis(150));
        assert_eq!(plan.fired, ["l1", "l2", "e"]);
        assert!(matches!(
            plan.action,
            HttpAction::Fail(Failure {
                status: StatusCode::BAD_GATEWAY,
                ..
            })
        ));
        let plan = f.plan_http(Service::Dsmc, "GET", "/dsmcontroller/healthz");
        assert_eq!(plan.fired, ["l1", "o"]);
        assert!(matches!(
            plan.action,
            HttpAction::Fail(Failure {
                status: StatusCode::SERVICE_UNAVAILABLE,
                ..
            })
        ));
    }

    #[test]
    fn targets_select_requests_and_untouched_requests_draw_nothing() {
        let f = faults(
            2,
            json!([{"kind": "error", "status": 500, "target": {"route": "/dsmcontroller/**", "method": "POST"}}]),
        );
        assert_eq!(
            f.plan_http(Service::Iam, "POST", "/iam/v3/oauth/token"),
            HttpPlan::default()
        );
        assert_eq!(
            f.plan_http(Service::Dsmc, "GET", "/dsmcontroller/healthz"),
            HttpPlan::default()
        );
        assert_ne!(
            f.plan_http(
                Service::Dsmc,
                "POST",
                "/dsmcontroller/namespaces/n/sessions"
            ),
            HttpPlan::default()
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_decisions() {
        let set = json!([{"kind": "error", "status": 503, "probability": 0.3}, {"kind": "latency", "probability": 0.5, "delay": {"dist": "uniform", "min_ms": 1, "max_ms": 9}}]);
        let run = |seed| {
            let f = faults(seed, set.clone());
            (0..200)
                .map(|_| f.plan_http(Service::Iam, "GET", "/iam/x"))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
        let failures = run(5)
            .iter()
            .filter(|p| matches!(p.action, HttpAction::Fail(_)))
            .count();
        assert!((30..=90).contains(&failures), "{failures} of 200 at 30%");
    }
}
