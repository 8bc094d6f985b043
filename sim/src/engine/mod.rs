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
//! Must not know how snapshots are displayed or where reports are written.

pub mod chaos;
pub mod faults;
pub mod schedule;
pub mod users;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use accelbyte::client::{AbClient, Config, LobbyOptions};
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::faults::FaultState;
use self::schedule::{ArrivalSchedule, Draws, PartySpec};
use self::users::UserPool;
use crate::invariants;
use crate::limits;
use crate::metrics::{ClaimCounts, Collector, LiveContext, MetricsSnapshot, Phase, Recorder};
use crate::outcome::{Endpoint, ErrorKind, Outcome, PlayerRecord};
use crate::player::{self, Arrival, GameToken, Party, RunCtx, SearchEnd, WorkerCtx};
use crate::report::RunReport;
use crate::sampler::{self, Sampler, Watched};
use crate::scenario::{ArrivalPlan, Behaviour, Plan, TargetPlan, format_duration};
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

    async fn drive(
        self,
        target: &Target,
        shutdown: CancellationToken,
    ) -> Result<(RunReport, Outcomes), EngineError> {
        let plan = Arc::clone(&self.plan);
        let workers_n = plan.run.workers;
        let (mut collector, recorders) = Collector::new(workers_n);
        let workers = build_workers(target, &recorders)?;
        let mut warnings = Vec::new();

        // Capacity: refuse what cannot fit, warn about what may not.
        let limit = self
            .options
            .open_files
            .or_else(limits::open_files_limit)
            .unwrap_or(1024);
        let capacity = limits::capacity(limit, target.fds_per_player, workers_n);
        let shards = self.options.shard.map_or(1, |s| u64::from(s.count.max(1)));
        match &plan.population.arrival {
            ArrivalPlan::Closed { players, .. } => {
                let mine = u64::from(*players).div_ceil(shards);
                if mine > capacity.players {
                    return Err(EngineError::DoesNotFit(format!(
                        "{mine} concurrent players need about {} open files at {} per player, but the limit of {limit} leaves room for {} (raise the hard limit, split the run with --shard, or use a urls target so the servers' sockets live in other processes)",
                        mine * capacity.per_player + capacity.reserve,
                        capacity.per_player,
                        capacity.players
                    )));
                }
            }
            ArrivalPlan::Open { profile, .. } => {
                let per_second = profile.peak() * plan.mean_party_size() / shards as f64;
                if per_second > 0.0 {
                    let fill = capacity.players as f64 / per_second;
                    if fill < plan.population.behaviour.request_timeout.as_secs_f64() {
                        warnings.push(format!(
                            "open-files limit {limit} allows {} players at once ({} descriptors each); at the peak of {:.0} players/s, searches longer than {:.1}s will run out of descriptors",
                            capacity.players, capacity.per_player, per_second, fill
                        ));
                    }
                }
            }
        }

        // Game token, users.
        let game_token = match &workers[0].game {
            Some(game) => {
                let token = Arc::new(GameToken::new(game.clone()));
                token
                    .get()
                    .await
                    .map_err(|e| EngineError::Setup(format!("game client login: {e}")))?;
                Some(token)
            }
            None => None,
        };
        let match2 = match_pool(&plan, target, &workers[0], game_token.as_deref()).await?;
        let users = match (&target.accounts, &game_token) {
            (Some(accounts), _) => UserPool::fixed(
                shard_accounts(accounts, self.options.shard),
                recorders[0].clone(),
            ),
            (None, Some(token)) => {
                let pool = UserPool::created(
                    token.client().clone(),
                    Arc::clone(token),
                    target.namespace.clone(),
                    users::MAX_BATCH / 4,
                    recorders[0].clone(),
                );
                pool.prefill(prefill_count(&plan, shards))
                    .await
                    .map_err(|e| EngineError::Setup(format!("creating test users: {e}")))?;
                pool
            }
            (None, None) => {
                return Err(EngineError::Setup(
                    "no accounts file and no game client to create users with".to_owned(),
                ));
            }
        };

        let http = workers[0].http.clone();
        let claims = target.claims_reader();
        let baseline = claims.read(&http).await;
        let sut_before = SutCounters::read_with_token(
            &target.fakes_url,
            &target.matchmaker_urls,
            target.fakes_control_token.as_deref(),
        )
        .await;
        let latest_claims: Arc<Mutex<Option<ClaimCounts>>> = Arc::new(Mutex::new(None));

        let mut commands = self.commands_rx;
        if self.options.hold_start {
            self.snapshots.send_modify(|s| s.ready = true);
            wait_for_start(&mut commands, &shutdown).await;
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
            game_token,
            users,
            released: Mutex::new(std::collections::HashSet::new()),
            abort: CancellationToken::new(),
            background: TaskTracker::new(),
            match2,
        });

        // Beside the loop: the claim poll and the fault timeline.
        let side = CancellationToken::new();
        let side_tasks = TaskTracker::new();
        if let Some(base) = baseline {
            let (latest, http, stop) = (Arc::clone(&latest_claims), http.clone(), side.clone());
            side_tasks.spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tokio::select! {
                        _ = every.tick() => {}
                        () = stop.cancelled() => return,
                    }
                    if let Some(now) = claims.read(&http).await {
                        *latest.lock() = Some(now.since(&base));
                    }
                }
            });
        }
        let fault_state = Arc::new(FaultState::default());
        // With several shards on one fakes, only the first applies the timeline.
        let applies_faults = self.options.shard.is_none_or(|s| s.index == 0);
        if applies_faults && !plan.faults.is_empty() {
            // Same seed, same fault decisions.
            let seeded = http
                .put(target.faults_seed_url())
                .json(&serde_json::json!({"seed": plan.run.seed}))
                .send()
                .await;
            if !seeded.is_ok_and(|r| r.status().is_success()) {
                warnings.push(
                    "could not seed the fakes' fault decisions; faults are not reproducible"
                        .to_owned(),
                );
            }
            side_tasks.spawn(faults::run_timeline(
                plan.faults.clone(),
                http.clone(),
                target.faults_url(),
                Arc::clone(&fault_state),
                start,
                side.clone(),
                recorders[0].clone(),
            ));
        }

        let chaos_control = target.stack_control();
        if !plan.chaos.is_empty() {
            let Some(control) = chaos_control.clone() else {
                return Err(EngineError::Config(format!(
                    "{}: [[chaos]] needs the embedded target run by this process with matchmaker replicas (not --workers N > 1, --shard, --replicas 0 or URLs)",
                    plan.file
                )));
            };
            side_tasks.spawn(chaos::run_timeline(
                plan.chaos.clone(),
                control,
                Arc::clone(&fault_state),
                self.snapshots.subscribe(),
                start,
                side.clone(),
            ));
        }

        // The loop.
        let tracker = TaskTracker::new();
        let arrivals_over = CancellationToken::new();
        let (pause_tx, pause_rx) = watch::channel(false);
        let mut lp = Loop {
            plan: Arc::clone(&plan),
            shard: self.options.shard,
            workers,
            run: Arc::clone(&run),
            tracker: tracker.clone(),
            draws: Draws::new(plan.run.seed),
            schedule: None,
            next_at: None,
            index: 0,
            start,
            paused_since: None,
            paused_total: Duration::ZERO,
            phase: Phase::Running,
        };
        match &plan.population.arrival {
            ArrivalPlan::Open { profile, poisson } => {
                let mut s = ArrivalSchedule::new(profile.clone(), *poisson, plan.run.seed);
                lp.next_at = s.next_arrival();
                lp.schedule = Some(s);
            }
            ArrivalPlan::Closed {
                players,
                ramp_up,
                think,
            } => lp.start_slots(*players, *ramp_up, *think, &pause_rx, &arrivals_over),
        }

        let _keep_open = self.commands_tx;
        let mut tick = tokio::time::interval(self.options.snapshot_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next_second = start + Duration::from_secs(1);
        let duration = plan.run.duration;
        let mut drain_deadline = None;
        let far = start + Duration::from_secs(100 * 365 * 24 * 3600);
        loop {
            let running = lp.phase == Phase::Running;
            let next_wall = match (running, lp.next_at) {
                (true, Some(a)) if a < duration.as_secs_f64() => {
                    Some(start + lp.paused_total + Duration::from_secs_f64(a))
                }
                _ => None,
            };
            let end_wall = running.then(|| start + lp.paused_total + duration);
            tokio::select! {
                biased;
                () = shutdown.cancelled(), if drain_deadline.is_none() => {
                    drain_deadline = Some(lp.begin_drain(&arrivals_over));
                }
                Some(command) = commands.recv() => {
                    match command {
                        EngineCommand::Stop if drain_deadline.is_none() => {
                            drain_deadline = Some(lp.begin_drain(&arrivals_over));
                        }
                        EngineCommand::Pause if lp.phase == Phase::Running => {
                            lp.phase = Phase::Paused;
                            lp.paused_since = Some(Instant::now());
                            let _ = pause_tx.send(true);
                        }
                        EngineCommand::Resume if lp.phase == Phase::Paused => {
                            if let Some(since) = lp.paused_since.take() {
                                lp.paused_total += since.elapsed();
                            }
                            lp.phase = Phase::Running;
                            let _ = pause_tx.send(false);
                        }
                        EngineCommand::SetRate(rate) => lp.set_rate(rate),
                        _ => {}
                    }
                }
                _ = tick.tick() => {
                    collector.drain();
                    if Instant::now() >= next_second {
                        if let Some(c) = *latest_claims.lock() {
                            collector.set_claims(c);
                        }
                        collector.close_second(lp.target_rate(), fault_state.active());
                        next_second += Duration::from_secs(1);
                    }
                    let active = fault_state.active();
                    publish(&self.snapshots, self.options.mergeable_snapshots, &collector, &LiveContext {
                        elapsed: start.elapsed(),
                        phase: lp.phase,
                        active_faults: &active,
                        target_rate: lp.target_rate(),
                        thresholds: &plan.thresholds,
                    });
                }
                () = tokio::time::sleep_until(next_wall.unwrap_or(far)), if next_wall.is_some() => {
                    lp.spawn_due();
                }
                () = tokio::time::sleep_until(end_wall.unwrap_or(far)), if end_wall.is_some() => {
                    drain_deadline = Some(lp.begin_drain(&arrivals_over));
                }
                () = tracker.wait(), if drain_deadline.is_some() => break,
                () = tokio::time::sleep_until(drain_deadline.unwrap_or(far)), if drain_deadline.is_some() => {
                    // Cut off whoever is still in flight: each records an unfinished error.
                    run.abort.cancel();
                    let _ = tokio::time::timeout(Duration::from_secs(10), tracker.wait()).await;
                    break;
                }
            }
        }
        let elapsed = start.elapsed();
        run.abort.cancel();
        run.background.close();

        // Wind down: faults off, last counters, checks, report.
        side.cancel();
        side_tasks.close();
        side_tasks.wait().await;
        faults::cleanup(&http, &target.faults_url(), &fault_state, &recorders[0]).await;
        if let Some(control) = &chaos_control {
            chaos::cleanup(control, &fault_state);
        }
        if let Some(base) = baseline {
            if let Some(now) = target.claims_reader().read(&http).await {
                collector.set_claims(now.since(&base));
            }
        }
        collector.finish();
        let invariants =
            invariants::check(&collector.started, &collector.records, &collector.releases);
        let fault_events = fault_state.events.lock().clone();
        let mut report = RunReport::build(
            &plan,
            &collector,
            invariants,
            fault_events,
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            warnings,
        );
        let sut_after = SutCounters::read_with_token(
            &target.fakes_url,
            &target.matchmaker_urls,
            target.fakes_control_token.as_deref(),
        )
        .await;
        report.sut = Some(sut_after.since(&sut_before));
        let active: Vec<String> = Vec::new();
        publish(
            &self.snapshots,
            self.options.mergeable_snapshots,
            &collector,
            &LiveContext {
                elapsed,
                phase: Phase::Finished,
                active_faults: &active,
                target_rate: 0.0,
                thresholds: &plan.thresholds,
            },
        );
        let outcomes = Outcomes {
            start_unix_us,
            started: std::mem::take(&mut collector.started),
            records: std::mem::take(&mut collector.records),
            releases: std::mem::take(&mut collector.releases),
        };
        Ok((report, outcomes))
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

/// A shard's share of an accounts file (every n-th line from its index), so no account is
/// logged in by two processes at once.
/// For a `flow = "match2"` population: the pool created on the target (template, rule set,
/// pool) and the region tickets report a latency to when the arrival drew none.
async fn match_pool(
    plan: &Plan,
    target: &Target,
    worker: &WorkerCtx,
    token: Option<&GameToken>,
) -> Result<Option<(Arc<crate::scenario::Match2Plan>, String)>, EngineError> {
    if plan.population.behaviour.flow != crate::scenario::Flow::Match2 {
        return Ok(None);
    }
    let Some(m2) = &plan.match2 else {
        return Err(EngineError::Setup(
            "flow \"match2\" needs [target.match2]".to_owned(),
        ));
    };
    let (Some(game), Some(token)) = (&worker.game, token) else {
        return Err(EngineError::Setup(
            "flow \"match2\" needs a game client to create its match pool".to_owned(),
        ));
    };
    let regions: Vec<String> = match &plan.target {
        TargetPlan::Embedded(e) => e.fleet.regions.iter().map(|(r, _)| r.clone()).collect(),
        TargetPlan::Urls(_) => plan
            .population
            .regions
            .iter()
            .map(|(r, _)| r.clone())
            .collect(),
    };
    let regions = if regions.is_empty() {
        vec!["us-east-1".to_owned()]
    } else {
        regions
    };
    let bearer = token
        .get()
        .await
        .map_err(|e| EngineError::Setup(format!("game client login: {e}")))?;
    crate::flows::match2::setup(game, &bearer, &target.namespace, m2, &regions)
        .await
        .map_err(EngineError::Setup)?;
    Ok(Some((Arc::new(m2.clone()), regions[0].clone())))
}

fn shard_accounts(
    accounts: &[crate::target::Account],
    shard: Option<ShardSpec>,
) -> Vec<crate::target::Account> {
    accounts
        .iter()
        .enumerate()
        .filter(|(i, _)| shard.is_none_or(|s| s.owns(*i as u64)))
        .map(|(_, a)| a.clone())
        .collect()
}

/// Users to create before arrivals start.
/// Holds a prepared engine until [`EngineCommand::Start`]. A stop (command or shutdown) before
/// the start lets the run begin and drain at once; other commands wait for the run.
async fn wait_for_start(
    commands: &mut mpsc::Receiver<EngineCommand>,
    shutdown: &CancellationToken,
) {
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(EngineCommand::Start) | None => return,
                Some(EngineCommand::Stop) => {
                    shutdown.cancel();
                    return;
                }
                Some(_) => {}
            },
            () = shutdown.cancelled() => return,
        }
    }
}

