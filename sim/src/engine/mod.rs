//! The engine: runs a [`Plan`] against a target and returns its [`RunReport`].
//!
//! Phases: *preparing* (start the target, get the game token, create users), *running*
//! (arrivals on schedule — open models from a seeded [`schedule::ArrivalSchedule`], closed
//! models as slots that queue again), optionally *paused*, *draining* (arrivals over, players in
//! flight finish or are cut off as unfinished), *finished*.
//!
//! One loop owns the schedule, the commands and the metrics tick, so nothing is shared but the
//! recorders' shards and gauges. It publishes a [`MetricsSnapshot`] on a `watch` channel at a
//! steady rate and takes [`EngineCommand`]s on an `mpsc` channel: a dashboard reads the one and
//! writes the other; headless mode only reads. Each party runs as its own task
//! ([`crate::player`]); the fault timeline and the claim counter poll run beside the loop.
//!
//! The modules follow the phases: [`prepare`] (workers, the open-files check, game token,
//! accounts, the held start), [`side`] (the claim poll and the fault and chaos timelines),
//! [`run`] (the loop) with [`parties`] (open arrivals and closed slots), [`wind_down`]
//! (cleanup, checks, report); [`schedule`] draws arrivals, [`users`] holds accounts,
//! [`faults`] and [`chaos`] apply the two timelines.
//!
//! Must not know how snapshots are displayed or where reports are written.

pub mod chaos;
pub mod faults;
mod parties;
mod prepare;
mod run;
pub mod schedule;
mod side;
pub mod users;
mod wind_down;

use std::sync::Arc;
use std::time::Duration;

use accelbyte::client::LobbyOptions;
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::run::Running;
use self::side::{SideInputs, SideTasks};
use self::wind_down::Finished;
use crate::invariants;
use crate::metrics::{Collector, LiveContext, MetricsSnapshot, Phase};
use crate::outcome::{ErrorKind, PlayerRecord};
use crate::player::RunCtx;
use crate::report::RunReport;
use crate::sampler::{self, Sampler, Watched};
use crate::scenario::{Plan, format_duration};
use crate::sut::SutCounters;
use crate::target::{Target, TargetError, TargetOptions};

/// Commands a dashboard (or a test) sends to a running engine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EngineCommand {
    /// Hold arrivals; players in flight carry on.
    Pause,
    Resume,
    /// Arrive at this many parties per second from now on (open models only).
    SetRate(f64),
    /// End arrivals now and drain.
    Stop,
    /// Start the clock of an engine that holds its start ([`EngineOptions::hold_start`]).
    Start,
}

/// This process's share of a scenario run by several processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    /// 0-based.
    pub index: u32,
    pub count: u32,
}

impl ShardSpec {
    fn owns(&self, n: u64) -> bool {
        n % u64::from(self.count.max(1)) == u64::from(self.index)
    }
}

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub target: TargetOptions,
    /// How often a snapshot is published (and shards drained).
    pub snapshot_every: Duration,
    pub shard: Option<ShardSpec>,
    /// The open-files limit to plan against (`None`: read the process's).
    pub open_files: Option<u64>,
    /// Snapshots carry exact histograms ([`crate::metrics::Mergeable`]) for a parent process
    /// that merges the snapshots of several workers.
    pub mergeable_snapshots: bool,
    /// Once prepared (target reached, users created), publish a `ready` snapshot and wait for
    /// [`EngineCommand::Start`] before the clock starts. The workers of one run start together
    /// this way: a worker still creating users must not slow the players of one already
    /// running, which would show up as latency the system under test never caused.
    pub hold_start: bool,
    /// This process's role in the report's process list (`single`, `worker I`).
    pub process_role: String,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            target: TargetOptions::default(),
            snapshot_every: Duration::from_millis(250),
            shard: None,
            open_files: None,
            mergeable_snapshots: false,
            hold_start: false,
            process_role: "single".to_owned(),
        }
    }
}

/// Why a run could not happen.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("setup: {0}")]
    Setup(String),
    #[error("the run does not fit: {0}")]
    DoesNotFit(String),
    #[error("{0}")]
    Config(String),
}

impl EngineError {
    /// A problem with the scenario or configuration (exit 2), not with the system under test.
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            EngineError::DoesNotFit(_)
                | EngineError::Config(_)
                | EngineError::Target(TargetError::Accounts { .. })
                | EngineError::Target(TargetError::AccountsIo { .. })
        )
    }
}

/// What every player of a run recorded, for an invariant check over several processes.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Outcomes {
    /// When this process's arrivals started (wall clock, microseconds since the Unix epoch):
    /// the zero of its `*_at_ms` times.
    #[serde(default)]
    pub start_unix_us: u64,
    /// `(arrival, party size)` of every search that started.
    pub started: Vec<(u64, u16)>,
    pub records: Vec<PlayerRecord>,
    pub releases: Vec<crate::outcome::Release>,
}

