//! Scenario files: TOML in, a validated [`Plan`] out, or every problem with file, line and field.
//!
//! Owns the file format (documented in `scenarios/README.md`) and its rules: `version = 1`,
//! unknown keys refused, durations written with a unit, weights positive, rates within `[0, 1]`.
//! Parsing is pure: no clock, no network, no environment; reading the file is the only I/O, in
//! [`Plan::from_file`].
//!
//! Must not know how a plan is run (the engine), what a target process is, or how results are
//! reported. The fault steps' bodies are the fakes' fault objects: they are checked with the
//! fakes' own parser (so errors name the field) and passed through as JSON, so a new fault kind
//! needs no change here.

pub(crate) mod node;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fakes::seed::builtin;
use serde::{Deserialize, Serialize};
use url::Url;

pub use self::chaos::{ChaosAction, ChaosStep};
pub use self::match2::{MATCHMAKER_FUNCTION, Match2Function, Match2Plan};
use self::node::{Node, Problems, Table, Value, join};
pub use self::node::{Problem, format_duration, parse_duration};

/// The only format version this build reads.
pub const SCENARIO_VERSION: i64 = 1;

/// Default metric shards (each with its own HTTP connection pool).
pub const DEFAULT_WORKERS: usize = 8;
/// Source addresses used by default when the target is on loopback.
pub const DEFAULT_SOURCE_ADDRESSES: u8 = 8;

/// Why a scenario could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render_problems(.file, .problems))]
    Invalid {
        file: String,
        problems: Vec<Problem>,
    },
}

impl ScenarioError {
    /// The problems, for callers that render them differently.
    pub fn problems(&self) -> &[Problem] {
        match self {
            ScenarioError::Invalid { problems, .. } => problems,
            ScenarioError::Read { .. } => &[],
        }
    }
}

fn render_problems(file: &str, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{file}:{}: {}: {}", p.line, p.field, p.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Everything a run needs, validated.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub name: String,
    /// The file as the user named it (for messages and reports).
    pub file: String,
    pub description: Option<String>,
    pub run: RunPlan,
    pub target: TargetPlan,
    pub population: Population,
    pub faults: Vec<FaultStep>,
    /// Process-level faults (`[[chaos]]`): kills, pauses, restarts, partitions.
    pub chaos: Vec<ChaosStep>,
    pub thresholds: Thresholds,
    /// `[target.match2]`: the pool a `flow = "match2"` population queues in.
    pub match2: Option<Match2Plan>,
    /// What the file should change but still works (deprecated spellings), by line.
    #[serde(skip)]
    pub warnings: Vec<Problem>,
}

/// `[run]`.
#[derive(Debug, Clone, Serialize)]
pub struct RunPlan {
    /// How long arrivals are scheduled (open models) or players keep requeueing (closed).
    pub duration: Duration,
    pub seed: u64,
    /// After arrivals stop, how long players still in flight get before they count as errors.
    pub drain: Duration,
    /// Metric shards, each with its own HTTP connection pool.
    pub workers: usize,
    /// Headless progress line period.
    pub progress_every: Duration,
}

/// `[target]`: which system is tested.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TargetPlan {
    /// fakes and the matchmaker in this process.
    Embedded(EmbeddedPlan),
    /// A fakes (or a live AGS namespace) and a matchmaker reached over HTTP.
    Urls(Box<UrlsPlan>),
}

impl TargetPlan {
    pub fn source_addresses(&self) -> &SourceAddresses {
        match self {
            TargetPlan::Embedded(e) => &e.source_addresses,
            TargetPlan::Urls(u) => &u.source_addresses,
        }
    }
}

/// Which local addresses the players' sockets come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceAddresses {
    /// Several loopback addresses when the target is on loopback, else the OS's choice.
    Auto,
    /// `127.0.0.11`, `127.0.0.12`, … (loopback targets only).
    Count(u8),
    /// Exactly these.
    List(Vec<std::net::IpAddr>),
}

#[derive(Debug, Clone, Serialize)]
pub struct EmbeddedPlan {
    pub fleet: FleetPlan,
    /// Passed as is to the embedded matchmaker (its own config format).
    #[serde(skip)]
    pub matchmaker: toml::Table,
    pub source_addresses: SourceAddresses,
    /// Matchmaker replica processes on Redis (`[target] replicas`); `None`: as the load needs
    /// (and [`chaos::DEFAULT_CHAOS_REPLICAS`] when the scenario has `[[chaos]]`).
    pub replicas: Option<usize>,
    /// Serve the matchmaker's Extend match function and register it with fakes
    /// (`[target.match2] match_function = "matchmaker"`).
    pub serve_match_function: bool,
}

/// The DSMC fleet the embedded fakes simulates.
#[derive(Debug, Clone, Serialize)]
pub struct FleetPlan {
    /// `(region, servers)`.
    pub regions: Vec<(String, usize)>,
    pub ready_delay: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct UrlsPlan {
    /// Base URL of the fakes (or of AGS): IAM, lobby, DSMC and the control API hang off it.
    #[serde(serialize_with = "url_str")]
    pub fakes: Url,
    /// The URLs the matchmaking request is POSTed to (one or more replicas): players spread
    /// over them by arrival and fail over to the next when one refuses or times out connecting.
    #[serde(serialize_with = "urls_str")]
    pub matchmaker: Vec<Url>,
    pub namespace: String,
    /// The public game client players log in with.
    pub player_client: ClientCredentials,
    /// The confidential client that creates users, checks DSMC and releases servers.
    pub game_client: Option<ClientCredentials>,
    /// Existing accounts (`username,password` per line) instead of creating users.
    pub accounts: Option<PathBuf>,
    /// Accept any TLS certificate (a local fakes with `--tls`).
    pub insecure_tls: bool,
    pub source_addresses: SourceAddresses,
}

fn url_str<S: serde::Serializer>(url: &Url, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(url.as_str())
}

fn urls_str<S: serde::Serializer>(urls: &[Url], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(urls.iter().map(Url::as_str))
}

#[derive(Clone, Serialize)]
pub struct ClientCredentials {
    pub id: String,
    #[serde(skip)]
    pub secret: Option<String>,
}

// Hand-written so a secret never reaches a log line or a report.
impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("id", &self.id)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// `[population]`: who arrives, when, and how they behave.
#[derive(Debug, Clone, Serialize)]
pub struct Population {
    pub arrival: ArrivalPlan,
    pub modes: Vec<ModeMix>,
    pub mmr: Option<MmrDistribution>,
    /// Preferred regions and their weights; empty means no region is sent.
    pub regions: Vec<(String, f64)>,
    pub behaviour: Behaviour,
}

/// The arrival model.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum ArrivalPlan {
    /// Arrivals (parties) on a schedule that does not wait for the system: latency is measured
    /// from the scheduled time.
    Open {
        profile: RateProfile,
        /// Exponential gaps (a Poisson process over the profile) instead of even spacing.
        poisson: bool,
    },
    /// `players` users in parties; each party queues again `think` after its previous search
    /// ended (and, when matched, after the match's length).
    Closed {
        players: u32,
        ramp_up: Duration,
        think: Duration,
    },
}

