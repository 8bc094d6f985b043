//! What the matchmaker counts, and its Prometheus text rendering for `GET /metrics`.
//!
//! Failures on the load path are data, not log lines: every rejected token, claim failure,
//! requeue and notification error increments a counter here, and the logs stay quiet.
//!
//! Hot counters (per game mode: tickets created and finished, time to match) are atomics in
//! arrays built once from the configured modes; the sparse, low-rate families (failure reasons,
//! HTTP statuses) are small maps behind a mutex never held across an `.await`. Histograms use
//! fixed buckets (0.5 ms … 120 s), which fits both pipeline steps and waiting times.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `matchmaker_queue_depth` | gauge | `mode` (read from the store at scrape time) |
//! | `matchmaker_tickets_created_total` | counter | `mode` |
//! | `matchmaker_tickets_finished_total` | counter | `mode`, `state` (`matched`, `cancelled`, `timed_out`, `failed`) |
//! | `matchmaker_tickets_requeued_total` | counter | `mode` (a failed attempt sent back to the queue) |
//! | `matchmaker_time_to_match_seconds` | histogram | `mode` (original enqueue to recorded match) |
//! | `matchmaker_pipeline_step_seconds` | histogram | `step` |
//! | `matchmaker_claim_failures_total` | counter | `class` |
//! | `matchmaker_matches_total` | counter | `outcome` |
//! | `matchmaker_notifications_total` | counter | `kind`, `result` |
//! | `matchmaker_auth_rejections_total` | counter | `reason` |
//! | `matchmaker_iam_fetches_total` | counter | `what`, `result` |
//! | `matchmaker_http_responses_total` | counter | `route`, `status` |
//! | `matchmaker_waiting_requests` | gauge | (held `POST /matchmaking` calls) |
//!
//! Each replica counts what it did; sum over replicas for the whole service. Must not know
//! about HTTP frameworks or stores: the caller passes queue depths in when rendering.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

/// Upper bounds (seconds) of the histogram buckets; `+Inf` is implied.
const BUCKETS: [f64; 17] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0,
];

/// A fixed-bucket histogram of durations.
#[derive(Debug)]
pub struct Histogram {
    /// Per bucket (not cumulative); the last one is `+Inf`.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_micros: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, value: Duration) {
        let secs = value.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(BUCKETS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(value.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// How many values were recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = BUCKETS
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

/// A ticket's final state, as counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinalState {
    Matched,
    Cancelled,
    TimedOut,
    Failed,
}

impl FinalState {
    const ALL: [FinalState; 4] = [
        FinalState::Matched,
        FinalState::Cancelled,
        FinalState::TimedOut,
        FinalState::Failed,
    ];

    fn label(self) -> &'static str {
        match self {
            FinalState::Matched => "matched",
            FinalState::Cancelled => "cancelled",
            FinalState::TimedOut => "timed_out",
            FinalState::Failed => "failed",
        }
    }
}

/// A timed pipeline step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    SessionCreate,
    DsmcRegister,
    /// The whole claim, retries and backoff included.
    DsmcClaim,
    DsmcGet,
    AddPlayers,
    SessionGet,
    /// Every `found` of a match (after the outcome was recorded).
    NotifyFound,
    /// `run` from claim to outcome (not counting the notifications).
    Pipeline,
}

impl Step {
    const ALL: [Step; 8] = [
        Step::SessionCreate,
        Step::DsmcRegister,
        Step::DsmcClaim,
        Step::DsmcGet,
        Step::AddPlayers,
        Step::SessionGet,
        Step::NotifyFound,
        Step::Pipeline,
    ];

    fn label(self) -> &'static str {
        match self {
            Step::SessionCreate => "session_create",
            Step::DsmcRegister => "dsmc_register",
            Step::DsmcClaim => "dsmc_claim",
            Step::DsmcGet => "dsmc_get",
            Step::AddPlayers => "add_players",
            Step::SessionGet => "session_get",
            Step::NotifyFound => "notify_found",
            Step::Pipeline => "pipeline",
        }
    }
}

