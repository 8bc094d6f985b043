//! Where a run's shards publish: a Redis URL whose path names the run, and the messages they
//! publish there.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::metrics::MetricsSnapshot;
use crate::report::RunReport;

/// Longest a stream grows (roughly: trimmed with `MAXLEN ~`); a watcher needs only recent
/// snapshots, since each carries the shard's whole histograms so far.
pub const STREAM_MAX_LEN: usize = 4096;

/// A run's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunChannel {
    /// The Redis server (database 0).
    pub redis: Url,
    pub run_id: String,
}

impl RunChannel {
    /// `redis://HOST:PORT/RUN-ID` (or `rediss://`); the run id is letters, digits, `-`, `_`
    /// and `.`.
    pub fn parse(text: &str) -> Result<RunChannel, String> {
        let url = Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
        if !matches!(url.scheme(), "redis" | "rediss") {
            return Err(format!(
                "{text:?}: expected redis://HOST:PORT/RUN-ID, not a {} URL",
                url.scheme()
            ));
        }
        let run_id = url.path().trim_start_matches('/').to_owned();
        if run_id.is_empty()
            || !run_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(format!(
                "{text:?}: the path must name the run (letters, digits, '-', '_', '.'), e.g. redis://redis:6379/steady-1v1-42"
            ));
        }
        let mut redis = url.clone();
        redis.set_path("");
        Ok(RunChannel { redis, run_id })
    }

    /// The stream's key.
    pub fn key(&self) -> String {
        format!("matchbench:run:{}", self.run_id)
    }

    pub fn client(&self) -> redis::RedisResult<redis::Client> {
        redis::Client::open(self.redis.as_str())
    }
}

/// How long a Redis call may take before it counts as failed (a blocking read asks for less).
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The connection settings both ends use.
pub fn connection_config() -> redis::AsyncConnectionConfig {
    redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(RESPONSE_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
}

/// One stream entry (field `m`, JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ShardMessage {
    /// Shard `shard` of `count`: its figures so far, with exact histograms.
    Snapshot {
        shard: u32,
        count: u32,
        snapshot: Box<MetricsSnapshot>,
    },
    /// Shard `shard` of `count` finished: its whole report.
    Finished {
        shard: u32,
        count: u32,
        report: Box<RunReport>,
    },
    /// Shard `shard` of `count` could not run.
    Failed {
        shard: u32,
        count: u32,
        message: String,
    },
}

impl ShardMessage {
    pub fn shard(&self) -> (u32, u32) {
        match self {
            ShardMessage::Snapshot { shard, count, .. }
            | ShardMessage::Finished { shard, count, .. }
            | ShardMessage::Failed { shard, count, .. } => (*shard, *count),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            let (shard, count) = self.shard();
            format!(
                r#"{{"kind":"failed","shard":{shard},"count":{count},"message":"cannot encode: {e}"}}"#
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_url_names_server_and_run() {
        let c = RunChannel::parse("redis://10.0.0.5:6379/steady-1v1.42").expect("valid");
        assert_eq!(c.redis.as_str(), "redis://10.0.0.5:6379");
        assert_eq!(c.run_id, "steady-1v1.42");
        assert_eq!(c.key(), "matchbench:run:steady-1v1.42");
        assert!(RunChannel::parse("redis://host:6379").is_err());
        assert!(RunChannel::parse("redis://host:6379/a/b").is_err());
        assert!(RunChannel::parse("http://host/run").is_err());
    }
}
