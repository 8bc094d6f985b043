//! `accelbyte`: the AccelByte Gaming Services wire contract, as matchbench speaks it.
//!
//! A tour:
//! - [`models`]: serde types for every request, response and error body the emulator (`fakes`),
//!   the `matchmaker` and the `sim` exchange; golden fixtures in `tests/fixtures` pin them.
//! - [`frame`]: the lobby WebSocket's `key: value` text frame codec.
//! - [`bloom`]: the revocation list's bloom filter (MurmurHash3 x64 128, AccelByte's index rule).
//! - [`permission`]: AGS permission matching (resource segments, `*`, action bitmask).
//! - [`client`]: the async client: IAM login flows and calls, lobby WebSocket and notifications,
//!   Session Browser and DSMC, over one pooled HTTP client.
//! - `extend` (feature `match-function`): the AGS Extend match-function gRPC contract, shared by
//!   the matchmaker (which serves it) and fakes' match2 (which calls it).
//!
//! Invariant: this crate knows HTTP and WebSocket clients but no server framework, no Redis and
//! no terminal UI (the `match-function` feature adds tonic's generated gRPC code); it is the vocabulary the other crates share.

pub mod bloom;
pub mod client;
#[cfg(feature = "match-function")]
pub mod extend;
pub mod frame;
pub mod models;
pub mod permission;