#[derive(Debug, Default)]
struct ModeMetrics {
    created: AtomicU64,
    finished: [AtomicU64; 4],
    requeued: AtomicU64,
    time_to_match: Histogram,
}

/// A counter family keyed by a few static label values.
#[derive(Debug)]
struct Family<const N: usize> {
    values: Mutex<BTreeMap<[&'static str; N], u64>>,
}

impl<const N: usize> Default for Family<N> {
    fn default() -> Self {
        Family {
            values: Mutex::new(BTreeMap::new()),
        }
    }
}

impl<const N: usize> Family<N> {
    fn add(&self, labels: [&'static str; N], n: u64) {
        *self.values.lock().entry(labels).or_insert(0) += n;
    }

    fn get(&self, labels: [&'static str; N]) -> u64 {
        self.values.lock().get(&labels).copied().unwrap_or(0)
    }

    fn render(&self, out: &mut String, name: &str, help: &str, keys: [&str; N]) {
        header(out, name, help, "counter");
        for (values, n) in self.values.lock().iter() {
            let labels: Vec<String> = keys
                .iter()
                .zip(values)
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = writeln!(out, "{name}{{{}}} {n}", labels.join(","));
        }
    }
}

/// Every counter of one matchmaker process. Shared as `Arc<Metrics>`.
#[derive(Debug)]
pub struct Metrics {
    store: &'static str,
    modes: Vec<String>,
    index: HashMap<String, usize>,
    per_mode: Vec<ModeMetrics>,
    steps: [Histogram; 8],
    claim_failures: Family<1>,
    matches: Family<1>,
    notifications: Family<2>,
    auth_rejections: Family<1>,
    iam_fetches: Family<2>,
    http: Mutex<BTreeMap<(&'static str, u16), u64>>,
    waiting: AtomicI64,
}

impl Metrics {
    /// Counters for these game modes on a `store` (`memory` or `redis`) backend.
    pub fn new<'a>(modes: impl IntoIterator<Item = &'a str>, store: &'static str) -> Self {
        let modes: Vec<String> = modes.into_iter().map(str::to_owned).collect();
        let index = modes
            .iter()
            .enumerate()
            .map(|(i, m)| (m.clone(), i))
            .collect();
        let per_mode = modes.iter().map(|_| ModeMetrics::default()).collect();
        Metrics {
            store,
            modes,
            index,
            per_mode,
            steps: std::array::from_fn(|_| Histogram::default()),
            claim_failures: Family::default(),
            matches: Family::default(),
            notifications: Family::default(),
            auth_rejections: Family::default(),
            iam_fetches: Family::default(),
            http: Mutex::new(BTreeMap::new()),
            waiting: AtomicI64::new(0),
        }
    }

    fn mode(&self, mode: &str) -> Option<&ModeMetrics> {
        self.index.get(mode).map(|&i| &self.per_mode[i])
    }

    pub fn ticket_created(&self, mode: &str) {
        if let Some(m) = self.mode(mode) {
            m.created.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn tickets_finished(&self, mode: &str, state: FinalState, n: u64) {
        if let Some(m) = self.mode(mode) {
            m.finished[state as usize].fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn tickets_requeued(&self, mode: &str, n: u64) {
        if let Some(m) = self.mode(mode) {
            m.requeued.fetch_add(n, Ordering::Relaxed);
        }
    }

    pub fn time_to_match(&self, mode: &str, waited: Duration) {
        if let Some(m) = self.mode(mode) {
            m.time_to_match.observe(waited);
        }
    }

    pub fn step(&self, step: Step, took: Duration) {
        self.steps[step as usize].observe(took);
    }

    /// A failed DSMC claim attempt (or register refused for capacity), by class.
    pub fn claim_failure(&self, class: &'static str) {
        self.claim_failures.add([class], 1);
    }

    /// How a match ended: `matched`, `requeued`, `failed`, `released` or `lease_lost`.
    pub fn match_outcome(&self, outcome: &'static str) {
        self.matches.add([outcome], 1);
    }

    /// A notification (`searching`, `found`, `failed`) and its `result` (`ok`, `error`).
    pub fn notification(&self, kind: &'static str, result: &'static str) {
        self.notifications.add([kind, result], 1);
    }

    pub fn auth_rejected(&self, reason: &'static str) {
        self.auth_rejections.add([reason], 1);
    }

    /// A fetch from IAM (`jwks`, `revocation_list`, `role`, `client_token`) and its result.
    pub fn iam_fetch(&self, what: &'static str, result: &'static str) {
        self.iam_fetches.add([what, result], 1);
    }

    pub fn http_response(&self, route: &'static str, status: u16) {
        *self.http.lock().entry((route, status)).or_insert(0) += 1;
    }

    /// A held matchmaking request started (`+1`) or ended (`-1`).
    pub fn waiting(&self, delta: i64) {
        self.waiting.fetch_add(delta, Ordering::Relaxed);
    }

    // Read-backs, for tests and benches.

    pub fn claim_failures(&self, class: &'static str) -> u64 {
        self.claim_failures.get([class])
    }

    pub fn matches(&self, outcome: &'static str) -> u64 {
        self.matches.get([outcome])
    }

    pub fn notifications(&self, kind: &'static str, result: &'static str) -> u64 {
        self.notifications.get([kind, result])
    }

    pub fn finished(&self, mode: &str, state: FinalState) -> u64 {
        self.mode(mode)
            .map_or(0, |m| m.finished[state as usize].load(Ordering::Relaxed))
    }

    pub fn step_count(&self, step: Step) -> u64 {
        self.steps[step as usize].count()
    }

    /// The Prometheus text exposition (format 0.0.4). `queue_depths` are read by the caller.
    pub fn render(&self, queue_depths: &[(String, usize)]) -> String {
        let mut out = String::with_capacity(8 * 1024);
        header(
            &mut out,
            "matchmaker_info",
            "Which store this replica uses.",
            "gauge",
        );
        let _ = writeln!(out, "matchmaker_info{{store=\"{}\"}} 1", self.store);

        header(
            &mut out,
            "matchmaker_queue_depth",
            "Tickets queued, per game mode.",
            "gauge",
        );
        for (mode, depth) in queue_depths {
            let _ = writeln!(
                out,
                "matchmaker_queue_depth{{mode=\"{}\"}} {depth}",
                escape(mode)
            );
        }

        header(
            &mut out,
            "matchmaker_tickets_created_total",
            "Tickets queued by this replica.",
            "counter",
        );
        for (mode, m) in self.modes.iter().zip(&self.per_mode) {
            let n = m.created.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "matchmaker_tickets_created_total{{mode=\"{}\"}} {n}",
                escape(mode)
            );
        }

        header(
            &mut out,
            "matchmaker_tickets_finished_total",
            "Tickets this replica moved to a final state.",
            "counter",
        );
        for (mode, m) in self.modes.iter().zip(&self.per_mode) {
            for state in FinalState::ALL {
                let n = m.finished[state as usize].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "matchmaker_tickets_finished_total{{mode=\"{}\",state=\"{}\"}} {n}",
                    escape(mode),
                    state.label()
                );
            }
        }

        header(
            &mut out,
            "matchmaker_tickets_requeued_total",
            "Failed attempts that sent a ticket back to the queue.",
            "counter",
        );
        for (mode, m) in self.modes.iter().zip(&self.per_mode) {
            let n = m.requeued.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "matchmaker_tickets_requeued_total{{mode=\"{}\"}} {n}",
                escape(mode)
            );
        }

        header(
            &mut out,
            "matchmaker_time_to_match_seconds",
            "From a ticket's original enqueue time to its recorded match.",
            "histogram",
        );
        for (mode, m) in self.modes.iter().zip(&self.per_mode) {
            let labels = format!("mode=\"{}\"", escape(mode));
            m.time_to_match
                .render(&mut out, "matchmaker_time_to_match_seconds", &labels);
        }

        header(
            &mut out,
            "matchmaker_pipeline_step_seconds",
            "Latency of each pipeline step.",
            "histogram",
        );
        for step in Step::ALL {
            let labels = format!("step=\"{}\"", step.label());
            self.steps[step as usize].render(&mut out, "matchmaker_pipeline_step_seconds", &labels);
        }

        self.claim_failures.render(
            &mut out,
            "matchmaker_claim_failures_total",
            "Failed DSMC claim attempts (and registers refused for capacity), by class.",
            ["class"],
        );
        self.matches.render(
            &mut out,
            "matchmaker_matches_total",
            "Claimed matches by how their pipeline ended.",
            ["outcome"],
        );
        self.notifications.render(
            &mut out,
            "matchmaker_notifications_total",
            "Free-form notifications sent to players.",
            ["kind", "result"],
        );
        self.auth_rejections.render(
            &mut out,
            "matchmaker_auth_rejections_total",
            "Requests refused by token validation.",
            ["reason"],
        );
        self.iam_fetches.render(
            &mut out,
            "matchmaker_iam_fetches_total",
            "Fetches from IAM: keys, revocation list, roles, the client token.",
            ["what", "result"],
        );

        header(
            &mut out,
            "matchmaker_http_responses_total",
            "HTTP responses by route and status.",
            "counter",
        );
        for ((route, status), n) in self.http.lock().iter() {
            let _ = writeln!(
                out,
                "matchmaker_http_responses_total{{route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }

        header(
            &mut out,
            "matchmaker_waiting_requests",
            "Matchmaking requests held open waiting for their match.",
            "gauge",
        );
        let _ = writeln!(
            out,
            "matchmaker_waiting_requests {}",
            self.waiting.load(Ordering::Relaxed)
        );
        out
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value (backslash, quote, newline).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(500));
        let mut out = String::new();
        h.render(&mut out, "x", "step=\"a\"");
        assert!(
            out.contains("x_bucket{step=\"a\",le=\"0.0005\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("x_bucket{step=\"a\",le=\"0.005\"} 2\n"),
            "{out}"
        );
        assert!(out.contains("x_bucket{step=\"a\",le=\"120\"} 2\n"), "{out}");
        assert!(
            out.contains("x_bucket{step=\"a\",le=\"+Inf\"} 3\n"),
            "{out}"
        );
        assert!(out.contains("x_count{step=\"a\"} 3\n"), "{out}");
        assert_eq!(h.count(), 3);
    }

    #[test]
    fn renders_every_family() {
        let m = Metrics::new(["1v1", "odd\"mode"], "memory");
        m.ticket_created("1v1");
        m.tickets_finished("1v1", FinalState::TimedOut, 2);
        m.ticket_created("unknown mode is ignored");
        m.claim_failure("not_ready");
        m.claim_failure("not_ready");
        m.notification("found", "ok");
        m.http_response("/matchmaking", 200);
        m.step(Step::DsmcClaim, Duration::from_millis(2));
        let text = m.render(&[("1v1".into(), 4)]);
        for line in [
            "matchmaker_info{store=\"memory\"} 1",
            "matchmaker_queue_depth{mode=\"1v1\"} 4",
            "matchmaker_tickets_created_total{mode=\"1v1\"} 1",
            "matchmaker_tickets_finished_total{mode=\"1v1\",state=\"timed_out\"} 2",
            "matchmaker_tickets_finished_total{mode=\"odd\\\"mode\",state=\"matched\"} 0",
            "matchmaker_claim_failures_total{class=\"not_ready\"} 2",
            "matchmaker_notifications_total{kind=\"found\",result=\"ok\"} 1",
            "matchmaker_http_responses_total{route=\"/matchmaking\",status=\"200\"} 1",
            "matchmaker_pipeline_step_seconds_count{step=\"dsmc_claim\"} 1",
            "matchmaker_waiting_requests 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
        assert_eq!(m.claim_failures("not_ready"), 2);
        assert_eq!(m.finished("1v1", FinalState::TimedOut), 2);
    }
}
