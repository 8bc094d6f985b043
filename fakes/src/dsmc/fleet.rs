//! The simulated dedicated-server fleet behind DSMC: a fixed pool of servers per region and the
//! sessions that hold them.
//!
//! Owns every server and every DSMC session under ONE mutex, so a server can never be handed to
//! two sessions however requests interleave: picking a free server, marking it taken and
//! recording the session happen in one critical section. No `.await` ever runs under the lock
//! (every method is synchronous), which is why a `parking_lot` mutex is enough.
//!
//! Lifecycle of a server, driven by its session:
//! - register picks a free server (in the requested region, or the first configured region with
//!   one free) and the server becomes `CREATING`;
//! - it turns `READY` at `registered + ready_delay`. Nothing ticks: the status is settled lazily
//!   from [`Instant`]s whenever the session is touched, and the `READY` history entry carries the
//!   moment it became ready, not the moment someone looked;
//! - a successful claim makes it `BUSY`;
//! - cancelling or deleting the session returns the server to the pool at once.
//!
//! Fault injection hooks (used by tests and, later, by scenario faults): a region's capacity can
//! be lowered at run time ([`Fleet::set_region_capacity`]), and a [`ClaimOverride`] can force the
//! outcome of claims ([`Fleet::set_claim_override`]). Every claim is decided in one function
//! (`Inner::claim`), so a fault cannot bypass the normal checks or the counters.
//!
//! Invariant: this module knows no HTTP and no wire types; `dsmc` and `sessionbrowser` convert
//! [`SessionInfo`] at the edge.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use accelbyte::models::dsmc::status;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Deserializer, Serialize};

/// The region a default fleet runs in.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Servers in the default region: plenty for the tutorial and small benches.
pub const DEFAULT_SERVERS: usize = 100;

/// One region of the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionConfig {
    pub name: String,
    /// How many servers the region has; each gets its own port.
    pub servers: usize,
}

/// The fleet's shape, as read from the `[fleet]` table of a config file (unknown keys refused).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FleetConfig {
    /// Regions in preference order: a register that names no region takes the first one with a
    /// free server.
    pub regions: Vec<RegionConfig>,
    /// Time from register to `READY`. The default is zero because the tutorial waits a fixed 5 s
    /// and claims once, without polling. In a file: `"300ms"`, `"5s"`, `"1.5s"` (an integer
    /// number of milliseconds still works, deprecated).
    #[serde(deserialize_with = "deserialize_duration")]
    pub ready_delay: Duration,
    /// The deployment reported for servers when a register names none.
    pub deployment: String,
    /// The address every server reports; clients parse it as an IP literal.
    pub ip: String,
    /// The first server's port; the others count up from it, so every server's `ip:port` is
    /// unique.
    pub base_port: u16,
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            regions: vec![RegionConfig {
                name: DEFAULT_REGION.to_owned(),
                servers: DEFAULT_SERVERS,
            }],
            ready_delay: Duration::ZERO,
            deployment: "default".to_owned(),
            ip: "127.0.0.1".to_owned(),
            base_port: 7777,
        }
    }
}

/// Why a [`FleetConfig`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FleetConfigError {
    #[error("fleet: a region has an empty name")]
    EmptyRegionName,
    #[error("fleet: region {0} is listed twice")]
    DuplicateRegion(String),
    #[error("fleet: ip {0:?} is not an IP address")]
    InvalidIp(String),
    #[error("fleet: base_port must not be 0")]
    ZeroBasePort,
    #[error("fleet: {servers} servers from port {base_port} run past port 65535")]
    PortsExhausted { base_port: u16, servers: usize },
}

impl FleetConfig {
    /// Checks what [`Fleet::new`] would otherwise have to paper over: config loaders call this
    /// and refuse the file; `Fleet::new` itself never fails (it skips servers without a port).
    pub fn validate(&self) -> Result<(), FleetConfigError> {
        let mut seen = BTreeSet::new();
        for region in &self.regions {
            if region.name.trim().is_empty() {
                return Err(FleetConfigError::EmptyRegionName);
            }
            if !seen.insert(region.name.as_str()) {
                return Err(FleetConfigError::DuplicateRegion(region.name.clone()));
            }
        }
        if self.ip.parse::<IpAddr>().is_err() {
            return Err(FleetConfigError::InvalidIp(self.ip.clone()));
        }
        if self.base_port == 0 {
            return Err(FleetConfigError::ZeroBasePort);
        }
        let servers = self.total_servers();
        if usize::from(self.base_port).saturating_add(servers) > usize::from(u16::MAX) + 1 {
            return Err(FleetConfigError::PortsExhausted {
                base_port: self.base_port,
                servers,
            });
        }
        Ok(())
    }

    /// Servers over all regions.
    pub fn total_servers(&self) -> usize {
        self.regions
            .iter()
            .fold(0, |n, r| n.saturating_add(r.servers))
    }
}

