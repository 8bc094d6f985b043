//! The matchmaker as an AGS Extend match function: its rules (teams, parties, skill widening,
//! regions, timeouts) served over AccelByte's `MatchFunction` gRPC interface, so AGS
//! Matchmaking v2 — or fakes' match2 — can call it instead of a built-in matcher for a pool
//! configured to use it.
//!
//! - [`proto`]: the generated types and service stubs, from `accelbyte::extend`
//!   (`accelbyte/proto/matchFunction.proto`, compiled by protox: no `protoc` needed).
//! - [`rules`]: the pool's ruleset JSON → [`crate::config::GameMode`] and the function's extras.
//! - [`tickets`]: AGS tickets → the matchmaker's tickets (party, skill, region, enqueue time).
//! - [`matches`]: `MakeMatches` — the matchmaker's planner ([`crate::matching::plan`]), shaped
//!   as AGS matches.
//! - [`backfill`]: `BackfillMatches` — open slots of running sessions filled by the same rules.
//! - [`service`]: the tonic service tying them to the five RPCs.
//! - [`auth`]: the callers' bearer tokens, checked against IAM before a call reaches the service.
//!
//! [`serve_grpc`] serves it (plus `grpc.health.v1.Health`) on a listener until a shutdown future
//! resolves, behind [`auth::RequireToken`]; [`spawn_grpc`] starts one on 127.0.0.1:0 without
//! token checks for tests, [`spawn_grpc_with`] with them. The function is stateless: every
//! call carries its rules and tickets, so replicas need nothing shared. AGS Extend expects the
//! container to listen on [`EXTEND_GRPC_PORT`].

pub mod auth;
pub mod backfill;
pub mod matches;
#[allow(missing_docs)]
pub mod proto;
pub mod rules;
pub mod service;
pub mod tickets;

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

pub use auth::{CallerCheck, RequireToken};
pub use rules::{PoolRules, RulesError};
pub use service::{INVALID_REASON_KEY, MatchFunctionService};

/// The port AGS Extend sends a match function's gRPC calls to (as in AccelByte's samples).
pub const EXTEND_GRPC_PORT: u16 = 6565;

/// Serves the match function and the gRPC health service on `listener` until `shutdown`
/// resolves, then lets calls in progress finish. `callers` checks each call's token (or, when
/// [`RequireToken::off`], none).
pub async fn serve_grpc(
    listener: TcpListener,
    service: MatchFunctionService,
    callers: RequireToken,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<proto::match_function_server::MatchFunctionServer<MatchFunctionService>>()
        .await;
    Server::builder()
        .layer(callers)
        .add_service(health_service)
        .add_service(proto::match_function_server::MatchFunctionServer::new(
            service,
        ))
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
}

/// A running match function server (see [`serving::lifecycle`]); dropping it stops serving.
#[derive(Debug)]
pub struct GrpcHandle {
    pub addr: SocketAddr,
    server: serving::Handle,
}

impl GrpcHandle {
    /// `http://127.0.0.1:<port>`, for a tonic client's `connect`.
    pub fn url(&self) -> String {
        self.server.url("http")
    }

    /// Stops serving and waits until the server has finished; an error when it failed or
    /// panicked.
    pub async fn shutdown(self) -> Result<(), serving::ShutdownError> {
        self.server.shutdown().await
    }
}

/// Starts `service` on 127.0.0.1 with an ephemeral port, taking calls without a token; it
/// accepts calls when this returns.
pub async fn spawn_grpc(service: MatchFunctionService) -> std::io::Result<GrpcHandle> {
    spawn_grpc_with(service, RequireToken::off()).await
}

/// [`spawn_grpc`] with the callers' tokens checked by `callers`.
pub async fn spawn_grpc_with(
    service: MatchFunctionService,
    callers: RequireToken,
) -> std::io::Result<GrpcHandle> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    let server = serving::Server::new(serving::Tasks::new())
        .start(listener, |listener, stop| {
            serve_grpc(listener, service, callers, stop.cancelled_owned())
        })?;
    Ok(GrpcHandle { addr, server })
}
