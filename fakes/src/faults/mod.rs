//! Fault injection: scriptable, seeded misbehaviour of the emulated services, in the spirit of
//! toxiproxy's toxics.
//!
//! - [`model`] — a fault as data ([`Fault`], [`FaultKind`], [`Target`], [`Window`]) and its
//!   parsing from TOML files and JSON bodies, with errors that name the field;
//! - this module — [`Faults`], the live fault set: add, replace, delete, list, reseed;
//! - [`layer`] — the HTTP middleware (latency, error, outage, hang; request counting);
//! - [`lobby`] — the lobby's send-path hook (drop, delay, duplicate) and socket disconnects;
//! - [`dsmc`] — the fleet hooks (claim outcomes, ready delays);
//! - [`driver`] — state faults (region capacity, token lifetimes, user revocation, key
//!   rotation) applied and undone as windows open and close, and the disconnect ticks.
//!
//! **Reproducibility.** Every decision draws from a ChaCha8 RNG seeded from one `seed`, with a
//! separate stream per decision point (HTTP requests, notifications, socket disconnects, claims,
//! ready delays), so the same seed and the same order of calls at each point give the same
//! decisions, whatever happens at the others. A call draws only for the faults that match it
//! and are active, so adding a fault for IAM does not shift the decisions made for DSMC.
//!
//! **Windows** are relative to the moment a fault was added (for the fault file: when the
//! server started); replacing a fault adds it anew.
//!
//! Invariant: faults act only inside `fakes`, through the hooks of the stores and the HTTP
//! layer; no store knows this module (they expose hook types, this module fills them).

pub mod driver;
pub mod dsmc;
pub mod layer;
pub mod lobby;
pub mod match2;
pub mod model;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard, RwLock};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;

pub use model::{
    ClaimOutcome, DelayNotification, Disconnect, Distribution, DropNotification,
    DuplicateNotification, ErrorFault, Fault, FaultFile, FaultKind, FieldError, Hang, HangThen,
    JwksRotation, KINDS, Latency, Outage, ReadyDelay, RegionCapacity, RevokeUser, Scope, Service,
    Target, TokenExpiry, Window,
};

/// The decision points, each with its own RNG stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Http = 0,
    Notification = 1,
    Disconnect = 2,
    Claim = 3,
    ReadyDelay = 4,
}

const STREAMS: usize = 5;

/// Why a change to the fault set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultsError {
    #[error("{0}")]
    Invalid(FieldError),
    #[error("a fault with id {0:?} already exists")]
    Conflict(String),
    #[error("no fault has id {0:?}")]
    NotFound(String),
}

impl From<FieldError> for FaultsError {
    fn from(e: FieldError) -> Self {
        Self::Invalid(e)
    }
}

/// One fault in the live set, with its runtime state.
#[derive(Debug)]
pub struct Entry {
    pub fault: Fault,
    /// Windows count from here.
    pub added: Instant,
    /// How many times it acted (calls failed or delayed, notifications touched, sockets
    /// closed, claims forced, keys rotated, ...).
    injected: AtomicU64,
    runtime: Mutex<EntryRuntime>,
}

/// What the driver records about a state fault.
#[derive(Debug, Default, Clone)]
pub(crate) struct EntryRuntime {
    /// One-shot actions taken (revocations, rotations).
    pub fires: u64,
    /// Why the last action failed (unknown user, unknown region, ...).
    pub error: Option<String>,
}

impl Entry {
    fn new(fault: Fault, added: Instant) -> Self {
        Self {
            fault,
            added,
            injected: AtomicU64::new(0),
            runtime: Mutex::new(EntryRuntime::default()),
        }
    }

    pub fn id(&self) -> &str {
        &self.fault.id
    }

    /// When its window opens (`None`: too far away to represent).
    pub fn opens_at(&self) -> Option<Instant> {
        let start = self.fault.window.map_or(Duration::ZERO, |w| w.start());
        self.added.checked_add(start)
    }

