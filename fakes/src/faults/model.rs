//! The fault model: what a fault is, as data, and how a fault file or API body becomes one.
//!
//! A [`Fault`] is a [`FaultKind`] (serde-tagged by `kind`, each kind with its own fields) plus
//! what every fault has: an `id`, a [`Target`], a `probability` and an optional [`Window`].
//! Parsing goes through [`parse_fault`], which reports the first problem as a [`FieldError`]
//! naming the field (`faults[2].delay.p99_ms`, `probability`, `target.service`) — serde's own
//! message plus the path, then the semantic checks serde cannot express (ranges, which target
//! fields a kind understands, mutually exclusive fields).
//!
//! Invariant: this module is pure — no clock, no RNG state, no store. Sampling takes the RNG
//! as an argument so the engine decides which seeded stream a draw comes from.

use std::fmt;
use std::time::Duration;

use rand::Rng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// The longest delay any fault may produce (latency samples are clamped to it).
pub const MAX_DELAY_MS: f64 = 3_600_000.0;

/// The latest a window may start or end, and the longest token lifetime a fault may set: ten
/// years, far beyond any run, and far from the limits of clocks and timestamps.
pub const MAX_SECONDS: u64 = 315_360_000;

/// The standard normal quantile at 0.99: `sigma = ln(p99 / p50) / Z_99` for a log-normal.
pub const Z_99: f64 = 2.326_347_874_040_841;

/// Ids the control API uses as path segments of its own.
const RESERVED_IDS: &[&str] = &["seed"];

/// A problem with a fault, naming the field (dotted path; `""` for the fault as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for FieldError {}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error one level down: `faults[2]` + `probability` → `faults[2].probability`.
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = join(prefix, &self.field);
        self
    }

    /// From a serde error at `path` (relative to `prefix`). "unknown field `x`" and "missing
    /// field `x`" point at `x` itself, so the field is named even when the path is the parent.
    fn from_serde(prefix: &str, path: &serde_path_to_error::Path, message: String) -> Self {
        let path = path.to_string();
        let mut field = if path == "." {
            prefix.to_owned()
        } else {
            join(prefix, &path)
        };
        for lead in ["unknown field `", "missing field `"] {
            if let Some(name) = message
                .strip_prefix(lead)
                .and_then(|rest| rest.split('`').next())
            {
                // serde_path_to_error already names an unknown field; a missing one it does not.
                if field.rsplit('.').next() != Some(name) {
                    field = join(&field, name);
                }
            }
        }
        Self { field, message }
    }
}

fn join(prefix: &str, field: &str) -> String {
    match (prefix.is_empty(), field.is_empty()) {
        (true, _) => field.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) if field.starts_with('[') => format!("{prefix}{field}"),
        (false, false) => format!("{prefix}.{field}"),
    }
}

/// Deserializes `value` as `T`, naming the failing field under `prefix`.
fn de<T: DeserializeOwned>(prefix: &str, value: Value) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(value)
        .map_err(|e| FieldError::from_serde(prefix, e.path(), e.inner().to_string()))
}

/// The emulated services, as a target names them and as requests are classified by path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Service {
    #[serde(rename = "iam")]
    Iam,
    /// The WebSocket and both notification REST families (`/notification/...`, `/lobby/v1/...`).
    #[serde(rename = "lobby", alias = "notification")]
    Lobby,
    #[serde(rename = "sessionbrowser", alias = "session_browser")]
    SessionBrowser,
    #[serde(rename = "dsmc", alias = "dsmcontroller")]
    Dsmc,
    /// Session v2 (`/session/...`).
    #[serde(rename = "session")]
    Session,
    /// Matchmaking v2 (`/match2/...`).
    #[serde(rename = "match2")]
    Match2,
    /// Paths no service serves (404s); not a valid target.
    #[serde(rename = "other", skip_deserializing)]
    Other,
}

impl Service {
    /// Every service a target may name.
    pub const TARGETS: [Service; 6] = [
        Self::Iam,
        Self::Lobby,
        Self::SessionBrowser,
        Self::Dsmc,
        Self::Session,
        Self::Match2,
    ];

