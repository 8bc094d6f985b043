//! `sim`: thousands of virtual players against a matchmaker, from scenario files, with
//! thresholds, reports and an invariant check.
//!
//! A tour, in the order a run flows:
//! - [`scenario`]: TOML scenario files → a validated [`scenario::Plan`], or every problem with
//!   file, line and field. Pure.
//! - [`target`]: the system under test — an embedded fakes + matchmaker in this process (through
//!   the seam [`target::start_embedded_matchmaker`]) or URLs of running ones; claim counters.
//! - [`engine`]: schedules arrivals (open: constant, ramp, Poisson, spike; closed: N players),
//!   applies the fault timeline, publishes [`metrics::MetricsSnapshot`]s on a `watch` channel
//!   and takes [`engine::EngineCommand`]s on an `mpsc` channel.
//! - [`player`]: one party's search as a small state machine: login, lobby socket, matchmaking
//!   request, `found` — latency from the scheduled arrival (no coordinated omission);
//!   [`token`]: a player's access token, held decoded between searches.
//! - [`metrics`]: per-worker HDR histograms and counters merged on a tick; per-second series.
//! - [`outcome`]: the vocabulary of results; [`invariants`]: the check after every run;
//!   [`thresholds`]: pass/fail limits.
//! - [`report`]: summary table, JSON (mergeable histograms), JUnit XML, HTML;
//!   [`compare`]: two reports side by side with regression limits.
//! - [`exporter`]: the live figures in the Prometheus text format (`--metrics-addr`).
//! - [`dashboard`]: the live terminal view (reads snapshots, sends commands).
//! - [`limits`]: the open-files limit and how many players it allows.
//! - [`sampler`]: every process's CPU, open files and memory during the run; [`sut`]: the
//!   servers' refusal counters; [`verdict`]: who refused or saturated, and whether the figures
//!   can be trusted.
//!
//! - [`remote`]: shards on other machines publish their snapshots to Redis; `sim watch` merges them live.
//! - [`capacity`]: `sim capacity`, the knee search over load.
//!
//! Invariants: players record into their worker's shard, never one message per request to a
//! central task; the engine knows no output format and the dashboard no engine internals;
//! nothing below `main` reads the process environment.

pub mod capacity;
pub mod compare;
pub mod dashboard;
pub mod engine;
pub mod exporter;
pub mod flows;
pub mod invariants;
pub mod limits;
pub mod metrics;
pub mod outcome;
pub mod player;
pub mod process;
pub mod remote;
pub mod report;
pub mod sampler;
pub mod scenario;
pub mod stack;
pub mod sut;
pub mod target;
pub mod thresholds;
pub mod token;
pub mod verdict;
pub mod workers;