/// A piecewise-linear arrival rate (parties per second) over time since the start.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateProfile {
    /// Consecutive segments from t = 0; the last rate holds after the last segment.
    pub segments: Vec<RateSegment>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RateSegment {
    pub length: Duration,
    pub from: f64,
    pub to: f64,
}

impl RateProfile {
    pub fn constant(rate: f64) -> Self {
        RateProfile {
            segments: vec![RateSegment {
                length: Duration::from_secs(1),
                from: rate,
                to: rate,
            }],
        }
    }

    /// The rate at `t` seconds.
    pub fn rate_at(&self, t: f64) -> f64 {
        let mut start = 0.0;
        for s in &self.segments {
            let len = s.length.as_secs_f64();
            if t < start + len {
                let frac = if len > 0.0 { (t - start) / len } else { 1.0 };
                return s.from + (s.to - s.from) * frac;
            }
            start += len;
        }
        self.segments.last().map_or(0.0, |s| s.to)
    }

    /// Expected arrivals in `[0, t]`.
    pub fn expected(&self, t: f64) -> f64 {
        let mut start = 0.0;
        let mut total = 0.0;
        for s in &self.segments {
            let len = s.length.as_secs_f64();
            let end = (start + len).min(t);
            if end <= start {
                return total;
            }
            let span = end - start;
            let r_end = s.from + (s.to - s.from) * if len > 0.0 { span / len } else { 1.0 };
            total += (s.from + r_end) / 2.0 * span;
            start += len;
        }
        let last = self.segments.last().map_or(0.0, |s| s.to);
        total + last * (t - start).max(0.0)
    }

    pub fn peak(&self) -> f64 {
        self.segments
            .iter()
            .map(|s| s.from.max(s.to))
            .fold(0.0, f64::max)
    }
}

/// One game mode of the mix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModeMix {
    pub name: String,
    pub weight: f64,
    /// `(size, weight)`; a party of one is a solo player.
    pub party_sizes: Vec<(u32, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "distribution", rename_all = "snake_case")]
pub enum MmrDistribution {
    Constant {
        value: u32,
    },
    Uniform {
        min: u32,
        max: u32,
    },
    Normal {
        mean: f64,
        stddev: f64,
        min: u32,
        max: u32,
    },
}

/// How players log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginFlow {
    /// authorize → authenticate → token (the tutorial client's SDK flow).
    Pkce,
    /// One `grant_type=password` call.
    Password,
}

/// `[population.behaviour]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Behaviour {
    /// Which client flow players run: the tutorial's matchmaker or Matchmaking v2.
    pub flow: Flow,
    pub login: LoginFlow,
    /// Client-side bound on the matchmaking call.
    pub request_timeout: Duration,
    /// After a 200, how long to wait for the socket's `found`.
    pub found_grace: Duration,
    /// How long a matched player stays connected after `found` (catches a second `found`).
    pub linger: Duration,
    /// How long a match's game lasts: the server is then released (DSMC session deleted) and,
    /// in a closed model, the party queues again. `None` keeps servers forever.
    pub match_length: Option<Duration>,
    pub cancel: Option<CancelBehaviour>,
    pub drop_socket: Option<DropSocketBehaviour>,
    pub retry_on_timeout: Option<RetryBehaviour>,
    /// Fraction of matched parties whose server is checked against DSMC.
    pub verify_server: f64,
}

/// `[population.behaviour] flow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    /// Log in, lobby, POST to the matchmaker, `found` on the socket.
    #[default]
    Tutorial,
    /// Log in, lobby, match ticket, `OnMatchFound`, join the game session, its server
    /// `AVAILABLE` (`[target.match2]` sets the pool up).
    Match2,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CancelBehaviour {
    pub probability: f64,
    /// Searching this long without a result → cancel (drop the request).
    pub after: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DropSocketBehaviour {
    pub probability: f64,
    /// The socket drops at a uniformly random moment in `[0, after]` of the search.
    pub after: Duration,
    /// Reconnect right away (the lobby then delivers what it queued).
    pub reconnect: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RetryBehaviour {
    pub max: u32,
    pub delay: Duration,
}

/// One entry of the fault timeline.
#[derive(Debug, Clone, Serialize)]
pub struct FaultStep {
    /// Since the start of arrivals.
    pub at: Duration,
    /// `None`: until the end of the run.
    pub duration: Option<Duration>,
    /// A short name for progress lines and reports (`label`, else the body's `kind`).
    pub label: String,
    /// The fault object sent to the fakes' control API, as written.
    pub body: serde_json::Value,
    /// Where it was written, for runtime errors.
    pub line: usize,
}

/// `[thresholds]`: what a passing run must achieve. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    pub pairing_p50: Option<Duration>,
    pub pairing_p95: Option<Duration>,
    pub pairing_p99: Option<Duration>,
    pub pairing_max: Option<Duration>,
    /// Highest fraction of finished players that timed out.
    pub timeout_rate: Option<f64>,
    /// Highest fraction of DSMC claims that failed.
    pub claim_failure_rate: Option<f64>,
    /// Highest fraction of finished players that ended in an error.
    pub error_rate: Option<f64>,
    /// Highest fraction of finished players whose match failed for good.
    #[serde(default)]
    pub failure_rate: Option<f64>,
    /// Fewest players that must be matched.
    pub min_matched: Option<u64>,
}

impl Plan {
    /// Reads and validates `path`.
    pub fn from_file(path: &Path) -> Result<Plan, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            file: file.clone(),
            source,
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Plan::parse(&text, &file, &base)
    }

    /// Validates scenario `text`; `file` names it in messages, relative paths in it resolve
    /// against `base`.
    pub fn parse(text: &str, file: &str, base: &Path) -> Result<Plan, ScenarioError> {
        let mut p = Problems::new(text);
        let root = match node::parse(text) {
            Ok(root) => root,
            Err((span, message)) => {
                let line = span.map_or(1, |s| p.line_of(s.start));
                return Err(ScenarioError::Invalid {
                    file: file.to_owned(),
                    problems: vec![Problem {
                        line,
                        field: "(syntax)".to_owned(),
                        message: message.trim().replace('\n', " "),
                    }],
                });
            }
        };
        let plan = read_plan(&root, file, base, &mut p);
        match plan {
            Some(mut plan) if p.list.is_empty() => {
                let mut warnings = std::mem::take(&mut p.warnings);
                warnings.sort_by_key(|x| x.line);
                plan.warnings = warnings;
                Ok(plan)
            }
            _ => {
                let mut problems = p.list;
                problems.sort_by_key(|x| x.line);
                if problems.is_empty() {
                    // Defensive: a missing piece always records a problem.
                    problems.push(Problem {
                        line: 1,
                        field: "(scenario)".to_owned(),
                        message: "incomplete scenario".to_owned(),
                    });
                }
                Err(ScenarioError::Invalid {
                    file: file.to_owned(),
                    problems,
                })
            }
        }
    }

    /// The warnings as `file:line: field: warning: message` lines, for `sim check` and `sim run`
    /// to print.
    pub fn warning_lines(&self) -> Vec<String> {
        self.warnings
            .iter()
            .map(|w| {
                format!(
                    "{}:{}: {}: warning: {}",
                    self.file, w.line, w.field, w.message
                )
            })
            .collect()
    }

    /// Expected arrivals (parties) over the run, for sizing.
    pub fn expected_arrivals(&self) -> f64 {
        match &self.population.arrival {
            ArrivalPlan::Open { profile, .. } => profile.expected(self.run.duration.as_secs_f64()),
            ArrivalPlan::Closed { players, .. } => f64::from(*players),
        }
    }

    /// Mean party size over the mode mix.
    pub fn mean_party_size(&self) -> f64 {
        let total: f64 = self.population.modes.iter().map(|m| m.weight).sum();
        self.population
            .modes
            .iter()
            .map(|m| {
                let w: f64 = m.party_sizes.iter().map(|(_, w)| w).sum();
                let mean: f64 = m
                    .party_sizes
                    .iter()
                    .map(|(s, pw)| f64::from(*s) * pw / w)
                    .sum();
                mean * m.weight / total
            })
            .sum()
    }
}