    pub fn active(&self, now: Instant) -> bool {
        self.fault
            .active_at(now.saturating_duration_since(self.added))
    }

    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    pub(crate) fn runtime(&self) -> MutexGuard<'_, EntryRuntime> {
        self.runtime.lock()
    }
}

/// An immutable view of the set, swapped whole on every change so the hot paths only clone an
/// `Arc` under a read lock. Pre-split by where faults act, so a request with no HTTP fault
/// configured touches no RNG.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub all: Vec<Arc<Entry>>,
    pub http: Vec<Arc<Entry>>,
    pub notification: Vec<Arc<Entry>>,
    pub disconnect: Vec<Arc<Entry>>,
    pub claim: Vec<Arc<Entry>>,
    pub ready_delay: Vec<Arc<Entry>>,
    /// Faults the driver applies: region capacity, token expiry, revocation, rotation.
    pub state: Vec<Arc<Entry>>,
    /// Match ticket expiry storms (applied by the matchmaking loop).
    pub ticket_expiry: Vec<Arc<Entry>>,
}

impl Snapshot {
    fn build(all: Vec<Arc<Entry>>) -> Self {
        let mut s = Self::default();
        for entry in &all {
            let list = match &entry.fault.kind {
                FaultKind::Latency(_)
                | FaultKind::Error(_)
                | FaultKind::Outage(_)
                | FaultKind::Hang(_) => &mut s.http,
                FaultKind::DropNotification(_)
                | FaultKind::DelayNotification(_)
                | FaultKind::DuplicateNotification(_) => &mut s.notification,
                FaultKind::Disconnect(_) => &mut s.disconnect,
                FaultKind::ClaimOutcome(_) => &mut s.claim,
                FaultKind::ReadyDelay(_) => &mut s.ready_delay,
                FaultKind::RegionCapacity(_)
                | FaultKind::TokenExpiry(_)
                | FaultKind::RevokeUser(_)
                | FaultKind::JwksRotation(_) => &mut s.state,
                FaultKind::TicketExpiry(_) => &mut s.ticket_expiry,
            };
            list.push(Arc::clone(entry));
        }
        s.all = all;
        s
    }
}

/// A fault as `GET /_fakes/faults` lists it: the fault itself plus a read-only `state`.
#[derive(Debug, Clone, Serialize)]
pub struct FaultView {
    #[serde(flatten)]
    pub fault: Fault,
    pub state: FaultState,
}

/// The runtime side of a listed fault (ignored when sent back).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultState {
    /// Inside its window now.
    pub active: bool,
    /// Seconds since it was added (its window's origin).
    pub age_s: f64,
    /// How many times it acted.
    pub injected: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `GET /_fakes/faults`: the seed and the faults in evaluation order.
#[derive(Debug, Clone, Serialize)]
pub struct FaultList {
    pub seed: u64,
    pub faults: Vec<FaultView>,
}

/// What the fault set needs to know about the rest of the emulator to validate faults.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The fleet's configured regions (region faults must name one).
    pub regions: Vec<String>,
}

/// The live fault set: a cheap-clone handle (see the module docs).
#[derive(Debug, Clone)]
pub struct Faults {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The source of truth, in evaluation order; writers hold this lock while they rebuild
    /// the snapshot, so changes apply in one order.
    entries: Mutex<Vec<Arc<Entry>>>,
    snapshot: RwLock<Arc<Snapshot>>,
    seed: AtomicU64,
    streams: [Mutex<ChaCha8Rng>; STREAMS],
    next_id: AtomicU64,
    /// Injections per kind since start (survive deleting the fault), in [`KINDS`] order.
    injected_by_kind: [AtomicU64; KINDS.len()],
    /// The set loaded at start, for [`Faults::reset`].
    initial: Vec<Fault>,
    initial_seed: u64,
    context: Context,
    /// Wakes the driver when the set changes.
    wake: Arc<Notify>,
    /// What the driver has applied to the stores, so it undoes only its own changes.
    pub(crate) applied: Mutex<driver::Applied>,
    /// Whether the fleet's ready delay is currently a fault's.
    ready_delay_overridden: AtomicBool,
}

