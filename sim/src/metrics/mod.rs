//! Measurements: HDR histograms and counters recorded by players into per-worker shards, merged
//! by one collector on a tick into totals and a per-second series, and published as
//! [`MetricsSnapshot`]s.
//!
//! Players never send a message per request: each records into its worker's [`Shard`] under a
//! short uncontended lock (one shard per worker, many workers), and the collector drains every
//! shard on its tick — the pre-aggregation oha and goose use. Gauges that must be live (players
//! searching, sockets open) are atomics.
//!
//! Owns the histogram format (microseconds, 1 µs to 1 h, 3 significant digits) and its
//! serialization (V2 + DEFLATE, base64) so reports from several processes merge exactly.
//! Must not know how players behave, what a scenario file looks like, or how results are shown.

pub mod prometheus;
pub mod snapshot;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::outcome::{Endpoint, ErrorKind, FailReason, Outcome, PlayerRecord, Release};

pub use self::snapshot::{LiveContext, Mergeable, MetricsSnapshot, Phase, SeriesPoint};

/// Largest value a histogram holds: one hour, in microseconds.
pub const HISTOGRAM_MAX_US: u64 = 3_600_000_000;
/// Significant digits of every histogram.
pub const HISTOGRAM_SIGFIG: u8 = 3;
/// A player that starts later than this after its scheduled time marks the run as saturated.
pub const SATURATION_LAG: Duration = Duration::from_millis(50);

/// Why metrics could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("histogram is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("histogram does not deserialize: {0}")]
    Histogram(String),
    #[error("histograms do not merge: {0}")]
    Merge(String),
}

/// An empty histogram in the sim's format.
pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that satisfy the library's preconditions (low >= 1,
    // high >= 2 * low, sigfig <= 5), so construction cannot fail.
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, HISTOGRAM_SIGFIG)
        .unwrap_or_else(|_| unreachable!("constant histogram bounds are valid"))
}

/// Records a duration, saturating at the histogram's maximum.
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record(micros(d));
}

/// V2 + DEFLATE, base64: the exact, mergeable form reports carry.
pub fn encode(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    // Serializing into a Vec cannot fail for a histogram built by `new_histogram`.
    if V2DeflateSerializer::new().serialize(h, &mut bytes).is_err() {
        bytes.clear();
    }
    STANDARD.encode(bytes)
}

/// Reads [`encode`]'s output.
pub fn decode(text: &str) -> Result<Histogram<u64>, MetricsError> {
    if text.is_empty() {
        return Ok(new_histogram());
    }
    let bytes = STANDARD.decode(text)?;
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| MetricsError::Histogram(format!("{e:?}")))?;
    // Normalize to our bounds so later merges never need to resize.
    let mut out = new_histogram();
    out.add(&h)
        .map_err(|e| MetricsError::Merge(format!("{e:?}")))?;
    Ok(out)
}

/// Adds `src` into `dst` (same format: cannot overflow the bounds).
pub fn merge_into(dst: &mut Histogram<u64>, src: &Histogram<u64>) {
    if src.is_empty() {
        return;
    }
    if dst.add(src).is_err() {
        // Both come from `new_histogram`, so this is unreachable; never lose data silently.
        for v in src.iter_recorded() {
            dst.saturating_record_n(v.value_iterated_to(), v.count_at_value());
        }
    }
}

/// Percentiles of a histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

/// Counters that are not outcomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Requests sent again after a 408.
    pub retries: u64,
    /// Sockets the sim dropped on purpose.
    pub socket_drops: u64,
    pub reconnects: u64,
    /// `found` messages that arrived while the player was not searching.
    pub stray_found: u64,
    /// Sampled DSMC checks made.
    pub verified: u64,
    /// Players that started more than [`SATURATION_LAG`] after their scheduled time.
    pub lagged_starts: u64,
}

impl Counters {
    pub fn add(&mut self, o: &Counters) {
        self.retries += o.retries;
        self.socket_drops += o.socket_drops;
        self.reconnects += o.reconnects;
        self.stray_found += o.stray_found;
        self.verified += o.verified;
        self.lagged_starts += o.lagged_starts;
    }
}

/// One counter a player bumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Retry,
    SocketDrop,
    Reconnect,
    StrayFound,
    Verified,
}