fn read_plan(root: &Node, file: &str, base: &Path, p: &mut Problems<'_>) -> Option<Plan> {
    let mut top = Table::from_node(root, "", p)?;
    match top.node("version") {
        None => top.missing(p, "version"),
        Some(Node {
            value: Value::Integer(SCENARIO_VERSION),
            ..
        }) => {}
        Some(other) => p.push(
            &other.span,
            "version",
            format!("must be {SCENARIO_VERSION} (the only version this build reads)"),
        ),
    }
    let default_name = Path::new(file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "scenario".to_owned());
    let name = top.opt_str(p, "name").map_or(default_name, |(n, _)| n);
    let description = top.opt_str(p, "description").map(|(d, _)| d);

    let run_table = required_table(&mut top, p, "run");
    let population_table = top.opt_table(p, "population");
    let target_table = top.opt_table(p, "target");
    let thresholds_table = top.opt_table(p, "thresholds");
    let faults_array = top.opt_array(p, "faults");
    let chaos_array = top.opt_array(p, "chaos");
    top.finish(p);

    let population = match population_table {
        Some(t) => read_population(t, p),
        None => Some(default_population()),
    };
    let run = run_table.and_then(|t| read_run(t, population.as_ref(), p));
    let target_has_match2 = target_table.as_ref().is_some_and(|t| t.has("match2"));
    let (target, match2) = match target_table {
        Some(t) => read_target(t, base, p),
        None => (
            Some(TargetPlan::Embedded(EmbeddedPlan {
                fleet: default_fleet(),
                matchmaker: toml::Table::new(),
                source_addresses: SourceAddresses::Auto,
                replicas: None,
                serve_match_function: false,
            })),
            None,
        ),
    };
    if let Some(pop) = &population {
        check_flow(root, pop, target_has_match2, p);
    }
    let thresholds = match thresholds_table {
        Some(t) => read_thresholds(t, p),
        None => Thresholds::default(),
    };
    let faults = match faults_array {
        Some((items, _)) => read_faults(items, run.as_ref(), p),
        None => Vec::new(),
    };
    let chaos = match (chaos_array, &target) {
        (Some((items, _)), Some(TargetPlan::Embedded(e))) => chaos::read_chaos(
            items,
            run.as_ref(),
            e.replicas.unwrap_or(chaos::DEFAULT_CHAOS_REPLICAS),
            p,
        ),
        (Some((items, span)), Some(TargetPlan::Urls(_))) => {
            if !items.is_empty() {
                p.push(
                    &span,
                    "chaos",
                    "needs the embedded target (it kills, pauses and partitions the stack's own processes)",
                );
            }
            Vec::new()
        }
        _ => Vec::new(),
    };
    Some(Plan {
        name,
        file: file.to_owned(),
        description,
        run: run?,
        target: target?,
        population: population?,
        faults,
        chaos,
        thresholds,
        match2,
        warnings: Vec::new(),
    })
}

/// A `flow = "match2"` population needs `[target.match2]` (its parties form over Session v2).
fn check_flow(root: &Node, pop: &Population, has_match2: bool, p: &mut Problems<'_>) {
    if pop.behaviour.flow != Flow::Match2 {
        return;
    }
    let span = span_of(root, &["population", "behaviour", "flow"]).unwrap_or(0..0);
    if !has_match2 {
        p.push(
            &span,
            "population.behaviour.flow",
            "\"match2\" needs a [target.match2] table (pool and rule set)",
        );
    }
}

/// The span of the value at `path` under `root`, when every step is a table key.
fn span_of(root: &Node, path: &[&str]) -> Option<std::ops::Range<usize>> {
    let mut node = root;
    for key in path {
        let Value::Table(entries) = &node.value else {
            return None;
        };
        node = &entries.iter().find(|e| e.key == *key)?.node;
    }
    Some(node.span.clone())
}

fn required_table<'n>(t: &mut Table<'n>, p: &mut Problems<'_>, key: &str) -> Option<Table<'n>> {
    if !t.has(key) {
        t.missing(p, key);
        return None;
    }
    t.opt_table(p, key)
}