fn prefill_count(plan: &Plan, shards: u64) -> u64 {
    let players = plan.expected_arrivals() * plan.mean_party_size() / shards as f64;
    let players = match plan.population.arrival {
        // Closed parties are drawn, so sizes can overshoot a little.
        ArrivalPlan::Closed { .. } => players + 100.0,
        ArrivalPlan::Open { .. } => players * 1.05 + 16.0,
    };
    (players.ceil() as u64).min(50_000)
}

/// One pooled HTTP client, metric shard and source address per worker.
fn build_workers(
    target: &Target,
    recorders: &[Recorder],
) -> Result<Vec<Arc<WorkerCtx>>, EngineError> {
    let mut workers = Vec::with_capacity(recorders.len());
    for (i, recorder) in recorders.iter().enumerate() {
        let source = (!target.sources.is_empty()).then(|| target.sources[i % target.sources.len()]);
        let http = AbClient::http_builder()
            .local_address(source)
            .danger_accept_invalid_certs(target.insecure_tls)
            .build()
            .map_err(|e| EngineError::Setup(format!("http client: {e}")))?;
        let players = AbClient::with_http(
            Config::new(
                target.fakes_url.clone(),
                target.player_client.id.clone(),
                target.player_client.secret.clone(),
                target.namespace.clone(),
            ),
            http.clone(),
        )
        .map_err(|e| EngineError::Setup(e.to_string()))?;
        let game = target
            .game_client
            .as_ref()
            .map(|g| {
                AbClient::with_http(
                    Config::new(
                        target.fakes_url.clone(),
                        g.id.clone(),
                        g.secret.clone(),
                        target.namespace.clone(),
                    ),
                    http.clone(),
                )
            })
            .transpose()
            .map_err(|e| EngineError::Setup(e.to_string()))?;
        workers.push(Arc::new(WorkerCtx {
            players,
            game,
            http,
            recorder: recorder.clone(),
            lobby: LobbyOptions {
                local_addr: source,
                tls: target.lobby_tls.clone(),
                ..LobbyOptions::default()
            },
            source,
        }));
    }
    Ok(workers)
}

