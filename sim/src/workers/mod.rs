//! Runs that take more than one process: `sim run` starts worker processes (its own binary,
//! re-executed as the hidden `sim worker` subcommand), each running the ordinary engine for
//! shard `i/n` of the arrivals against the same target, and merges what they stream back into
//! one live view and one report.
//!
//! Why processes: every virtual player holds a lobby socket and HTTP connections, and one
//! process may open only so many files. Splitting the players over processes multiplies the
//! room; the merge keeps the result exactly what one process would have measured (histograms
//! add bucket for bucket).
//!
//! - [`count`]: how many workers a plan needs under the open-files limit.
//! - [`wire`]: the messages on the pipes (newline-delimited JSON from worker to parent, command
//!   lines from parent to worker).
//! - [`live`]: the parent's merge of the workers' snapshots into one [`MetricsSnapshot`].
//! - [`supervisor`]: the parent side: start, watch, command, collect, and fail the run with a
//!   verdict naming the worker that died or went quiet.
//! - [`child`]: the worker side: run the engine, stream snapshots, obey commands, die with the
//!   parent.
//!
//! Must not know how the merged figures are displayed or where reports are written.
//!
//! [`MetricsSnapshot`]: crate::metrics::MetricsSnapshot

pub mod child;
pub mod count;
pub mod live;
pub mod supervisor;
pub mod wire;