/// Everything counted over some period, without latencies: a shard's since the last drain, a
/// second's, a run's.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub calls: [u64; Endpoint::COUNT],
    pub errors: BTreeMap<(Endpoint, ErrorKind), u64>,
    /// Indexed by [`Outcome::index`].
    pub outcomes: [u64; 5],
    /// Failed outcomes by reason (the matchmaker's failure class).
    pub fails: BTreeMap<FailReason, u64>,
    /// Parties that started a search.
    pub arrivals: u64,
    /// Players in those parties.
    pub players: u64,
    pub counters: Counters,
    /// Worst start lag, microseconds.
    pub max_lag_us: u64,
    /// Matchmaking requests moved to the next matchmaker URL, by the URL that could not be
    /// reached (rare, so a map is cheap enough).
    pub failovers: BTreeMap<String, u64>,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        for (dst, src) in self.calls.iter_mut().zip(o.calls) {
            *dst += src;
        }
        for (key, n) in &o.errors {
            *self.errors.entry(*key).or_default() += n;
        }
        for (dst, src) in self.outcomes.iter_mut().zip(o.outcomes) {
            *dst += src;
        }
        for (reason, n) in &o.fails {
            *self.fails.entry(*reason).or_default() += n;
        }
        self.arrivals += o.arrivals;
        self.players += o.players;
        self.counters.add(&o.counters);
        self.max_lag_us = self.max_lag_us.max(o.max_lag_us);
        for (url, n) in &o.failovers {
            *self.failovers.entry(url.clone()).or_default() += n;
        }
    }
}

/// Counts and latency histograms over some period: a second's, a run's.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Pairing latency: scheduled arrival → `found` on the socket.
    pub pairing: Histogram<u64>,
    /// Per endpoint, indexed by [`Endpoint::index`].
    pub endpoints: Vec<Histogram<u64>>,
    pub counts: Counts,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            pairing: new_histogram(),
            endpoints: (0..Endpoint::COUNT).map(|_| new_histogram()).collect(),
            counts: Counts::default(),
        }
    }
}

impl Tally {
    pub fn add(&mut self, o: &Tally) {
        merge_into(&mut self.pairing, &o.pairing);
        for (dst, src) in self.endpoints.iter_mut().zip(&o.endpoints) {
            merge_into(dst, src);
        }
        self.counts.add(&o.counts);
    }

    /// Records one latency sample.
    fn record(&mut self, sample: Sample) {
        match sample {
            Sample::Pairing(us) => self.pairing.saturating_record(us),
            Sample::Call(endpoint, us) => {
                self.endpoints[endpoint.index()].saturating_record(us);
            }
        }
    }

    /// Back to zero, keeping the histograms' memory.
    pub fn reset(&mut self) {
        self.pairing.reset();
        self.endpoints.iter_mut().for_each(Histogram::reset);
        self.counts = Counts::default();
    }

    pub fn outcome(&self, o: Outcome) -> u64 {
        self.counts.outcomes[o.index()]
    }

    /// Failed outcomes for want of a dedicated server (no capacity, or the claim failed).
    pub fn fail_claim(&self) -> u64 {
        self.counts
            .fails
            .iter()
            .filter(|(reason, _)| reason.is_claim())
            .map(|(_, n)| n)
            .sum()
    }

    /// Players with a final outcome.
    pub fn finished(&self) -> u64 {
        self.counts.outcomes.iter().sum()
    }

    pub fn errors_total(&self) -> u64 {
        self.counts.errors.values().sum()
    }
}

/// A latency a player measured, in microseconds, kept raw in its shard until the collector
/// records it.
#[derive(Debug, Clone, Copy)]
enum Sample {
    Pairing(u64),
    Call(Endpoint, u64),
}

/// A duration in whole microseconds, at least 1 (the histograms' lowest value).
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// A worker's share of the measurements since the collector last drained it.
///
/// A shard holds no histogram: latencies wait here as raw samples (16 bytes each) and the
/// collector records them after swapping the buffer out. A shard used to hold its own tally of
/// 14 histograms (~190 KB each: 2.6 MB per shard, 21 MB at the default 8 shards), which every
/// drain merged and zeroed whatever the load; now a drain costs what was recorded.
#[derive(Debug, Default)]
pub struct ShardData {
    counts: Counts,
    samples: Vec<Sample>,
    /// `(arrival, party size)` of every search that started.
    pub started: Vec<(u64, u16)>,
    pub records: Vec<PlayerRecord>,
    pub releases: Vec<Release>,
}

/// One worker's shard.
#[derive(Debug, Default)]
pub struct Shard {
    data: Mutex<ShardData>,
}

/// Live gauges, read on every snapshot.
#[derive(Debug, Default)]
pub struct Gauges {
    /// Players whose request is in flight.
    pub searching: AtomicI64,
    /// Lobby sockets open.
    pub open_sockets: AtomicI64,
    /// Parties between arrival and outcome.
    pub in_flight: AtomicI64,
    /// Players started (monotonic; the snapshot's "arrived" before the tick drains).
    pub started: AtomicU64,
}

