//! The watcher's side: reads a run's stream from its beginning, keeps every shard's latest
//! snapshot merged into one live view ([`LiveMerge`]), and once every shard has sent its
//! report, merges them exactly ([`RunReport::merge`], as `sim merge` does).

use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics::MetricsSnapshot;
use crate::report::RunReport;
use crate::scenario::Thresholds;
use crate::workers::live::LiveMerge;

use super::channel::{RunChannel, ShardMessage, connection_config};

/// How long one blocking read waits for news.
const BLOCK: Duration = Duration::from_millis(1000);

/// Why a watch ended without a merged report.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("redis {0}: {1}")]
    Redis(String, redis::RedisError),
    #[error("shard {shard}/{count} failed: {message}")]
    ShardFailed {
        shard: u32,
        count: u32,
        message: String,
    },
    #[error("shards disagree on their count ({0} and {1})")]
    Count(u32, u32),
    #[error("merge: {0}")]
    Merge(String),
    #[error("interrupted with {finished} of {count} shards finished")]
    Interrupted { finished: usize, count: usize },
}

/// What the watcher has seen.
#[derive(Debug)]
pub struct Watcher {
    thresholds: Thresholds,
    count: Option<u32>,
    live: Option<LiveMerge>,
    reports: Vec<Option<RunReport>>,
}

impl Watcher {
    /// `count`: the number of shards, if known before the first message.
    pub fn new(thresholds: Thresholds, count: Option<u32>) -> Watcher {
        let mut w = Watcher {
            thresholds,
            count: None,
            live: None,
            reports: Vec::new(),
        };
        if let Some(n) = count {
            w.size(n);
        }
        w
    }

    fn size(&mut self, count: u32) {
        self.count = Some(count);
        self.live = Some(LiveMerge::new(count as usize, self.thresholds.clone()));
        self.reports = (0..count).map(|_| None).collect();
    }

    /// Takes one message; `Ok(true)` when it changed the live view.
    pub fn take(&mut self, message: ShardMessage) -> Result<bool, WatchError> {
        let (shard, count) = message.shard();
        match self.count {
            None => self.size(count),
            Some(n) if n != count => return Err(WatchError::Count(n, count)),
            Some(_) => {}
        }
        match message {
            ShardMessage::Snapshot { snapshot, .. } => {
                if let Some(live) = &mut self.live {
                    if let Err(e) = live.update(shard as usize, *snapshot) {
                        tracing::warn!("shard {shard}: unreadable snapshot: {e}");
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            ShardMessage::Finished { report, .. } => {
                if let Some(slot) = self.reports.get_mut(shard as usize) {
                    *slot = Some(*report);
                }
                Ok(false)
            }
            ShardMessage::Failed { message, .. } => Err(WatchError::ShardFailed {
                shard,
                count,
                message,
            }),
        }
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        self.live
            .as_ref()
            .map(LiveMerge::snapshot)
            .unwrap_or_default()
    }

    pub fn finished(&self) -> usize {
        self.reports.iter().flatten().count()
    }

    /// Every shard's report, merged, once all are in.
    pub fn merged(&self) -> Option<Result<RunReport, WatchError>> {
        if self.reports.is_empty() || self.reports.iter().any(Option::is_none) {
            return None;
        }
        let reports: Vec<RunReport> = self.reports.iter().flatten().cloned().collect();
        Some(RunReport::merge(&reports).map_err(|e| WatchError::Merge(e.to_string())))
    }
}

/// `XREAD` reply: streams → entries → flat field/value list.
type XReadReply = Option<Vec<(String, Vec<(String, Vec<String>)>)>>;

/// Follows `channel` until every shard has reported (or `shutdown`), publishing the merged
/// live view on `snapshots`; returns the merged report.
pub async fn follow(
    channel: &RunChannel,
    thresholds: Thresholds,
    count: Option<u32>,
    snapshots: watch::Sender<MetricsSnapshot>,
    shutdown: CancellationToken,
) -> Result<RunReport, WatchError> {
    let redis_err = |what: &str, e| WatchError::Redis(format!("{} {what}", channel.redis), e);
    let client = channel.client().map_err(|e| redis_err("url", e))?;
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&connection_config())
        .await
        .map_err(|e| redis_err("connect", e))?;
    let key = channel.key();
    let mut watcher = Watcher::new(thresholds, count);
    let mut last_id = "0-0".to_owned();
    loop {
        if let Some(merged) = watcher.merged() {
            return merged;
        }
        let mut command = redis::cmd("XREAD");
        command
            .arg("COUNT")
            .arg(256)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&key)
            .arg(&last_id);
        let read = command.query_async::<XReadReply>(&mut conn);
        let reply = tokio::select! {
            r = read => r.map_err(|e| redis_err("XREAD", e))?,
            () = shutdown.cancelled() => {
                return Err(WatchError::Interrupted {
                    finished: watcher.finished(),
                    count: watcher.count.unwrap_or(0) as usize,
                });
            }
        };
        let mut changed = false;
        for (_, entries) in reply.unwrap_or_default() {
            for (id, fields) in entries {
                last_id = id;
                let Some(json) = fields
                    .chunks(2)
                    .find(|kv| kv[0] == "m")
                    .and_then(|kv| kv.get(1))
                else {
                    continue;
                };
                match serde_json::from_str::<ShardMessage>(json) {
                    Ok(message) => changed |= watcher.take(message)?,
                    Err(e) => tracing::warn!("{key} {last_id}: not a shard message: {e}"),
                }
            }
        }
        if changed {
            snapshots.send_replace(watcher.snapshot());
        }
    }
}