/// Accepts a duration of the one grammar (`"300ms"`, `"1.5s"`, see `durations`), or the
/// deprecated integer number of milliseconds, which logs a warning (a fleet file is read once, at
/// start).
fn deserialize_duration<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    struct ReadyDelay;
    impl serde::de::Visitor<'_> for ReadyDelay {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(durations::GRAMMAR)
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Duration, E> {
            durations::parse(text).map_err(E::custom)
        }

        fn visit_i64<E: serde::de::Error>(self, ms: i64) -> Result<Duration, E> {
            let ms = u64::try_from(ms).map_err(|_| {
                E::custom(format!("{ms} is negative: expected {}", durations::GRAMMAR))
            })?;
            self.visit_u64(ms)
        }

        fn visit_u64<E: serde::de::Error>(self, ms: u64) -> Result<Duration, E> {
            let d = Duration::from_millis(ms);
            tracing::warn!(
                "fleet: an integer `ready_delay` (milliseconds) is deprecated: write \
                 `ready_delay = \"{}\"` instead",
                durations::format(d)
            );
            Ok(d)
        }
    }
    de.deserialize_any(ReadyDelay)
}

/// A server's status while a session holds it (a free server has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServerStatus {
    Creating,
    Ready,
    Busy,
}

impl ServerStatus {
    /// The AGS spelling (`CREATING`, `READY`, `BUSY`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => status::CREATING,
            Self::Ready => status::READY,
            Self::Busy => status::BUSY,
        }
    }
}

impl fmt::Display for ServerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of a server's status history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatusChange {
    pub status: ServerStatus,
    pub at: DateTime<Utc>,
}

/// What a register asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registration {
    pub namespace: String,
    pub session_id: String,
    /// Empty: any region.
    pub region: String,
    /// Non-empty: exactly this server.
    pub pod_name: String,
    /// Empty: the configured deployment.
    pub deployment: String,
    pub game_mode: String,
    pub client_version: String,
    pub configuration: String,
}

/// A snapshot of one DSMC session and the server it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: String,
    pub namespace: String,
    pub region: String,
    pub pod_name: String,
    pub ip: String,
    pub port: u16,
    pub deployment: String,
    pub game_mode: String,
    pub client_version: String,
    pub configuration: String,
    /// New for every registration: tells two uses of the same server apart.
    pub allocation_id: String,
    pub status: ServerStatus,
    pub created_at: DateTime<Utc>,
    /// Oldest first; never empty (it starts with `CREATING`).
    pub history: Vec<StatusChange>,
}

impl SessionInfo {
    /// The time of the last status change.
    pub fn last_update(&self) -> DateTime<Utc> {
        self.history.last().map_or(self.created_at, |c| c.at)
    }
}

/// Why a register was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    #[error("session {0} already exists")]
    Exists(String),
    #[error("no dedicated server is free{}", region.as_ref().map(|r| format!(" in region {r}")).unwrap_or_default())]
    NoCapacity { region: Option<String> },
    #[error("server {0} is in use")]
    PodBusy(String),
    #[error("no server is named {0}")]
    PodNotFound(String),
    #[error("region {region} is not configured (known: {known})")]
    UnknownRegion { region: String, known: String },
    #[error("server {pod} is in region {actual}, not {requested}")]
    RegionMismatch {
        pod: String,
        actual: String,
        requested: String,
    },
}

/// Why a claim failed; also what a [`ClaimOverride`] may force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum ClaimFailure {
    #[error("session not found")]
    NotFound,
    #[error("dedicated server is already claimed")]
    Conflict,
    #[error("dedicated server is not ready to be claimed")]
    NotReady,
    #[error("dedicated server is unreachable")]
    Unreachable,
}

/// Why a cancel was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CancelError {
    #[error("session not found")]
    NotFound,
    #[error("session cannot be canceled: its server is {0}, not CREATING")]
    NotCreating(ServerStatus),
}

/// A region the fleet does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("region {0} is not configured")]
pub struct UnknownRegion(pub String);

/// What a [`ClaimOverride`] sees of the claim it may override.
#[derive(Debug, Clone, Copy)]
pub struct ClaimAttempt<'a> {
    pub namespace: &'a str,
    pub session_id: &'a str,
    pub region: &'a str,
    pub pod_name: &'a str,
    /// The status the claim would be judged on without the override.
    pub status: ServerStatus,
}

/// Forces claim outcomes: return `Some(failure)` to make this claim fail that way, `None` to
/// let the normal rules decide. Called for claims of existing sessions only, under the fleet's
/// lock: it must be quick and must not call back into the [`Fleet`] (that would deadlock).
pub type ClaimOverride = Arc<dyn Fn(&ClaimAttempt<'_>) -> Option<ClaimFailure> + Send + Sync>;

/// Claim failures by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimFailures {
    pub not_found: u64,
    pub conflict: u64,
    pub not_ready: u64,
    pub unreachable: u64,
}

/// Register refusals by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterFailures {
    /// The session id was taken (409).
    pub exists: u64,
    /// No free server, or the named one busy (503).
    pub no_capacity: u64,
    /// `pod_name` named no server (404).
    pub pod_not_found: u64,
    /// Unknown region or region/pod mismatch (400).
    pub invalid: u64,
}