impl Outcomes {
    /// The outcomes of several processes on one time axis: each process's times (milliseconds
    /// since its own start) are moved to count from the earliest start, so a server released
    /// in one process and reused in another is ordered correctly.
    pub fn combine(parts: Vec<Outcomes>) -> Outcomes {
        let base = parts.iter().map(|p| p.start_unix_us).min().unwrap_or(0);
        let mut out = Outcomes {
            start_unix_us: base,
            ..Outcomes::default()
        };
        for part in parts {
            let shift = (part.start_unix_us - base + 500) / 1000;
            out.started.extend(part.started);
            out.records.extend(part.records.into_iter().map(|mut r| {
                r.found_at_ms = r.found_at_ms.map(|t| t + shift);
                r.answered_at_ms = r.answered_at_ms.map(|t| t + shift);
                r
            }));
            out.releases.extend(part.releases.into_iter().map(|mut r| {
                // 0 means "already released by another process": before anything.
                if r.at_ms != 0 {
                    r.at_ms += shift;
                }
                r
            }));
        }
        out
    }

    /// The invariant check over all of them.
    pub fn check(&self) -> invariants::InvariantReport {
        invariants::check(&self.started, &self.records, &self.releases)
    }
}

/// A run about to start. Take the channels, then call [`run`](Self::run).
#[derive(Debug)]
pub struct Engine {
    plan: Arc<Plan>,
    options: EngineOptions,
    snapshots: watch::Sender<MetricsSnapshot>,
    commands_tx: mpsc::Sender<EngineCommand>,
    commands_rx: mpsc::Receiver<EngineCommand>,
}

impl Engine {
    pub fn new(plan: Plan, options: EngineOptions) -> Engine {
        let (snapshots, _) = watch::channel(MetricsSnapshot::default());
        let (commands_tx, commands_rx) = mpsc::channel(64);
        Engine {
            plan: Arc::new(plan),
            options,
            snapshots,
            commands_tx,
            commands_rx,
        }
    }

    /// Snapshots, published every `snapshot_every`.
    pub fn snapshots(&self) -> watch::Receiver<MetricsSnapshot> {
        self.snapshots.subscribe()
    }

    /// Where commands go.
    pub fn commands(&self) -> mpsc::Sender<EngineCommand> {
        self.commands_tx.clone()
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Runs to the end (or until `shutdown`, which drains like [`EngineCommand::Stop`]).
    pub async fn run(self, shutdown: CancellationToken) -> Result<RunReport, EngineError> {
        self.run_with_outcomes(shutdown)
            .await
            .map(|(report, _)| report)
    }

    /// [`run`](Self::run), also handing back what every player recorded (for a parent that
    /// checks invariants over several processes).
    pub async fn run_with_outcomes(
        self,
        shutdown: CancellationToken,
    ) -> Result<(RunReport, Outcomes), EngineError> {
        self.snapshots.send_replace(MetricsSnapshot {
            phase: Phase::Preparing,
            ..MetricsSnapshot::default()
        });
        let target = Target::start(&self.plan.target, &self.options.target).await?;
        // This process and, for an embedded stack spread over processes, its children.
        let mut watched = vec![Watched {
            role: self.options.process_role.clone(),
            pid: std::process::id(),
        }];
        watched.extend(target.stack_processes().into_iter().map(|p| Watched {
            role: p.role,
            pid: p.pid,
        }));
        let sampler = Sampler::start(watched, sampler::EVERY);
        let mut result = self.drive(&target, shutdown).await;
        // Read before the stack's processes stop.
        let sampled = sampler.finish().await;
        if let Ok((report, _)) = &mut result {
            let local: u64 = report
                .errors
                .iter()
                .filter(|e| e.kind == ErrorKind::LocalResources.to_string())
                .map(|e| e.count)
                .sum();
            report.processes = sampled.processes;
            if let Some(me) = report.processes.first_mut() {
                me.local_resource_errors = local;
            }
            report.machine = sampled.machine;
            report.judge();
        }
        target.shutdown().await;
        result
    }

    /// Prepare ([`prepare`]), run ([`run`] with the [`side`] tasks beside it), wind down
    /// ([`wind_down`]).
    async fn drive(
        self,
        target: &Target,
        shutdown: CancellationToken,
    ) -> Result<(RunReport, Outcomes), EngineError> {
        let plan = Arc::clone(&self.plan);
        let (mut collector, recorders) = Collector::new(plan.run.workers);
        let workers = prepare::build_workers(target, &recorders)?;
        let mut warnings = prepare::check_capacity(&plan, &self.options, target)?;
        let accounts =
            prepare::accounts(&plan, &self.options, target, &workers[0], &recorders[0]).await?;

        let http = workers[0].http.clone();
        let claims = target.claims_reader();
        let baseline = claims.read(&http).await;
        let sut_before = SutCounters::read_with_token(
            &target.fakes_url,
            &target.matchmaker_urls,
            target.fakes_control_token.as_deref(),
        )
        .await;

        let mut commands = self.commands_rx;
        if self.options.hold_start {
            self.snapshots.send_modify(|s| s.ready = true);
            prepare::wait_for_start(&mut commands, &shutdown).await;
            self.snapshots.send_modify(|s| s.ready = false);
        }

        let start = Instant::now();
        // The same moment on the wall clock, so a parent can put the times of several
        // processes on one axis.
        let start_unix_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        let run = Arc::new(RunCtx {
            matchmakers: target.matchmaker_urls.clone(),
            namespace: target.namespace.clone(),
            behaviour: plan.population.behaviour.clone(),
            lobby: LobbyOptions::default(),
            start,
            game_token: accounts.game_token,
            users: accounts.users,
            released: Mutex::new(std::collections::HashSet::new()),
            abort: CancellationToken::new(),
            background: TaskTracker::new(),
            match2: accounts.match2,
        });

        let side = SideTasks::start(
            SideInputs {
                plan: &plan,
                options: &self.options,
                target,
                http: &http,
                baseline,
                claims,
                snapshots: self.snapshots.subscribe(),
                recorder: &recorders[0],
                start,
            },
            &mut warnings,
        )
        .await?;

        // Held until the loop ends, so `commands` never reads as closed while it runs.
        let _keep_open = self.commands_tx;
        let elapsed = run::run(Running {
            plan: &plan,
            options: &self.options,
            snapshots: &self.snapshots,
            collector: &mut collector,
            side: &side,
            workers,
            run: &run,
            commands,
            shutdown: &shutdown,
        })
        .await;
        run.abort.cancel();
        run.background.close();

        Ok(wind_down::wind_down(Finished {
            plan: &plan,
            options: &self.options,
            snapshots: &self.snapshots,
            target,
            http: &http,
            recorder: &recorders[0],
            collector,
            side,
            baseline,
            sut_before,
            warnings,
            elapsed,
            start_unix_us,
        })
        .await)
    }
}

/// Publishes a snapshot, with exact histograms when a merging parent wants them.
fn publish(
    snapshots: &watch::Sender<MetricsSnapshot>,
    mergeable: bool,
    collector: &Collector,
    ctx: &LiveContext<'_>,
) {
    let mut snapshot = collector.snapshot(ctx);
    if mergeable {
        snapshot.mergeable = Some(collector.mergeable());
    }
    snapshots.send_replace(snapshot);
}

/// A one-line description of the run's plan for logs.
pub fn describe(plan: &Plan) -> String {
    format!(
        "{}: {} for {}, seed {}, {} workers",
        plan.name,
        crate::report::describe_arrival(plan),
        format_duration(plan.run.duration),
        plan.run.seed,
        plan.run.workers
    )
}

#[cfg(test)]
mod tests {
    use super::prepare::shard_accounts;
    use super::*;
    use crate::outcome::Outcome;
    use crate::target::Account;

