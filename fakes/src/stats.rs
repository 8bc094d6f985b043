//! Live statistics: request counters recorded by the HTTP fault layer, and the report behind
//! `GET /_fakes/stats` (JSON) and `GET /metrics` (Prometheus text format), which add the
//! fault set's, the fleet's and the lobby's own counters.
//!
//! [`StatsReport`] is the body's one definition: fakes renders it and clients (the load
//! generator) read it back with the same types, so a renamed counter breaks them at compile
//! time instead of reading as zero.
//!
//! Request counters are keyed by service, method, status and route *pattern* (axum's matched
//! path, `unmatched` for 404s), so their number stays bounded whatever ids clients send. The
//! hot path takes a read lock and bumps an atomic; only a key seen for the first time takes
//! the write lock. Counters are totals since start: `POST /_fakes/reset` does not zero them
//! (the fleet's own counters do reset with the fleet), so a load test can diff snapshots.

use std::collections::{BTreeMap, HashMap};
use std::fmt::{Display, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::Method;
use parking_lot::RwLock;
use serde::{Deserialize, Deserializer, Serialize};
use tokio::time::Instant;

use crate::dsmc::fleet::{ClaimFailures, FleetStats, RegionUsage, RegisterFailures};
use crate::faults::{KINDS, Service};
use crate::lobby::cluster::ShardStats;
use crate::state::AppState;

type Routes = HashMap<Box<str>, AtomicU64>;

/// Requests by `(service, method, status)` and route pattern.
#[derive(Debug)]
pub struct RequestStats {
    started: Instant,
    counts: RwLock<HashMap<(Service, Method, u16), Routes>>,
}

impl Default for RequestStats {
    fn default() -> Self {
        Self::new()
    }
}

/// One request counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteCount {
    #[serde(deserialize_with = "service_name")]
    pub service: Service,
    pub method: String,
    pub route: String,
    pub status: u16,
    pub count: u64,
}

