//! `matchmaker`: a matchmaker for AccelByte Gaming Services that scales out as replicas sharing
//! one Redis — the tutorial's Lambda matchmaker done properly (one pipeline per match instead of
//! per player, no duplicate matches, no stale queue entries, no polling per request), and
//! compatible with the tutorial's client.
//!
//! Library first: [`router`] builds the axum `Router`, [`serve`] runs it on a bound listener
//! until a shutdown future resolves, and [`spawn`] starts a ready instance on 127.0.0.1:0 (tests,
//! benches and the simulator's embedded mode use it). The `matchmaker serve` binary only parses
//! flags, environment and file into a [`Config`], binds, installs signal handlers and calls
//! [`serve`].
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use matchmaker::Config;
//! let ags = accelbyte::client::Config::new(
//!     "http://127.0.0.1:8080".parse()?,
//!     "matchbench-game",
//!     Some("matchbench-game-secret".to_owned()),
//!     "matchbench",
//! );
//! let handle = matchmaker::spawn(Config::new(ags)).await?; // in-memory store, tutorial 1v1
//! println!("POST {}/matchmaking", handle.base_url());
//! # Ok(()) }
//! ```
//!
//! A tour, from the edge inwards:
//! - [`http`]: the routes — `POST /matchmaking` (tutorial-compatible, held until matched),
//!   the ticket API `POST/GET/DELETE /v1/tickets`, `/healthz`, `/readyz`, `/metrics` — and the
//!   AGS-shaped errors.
//! - [`auth`]: local validation of players' tokens (cached JWKS with rate-limited refetch on an
//!   unknown key, revocation list and bloom filter, `exp`/`nbf` with bounded skew, RS256 only,
//!   namespace and the `NAMESPACE:{ns}:MATCHMAKING` permission from the token or its roles).
//! - [`waiters`]: how a held request learns its ticket's outcome from whichever replica
//!   finished it (store announcements over Redis pub/sub, plus a slow re-read).
//! - [`pipeline`]: what happens to a claimed match — session browser, DSMC register and claim
//!   (retried with backoff and jitter, failures classified), players, joinable check — and the
//!   `searching` / `found <ip> <port>` / `failed` notifications.
//! - [`ags`]: the AGS calls, as the game client with a token kept fresh.
//! - [`engine`]: per-mode matching tasks woken by enqueues (plus a tick for widening), a lease
//!   reaper, a task per claimed match that runs the [`MatchSink`] (the pipeline).
//! - [`extend`]: the same rules served as an AGS Extend match function over gRPC (tonic):
//!   `GetStatCodes`, `ValidateTicket`, `EnrichTicket`, `MakeMatches`, `BackfillMatches`.
//! - [`matching`]: pure functions from queued tickets + rules + time to proposed matches.
//! - [`store`]: the [`Store`] trait — one live ticket per player, atomic claims under leases,
//!   requeue with attempts, announcements — in memory ([`MemoryStore`]) and on Redis with Lua
//!   scripts ([`RedisStore`]).
//! - [`config`]: [`Config`] and its layers (flags > environment > TOML file), game modes.
//! - [`metrics`]: counters and histograms, Prometheus text.
//! - [`ticket`], [`clock`]: the domain types and wall-clock time.
//!
//! Invariants: correctness across replicas comes only from the store's atomic operations, never
//! from a lock in a process; a player hears `found` only for a match the store recorded, so at
//! most once per match; domain types are not wire types (the HTTP layer converts at the edge);
//! nothing below the binary reads the environment.
//!
//! Measured with `cargo bench -p matchmaker --bench throughput` (2 cores shared by fakes at zero
//! latency, the matchmaker, Redis and the load generator; method and ranges in
//! `docs/benchmarks.md`, section "matchmaker"):
//!
//! | store | mode | matches/s | added latency p50 / p99 (last ticket → every `found`) |
//! |---|---|---|---|
//! | memory | 1v1 | ~1,270 | 1.2 ms / 2.1 ms |
//! | memory | 5v5 | ~355 | 2.3 ms / 4.0 ms |
//! | redis | 1v1 | ~1,200 | 2.5 ms / 3.2 ms |
//! | redis | 5v5 | ~325 | 3.5 ms / 4.7 ms |

pub mod ags;
pub mod app;
pub mod auth;
pub mod clock;
pub mod config;
pub mod engine;
pub mod extend;
pub mod http;
pub mod matching;
pub mod metrics;
pub mod pipeline;
pub mod store;
pub mod ticket;
pub mod waiters;

pub use app::{AppState, Handle, StartError, bind, serve, spawn, start};
pub use clock::{Clock, SystemClock, TokioClock, UnixMillis};
pub use config::{Config, FileConfig, GameMode, LoadError, Modes, Overrides};
pub use engine::{Engine, EngineConfig, MatchSink, SubmitError, TicketRequest};
pub use http::router;
pub use store::{AnyStore, MemoryStore, RedisConfig, RedisStore, Store, StoreError, StoreEvent};
pub use ticket::{
    ClaimedMatch, MatchOutcome, Party, PlayerId, Ticket, TicketId, TicketOutcome, TicketState,
};
