//! `matchmaker`: a matchmaker for AccelByte Gaming Services that scales out as replicas sharing
//! one Redis — the tutorial's Lambda matchmaker done properly (no duplicate matches, no stale
//! queue entries, no polling per request).
//!
//! A tour, from the inside out:
//! - [`ticket`]: the domain types — a [`Ticket`] is one party's request in one game mode, with
//!   its original enqueue time, attributes (`mmr`, region) and [`TicketState`]; plus match
//!   proposals, claimed matches and outcomes.
//! - [`config`]: the rules of each game mode (teams × team size or free-for-all, skill window,
//!   region preference, timeout, attempts); the default is the tutorial's 1v1.
//! - [`matching`]: pure functions from queued tickets + rules + time to proposed matches.
//! - [`store`]: the [`Store`] trait — enqueue with one live ticket per player, atomic claims under
//!   leases, completion, requeue with attempts, reclaiming expired leases — implemented in memory
//!   ([`MemoryStore`]) and on Redis with Lua scripts ([`RedisStore`]).
//! - [`engine`]: the running part — per-mode matching tasks woken by enqueues (plus a tick for
//!   widening), a lease reaper, and a task per claimed match that hands it to a [`MatchSink`]
//!   (the pipeline: sessions, servers, notifications) and records the outcome.
//! - [`clock`]: wall-clock milliseconds and the injected [`Clock`].
//!
//! Invariants: correctness across replicas comes only from the store's atomic operations, never
//! from a lock in a process; domain types are not wire types (the HTTP layer converts at the
//! edge); nothing below the engine reads the time or the environment.

pub mod clock;
pub mod config;
pub mod engine;
pub mod matching;
pub mod store;
pub mod ticket;

pub use clock::{Clock, SystemClock, TokioClock, UnixMillis};
pub use config::{GameMode, Modes};
pub use engine::{Engine, EngineConfig, MatchSink, SubmitError, TicketRequest};
pub use store::{MemoryStore, RedisConfig, RedisStore, Store, StoreError};
pub use ticket::{
    ClaimedMatch, MatchOutcome, Party, PlayerId, Ticket, TicketId, TicketOutcome, TicketState,
};
