//! The system under test: where the fakes (or AGS) and the matchmaker are, with which
//! credentials, and — for an embedded target — starting them in this process.
//!
//! Owns the embedded seam: [`start_embedded_matchmaker`] is the one place that starts the
//! `matchmaker` crate in-process (in-memory store). Tests and benches can pass their own
//! [`MatchmakerStarter`] (any server that speaks the tutorial's HTTP contract).
//!
//! Also owns reading the fakes' claim counters (directly from an embedded fakes, over
//! `GET /_fakes/stats` otherwise; both as the fakes' typed `DsmcReport`), the accounts CSV,
//! and the choice of loopback source addresses. Must not know what players do or how results
//! are measured.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use accelbyte::client::LobbyTls;
use url::{Host, Url};

use fakes::seed::builtin;
use fakes::stats::{ClaimReport, DsmcReport, StatsReport};

use crate::metrics::ClaimCounts;
use crate::process::ProcessReport;
use crate::scenario::{ClientCredentials, EmbeddedPlan, SourceAddresses, TargetPlan};
use crate::stack::{MultiStack, StackLayout};

/// First loopback source address used when spreading sockets (`127.0.0.11`, `.12`, …).
pub const FIRST_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

/// Why the target could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("embedded matchmaker: {0}")]
    Matchmaker(String),
    #[error("embedded fakes: {0}")]
    Fakes(String),
    #[error("{path}:{line}: {message}")]
    Accounts {
        path: String,
        line: usize,
        message: String,
    },
    #[error("{path}: {source}")]
    AccountsIo {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("tls: {0}")]
    Tls(String),
}

/// A running matchmaker in this process. Dropping it stops it.
pub trait EmbeddedMatchmaker: Send + Sync {
    /// The URL players POST their matchmaking request to.
    fn url(&self) -> Url;

    /// Its Extend match function's gRPC address, when it serves one (its settings'
    /// `grpc_addr`).
    fn match_function_url(&self) -> Option<Url> {
        None
    }
}

/// What an embedded matchmaker is given.
#[derive(Clone)]
pub struct EmbeddedMatchmakerConfig {
    /// The embedded fakes' base URL: IAM, lobby notifications, session browser and DSMC.
    pub fakes_base_url: Url,
    pub namespace: String,
    /// The IAM validator client (JWKS, revocation list, verify).
    pub iam_client: ClientCredentials,
    /// The game server client (sessions, DSMC, notifications).
    pub game_client: ClientCredentials,
    /// The scenario's `[target.matchmaker]` table, as written (the matchmaker's own format).
    pub settings: toml::Table,
}

impl fmt::Debug for EmbeddedMatchmakerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedMatchmakerConfig")
            .field("fakes_base_url", &self.fakes_base_url.as_str())
            .field("namespace", &self.namespace)
            .field("iam_client", &self.iam_client)
            .field("game_client", &self.game_client)
            .finish_non_exhaustive()
    }
}

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Starts an in-process matchmaker.
pub type MatchmakerStarter = Arc<
    dyn Fn(EmbeddedMatchmakerConfig) -> BoxFuture<Result<Box<dyn EmbeddedMatchmaker>, TargetError>>
        + Send
        + Sync,
>;

/// The starter `sim run` uses: [`start_embedded_matchmaker`].
pub fn default_matchmaker_starter() -> MatchmakerStarter {
    Arc::new(|config| Box::pin(start_embedded_matchmaker(config)))
}

/// **The embedded seam.** Starts the `matchmaker` crate in this process against the embedded
/// fakes, with an in-memory store. The scenario's `[target.matchmaker] modes` are the
/// matchmaker's `GameModeSpec`s; the first is the default mode.
pub async fn start_embedded_matchmaker(
    config: EmbeddedMatchmakerConfig,
) -> Result<Box<dyn EmbeddedMatchmaker>, TargetError> {
    let mm = matchmaker_config(&config)?;
    let handle = matchmaker::spawn(mm)
        .await
        .map_err(|e| TargetError::Matchmaker(e.to_string()))?;
    let url = Url::parse(&format!("{}/matchmaking", handle.base_url()))
        .map_err(|e| TargetError::Matchmaker(e.to_string()))?;
    let match_function_url = handle
        .grpc_url()
        .map(|u| Url::parse(&u))
        .transpose()
        .map_err(|e| TargetError::Matchmaker(e.to_string()))?;
    Ok(Box::new(EmbeddedHandle {
        url,
        match_function_url,
        _handle: handle,
    }))
}

