//! The running phase: one loop owns the arrival schedule (open model) or starts the slots
//! (closed model), takes [`EngineCommand`]s (stop, pause, resume, rate), drains the metric
//! shards and publishes a snapshot every tick, closes a second of figures every second, and
//! ends when the drain is over — every party done, or the drain deadline passed and the rest
//! were cut off as unfinished. It hands back how long the run took.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::parties::{Ids, Slot, draw_arrival, open_party};
use super::schedule::{ArrivalSchedule, Draws};
use super::side::SideTasks;
use super::{EngineCommand, EngineOptions, ShardSpec, publish};
use crate::metrics::{Collector, LiveContext, MetricsSnapshot, Phase};
use crate::player::{RunCtx, WorkerCtx};
use crate::scenario::{ArrivalPlan, Plan};

/// What the loop works with.
pub(super) struct Running<'a> {
    pub plan: &'a Arc<Plan>,
    pub options: &'a EngineOptions,
    pub snapshots: &'a watch::Sender<MetricsSnapshot>,
    pub collector: &'a mut Collector,
    pub side: &'a SideTasks,
    pub workers: Vec<Arc<WorkerCtx>>,
    pub run: &'a Arc<RunCtx>,
    pub commands: mpsc::Receiver<EngineCommand>,
    pub shutdown: &'a CancellationToken,
}

/// Runs arrivals to the end of the drain; returns the run's elapsed time.
pub(super) async fn run(running: Running<'_>) -> Duration {
    let Running {
        plan,
        options,
        snapshots,
        collector,
        side,
        workers,
        run,
        mut commands,
        shutdown,
    } = running;
    let start = run.start;
    let tracker = TaskTracker::new();
    let arrivals_over = CancellationToken::new();
    let (pause_tx, pause_rx) = watch::channel(false);
    let mut lp = Loop {
        plan: Arc::clone(plan),
        shard: options.shard,
        workers,
        run: Arc::clone(run),
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

    let mut tick = tokio::time::interval(options.snapshot_every);
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
                    if let Some(c) = *side.latest_claims.lock() {
                        collector.set_claims(c);
                    }
                    collector.close_second(lp.target_rate(), side.fault_state.active());
                    next_second += Duration::from_secs(1);
                }
                let active = side.fault_state.active();
                publish(snapshots, options.mergeable_snapshots, collector, &LiveContext {
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
    start.elapsed()
}

/// The loop's state.
pub(super) struct Loop {
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