/// The loop's state.
struct Loop {
    plan: Arc<Plan>,
    shard: Option<ShardSpec>,
    workers: Vec<Arc<WorkerCtx>>,
    run: Arc<RunCtx>,
    tracker: TaskTracker,
    draws: Draws,
    schedule: Option<ArrivalSchedule>,
    /// Active time (seconds) of the next open-model arrival.
    next_at: Option<f64>,
    /// Arrivals scheduled so far (all shards).
    index: u64,
    start: Instant,
    paused_since: Option<Instant>,
    paused_total: Duration,
    phase: Phase,
}

impl Loop {
    /// Seconds of arrival time so far (pauses excluded).
    fn active_now(&self) -> f64 {
        let paused_now = self.paused_since.map_or(Duration::ZERO, |p| p.elapsed());
        (self
            .start
            .elapsed()
            .saturating_sub(self.paused_total + paused_now))
        .as_secs_f64()
    }

    fn target_rate(&self) -> f64 {
        match (&self.schedule, self.phase) {
            (Some(s), Phase::Running) => s.rate_at(self.active_now()),
            _ => 0.0,
        }
    }

    fn set_rate(&mut self, rate: f64) {
        let now = self.active_now();
        if let Some(s) = self.schedule.as_mut() {
            s.set_rate(now, rate);
            self.next_at = s.next_arrival();
        }
    }

