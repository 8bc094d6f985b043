//! The stack's child processes and links under one handle, so a chaos step can hurt them the
//! way production gets hurt: kill -9 (a crash), SIGSTOP/SIGCONT (a hung process: a long GC
//! pause, a stuck disk, a VM migration), a rolling restart (SIGTERM, drain, start again), and
//! a network partition on a link ([`LinkProxy`]).
//!
//! A restarted process comes back where clients expect it: a replica on its old port (players'
//! URLs stay valid), Redis on its old port and directory (reloading its append-only file),
//! fakes on its old port and state directory ([`super::fakes`]).
//! Whatever is paused when the handle goes away is resumed first, so nothing is left stopped.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::Signal;
use parking_lot::Mutex as SyncMutex;
use tokio::sync::Mutex;
use url::Url;

use super::StackProcess;
use super::fakes::{self as fakes_child, FakesProcess, FakesSpec};
use super::proxy::{LinkMode, LinkProxy};
use super::redis::LocalRedis;
use super::replica::{self, Replica, ReplicaSpec};

/// How long a replica may drain on a rolling restart before it is killed.
const RESTART_GRACE: Duration = Duration::from_secs(10);

/// A process of the stack a chaos step can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcessName {
    /// `matchmaker-N`.
    Replica(usize),
    /// `redis`.
    Redis,
    /// `fakes` (the emulated AGS), when the run started it as a process of its own.
    Fakes,
}

impl fmt::Display for ProcessName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessName::Replica(i) => write!(f, "matchmaker-{i}"),
            ProcessName::Redis => f.write_str("redis"),
            ProcessName::Fakes => f.write_str("fakes"),
        }
    }
}

impl FromStr for ProcessName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "redis" => return Ok(ProcessName::Redis),
            "fakes" => return Ok(ProcessName::Fakes),
            _ => {}
        }
        s.strip_prefix("matchmaker-")
            .and_then(|i| i.parse().ok())
            .map(ProcessName::Replica)
            .ok_or_else(|| {
                format!("unknown process {s:?}: expected \"matchmaker-N\", \"redis\" or \"fakes\"")
            })
    }
}

/// A link of the stack a partition can cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkName {
    /// Every replica's connections to Redis.
    MatchmakerRedis,
    /// Every replica's calls to fakes (IAM, session browser, DSMC, lobby notifications).
    MatchmakerFakes,
}

impl LinkName {
    pub const ALL: [LinkName; 2] = [LinkName::MatchmakerRedis, LinkName::MatchmakerFakes];
}

impl fmt::Display for LinkName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkName::MatchmakerRedis => "matchmaker-redis",
            LinkName::MatchmakerFakes => "matchmaker-fakes",
        })
    }
}

impl FromStr for LinkName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        LinkName::ALL
            .into_iter()
            .find(|l| l.to_string() == s)
            .ok_or_else(|| {
                format!("unknown link {s:?}: expected \"matchmaker-redis\" or \"matchmaker-fakes\"")
            })
    }
}

/// One replica: its process when running, and how to start it again.
#[derive(Debug)]
pub struct ReplicaSlot {
    pub index: usize,
    /// Where players send requests; the same across restarts.
    pub url: Url,
    /// The match function's gRPC address, when the replica serves one; the same across restarts.
    pub grpc_url: Option<Url>,
    spec: ReplicaSpec,
    program: PathBuf,
    args: Vec<String>,
    process: Mutex<Option<Replica>>,
    pid: SyncMutex<Option<u32>>,
}

impl ReplicaSlot {
    /// Starts replica `spec.index` and keeps what restarting it needs.
    pub async fn start(
        program: PathBuf,
        args: Vec<String>,
        spec: ReplicaSpec,
    ) -> anyhow::Result<Self> {
        let replica = replica::spawn(&program, &args, &spec).await?;
        let mut spec = spec;
        spec.port = replica.url.port().context("replica url without a port")?;
        if let Some(grpc) = &replica.grpc_url {
            spec.grpc_port = grpc.port().context("replica grpc url without a port")?;
        }
        Ok(Self {
            index: spec.index,
            url: replica.url.clone(),
            grpc_url: replica.grpc_url.clone(),
            pid: SyncMutex::new(replica.pid()),
            spec,
            program,
            args,
            process: Mutex::new(Some(replica)),
        })
    }

    pub fn pid(&self) -> Option<u32> {
        *self.pid.lock()
    }

    async fn kill(&self) {
        if let Some(mut replica) = self.process.lock().await.take() {
            replica.kill().await;
        }
        *self.pid.lock() = None;
    }

    async fn terminate(&self) {
        if let Some(mut replica) = self.process.lock().await.take() {
            replica.terminate(RESTART_GRACE).await;
        }
        *self.pid.lock() = None;
    }

