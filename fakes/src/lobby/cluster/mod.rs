//! Lobby shards: lobby WebSockets spread over several processes behind the one base URL.
//!
//! One process holds at most ~20,000 open files, and a launch-scale test needs 100,000 lobby
//! sockets. With `fakes serve --lobby-shards N --redis URL` the process that listens on the
//! base URL (the *primary*) keeps every service and all state — IAM, the lobby [`Hub`](super::hub::Hub) with
//! its backlogs and its one-connection-per-user rule, session browser, DSMC, faults, stats —
//! and only the *sockets* of the lobby live in N shard processes it starts:
//!
//! 1. The primary's accept loop peeks at each new connection's request head
//!    ([`classify`]). A `GET /lobby/` whose bearer token the primary's IAM accepts as a user
//!    token is handed, descriptor and all, to the least-loaded live shard over a Unix socket
//!    ([`handoff`]); the primary closes its copy. Everything else, including lobby upgrades
//!    with bad tokens (so their errors stay exactly the single-process ones), is served by
//!    the primary as usual.
//! 2. The shard completes the WebSocket handshake, greets the client (`connectNotif`), and
//!    answers its frames exactly as a single-process fakes does (the same socket task,
//!    [`super::ws`]).
//! 3. Between them runs a bus on Redis pub/sub (an existing engine, not a protocol of ours):
//!    the shard announces `opened`/`closed` on the primary's channel; the primary registers
//!    the connection in its hub and relays every frame the hub sends it, and every close
//!    it asks for (4041 on a second session, 4020 on revocation, injected disconnects), on the
//!    shard's channel. So delivery, queueing for offline users, ordering and fault injection
//!    all still happen in the one send path of the one hub: each notification reaches the one
//!    socket of its user once.
//! 4. Shards publish their own counters (frames received, errors answered, frames dropped
//!    for a client that stopped reading) every [`STATS_EVERY`]; `/_fakes/stats` adds them.
//!
//! A shard that dies takes its sockets with it (clients see the connection drop, as with a
//! lobby node failing); the primary notices at once (its handoff link closes), unregisters
//! those connections, and sends new ones to the other shards — or serves them itself when
//! none is left.

pub mod classify;
pub mod handoff;
pub mod primary;
pub mod shard;

use std::path::PathBuf;
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

pub use primary::Primary;
pub use shard::{ShardArgs, run_shard};

use super::hub::LobbyStats;

/// The bus connection waits for Redis as long as it takes. The client's default (answer within
/// 500 ms or give up) turns a busy machine into lost frames: a `PUBLISH` that timed out may or
/// may not have been delivered, and resending could deliver twice. On loopback a late answer is
/// still an answer; a dead Redis fails the connection instead.
pub fn bus_connection_config() -> redis::AsyncConnectionConfig {
    redis::AsyncConnectionConfig::new().set_response_timeout(None)
}

/// How often a shard publishes its counters.
pub const STATS_EVERY: Duration = Duration::from_millis(500);

/// How to run lobby shards.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Shard processes to start.
    pub shards: usize,
    /// The Redis the bus runs on.
    pub redis_url: String,
    /// The program and leading arguments that start one shard; the shard's own arguments
    /// ([`ShardArgs`]) follow. `fakes lobby-shard` by default; an embedding binary passes its
    /// own subcommand.
    pub command: ShardCommand,
}

/// A program and its leading arguments.
#[derive(Debug, Clone)]
pub struct ShardCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
}

/// Primary → shard, on the shard's channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Down {
    /// Write this text frame on connection `c`.
    Frame { c: u64, text: String },
    /// Close connection `c` with this code and reason.
    Close { c: u64, code: u16, reason: String },
}

/// Shard → primary, on the primary's channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Up {
    /// Connection `c` finished its WebSocket handshake and was greeted.
    Opened { c: u64 },
    /// Connection `c` is gone (or never became a WebSocket).
    Closed { c: u64 },
    /// A shard's counters, totals since it started.
    Stats { shard: usize, stats: ShardStats },
}

/// What a shard counts itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardStats {
    /// Sockets open in the shard now.
    pub sockets_open: u64,
    pub frames_received: u64,
    pub error_frames_sent: u64,
    /// Frames the shard could not queue for a client that stopped reading.
    pub frames_dropped: u64,
}

/// Channel names of one cluster (a random prefix, so clusters can share a Redis).
#[derive(Debug, Clone)]
pub struct Channels {
    prefix: String,
}

impl Channels {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Where shard `index` listens.
    pub fn down(&self, index: usize) -> String {
        format!("{}:down:{index}", self.prefix)
    }

    /// Where the primary listens.
    pub fn up(&self) -> String {
        format!("{}:up", self.prefix)
    }
}

/// The latest counters of every shard, kept by the primary for `/_fakes/stats`. Empty when no
/// shards run.
#[derive(Debug, Default)]
pub struct ShardBoard {
    shards: Mutex<Vec<ShardStats>>,
}

impl ShardBoard {
    pub fn record(&self, index: usize, stats: ShardStats) {
        let mut shards = self.shards.lock();
        if shards.len() <= index {
            shards.resize(index + 1, ShardStats::default());
        }
        shards[index] = stats;
    }

    /// Every shard's latest counters, by index.
    pub fn snapshot(&self) -> Vec<ShardStats> {
        self.shards.lock().clone()
    }

    /// Adds the shards' own counters to the hub's.
    pub fn add_to(&self, lobby: &mut LobbyStats) {
        for shard in self.shards.lock().iter() {
            lobby.frames_received += shard.frames_received;
            lobby.error_frames_sent += shard.error_frames_sent;
            lobby.notifications_dropped += shard.frames_dropped;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_messages_are_small_tagged_json() {
        let down = Down::Frame {
            c: 7,
            text: "type: messageNotif\nid: 1".to_owned(),
        };
        let json = serde_json::to_string(&down).expect("json");
        assert_eq!(
            json,
            r#"{"t":"frame","c":7,"text":"type: messageNotif\nid: 1"}"#
        );
        assert_eq!(serde_json::from_str::<Down>(&json).expect("back"), down);
        let up: Up = serde_json::from_str(r#"{"t":"opened","c":3}"#).expect("up");
        assert_eq!(up, Up::Opened { c: 3 });
    }

    #[test]
    fn the_board_adds_shard_counters() {
        let board = ShardBoard::default();
        board.record(
            1,
            ShardStats {
                sockets_open: 2,
                frames_received: 5,
                error_frames_sent: 1,
                frames_dropped: 3,
            },
        );
        let mut lobby = LobbyStats {
            frames_received: 10,
            notifications_dropped: 1,
            ..LobbyStats::default()
        };
        board.add_to(&mut lobby);
        assert_eq!(lobby.frames_received, 15);
        assert_eq!(lobby.error_frames_sent, 1);
        assert_eq!(lobby.notifications_dropped, 4);
        assert_eq!(board.snapshot().len(), 2);
    }
}