impl Gauges {
    pub fn add(gauge: &AtomicI64, delta: i64) {
        gauge.fetch_add(delta, Ordering::Relaxed);
    }

    pub fn get(gauge: &AtomicI64) -> i64 {
        gauge.load(Ordering::Relaxed)
    }
}

/// What a player records with: its worker's shard and the shared gauges. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Recorder {
    shard: Arc<Shard>,
    gauges: Arc<Gauges>,
}

impl Recorder {
    pub fn gauges(&self) -> &Gauges {
        &self.gauges
    }

    fn with<R>(&self, f: impl FnOnce(&mut ShardData) -> R) -> R {
        f(&mut self.shard.data.lock())
    }

    /// Search `arrival` of a party of `players` started `lag` after its scheduled time.
    pub fn arrival(&self, arrival: u64, players: u32, lag: Duration) {
        self.gauges
            .started
            .fetch_add(u64::from(players), Ordering::Relaxed);
        let lag_us = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX);
        self.with(|d| {
            d.started
                .push((arrival, u16::try_from(players).unwrap_or(u16::MAX)));
            d.counts.arrivals += 1;
            d.counts.players += u64::from(players);
            d.counts.max_lag_us = d.counts.max_lag_us.max(lag_us);
            if lag > SATURATION_LAG {
                d.counts.counters.lagged_starts += 1;
            }
        });
    }

    /// One call to `endpoint` took `elapsed` and ended with `result`.
    pub fn call(&self, endpoint: Endpoint, elapsed: Duration, result: Result<(), ErrorKind>) {
        self.with(|d| {
            d.samples.push(Sample::Call(endpoint, micros(elapsed)));
            d.counts.calls[endpoint.index()] += 1;
            if let Err(kind) = result {
                *d.counts.errors.entry((endpoint, kind)).or_default() += 1;
            }
        });
    }

    /// An error that is not one timed call (a socket closed, `found` never came).
    pub fn error(&self, endpoint: Endpoint, kind: ErrorKind) {
        self.with(|d| *d.counts.errors.entry((endpoint, kind)).or_default() += 1);
    }

    pub fn pairing(&self, latency: Duration) {
        self.with(|d| d.samples.push(Sample::Pairing(micros(latency))));
    }

    pub fn count(&self, counter: Counter) {
        self.with(|d| {
            let c = &mut d.counts.counters;
            match counter {
                Counter::Retry => c.retries += 1,
                Counter::SocketDrop => c.socket_drops += 1,
                Counter::Reconnect => c.reconnects += 1,
                Counter::StrayFound => c.stray_found += 1,
                Counter::Verified => c.verified += 1,
            }
        });
    }

    /// A player's final outcome.
    pub fn finish(&self, record: PlayerRecord, fail: Option<FailReason>) {
        self.with(|d| {
            d.counts.outcomes[record.outcome.index()] += 1;
            if let Some(reason) = fail {
                *d.counts.fails.entry(reason).or_default() += 1;
            }
            d.records.push(record);
        });
    }

    /// A matchmaking request left `url` (it could not be reached) for the next matchmaker.
    pub fn failover(&self, url: &url::Url) {
        self.with(|d| *d.counts.failovers.entry(url.to_string()).or_default() += 1);
    }

    pub fn release(&self, release: Release) {
        self.with(|d| d.releases.push(release));
    }
}

/// DSMC claim counts (from the fakes' stats, as deltas since the run started).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimCounts {
    pub attempted: u64,
    pub succeeded: u64,
    pub not_found: u64,
    pub conflict: u64,
    pub not_ready: u64,
    pub unreachable: u64,
}

impl ClaimCounts {
    pub fn failed(&self) -> u64 {
        self.not_found + self.conflict + self.not_ready + self.unreachable
    }

    /// `self - base`, saturating (a fakes reset makes counters go back).
    pub fn since(&self, base: &ClaimCounts) -> ClaimCounts {
        ClaimCounts {
            attempted: self.attempted.saturating_sub(base.attempted),
            succeeded: self.succeeded.saturating_sub(base.succeeded),
            not_found: self.not_found.saturating_sub(base.not_found),
            conflict: self.conflict.saturating_sub(base.conflict),
            not_ready: self.not_ready.saturating_sub(base.not_ready),
            unreachable: self.unreachable.saturating_sub(base.unreachable),
        }
    }

