//! A child process of the stack, started as `program args… --spec JSON`: it prints
//! `READY <url> [<url>…]` on stdout once it serves, and exits when its stdin closes (the parent
//! died). One place for starting such a child, waiting for its `READY`, signalling and reaping
//! it — the matchmaker replicas and the fakes process are both started this way.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a child may take to serve.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The first word of the line a child prints once it serves; its URLs follow.
pub const READY: &str = "READY ";

/// A running child; dropping it kills the process.
#[derive(Debug)]
pub struct SpecChild {
    child: Child,
}

impl SpecChild {
    /// Starts `program args… --spec spec_json` and waits for its `READY` line; returns the
    /// child and the rest of that line (its URLs). `what` names the child in errors.
    pub async fn spawn(
        program: &Path,
        args: &[String],
        spec_json: &str,
        what: &str,
    ) -> anyhow::Result<(SpecChild, String)> {
        let mut child = Command::new(program)
            .args(args)
            .arg("--spec")
            .arg(spec_json)
            // Held open by us: the child exits when it closes (we died).
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {what}"))?;
        let stdout = child
            .stdout
            .take()
            .with_context(|| format!("{what}: no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(READY_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.strip_prefix(READY) {
                    return std::io::Result::Ok(Some(rest.trim().to_owned()));
                }
            }
            Ok(None)
        })
        .await;
        let rest = match ready {
            Ok(Ok(Some(rest))) => rest,
            Ok(Ok(None)) => anyhow::bail!(
                "{what} exited before it was ready ({:?})",
                child.wait().await.ok()
            ),
            Ok(Err(error)) => return Err(anyhow::Error::from(error).context(what.to_owned())),
            Err(_) => anyhow::bail!("{what} not ready within {READY_TIMEOUT:?}"),
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok((SpecChild { child }, rest))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Whether the process has exited (and how).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL, and reaps it.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// SIGTERM (drain, as on a rolling restart), then SIGKILL if it has not exited within
    /// `grace`.
    pub async fn terminate(&mut self, grace: Duration) {
        if let Some(pid) = self.pid().and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            self.kill().await;
        }
    }
}

/// In the child: resolves when it should stop — its stdin closed (the parent died or let go of
/// it) or SIGTERM arrived.
pub async fn stop_requested() {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    let parent_gone = async { while !matches!(stdin.read(&mut buf).await, Ok(0) | Err(_)) {} };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = parent_gone => {}
        () = term => {}
    }
}
