//! `fakes`: an offline AccelByte Gaming Services — IAM, Lobby, Session Browser, DSMC, Session v2
//! and Matchmaking v2 on one base URL, wire-compatible with the official SDKs.
//!
//! A tour:
//! - [`app`] builds the axum `Router` from per-service routers; [`server`] binds, serves (plain
//!   or TLS) and offers [`server::spawn`] for tests, benches and the sim's embedded mode.
//! - [`state`] holds each service's store: [`iam::store`], [`lobby::hub`],
//!   [`sessionbrowser::store`], [`dsmc::fleet`], [`session::store`], [`match2::store`]; the
//!   match2 loop ([`match2::engine`]) matches tickets into game sessions whose servers come from
//!   the fleet ([`session::ds`]).
//! - [`auth`] checks Basic clients and Bearer tokens; [`error`] renders AGS error bodies;
//!   [`extract`] turns bad requests into those bodies.
//! - [`seed`] is the TOML that says which namespaces, clients, roles and users exist.
//! - [`faults`] injects seeded, scriptable faults (an HTTP layer, the lobby's send path, the
//!   fleet's and IAM's hooks); [`stats`] counts requests and renders `/_fakes/stats` and
//!   `/metrics`; [`control`] serves `/_fakes/*`.
//!
//! Invariant: wire types come from the `accelbyte` crate; nothing here invents a field name.

pub mod app;
pub mod auth;
pub mod control;
pub mod dsmc;
pub mod durable;
pub mod error;
pub mod extract;
pub mod faults;
pub mod iam;
pub mod keys;
pub mod lobby;
pub mod match2;
pub mod seed;
pub mod server;
pub mod session;
pub mod sessionbrowser;
pub mod state;
pub mod stats;
pub mod tls;

pub use app::router;
pub use server::{Handle, spawn};
pub use state::{AppState, FakesConfig};