    pub fn add(&mut self, o: &ClaimCounts) {
        self.attempted += o.attempted;
        self.succeeded += o.succeeded;
        self.not_found += o.not_found;
        self.conflict += o.conflict;
        self.not_ready += o.not_ready;
        self.unreachable += o.unreachable;
    }
}

/// One second of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SecondPoint {
    /// Seconds since arrivals started.
    pub t: u32,
    pub arrivals: u64,
    pub players: u64,
    pub matched: u64,
    pub timed_out: u64,
    pub cancelled: u64,
    pub failed: u64,
    pub errors: u64,
    /// Target arrival rate (parties per second) at the end of this second.
    pub target_rate: f64,
    pub searching: i64,
    pub open_sockets: i64,
    /// Pairing latency of players matched in this second.
    pub latency: Percentiles,
    /// The same, as an exact mergeable histogram.
    pub pairing_hist: String,
    /// Claim counts during this second.
    pub claims: ClaimCounts,
    pub max_lag_ms: f64,
    pub lagged_starts: u64,
    pub active_faults: Vec<String>,
}

/// Owns the totals and the series; drains the shards. Driven by the engine's metrics task.
#[derive(Debug)]
pub struct Collector {
    shards: Vec<Arc<Shard>>,
    gauges: Arc<Gauges>,
    /// Everything up to the last closed second.
    pub totals: Tally,
    /// The open second.
    interval: Tally,
    second: u32,
    pub series: Vec<SecondPoint>,
    pub started: Vec<(u64, u16)>,
    pub records: Vec<PlayerRecord>,
    pub releases: Vec<Release>,
    /// Latest claim counts (since start), and at the last closed second.
    pub claims: Option<ClaimCounts>,
    claims_at_second: ClaimCounts,
    /// Percentiles of the last closed second.
    pub last_second: Percentiles,
    /// The sample buffer swapped into a shard on each drain (keeps its capacity).
    spare: Vec<Sample>,
}

impl Collector {
    /// A collector and one [`Recorder`] per worker.
    pub fn new(workers: usize) -> (Collector, Vec<Recorder>) {
        let gauges = Arc::new(Gauges::default());
        let shards: Vec<Arc<Shard>> = (0..workers.max(1)).map(|_| Arc::default()).collect();
        let recorders = shards
            .iter()
            .map(|shard| Recorder {
                shard: Arc::clone(shard),
                gauges: Arc::clone(&gauges),
            })
            .collect();
        let collector = Collector {
            shards,
            gauges,
            totals: Tally::default(),
            interval: Tally::default(),
            second: 0,
            series: Vec::new(),
            started: Vec::new(),
            records: Vec::new(),
            releases: Vec::new(),
            claims: None,
            claims_at_second: ClaimCounts::default(),
            last_second: Percentiles::default(),
            spare: Vec::new(),
        };
        (collector, recorders)
    }

    pub fn gauges(&self) -> &Gauges {
        &self.gauges
    }

    /// Moves every shard's measurements into the open second. The lock is held only to swap
    /// the shard's buffers for empty ones; the samples are recorded after it is released.
    pub fn drain(&mut self) {
        for shard in &self.shards {
            let counts = {
                let mut data = shard.data.lock();
                std::mem::swap(&mut data.samples, &mut self.spare);
                self.started.append(&mut data.started);
                self.records.append(&mut data.records);
                self.releases.append(&mut data.releases);
                std::mem::take(&mut data.counts)
            };
            self.interval.counts.add(&counts);
            for sample in self.spare.drain(..) {
                self.interval.record(sample);
            }
        }
    }

    /// Latest claim counts since the run started.
    pub fn set_claims(&mut self, claims: ClaimCounts) {
        self.claims = Some(claims);
    }

    /// Closes the open second: appends a [`SecondPoint`] and folds it into the totals.
    pub fn close_second(&mut self, target_rate: f64, active_faults: Vec<String>) {
        let i = &self.interval;
        let latency = Percentiles::of(&i.pairing);
        let claims_now = self.claims.unwrap_or_default();
        let point = SecondPoint {
            t: self.second,
            arrivals: i.counts.arrivals,
            players: i.counts.players,
            matched: i.outcome(Outcome::Matched),
            timed_out: i.outcome(Outcome::TimedOut),
            cancelled: i.outcome(Outcome::Cancelled),
            failed: i.outcome(Outcome::Failed),
            errors: i.outcome(Outcome::Error),
            target_rate,
            searching: Gauges::get(&self.gauges.searching),
            open_sockets: Gauges::get(&self.gauges.open_sockets),
            latency,
            pairing_hist: encode(&i.pairing),
            claims: claims_now.since(&self.claims_at_second),
            max_lag_ms: i.counts.max_lag_us as f64 / 1000.0,
            lagged_starts: i.counts.counters.lagged_starts,
            active_faults,
        };
        self.claims_at_second = claims_now;
        self.last_second = latency;
        self.series.push(point);
        self.totals.add(&self.interval);
        self.interval.reset();
        self.second += 1;
    }