    /// Classifies a request path by its prefix, as AGS routes them.
    pub fn of_path(path: &str) -> Self {
        let first = path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or_default();
        match first {
            "iam" => Self::Iam,
            "lobby" | "notification" => Self::Lobby,
            "sessionbrowser" => Self::SessionBrowser,
            "dsmcontroller" => Self::Dsmc,
            "session" => Self::Session,
            "match2" => Self::Match2,
            _ => Self::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Iam => "iam",
            Self::Lobby => "lobby",
            Self::SessionBrowser => "sessionbrowser",
            Self::Dsmc => "dsmc",
            Self::Session => "session",
            Self::Match2 => "match2",
            Self::Other => "other",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "iam" => Some(Self::Iam),
            "lobby" | "notification" => Some(Self::Lobby),
            "sessionbrowser" | "session_browser" => Some(Self::SessionBrowser),
            "dsmc" | "dsmcontroller" => Some(Self::Dsmc),
            "session" => Some(Self::Session),
            "match2" => Some(Self::Match2),
            _ => None,
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a fault applies to. Every field given must match; an empty target matches everything
/// the kind can act on. Which fields a kind understands is checked when the fault is parsed.
///
/// In a file, `target = "dsmc"` is short for `target = { service = "dsmc" }`, and a string
/// starting with `/` is short for `{ route = "..." }`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// HTTP faults: the service, by path prefix (`iam`, `lobby`, `sessionbrowser`, `dsmc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Service>,
    /// HTTP faults: a path pattern. `*` matches within one segment, `{name}` matches one whole
    /// segment (so an axum route pattern works as is), `**` matches any number of segments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// HTTP faults: the request method (upper case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Notification faults: the lobby frame type (every notification is a `messageNotif`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_type: Option<String>,
    /// Notification faults: the notification topic; `*` matches any run of characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Lobby faults: only this user's notifications or socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

impl Target {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// `"dsmc"` → a service, `"/iam/**"` → a route.
    fn shorthand(text: &str) -> Result<Self, FieldError> {
        if text.starts_with('/') {
            return Ok(Self {
                route: Some(text.to_owned()),
                ..Self::default()
            });
        }
        Service::parse(text).map(|s| Self { service: Some(s), ..Self::default() }).ok_or_else(|| {
            FieldError::new(
                "target",
                format!(
                    "unknown service `{text}`, expected one of iam, lobby, sessionbrowser, dsmc \
                     (or a route pattern starting with /)"
                ),
            )
        })
    }

    /// Whether an HTTP request matches.
    pub fn matches_http(&self, service: Service, method: &str, path: &str) -> bool {
        self.service.is_none_or(|s| s == service)
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .route
                .as_deref()
                .is_none_or(|pattern| route_matches(pattern, path))
    }

    /// Whether a lobby notification matches.
    pub fn matches_notification(&self, user_id: &str, topic: &str, message_type: &str) -> bool {
        self.user_id.as_deref().is_none_or(|u| u == user_id)
            && self
                .message_type
                .as_deref()
                .is_none_or(|t| t == message_type)
            && self
                .topic
                .as_deref()
                .is_none_or(|pattern| glob(pattern, topic))
    }

    /// Whether a lobby socket matches.
    pub fn matches_socket(&self, user_id: &str) -> bool {
        self.user_id.as_deref().is_none_or(|u| u == user_id)
    }
}

/// Matches a path against a route pattern (see [`Target::route`]).
pub fn route_matches(pattern: &str, path: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    segments_match(&pattern, &path)
}

fn segments_match(pattern: &[&str], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((&"**", rest)) => (0..=path.len()).any(|skip| segments_match(rest, &path[skip..])),
        Some((first, rest)) => match path.split_first() {
            None => false,
            Some((segment, path_rest)) => {
                let whole = first.starts_with('{') && first.ends_with('}') && !segment.is_empty();
                (whole || glob(first, segment)) && segments_match(rest, path_rest)
            }
        },
    }
}

/// `*` matches any run of characters (including none); everything else literally.
pub fn glob(pattern: &str, text: &str) -> bool {
    let Some((head, rest)) = pattern.split_once('*') else {
        return pattern == text;
    };
    let Some(mut text) = text.strip_prefix(head) else {
        return false;
    };
    let mut parts: Vec<&str> = rest.split('*').collect();
    let last = parts.pop().unwrap_or_default();
    for part in parts {
        match text.find(part) {
            Some(at) => text = &text[at + part.len()..],
            None => return false,
        }
    }
    text.len() >= last.len() && text.ends_with(last)
}

/// When a fault applies, in seconds relative to the moment it was added (for faults loaded at
/// start, the moment the server started). Replacing a fault adds it anew.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    #[serde(default)]
    pub start_s: f64,
    /// Absent: until the fault is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_s: Option<f64>,
}

impl Window {
    pub fn start(&self) -> Duration {
        Duration::try_from_secs_f64(self.start_s).unwrap_or(Duration::MAX)
    }

    pub fn end(&self) -> Option<Duration> {
        self.end_s
            .map(|s| Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX))
    }

    /// Whether `elapsed` (since the fault was added) is inside the window.
    pub fn contains(&self, elapsed: Duration) -> bool {
        elapsed >= self.start() && self.end().is_none_or(|end| elapsed < end)
    }