    #[test]
    fn shards_split_the_accounts_without_overlap() {
        let accounts: Vec<Account> = (0..7)
            .map(|i| Account {
                username: format!("u{i}").into(),
                password: "p".into(),
            })
            .collect();
        let names = |shard| {
            shard_accounts(&accounts, shard)
                .iter()
                .map(|a| a.username.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(None).len(), 7);
        assert_eq!(names(Some(ShardSpec { index: 1, count: 3 })), ["u1", "u4"]);
        assert_eq!(
            names(Some(ShardSpec { index: 0, count: 3 })),
            ["u0", "u3", "u6"]
        );
    }

    /// One player of `session` on `server`, told at `at_ms` of its process's clock.
    fn told(arrival: u64, session: &str, port: u16, at_ms: u64) -> PlayerRecord {
        let server = crate::outcome::ServerAddr::from_found(&format!("found 127.0.0.1 {port}"))
            .expect("server");
        PlayerRecord {
            arrival,
            member: 0,
            outcome: Outcome::Matched,
            error: None,
            session: Some(session.into()),
            answered: Some(server.clone()),
            found: vec![server],
            found_at_ms: Some(at_ms),
            answered_at_ms: Some(at_ms),
            dsmc_server: None,
        }
    }

    #[test]
    fn outcomes_of_several_processes_share_one_clock() {
        // Process A starts at 0 and releases session s1 (server 7777) at 100 ms of its clock;
        // process B starts 50 ms later and hears of s2 on the same server at 60 ms of its clock,
        // which is 110 ms on A's: after the release, so no reuse.
        let a = Outcomes {
            start_unix_us: 1_000_000,
            started: vec![(0, 1)],
            records: vec![told(0, "s1", 7777, 20)],
            releases: vec![crate::outcome::Release {
                session: "s1".into(),
                at_ms: 100,
            }],
        };
        let b = |start_unix_us| Outcomes {
            start_unix_us,
            started: vec![(1, 1)],
            records: vec![told(1, "s2", 7777, 60)],
            releases: Vec::new(),
        };
        let combined = Outcomes::combine(vec![a.clone(), b(1_050_000)]);
        assert_eq!(combined.records[1].found_at_ms, Some(110));
        assert!(combined.check().passed(), "{:?}", combined.check());
        // Had B started at the same moment, its 60 ms would be before the release.
        let same_start = Outcomes::combine(vec![a, b(1_000_000)]);
        assert_eq!(same_start.check().violations.len(), 1);
    }
}
