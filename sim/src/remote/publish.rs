//! The shard's side: its engine's snapshots (with exact histograms) to the run's stream a few
//! times a second, then its report. A Redis that cannot be reached costs the live view, never
//! the run: failures are logged and retried on the next snapshot.

use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics::MetricsSnapshot;
use crate::report::RunReport;

use super::channel::{RunChannel, STREAM_MAX_LEN, ShardMessage, connection_config};

/// How often a snapshot is published.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(500);

/// Publishes one shard's messages.
#[derive(Clone)]
pub struct Publisher {
    channel: RunChannel,
    shard: u32,
    count: u32,
    conn: redis::aio::MultiplexedConnection,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("key", &self.channel.key())
            .field("shard", &self.shard)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// Connects (a clear error when Redis cannot be reached: better before the run than
    /// silently during it).
    pub async fn connect(channel: RunChannel, shard: u32, count: u32) -> anyhow::Result<Self> {
        let client = channel.client()?;
        let conn = client
            .get_multiplexed_async_connection_with_config(&connection_config())
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach {}: {e}", channel.redis))?;
        Ok(Publisher {
            channel,
            shard,
            count,
            conn,
        })
    }

    /// Appends `message` to the stream.
    pub async fn send(&self, message: &ShardMessage) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("XADD")
            .arg(self.channel.key())
            .arg("MAXLEN")
            .arg("~")
            .arg(STREAM_MAX_LEN)
            .arg("*")
            .arg("m")
            .arg(message.to_json())
            .query_async::<String>(&mut conn)
            .await
            .map(drop)
    }

    fn snapshot_message(&self, mut snapshot: MetricsSnapshot) -> ShardMessage {
        // The watcher rebuilds series and thresholds from the merged figures.
        snapshot.series.clear();
        snapshot.thresholds.clear();
        ShardMessage::Snapshot {
            shard: self.shard,
            count: self.count,
            snapshot: Box::new(snapshot),
        }
    }

    /// Publishes the latest snapshot every [`PUBLISH_EVERY`] until `done`, then the last one.
    pub fn spawn_snapshots(
        &self,
        mut snapshots: watch::Receiver<MetricsSnapshot>,
        done: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PUBLISH_EVERY);
            let mut warned = false;
            loop {
                let last = tokio::select! {
                    _ = tick.tick() => false,
                    () = done.cancelled() => true,
                };
                let snapshot = snapshots.borrow_and_update().clone();
                if let Err(e) = me.send(&me.snapshot_message(snapshot)).await {
                    if !warned {
                        tracing::warn!("publishing to {}: {e}", me.channel.key());
                        warned = true;
                    }
                }
                if last {
                    return;
                }
            }
        })
    }

    /// The shard's report (or why it has none), last.
    pub async fn finish(&self, result: Result<&RunReport, String>) -> redis::RedisResult<()> {
        let message = match result {
            Ok(report) => ShardMessage::Finished {
                shard: self.shard,
                count: self.count,
                report: Box::new(report.clone()),
            },
            Err(message) => ShardMessage::Failed {
                shard: self.shard,
                count: self.count,
                message,
            },
        };
        self.send(&message).await
    }
}