    fn validate(&self) -> Result<(), FieldError> {
        let max = MAX_SECONDS as f64;
        if !self.start_s.is_finite() || !(0.0..=max).contains(&self.start_s) {
            return Err(FieldError::new(
                "window.start_s",
                format!("must be a number of seconds between 0 and {MAX_SECONDS}"),
            ));
        }
        if let Some(end) = self.end_s {
            if !end.is_finite() || end <= self.start_s || end > max {
                return Err(FieldError::new(
                    "window.end_s",
                    format!(
                        "must be a number of seconds > start_s ({}) and at most {MAX_SECONDS}",
                        self.start_s
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A delay distribution, in milliseconds. Samples are clamped to `[0, 1 h]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "snake_case", deny_unknown_fields)]
pub enum Distribution {
    Fixed {
        ms: f64,
    },
    Uniform {
        min_ms: f64,
        max_ms: f64,
    },
    /// Negative samples become 0.
    Normal {
        mean_ms: f64,
        stddev_ms: f64,
    },
    /// Given by its median and 99th percentile: `mu = ln p50`, `sigma = ln(p99 / p50) / 2.326`.
    LogNormal {
        p50_ms: f64,
        p99_ms: f64,
    },
}

impl Distribution {
    /// One sample. Draws a fixed number of values from `rng` per variant (none for `fixed`,
    /// one for `uniform`, two for the others), so decision sequences stay reproducible.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        let ms = match *self {
            Self::Fixed { ms } => ms,
            Self::Uniform { min_ms, max_ms } => min_ms + (max_ms - min_ms) * rng.r#gen::<f64>(),
            Self::Normal { mean_ms, stddev_ms } => mean_ms + stddev_ms * standard_normal(rng),
            Self::LogNormal { p50_ms, p99_ms } => {
                let sigma = (p99_ms / p50_ms).ln() / Z_99;
                (p50_ms.ln() + sigma * standard_normal(rng)).exp()
            }
        };
        let ms = if ms.is_finite() {
            ms.clamp(0.0, MAX_DELAY_MS)
        } else {
            MAX_DELAY_MS
        };
        Duration::from_secs_f64(ms / 1000.0)
    }

    fn validate(&self, field: &str) -> Result<(), FieldError> {
        let check = |name: &str, value: f64| {
            if value.is_finite() && (0.0..=MAX_DELAY_MS).contains(&value) {
                Ok(())
            } else {
                Err(FieldError::new(
                    join(field, name),
                    format!("must be between 0 and {MAX_DELAY_MS} ms, got {value}"),
                ))
            }
        };
        match *self {
            Self::Fixed { ms } => check("ms", ms),
            Self::Uniform { min_ms, max_ms } => {
                check("min_ms", min_ms)?;
                check("max_ms", max_ms)?;
                if max_ms < min_ms {
                    return Err(FieldError::new(
                        join(field, "max_ms"),
                        format!("must be ≥ min_ms ({min_ms})"),
                    ));
                }
                Ok(())
            }
            Self::Normal { mean_ms, stddev_ms } => {
                check("mean_ms", mean_ms)?;
                check("stddev_ms", stddev_ms)
            }
            Self::LogNormal { p50_ms, p99_ms } => {
                check("p50_ms", p50_ms)?;
                check("p99_ms", p99_ms)?;
                if p50_ms <= 0.0 {
                    return Err(FieldError::new(join(field, "p50_ms"), "must be > 0"));
                }
                if p99_ms < p50_ms {
                    return Err(FieldError::new(
                        join(field, "p99_ms"),
                        format!("must be ≥ p50_ms ({p50_ms})"),
                    ));
                }
                Ok(())
            }
        }
    }
}

/// A standard normal variate by Box–Muller (two uniform draws, one of the pair used).
pub fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    // 1 - [0, 1) is (0, 1]: ln never sees 0.
    let u1 = 1.0 - rng.r#gen::<f64>();
    let u2 = rng.r#gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// HTTP: add a delay before the request is handled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    pub delay: Distribution,
}

/// HTTP: answer with an error instead of handling the request, in the service's AGS error shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorFault {
    /// 400–599.
    pub status: u16,
    /// The AGS `errorCode`; default: the code AGS pairs with the status (20000 for 5xx).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn status_503() -> u16 {
    503
}

fn status_504() -> u16 {
    504
}

/// HTTP: every call fails while the fault is active (the probability is always 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outage {
    #[serde(default = "status_503")]
    pub status: u16,
}

/// What a held request does once its time is up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HangThen {
    /// Answer `status` (default 504).
    #[default]
    Fail,
    /// Handle the request normally.
    Answer,
}

/// HTTP: hold the request for `hold_s`, then fail or answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hang {
    pub hold_s: f64,
    #[serde(default)]
    pub then: HangThen,
    #[serde(default = "status_504")]
    pub status: u16,
}

/// Lobby: the notification is lost (the sender still sees success).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropNotification {}

/// Lobby: the notification is delivered late (later ones may overtake it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelayNotification {
    pub delay: Distribution,
}

fn one() -> u32 {
    1
}

/// Lobby: the notification is delivered `1 + copies` times, with the same id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DuplicateNotification {
    #[serde(default = "one")]
    pub copies: u32,
}

/// The close code of an injected disconnect by default: the Unity SDK's `ServerShuttingDown`,
/// a server-side cause after which clients reconnect.
pub const DEFAULT_CLOSE_CODE: u16 = 4000;

fn close_4000() -> u16 {
    DEFAULT_CLOSE_CODE
}

/// Lobby: close sockets. By default the fault's `probability` is the chance that each matching
/// socket is closed within a minute; with `per_minute`, that many sockets per minute are closed
/// on average, spread over the matching sockets (and `probability` must not be set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disconnect {
    #[serde(default = "close_4000")]
    pub close_code: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_minute: Option<f64>,
}

/// DSMC: force claim outcomes. Each claim of an existing session fails with 404, 409, 425 or
/// 503 at these rates (their sum at most 1); otherwise the normal rules decide.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimOutcome {
    /// 404 session not found.
    #[serde(default)]
    pub not_found: f64,
    /// 409 already claimed.
    #[serde(default)]
    pub conflict: f64,
    /// 425 not ready.
    #[serde(default)]
    pub not_ready: f64,
    /// 503 server unreachable.
    #[serde(default)]
    pub unreachable: f64,
    /// Only claims of servers in this region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

impl ClaimOutcome {
    pub fn total(&self) -> f64 {
        self.not_found + self.conflict + self.not_ready + self.unreachable
    }
}

/// DSMC: at most `capacity` servers of `region` in use at once (0: no capacity). Registers
/// beyond it answer 503; servers already held are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionCapacity {
    pub region: String,
    pub capacity: usize,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// DSMC: servers registered while active take `delay` to become ready, or never do.
/// `probability` is the share of registers affected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadyDelay {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Distribution>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub never: bool,
}

/// Matchmaking v2: an expiry storm — while active, every queued match ticket (of `pool`, if
/// given) that has waited at least `after_s` seconds expires at the next matchmaking pass, with
/// `OnMatchmakingTicketExpired`, however long its pool would have kept it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketExpiry {
    #[serde(default)]
    pub after_s: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
}

/// IAM: tokens issued while active live `access_s` (and `refresh_s`) seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenExpiry {
    pub access_s: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_s: Option<u64>,
}

/// IAM: revoke every token of a user when the window starts (once), and close their lobby
/// socket with 4020 (token revoked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeUser {
    pub user_id: String,
}

/// IAM: generate a new signing key when the window starts (and every `every_s` after, while
/// active). Old keys stay in the JWKS, so tokens issued before still validate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwksRotation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_s: Option<f64>,
}

/// What a fault does. Tagged by `kind`; every variant refuses fields it does not know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultKind {
    Latency(Latency),
    Error(ErrorFault),
    Outage(Outage),
    Hang(Hang),
    DropNotification(DropNotification),
    DelayNotification(DelayNotification),
    DuplicateNotification(DuplicateNotification),
    Disconnect(Disconnect),
    ClaimOutcome(ClaimOutcome),
    RegionCapacity(RegionCapacity),
    ReadyDelay(ReadyDelay),
    TokenExpiry(TokenExpiry),
    RevokeUser(RevokeUser),
    JwksRotation(JwksRotation),
    TicketExpiry(TicketExpiry),
}

/// Every kind's name, in [`FaultKind::index`] order.
pub const KINDS: [&str; 15] = [
    "latency",
    "error",
    "outage",
    "hang",
    "drop_notification",
    "delay_notification",
    "duplicate_notification",
    "disconnect",
    "claim_outcome",
    "region_capacity",
    "ready_delay",
    "token_expiry",
    "revoke_user",
    "jwks_rotation",
    "ticket_expiry",
];

/// Where a kind acts, which decides the target fields it understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Http,
    Notification,
    Socket,
    Dsmc,
    Iam,
    Match2,
}

impl FaultKind {
    /// Position in [`KINDS`].
    pub fn index(&self) -> usize {
        match self {
            Self::Latency(_) => 0,
            Self::Error(_) => 1,
            Self::Outage(_) => 2,
            Self::Hang(_) => 3,
            Self::DropNotification(_) => 4,
            Self::DelayNotification(_) => 5,
            Self::DuplicateNotification(_) => 6,
            Self::Disconnect(_) => 7,
            Self::ClaimOutcome(_) => 8,
            Self::RegionCapacity(_) => 9,
            Self::ReadyDelay(_) => 10,
            Self::TokenExpiry(_) => 11,
            Self::RevokeUser(_) => 12,
            Self::JwksRotation(_) => 13,
            Self::TicketExpiry(_) => 14,
        }
    }

    pub fn name(&self) -> &'static str {
        KINDS[self.index()]
    }

    pub fn scope(&self) -> Scope {
        match self {
            Self::Latency(_) | Self::Error(_) | Self::Outage(_) | Self::Hang(_) => Scope::Http,
            Self::DropNotification(_)
            | Self::DelayNotification(_)
            | Self::DuplicateNotification(_) => Scope::Notification,
            Self::Disconnect(_) => Scope::Socket,
            Self::ClaimOutcome(_) | Self::RegionCapacity(_) | Self::ReadyDelay(_) => Scope::Dsmc,
            Self::TokenExpiry(_) | Self::RevokeUser(_) | Self::JwksRotation(_) => Scope::Iam,
            Self::TicketExpiry(_) => Scope::Match2,
        }
    }

    /// Kinds that change state rather than roll per call: their probability is always 1.
    fn probability_must_be_one(&self) -> bool {
        matches!(
            self,
            Self::Outage(_)
                | Self::RegionCapacity(_)
                | Self::TokenExpiry(_)
                | Self::RevokeUser(_)
                | Self::JwksRotation(_)
                | Self::TicketExpiry(_)
        )
    }

    /// Parses the kind's own fields (everything but the common ones) from `fields`.
    fn parse(kind: &str, fields: Map<String, Value>) -> Result<Self, FieldError> {
        let fields = Value::Object(fields);
        Ok(match kind {
            "latency" => Self::Latency(de("", fields)?),
            "error" => Self::Error(de("", fields)?),
            "outage" => Self::Outage(de("", fields)?),
            "hang" => Self::Hang(de("", fields)?),
            "drop_notification" => Self::DropNotification(de("", fields)?),
            "delay_notification" => Self::DelayNotification(de("", fields)?),
            "duplicate_notification" => Self::DuplicateNotification(de("", fields)?),
            "disconnect" => Self::Disconnect(de("", fields)?),
            "claim_outcome" => Self::ClaimOutcome(de("", fields)?),
            "region_capacity" => Self::RegionCapacity(de("", fields)?),
            "ready_delay" => Self::ReadyDelay(de("", fields)?),
            "token_expiry" => Self::TokenExpiry(de("", fields)?),
            "revoke_user" => Self::RevokeUser(de("", fields)?),
            "jwks_rotation" => Self::JwksRotation(de("", fields)?),
            "ticket_expiry" => Self::TicketExpiry(de("", fields)?),
            other => {
                return Err(FieldError::new(
                    "kind",
                    format!(
                        "unknown kind `{other}`, expected one of {}",
                        KINDS.join(", ")
                    ),
                ));
            }
        })
    }

    fn validate(&self) -> Result<(), FieldError> {
        match self {
            Self::Latency(l) => l.delay.validate("delay"),
            Self::Error(e) => check_error_status("status", e.status),
            Self::Outage(o) => check_error_status("status", o.status),
            Self::Hang(h) => {
                if !h.hold_s.is_finite() || h.hold_s <= 0.0 || h.hold_s > MAX_DELAY_MS / 1000.0 {
                    return Err(FieldError::new(
                        "hold_s",
                        format!("must be > 0 and ≤ 3600 seconds, got {}", h.hold_s),
                    ));
                }
                check_error_status("status", h.status)
            }
            Self::DropNotification(_) => Ok(()),
            Self::DelayNotification(d) => d.delay.validate("delay"),
            Self::DuplicateNotification(d) => {
                if (1..=10).contains(&d.copies) {
                    Ok(())
                } else {
                    Err(FieldError::new(
                        "copies",
                        format!("must be between 1 and 10, got {}", d.copies),
                    ))
                }
            }
            Self::Disconnect(d) => {
                if !valid_close_code(d.close_code) {
                    return Err(FieldError::new(
                        "close_code",
                        format!(
                            "{} cannot be sent in a close frame; use 1000–1003, 1007–1014 or 3000–4999",
                            d.close_code
                        ),
                    ));
                }
                match d.per_minute {
                    Some(rate) if !rate.is_finite() || rate <= 0.0 => Err(FieldError::new(
                        "per_minute",
                        format!("must be > 0, got {rate}"),
                    )),
                    _ => Ok(()),
                }
            }
            Self::ClaimOutcome(c) => {
                for (name, rate) in [
                    ("not_found", c.not_found),
                    ("conflict", c.conflict),
                    ("not_ready", c.not_ready),
                    ("unreachable", c.unreachable),
                ] {
                    check_rate(name, rate)?;
                }
                let total = c.total();
                if total > 1.0 + 1e-9 {
                    return Err(FieldError::new(
                        "not_found",
                        format!(
                            "not_found + conflict + not_ready + unreachable must be at most 1, got {total}"
                        ),
                    ));
                }
                if total <= 0.0 {
                    return Err(FieldError::new(
                        "not_found",
                        "at least one of not_found, conflict, not_ready, unreachable must be > 0",
                    ));
                }
                if c.region.as_deref().is_some_and(|r| r.trim().is_empty()) {
                    return Err(FieldError::new("region", "must not be empty"));
                }
                Ok(())
            }
            Self::RegionCapacity(r) => {
                if r.region.trim().is_empty() {
                    return Err(FieldError::new("region", "must not be empty"));
                }
                Ok(())
            }
            Self::ReadyDelay(r) => match (&r.delay, r.never) {
                (Some(_), true) => Err(FieldError::new(
                    "never",
                    "give either delay or never = true, not both",
                )),
                (None, false) => Err(FieldError::new(
                    "delay",
                    "missing: give a delay distribution or never = true",
                )),
                (Some(delay), false) => delay.validate("delay"),
                (None, true) => Ok(()),
            },
            Self::TokenExpiry(t) => {
                let range = 1..=MAX_SECONDS;
                if !range.contains(&t.access_s) {
                    return Err(FieldError::new(
                        "access_s",
                        format!("must be between 1 and {MAX_SECONDS} seconds"),
                    ));
                }
                if t.refresh_s.is_some_and(|r| !range.contains(&r)) {
                    return Err(FieldError::new(
                        "refresh_s",
                        format!("must be between 1 and {MAX_SECONDS} seconds"),
                    ));
                }
                Ok(())
            }
            Self::RevokeUser(r) => {
                if r.user_id.trim().is_empty() {
                    return Err(FieldError::new("user_id", "must not be empty"));
                }
                Ok(())
            }
            Self::JwksRotation(j) => match j.every_s {
                Some(every) if !every.is_finite() || every < 1.0 => Err(FieldError::new(
                    "every_s",
                    format!("must be at least 1 second, got {every}"),
                )),
                _ => Ok(()),
            },
            Self::TicketExpiry(t) => {
                if t.after_s > MAX_SECONDS {
                    return Err(FieldError::new(
                        "after_s",
                        format!("must be at most {MAX_SECONDS} seconds"),
                    ));
                }
                if t.pool.as_ref().is_some_and(|p| p.trim().is_empty()) {
                    return Err(FieldError::new("pool", "must not be empty"));
                }
                Ok(())
            }
        }
    }
}

fn check_error_status(field: &str, status: u16) -> Result<(), FieldError> {
    if (400..=599).contains(&status) {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("must be an error status (400–599), got {status}"),
        ))
    }
}

fn check_rate(field: &str, rate: f64) -> Result<(), FieldError> {
    if rate.is_finite() && (0.0..=1.0).contains(&rate) {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("must be between 0 and 1, got {rate}"),
        ))
    }
}

/// Close codes a server may put in a close frame (RFC 6455 section 7.4).
fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// One fault: what it does ([`FaultKind`], flattened next to the common fields), to what, how
/// often and when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fault {
    /// Assigned by the server (`<kind>-<n>`) when empty.
    pub id: String,
    #[serde(skip_serializing_if = "Target::is_empty")]
    pub target: Target,
    /// Chance that the fault acts on one call, notification or register (0..=1, default 1).
    pub probability: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    #[serde(flatten)]
    pub kind: FaultKind,
}

impl Fault {
    /// A fault on `target` with probability 1, no window and a server-assigned id.
    pub fn new(target: Target, kind: FaultKind) -> Self {
        Self {
            id: String::new(),
            target,
            probability: 1.0,
            window: None,
            kind,
        }
    }

    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    pub fn with_probability(mut self, probability: f64) -> Self {
        self.probability = probability;
        self
    }

    pub fn with_window(mut self, window: Window) -> Self {
        self.window = Some(window);
        self
    }

    /// Whether the fault is active `elapsed` after it was added.
    pub fn active_at(&self, elapsed: Duration) -> bool {
        self.window.is_none_or(|w| w.contains(elapsed))
    }

    /// [`Fault::validate`] for a fault built in code: a probability of 1 counts as not given.
    pub fn check(&self) -> Result<(), FieldError> {
        self.validate(self.probability != 1.0)
    }

    /// Checks everything serde cannot: ranges, ids, and the target fields the kind uses.
    /// `probability_given`: whether the input set `probability` (some kinds refuse it).
    pub fn validate(&self, probability_given: bool) -> Result<(), FieldError> {
        check_id(&self.id)?;
        check_rate("probability", self.probability)?;
        if probability_given && self.kind.probability_must_be_one() && self.probability != 1.0 {
            return Err(FieldError::new(
                "probability",
                format!(
                    "{} always applies while active; leave probability out (or 1)",
                    self.kind.name()
                ),
            ));
        }
        if let FaultKind::Disconnect(Disconnect {
            per_minute: Some(_),
            ..
        }) = self.kind
        {
            if probability_given {
                return Err(FieldError::new(
                    "probability",
                    "give either per_minute or probability, not both",
                ));
            }
        }
        if let Some(window) = &self.window {
            window.validate()?;
        }
        self.validate_target()?;
        self.kind.validate()
    }

    fn validate_target(&self) -> Result<(), FieldError> {
        let t = &self.target;
        let scope = self.kind.scope();
        let name = self.kind.name();
        let refuse = |field: &str| {
            Err(FieldError::new(
                format!("target.{field}"),
                format!("not used by kind {name}"),
            ))
        };
        let http = scope == Scope::Http;
        let lobby = matches!(scope, Scope::Notification | Scope::Socket);
        let own_service = match scope {
            Scope::Http => None,
            Scope::Notification | Scope::Socket => Some(Service::Lobby),
            Scope::Dsmc => Some(Service::Dsmc),
            Scope::Iam => Some(Service::Iam),
            Scope::Match2 => Some(Service::Match2),
        };
        if let (Some(service), Some(own)) = (t.service, own_service) {
            if service != own {
                return Err(FieldError::new(
                    "target.service",
                    format!("kind {name} acts on {own}, not {service}"),
                ));
            }
        }
        if !http {
            if t.route.is_some() {
                return refuse("route");
            }
            if t.method.is_some() {
                return refuse("method");
            }
        }
        if scope != Scope::Notification {
            if t.topic.is_some() {
                return refuse("topic");
            }
            if t.message_type.is_some() {
                return refuse("message_type");
            }
        }
        if !lobby && t.user_id.is_some() {
            return refuse("user_id");
        }
        if let Some(route) = &t.route {
            if !route.starts_with('/') {
                return Err(FieldError::new(
                    "target.route",
                    format!("must start with /, got {route:?}"),
                ));
            }
        }
        if let Some(method) = &t.method {
            if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(FieldError::new(
                    "target.method",
                    format!("must be an HTTP method such as GET or POST, got {method:?}"),
                ));
            }
        }
        Ok(())
    }
}

fn check_id(id: &str) -> Result<(), FieldError> {
    if id.is_empty() {
        return Ok(());
    }
    if id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(FieldError::new(
            "id",
            format!("must be 1–64 letters, digits, '-', '_' or '.', got {id:?}"),
        ));
    }
    if RESERVED_IDS.contains(&id) {
        return Err(FieldError::new("id", format!("{id:?} is reserved")));
    }
    Ok(())
}

/// Keys every fault has besides its kind's own.
const COMMON_KEYS: [&str; 5] = ["id", "target", "probability", "window", "kind"];

/// Parses one fault from JSON (an API body) or a converted TOML table. A `state` key (what
/// `GET /_fakes/faults` adds) is ignored, so a listed fault can be sent back as is.
pub fn parse_fault(value: Value) -> Result<Fault, FieldError> {
    let Value::Object(mut map) = value else {
        return Err(FieldError::new(
            "",
            "a fault must be a table (JSON object) with a `kind`",
        ));
    };
    map.remove("state");
    let id: Option<String> = take(&mut map, "id")?;
    let target = match map.remove("target") {
        None => Target::default(),
        Some(Value::String(text)) => Target::shorthand(&text)?,
        Some(value) => de("target", value)?,
    };
    let probability: Option<f64> = take(&mut map, "probability")?;
    let window: Option<Window> = take(&mut map, "window")?;
    let kind = match map.remove("kind") {
        Some(Value::String(kind)) => kind,
        Some(other) => {
            return Err(FieldError::new(
                "kind",
                format!("must be a string, got {other}"),
            ));
        }
        None => {
            return Err(FieldError::new(
                "kind",
                format!("missing field `kind`, expected one of {}", KINDS.join(", ")),
            ));
        }
    };
    let kind = FaultKind::parse(&kind, map).map_err(|e| {
        // The kind's own "expected one of" lists only its fields; the common ones are valid too.
        if e.message.starts_with("unknown field") && !e.field.contains('.') {
            FieldError {
                message: format!("{} (or one of {})", e.message, COMMON_KEYS.join(", ")),
                ..e
            }
        } else {
            e
        }
    })?;
    let mut target = target;
    if let Some(method) = target.method.as_mut() {
        *method = method.to_ascii_uppercase();
    }
    let fault = Fault {
        id: id.unwrap_or_default(),
        target,
        probability: probability.unwrap_or(1.0),
        window,
        kind,
    };
    fault.validate(probability.is_some())?;
    Ok(fault)
}

fn take<T: DeserializeOwned + Default>(
    map: &mut Map<String, Value>,
    key: &str,
) -> Result<T, FieldError> {
    match map.remove(key) {
        None | Some(Value::Null) => Ok(T::default()),
        Some(value) => de(key, value),
    }
}

impl<'de> Deserialize<'de> for Fault {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parse_fault(Value::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// A fault file (TOML) or a whole fault set (JSON): an optional RNG seed and the faults.
///
/// ```toml
/// seed = 42
///
/// [[faults]]
/// kind = "error"
/// target = "dsmc"
/// probability = 0.2
/// status = 503
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FaultFile {
    /// Seeds every decision; absent: a random seed, reported by `GET /_fakes/faults`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    pub faults: Vec<Fault>,
}

impl FaultFile {
    /// Parses a TOML fault file; unknown keys are refused.
    pub fn from_toml(text: &str) -> Result<Self, FieldError> {
        let table: toml::Table = toml::from_str(text)
            .map_err(|e| FieldError::new("", e.to_string().trim_end().to_owned()))?;
        let value = serde_json::to_value(table).map_err(|e| FieldError::new("", e.to_string()))?;
        Self::from_value(value)
    }

    /// Parses `{"seed": 42, "faults": [...]}`; unknown keys are refused.
    pub fn from_value(value: Value) -> Result<Self, FieldError> {
        let Value::Object(mut map) = value else {
            return Err(FieldError::new(
                "",
                "expected a table with `seed` and `faults`",
            ));
        };
        let seed: Option<u64> = take(&mut map, "seed")?;
        let faults = match map.remove("faults") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| parse_fault(item).map_err(|e| e.within(&format!("faults[{i}]"))))
                .collect::<Result<Vec<_>, _>>()?,
            Some(other) => {
                return Err(FieldError::new(
                    "faults",
                    format!("must be an array of faults, got {other}"),
                ));
            }
        };
        if let Some(key) = map.keys().next() {
            return Err(FieldError::new(
                key.clone(),
                format!("unknown key `{key}`, expected `seed` or `faults`"),
            ));
        }
        let file = Self { seed, faults };
        file.check_unique_ids()?;
        Ok(file)
    }

    /// Explicit ids must be unique.
    pub fn check_unique_ids(&self) -> Result<(), FieldError> {
        let mut seen = std::collections::HashSet::new();
        for (i, fault) in self.faults.iter().enumerate() {
            if !fault.id.is_empty() && !seen.insert(fault.id.as_str()) {
                return Err(FieldError::new(
                    format!("faults[{i}].id"),
                    format!("duplicate id {:?}", fault.id),
                ));
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for FaultFile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::from_value(Value::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use serde_json::json;

    fn parse(value: Value) -> Result<Fault, FieldError> {
        parse_fault(value)
    }

    #[test]
    fn a_full_fault_parses_and_serializes_flat() {
        let fault = parse(json!({
            "id": "slow-iam",
            "kind": "latency",
            "target": {"service": "iam", "method": "post"},
            "probability": 0.5,
            "window": {"start_s": 1, "end_s": 2.5},
            "delay": {"dist": "log_normal", "p50_ms": 80, "p99_ms": 800},
        }))
        .expect("valid");
        assert_eq!(fault.target.method.as_deref(), Some("POST"));
        assert_eq!(
            fault.kind,
            FaultKind::Latency(Latency {
                delay: Distribution::LogNormal {
                    p50_ms: 80.0,
                    p99_ms: 800.0
                }
            })
        );
        let back = serde_json::to_value(&fault).expect("serializes");
        assert_eq!(back["kind"], "latency");
        assert_eq!(back["delay"]["dist"], "log_normal");
        assert_eq!(parse(back).expect("round trip"), fault);
    }

    #[test]
    fn target_shorthands() {
        let f = parse(json!({"kind": "error", "status": 503, "target": "dsmcontroller"}))
            .expect("service");
        assert_eq!(f.target.service, Some(Service::Dsmc));
        let f = parse(json!({"kind": "error", "status": 503, "target": "/iam/**"})).expect("route");
        assert_eq!(f.target.route.as_deref(), Some("/iam/**"));
        let e = parse(json!({"kind": "error", "status": 503, "target": "billing"}))
            .expect_err("unknown");
        assert_eq!(e.field, "target");
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                json!({"kind": "error", "status": 503, "probability": 1.5}),
                "probability",
            ),
            (json!({"kind": "error", "status": 200}), "status"),
            (json!({"kind": "error", "statuss": 503}), "statuss"),
            (json!({"kind": "error"}), "status"),
            (json!({"kind": "eror", "status": 503}), "kind"),
            (json!({"status": 503}), "kind"),
            (json!({"kind": "error", "status": "x"}), "status"),
            (
                json!({"kind": "latency", "delay": {"dist": "log_normal", "p50_ms": 80}}),
                "delay.p99_ms",
            ),
            (
                json!({"kind": "latency", "delay": {"dist": "log_normal", "p50_ms": 800, "p99_ms": 80}}),
                "delay.p99_ms",
            ),
            (
                json!({"kind": "latency", "delay": {"dist": "fixed", "ms": 1, "extra": 2}}),
                "delay.extra",
            ),
            (
                json!({"kind": "error", "status": 503, "window": {"start_s": 5, "end_s": 1}}),
                "window.end_s",
            ),
            (
                json!({"kind": "error", "status": 503, "window": {"begin": 5}}),
                "window.begin",
            ),
            (
                json!({"kind": "error", "status": 503, "target": {"topic": "x"}}),
                "target.topic",
            ),
            (
                json!({"kind": "error", "status": 503, "target": {"servce": "iam"}}),
                "target.servce",
            ),
            (
                json!({"kind": "drop_notification", "target": {"route": "/x"}}),
                "target.route",
            ),
            (
                json!({"kind": "drop_notification", "target": {"service": "iam"}}),
                "target.service",
            ),
            (json!({"kind": "outage", "probability": 0.5}), "probability"),
            (
                json!({"kind": "disconnect", "close_code": 1006}),
                "close_code",
            ),
            (
                json!({"kind": "disconnect", "per_minute": 2, "probability": 0.1}),
                "probability",
            ),
            (
                json!({"kind": "claim_outcome", "conflict": 0.7, "not_ready": 0.7}),
                "not_found",
            ),
            (json!({"kind": "ready_delay"}), "delay"),
            (json!({"kind": "token_expiry", "access_s": 0}), "access_s"),
            (json!({"kind": "hang", "hold_s": -1}), "hold_s"),
            (
                json!({"kind": "error", "status": 503, "id": "has space"}),
                "id",
            ),
            (json!({"kind": "error", "status": 503, "id": "seed"}), "id"),
        ];
        for (input, field) in cases {
            let error = parse(input.clone()).expect_err(&input.to_string());
            assert_eq!(error.field, field, "{input} → {error}");
            assert!(!error.message.is_empty());
        }
    }

    #[test]
    fn a_file_names_the_fault_and_refuses_unknown_keys() {
        let text = "seed = 7\n[[faults]]\nkind = \"error\"\nstatus = 503\n[[faults]]\nkind = \"error\"\nstatus = 503\nprobability = 2.0\n";
        let error = FaultFile::from_toml(text).expect_err("bad probability");
        assert_eq!(error.field, "faults[1].probability");
        assert_eq!(
            error.to_string(),
            "faults[1].probability: must be between 0 and 1, got 2"
        );
        let error = FaultFile::from_toml("sead = 7\n").expect_err("unknown key");
        assert_eq!(error.field, "sead");
        let file = FaultFile::from_toml(&text.replace("2.0", "0.5")).expect("valid");
        assert_eq!((file.seed, file.faults.len()), (Some(7), 2));
        let dup = "[[faults]]\nid = \"a\"\nkind = \"outage\"\n[[faults]]\nid = \"a\"\nkind = \"outage\"\n";
        assert_eq!(
            FaultFile::from_toml(dup).expect_err("dup").field,
            "faults[1].id"
        );
    }

    #[test]
    fn routes_and_globs() {
        let claim = "/dsmcontroller/namespaces/{namespace}/sessions/claim";
        assert!(route_matches(
            claim,
            "/dsmcontroller/namespaces/ns/sessions/claim"
        ));
        assert!(!route_matches(
            claim,
            "/dsmcontroller/namespaces/ns/sessions"
        ));
        assert!(route_matches(
            "/dsmcontroller/namespaces/*/sessions/claim",
            "/dsmcontroller/namespaces/ns/sessions/claim"
        ));
        assert!(route_matches("/iam/**", "/iam/v3/oauth/token"));
        assert!(route_matches("/iam/**", "/iam"));
        assert!(route_matches(
            "/**/claim",
            "/dsmcontroller/namespaces/ns/sessions/claim"
        ));
        assert!(!route_matches("/iam/*", "/iam/v3/oauth/token"));
        assert!(route_matches("/iam/v3/oauth/tok*", "/iam/v3/oauth/token"));
        assert!(glob("match*", "matchFound"));
        assert!(glob("*Found", "matchFound"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "aXbYc"));
        assert!(!glob("a*b*c", "aXbY"));
        assert!(!glob("ab*ba", "aba"));
    }

    #[test]
    fn services_by_path() {
        assert_eq!(Service::of_path("/iam/v3/oauth/token"), Service::Iam);
        assert_eq!(Service::of_path("/lobby/"), Service::Lobby);
        assert_eq!(Service::of_path("/lobby"), Service::Lobby);
        assert_eq!(
            Service::of_path("/notification/namespaces/x/freeform"),
            Service::Lobby
        );
        assert_eq!(
            Service::of_path("/sessionbrowser/namespaces/x/gamesession"),
            Service::SessionBrowser
        );
        assert_eq!(Service::of_path("/dsmcontroller/healthz"), Service::Dsmc);
        assert_eq!(Service::of_path("/iamx"), Service::Other);
    }

    /// Φ(x) by Abramowitz–Stegun 7.1.26 (|error| < 1.5e-7).
    fn normal_cdf(x: f64) -> f64 {
        let t = 1.0 / (1.0 + 0.327_591_1 * x.abs() / std::f64::consts::SQRT_2);
        let poly = t
            * (0.254_829_592
                + t * (-0.284_496_736
                    + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
        let erf = 1.0 - poly * (-(x * x) / 2.0).exp();
        if x >= 0.0 {
            0.5 * (1.0 + erf)
        } else {
            0.5 * (1.0 - erf)
        }
    }

    /// The largest gap between the empirical CDF of `samples` and `cdf` (Kolmogorov–Smirnov D).
    fn ks_distance(mut samples: Vec<f64>, cdf: impl Fn(f64) -> f64) -> f64 {
        samples.sort_by(f64::total_cmp);
        let n = samples.len() as f64;
        samples
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let f = cdf(x);
                (f - i as f64 / n).abs().max(((i + 1) as f64 / n - f).abs())
            })
            .fold(0.0, f64::max)
    }

    const N: usize = 20_000;
    /// KS critical value at α = 0.001 is 1.95/√n ≈ 0.0138 for n = 20,000.
    const KS_BOUND: f64 = 0.0138;

    fn samples(dist: Distribution, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..N)
            .map(|_| dist.sample(&mut rng).as_secs_f64() * 1000.0)
            .collect()
    }

    #[test]
    fn normal_samples_follow_the_normal_cdf() {
        // Mean far from 0 so the clamp at 0 never bites.
        let dist = Distribution::Normal {
            mean_ms: 100.0,
            stddev_ms: 15.0,
        };
        let d = ks_distance(samples(dist, 1), |x| normal_cdf((x - 100.0) / 15.0));
        assert!(d < KS_BOUND, "KS distance {d}");
    }

    #[test]
    fn log_normal_samples_hit_the_given_p50_and_p99() {
        let dist = Distribution::LogNormal {
            p50_ms: 80.0,
            p99_ms: 800.0,
        };
        let sigma = 10f64.ln() / Z_99;
        let all = samples(dist, 2);
        let d = ks_distance(all.clone(), |x| normal_cdf((x.ln() - 80f64.ln()) / sigma));
        assert!(d < KS_BOUND, "KS distance {d}");
        let below = |limit: f64| all.iter().filter(|&&x| x < limit).count() as f64 / N as f64;
        // Binomial σ at p = 0.5 is 0.0035 and at 0.99 is 0.0007 for n = 20,000: 4σ bounds.
        assert!((below(80.0) - 0.5).abs() < 0.014, "{}", below(80.0));
        assert!((below(800.0) - 0.99).abs() < 0.003, "{}", below(800.0));
    }

    #[test]
    fn uniform_and_fixed_stay_in_range_and_sampling_is_reproducible() {
        let uniform = Distribution::Uniform {
            min_ms: 50.0,
            max_ms: 150.0,
        };
        let a = samples(uniform, 3);
        assert!(a.iter().all(|&x| (50.0..=150.0).contains(&x)));
        assert_eq!(a, samples(uniform, 3), "same seed, same samples");
        assert_ne!(a, samples(uniform, 4));
        let fixed = samples(Distribution::Fixed { ms: 200.0 }, 5);
        assert!(fixed.iter().all(|&x| (x - 200.0).abs() < 1e-6));
    }

    #[test]
    fn windows() {
        let w = Window {
            start_s: 1.0,
            end_s: Some(2.0),
        };
        assert!(!w.contains(Duration::from_millis(999)));
        assert!(w.contains(Duration::from_secs(1)));
        assert!(!w.contains(Duration::from_secs(2)));
        assert!(
            Window {
                start_s: 0.0,
                end_s: None
            }
            .contains(Duration::from_secs(1_000_000))
        );
    }
}