fn read_run(
    mut t: Table<'_>,
    population: Option<&Population>,
    p: &mut Problems<'_>,
) -> Option<RunPlan> {
    let duration = match t.opt_duration(p, "duration") {
        Some((d, span)) if d.is_zero() => {
            p.push(&span, t.field("duration"), "must be positive");
            None
        }
        Some((d, _)) => Some(d),
        None => {
            if !t.has("duration") {
                t.missing(p, "duration");
            }
            None
        }
    };
    let seed = t.opt_u64(p, "seed").map_or(1, |(s, _)| s);
    let drain = t
        .opt_duration(p, "drain")
        .map(|(d, _)| d)
        .unwrap_or_else(|| {
            let b = population.map(|pop| &pop.behaviour);
            let bound = b.map_or(Duration::from_secs(120), |b| {
                b.request_timeout + b.found_grace + b.linger
            });
            bound + Duration::from_secs(5)
        });
    let workers = match t.opt_u64(p, "workers") {
        Some((w, span)) if !(1..=256).contains(&w) => {
            p.push(&span, t.field("workers"), "must be between 1 and 256");
            DEFAULT_WORKERS
        }
        Some((w, _)) => w as usize,
        None => DEFAULT_WORKERS,
    };
    let progress_every = match t.opt_duration(p, "progress_every") {
        Some((d, span)) if d < Duration::from_millis(100) => {
            p.push(&span, t.field("progress_every"), "must be at least 100ms");
            Duration::from_secs(5)
        }
        Some((d, _)) => d,
        None => Duration::from_secs(5),
    };
    t.finish(p);
    Some(RunPlan {
        duration: duration?,
        seed,
        drain,
        workers,
        progress_every,
    })
}

fn default_fleet() -> FleetPlan {
    FleetPlan {
        regions: vec![("us-east-1".to_owned(), 10_000)],
        ready_delay: Duration::ZERO,
    }
}

fn read_target(
    mut t: Table<'_>,
    base: &Path,
    p: &mut Problems<'_>,
) -> (Option<TargetPlan>, Option<Match2Plan>) {
    let kind = t.opt_str(p, "kind");
    let source_addresses = read_source_addresses(&mut t, p);
    let embedded = kind.as_ref().is_none_or(|(k, _)| k == "embedded");
    let match2 = t
        .opt_table(p, "match2")
        .and_then(|m| match2::read_match2(m, embedded, p));
    let target = match kind.as_ref().map(|(k, s)| (k.as_str(), s.clone())) {
        None | Some(("embedded", _)) => {
            let fleet = match t.opt_table(p, "fleet") {
                Some(f) => read_fleet(f, p),
                None => Some(default_fleet()),
            };
            let matchmaker = match t.opt_table(p, "matchmaker") {
                Some(mut m) => {
                    let table: toml::Table = m
                        .entries_all()
                        .iter()
                        .map(|e| (e.key.clone(), e.node.value.to_toml()))
                        .collect();
                    // Checked by the matchmaker's own loader, as the run will.
                    match matchmaker::config::FileConfig::from_table(table.clone()) {
                        Ok(file) => {
                            for note in &file.deprecated {
                                let span = m.key_span(&note.old);
                                p.warn(&span, join(&m.path, &note.old), note.to_string());
                            }
                        }
                        Err(e) => p.push(&m.span, m.path.clone(), e.to_string()),
                    }
                    m.finish(p);
                    table
                }
                None => toml::Table::new(),
            };
            let replicas = match t.opt_u64(p, "replicas") {
                Some((n, span)) if !(1..=16).contains(&n) => {
                    p.push(&span, t.field("replicas"), "must be 1 to 16");
                    None
                }
                Some((n, _)) => usize::try_from(n).ok(),
                None => None,
            };
            fleet.map(|fleet| {
                TargetPlan::Embedded(EmbeddedPlan {
                    fleet,
                    matchmaker,
                    source_addresses,
                    replicas,
                    serve_match_function: match2
                        .as_ref()
                        .is_some_and(|m| m.match_function == match2::Match2Function::Matchmaker),
                })
            })
        }
        Some(("urls", _)) => {
            read_urls(&mut t, base, source_addresses, p).map(|u| TargetPlan::Urls(Box::new(u)))
        }
        Some((other, span)) => {
            p.push(
                &span,
                t.field("kind"),
                format!("unknown target {other:?}: expected \"embedded\" or \"urls\""),
            );
            None
        }
    };
    t.finish(p);
    (target, match2)
}

fn read_source_addresses(t: &mut Table<'_>, p: &mut Problems<'_>) -> SourceAddresses {
    let Some(node) = t.node("source_addresses") else {
        return SourceAddresses::Auto;
    };
    let field = t.field("source_addresses");
    match &node.value {
        Value::String(s) if s == "auto" => SourceAddresses::Auto,
        Value::Integer(n) if (1..=200).contains(n) => SourceAddresses::Count(*n as u8),
        Value::Array(items) => {
            let mut list = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match &item.value {
                    Value::String(s) => match s.parse() {
                        Ok(ip) => list.push(ip),
                        Err(_) => p.push(
                            &item.span,
                            format!("{field}[{i}]"),
                            format!("{s:?} is not an IP address"),
                        ),
                    },
                    other => p.push(
                        &item.span,
                        format!("{field}[{i}]"),
                        format!("expected an IP address string, found {}", other.type_name()),
                    ),
                }
            }
            if list.is_empty() {
                p.push(&node.span, field, "must list at least one address");
                return SourceAddresses::Auto;
            }
            SourceAddresses::List(list)
        }
        _ => {
            p.push(
                &node.span,
                field,
                "expected \"auto\", a count from 1 to 200, or a list of IP addresses",
            );
            SourceAddresses::Auto
        }
    }
}

fn read_fleet(mut t: Table<'_>, p: &mut Problems<'_>) -> Option<FleetPlan> {
    let mut fleet = default_fleet();
    if let Some((items, span)) = t.opt_array(p, "regions") {
        fleet.regions.clear();
        for (i, item) in items.iter().enumerate() {
            let path = format!("{}[{i}]", t.field("regions"));
            let Some(mut r) = Table::from_node(item, &path, p) else {
                continue;
            };
            let name = r.opt_str(p, "name");
            let servers = r.opt_u64(p, "servers");
            if name.is_none() && !r.has("name") {
                r.missing(p, "name");
            }
            if servers.is_none() && !r.has("servers") {
                r.missing(p, "servers");
            }
            if let Some((n, span)) = &servers {
                if *n == 0 || *n > 1_000_000 {
                    p.push(span, r.field("servers"), "must be between 1 and 1000000");
                }
            }
            if let (Some((name, _)), Some((servers, _))) = (name, servers) {
                fleet.regions.push((name, servers as usize));
            }
            r.finish(p);
        }
        if items.is_empty() {
            p.push(&span, t.field("regions"), "must name at least one region");
        }
    }
    if let Some((d, _)) = t.opt_duration(p, "ready_delay") {
        fleet.ready_delay = d;
    }
    t.finish(p);
    Some(fleet)
}