fn rng(seed: u64, stream: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream as u64);
    rng
}

impl Faults {
    /// A fault set holding `file`'s faults (added now) and seeded with its seed (random when
    /// absent). Faults that fail [`Faults::check`] are still added; their `state.error` says
    /// why they do nothing.
    pub fn new(file: &FaultFile, context: Context) -> Self {
        let seed = file.seed.unwrap_or_else(|| rand::thread_rng().r#gen());
        let faults = Self {
            inner: Arc::new(Inner {
                entries: Mutex::new(Vec::new()),
                snapshot: RwLock::new(Arc::new(Snapshot::default())),
                seed: AtomicU64::new(seed),
                streams: std::array::from_fn(|i| Mutex::new(rng(seed, i))),
                next_id: AtomicU64::new(1),
                injected_by_kind: std::array::from_fn(|_| AtomicU64::new(0)),
                initial: file.faults.clone(),
                initial_seed: seed,
                context,
                wake: Arc::new(Notify::new()),
                applied: Mutex::new(driver::Applied::default()),
                ready_delay_overridden: AtomicBool::new(false),
            }),
        };
        faults.install(file.faults.clone());
        faults
    }

    /// Validates `fault` (for faults built in code rather than parsed) and checks what parsing
    /// alone cannot: that region faults name configured regions.
    pub fn check(fault: &Fault, context: &Context) -> Result<(), FieldError> {
        fault.check()?;
        let region = match &fault.kind {
            FaultKind::RegionCapacity(r) => Some(&r.region),
            FaultKind::ClaimOutcome(c) => c.region.as_ref(),
            _ => None,
        };
        match region {
            Some(region) if !context.regions.contains(region) => Err(FieldError::new(
                "region",
                format!(
                    "region {region} is not configured (known: {})",
                    context.regions.join(", ")
                ),
            )),
            _ => Ok(()),
        }
    }

    /// [`Faults::check`] over a whole file, naming the fault.
    pub fn check_file(file: &FaultFile, context: &Context) -> Result<(), FieldError> {
        for (i, fault) in file.faults.iter().enumerate() {
            Self::check(fault, context).map_err(|e| e.within(&format!("faults[{i}]")))?;
        }
        Ok(())
    }

    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.inner.snapshot.read())
    }

    /// Locks the RNG stream of one decision point. Hold it only for the draws of one decision.
    pub(crate) fn stream(&self, stream: Stream) -> MutexGuard<'_, ChaCha8Rng> {
        self.inner.streams[stream as usize].lock()
    }

    /// Counts one action of `entry`.
    pub(crate) fn hit(&self, entry: &Entry) {
        entry.injected.fetch_add(1, Ordering::Relaxed);
        self.inner.injected_by_kind[entry.fault.kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Injections per kind since start, in [`KINDS`] order.
    pub fn injected_by_kind(&self) -> [u64; KINDS.len()] {
        std::array::from_fn(|i| self.inner.injected_by_kind[i].load(Ordering::Relaxed))
    }

    pub(crate) fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.inner.wake)
    }

    pub(crate) fn ready_delay_overridden(&self) -> &AtomicBool {
        &self.inner.ready_delay_overridden
    }

    pub(crate) fn applied(&self) -> MutexGuard<'_, driver::Applied> {
        self.inner.applied.lock()
    }

    pub fn seed(&self) -> u64 {
        self.inner.seed.load(Ordering::Relaxed)
    }

    /// Restarts every decision stream from `seed`.
    pub fn reseed(&self, seed: u64) {
        self.inner.seed.store(seed, Ordering::Relaxed);
        for (i, stream) in self.inner.streams.iter().enumerate() {
            *stream.lock() = rng(seed, i);
        }
    }

    /// The faults in evaluation order, with their state.
    pub fn list(&self) -> FaultList {
        let now = Instant::now();
        let faults = self.snapshot().all.iter().map(|e| view(e, now)).collect();
        FaultList {
            seed: self.seed(),
            faults,
        }
    }

    pub fn get(&self, id: &str) -> Option<FaultView> {
        let now = Instant::now();
        self.snapshot()
            .all
            .iter()
            .find(|e| e.id() == id)
            .map(|e| view(e, now))
    }

    /// Adds a fault at the end of the set; 409 if its id is taken.
    pub fn add(&self, fault: Fault) -> Result<FaultView, FaultsError> {
        Self::check(&fault, &self.inner.context)?;
        let mut entries = self.inner.entries.lock();
        if !fault.id.is_empty() && entries.iter().any(|e| e.id() == fault.id) {
            return Err(FaultsError::Conflict(fault.id));
        }
        let entry = Arc::new(Entry::new(self.with_id(fault), Instant::now()));
        entries.push(Arc::clone(&entry));
        self.publish(&entries);
        Ok(view(&entry, Instant::now()))
    }

    /// Replaces the fault `id` in place (its window restarts), or adds it when there is none.
    /// Returns the fault and whether it was created.
    pub fn put(&self, id: &str, mut fault: Fault) -> Result<(FaultView, bool), FaultsError> {
        if fault.id.is_empty() {
            fault.id = id.to_owned();
        } else if fault.id != id {
            return Err(FieldError::new(
                "id",
                format!("{:?} does not match the path's id {id:?}", fault.id),
            )
            .into());
        }
        Self::check(&fault, &self.inner.context)?;
        let mut entries = self.inner.entries.lock();
        let entry = Arc::new(Entry::new(fault, Instant::now()));
        let created = match entries.iter().position(|e| e.id() == id) {
            Some(at) => {
                entries[at] = Arc::clone(&entry);
                false
            }
            None => {
                entries.push(Arc::clone(&entry));
                true
            }
        };
        self.publish(&entries);
        Ok((view(&entry, Instant::now()), created))
    }

    /// Deletes one fault; `false` if there was none.
    pub fn remove(&self, id: &str) -> bool {
        let mut entries = self.inner.entries.lock();
        let before = entries.len();
        entries.retain(|e| e.id() != id);
        let removed = entries.len() != before;
        if removed {
            self.publish(&entries);
        }
        removed
    }

    /// Deletes every fault.
    pub fn clear(&self) {
        let mut entries = self.inner.entries.lock();
        entries.clear();
        self.publish(&entries);
    }

    /// Replaces the whole set (all added now) and, when `file.seed` is set, reseeds.
    pub fn replace_all(&self, file: FaultFile) -> Result<(), FaultsError> {
        file.check_unique_ids()?;
        Self::check_file(&file, &self.inner.context)?;
        if let Some(seed) = file.seed {
            self.reseed(seed);
        }
        self.install(file.faults);
        Ok(())
    }

    /// Back to the set and seed loaded at start, windows restarting now.
    pub fn reset(&self) {
        self.reseed(self.inner.initial_seed);
        self.install(self.inner.initial.clone());
        self.ready_delay_overridden()
            .store(false, Ordering::Relaxed);
    }

    fn install(&self, faults: Vec<Fault>) {
        let now = Instant::now();
        let mut entries = self.inner.entries.lock();
        *entries = faults
            .into_iter()
            .map(|f| Arc::new(Entry::new(self.with_id(f), now)))
            .collect();
        self.publish(&entries);
    }

    /// `fault` with its id, assigning `<kind>-<n>` when it has none.
    fn with_id(&self, mut fault: Fault) -> Fault {
        if fault.id.is_empty() {
            let n = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
            fault.id = format!("{}-{n}", fault.kind.name());
        }
        fault
    }

    /// Swaps in a new snapshot (called with the entries lock held) and wakes the driver.
    fn publish(&self, entries: &[Arc<Entry>]) {
        *self.inner.snapshot.write() = Arc::new(Snapshot::build(entries.to_vec()));
        self.inner.wake.notify_one();
    }

    /// Faults configured / active now, for stats.
    pub fn counts(&self) -> (usize, usize) {
        let now = Instant::now();
        let snapshot = self.snapshot();
        (
            snapshot.all.len(),
            snapshot.all.iter().filter(|e| e.active(now)).count(),
        )
    }

    /// Injections per fault id, for stats.
    pub fn injected_by_fault(&self) -> BTreeMap<String, (String, u64)> {
        self.snapshot()
            .all
            .iter()
            .map(|e| {
                (
                    e.id().to_owned(),
                    (e.fault.kind.name().to_owned(), e.injected()),
                )
            })
            .collect()
    }
}

