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
}

impl Default for FakesConfig {
    fn default() -> Self {
        Self {
            seed: Seed::builtin(),
            fleet: FleetConfig::default(),
            faults: FaultFile::default(),
            control_token: None,
            match_functions: std::collections::BTreeMap::new(),
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
    /// The accept loop's counters.
    pub accept: Arc<serving::AcceptStats>,
    /// The lobby shards' own counters (empty without shards).
    pub lobby_shards: ShardBoard,
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
    /// Builds the stores from `config`, signing with `key`, installs the fault hooks and, when
    /// called inside a tokio runtime, starts the fault driver (see [`crate::faults::driver`]).
    pub fn new(config: FakesConfig, key: SigningKey) -> Self {
        let keys = Arc::new(KeyRing::new(key));
        let faults = Faults::new(&config.faults, config.fault_context());
        let state = Self(Arc::new(Shared {
            iam: IamStore::new(keys, &config.seed),
            lobby: Hub::new(),
            sessions: SessionStore::new(),
            dsmc: Fleet::new(config.fleet.clone()),
            game_sessions: GameSessions::new(),
            parties: crate::session::party::Parties::new(),
            match2: Match2::new(),
            faults,
            requests: RequestStats::new(),
            accept: Arc::default(),
            lobby_shards: ShardBoard::default(),
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
                Ok(function) => state.match2.register_function(name, Arc::new(function)),
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