fn read_url(t: &mut Table<'_>, p: &mut Problems<'_>, key: &str) -> Option<Url> {
    let Some((text, span)) = t.opt_str(p, key) else {
        if !t.has(key) {
            t.missing(p, key);
        }
        return None;
    };
    match Url::parse(&text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Some(url),
        Ok(_) => {
            p.push(
                &span,
                t.field(key),
                "must be an http or https URL with a host",
            );
            None
        }
        Err(err) => {
            p.push(&span, t.field(key), format!("{text:?} is not a URL: {err}"));
            None
        }
    }
}

/// A URL or a non-empty array of them, each checked like [`read_url`]; duplicates refused.
fn read_url_list(t: &mut Table<'_>, p: &mut Problems<'_>, key: &str) -> Option<Vec<Url>> {
    let Some(node) = t.node(key) else {
        t.missing(p, key);
        return None;
    };
    let field = t.field(key);
    let items: Vec<(String, &Node)> = match &node.value {
        Value::String(_) => vec![(field.clone(), node)],
        Value::Array(items) if items.is_empty() => {
            p.push(&node.span, field, "needs at least one URL");
            return None;
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("{field}[{i}]"), n))
            .collect(),
        other => {
            p.push(
                &node.span,
                field,
                format!(
                    "expected a URL or an array of URLs, found {}",
                    other.type_name()
                ),
            );
            return None;
        }
    };
    let mut urls = Vec::with_capacity(items.len());
    let mut ok = true;
    for (name, item) in items {
        let Value::String(text) = &item.value else {
            p.push(
                &item.span,
                name,
                format!("expected a string, found {}", item.value.type_name()),
            );
            ok = false;
            continue;
        };
        match Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                if urls.contains(&url) {
                    p.push(&item.span, name, format!("{text:?} is listed twice"));
                    ok = false;
                } else {
                    urls.push(url);
                }
            }
            Ok(_) => {
                p.push(&item.span, name, "must be an http or https URL with a host");
                ok = false;
            }
            Err(err) => {
                p.push(&item.span, name, format!("{text:?} is not a URL: {err}"));
                ok = false;
            }
        }
    }
    ok.then_some(urls)
}

fn read_client(t: &mut Table<'_>, p: &mut Problems<'_>, key: &str) -> Option<ClientCredentials> {
    let mut c = t.opt_table(p, key)?;
    let id = c.opt_str(p, "id").map(|(id, _)| id);
    if id.is_none() && !c.has("id") {
        c.missing(p, "id");
    }
    let secret = c.opt_str(p, "secret").map(|(s, _)| s);
    c.finish(p);
    Some(ClientCredentials { id: id?, secret })
}

fn read_urls(
    t: &mut Table<'_>,
    base: &Path,
    source_addresses: SourceAddresses,
    p: &mut Problems<'_>,
) -> Option<UrlsPlan> {
    let fakes = read_url(t, p, "fakes");
    let matchmaker = read_url_list(t, p, "matchmaker");
    let namespace = t
        .opt_str(p, "namespace")
        .map_or_else(|| builtin::NAMESPACE.to_owned(), |(n, _)| n);
    let player_client = read_client(t, p, "player_client").unwrap_or(ClientCredentials {
        id: builtin::PLAYER_CLIENT_ID.to_owned(),
        secret: None,
    });
    let game_client = if t.has("game_client") {
        read_client(t, p, "game_client")
    } else {
        Some(ClientCredentials {
            id: builtin::GAME_CLIENT_ID.to_owned(),
            secret: Some(builtin::GAME_CLIENT_SECRET.to_owned()),
        })
    };
    let accounts = t.opt_str(p, "accounts").map(|(a, _)| base.join(a));
    let insecure_tls = t.opt_bool(p, "insecure_tls").unwrap_or(false);
    for key in ["fleet", "matchmaker_config"] {
        if let Some(node) = t.node(key) {
            p.push(
                &node.span,
                t.field(key),
                "only an embedded target takes this",
            );
        }
    }
    Some(UrlsPlan {
        fakes: fakes?,
        matchmaker: matchmaker?,
        namespace,
        player_client,
        game_client,
        accounts,
        insecure_tls,
        source_addresses,
    })
}

fn default_population() -> Population {
    Population {
        arrival: ArrivalPlan::Open {
            profile: RateProfile::constant(10.0),
            poisson: false,
        },
        modes: vec![default_mode()],
        mmr: None,
        regions: Vec::new(),
        behaviour: default_behaviour(),
    }
}

fn default_mode() -> ModeMix {
    ModeMix {
        name: "1v1".to_owned(),
        weight: 1.0,
        party_sizes: vec![(1, 1.0)],
    }
}

fn default_behaviour() -> Behaviour {
    Behaviour {
        flow: Flow::Tutorial,
        login: LoginFlow::Pkce,
        request_timeout: Duration::from_secs(120),
        found_grace: Duration::from_secs(5),
        linger: Duration::ZERO,
        match_length: Some(Duration::from_secs(10)),
        cancel: None,
        drop_socket: None,
        retry_on_timeout: None,
        verify_server: 0.0,
    }
}