/// The matchmaker configuration of an embedded target (in-memory store): AGS is the embedded
/// fakes, and the scenario's `[target.matchmaker] modes` are the game modes.
pub fn matchmaker_config(
    config: &EmbeddedMatchmakerConfig,
) -> Result<matchmaker::Config, TargetError> {
    // The matchmaker's own loader: its keys, its defaults, its errors.
    let mut file = matchmaker::config::FileConfig::from_table(config.settings.clone())
        .map_err(|e| TargetError::Matchmaker(format!("[target.matchmaker]: {e}")))?;
    file.addr = None;
    file.ags.base_url = Some(config.fakes_base_url.to_string());
    file.ags.client_id = Some(config.game_client.id.clone());
    file.ags.client_secret = config.game_client.secret.clone();
    file.ags.namespace = Some(config.namespace.clone());
    matchmaker::Config::resolve(matchmaker::config::Overrides::default(), file)
        .map_err(|e| TargetError::Matchmaker(format!("[target.matchmaker]: {e}")))
}

/// The in-process matchmaker; dropping it drains and stops the service.
struct EmbeddedHandle {
    url: Url,
    match_function_url: Option<Url>,
    _handle: matchmaker::Handle,
}

impl EmbeddedMatchmaker for EmbeddedHandle {
    fn url(&self) -> Url {
        self.url.clone()
    }

    fn match_function_url(&self) -> Option<Url> {
        self.match_function_url.clone()
    }
}

/// How the target is started.
#[derive(Clone)]
pub struct TargetOptions {
    /// The in-process matchmaker of a single-process embedded target.
    pub matchmaker: MatchmakerStarter,
    /// How an embedded target is laid out over processes ([`StackLayout::SINGLE`]: all here).
    pub layout: StackLayout,
    /// Bearer token for a URLs target's fakes control API (`/_fakes/stats`), which a fakes
    /// listening beyond loopback requires (`fakes serve --control-token`).
    pub fakes_control_token: Option<String>,
}

impl Default for TargetOptions {
    fn default() -> Self {
        TargetOptions {
            matchmaker: default_matchmaker_starter(),
            layout: StackLayout::SINGLE,
            fakes_control_token: None,
        }
    }
}

impl fmt::Debug for TargetOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TargetOptions").finish_non_exhaustive()
    }
}

/// An existing account (from the accounts CSV).
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    pub username: Arc<str>,
    pub password: Arc<str>,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Reads `username,password` lines; a first line `username,password` is a header; blank lines
/// and lines starting with `#` are skipped.
pub fn parse_accounts(text: &str, path: &str) -> Result<Vec<Account>, TargetError> {
    let mut accounts = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, password)) = line.split_once(',') else {
            return Err(TargetError::Accounts {
                path: path.to_owned(),
                line: i + 1,
                message: "expected username,password".to_owned(),
            });
        };
        let (user, password) = (user.trim(), password.trim());
        if accounts.is_empty() && user.eq_ignore_ascii_case("username") {
            continue;
        }
        if user.is_empty() || password.is_empty() {
            return Err(TargetError::Accounts {
                path: path.to_owned(),
                line: i + 1,
                message: "username and password must not be empty".to_owned(),
            });
        }
        accounts.push(Account {
            username: Arc::from(user),
            password: Arc::from(password),
        });
    }
    if accounts.is_empty() {
        return Err(TargetError::Accounts {
            path: path.to_owned(),
            line: 1,
            message: "no account in the file".to_owned(),
        });
    }
    Ok(accounts)
}

