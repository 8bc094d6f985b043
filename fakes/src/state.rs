//! The shared state of one fakes instance: a cheap-clone handle around every service's store,
//! the live fault set and the request counters.

use std::sync::{Arc, Weak};

use crate::dsmc::fleet::{Fleet, FleetConfig};
use crate::faults::{Context, FaultFile, Faults};
use crate::iam::store::IamStore;
use crate::keys::{KeyRing, SigningKey};
use crate::lobby::cluster::ShardBoard;
use crate::lobby::hub::Hub;
use crate::match2::store::Match2;
use crate::seed::Seed;
use crate::session::store::GameSessions;
use crate::sessionbrowser::store::SessionStore;
use crate::stats::RequestStats;

/// Everything `fakes` needs to start.
#[derive(Debug, Clone)]
pub struct FakesConfig {
    pub seed: Seed,
    pub fleet: FleetConfig,
    /// Faults active from the start (windows count from when the state is built) and the
    /// seed of every fault decision.
    pub faults: FaultFile,
    /// When set, `/_fakes/*` answers only requests with `Authorization: Bearer <this>`.
    pub control_token: Option<String>,
    /// Match functions pools may name, by name → gRPC address (`http://127.0.0.1:6565`): each is
    /// called over AGS Extend's `MakeMatches` ([`crate::match2::remote`]).
    pub match_functions: std::collections::BTreeMap<String, String>,
    /// When set, the state survives a crash: every store is saved in this directory
    /// ([`crate::durable`]) and restored from it by [`AppState::open`].
    pub state_dir: Option<std::path::PathBuf>,
}

impl Default for FakesConfig {
    fn default() -> Self {
        Self {
            seed: Seed::builtin(),
            fleet: FleetConfig::default(),
            faults: FaultFile::default(),
            control_token: None,
            match_functions: std::collections::BTreeMap::new(),
            state_dir: None,
        }
    }
}

impl FakesConfig {
    /// What the fault set needs to validate faults against this configuration.
    pub fn fault_context(&self) -> Context {
        Context {
            regions: self.fleet.regions.iter().map(|r| r.name.clone()).collect(),
        }
    }
}

/// The services' stores. Each guards its own data; none holds a lock across an `.await`.
#[derive(Debug)]
pub struct Shared {
    pub config: FakesConfig,
    pub iam: IamStore,
    pub lobby: Hub,
    pub sessions: SessionStore,
    pub dsmc: Fleet,
    /// Session v2: templates and game sessions.
    pub game_sessions: GameSessions,
    /// Session v2: parties.
    pub parties: crate::session::party::Parties,
    /// Matchmaking v2: rule sets, pools, tickets.
    pub match2: Match2,
    pub faults: Faults,
    pub requests: RequestStats,
    /// The state file's writer, with `state_dir` only.
    pub journal: Option<Arc<crate::durable::journal::Journal>>,
    /// The accept loop's counters.
    pub accept: Arc<serving::AcceptStats>,
    /// The lobby shards' own counters (empty without shards).
    pub lobby_shards: ShardBoard,
    /// The server's background tasks (fault driver, match2 loop, DS requests, delayed lobby
    /// sends, shard links): they stop when the server does (see [`serving::lifecycle`]).
    pub tasks: serving::Tasks,
}

/// A cheap-clone handle to [`Shared`], the axum state of every route.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

/// A handle that does not keep the state alive (background tasks hold this).
#[derive(Debug, Clone)]
pub struct WeakState(Weak<Shared>);

impl WeakState {
    pub fn upgrade(&self) -> Option<AppState> {
        self.0.upgrade().map(AppState)
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// [`AppState::new`], then with a `state_dir`: the saved state restored from it (the saved
    /// signing keys replace `key`), the fault set applied to it again, and the state file's
    /// writer started. Call inside a tokio runtime. Errors name the file and the part.
    pub fn open(config: FakesConfig, key: SigningKey) -> anyhow::Result<Self> {
        let state = Self::new(config, key);
        if crate::durable::load(&state)? {
            crate::faults::driver::reconcile(&state);
            tracing::info!(
                dir = ?state.config.state_dir,
                users = state.iam.user_count(),
                "fakes: state restored"
            );
        }
        crate::durable::journal::spawn(&state);
        Ok(state)
    }

    /// Builds the stores from `config`, signing with `key`, installs the fault hooks and, when
    /// called inside a tokio runtime, starts the fault driver (see [`crate::faults::driver`])
    /// and the match2 loop on the state's [`Shared::tasks`]. `state_dir` is honoured by
    /// [`AppState::open`] only.
    pub fn new(config: FakesConfig, key: SigningKey) -> Self {
        let keys = Arc::new(KeyRing::new(key));
        let faults = Faults::new(&config.faults, config.fault_context());
        let tasks = serving::Tasks::new();
        let state = Self(Arc::new(Shared {
            iam: IamStore::new(keys, &config.seed),
            lobby: Hub::with_tasks(tasks.clone()),
            sessions: SessionStore::new(),
            dsmc: Fleet::new(config.fleet.clone()),
            game_sessions: GameSessions::new(),
            parties: crate::session::party::Parties::new(),
            match2: Match2::new(),
            faults,
            requests: RequestStats::new(),
            accept: Arc::default(),
            lobby_shards: ShardBoard::default(),
            tasks,
            journal: config
                .state_dir
                .clone()
                .map(|dir| Arc::new(crate::durable::journal::Journal::new(dir))),
            config,
        }));
        state
            .lobby
            .set_notify_hook(Some(state.faults.notify_hook()));
        state
            .dsmc
            .set_claim_override(Some(state.faults.claim_hook()));
        crate::faults::driver::reconcile(&state);
        crate::faults::driver::spawn(&state);
        for (name, url) in &state.config.match_functions {
            match crate::match2::remote::RemoteMatchFunction::new(url) {
                Ok(function) => {
                    state.match2.register_function(
                        name,
                        Arc::new(function.with_bearer(
                            crate::match2::caller_token::CallerToken::of_match2(&state),
                        )),
                    )
                }
                Err(error) => {
                    tracing::error!(%name, %error, "match2: match function not registered")
                }
            }
        }
        crate::match2::engine::spawn(&state);
        state
    }

    pub fn downgrade(&self) -> WeakState {
        WeakState(Arc::downgrade(&self.0))
    }

    /// Back to the seed: users, tokens, sessions, servers and queued notifications are dropped;
    /// open lobby sockets stay open. The fault set goes back to the one configured at start
    /// (windows restarting now) with its seed; request counters are kept.
    pub fn reset(&self) {
        self.iam.reset(&self.config.seed);
        self.lobby.reset();
        self.sessions.reset();
        self.dsmc.reset();
        self.game_sessions.reset();
        self.parties.reset();
        self.match2.reset();
        // The fleet's reset dropped its capacities and claim hook.
        self.faults.applied().fleet_was_reset();
        self.dsmc.set_claim_override(Some(self.faults.claim_hook()));
        self.faults.reset();
        crate::faults::driver::reconcile(self);
    }
}