fn read_population(mut t: Table<'_>, p: &mut Problems<'_>) -> Option<Population> {
    let arrival = match t.opt_table(p, "arrival") {
        Some(a) => read_arrival(a, p),
        None => {
            if !t.has("arrival") {
                t.missing(p, "arrival");
            }
            None
        }
    };
    let modes = match t.opt_array(p, "modes") {
        Some((items, span)) => {
            if items.is_empty() {
                p.push(&span, t.field("modes"), "must name at least one game mode");
            }
            let path = t.field("modes");
            items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| read_mode(item, &format!("{path}[{i}]"), p))
                .collect()
        }
        None => vec![default_mode()],
    };
    let mmr = t.opt_table(p, "mmr").and_then(|m| read_mmr(m, p));
    let regions = match t.opt_array(p, "regions") {
        Some((items, _)) => {
            let path = t.field("regions");
            items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| {
                    let mut r = Table::from_node(item, &format!("{path}[{i}]"), p)?;
                    let name = r.opt_str(p, "name").map(|(n, _)| n);
                    if name.is_none() && !r.has("name") {
                        r.missing(p, "name");
                    }
                    let weight = read_weight(&mut r, p);
                    r.finish(p);
                    Some((name?, weight?))
                })
                .collect()
        }
        None => Vec::new(),
    };
    let behaviour = match t.opt_table(p, "behaviour") {
        Some(b) => read_behaviour(b, p),
        None => Some(default_behaviour()),
    };
    t.finish(p);
    Some(Population {
        arrival: arrival?,
        modes,
        mmr,
        regions,
        behaviour: behaviour?,
    })
}

fn positive_rate(
    t: &mut Table<'_>,
    p: &mut Problems<'_>,
    key: &str,
    allow_zero: bool,
) -> Option<f64> {
    match t.opt_f64(p, key) {
        Some((r, span)) if r < 0.0 || (!allow_zero && r == 0.0) => {
            let what = if allow_zero {
                "must not be negative"
            } else {
                "must be positive"
            };
            p.push(&span, t.field(key), format!("{what} (arrivals per second)"));
            None
        }
        Some((r, span)) if r > 1_000_000.0 => {
            p.push(
                &span,
                t.field(key),
                "must be at most 1000000 arrivals per second",
            );
            None
        }
        Some((r, _)) => Some(r),
        None => {
            if !t.has(key) {
                t.missing(p, key);
            }
            None
        }
    }
}

pub(crate) fn required_duration(
    t: &mut Table<'_>,
    p: &mut Problems<'_>,
    key: &str,
    positive: bool,
) -> Option<Duration> {
    match t.opt_duration(p, key) {
        Some((d, span)) if positive && d.is_zero() => {
            p.push(&span, t.field(key), "must be positive");
            None
        }
        Some((d, _)) => Some(d),
        None => {
            if !t.has(key) {
                t.missing(p, key);
            }
            None
        }
    }
}

fn read_arrival(mut t: Table<'_>, p: &mut Problems<'_>) -> Option<ArrivalPlan> {
    let Some((kind, kind_span)) = t.opt_str(p, "kind") else {
        if !t.has("kind") {
            t.missing(p, "kind");
        }
        t.entries_all();
        return None;
    };
    let plan = match kind.as_str() {
        "constant" | "poisson" => {
            positive_rate(&mut t, p, "rate", false).map(|rate| ArrivalPlan::Open {
                profile: RateProfile::constant(rate),
                poisson: kind == "poisson",
            })
        }
        "ramp" => {
            let from = match t.opt_f64(p, "from") {
                Some((r, span)) if r < 0.0 => {
                    p.push(&span, t.field("from"), "must not be negative");
                    0.0
                }
                Some((r, _)) => r,
                None => 0.0,
            };
            let poisson = t.opt_bool(p, "poisson").unwrap_or(false);
            let stages = match t.opt_array(p, "stages") {
                Some((items, span)) => {
                    if items.is_empty() {
                        p.push(&span, t.field("stages"), "must have at least one stage");
                    }
                    let path = t.field("stages");
                    let mut segments = Vec::new();
                    let mut rate = from;
                    let mut ok = true;
                    for (i, item) in items.iter().enumerate() {
                        let Some(mut s) = Table::from_node(item, &format!("{path}[{i}]"), p) else {
                            ok = false;
                            continue;
                        };
                        let to = positive_rate(&mut s, p, "to", true);
                        let over = required_duration(&mut s, p, "over", true);
                        s.finish(p);
                        match (to, over) {
                            (Some(to), Some(over)) => {
                                segments.push(RateSegment {
                                    length: over,
                                    from: rate,
                                    to,
                                });
                                rate = to;
                            }
                            _ => ok = false,
                        }
                    }
                    (ok && !segments.is_empty()).then_some(segments)
                }
                None => {
                    if !t.has("stages") {
                        t.missing(p, "stages");
                    }
                    None
                }
            };
            stages.map(|segments| ArrivalPlan::Open {
                profile: RateProfile { segments },
                poisson,
            })
        }
        "spike" => {
            let base = positive_rate(&mut t, p, "base", true);
            let peak = positive_rate(&mut t, p, "peak", false);
            let at = required_duration(&mut t, p, "at", false);
            let length = required_duration(&mut t, p, "length", true);
            let poisson = t.opt_bool(p, "poisson").unwrap_or(false);
            match (base, peak, at, length) {
                (Some(base), Some(peak), Some(at), Some(length)) => {
                    let mut segments = Vec::new();
                    if !at.is_zero() {
                        segments.push(RateSegment {
                            length: at,
                            from: base,
                            to: base,
                        });
                    }
                    segments.push(RateSegment {
                        length,
                        from: peak,
                        to: peak,
                    });
                    segments.push(RateSegment {
                        length: Duration::from_secs(1),
                        from: base,
                        to: base,
                    });
                    Some(ArrivalPlan::Open {
                        profile: RateProfile { segments },
                        poisson,
                    })
                }
                _ => None,
            }
        }
        "closed" => {
            let players = match t.opt_u64(p, "players") {
                Some((n, span)) if n == 0 || n > 10_000_000 => {
                    p.push(&span, t.field("players"), "must be between 1 and 10000000");
                    None
                }
                Some((n, _)) => Some(n as u32),
                None => {
                    if !t.has("players") {
                        t.missing(p, "players");
                    }
                    None
                }
            };
            let ramp_up = t
                .opt_duration(p, "ramp_up")
                .map_or(Duration::ZERO, |(d, _)| d);
            let think = t
                .opt_duration(p, "think")
                .map_or(Duration::ZERO, |(d, _)| d);
            players.map(|players| ArrivalPlan::Closed {
                players,
                ramp_up,
                think,
            })
        }
        other => {
            p.push(
                &kind_span,
                t.field("kind"),
                format!(
                    "unknown arrival model {other:?}: expected \"constant\", \"ramp\", \"poisson\", \"spike\" or \"closed\""
                ),
            );
            t.entries_all();
            None
        }
    };
    t.finish(p);
    plan
}

fn read_weight(t: &mut Table<'_>, p: &mut Problems<'_>) -> Option<f64> {
    match t.opt_f64(p, "weight") {
        Some((w, span)) if w <= 0.0 => {
            p.push(&span, t.field("weight"), "must be positive");
            None
        }
        Some((w, _)) => Some(w),
        None if t.has("weight") => None,
        None => Some(1.0),
    }
}