fn read_accounts(path: &Path) -> Result<Vec<Account>, TargetError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| TargetError::AccountsIo {
        path: name.clone(),
        source,
    })?;
    parse_accounts(&text, &name)
}

/// Where claim counters come from.
#[derive(Clone)]
enum StatsSource {
    /// An embedded fakes: read the fleet directly.
    Embedded(fakes::AppState),
    /// `GET {fakes}/_fakes/stats`, with the control token if the fakes wants one.
    Http(Url, Option<String>),
}

/// The target, ready for players.
pub struct Target {
    pub fakes_url: Url,
    /// Where matchmaking requests go: one URL, or several replicas players fail over between.
    pub matchmaker_urls: Vec<Url>,
    pub namespace: String,
    pub player_client: ClientCredentials,
    /// Creates users, checks DSMC, releases servers; `None` when the scenario gave none.
    pub game_client: Option<ClientCredentials>,
    /// Existing accounts instead of created ones.
    pub accounts: Option<Vec<Account>>,
    pub lobby_tls: Option<LobbyTls>,
    pub insecure_tls: bool,
    /// Local addresses to spread sockets over (empty: the OS chooses).
    pub sources: Vec<IpAddr>,
    /// File descriptors one searching player costs this process.
    pub fds_per_player: u64,
    pub embedded: bool,
    /// The match function the embedded target registered with fakes for match2 pools, when
    /// the scenario asked for the matchmaker's (`[target.match2] match_function`).
    pub match_function: Option<RegisteredFunction>,
    /// The control token `/_fakes/*` calls carry (a URLs target's fakes beyond loopback).
    pub fakes_control_token: Option<String>,
    stats: StatsSource,
    // Held for their lifetime: dropping them stops the servers.
    _matchmaker: Option<Box<dyn EmbeddedMatchmaker>>,
    fakes: Option<fakes::Handle>,
    /// An embedded target spread over processes.
    stack: Option<MultiStack>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("fakes_url", &self.fakes_url.as_str())
            .field("matchmaker_urls", &self.matchmaker_urls)
            .field("namespace", &self.namespace)
            .field("embedded", &self.embedded)
            .field("sources", &self.sources)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// Starts (embedded) or describes (URLs) the target.
    pub async fn start(plan: &TargetPlan, options: &TargetOptions) -> Result<Target, TargetError> {
        match plan {
            TargetPlan::Embedded(e) => Self::start_embedded(e, options).await,
            TargetPlan::Urls(u) => {
                let accounts = u.accounts.as_deref().map(read_accounts).transpose()?;
                let lobby_tls = if u.insecure_tls && u.fakes.scheme() == "https" {
                    Some(LobbyTls::insecure().map_err(|e| TargetError::Tls(e.to_string()))?)
                } else {
                    None
                };
                let mut stats = u.fakes.clone();
                stats.set_path("/_fakes/stats");
                Ok(Target {
                    sources: resolve_sources(&u.source_addresses, &u.fakes),
                    fakes_url: u.fakes.clone(),
                    matchmaker_urls: u.matchmaker.clone(),
                    namespace: u.namespace.clone(),
                    player_client: u.player_client.clone(),
                    game_client: u.game_client.clone(),
                    accounts,
                    lobby_tls,
                    insecure_tls: u.insecure_tls,
                    fds_per_player: 2,
                    embedded: false,
                    match_function: None,
                    stats: StatsSource::Http(stats, options.fakes_control_token.clone()),
                    fakes_control_token: options.fakes_control_token.clone(),
                    _matchmaker: None,
                    fakes: None,
                    stack: None,
                })
            }
        }
    }