/// Servers of one region right now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionUsage {
    pub name: String,
    /// Servers the region has.
    pub total: usize,
    /// How many may be in use at once (normally `total`; lowered by fault injection).
    pub capacity: usize,
    pub creating: usize,
    pub ready: usize,
    pub busy: usize,
    /// How many a register could take now.
    pub free: usize,
}

/// Counters since start or the last [`Fleet::reset`], plus current usage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FleetStats {
    /// Successful registers.
    pub registers: u64,
    pub register_failures: RegisterFailures,
    pub claims_attempted: u64,
    pub claims_succeeded: u64,
    pub claims_failed: ClaimFailures,
    pub sessions_cancelled: u64,
    pub sessions_deleted: u64,
    pub regions: Vec<RegionUsage>,
}

/// The fleet: servers, the sessions holding them, counters and fault hooks.
pub struct Fleet {
    config: FleetConfig,
    inner: Mutex<Inner>,
}

impl fmt::Debug for Fleet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Fleet");
        out.field("config", &self.config);
        // `try_lock`: formatting must never wait on (or deadlock against) a holder of the lock.
        match self.inner.try_lock() {
            Some(inner) => out
                .field("servers", &inner.servers.len())
                .field("sessions", &inner.session_count())
                .field("claim_override", &inner.claim_override.is_some()),
            None => out.field("inner", &"<locked>"),
        };
        out.finish()
    }
}

impl Fleet {
    /// Builds the configured servers, all free. Servers that would need a port past 65535 are
    /// left out ([`FleetConfig::validate`] reports that case up front).
    pub fn new(config: FleetConfig) -> Self {
        let inner = Inner::build(&config);
        Self {
            config,
            inner: Mutex::new(inner),
        }
    }

    pub fn config(&self) -> &FleetConfig {
        &self.config
    }

    /// Back to the configured fleet: sessions dropped, servers freed, counters zeroed, region
    /// capacities and the claim override cleared.
    pub fn reset(&self) {
        *self.inner.lock() = Inner::build(&self.config);
    }

    /// Writes the sessions (with their servers and claims), region capacities and counters as
    /// JSON (saved state). The servers themselves come from the configuration.
    pub fn save_to(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let inner = self.inner.lock();
        serde_json::to_writer(
            out,
            &SavedFleetRef {
                sessions: &inner.sessions,
                capacities: inner.regions.iter().map(|r| r.capacity).collect(),
                next_seq: inner.next_seq,
                counters: &inner.counters,
            },
        )
    }

    /// Rebuilds the configured fleet with the saved sessions holding their servers; the
    /// installed claim hook stays. Start with the same fleet configuration: a session whose
    /// server or region does not exist in it is an error.
    pub fn restore_from(&self, saved: serde_json::Value) -> serde_json::Result<()> {
        use serde::de::Error;
        let saved: SavedFleet = serde_json::from_value(saved)?;
        let mut restored = Inner::build(&self.config);
        for (region, capacity) in restored.regions.iter_mut().zip(&saved.capacities) {
            region.capacity = *capacity;
        }
        for record in saved.sessions.values().flat_map(HashMap::values) {
            let held = restored
                .regions
                .get_mut(record.region)
                .is_some_and(|region| {
                    let was_free = region.free.remove(&record.server);
                    region.in_use += usize::from(was_free);
                    was_free
                });
            if !held {
                return Err(serde_json::Error::custom(format!(
                    "session {}: its server {} is not a free server of region {} in this fleet",
                    record.id, record.server, record.region
                )));
            }
        }
        restored.sessions = saved.sessions;
        restored.next_seq = saved.next_seq;
        restored.counters = saved.counters;
        let mut inner = self.inner.lock();
        restored.claim_override = inner.claim_override.take();
        *inner = restored;
        Ok(())
    }

    /// Registers a session and gives it a server, `CREATING` until `ready_delay` has passed.
    pub fn register(&self, registration: Registration) -> Result<SessionInfo, RegisterError> {
        let now = Instant::now();
        let wall = Utc::now();
        let mut inner = self.inner.lock();
        let result = inner.register(&self.config, registration, now, wall);
        let counters = &mut inner.counters;
        let failures = &mut counters.register_failures;
        match &result {
            Ok(_) => counters.registers += 1,
            Err(RegisterError::Exists(_)) => failures.exists += 1,
            Err(RegisterError::NoCapacity { .. } | RegisterError::PodBusy(_)) => {
                failures.no_capacity += 1
            }
            Err(RegisterError::PodNotFound(_)) => failures.pod_not_found += 1,
            Err(RegisterError::UnknownRegion { .. } | RegisterError::RegionMismatch { .. }) => {
                failures.invalid += 1
            }
        }
        result
    }

    /// Claims the session's server: `READY` becomes `BUSY`.
    pub fn claim(&self, namespace: &str, session_id: &str) -> Result<(), ClaimFailure> {
        self.inner
            .lock()
            .claim(namespace, session_id, Instant::now(), Utc::now())
    }