    fn begin_drain(&mut self, arrivals_over: &CancellationToken) -> Instant {
        arrivals_over.cancel();
        self.tracker.close();
        if let Some(since) = self.paused_since.take() {
            self.paused_total += since.elapsed();
        }
        self.phase = Phase::Draining;
        Instant::now() + self.plan.run.drain
    }

    /// Spawns every open-model arrival that is due.
    fn spawn_due(&mut self) {
        let duration = self.plan.run.duration.as_secs_f64();
        let now = self.active_now();
        while let Some(at) = self.next_at {
            if at >= duration || at > now {
                break;
            }
            let index = self.index;
            self.index += 1;
            let spec = self.draws.party(&self.plan.population);
            let arrival = draw_arrival(
                &mut self.draws,
                &self.plan.population.behaviour,
                index,
                self.start + self.paused_total + Duration::from_secs_f64(at),
                spec,
            );
            self.next_at = self
                .schedule
                .as_mut()
                .and_then(ArrivalSchedule::next_arrival);
            if self.shard.is_some_and(|s| !s.owns(index)) {
                continue;
            }
            let worker = Arc::clone(&self.workers[(index as usize) % self.workers.len()]);
            let run = Arc::clone(&self.run);
            self.tracker.spawn(open_party(worker, run, arrival));
        }
    }