    async fn start_embedded(
        plan: &EmbeddedPlan,
        options: &TargetOptions,
    ) -> Result<Target, TargetError> {
        let fleet = fakes::dsmc::fleet::FleetConfig {
            regions: plan
                .fleet
                .regions
                .iter()
                .map(|(name, servers)| fakes::dsmc::fleet::RegionConfig {
                    name: name.clone(),
                    servers: *servers,
                })
                .collect(),
            ready_delay: plan.fleet.ready_delay,
            ..fakes::dsmc::fleet::FleetConfig::default()
        };
        fleet
            .validate()
            .map_err(|e| TargetError::Fakes(e.to_string()))?;
        let config = fakes::FakesConfig {
            fleet,
            ..fakes::FakesConfig::default()
        };
        let credentials = |(id, secret): (&str, &str)| ClientCredentials {
            id: id.to_owned(),
            secret: Some(secret.to_owned()),
        };
        let mut template = EmbeddedMatchmakerConfig {
            // Replaced by the started fakes' URL below.
            fakes_base_url: Url::parse("http://127.0.0.1/").expect("a valid placeholder"),
            namespace: builtin::NAMESPACE.to_owned(),
            iam_client: credentials(builtin::IAM_CLIENT),
            game_client: credentials(builtin::GAME_CLIENT),
            settings: plan.matchmaker.clone(),
        };
        if plan.serve_match_function {
            // The matchmaker's own key: serve the match function too, on an ephemeral port.
            template
                .settings
                .insert("grpc_addr".to_owned(), "127.0.0.1:0".into());
        }
        let (handle, stack) = if options.layout.is_multi_process() {
            let program =
                crate::stack::this_program().map_err(|e| TargetError::Fakes(e.to_string()))?;
            let stack = MultiStack::start(options.layout, config, template.clone(), &program, None)
                .await
                .map_err(|e| TargetError::Fakes(format!("{e:#}")))?;
            (None, Some(stack))
        } else {
            let handle = fakes::spawn(config)
                .await
                .map_err(|e| TargetError::Fakes(e.to_string()))?;
            (Some(handle), None)
        };
        let (base_url, state) = match (&handle, &stack) {
            (Some(handle), _) => (handle.base_url(), Some(handle.state.clone())),
            (None, Some(stack)) => (stack.fakes.base_url(), stack.fakes.state()),
            (None, None) => return Err(TargetError::Fakes("no fakes was started".to_owned())),
        };
        let fakes_url = Url::parse(&base_url).map_err(|e| TargetError::Fakes(e.to_string()))?;
        // A fakes process is read over its stats endpoint, like a remote one.
        let stats = match &state {
            Some(state) => StatsSource::Embedded(state.clone()),
            None => {
                let mut url = fakes_url.clone();
                url.set_path("/_fakes/stats");
                StatsSource::Http(url, None)
            }
        };
        template.fakes_base_url = fakes_url.clone();
        let replica_urls = stack
            .as_ref()
            .map(MultiStack::matchmaker_urls)
            .unwrap_or_default();
        let (matchmaker, matchmaker_urls, function_urls) = if replica_urls.is_empty() {
            let matchmaker = (options.matchmaker)(template).await?;
            let url = matchmaker.url();
            let function_urls = matchmaker.match_function_url().into_iter().collect();
            (Some(matchmaker), vec![url], function_urls)
        } else {
            let function_urls = stack
                .as_ref()
                .map(MultiStack::match_function_urls)
                .unwrap_or_default();
            (None, replica_urls, function_urls)
        };
        let match_function = match (&state, plan.serve_match_function) {
            (Some(state), true) => Some(register_match_function(state, &function_urls)?),
            (None, true) => {
                return Err(TargetError::Matchmaker(
                    "match_function = \"matchmaker\" needs fakes in this process; a scenario whose chaos steps target fakes runs it as a process of its own"
                        .to_owned(),
                ));
            }
            (_, false) => None,
        };
        // With lobby shards the lobby sockets' server ends live in other processes.
        let fds_per_player = if options.layout.lobby_shards > 0 {
            2
        } else {
            4
        };
        Ok(Target {
            sources: resolve_sources(&plan.source_addresses, &fakes_url),
            matchmaker_urls,
            fakes_url,
            namespace: builtin::NAMESPACE.to_owned(),
            player_client: ClientCredentials {
                id: builtin::PLAYER_CLIENT_ID.to_owned(),
                secret: None,
            },
            game_client: Some(credentials(builtin::GAME_CLIENT)),
            accounts: None,
            lobby_tls: None,
            insecure_tls: false,
            // Both ends of the lobby socket and of the matchmaking request live here (fewer
            // when the stack is spread over processes).
            fds_per_player,
            embedded: true,
            match_function,
            fakes_control_token: None,
            stats,
            _matchmaker: matchmaker,
            fakes: handle,
            stack,
        })
    }