    /// One session, with its status settled to now.
    pub fn session(&self, namespace: &str, session_id: &str) -> Option<SessionInfo> {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        inner.settle_one(namespace, session_id, now)?;
        inner.info(namespace, session_id)
    }

    /// Those of `ids` that exist, keyed by id: one lock for a whole page of session browser
    /// results instead of one per session.
    pub fn sessions<'a>(
        &self,
        namespace: &str,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> HashMap<String, SessionInfo> {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        ids.into_iter()
            .filter_map(|id| {
                inner.settle_one(namespace, id, now)?;
                inner.info(namespace, id).map(|info| (id.to_owned(), info))
            })
            .collect()
    }

    /// Sessions of `namespace` (optionally one region), oldest first.
    pub fn list(&self, namespace: &str, region: Option<&str>) -> Vec<SessionInfo> {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        inner.settle_all(now);
        let Some(sessions) = inner.sessions.get(namespace) else {
            return Vec::new();
        };
        let mut records: Vec<&SessionRecord> = sessions
            .values()
            .filter(|r| region.is_none_or(|name| inner.regions[r.region].name == name))
            .collect();
        records.sort_by_key(|r| r.seq);
        records.into_iter().map(|r| inner.snapshot(r)).collect()
    }

    /// Cancels a session whose server is still `CREATING`, freeing the server.
    pub fn cancel(&self, namespace: &str, session_id: &str) -> Result<(), CancelError> {
        let mut inner = self.inner.lock();
        let status = inner
            .settle_one(namespace, session_id, Instant::now())
            .ok_or(CancelError::NotFound)?;
        if status != ServerStatus::Creating {
            return Err(CancelError::NotCreating(status));
        }
        inner.remove(namespace, session_id);
        inner.counters.sessions_cancelled += 1;
        Ok(())
    }

    /// Deletes a session in any status, freeing its server at once. `false` if there was none.
    pub fn delete(&self, namespace: &str, session_id: &str) -> bool {
        let mut inner = self.inner.lock();
        let removed = inner.remove(namespace, session_id);
        if removed {
            inner.counters.sessions_deleted += 1;
        }
        removed
    }

    /// Counters and per-region usage.
    pub fn stats(&self) -> FleetStats {
        let mut inner = self.inner.lock();
        inner.settle_all(Instant::now());
        let mut usage: Vec<RegionUsage> = inner
            .regions
            .iter()
            .map(|r| RegionUsage {
                name: r.name.clone(),
                total: r.servers,
                capacity: r.capacity,
                creating: 0,
                ready: 0,
                busy: 0,
                free: r.available(),
            })
            .collect();
        for record in inner.sessions.values().flat_map(HashMap::values) {
            let region = &mut usage[record.region];
            match record.status {
                ServerStatus::Creating => region.creating += 1,
                ServerStatus::Ready => region.ready += 1,
                ServerStatus::Busy => region.busy += 1,
            }
        }
        FleetStats {
            regions: usage,
            ..inner.counters.clone()
        }
    }

    /// Fault injection: at most `capacity` servers of `region` may be in use at once (clamped to
    /// the servers it has). Sessions already holding servers keep them; only new registers see
    /// the limit. Returns the effective capacity.
    pub fn set_region_capacity(
        &self,
        region: &str,
        capacity: usize,
    ) -> Result<usize, UnknownRegion> {
        let mut inner = self.inner.lock();
        let state = inner
            .regions
            .iter_mut()
            .find(|r| r.name == region)
            .ok_or_else(|| UnknownRegion(region.to_owned()))?;
        state.capacity = capacity.min(state.servers);
        Ok(state.capacity)
    }

    /// Fault injection: installs (or with `None` removes) the hook that may force claim
    /// outcomes.
    pub fn set_claim_override(&self, hook: Option<ClaimOverride>) {
        self.inner.lock().claim_override = hook;
    }
}

/// One server of the pool.
#[derive(Debug)]
struct ServerSlot {
    pod_name: String,
    region: usize,
    port: u16,
}

/// A region's servers and how many are in use.
#[derive(Debug)]
struct RegionState {
    name: String,
    servers: usize,
    /// Free server indices; a register takes the lowest, so assignments are predictable.
    free: BTreeSet<usize>,
    capacity: usize,
    in_use: usize,
}

impl RegionState {
    /// How many servers a register could take now.
    fn available(&self) -> usize {
        self.capacity
            .saturating_sub(self.in_use)
            .min(self.free.len())
    }
}

/// One DSMC session holding a server.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SessionRecord {
    id: String,
    namespace: String,
    seq: u64,
    server: usize,
    region: usize,
    deployment: String,
    game_mode: String,
    client_version: String,
    configuration: String,
    allocation_id: String,
    status: ServerStatus,
    created_at: DateTime<Utc>,
    /// `None`: the configured delay is too long to represent, so the server never gets ready.
    #[serde(with = "crate::durable::wallclock::option_instant")]
    ready_at: Option<Instant>,
    /// Wall-clock time for the `READY` history entry.
    ready_wall: DateTime<Utc>,
    history: Vec<StatusChange>,
}

