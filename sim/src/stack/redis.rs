//! A private `redis-server` for a multi-process stack: an ephemeral loopback port, a temporary
//! directory, optionally an append-only file synced on every write (so a restart, even after
//! kill -9, keeps every acknowledged write), killed when
//! dropped. `redis-server` must be on `PATH`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// How long the server may take to answer its first `PING`.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running private Redis.
#[derive(Debug)]
pub struct LocalRedis {
    url: String,
    port: u16,
    dir: PathBuf,
    persistent: bool,
    /// `None` while a chaos step has it killed.
    child: Option<Child>,
}

impl LocalRedis {
    /// Starts `redis-server` on a free loopback port in a fresh temporary directory; with
    /// `persistent`, every write goes to an append-only file there.
    pub async fn start(persistent: bool) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("matchbench-redis-{}", uuid_like_suffix()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let mut last_error = None;
        for _ in 0..5 {
            let port = free_port()?;
            match spawn(&dir, port, persistent).await {
                Ok(child) => {
                    return Ok(Self {
                        url: format!("redis://127.0.0.1:{port}"),
                        port,
                        dir,
                        persistent,
                        child: Some(child),
                    });
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("could not start redis-server")))
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's process id (none while it is down).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Kills the server (SIGKILL, as a crash would) and reaps it.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts the server again on the same port and directory (with persistence it reloads
    /// its append-only file); kills the running one first, if any.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill().await;
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        // The port was just released; a moment may pass before it can be bound again.
        loop {
            match spawn(&self.dir, self.port, self.persistent).await {
                Ok(child) => {
                    self.child = Some(child);
                    return Ok(());
                }
                Err(error) if tokio::time::Instant::now() >= deadline => return Err(error),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn is_persistent(&self) -> bool {
        self.persistent
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn spawn(dir: &Path, port: u16, persistent: bool) -> anyhow::Result<Child> {
    let mut command = Command::new("redis-server");
    command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .arg("--dir")
        .arg(dir)
        .args(["--save", ""])
        // Enough clients for every process of a launch-scale stack.
        .args(["--maxclients", "10000"])
        // A lobby shard busy for a moment must not be cut off as a slow pub/sub reader (the
        // default drops a subscriber 8 MiB behind for 60 s, or 32 MiB behind at once).
        .args(["--client-output-buffer-limit", "pubsub", "0", "0", "0"]);
    if persistent {
        // Every write reaches the disk before Redis answers, so a kill -9 loses nothing that
        // a client was told had been stored (chaos runs count on it; their load is small).
        command.args(["--appendonly", "yes", "--appendfsync", "always"]);
    } else {
        command.args(["--appendonly", "no"]);
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start redis-server (install it: apt-get install redis-server)")?;
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("redis-server exited at start ({status}); port {port} taken?");
        }
        if answers_ping(port).await {
            return Ok(child);
        }
        if tokio::time::Instant::now() >= deadline {
            let _ = child.start_kill();
            anyhow::bail!("redis-server did not answer within {START_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn answers_ping(port: u16) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let mut reply = [0u8; 7];
    let exchange = async {
        stream.write_all(b"PING\r\n").await?;
        stream.read_exact(&mut reply).await
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(500), exchange).await,
        Ok(Ok(_))
    ) && &reply == b"+PONG\r\n"
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn uuid_like_suffix() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn starts_answers_and_goes_away() {
        let mut redis = LocalRedis::start(true).await.expect("redis-server on PATH");
        assert!(answers_ping(redis.port()).await);
        assert!(redis.is_persistent());
        let port = redis.port();
        let pid = redis.pid();
        redis.kill().await;
        assert!(!answers_ping(port).await);
        assert_eq!(redis.pid(), None);
        redis.restart().await.unwrap();
        assert!(answers_ping(port).await);
        assert_ne!(redis.pid(), pid);
        let dir = redis.dir().to_owned();
        drop(redis);
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        while answers_ping(port).await {
            assert!(tokio::time::Instant::now() < deadline, "still answering");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!dir.exists());
    }
}