    /// The embedded stack's other processes (lobby shards, matchmaker replicas, Redis) with
    /// their figures so far; empty for a single-process or external target.
    pub fn stack_processes(&self) -> Vec<ProcessReport> {
        self.stack
            .as_ref()
            .map(|stack| {
                stack
                    .processes()
                    .into_iter()
                    .map(|p| ProcessReport::of_pid(p.role, p.pid))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The multi-process stack's processes and links, for chaos steps (none for a single
    /// process or an external target).
    pub fn stack_control(&self) -> Option<std::sync::Arc<crate::stack::control::StackControl>> {
        self.stack
            .as_ref()
            .map(|s| std::sync::Arc::clone(&s.control))
    }

    /// Reads the fakes' DSMC claim counters; cheap to clone into a task.
    pub fn claims_reader(&self) -> ClaimsReader {
        ClaimsReader(self.stats.clone())
    }

    /// `PUT /_fakes/faults/seed`: the fakes' fault decisions follow the scenario's seed.
    pub fn faults_seed_url(&self) -> Url {
        let mut url = self.faults_url();
        url.set_path("/_fakes/faults/seed");
        url
    }

    /// The fakes' control API base (`/_fakes/faults`).
    pub fn faults_url(&self) -> Url {
        let mut url = self.fakes_url.clone();
        url.set_path("/_fakes/faults");
        url
    }

    /// Stops embedded servers.
    pub async fn shutdown(mut self) {
        self._matchmaker = None;
        if let Some(handle) = self.fakes.take() {
            let _ = handle.shutdown().await;
        }
        if let Some(stack) = self.stack.take() {
            // Replicas and shards first (they hold sockets to fakes), then fakes and Redis.
            let MultiStack { fakes, control, .. } = stack;
            control.heal_all();
            for slot in &control.replicas {
                let _ = control
                    .kill(crate::stack::control::ProcessName::Replica(slot.index))
                    .await;
            }
            if control.fakes.is_some() {
                let _ = control
                    .kill(crate::stack::control::ProcessName::Fakes)
                    .await;
            }
            fakes.shutdown().await;
            drop(control);
        }
    }
}

/// A match function the embedded target registered with its fakes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RegisteredFunction {
    /// The name pools give as `match_function`.
    pub name: String,
    /// Its gRPC addresses (one per matchmaker replica).
    pub urls: Vec<String>,
}

/// Registers the matchmaker's match function (served at `urls`) with the embedded fakes as
/// [`crate::scenario::MATCHMAKER_FUNCTION`], called with the fakes' own caller token.
fn register_match_function(
    state: &fakes::AppState,
    urls: &[Url],
) -> Result<RegisteredFunction, TargetError> {
    if urls.is_empty() {
        return Err(TargetError::Matchmaker(
            "the scenario asks for the matchmaker's match function, but the matchmaker serves none"
                .to_owned(),
        ));
    }
    let urls: Vec<String> = urls
        .iter()
        .map(|u| u.as_str().trim_end_matches('/').to_owned())
        .collect();
    let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
    let function = fakes::match2::remote::RemoteMatchFunction::balanced(&refs)
        .map_err(|e| TargetError::Matchmaker(format!("match function: {e}")))?
        .with_bearer(fakes::match2::caller_token::CallerToken::of_match2(state));
    let name = crate::scenario::MATCHMAKER_FUNCTION;
    state.match2.register_function(name, Arc::new(function));
    Ok(RegisteredFunction {
        name: name.to_owned(),
        urls,
    })
}

/// Reads DSMC claim counters from an embedded fakes directly, or over `GET /_fakes/stats`.
#[derive(Clone)]
pub struct ClaimsReader(StatsSource);

impl fmt::Debug for ClaimsReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaimsReader").finish_non_exhaustive()
    }
}