impl SessionRecord {
    /// `CREATING` turns `READY` once its time has come; returns the settled status.
    fn settle(&mut self, now: Instant) -> ServerStatus {
        if self.status == ServerStatus::Creating && self.ready_at.is_some_and(|t| now >= t) {
            self.status = ServerStatus::Ready;
            self.history.push(StatusChange {
                status: ServerStatus::Ready,
                at: self.ready_wall,
            });
        }
        self.status
    }
}

/// What saved state keeps of the fleet (see [`Fleet::save_to`]).
#[derive(serde::Serialize)]
struct SavedFleetRef<'a> {
    sessions: &'a HashMap<String, HashMap<String, SessionRecord>>,
    capacities: Vec<usize>,
    next_seq: u64,
    counters: &'a FleetStats,
}

#[derive(serde::Deserialize)]
struct SavedFleet {
    sessions: HashMap<String, HashMap<String, SessionRecord>>,
    capacities: Vec<usize>,
    next_seq: u64,
    counters: FleetStats,
}

/// Everything behind the fleet's one lock.
struct Inner {
    servers: Vec<ServerSlot>,
    pods: HashMap<String, usize>,
    regions: Vec<RegionState>,
    /// namespace → session id → record. Never larger than the number of servers.
    sessions: HashMap<String, HashMap<String, SessionRecord>>,
    next_seq: u64,
    ready_delay: Duration,
    ip: String,
    counters: FleetStats,
    claim_override: Option<ClaimOverride>,
}

impl Inner {
    fn build(config: &FleetConfig) -> Self {
        let mut servers = Vec::new();
        let mut regions = Vec::new();
        let mut next_port = u32::from(config.base_port);
        for (region_index, region) in config.regions.iter().enumerate() {
            let mut free = BTreeSet::new();
            for n in 1..=region.servers {
                let Ok(port) = u16::try_from(next_port) else {
                    tracing::warn!(region = %region.name, "fleet: out of ports; remaining servers left out");
                    break;
                };
                next_port += 1;
                free.insert(servers.len());
                servers.push(ServerSlot {
                    pod_name: format!("ds-{}-{n}", region.name),
                    region: region_index,
                    port,
                });
            }
            regions.push(RegionState {
                name: region.name.clone(),
                servers: free.len(),
                capacity: free.len(),
                free,
                in_use: 0,
            });
        }
        let mut pods = HashMap::with_capacity(servers.len());
        for (index, server) in servers.iter().enumerate() {
            // With duplicate region names (refused by `validate`) the first server keeps its name.
            pods.entry(server.pod_name.clone()).or_insert(index);
        }
        Self {
            servers,
            pods,
            regions,
            sessions: HashMap::new(),
            next_seq: 0,
            ready_delay: config.ready_delay,
            ip: config.ip.clone(),
            counters: FleetStats::default(),
            claim_override: None,
        }
    }

    fn session_count(&self) -> usize {
        self.sessions.values().map(HashMap::len).sum()
    }

    fn record_mut(&mut self, namespace: &str, session_id: &str) -> Option<&mut SessionRecord> {
        self.sessions.get_mut(namespace)?.get_mut(session_id)
    }

    fn settle_one(
        &mut self,
        namespace: &str,
        session_id: &str,
        now: Instant,
    ) -> Option<ServerStatus> {
        self.record_mut(namespace, session_id)
            .map(|r| r.settle(now))
    }

    fn settle_all(&mut self, now: Instant) {
        for record in self.sessions.values_mut().flat_map(HashMap::values_mut) {
            record.settle(now);
        }
    }

    fn register(
        &mut self,
        config: &FleetConfig,
        reg: Registration,
        now: Instant,
        wall: DateTime<Utc>,
    ) -> Result<SessionInfo, RegisterError> {
        if self
            .sessions
            .get(&reg.namespace)
            .is_some_and(|s| s.contains_key(&reg.session_id))
        {
            return Err(RegisterError::Exists(reg.session_id));
        }
        let server = self.pick_server(&reg)?;
        let region = self.servers[server].region;
        let state = &mut self.regions[region];
        state.free.remove(&server);
        state.in_use += 1;

        let ready_at = now.checked_add(self.ready_delay);
        let ready_wall = chrono::Duration::from_std(self.ready_delay)
            .ok()
            .and_then(|d| wall.checked_add_signed(d))
            .unwrap_or(wall);
        let mut record = SessionRecord {
            id: reg.session_id,
            namespace: reg.namespace,
            seq: self.next_seq,
            server,
            region,
            deployment: if reg.deployment.is_empty() {
                config.deployment.clone()
            } else {
                reg.deployment
            },
            game_mode: reg.game_mode,
            client_version: reg.client_version,
            configuration: reg.configuration,
            allocation_id: uuid::Uuid::new_v4().simple().to_string(),
            status: ServerStatus::Creating,
            created_at: wall,
            ready_at,
            ready_wall,
            history: vec![StatusChange {
                status: ServerStatus::Creating,
                at: wall,
            }],
        };
        self.next_seq += 1;
        // A zero delay means ready at once: the spec says an available DS is returned ready.
        record.settle(now);
        let info = self.snapshot(&record);
        self.sessions
            .entry(record.namespace.clone())
            .or_default()
            .insert(record.id.clone(), record);
        Ok(info)
    }

