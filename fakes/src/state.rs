//! The shared state of one fakes instance: a cheap-clone handle around every service's store.

use std::sync::Arc;

use crate::dsmc::fleet::{Fleet, FleetConfig};
use crate::iam::store::IamStore;
use crate::keys::{KeyRing, SigningKey};
use crate::lobby::hub::Hub;
use crate::seed::Seed;
use crate::sessionbrowser::store::SessionStore;

/// Everything `fakes` needs to start.
#[derive(Debug, Clone)]
pub struct FakesConfig {
    pub seed: Seed,
    pub fleet: FleetConfig,
}

impl Default for FakesConfig {
    fn default() -> Self {
        Self { seed: Seed::builtin(), fleet: FleetConfig::default() }
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
}

/// A cheap-clone handle to [`Shared`], the axum state of every route.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// Builds the stores from `config`, signing with `key`.
    pub fn new(config: FakesConfig, key: SigningKey) -> Self {
        let keys = Arc::new(KeyRing::new(key));
        Self(Arc::new(Shared {
            iam: IamStore::new(keys, &config.seed),
            lobby: Hub::new(),
            sessions: SessionStore::new(),
            dsmc: Fleet::new(config.fleet.clone()),
            config,
        }))
    }

    /// Back to the seed: users, tokens, sessions, servers and queued notifications are dropped;
    /// open lobby sockets stay open.
    pub fn reset(&self) {
        self.iam.reset(&self.config.seed);
        self.lobby.reset();
        self.sessions.reset();
        self.dsmc.reset();
    }
}