    /// Forms the closed model's parties and starts one slot task each.
    fn start_slots(
        &mut self,
        players: u32,
        ramp_up: Duration,
        think: Duration,
        pause: &watch::Receiver<bool>,
        over: &CancellationToken,
    ) {
        let mut specs = Vec::new();
        let mut left = players;
        while left > 0 {
            let mut spec = self.draws.party(&self.plan.population);
            spec.size = spec.size.min(left);
            left -= spec.size;
            specs.push(spec);
        }
        let slots = specs.len() as u64;
        // Search ids of the closed model are drawn per process; with shards, each takes every
        // n-th id from its own index so ids stay unique across the processes of one run.
        let (first_id, id_stride) = self
            .shard
            .map_or((0, 1), |s| (u64::from(s.index), u64::from(s.count.max(1))));
        let ids = Arc::new(Ids {
            next: AtomicU64::new(0),
            first: first_id,
            stride: id_stride,
        });
        for (i, spec) in specs.into_iter().enumerate() {
            let i = i as u64;
            if self.shard.is_some_and(|s| !s.owns(i)) {
                continue;
            }
            let first = self.start + ramp_up.mul_f64(i as f64 / slots.max(1) as f64);
            let slot = Slot {
                worker: Arc::clone(&self.workers[(i as usize) % self.workers.len()]),
                run: Arc::clone(&self.run),
                plan: Arc::clone(&self.plan),
                spec,
                first,
                think,
                pause: pause.clone(),
                over: over.clone(),
                ids: Arc::clone(&ids),
                draws: Draws::new(
                    self.plan
                        .run
                        .seed
                        .wrapping_add(i.wrapping_mul(0x2545_f491_4f6c_dd1d)),
                ),
            };
            self.tracker.spawn(slot.run());
        }
    }
}

/// Draws an arrival's behaviours (cancel, socket drops, DSMC check).
fn draw_arrival(
    draws: &mut Draws,
    b: &Behaviour,
    id: u64,
    scheduled: Instant,
    spec: PartySpec,
) -> Arrival {
    let cancel_after = b
        .cancel
        .filter(|c| draws.chance(c.probability))
        .map(|c| c.after);
    let drop_after = (0..spec.size)
        .map(|_| {
            b.drop_socket
                .filter(|d| draws.chance(d.probability))
                .map(|d| d.after.mul_f64(draws.fraction()))
        })
        .collect();
    let verify = draws.chance(b.verify_server);
    Arrival {
        id,
        scheduled,
        spec,
        cancel_after,
        drop_after,
        verify,
    }
}