impl ClaimsReader {
    /// Counters since the fakes started; `None` when they cannot be read.
    pub async fn read(&self, http: &reqwest::Client) -> Option<ClaimCounts> {
        let dsmc = match &self.0 {
            StatsSource::Embedded(state) => DsmcReport::of(&state.dsmc.stats()),
            StatsSource::Http(url, token) => {
                let mut request = http.get(url.clone());
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                let response = request.send().await.ok()?;
                if !response.status().is_success() {
                    return None;
                }
                response.json::<StatsReport>().await.ok()?.dsmc
            }
        };
        Some(claim_counts(&dsmc.claims))
    }
}

/// The claim counters of the fakes' `/_fakes/stats` DSMC report.
pub fn claim_counts(claims: &ClaimReport) -> ClaimCounts {
    ClaimCounts {
        attempted: claims.attempted,
        succeeded: claims.succeeded,
        not_found: claims.failed.not_found,
        conflict: claims.failed.conflict,
        not_ready: claims.failed.not_ready,
        unreachable: claims.failed.unreachable,
    }
}

/// Which source addresses sockets bind to.
pub fn resolve_sources(choice: &SourceAddresses, target: &Url) -> Vec<IpAddr> {
    let loopback = match target.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d == "localhost",
        _ => false,
    };
    let spread = |n: u8| -> Vec<IpAddr> {
        (0..n)
            .map(|i| {
                let [a, b, c, d] = FIRST_SOURCE.octets();
                IpAddr::V4(Ipv4Addr::new(a, b, c, d.saturating_add(i)))
            })
            .collect()
    };
    match choice {
        // Linux routes all of 127.0.0.0/8 to loopback; elsewhere only 127.0.0.1 is certain.
        SourceAddresses::Auto if loopback && cfg!(target_os = "linux") => {
            spread(crate::scenario::DEFAULT_SOURCE_ADDRESSES)
        }
        SourceAddresses::Auto => Vec::new(),
        SourceAddresses::Count(n) if loopback => spread(*n),
        SourceAddresses::Count(_) => Vec::new(),
        SourceAddresses::List(list) => list.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_csv() {
        let accounts = parse_accounts(
            "username,password\n# comment\n\nalice, pw1\nbob,pw,2\n",
            "a.csv",
        )
        .expect("valid");
        assert_eq!(accounts.len(), 2);
        assert_eq!(&*accounts[1].password, "pw,2");
        let err = parse_accounts("alice\n", "a.csv").expect_err("no comma");
        assert_eq!(err.to_string(), "a.csv:1: expected username,password");
        assert!(parse_accounts("# nothing\n", "a.csv").is_err());
    }

    #[test]
    fn claims_of_the_fakes_dsmc_report() {
        let claims = ClaimReport {
            attempted: 4,
            succeeded: 3,
            failed: fakes::dsmc::fleet::ClaimFailures {
                not_found: 0,
                conflict: 0,
                not_ready: 1,
                unreachable: 2,
            },
        };
        let c = claim_counts(&claims);
        assert_eq!((c.attempted, c.succeeded, c.not_ready), (4, 3, 1));
        assert_eq!((c.failed(), c.unreachable), (3, 2));
    }

    #[test]
    fn sources_spread_only_on_loopback() {
        let local = Url::parse("http://127.0.0.1:8080").expect("url");
        let remote = Url::parse("http://10.1.2.3:8080").expect("url");
        let four = resolve_sources(&SourceAddresses::Count(4), &local);
        assert_eq!(four.len(), 4);
        assert_eq!(four[3], IpAddr::V4(Ipv4Addr::new(127, 0, 0, 14)));
        assert!(resolve_sources(&SourceAddresses::Count(4), &remote).is_empty());
        assert!(resolve_sources(&SourceAddresses::Auto, &remote).is_empty());
    }
}
