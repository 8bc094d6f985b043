//! Preparing a run, before the first arrival: the worker contexts (one HTTP client, metric
//! shard and source address each), the open-files check (refuse what cannot fit, warn about
//! what may not), the game token, a `flow = "match2"` population's pool, the user accounts
//! (a shard's share of an accounts file, or users created up front), and holding for
//! [`EngineCommand::Start`].
//!
//! Nothing here runs once arrivals have started.

use std::sync::Arc;

use accelbyte::client::{AbClient, Config, LobbyOptions};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::users::{self, UserPool};
use super::{EngineCommand, EngineError, EngineOptions, ShardSpec};
use crate::limits;
use crate::metrics::Recorder;
use crate::player::{GameToken, WorkerCtx};
use crate::scenario::{ArrivalPlan, Plan, TargetPlan};
use crate::target::Target;

/// The run's shards (1 when not sharded).
pub(super) fn shard_count(options: &EngineOptions) -> u64 {
    options.shard.map_or(1, |s| u64::from(s.count.max(1)))
}

/// Refuses a closed population that cannot fit under the open-files limit; returns a warning
/// when an open one may run out of descriptors at its peak.
pub(super) fn check_capacity(
    plan: &Plan,
    options: &EngineOptions,
    target: &Target,
) -> Result<Vec<String>, EngineError> {
    let mut warnings = Vec::new();
    let limit = options
        .open_files
        .or_else(limits::open_files_limit)
        .unwrap_or(1024);
    let capacity = limits::capacity(limit, target.fds_per_player, plan.run.workers);
    let shards = shard_count(options);
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
    Ok(warnings)
}

/// What the players need from preparation.
pub(super) struct Accounts {
    pub game_token: Option<Arc<GameToken>>,
    pub match2: Option<(Arc<crate::scenario::Match2Plan>, String)>,
    pub users: UserPool,
}

/// Logs the game client in, sets up a match2 pool when the flow needs one, and gets the
/// users: a shard's share of the accounts file, or users created with the game token.
pub(super) async fn accounts(
    plan: &Plan,
    options: &EngineOptions,
    target: &Target,
    worker: &WorkerCtx,
    recorder: &Recorder,
) -> Result<Accounts, EngineError> {
    let game_token = match &worker.game {
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
    let match2 = match_pool(plan, target, worker, game_token.as_deref()).await?;
    let users = match (&target.accounts, &game_token) {
        (Some(accounts), _) => {
            UserPool::fixed(shard_accounts(accounts, options.shard), recorder.clone())
        }
        (None, Some(token)) => {
            let pool = UserPool::created(
                token.client().clone(),
                Arc::clone(token),
                target.namespace.clone(),
                users::MAX_BATCH / 4,
                recorder.clone(),
            );
            pool.prefill(prefill_count(plan, shard_count(options)))
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
    Ok(Accounts {
        game_token,
        match2,
        users,
    })
}

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

/// A shard's share of an accounts file (every n-th line from its index), so no account is
/// logged in by two processes at once.
pub(super) fn shard_accounts(
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

/// Holds a prepared engine until [`EngineCommand::Start`]. A stop (command or shutdown) before
/// the start lets the run begin and drain at once; other commands wait for the run.
pub(super) async fn wait_for_start(
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

/// Users to create before arrivals start.
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
pub(super) fn build_workers(
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