    async fn launch(&self) -> anyhow::Result<()> {
        let mut process = self.process.lock().await;
        if process.is_some() {
            return Ok(());
        }
        let replica = replica::spawn(&self.program, &self.args, &self.spec).await?;
        *self.pid.lock() = replica.pid();
        *process = Some(replica);
        Ok(())
    }
}

/// fakes as a process: where it is, and how to start it again on the same port and state.
#[derive(Debug)]
pub struct FakesSlot {
    /// The base URL; the same across restarts.
    pub url: Url,
    spec: FakesSpec,
    program: PathBuf,
    args: Vec<String>,
    process: Mutex<Option<FakesProcess>>,
    pid: SyncMutex<Option<u32>>,
}

impl FakesSlot {
    /// Starts fakes and keeps what restarting it needs.
    pub async fn start(
        program: PathBuf,
        args: Vec<String>,
        spec: FakesSpec,
    ) -> anyhow::Result<Self> {
        let process = fakes_child::spawn(&program, &args, &spec).await?;
        let mut spec = spec;
        spec.port = process.url.port().context("fakes url without a port")?;
        Ok(Self {
            url: process.url.clone(),
            pid: SyncMutex::new(process.pid()),
            spec,
            program,
            args,
            process: Mutex::new(Some(process)),
        })
    }

    pub fn pid(&self) -> Option<u32> {
        *self.pid.lock()
    }

    async fn kill(&self) {
        if let Some(mut process) = self.process.lock().await.take() {
            process.kill().await;
        }
        *self.pid.lock() = None;
    }

    async fn terminate(&self) {
        if let Some(mut process) = self.process.lock().await.take() {
            process.terminate(RESTART_GRACE).await;
        }
        *self.pid.lock() = None;
    }

    async fn launch(&self) -> anyhow::Result<()> {
        let mut slot = self.process.lock().await;
        if slot.is_some() {
            return Ok(());
        }
        let process = fakes_child::spawn(&self.program, &self.args, &self.spec).await?;
        *self.pid.lock() = process.pid();
        *slot = Some(process);
        Ok(())
    }
}

/// Every process and link of a multi-process stack that chaos can act on.
#[derive(Debug)]
pub struct StackControl {
    pub replicas: Vec<ReplicaSlot>,
    /// fakes, when it runs as a process of its own.
    pub fakes: Option<FakesSlot>,
    redis: Option<Mutex<LocalRedis>>,
    redis_pid: SyncMutex<Option<u32>>,
    links: Vec<(LinkName, LinkProxy)>,
    paused: SyncMutex<Vec<u32>>,
}

impl StackControl {
    pub fn new(
        replicas: Vec<ReplicaSlot>,
        fakes: Option<FakesSlot>,
        redis: Option<LocalRedis>,
        links: Vec<(LinkName, LinkProxy)>,
    ) -> Self {
        Self {
            fakes,
            redis_pid: SyncMutex::new(redis.as_ref().and_then(LocalRedis::pid)),
            redis: redis.map(Mutex::new),
            replicas,
            links,
            paused: SyncMutex::new(Vec::new()),
        }
    }

    /// Whether `process` exists in this stack.
    pub fn has(&self, process: ProcessName) -> bool {
        match process {
            ProcessName::Replica(i) => i < self.replicas.len(),
            ProcessName::Redis => self.redis.is_some(),
            ProcessName::Fakes => self.fakes.is_some(),
        }
    }

    /// Whether `link` runs through a proxy that can cut it.
    pub fn has_link(&self, link: LinkName) -> bool {
        self.links.iter().any(|(name, _)| *name == link)
    }

    fn replica(&self, index: usize) -> anyhow::Result<&ReplicaSlot> {
        self.replicas
            .get(index)
            .with_context(|| format!("no matchmaker-{index} in this stack"))
    }

    fn fakes(&self) -> anyhow::Result<&FakesSlot> {
        self.fakes
            .as_ref()
            .context("fakes runs inside the sim in this stack, not as a process")
    }

    fn redis(&self) -> anyhow::Result<&Mutex<LocalRedis>> {
        self.redis
            .as_ref()
            .context("this stack did not start Redis (it uses one it was given)")
    }

    /// SIGKILL: the process dies at once, as in a crash; it stays down until [`start`](Self::start).
    pub async fn kill(&self, process: ProcessName) -> anyhow::Result<()> {
        self.forget_paused(process);
        match process {
            ProcessName::Replica(i) => self.replica(i)?.kill().await,
            ProcessName::Fakes => self.fakes()?.kill().await,
            ProcessName::Redis => {
                self.redis()?.lock().await.kill().await;
                *self.redis_pid.lock() = None;
            }
        }
        Ok(())
    }

    /// Starts a killed process again where it was (no-op if it runs).
    pub async fn start(&self, process: ProcessName) -> anyhow::Result<()> {
        match process {
            ProcessName::Replica(i) => self.replica(i)?.launch().await,
            ProcessName::Fakes => self.fakes()?.launch().await,
            ProcessName::Redis => {
                let mut redis = self.redis()?.lock().await;
                if redis.pid().is_none() {
                    redis.restart().await?;
                }
                *self.redis_pid.lock() = redis.pid();
                Ok(())
            }
        }
    }