    /// Chooses a free server for `reg` without taking it.
    fn pick_server(&self, reg: &Registration) -> Result<usize, RegisterError> {
        if !reg.pod_name.is_empty() {
            let &server = self
                .pods
                .get(&reg.pod_name)
                .ok_or_else(|| RegisterError::PodNotFound(reg.pod_name.clone()))?;
            let region = &self.regions[self.servers[server].region];
            if !reg.region.is_empty() && reg.region != region.name {
                return Err(RegisterError::RegionMismatch {
                    pod: reg.pod_name.clone(),
                    actual: region.name.clone(),
                    requested: reg.region.clone(),
                });
            }
            if !region.free.contains(&server) || region.in_use >= region.capacity {
                return Err(RegisterError::PodBusy(reg.pod_name.clone()));
            }
            return Ok(server);
        }
        if reg.region.is_empty() {
            return self
                .regions
                .iter()
                .find(|r| r.available() > 0)
                .and_then(|r| r.free.first().copied())
                .ok_or(RegisterError::NoCapacity { region: None });
        }
        let region = self
            .regions
            .iter()
            .find(|r| r.name == reg.region)
            .ok_or_else(|| RegisterError::UnknownRegion {
                region: reg.region.clone(),
                known: self
                    .regions
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        if region.available() == 0 {
            return Err(RegisterError::NoCapacity {
                region: Some(region.name.clone()),
            });
        }
        region
            .free
            .first()
            .copied()
            .ok_or(RegisterError::NoCapacity {
                region: Some(region.name.clone()),
            })
    }

    /// The one place a claim is decided: existence, then the fault override, then the status.
    /// Counts the attempt and its outcome.
    fn claim(
        &mut self,
        namespace: &str,
        session_id: &str,
        now: Instant,
        wall: DateTime<Utc>,
    ) -> Result<(), ClaimFailure> {
        self.counters.claims_attempted += 1;
        let outcome = match self
            .sessions
            .get_mut(namespace)
            .and_then(|s| s.get_mut(session_id))
        {
            None => Err(ClaimFailure::NotFound),
            Some(record) => {
                let status = record.settle(now);
                let server = &self.servers[record.server];
                let forced = self.claim_override.as_ref().and_then(|hook| {
                    hook(&ClaimAttempt {
                        namespace,
                        session_id,
                        region: &self.regions[record.region].name,
                        pod_name: &server.pod_name,
                        status,
                    })
                });
                match (forced, status) {
                    (Some(failure), _) => Err(failure),
                    (None, ServerStatus::Busy) => Err(ClaimFailure::Conflict),
                    (None, ServerStatus::Creating) => Err(ClaimFailure::NotReady),
                    (None, ServerStatus::Ready) => {
                        record.status = ServerStatus::Busy;
                        record.history.push(StatusChange {
                            status: ServerStatus::Busy,
                            at: wall,
                        });
                        Ok(())
                    }
                }
            }
        };
        let failed = &mut self.counters.claims_failed;
        match outcome {
            Ok(()) => self.counters.claims_succeeded += 1,
            Err(ClaimFailure::NotFound) => failed.not_found += 1,
            Err(ClaimFailure::Conflict) => failed.conflict += 1,
            Err(ClaimFailure::NotReady) => failed.not_ready += 1,
            Err(ClaimFailure::Unreachable) => failed.unreachable += 1,
        }
        outcome
    }

    /// Drops the session and returns its server to the pool.
    fn remove(&mut self, namespace: &str, session_id: &str) -> bool {
        let Some(sessions) = self.sessions.get_mut(namespace) else {
            return false;
        };
        let Some(record) = sessions.remove(session_id) else {
            return false;
        };
        if sessions.is_empty() {
            // Keep the map from collecting one entry per namespace ever seen.
            self.sessions.remove(namespace);
        }
        let region = &mut self.regions[record.region];
        region.free.insert(record.server);
        region.in_use = region.in_use.saturating_sub(1);
        true
    }

    fn info(&self, namespace: &str, session_id: &str) -> Option<SessionInfo> {
        self.sessions
            .get(namespace)?
            .get(session_id)
            .map(|r| self.snapshot(r))
    }

    fn snapshot(&self, record: &SessionRecord) -> SessionInfo {
        let server = &self.servers[record.server];
        SessionInfo {
            id: record.id.clone(),
            namespace: record.namespace.clone(),
            region: self.regions[record.region].name.clone(),
            pod_name: server.pod_name.clone(),
            ip: self.ip.clone(),
            port: server.port,
            deployment: record.deployment.clone(),
            game_mode: record.game_mode.clone(),
            client_version: record.client_version.clone(),
            configuration: record.configuration.clone(),
            allocation_id: record.allocation_id.clone(),
            status: record.status,
            created_at: record.created_at,
            history: record.history.clone(),
        }
    }
}

/// Game-session claims (Session v2 asks the fleet for a server the way AMS does).
impl Fleet {
    /// How long until the session's server turns `READY`: `Some(ZERO)` once it is (or is past
    /// it), `None` for an unknown session or a server that never gets ready. Lets a waiter sleep
    /// exactly as long as needed instead of polling.
    pub fn time_to_ready(&self, namespace: &str, session_id: &str) -> Option<Duration> {
        let now = Instant::now();
        let mut inner = self.inner.lock();
        let record = inner.record_mut(namespace, session_id)?;
        if record.settle(now) != ServerStatus::Creating {
            return Some(Duration::ZERO);
        }
        record.ready_at.map(|at| at.saturating_duration_since(now))
    }
}

/// Fault injection (added for the fault layer): the ready delay is changed between registers.
impl Fleet {
    /// The ready delay of servers registered from now on; sessions already registered keep
    /// theirs. `Duration::MAX` means never ready. [`Fleet::reset`] restores the configured delay.
    pub fn set_ready_delay(&self, delay: Duration) {
        self.inner.lock().ready_delay = delay;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(regions: &[(&str, usize)], ready_delay: Duration) -> FleetConfig {
        FleetConfig {
            regions: regions
                .iter()
                .map(|(name, servers)| RegionConfig {
                    name: (*name).to_owned(),
                    servers: *servers,
                })
                .collect(),
            ready_delay,
            ..FleetConfig::default()
        }
    }

    fn registration(id: &str) -> Registration {
        Registration {
            namespace: "ns".into(),
            session_id: id.into(),
            ..Registration::default()
        }
    }

    #[test]
    fn config_reads_from_toml_with_defaults_and_refuses_unknown_keys() {
        let parsed: FleetConfig = toml::from_str(
            "ready_delay = \"300ms\"\nbase_port = 9000\n[[regions]]\nname = \"eu-west-1\"\nservers = 4\n",
        )
        .expect("parses");
        assert_eq!(parsed.ready_delay, Duration::from_millis(300));
        assert_eq!((parsed.base_port, parsed.ip.as_str()), (9000, "127.0.0.1"));
        assert_eq!(
            parsed.regions,
            vec![RegionConfig {
                name: "eu-west-1".into(),
                servers: 4
            }]
        );
        assert_eq!(parsed.validate(), Ok(()));

        let millis: FleetConfig = toml::from_str("ready_delay = 1500").expect("integer millis");
        assert_eq!(millis.ready_delay, Duration::from_millis(1500));
        assert_eq!(durations::parse("1.5s"), Ok(Duration::from_millis(1500)));
        let err = toml::from_str::<FleetConfig>("deployment = \"x\"\nready_delay = \"soon\"")
            .expect_err("not a duration");
        let message = err.to_string();
        assert!(
            message.contains("line 2") && message.contains("ready_delay"),
            "{message}"
        );
        assert!(message.contains("\"1.5s\""), "{message}");
        let new: FleetConfig = toml::from_str("ready_delay = \"250us\"").expect("grammar");
        assert_eq!(new.ready_delay, Duration::from_micros(250));
        assert!(toml::from_str::<FleetConfig>("colour = \"blue\"").is_err());
        assert!(
            toml::from_str::<FleetConfig>("[[regions]]\nname = \"a\"\nservers = 1\nsize = 2\n")
                .is_err()
        );
    }

    #[test]
    fn validate_catches_what_new_would_paper_over() {
        let mut bad = config(&[("a", 1), ("a", 1)], Duration::ZERO);
        assert_eq!(
            bad.validate(),
            Err(FleetConfigError::DuplicateRegion("a".into()))
        );
        bad = config(&[("a", 70_000)], Duration::ZERO);
        assert!(matches!(
            bad.validate(),
            Err(FleetConfigError::PortsExhausted { .. })
        ));
        // new() still works: it builds the servers that have a port.
        let fleet = Fleet::new(bad);
        assert_eq!(
            fleet.stats().regions[0].total,
            usize::from(u16::MAX - 7777) + 1
        );
        let bad_ip = FleetConfig {
            ip: "localhost".into(),
            ..FleetConfig::default()
        };
        assert_eq!(
            bad_ip.validate(),
            Err(FleetConfigError::InvalidIp("localhost".into()))
        );
    }

    #[test]
    fn a_server_turns_ready_after_the_delay_and_busy_when_claimed() {
        let delay = Duration::from_secs(5);
        let cfg = config(&[("a", 1)], delay);
        let mut inner = Inner::build(&cfg);
        let t0 = Instant::now();
        let wall = Utc::now();
        let info = inner
            .register(&cfg, registration("s"), t0, wall)
            .expect("registered");
        assert_eq!(info.status, ServerStatus::Creating);
        assert_eq!(
            inner.claim("ns", "s", t0 + delay / 2, wall),
            Err(ClaimFailure::NotReady)
        );
        assert_eq!(inner.claim("ns", "s", t0 + delay, wall), Ok(()));
        assert_eq!(
            inner.claim("ns", "s", t0 + delay, wall),
            Err(ClaimFailure::Conflict)
        );
        let info = inner.info("ns", "s").expect("exists");
        let history: Vec<_> = info.history.iter().map(|c| c.status).collect();
        assert_eq!(
            history,
            [
                ServerStatus::Creating,
                ServerStatus::Ready,
                ServerStatus::Busy
            ]
        );
        assert_eq!(
            info.history[1].at - info.history[0].at,
            chrono::Duration::seconds(5)
        );
        assert_eq!(
            inner.claim("ns", "other", t0, wall),
            Err(ClaimFailure::NotFound)
        );
        let failed = &inner.counters.claims_failed;
        assert_eq!(
            (failed.not_ready, failed.conflict, failed.not_found),
            (1, 1, 1)
        );
    }

    #[test]
    fn an_unrepresentable_delay_never_gets_ready_and_never_panics() {
        let fleet = Fleet::new(config(&[("a", 1)], Duration::MAX));
        let info = fleet.register(registration("s")).expect("registered");
        assert_eq!(info.status, ServerStatus::Creating);
        assert_eq!(fleet.claim("ns", "s"), Err(ClaimFailure::NotReady));
        assert_eq!(fleet.cancel("ns", "s"), Ok(()));
    }

    #[test]
    fn servers_are_never_shared_and_come_back_when_released() {
        let fleet = Fleet::new(config(&[("a", 2), ("b", 1)], Duration::ZERO));
        let pods: Vec<String> = ["1", "2", "3"]
            .iter()
            .map(|id| {
                fleet
                    .register(registration(id))
                    .expect("registered")
                    .pod_name
            })
            .collect();
        assert_eq!(pods, ["ds-a-1", "ds-a-2", "ds-b-1"]);
        assert_eq!(
            fleet.register(registration("4")),
            Err(RegisterError::NoCapacity { region: None })
        );
        assert_eq!(
            fleet.register(registration("1")).map(|_| ()),
            Err(RegisterError::Exists("1".into()))
        );
        assert!(fleet.delete("ns", "2"));
        assert!(!fleet.delete("ns", "2"));
        assert_eq!(
            fleet.register(registration("4")).expect("reused").pod_name,
            "ds-a-2"
        );
        assert_eq!(
            fleet.cancel("ns", "4"),
            Err(CancelError::NotCreating(ServerStatus::Ready))
        );
        let ports: BTreeSet<u16> = fleet.list("ns", None).iter().map(|s| s.port).collect();
        assert_eq!(ports.len(), 3);
        assert_eq!(fleet.list("ns", Some("b")).len(), 1);
        assert!(fleet.list("other-ns", None).is_empty());
    }

    #[test]
    fn the_claim_override_sees_the_attempt_and_only_forces_failures() {
        let fleet = Fleet::new(config(&[("a", 1)], Duration::ZERO));
        fleet.register(registration("s")).expect("registered");
        fleet.set_claim_override(Some(Arc::new(|attempt: &ClaimAttempt<'_>| {
            assert_eq!((attempt.region, attempt.pod_name), ("a", "ds-a-1"));
            Some(ClaimFailure::NotFound)
        })));
        assert_eq!(fleet.claim("ns", "s"), Err(ClaimFailure::NotFound));
        fleet.set_claim_override(None);
        assert_eq!(fleet.claim("ns", "s"), Ok(()));
        let stats = fleet.stats();
        assert_eq!(
            (
                stats.claims_attempted,
                stats.claims_succeeded,
                stats.claims_failed.not_found
            ),
            (2, 1, 1)
        );
    }

    #[test]
    fn a_pinned_pod_respects_region_and_capacity() {
        let fleet = Fleet::new(config(&[("a", 2)], Duration::ZERO));
        let pinned = |id: &str, pod: &str, region: &str| Registration {
            pod_name: pod.into(),
            region: region.into(),
            ..registration(id)
        };
        assert!(matches!(
            fleet.register(pinned("x", "ds-a-2", "b")),
            Err(RegisterError::RegionMismatch { .. })
        ));
        assert_eq!(
            fleet.register(pinned("x", "ds-a-9", "")),
            Err(RegisterError::PodNotFound("ds-a-9".into()))
        );
        assert_eq!(fleet.set_region_capacity("a", 0), Ok(0));
        assert_eq!(
            fleet.register(pinned("x", "ds-a-2", "a")),
            Err(RegisterError::PodBusy("ds-a-2".into()))
        );
        assert_eq!(
            fleet.register(Registration {
                region: "a".into(),
                ..registration("y")
            }),
            Err(RegisterError::NoCapacity {
                region: Some("a".into())
            })
        );
        assert_eq!(fleet.set_region_capacity("a", 2), Ok(2));
        assert_eq!(
            fleet
                .register(pinned("x", "ds-a-2", "a"))
                .expect("pinned")
                .port,
            7778
        );
        let usage = &fleet.stats().regions[0];
        assert_eq!(
            (usage.total, usage.capacity, usage.ready, usage.free),
            (2, 2, 1, 1)
        );
    }
}