/// An open-model party: fresh users, one search, sockets closed.
async fn open_party(worker: Arc<WorkerCtx>, run: Arc<RunCtx>, arrival: Arrival) {
    let taken = tokio::select! {
        taken = run.users.take(arrival.spec.size as usize) => taken.map_err(|k| (Endpoint::CreateUsers, k)),
        () = run.abort.cancelled() => Err((Endpoint::Run, ErrorKind::Unfinished)),
    };
    let users = match taken {
        Ok(users) => users,
        Err((endpoint, kind)) => {
            no_users(&worker, &arrival, endpoint, kind);
            return;
        }
    };
    let mut party = Party::new(users);
    player::search(&worker, &run, &mut party, &arrival).await;
    let users = party.close().await;
    run.users.give_back(users);
}

/// Records a party that could not get accounts: one error outcome per member.
fn no_users(worker: &WorkerCtx, arrival: &Arrival, endpoint: Endpoint, kind: ErrorKind) {
    let lag = Instant::now().saturating_duration_since(arrival.scheduled);
    worker.recorder.arrival(arrival.id, arrival.spec.size, lag);
    for member in 0..arrival.spec.size {
        worker.recorder.finish(
            PlayerRecord {
                arrival: arrival.id,
                member: u16::try_from(member).unwrap_or(u16::MAX),
                outcome: Outcome::Error,
                error: Some((endpoint, kind)),
                session: None,
                answered: None,
                found: Vec::new(),
                found_at_ms: None,
                answered_at_ms: None,
                dsmc_server: None,
            },
            None,
        );
    }
}

/// A closed-model party: the same users search again and again.
struct Slot {
    worker: Arc<WorkerCtx>,
    run: Arc<RunCtx>,
    plan: Arc<Plan>,
    spec: PartySpec,
    first: Instant,
    think: Duration,
    pause: watch::Receiver<bool>,
    over: CancellationToken,
    ids: Arc<Ids>,
    draws: Draws,
}

/// The closed model's search ids: `first + k * stride` for k = 0, 1, …
struct Ids {
    next: AtomicU64,
    first: u64,
    stride: u64,
}

impl Slot {
    async fn run(mut self) {
        tokio::select! {
            () = tokio::time::sleep_until(self.first) => {}
            () = self.over.cancelled() => return,
        }
        let size = self.spec.size as usize;
        let taken = tokio::select! {
            taken = self.run.users.take(size) => taken,
            // Arrivals ended while waiting for accounts: this party never arrived.
            () = self.over.cancelled() => return,
        };
        let users = match taken {
            Ok(users) => users,
            Err(kind) => {
                let arrival = self.next_arrival();
                no_users(&self.worker, &arrival, Endpoint::CreateUsers, kind);
                return;
            }
        };
        let mut party = Party::new(users);
        loop {
            if self.over.is_cancelled() {
                break;
            }
            if *self.pause.borrow() {
                tokio::select! {
                    _ = self.pause.wait_for(|paused| !paused) => {}
                    () = self.over.cancelled() => break,
                }
                continue;
            }
            let arrival = self.next_arrival();
            // Boxed: a search's state (~10 KiB) lives on the heap only while the search runs,
            // not for the whole life of the slot — an idle player in a match holds a small task.
            let end = Box::pin(player::search(
                &self.worker,
                &self.run,
                &mut party,
                &arrival,
            ))
            .await;
            let mut wait = self.think;
            if let SearchEnd::Matched { .. } = end {
                wait += self
                    .plan
                    .population
                    .behaviour
                    .match_length
                    .unwrap_or_default();
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.over.cancelled() => break,
            }
        }
        let users = party.close().await;
        self.run.users.give_back(users);
    }

    fn next_arrival(&mut self) -> Arrival {
        let k = self.ids.next.fetch_add(1, Ordering::Relaxed);
        let id = self.ids.first + k * self.ids.stride;
        draw_arrival(
            &mut self.draws,
            &self.plan.population.behaviour,
            id,
            Instant::now(),
            self.spec.clone(),
        )
    }
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
    use super::*;
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