    /// Totals including the open second (for live counters and the final result).
    pub fn totals_now(&self) -> Tally {
        let mut t = self.totals.clone();
        t.add(&self.interval);
        t
    }

    /// Folds the open second into the totals without closing it (at the end of a run).
    pub fn finish(&mut self) {
        self.drain();
        if self.interval.finished() > 0 || self.interval.counts.arrivals > 0 {
            self.close_second(0.0, Vec::new());
        } else {
            self.totals.add(&self.interval);
            self.interval.reset();
        }
    }

    /// The open second's counters.
    pub fn interval(&self) -> &Tally {
        &self.interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn shards_merge_exactly() {
        let (mut collector, recorders) = Collector::new(4);
        let mut reference = new_histogram();
        for i in 0..10_000u64 {
            let d = ms(1 + (i * 7919) % 5000);
            recorders[(i % 4) as usize].pairing(d);
            record(&mut reference, d);
        }
        collector.drain();
        collector.close_second(1.0, Vec::new());
        let totals = collector.totals_now();
        assert_eq!(totals.pairing.len(), 10_000);
        for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(
                totals.pairing.value_at_quantile(q),
                reference.value_at_quantile(q),
                "q={q}"
            );
        }
        assert_eq!(totals.pairing, reference, "bucket for bucket");
    }

    #[test]
    fn serialized_histograms_merge_exactly() {
        let mut a = new_histogram();
        let mut b = new_histogram();
        let mut both = new_histogram();
        for i in 1..=5000u64 {
            record(&mut a, ms(i));
            record(&mut both, ms(i));
        }
        for i in 1..=300u64 {
            record(&mut b, Duration::from_secs(i));
            record(&mut both, Duration::from_secs(i));
        }
        let mut merged = decode(&encode(&a)).expect("a");
        merge_into(&mut merged, &decode(&encode(&b)).expect("b"));
        assert_eq!(merged, both);
        assert_eq!(decode("").expect("empty").len(), 0);
        assert!(decode("not base64!").is_err());
    }

    #[test]
    fn counters_outcomes_and_seconds() {
        let (mut collector, recorders) = Collector::new(2);
        let r = &recorders[0];
        r.arrival(1, 2, ms(1));
        r.arrival(2, 1, ms(80));
        r.call(Endpoint::Login, ms(3), Ok(()));
        r.call(Endpoint::Login, ms(4), Err(ErrorKind::Status(503)));
        recorders[1].error(Endpoint::Lobby, ErrorKind::NoFound);
        let rec = |outcome| PlayerRecord {
            arrival: 1,
            member: 0,
            outcome,
            error: None,
            session: None,
            answered: None,
            found: Vec::new(),
            found_at_ms: None,
            answered_at_ms: None,
            dsmc_server: None,
        };
        r.finish(rec(Outcome::Matched), None);
        recorders[1].finish(
            rec(Outcome::Failed),
            Some(FailReason::from_code(Some(510525))),
        );
        collector.drain();
        assert_eq!(collector.interval().counts.players, 3);
        collector.close_second(2.0, vec!["claims".into()]);
        r.count(Counter::Retry);
        collector.drain();
        collector.close_second(2.0, Vec::new());
        let t = collector.totals_now();
        assert_eq!(t.counts.arrivals, 2);
        assert_eq!(t.counts.counters.lagged_starts, 1);
        assert_eq!(t.counts.max_lag_us, 80_000);
        assert_eq!(t.counts.calls[Endpoint::Login.index()], 2);
        assert_eq!(
            t.counts.errors[&(Endpoint::Login, ErrorKind::Status(503))],
            1
        );
        assert_eq!(t.errors_total(), 2);
        assert_eq!(t.outcome(Outcome::Matched), 1);
        assert_eq!(t.fail_claim(), 1);
        assert_eq!(
            t.counts.fails.keys().map(|r| r.class()).collect::<Vec<_>>(),
            ["claim_unreachable"]
        );
        assert_eq!(t.counts.counters.retries, 1);
        assert_eq!(collector.series.len(), 2);
        assert_eq!(collector.series[0].matched, 1);
        assert_eq!(collector.series[0].active_faults, vec!["claims".to_owned()]);
        assert_eq!(collector.records.len(), 2);
        assert_eq!(collector.started, vec![(1, 2), (2, 1)]);
    }
}