fn view(entry: &Entry, now: Instant) -> FaultView {
    FaultView {
        fault: entry.fault.clone(),
        state: FaultState {
            active: entry.active(now),
            age_s: now.saturating_duration_since(entry.added).as_secs_f64(),
            injected: entry.injected(),
            error: entry.runtime().error.clone(),
        },
    }
}

/// One Bernoulli draw: `true` with probability `p`. Always consumes one value, so the stream
/// position does not depend on the probabilities configured.
pub(crate) fn roll<R: Rng + ?Sized>(rng: &mut R, p: f64) -> bool {
    rng.r#gen::<f64>() < p
}

/// Nominal time between disconnect rolls.
pub const DISCONNECT_TICK: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fault(value: serde_json::Value) -> Fault {
        model::parse_fault(value).expect("valid fault")
    }

    #[test]
    fn ids_are_assigned_and_conflicts_refused() {
        let faults = Faults::new(&FaultFile::default(), Context::default());
        let a = faults.add(fault(json!({"kind": "outage"}))).expect("added");
        assert_eq!(a.fault.id, "outage-1");
        faults
            .add(fault(json!({"kind": "outage", "id": "x"})))
            .expect("added");
        assert_eq!(
            faults
                .add(fault(json!({"kind": "outage", "id": "x"})))
                .expect_err("taken"),
            FaultsError::Conflict("x".into())
        );
        let (_, created) = faults
            .put("x", fault(json!({"kind": "error", "status": 500})))
            .expect("replaced");
        assert!(!created);
        let (_, created) = faults
            .put("y", fault(json!({"kind": "error", "status": 500})))
            .expect("created");
        assert!(created);
        let ids: Vec<String> = faults
            .list()
            .faults
            .into_iter()
            .map(|v| v.fault.id)
            .collect();
        assert_eq!(ids, ["outage-1", "x", "y"], "a replacement keeps its place");
        assert!(faults.remove("x"));
        assert!(!faults.remove("x"));
        faults.clear();
        assert!(faults.list().faults.is_empty());
    }

    #[test]
    fn region_faults_must_name_a_configured_region() {
        let context = Context {
            regions: vec!["eu".into()],
        };
        let faults = Faults::new(&FaultFile::default(), context);
        let error = faults
            .add(fault(
                json!({"kind": "region_capacity", "region": "us", "capacity": 0}),
            ))
            .expect_err("unknown");
        assert!(
            matches!(error, FaultsError::Invalid(FieldError { ref field, .. }) if field == "region"),
            "{error:?}"
        );
        faults
            .add(fault(
                json!({"kind": "region_capacity", "region": "eu", "capacity": 0}),
            ))
            .expect("known");
    }

    #[test]
    fn streams_are_reproducible_and_independent() {
        let file = FaultFile {
            seed: Some(9),
            faults: Vec::new(),
            ..FaultFile::default()
        };
        let a = Faults::new(&file, Context::default());
        let b = Faults::new(&file, Context::default());
        let draws =
            |f: &Faults, s: Stream| -> Vec<u64> { (0..8).map(|_| f.stream(s).r#gen()).collect() };
        // Draws on another stream in between do not shift this one.
        let _ = draws(&b, Stream::Notification);
        assert_eq!(draws(&a, Stream::Http), draws(&b, Stream::Http));
        assert_ne!(draws(&a, Stream::Http), draws(&a, Stream::Claim));
        a.reseed(9);
        let c = Faults::new(&file, Context::default());
        assert_eq!(draws(&a, Stream::Http), draws(&c, Stream::Http));
    }
}