fn read_mode(node: &Node, path: &str, p: &mut Problems<'_>) -> Option<ModeMix> {
    let mut t = Table::from_node(node, path, p)?;
    let name = t.opt_str(p, "name");
    match &name {
        None if !t.has("name") => t.missing(p, "name"),
        Some((n, span)) if n.is_empty() || n.contains(char::is_whitespace) => p.push(
            span,
            t.field("name"),
            "must be non-empty and without spaces",
        ),
        _ => {}
    }
    let weight = read_weight(&mut t, p);
    let party_sizes = match t.opt_array(p, "party_sizes") {
        Some((items, span)) => {
            if items.is_empty() {
                p.push(&span, t.field("party_sizes"), "must list at least one size");
            }
            let base = t.field("party_sizes");
            let mut sizes = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let Some(mut s) = Table::from_node(item, &format!("{base}[{i}]"), p) else {
                    continue;
                };
                let size = match s.opt_u64(p, "size") {
                    Some((n, span)) if n == 0 || n > 100 => {
                        p.push(&span, s.field("size"), "must be between 1 and 100");
                        None
                    }
                    Some((n, _)) => Some(n as u32),
                    None => {
                        if !s.has("size") {
                            s.missing(p, "size");
                        }
                        None
                    }
                };
                let weight = read_weight(&mut s, p);
                s.finish(p);
                if let (Some(size), Some(weight)) = (size, weight) {
                    sizes.push((size, weight));
                }
            }
            sizes
        }
        None => vec![(1, 1.0)],
    };
    t.finish(p);
    Some(ModeMix {
        name: name?.0,
        weight: weight?,
        party_sizes,
    })
}

fn read_mmr(mut t: Table<'_>, p: &mut Problems<'_>) -> Option<MmrDistribution> {
    let Some((kind, span)) = t.opt_str(p, "distribution") else {
        if !t.has("distribution") {
            t.missing(p, "distribution");
        }
        t.entries_all();
        return None;
    };
    let int = |t: &mut Table<'_>, p: &mut Problems<'_>, key: &str| -> Option<u32> {
        match t.opt_u64(p, key) {
            Some((v, span)) if v > u64::from(u32::MAX) => {
                p.push(&span, t.field(key), "is too large");
                None
            }
            Some((v, _)) => Some(v as u32),
            None => {
                if !t.has(key) {
                    t.missing(p, key);
                }
                None
            }
        }
    };
    let dist = match kind.as_str() {
        "constant" => int(&mut t, p, "value").map(|value| MmrDistribution::Constant { value }),
        "uniform" => {
            let min = int(&mut t, p, "min");
            let max = int(&mut t, p, "max");
            match (min, max) {
                (Some(min), Some(max)) if min > max => {
                    p.push(&t.span, t.field("min"), "must not exceed max");
                    None
                }
                (Some(min), Some(max)) => Some(MmrDistribution::Uniform { min, max }),
                _ => None,
            }
        }
        "normal" => {
            let mean = t.opt_f64(p, "mean").map(|(m, _)| m);
            if mean.is_none() && !t.has("mean") {
                t.missing(p, "mean");
            }
            let stddev = match t.opt_f64(p, "stddev") {
                Some((s, span)) if s < 0.0 => {
                    p.push(&span, t.field("stddev"), "must not be negative");
                    None
                }
                Some((s, _)) => Some(s),
                None => {
                    if !t.has("stddev") {
                        t.missing(p, "stddev");
                    }
                    None
                }
            };
            let min = t
                .opt_u64(p, "min")
                .map_or(0, |(v, _)| v.min(u64::from(u32::MAX)) as u32);
            let max = t
                .opt_u64(p, "max")
                .map_or(u32::MAX, |(v, _)| v.min(u64::from(u32::MAX)) as u32);
            match (mean, stddev) {
                (Some(mean), Some(stddev)) => Some(MmrDistribution::Normal {
                    mean,
                    stddev,
                    min,
                    max,
                }),
                _ => None,
            }
        }
        other => {
            p.push(
                &span,
                t.field("distribution"),
                format!("unknown distribution {other:?}: expected \"constant\", \"uniform\" or \"normal\""),
            );
            t.entries_all();
            None
        }
    };
    t.finish(p);
    dist
}

fn probability(t: &mut Table<'_>, p: &mut Problems<'_>, key: &str) -> Option<f64> {
    match t.opt_f64(p, key) {
        Some((v, span)) if !(0.0..=1.0).contains(&v) => {
            p.push(&span, t.field(key), "must be between 0 and 1");
            None
        }
        Some((v, _)) => Some(v),
        None => {
            if !t.has(key) {
                t.missing(p, key);
            }
            None
        }
    }
}