impl RequestStats {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            counts: RwLock::new(HashMap::new()),
        }
    }

    pub fn uptime_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Counts one answered request.
    pub fn record(&self, service: Service, method: &Method, route: &str, status: u16) {
        let key = (service, method.clone(), status);
        if let Some(counter) = self
            .counts
            .read()
            .get(&key)
            .and_then(|routes| routes.get(route))
        {
            counter.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut counts = self.counts.write();
        counts
            .entry(key)
            .or_default()
            .entry(route.into())
            .or_insert_with(|| AtomicU64::new(0))
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Every counter, sorted by service, route, method and status.
    pub fn snapshot(&self) -> Vec<RouteCount> {
        let counts = self.counts.read();
        let mut all: Vec<RouteCount> = counts
            .iter()
            .flat_map(|((service, method, status), routes)| {
                routes.iter().map(move |(route, count)| RouteCount {
                    service: *service,
                    method: method.to_string(),
                    route: route.to_string(),
                    status: *status,
                    count: count.load(Ordering::Relaxed),
                })
            })
            .collect();
        all.sort_by(|a, b| {
            (a.service, &a.route, &a.method, a.status)
                .cmp(&(b.service, &b.route, &b.method, b.status))
        });
        all
    }
}

/// `GET /_fakes/stats`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatsReport {
    pub uptime_s: f64,
    pub requests: RequestReport,
    pub faults: FaultReport,
    pub dsmc: DsmcReport,
    /// Fleet usage per region now.
    pub fleet: Vec<RegionUsage>,
    pub lobby: LobbyReport,
    /// The accept loop: connections taken, and failures for lack of descriptors.
    pub accept: AcceptReport,
    /// Matchmaking v2: match function calls, and the latest failure.
    pub match2: crate::match2::store::FunctionCallStats,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AcceptReport {
    pub accepted: u64,
    /// HTTP connections open now.
    pub open: usize,
    /// `accept` failed for lack of descriptors or memory (`EMFILE` and kin); the loop backed off.
    pub resource_errors: u64,
    /// Connections refused with 503 + `Retry-After` at the connection cap.
    pub refused_over_cap: u64,
    /// Lobby connections handed to shard processes.
    pub handed_to_shards: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestReport {
    pub total: u64,
    #[serde(deserialize_with = "services_by_name")]
    pub by_service: BTreeMap<Service, ServiceReport>,
    pub routes: Vec<RouteCount>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServiceReport {
    pub total: u64,
    /// Status code → requests.
    pub by_status: BTreeMap<u16, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultReport {
    pub seed: u64,
    pub configured: usize,
    pub active: usize,
    /// Injections per kind since start (including faults since deleted).
    pub injected_by_kind: BTreeMap<String, u64>,
    /// Injections per fault in the current set.
    pub injected_by_fault: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DsmcReport {
    pub registers: u64,
    pub register_failures: RegisterFailures,
    pub claims: ClaimReport,
    pub sessions_cancelled: u64,
    pub sessions_deleted: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimReport {
    pub attempted: u64,
    pub succeeded: u64,
    /// By reason: `not_found` (404), `conflict` (409), `not_ready` (425), `unreachable` (503).
    pub failed: ClaimFailures,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LobbyReport {
    pub connections_open: u64,
    pub connects_total: u64,
    pub sessions_replaced: u64,
    pub frames_received: u64,
    pub error_frames_sent: u64,
    pub notifications: NotificationReport,
    /// Per lobby shard process (empty when the lobby runs in this process).
    pub shards: Vec<ShardStats>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotificationReport {
    pub delivered: u64,
    pub queued: u64,
    pub dropped: u64,
    pub fault_dropped: u64,
    pub fault_delayed: u64,
    pub fault_duplicated: u64,
}

impl DsmcReport {
    /// The DSMC part of the report, from the fleet's counters.
    pub fn of(fleet: &FleetStats) -> DsmcReport {
        DsmcReport {
            registers: fleet.registers,
            register_failures: fleet.register_failures.clone(),
            claims: ClaimReport {
                attempted: fleet.claims_attempted,
                succeeded: fleet.claims_succeeded,
                failed: fleet.claims_failed.clone(),
            },
            sessions_cancelled: fleet.sessions_cancelled,
            sessions_deleted: fleet.sessions_deleted,
        }
    }
}

/// A service by the name the report gives it, including `other` (requests no service served),
/// which fault files cannot name and so [`Service`]'s own reading refuses.
fn service_named<E: serde::de::Error>(name: &str) -> Result<Service, E> {
    if name == "other" {
        return Ok(Service::Other);
    }
    Service::deserialize(serde::de::value::StrDeserializer::<E>::new(name))
}

fn service_name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Service, D::Error> {
    service_named(&String::deserialize(deserializer)?)
}

fn services_by_name<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<Service, ServiceReport>, D::Error> {
    BTreeMap::<String, ServiceReport>::deserialize(deserializer)?
        .into_iter()
        .map(|(name, report)| Ok((service_named(&name)?, report)))
        .collect()
}

/// Everything `/_fakes/stats` and `/metrics` show, read now.
pub fn report(state: &AppState) -> StatsReport {
    let routes = state.requests.snapshot();
    let mut by_service: BTreeMap<Service, ServiceReport> = BTreeMap::new();
    for route in &routes {
        let service = by_service.entry(route.service).or_default();
        service.total += route.count;
        *service.by_status.entry(route.status).or_default() += route.count;
    }
    let (configured, active) = state.faults.counts();
    let fleet = state.dsmc.stats();
    let mut lobby = state.lobby.stats();
    state.lobby_shards.add_to(&mut lobby);
    let accept = &state.accept;
    StatsReport {
        uptime_s: state.requests.uptime_s(),
        requests: RequestReport {
            total: routes.iter().map(|r| r.count).sum(),
            by_service,
            routes,
        },
        faults: FaultReport {
            seed: state.faults.seed(),
            configured,
            active,
            injected_by_kind: KINDS
                .iter()
                .map(|kind| (*kind).to_owned())
                .zip(state.faults.injected_by_kind())
                .collect(),
            injected_by_fault: state
                .faults
                .injected_by_fault()
                .into_iter()
                .map(|(id, (_, n))| (id, n))
                .collect(),
        },
        dsmc: DsmcReport::of(&fleet),
        fleet: fleet.regions,
        lobby: LobbyReport {
            connections_open: lobby.connections_open,
            connects_total: lobby.connects_total,
            sessions_replaced: lobby.sessions_replaced,
            frames_received: lobby.frames_received,
            error_frames_sent: lobby.error_frames_sent,
            notifications: NotificationReport {
                delivered: lobby.notifications_delivered,
                queued: lobby.notifications_queued,
                dropped: lobby.notifications_dropped,
                fault_dropped: lobby.notifications_fault_dropped,
                fault_delayed: lobby.notifications_fault_delayed,
                fault_duplicated: lobby.notifications_fault_duplicated,
            },
            shards: state.lobby_shards.snapshot(),
        },
        accept: AcceptReport {
            accepted: accept.accepted(),
            open: accept.open(),
            resource_errors: accept.resource_errors(),
            refused_over_cap: accept.refused_over_cap(),
            handed_to_shards: accept.handed_off(),
        },
        match2: state.match2.call_stats(),
    }
}

/// The Prometheus text exposition format (version 0.0.4) content type.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The same figures as [`report`], as Prometheus metrics named `fakes_*`.
pub fn prometheus(state: &AppState) -> String {
    let r = report(state);
    let mut out = Exposition::default();

    out.family(
        "fakes_uptime_seconds",
        "gauge",
        "Seconds since this fakes instance started.",
    );
    out.sample("fakes_uptime_seconds", &[], r.uptime_s);

    out.family(
        "fakes_match2_function_calls_total",
        "counter",
        "Match function calls by result (failed: unreachable, refused, timed out or a bad answer; the pool's tickets stayed queued).",
    );
    out.sample(
        "fakes_match2_function_calls_total",
        &[("result", "ok")],
        r.match2.calls_ok,
    );
    out.sample(
        "fakes_match2_function_calls_total",
        &[("result", "failed")],
        r.match2.calls_failed,
    );

    out.family(
        "fakes_http_requests_total",
        "counter",
        "Requests answered by the emulated services, by service, method, route pattern and status.",
    );
    for route in &r.requests.routes {
        let status = route.status.to_string();
        let labels = [
            ("service", route.service.as_str()),
            ("method", &route.method),
            ("route", &route.route),
            ("status", &status),
        ];
        out.sample("fakes_http_requests_total", &labels, route.count);
    }

    out.family(
        "fakes_faults_configured",
        "gauge",
        "Faults in the fault set.",
    );
    out.sample("fakes_faults_configured", &[], r.faults.configured);
    out.family(
        "fakes_faults_active",
        "gauge",
        "Faults inside their window now.",
    );
    out.sample("fakes_faults_active", &[], r.faults.active);
    out.family(
        "fakes_faults_injected_total",
        "counter",
        "Times a fault acted, by fault kind.",
    );
    for (kind, count) in &r.faults.injected_by_kind {
        out.sample("fakes_faults_injected_total", &[("kind", kind)], count);
    }

    let d = &r.dsmc;
    out.family(
        "fakes_dsmc_registers_total",
        "counter",
        "DSMC registers that got a server.",
    );
    out.sample("fakes_dsmc_registers_total", &[], d.registers);
    out.family(
        "fakes_dsmc_register_failures_total",
        "counter",
        "DSMC registers refused, by reason.",
    );
    let rf = &d.register_failures;
    for (reason, count) in [
        ("exists", rf.exists),
        ("no_capacity", rf.no_capacity),
        ("pod_not_found", rf.pod_not_found),
        ("invalid", rf.invalid),
    ] {
        out.sample(
            "fakes_dsmc_register_failures_total",
            &[("reason", reason)],
            count,
        );
    }
    out.family(
        "fakes_dsmc_claims_attempted_total",
        "counter",
        "DSMC claims attempted.",
    );
    out.sample("fakes_dsmc_claims_attempted_total", &[], d.claims.attempted);
    out.family(
        "fakes_dsmc_claims_succeeded_total",
        "counter",
        "DSMC claims that made a server BUSY.",
    );
    out.sample("fakes_dsmc_claims_succeeded_total", &[], d.claims.succeeded);
    out.family(
        "fakes_dsmc_claims_failed_total",
        "counter",
        "DSMC claims that failed, by reason (not_found 404, conflict 409, not_ready 425, unreachable 503).",
    );
    let cf = &d.claims.failed;
    for (reason, count) in [
        ("not_found", cf.not_found),
        ("conflict", cf.conflict),
        ("not_ready", cf.not_ready),
        ("unreachable", cf.unreachable),
    ] {
        out.sample(
            "fakes_dsmc_claims_failed_total",
            &[("reason", reason)],
            count,
        );
    }
    out.family(
        "fakes_dsmc_sessions_cancelled_total",
        "counter",
        "DSMC sessions cancelled while CREATING.",
    );
    out.sample(
        "fakes_dsmc_sessions_cancelled_total",
        &[],
        d.sessions_cancelled,
    );
    out.family(
        "fakes_dsmc_sessions_deleted_total",
        "counter",
        "DSMC sessions deleted.",
    );
    out.sample("fakes_dsmc_sessions_deleted_total", &[], d.sessions_deleted);

    out.family(
        "fakes_fleet_servers",
        "gauge",
        "Dedicated servers configured per region.",
    );
    for region in &r.fleet {
        out.sample(
            "fakes_fleet_servers",
            &[("region", &region.name)],
            region.total,
        );
    }
    out.family(
        "fakes_fleet_capacity",
        "gauge",
        "Servers of a region that may be in use at once.",
    );
    for region in &r.fleet {
        out.sample(
            "fakes_fleet_capacity",
            &[("region", &region.name)],
            region.capacity,
        );
    }
    out.family(
        "fakes_fleet_sessions",
        "gauge",
        "Servers held by DSMC sessions, by region and status.",
    );
    for region in &r.fleet {
        for (status, count) in [
            ("creating", region.creating),
            ("ready", region.ready),
            ("busy", region.busy),
        ] {
            out.sample(
                "fakes_fleet_sessions",
                &[("region", &region.name), ("status", status)],
                count,
            );
        }
    }
    out.family(
        "fakes_fleet_free",
        "gauge",
        "Servers a register could take now, per region.",
    );
    for region in &r.fleet {
        out.sample("fakes_fleet_free", &[("region", &region.name)], region.free);
    }

    out.family(
        "fakes_accept_resource_errors_total",
        "counter",
        "accept() failures for lack of descriptors or memory (the loop backs off).",
    );
    out.sample(
        "fakes_accept_resource_errors_total",
        &[],
        r.accept.resource_errors,
    );
    out.family(
        "fakes_accept_refused_total",
        "counter",
        "Connections refused with 503 + Retry-After at the connection cap.",
    );
    out.sample("fakes_accept_refused_total", &[], r.accept.refused_over_cap);

    let l = &r.lobby;
    out.family(
        "fakes_lobby_connections",
        "gauge",
        "Lobby WebSockets open now.",
    );
    out.sample("fakes_lobby_connections", &[], l.connections_open);
    out.family(
        "fakes_lobby_connects_total",
        "counter",
        "Lobby WebSockets ever connected.",
    );
    out.sample("fakes_lobby_connects_total", &[], l.connects_total);
    out.family(
        "fakes_lobby_sessions_replaced_total",
        "counter",
        "Lobby sockets closed because the user connected again.",
    );
    out.sample(
        "fakes_lobby_sessions_replaced_total",
        &[],
        l.sessions_replaced,
    );
    out.family(
        "fakes_lobby_frames_received_total",
        "counter",
        "Frames received from lobby clients.",
    );
    out.sample("fakes_lobby_frames_received_total", &[], l.frames_received);
    out.family(
        "fakes_lobby_error_frames_total",
        "counter",
        "errorNotif frames sent to lobby clients.",
    );
    out.sample("fakes_lobby_error_frames_total", &[], l.error_frames_sent);
    out.family(
        "fakes_lobby_notifications_total",
        "counter",
        "Notifications by outcome: delivered to a socket, queued for an offline user, or dropped.",
    );
    let n = &l.notifications;
    for (outcome, count) in [
        ("delivered", n.delivered),
        ("queued", n.queued),
        ("dropped", n.dropped),
    ] {
        out.sample(
            "fakes_lobby_notifications_total",
            &[("outcome", outcome)],
            count,
        );
    }
    out.family(
        "fakes_lobby_notification_faults_total",
        "counter",
        "Notifications fault injection dropped, delayed or duplicated.",
    );
    for (action, count) in [
        ("dropped", n.fault_dropped),
        ("delayed", n.fault_delayed),
        ("duplicated", n.fault_duplicated),
    ] {
        out.sample(
            "fakes_lobby_notification_faults_total",
            &[("action", action)],
            count,
        );
    }
    out.0
}

/// A Prometheus text exposition being written.
#[derive(Debug, Default)]
struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{key}=\"{}\"", escape_label(value));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }
}

/// Label values escape `\`, `"` and line feeds.
pub fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// HELP text escapes `\` and line feeds.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_aggregate_by_key() {
        let stats = RequestStats::new();
        for _ in 0..3 {
            stats.record(Service::Iam, &Method::GET, "/iam/v3/oauth/jwks", 200);
        }
        stats.record(Service::Iam, &Method::GET, "/iam/v3/oauth/jwks", 503);
        stats.record(Service::Dsmc, &Method::POST, "/dsmcontroller/x", 204);
        let all = stats.snapshot();
        assert_eq!(all.len(), 3);
        assert_eq!(
            (all[0].route.as_str(), all[0].status, all[0].count),
            ("/iam/v3/oauth/jwks", 200, 3)
        );
        assert_eq!((all[1].status, all[1].count), (503, 1));
        assert_eq!(all[2].service, Service::Dsmc);
    }

    #[test]
    fn labels_and_help_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        let mut out = Exposition::default();
        out.family("m", "counter", "line\nbreak");
        out.sample("m", &[("route", "/x/\"y\"")], 3);
        out.sample("m", &[], 1.5);
        assert_eq!(
            out.0,
            "# HELP m line\\nbreak\n# TYPE m counter\nm{route=\"/x/\\\"y\\\"\"} 3\nm 1.5\n"
        );
    }
}