    /// A rolling restart: SIGTERM (a replica drains; Redis writes its file), wait for the
    /// exit (killed after a grace period), start again.
    pub async fn restart(&self, process: ProcessName) -> anyhow::Result<()> {
        self.resume(process);
        match process {
            ProcessName::Replica(i) => {
                let slot = self.replica(i)?;
                slot.terminate().await;
                slot.launch().await
            }
            ProcessName::Fakes => {
                let slot = self.fakes()?;
                slot.terminate().await;
                slot.launch().await
            }
            ProcessName::Redis => {
                let mut redis = self.redis()?.lock().await;
                redis.restart().await?;
                *self.redis_pid.lock() = redis.pid();
                Ok(())
            }
        }
    }

    /// SIGSTOP: the process hangs with every socket open, until [`resume`](Self::resume).
    pub fn pause(&self, process: ProcessName) -> anyhow::Result<()> {
        let pid = self
            .pid_of(process)
            .with_context(|| format!("{process} is not running"))?;
        signal(pid, Signal::SIGSTOP)?;
        self.paused.lock().push(pid);
        Ok(())
    }

    /// SIGCONT for a paused process (no-op otherwise).
    pub fn resume(&self, process: ProcessName) {
        if let Some(pid) = self.pid_of(process) {
            let mut paused = self.paused.lock();
            if let Some(at) = paused.iter().position(|p| *p == pid) {
                paused.remove(at);
                let _ = signal(pid, Signal::SIGCONT);
            }
        }
    }

    fn forget_paused(&self, process: ProcessName) {
        if let Some(pid) = self.pid_of(process) {
            self.paused.lock().retain(|p| *p != pid);
        }
    }

    /// Cuts (`Blackhole`, `Reset`) or heals (`Pass`) a link.
    pub fn set_link(&self, link: LinkName, mode: LinkMode) -> anyhow::Result<()> {
        let (_, proxy) = self
            .links
            .iter()
            .find(|(name, _)| *name == link)
            .with_context(|| format!("link {link} has no proxy in this stack"))?;
        proxy.set(mode);
        Ok(())
    }

    /// The process id of `process` now (none while it is down).
    pub fn pid_of(&self, process: ProcessName) -> Option<u32> {
        match process {
            ProcessName::Replica(i) => self.replicas.get(i).and_then(ReplicaSlot::pid),
            ProcessName::Redis => *self.redis_pid.lock(),
            ProcessName::Fakes => self.fakes.as_ref().and_then(FakesSlot::pid),
        }
    }

    /// Every running child with its role.
    pub fn processes(&self) -> Vec<StackProcess> {
        let mut out: Vec<StackProcess> = self
            .replicas
            .iter()
            .filter_map(|slot| {
                slot.pid().map(|pid| StackProcess {
                    role: ProcessName::Replica(slot.index).to_string(),
                    pid,
                })
            })
            .collect();
        if let Some(pid) = self.fakes.as_ref().and_then(FakesSlot::pid) {
            out.push(StackProcess {
                role: ProcessName::Fakes.to_string(),
                pid,
            });
        }
        if let Some(pid) = *self.redis_pid.lock() {
            out.push(StackProcess {
                role: ProcessName::Redis.to_string(),
                pid,
            });
        }
        out
    }

    /// Heals every link and resumes every paused process (the end of a run).
    pub fn heal_all(&self) {
        for (_, proxy) in &self.links {
            proxy.set(LinkMode::Pass);
        }
        for pid in std::mem::take(&mut *self.paused.lock()) {
            let _ = signal(pid, Signal::SIGCONT);
        }
    }
}

impl Drop for StackControl {
    fn drop(&mut self) {
        // A stopped process would not die of a closed stdin; let it run to its end.
        self.heal_all();
    }
}

fn signal(pid: u32, signal: Signal) -> anyhow::Result<()> {
    let raw = i32::try_from(pid).context("pid out of range")?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), signal)
        .with_context(|| format!("cannot send {signal} to pid {pid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_refuse_unknowns() {
        for p in [
            ProcessName::Replica(0),
            ProcessName::Replica(12),
            ProcessName::Redis,
            ProcessName::Fakes,
        ] {
            assert_eq!(p.to_string().parse::<ProcessName>().unwrap(), p);
        }
        for l in LinkName::ALL {
            assert_eq!(l.to_string().parse::<LinkName>().unwrap(), l);
        }
        assert!("matchmaker-x".parse::<ProcessName>().is_err());
        assert!(
            "fake"
                .parse::<ProcessName>()
                .unwrap_err()
                .contains("matchmaker-N")
        );
        assert!("redis-fakes".parse::<LinkName>().is_err());
    }
}