fn read_behaviour(mut t: Table<'_>, p: &mut Problems<'_>) -> Option<Behaviour> {
    let mut b = default_behaviour();
    let mut ok = true;
    if let Some((flow, span)) = t.opt_str(p, "flow") {
        match flow.as_str() {
            "tutorial" => b.flow = Flow::Tutorial,
            "match2" => b.flow = Flow::Match2,
            other => {
                p.push(
                    &span,
                    t.field("flow"),
                    format!("unknown flow {other:?}: expected \"tutorial\" or \"match2\""),
                );
                ok = false;
            }
        }
    }
    if let Some((login, span)) = t.opt_str(p, "login") {
        match login.as_str() {
            "pkce" => b.login = LoginFlow::Pkce,
            "password" => b.login = LoginFlow::Password,
            other => {
                p.push(
                    &span,
                    t.field("login"),
                    format!("unknown login {other:?}: expected \"pkce\" or \"password\""),
                );
                ok = false;
            }
        }
    }
    if let Some((d, span)) = t.opt_duration(p, "request_timeout") {
        if d.is_zero() {
            p.push(&span, t.field("request_timeout"), "must be positive");
            ok = false;
        }
        b.request_timeout = d;
    }
    if let Some((d, _)) = t.opt_duration(p, "found_grace") {
        b.found_grace = d;
    }
    if let Some((d, _)) = t.opt_duration(p, "linger") {
        b.linger = d;
    }
    if let Some(node) = t.node("match_length") {
        match &node.value {
            Value::String(s) if s == "forever" => b.match_length = None,
            Value::String(s) => match parse_duration(s) {
                Ok(d) => b.match_length = Some(d),
                Err(why) => {
                    p.push(&node.span, t.field("match_length"), why);
                    ok = false;
                }
            },
            other => {
                p.push(
                    &node.span,
                    t.field("match_length"),
                    format!(
                        "expected a duration string or \"forever\", found {}",
                        other.type_name()
                    ),
                );
                ok = false;
            }
        }
    }
    if let Some(mut c) = t.opt_table(p, "cancel") {
        let probability = probability(&mut c, p, "probability");
        let after = required_duration(&mut c, p, "after", false);
        c.finish(p);
        match (probability, after) {
            (Some(probability), Some(after)) => {
                b.cancel = Some(CancelBehaviour { probability, after })
            }
            _ => ok = false,
        }
    }
    if let Some(mut d) = t.opt_table(p, "drop_socket") {
        let probability = probability(&mut d, p, "probability");
        let after = required_duration(&mut d, p, "after", false);
        let reconnect = d.opt_bool(p, "reconnect").unwrap_or(true);
        d.finish(p);
        match (probability, after) {
            (Some(probability), Some(after)) => {
                b.drop_socket = Some(DropSocketBehaviour {
                    probability,
                    after,
                    reconnect,
                })
            }
            _ => ok = false,
        }
    }
    if let Some(mut r) = t.opt_table(p, "retry_on_timeout") {
        let max = match r.opt_u64(p, "max") {
            Some((m, span)) if m == 0 || m > 100 => {
                p.push(&span, r.field("max"), "must be between 1 and 100");
                None
            }
            Some((m, _)) => Some(m as u32),
            None if r.has("max") => None,
            None => Some(1),
        };
        let delay = r
            .opt_duration(p, "delay")
            .map_or(Duration::from_secs(1), |(d, _)| d);
        r.finish(p);
        match max {
            Some(max) => b.retry_on_timeout = Some(RetryBehaviour { max, delay }),
            None => ok = false,
        }
    }
    if t.has("verify_server") {
        match probability(&mut t, p, "verify_server") {
            Some(v) => b.verify_server = v,
            None => ok = false,
        }
    }
    t.finish(p);
    ok.then_some(b)
}

fn read_thresholds(mut t: Table<'_>, p: &mut Problems<'_>) -> Thresholds {
    let mut th = Thresholds::default();
    for (key, slot) in [
        ("pairing_p50", &mut th.pairing_p50),
        ("pairing_p95", &mut th.pairing_p95),
        ("pairing_p99", &mut th.pairing_p99),
        ("pairing_max", &mut th.pairing_max),
    ] {
        *slot = t.opt_duration(p, key).map(|(d, _)| d);
    }
    for (key, slot) in [
        ("timeout_rate", &mut th.timeout_rate),
        ("claim_failure_rate", &mut th.claim_failure_rate),
        ("error_rate", &mut th.error_rate),
        ("failure_rate", &mut th.failure_rate),
    ] {
        if t.has(key) {
            *slot = probability(&mut t, p, key);
        }
    }
    th.min_matched = t.opt_u64(p, "min_matched").map(|(n, _)| n);
    t.finish(p);
    th
}

/// Checks a fault object with the fakes' own parser, so `sim check` catches what the control
/// API would refuse mid-run.
fn check_fault(
    body: &serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<durations::Deprecation>, fakes::faults::FieldError> {
    fakes::faults::model::parse_fault_noting(serde_json::Value::Object(body.clone()))
        .map(|(_, notes)| notes)
}

/// A timeline step's `at` must fall before arrivals end.
pub(crate) fn check_before_end(
    at: Option<Duration>,
    run: Option<&RunPlan>,
    span: &std::ops::Range<usize>,
    path: &str,
    p: &mut Problems<'_>,
) {
    if let (Some(at), Some(run)) = (at, run) {
        if at >= run.duration {
            p.push(
                span,
                join(path, "at"),
                format!(
                    "{} is not before the end of arrivals ({})",
                    format_duration(at),
                    format_duration(run.duration)
                ),
            );
        }
    }
}

/// Keys of a fault step that belong to the sim; all others are the fault object.
const FAULT_STEP_KEYS: [&str; 3] = ["at", "duration", "label"];

fn read_faults(items: &[Node], run: Option<&RunPlan>, p: &mut Problems<'_>) -> Vec<FaultStep> {
    let mut steps = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("faults[{i}]");
        let Some(mut t) = Table::from_node(item, &path, p) else {
            continue;
        };
        let at = required_duration(&mut t, p, "at", false);
        let duration = match t.opt_duration(p, "duration") {
            Some((d, span)) if d.is_zero() => {
                p.push(
                    &span,
                    t.field("duration"),
                    "must be positive (omit it to last until the end)",
                );
                None
            }
            Some((d, _)) => Some(d),
            None => None,
        };
        let label = t.opt_str(p, "label").map(|(l, _)| l);
        let mut body = serde_json::Map::new();
        let entries = t.entries_all();
        for entry in entries {
            if !FAULT_STEP_KEYS.contains(&entry.key.as_str()) {
                body.insert(entry.key.clone(), entry.node.value.to_json());
            }
        }
        let kind = body.get("kind").and_then(|k| k.as_str()).map(str::to_owned);
        if kind.is_none() {
            p.push(
                &t.span,
                join(&path, "kind"),
                "missing (required: the fault's kind, as the fakes' control API names it)",
            );
        } else {
            match check_fault(&body) {
                Ok(notes) => {
                    for note in notes {
                        let span = t.key_span(&note.old);
                        p.warn(&span, join(&path, &note.old), note.to_string());
                    }
                }
                Err(err) => {
                    // Point at the key the fakes named, else at the step.
                    let top = err.field.split(['.', '[']).next().unwrap_or_default();
                    let span = entries
                        .iter()
                        .find(|e| e.key == top)
                        .map_or(item.span.clone(), |e| e.key_span.clone());
                    let field = if err.field.is_empty() {
                        path.clone()
                    } else {
                        join(&path, &err.field)
                    };
                    p.push(&span, field, err.message);
                }
            }
        }
        check_before_end(at, run, &item.span, &path, p);
        let line = p.line_of(item.span.start);
        t.finish(p);
        if let (Some(at), Some(kind)) = (at, kind) {
            steps.push(FaultStep {
                at,
                duration,
                label: label.unwrap_or(kind),
                body: serde_json::Value::Object(body),
                line,
            });
        }
    }
    steps
}

pub mod chaos;
pub mod match2;
#[cfg(test)]
mod tests;
