//! Live figures across machines: shards of one run (`sim run --shard I/N --publish
//! redis://HOST:PORT/RUN-ID`), wherever they run, publish their snapshots to a Redis stream,
//! and `sim watch SCENARIO redis://HOST:PORT/RUN-ID` shows the merged dashboard or progress
//! lines while they run and writes the merged report when every shard has finished.
//!
//! Why Redis streams: the stack already runs Redis, a stream keeps the recent snapshots for a
//! watcher that starts late or reconnects (pub/sub would drop them), and `XADD`/`XREAD` is all
//! the coordination there is — no protocol of our own. The messages are the worker pipe's
//! figures ([`crate::workers::wire`]): snapshots with exact, serialized HDR histograms, merged
//! by the same [`crate::workers::live::LiveMerge`] as a local multi-process run, and at the end
//! each shard's whole report, merged with [`crate::report::RunReport::merge`] exactly as
//! `sim merge` does.

pub mod channel;
pub mod publish;
pub mod watch;

pub use channel::{RunChannel, ShardMessage};
