//! The fault model: what a fault is, as data, and how a fault file or API body becomes one.
//!
//! A [`Fault`] is a [`FaultKind`] (serde-tagged by `kind`, each kind with its own fields) plus
//! what every fault has: an `id`, a [`Target`], a `probability` and an optional [`Window`].
//! Parsing goes through [`parse_fault`], which reports the first problem as a [`FieldError`]
//! naming the field (`faults[2].delay.p99_ms`, `probability`, `target.service`) — serde's own
//! message plus the path, then the semantic checks serde cannot express (ranges, which target
//! fields a kind understands, mutually exclusive fields).
//!
//! Invariant: this module is pure — no clock, no RNG state, no store. Sampling takes the RNG
//! as an argument so the engine decides which seeded stream a draw comes from.
//!
//! One module per concern: [`error`] (the field-naming error), [`target`] (services and the
//! target filter), [`route`] (route patterns and globs), [`window`], [`distribution`] (delays
//! and their sampling), [`kinds`] (the kinds' fields), [`spelling`] (duration keys: the one
//! grammar and the deprecated unit-suffixed keys), [`validate`] (checks beyond serde),
//! [`fault`] (one fault and its parser), [`file`] (a fault file or set).

pub mod distribution;
pub mod error;
pub mod fault;
pub mod file;
pub mod kinds;
pub mod route;
pub mod spelling;
pub mod target;
pub mod validate;
pub mod window;

pub use distribution::{Distribution, MAX_DELAY_MS, Z_99, standard_normal};
pub use error::FieldError;
pub use fault::{Fault, parse_fault, parse_fault_noting};
pub use file::FaultFile;
pub use kinds::{
    ClaimOutcome, DEFAULT_CLOSE_CODE, DelayNotification, Disconnect, DropNotification,
    DuplicateNotification, ErrorFault, FaultKind, Hang, HangThen, JwksRotation, KINDS, Latency,
    Outage, ReadyDelay, RegionCapacity, RevokeUser, Scope, TicketExpiry, TokenExpiry,
};
pub use route::{glob, route_matches};
pub use target::{Service, Target};
pub use window::Window;

/// The latest a window may start or end, and the longest token lifetime a fault may set: ten
/// years, far beyond any run, and far from the limits of clocks and timestamps.
pub const MAX_SECONDS: u64 = 315_360_000;

#[cfg(test)]
mod tests;
