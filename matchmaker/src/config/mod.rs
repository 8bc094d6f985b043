//! Configuration: the [`Config`] a matchmaker runs with, and the one place it is assembled from
//! its layers.
//!
//! Precedence, highest first: command-line flags > environment variables > a TOML file >
//! defaults. Flags and environment variables are one layer, [`Overrides`] (clap derive, `env` on
//! every flag, so clap already applies "flag over variable"); the file is [`FileConfig`], whose
//! tables all refuse unknown keys, so a typo is an error instead of a silently ignored setting.
//! [`Config::resolve`] merges the two, applies defaults and validates — nowhere else merges.
//!
//! The AccelByte settings use the names the AccelByte SDKs use: `AB_BASE_URL`, `AB_CLIENT_ID`,
//! `AB_CLIENT_SECRET`, `AB_NAMESPACE`. Everything else is `MATCHMAKER_*`. The client must be the
//! game's confidential client (see [`crate::ags`] for the permissions it needs).
//!
//! The game-mode rules live in [`modes`] (re-exported here). Nothing below the binary reads the
//! process environment: `main` parses [`Overrides`] and reads the file, then hands a [`Config`]
//! down; tests and embedders build a [`Config`] directly ([`Config::new`]).
//!
//! The file, in full (every key optional; see `matchmaker/examples/*.toml`):
//!
//! ```toml
//! addr = "127.0.0.1:8090"
//! grpc_addr = "0.0.0.0:6565"  # absent: no match-function gRPC server (see crate::extend)
//! grpc_auth = true             # callers' bearer tokens checked (crate::extend::auth)
//! default_mode = "1v1"
//! shutdown_grace = "20s"
//!
//! [ags]            # AB_BASE_URL, AB_CLIENT_ID, AB_CLIENT_SECRET, AB_NAMESPACE
//! base_url = "http://127.0.0.1:8080"
//! client_id = "matchbench-game"
//! client_secret = "matchbench-game-secret"
//! namespace = "matchbench"
//! request_timeout = "10s"
//!
//! [redis]          # absent: the in-memory store
//! url = "redis://127.0.0.1:6379"
//! prefix = "matchbench"
//! retention = "10m"
//!
//! [engine]
//! lease = "30s"
//! renew_every = "10s"
//! reap_every = "1s"
//! tick = "1s"
//! scan_limit = 10000
//!
//! [auth]
//! jwks_refresh = "1m"
//! jwks_refetch_interval = "10s"
//! revocation_refresh = "1m"
//! clock_skew = "30s"
//! role_cache_ttl = "5m"
//! require_comply = false
//!
//! [pipeline]
//! topic = "NOTIF"
//! deployment = ""
//! claim_attempts = 10
//! claim_deadline = "30s"
//! claim_backoff_initial = "100ms"
//! claim_backoff_max = "2s"
//!
//! [http]
//! max_body_bytes = 1048576
//! max_waiting = 100000
//! wait_poll = "2s"
//!
//! [[modes]]
//! name = "1v1"
//! teams = 2
//! team_size = 1
//! ```

pub mod modes;

use std::net::SocketAddr;
use std::time::Duration;

use accelbyte::client::Config as AbConfig;
use serde::Deserialize;
use url::Url;

pub use modes::{
    ConfigError, DEFAULT_FILL_AFTER, DEFAULT_MAX_ATTEMPTS, DEFAULT_REGION_WAIT, DEFAULT_TIMEOUT,
    Format, FreeForAllSpec, GameMode, GameModeSpec, Modes, SkillWindow, SkillWindowSpec,
};

use crate::ags::DEFAULT_REQUEST_TIMEOUT;
use crate::auth::AuthConfig;
use crate::engine::EngineConfig;
use crate::http::HttpConfig;
use crate::pipeline::PipelineConfig;
use crate::store::RedisConfig;

/// Where `matchmaker serve` listens by default.
pub const DEFAULT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8090);
/// How long a shutdown waits for matches in flight by default.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Everything a matchmaker runs with, validated.
#[derive(Clone)]
pub struct Config {
    /// Where `serve` listens (the library's `spawn` always binds 127.0.0.1:0).
    pub addr: SocketAddr,
    /// `Some`: `serve` also serves the AGS Extend match function ([`crate::extend`]) here.
    pub grpc_addr: Option<SocketAddr>,
    /// Whether the match function checks its callers' bearer tokens against IAM (on unless
    /// turned off: `--grpc-auth false`, `PLUGIN_GRPC_SERVER_AUTH_ENABLED=false`, `grpc_auth`).
    pub grpc_auth: bool,
    /// AGS (or fakes): base URL, the game's confidential client, the game namespace.
    pub ags: AbConfig,
    /// Timeout of one AGS request.
    pub ags_timeout: Duration,
    /// `Some`: tickets live in Redis, shared with other replicas. `None`: in this process.
    pub redis: Option<RedisConfig>,
    pub modes: Modes,
    /// The mode of a request that names none (the tutorial's client sends no body).
    pub default_mode: String,
    pub engine: EngineConfig,
    pub auth: AuthConfig,
    pub pipeline: PipelineConfig,
    pub http: HttpConfig,
    /// How long a shutdown lets matches in flight finish before handing them back.
    pub shutdown_grace: Duration,
}

// Hand-written: the Redis URL may carry a password, and the client secret must not be logged.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("addr", &self.addr)
            .field("grpc_addr", &self.grpc_addr)
            .field("grpc_auth", &self.grpc_auth)
            .field("ags", &self.ags)
            .field("redis", &self.redis.as_ref().map(|r| redact_url(&r.url)))
            .field(
                "modes",
                &self.modes.iter().map(|m| &m.name).collect::<Vec<_>>(),
            )
            .field("default_mode", &self.default_mode)
            .field("engine", &self.engine)
            .field("auth", &self.auth)
            .field("pipeline", &self.pipeline)
            .field("http", &self.http)
            .field("shutdown_grace", &self.shutdown_grace)
            .finish()
    }
}

/// `redis://user:secret@host` → `redis://user:***@host`.
pub fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "<unparsable url>".to_owned(),
    }
}

impl Config {
    /// Defaults for everything but AGS: the in-memory store, the tutorial's 1v1.
    pub fn new(ags: AbConfig) -> Self {
        Config {
            addr: DEFAULT_ADDR,
            grpc_addr: None,
            grpc_auth: true,
            ags,
            ags_timeout: DEFAULT_REQUEST_TIMEOUT,
            redis: None,
            modes: Modes::default(),
            default_mode: "1v1".to_owned(),
            engine: EngineConfig::default(),
            auth: AuthConfig::default(),
            pipeline: PipelineConfig::default(),
            http: HttpConfig::default(),
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }

    /// Checks every part and that they agree with each other.
    pub fn validate(&self) -> Result<(), LoadError> {
        let invalid = |field: &str, why: String| LoadError::Invalid {
            field: field.to_owned(),
            why,
        };
        if self.ags.client_id.is_empty() {
            return Err(invalid("ags.client_id", "must not be empty".into()));
        }
        if self.ags.namespace.is_empty() {
            return Err(invalid("ags.namespace", "must not be empty".into()));
        }
        if self.modes.get(&self.default_mode).is_none() {
            let known: Vec<&str> = self.modes.iter().map(|m| m.name.as_str()).collect();
            return Err(invalid(
                "default_mode",
                format!(
                    "{} is not a configured mode ({})",
                    self.default_mode,
                    known.join(", ")
                ),
            ));
        }
        self.engine.validate()?;
        self.auth.validate().map_err(|why| invalid("auth", why))?;
        self.pipeline
            .validate()
            .map_err(|why| invalid("pipeline", why))?;
        self.http.validate().map_err(|why| invalid("http", why))?;
        if let Some(redis) = &self.redis {
            if redis.prefix.is_empty() {
                return Err(invalid("redis.prefix", "must not be empty".into()));
            }
        }
        if self.ags_timeout.is_zero() {
            return Err(invalid("ags.request_timeout", "must be positive".into()));
        }
        Ok(())
    }

    /// Merges flags/environment over the file over the defaults, then validates.
    pub fn resolve(flags: Overrides, file: FileConfig) -> Result<Config, LoadError> {
        let FileConfig {
            addr,
            grpc_addr,
            grpc_auth,
            default_mode,
            shutdown_grace,
            shutdown_grace_secs,
            ags,
            redis,
            engine,
            auth,
            pipeline,
            http,
            modes,
            deprecated: _,
        } = file;

        let base_url = match flags.base_url {
            Some(url) => url,
            None => {
                let text = ags.base_url.ok_or_else(|| {
                    missing(
                        "the AGS base URL",
                        "--base-url",
                        "AB_BASE_URL",
                        "ags.base_url",
                    )
                })?;
                Url::parse(&text).map_err(|e| LoadError::Invalid {
                    field: "ags.base_url".into(),
                    why: e.to_string(),
                })?
            }
        };
        let client_id = flags.client_id.or(ags.client_id).ok_or_else(|| {
            missing(
                "the game client id",
                "--client-id",
                "AB_CLIENT_ID",
                "ags.client_id",
            )
        })?;
        let client_secret = flags.client_secret.or(ags.client_secret);
        let namespace = flags.namespace.or(ags.namespace).ok_or_else(|| {
            missing(
                "the game namespace",
                "--namespace",
                "AB_NAMESPACE",
                "ags.namespace",
            )
        })?;
        let mut config = Config::new(AbConfig::new(base_url, client_id, client_secret, namespace));

        if let Some(addr) = flags.addr.or(addr) {
            config.addr = addr;
        }
        config.grpc_addr = flags.grpc_addr.or(grpc_addr);
        config.grpc_auth = flags.grpc_auth.or(grpc_auth).unwrap_or(true);
        set(
            &mut config.ags_timeout,
            "ags.request_timeout",
            ags.request_timeout,
            ags.request_timeout_secs,
        )?;
        match flags.shutdown_grace_secs {
            Some(s) => config.shutdown_grace = secs("--shutdown-grace-secs", s)?,
            None => set(
                &mut config.shutdown_grace,
                "shutdown_grace",
                shutdown_grace,
                shutdown_grace_secs,
            )?,
        }

        if let Some(url) = flags.redis_url.or(redis.url) {
            let mut r = RedisConfig::new(url);
            if let Some(prefix) = flags.redis_prefix.or(redis.prefix) {
                r.prefix = prefix;
            }
            set(
                &mut r.retention,
                "redis.retention",
                redis.retention,
                redis.retention_secs,
            )?;
            set(
                &mut r.response_timeout,
                "redis.response_timeout",
                redis.response_timeout,
                redis.response_timeout_secs,
            )?;
            config.redis = Some(r);
        }

        if !modes.is_empty() {
            config.modes = Modes::from_specs(modes)?;
            if config.modes.get(&config.default_mode).is_none() {
                // Without "1v1", default to the first mode by name unless told otherwise.
                if let Some(first) = config.modes.iter().next() {
                    config.default_mode = first.name.clone();
                }
            }
        }
        if let Some(mode) = flags.default_mode.or(default_mode) {
            config.default_mode = mode;
        }

        let e = &mut config.engine;
        let lease = match flags.lease_secs {
            Some(s) => Some(secs("--lease-secs", s)?),
            None => pick("engine.lease", engine.lease, engine.lease_secs)?,
        };
        if let Some(lease) = lease {
            e.lease = lease;
            // Renew three times per lease unless told otherwise.
            e.renew_every = e.lease / 3;
        }
        set(
            &mut e.renew_every,
            "engine.renew_every",
            engine.renew_every,
            engine.renew_every_secs,
        )?;
        set(
            &mut e.reap_every,
            "engine.reap_every",
            engine.reap_every,
            engine.reap_every_secs,
        )?;
        set(&mut e.tick, "engine.tick", engine.tick, engine.tick_secs)?;
        if let Some(n) = engine.scan_limit {
            e.scan_limit = n;
        }
        if let Some(n) = engine.max_rematch {
            e.max_rematch = n;
        }

        let a = &mut config.auth;
        set(
            &mut a.jwks_refresh,
            "auth.jwks_refresh",
            auth.jwks_refresh,
            auth.jwks_refresh_secs,
        )?;
        set(
            &mut a.jwks_refetch_interval,
            "auth.jwks_refetch_interval",
            auth.jwks_refetch_interval,
            auth.jwks_refetch_interval_secs,
        )?;
        set(
            &mut a.revocation_refresh,
            "auth.revocation_refresh",
            auth.revocation_refresh,
            auth.revocation_refresh_secs,
        )?;
        set(
            &mut a.retry_after_failure,
            "auth.retry_after_failure",
            auth.retry_after_failure,
            auth.retry_after_failure_secs,
        )?;
        match flags.clock_skew_secs {
            Some(s) => a.clock_skew = secs("--clock-skew-secs", s)?,
            None => set(
                &mut a.clock_skew,
                "auth.clock_skew",
                auth.clock_skew,
                auth.clock_skew_secs,
            )?,
        }
        set(
            &mut a.role_cache_ttl,
            "auth.role_cache_ttl",
            auth.role_cache_ttl,
            auth.role_cache_ttl_secs,
        )?;
        if let Some(require) = auth.require_comply {
            a.require_comply = require;
        }

        let p = &mut config.pipeline;
        for (slot, value) in [
            (&mut p.topic, pipeline.topic),
            (&mut p.deployment, flags.deployment.or(pipeline.deployment)),
            (&mut p.game_version, pipeline.game_version),
            (&mut p.map_name, pipeline.map_name),
            (&mut p.session_type, pipeline.session_type),
            (&mut p.username, pipeline.username),
            (&mut p.password, pipeline.password),
        ] {
            if let Some(value) = value {
                *slot = value;
            }
        }
        if let Some(n) = flags.claim_attempts.or(pipeline.claim_attempts) {
            p.claim_attempts = n;
        }
        match flags.claim_deadline_secs {
            Some(s) => p.claim_deadline = secs("--claim-deadline-secs", s)?,
            None => set(
                &mut p.claim_deadline,
                "pipeline.claim_deadline",
                pipeline.claim_deadline,
                pipeline.claim_deadline_secs,
            )?,
        }
        set(
            &mut p.claim_backoff_initial,
            "pipeline.claim_backoff_initial",
            pipeline.claim_backoff_initial,
            pipeline.claim_backoff_initial_secs,
        )?;
        set(
            &mut p.claim_backoff_max,
            "pipeline.claim_backoff_max",
            pipeline.claim_backoff_max,
            pipeline.claim_backoff_max_secs,
        )?;
        set(
            &mut p.claim_not_found_grace,
            "pipeline.claim_not_found_grace",
            pipeline.claim_not_found_grace,
            pipeline.claim_not_found_grace_secs,
        )?;
        if let Some(n) = pipeline.notify_attempts {
            p.notify_attempts = n;
        }
        set(
            &mut p.cleanup_timeout,
            "pipeline.cleanup_timeout",
            pipeline.cleanup_timeout,
            pipeline.cleanup_timeout_secs,
        )?;

        let h = &mut config.http;
        if let Some(n) = http.max_body_bytes {
            h.max_body_bytes = n;
        }
        if let Some(n) = http.max_waiting {
            h.max_waiting = n;
        }
        set(
            &mut h.wait_poll,
            "http.wait_poll",
            http.wait_poll,
            http.wait_poll_secs,
        )?;
        set(
            &mut h.searching_timeout,
            "http.searching_timeout",
            http.searching_timeout,
            http.searching_timeout_secs,
        )?;
        set(
            &mut h.body_timeout,
            "http.body_timeout",
            http.body_timeout,
            http.body_timeout_secs,
        )?;
        set(
            &mut h.header_timeout,
            "http.header_timeout",
            http.header_timeout,
            http.header_timeout_secs,
        )?;
        set(
            &mut h.idle_timeout,
            "http.idle_timeout",
            http.idle_timeout,
            http.idle_timeout_secs,
        )?;

        config.validate()?;
        Ok(config)
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file is not valid TOML or has unknown keys (the message names line and key).
    #[error("invalid config file: {0}")]
    File(toml::de::Error),
    #[error("missing {what}: pass {flag}, set {env} or put {key} in the config file")]
    Missing {
        what: &'static str,
        flag: &'static str,
        env: &'static str,
        key: &'static str,
    },
    #[error("{field}: {why}")]
    Invalid { field: String, why: String },
    #[error(transparent)]
    Rules(#[from] ConfigError),
}

impl From<toml::de::Error> for LoadError {
    fn from(e: toml::de::Error) -> Self {
        LoadError::File(e)
    }
}

fn missing(
    what: &'static str,
    flag: &'static str,
    env: &'static str,
    key: &'static str,
) -> LoadError {
    LoadError::Missing {
        what,
        flag,
        env,
        key,
    }
}

fn secs(field: &str, value: f64) -> Result<Duration, LoadError> {
    Duration::try_from_secs_f64(value).map_err(|_| LoadError::Invalid {
        field: field.to_owned(),
        why: format!("{value} is not a non-negative number of seconds"),
    })
}

/// A file's duration field, under its new key or (a `FileConfig` built in code, not settled)
/// its deprecated `_secs` one.
fn pick(
    field: &str,
    new: Option<Duration>,
    old: Option<f64>,
) -> Result<Option<Duration>, LoadError> {
    durations::pick(
        field,
        new,
        &format!("{field}_secs"),
        old,
        durations::Unit::Secs,
    )
    .map(|(value, _)| value)
    .map_err(|e| LoadError::Invalid {
        field: e.field().to_owned(),
        why: e.to_string(),
    })
}

fn set(
    slot: &mut Duration,
    field: &str,
    new: Option<Duration>,
    old: Option<f64>,
) -> Result<(), LoadError> {
    if let Some(value) = pick(field, new, old)? {
        *slot = value;
    }
    Ok(())
}

/// The flags of `matchmaker serve`, each also read from an environment variable (flag wins).
/// Every field is optional: what is unset comes from the file, then the defaults.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct Overrides {
    /// Address to listen on [default: 127.0.0.1:8090].
    #[arg(long, env = "MATCHMAKER_ADDR")]
    pub addr: Option<SocketAddr>,
    /// Also serve the AGS Extend match function (gRPC) on this address; AGS Extend expects
    /// port 6565 [default: off].
    #[arg(long, env = "MATCHMAKER_GRPC_ADDR")]
    pub grpc_addr: Option<SocketAddr>,
    /// Check the match function's callers' bearer tokens against IAM (true/false; the name of
    /// AccelByte's Extend samples' switch) [default: true].
    #[arg(long, env = "PLUGIN_GRPC_SERVER_AUTH_ENABLED", value_parser = clap::builder::BoolishValueParser::new())]
    pub grpc_auth: Option<bool>,
    /// AGS (or fakes) base URL, without a service path.
    #[arg(long, env = "AB_BASE_URL")]
    pub base_url: Option<Url>,
    /// The game's confidential IAM client.
    #[arg(long, env = "AB_CLIENT_ID")]
    pub client_id: Option<String>,
    /// The game client's secret.
    #[arg(long, env = "AB_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    /// The game namespace.
    #[arg(long, env = "AB_NAMESPACE")]
    pub namespace: Option<String>,
    /// Redis URL; without one, tickets live in this process (in-memory store).
    #[arg(long, env = "MATCHMAKER_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key [default: matchbench].
    #[arg(long, env = "MATCHMAKER_REDIS_PREFIX")]
    pub redis_prefix: Option<String>,
    /// Game mode of requests that name none [default: 1v1].
    #[arg(long, env = "MATCHMAKER_DEFAULT_MODE")]
    pub default_mode: Option<String>,
    /// DSMC deployment to register sessions in [default: the namespace's default].
    #[arg(long, env = "MATCHMAKER_DEPLOYMENT")]
    pub deployment: Option<String>,
    /// How long a claimed match holds its tickets without renewal, in seconds [default: 30].
    #[arg(long, env = "MATCHMAKER_LEASE_SECS")]
    pub lease_secs: Option<f64>,
    /// How long shutdown lets matches in flight finish, in seconds [default: 20].
    #[arg(long, env = "MATCHMAKER_SHUTDOWN_GRACE_SECS")]
    pub shutdown_grace_secs: Option<f64>,
    /// DSMC claim attempts per match [default: 10].
    #[arg(long, env = "MATCHMAKER_CLAIM_ATTEMPTS")]
    pub claim_attempts: Option<u32>,
    /// Seconds after the DSMC register after which claiming gives up [default: 30].
    #[arg(long, env = "MATCHMAKER_CLAIM_DEADLINE_SECS")]
    pub claim_deadline_secs: Option<f64>,
    /// Tolerated clock skew for token `exp`/`nbf`, in seconds (at most 300) [default: 30].
    #[arg(long, env = "MATCHMAKER_CLOCK_SKEW_SECS")]
    pub clock_skew_secs: Option<f64>,
}

/// The TOML file. Every key is optional; unknown keys are refused.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub addr: Option<SocketAddr>,
    pub grpc_addr: Option<SocketAddr>,
    pub grpc_auth: Option<bool>,
    pub default_mode: Option<String>,
    #[serde(default, with = "durations::serde_text::option")]
    pub shutdown_grace: Option<Duration>,
    /// Deprecated spelling of `shutdown_grace` (seconds).
    pub shutdown_grace_secs: Option<f64>,
    #[serde(default)]
    pub ags: AgsFile,
    #[serde(default)]
    pub redis: RedisFile,
    #[serde(default)]
    pub engine: EngineFile,
    #[serde(default)]
    pub auth: AuthFile,
    #[serde(default)]
    pub pipeline: PipelineFile,
    #[serde(default)]
    pub http: HttpFile,
    #[serde(default)]
    pub modes: Vec<GameModeSpec>,
    /// The deprecated keys the file used (filled by [`FileConfig::from_toml`] and
    /// [`FileConfig::from_table`], which move their values to the new fields).
    #[serde(skip)]
    pub deprecated: Vec<durations::Deprecation>,
}

impl FileConfig {
    /// Parses a config file's text.
    pub fn from_toml(text: &str) -> Result<Self, LoadError> {
        let mut file: Self = toml::from_str(text)?;
        file.settle()?;
        Ok(file)
    }

    /// Reads an already parsed table (e.g. a `[matchmaker]` table embedded in another file).
    pub fn from_table(table: toml::Table) -> Result<Self, LoadError> {
        let mut file: Self = toml::Value::Table(table).try_into()?;
        file.settle()?;
        Ok(file)
    }

    /// Moves every deprecated `*_secs` value to its new field (`lease_secs = 5` →
    /// `lease = "5s"`), refusing a field given both ways, and records the deprecations.
    pub fn settle(&mut self) -> Result<(), LoadError> {
        let mut notes = Vec::new();
        let mut one = |path: &str, new: &mut Option<Duration>, old: &mut Option<f64>| {
            let (value, note) = durations::pick(
                path,
                *new,
                &format!("{path}_secs"),
                old.take(),
                durations::Unit::Secs,
            )
            .map_err(|e| LoadError::Invalid {
                field: e.field().to_owned(),
                why: e.to_string(),
            })?;
            *new = value;
            notes.extend(note);
            Ok::<_, LoadError>(())
        };
        one(
            "shutdown_grace",
            &mut self.shutdown_grace,
            &mut self.shutdown_grace_secs,
        )?;
        let a = &mut self.ags;
        one(
            "ags.request_timeout",
            &mut a.request_timeout,
            &mut a.request_timeout_secs,
        )?;
        let r = &mut self.redis;
        one("redis.retention", &mut r.retention, &mut r.retention_secs)?;
        one(
            "redis.response_timeout",
            &mut r.response_timeout,
            &mut r.response_timeout_secs,
        )?;
        let e = &mut self.engine;
        one("engine.lease", &mut e.lease, &mut e.lease_secs)?;
        one(
            "engine.renew_every",
            &mut e.renew_every,
            &mut e.renew_every_secs,
        )?;
        one(
            "engine.reap_every",
            &mut e.reap_every,
            &mut e.reap_every_secs,
        )?;
        one("engine.tick", &mut e.tick, &mut e.tick_secs)?;
        let a = &mut self.auth;
        one(
            "auth.jwks_refresh",
            &mut a.jwks_refresh,
            &mut a.jwks_refresh_secs,
        )?;
        one(
            "auth.jwks_refetch_interval",
            &mut a.jwks_refetch_interval,
            &mut a.jwks_refetch_interval_secs,
        )?;
        one(
            "auth.revocation_refresh",
            &mut a.revocation_refresh,
            &mut a.revocation_refresh_secs,
        )?;
        one(
            "auth.retry_after_failure",
            &mut a.retry_after_failure,
            &mut a.retry_after_failure_secs,
        )?;
        one("auth.clock_skew", &mut a.clock_skew, &mut a.clock_skew_secs)?;
        one(
            "auth.role_cache_ttl",
            &mut a.role_cache_ttl,
            &mut a.role_cache_ttl_secs,
        )?;
        let p = &mut self.pipeline;
        one(
            "pipeline.claim_deadline",
            &mut p.claim_deadline,
            &mut p.claim_deadline_secs,
        )?;
        one(
            "pipeline.claim_backoff_initial",
            &mut p.claim_backoff_initial,
            &mut p.claim_backoff_initial_secs,
        )?;
        one(
            "pipeline.claim_backoff_max",
            &mut p.claim_backoff_max,
            &mut p.claim_backoff_max_secs,
        )?;
        one(
            "pipeline.claim_not_found_grace",
            &mut p.claim_not_found_grace,
            &mut p.claim_not_found_grace_secs,
        )?;
        one(
            "pipeline.cleanup_timeout",
            &mut p.cleanup_timeout,
            &mut p.cleanup_timeout_secs,
        )?;
        let h = &mut self.http;
        one("http.wait_poll", &mut h.wait_poll, &mut h.wait_poll_secs)?;
        one(
            "http.searching_timeout",
            &mut h.searching_timeout,
            &mut h.searching_timeout_secs,
        )?;
        one(
            "http.body_timeout",
            &mut h.body_timeout,
            &mut h.body_timeout_secs,
        )?;
        one(
            "http.header_timeout",
            &mut h.header_timeout,
            &mut h.header_timeout_secs,
        )?;
        one(
            "http.idle_timeout",
            &mut h.idle_timeout,
            &mut h.idle_timeout_secs,
        )?;
        for (i, mode) in self.modes.iter_mut().enumerate() {
            let more = mode
                .settle(&format!("modes[{i}]."))
                .map_err(|e| LoadError::Invalid {
                    field: e.field().to_owned(),
                    why: e.to_string(),
                })?;
            notes.extend(more);
        }
        self.deprecated.extend(notes);
        Ok(())
    }
}

/// `[ags]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgsFile {
    pub base_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub namespace: Option<String>,
    #[serde(default, with = "durations::serde_text::option")]
    pub request_timeout: Option<Duration>,
    /// Deprecated spelling of `request_timeout` (seconds).
    pub request_timeout_secs: Option<f64>,
}

/// `[redis]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisFile {
    pub url: Option<String>,
    pub prefix: Option<String>,
    #[serde(default, with = "durations::serde_text::option")]
    pub retention: Option<Duration>,
    /// Deprecated spelling of `retention` (seconds).
    pub retention_secs: Option<f64>,
    #[serde(default, with = "durations::serde_text::option")]
    pub response_timeout: Option<Duration>,
    /// Deprecated spelling of `response_timeout` (seconds).
    pub response_timeout_secs: Option<f64>,
}

/// `[engine]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineFile {
    #[serde(default, with = "durations::serde_text::option")]
    pub lease: Option<Duration>,
    /// Deprecated spelling of `lease` (seconds).
    pub lease_secs: Option<f64>,
    #[serde(default, with = "durations::serde_text::option")]
    pub renew_every: Option<Duration>,
    /// Deprecated spelling of `renew_every` (seconds).
    pub renew_every_secs: Option<f64>,
    #[serde(default, with = "durations::serde_text::option")]
    pub reap_every: Option<Duration>,
    /// Deprecated spelling of `reap_every` (seconds).
    pub reap_every_secs: Option<f64>,
    #[serde(default, with = "durations::serde_text::option")]
    pub tick: Option<Duration>,
    /// Deprecated spelling of `tick` (seconds).
    pub tick_secs: Option<f64>,
    pub scan_limit: Option<usize>,
    pub max_rematch: Option<u32>,
}

/// `[auth]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFile {
    #[serde(default, with = "durations::serde_text::option")]
    pub jwks_refresh: Option<Duration>,
    /// Deprecated spelling of `jwks_refresh` (seconds).
    pub jwks_refresh_secs: Option<f64>,
    #[serde(default, with = "durations::serde_text::option")]
    pub jwks_refetch_interval: Option<Duration>,
    /// Deprecated spelling of `jwks_refetch_interval` (seconds).
    pub jwks_refetch_interval_secs: Option<f64>,
    #[serde(default, with = "durations::serde_text::option")]
    pub revocation_refresh: Option<Duration>,
    /// Deprecated spelling of `revocation_refresh` (seconds).
    pub revocation_refresh_secs: Option<f64>,
    #[serde(default, with = "durations::serde_text::option")]
    pub retry_after_failure: Option<Duration>,
    /// Deprecated spelling of `retry_after_failure` (seconds).
    pub retry_after_failure_secs: Option<f64>,
    #[serde(default, with = "durations::serde_text::option")]
    pub clock_skew: Option<Duration>,
    /// Deprecated spelling of `clock_skew` (seconds).
    pub clock_skew_secs: Option<f64>,
    #[serde(default, with = "durations::serde_text::option")]
    pub role_cache_ttl: Option<Duration>,
    /// Deprecated spelling of `role_cache_ttl` (seconds).
    pub role_cache_ttl_secs: Option<f64>,
    pub require_comply: Option<bool>,
}

/// `[pipeline]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineFile {
    pub topic: Option<String>,
    pub deployment: Option<String>,
    pub game_version: Option<String>,
    pub map_name: Option<String>,
    pub session_type: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub claim_attempts: Option<u32>,
    #[serde(default, with = "durations::serde_text::option")]
    pub claim_deadline: Option<Duration>,
    /// Deprecated spelling of `claim_deadline` (seconds).
    pub claim_deadline_secs: Option<f64>,
    #[serde(default, with = "durations::serde_text::option")]
    pub claim_backoff_initial: Option<Duration>,
    /// Deprecated spelling of `claim_backoff_initial` (seconds).
    pub claim_backoff_initial_secs: Option<f64>,
    #[serde(default, with = "durations::serde_text::option")]
    pub claim_backoff_max: Option<Duration>,
    /// Deprecated spelling of `claim_backoff_max` (seconds).
    pub claim_backoff_max_secs: Option<f64>,
    #[serde(default, with = "durations::serde_text::option")]
    pub claim_not_found_grace: Option<Duration>,
    /// Deprecated spelling of `claim_not_found_grace` (seconds).
    pub claim_not_found_grace_secs: Option<f64>,
    pub notify_attempts: Option<u32>,
    #[serde(default, with = "durations::serde_text::option")]
    pub cleanup_timeout: Option<Duration>,
    /// Deprecated spelling of `cleanup_timeout` (seconds).
    pub cleanup_timeout_secs: Option<f64>,
}

/// `[http]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpFile {
    pub max_body_bytes: Option<usize>,
    pub max_waiting: Option<usize>,
    #[serde(default, with = "durations::serde_text::option")]
    pub wait_poll: Option<Duration>,
    /// Deprecated spelling of `wait_poll` (seconds).
    pub wait_poll_secs: Option<f64>,
    #[serde(default, with = "durations::serde_text::option")]
    pub searching_timeout: Option<Duration>,
    /// Deprecated spelling of `searching_timeout` (seconds).
    pub searching_timeout_secs: Option<f64>,
    #[serde(default, with = "durations::serde_text::option")]
    pub body_timeout: Option<Duration>,
    /// Deprecated spelling of `body_timeout` (seconds).
    pub body_timeout_secs: Option<f64>,
    #[serde(default, with = "durations::serde_text::option")]
    pub header_timeout: Option<Duration>,
    /// Deprecated spelling of `header_timeout` (seconds).
    pub header_timeout_secs: Option<f64>,
    #[serde(default, with = "durations::serde_text::option")]
    pub idle_timeout: Option<Duration>,
    /// Deprecated spelling of `idle_timeout` (seconds).
    pub idle_timeout_secs: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ags_flags() -> Overrides {
        Overrides {
            base_url: Some(Url::parse("http://127.0.0.1:8080").expect("url")),
            client_id: Some("game".into()),
            client_secret: Some("secret".into()),
            namespace: Some("ns".into()),
            ..Overrides::default()
        }
    }

    #[test]
    fn flags_win_over_the_file_which_wins_over_defaults() {
        let file = FileConfig::from_toml(
            r#"
            addr = "127.0.0.1:9000"
            shutdown_grace_secs = 5
            [ags]
            base_url = "http://file:1"
            client_id = "file-client"
            [redis]
            url = "redis://127.0.0.1:6390"
            prefix = "from-file"
            [engine]
            lease_secs = 12
            tick_secs = 0.25
            [pipeline]
            claim_attempts = 4
            "#,
        )
        .expect("valid file");
        let flags = Overrides {
            addr: Some("127.0.0.1:9100".parse().expect("addr")),
            redis_prefix: Some("from-flag".into()),
            claim_attempts: Some(7),
            ..ags_flags()
        };
        let config = Config::resolve(flags, file).expect("valid config");
        assert_eq!(config.addr.port(), 9100, "flag over file");
        assert_eq!(config.ags.base_url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(config.ags.client_id, "game");
        let redis = config.redis.as_ref().expect("redis from the file");
        assert_eq!(redis.url, "redis://127.0.0.1:6390");
        assert_eq!(redis.prefix, "from-flag");
        assert_eq!(
            config.engine.lease,
            Duration::from_secs(12),
            "file over default"
        );
        assert_eq!(config.engine.tick, Duration::from_millis(250));
        assert_eq!(
            config.engine.renew_every,
            Duration::from_secs(4),
            "a third of the lease"
        );
        assert_eq!(config.engine.reap_every, Duration::from_secs(1), "default");
        assert_eq!(config.pipeline.claim_attempts, 7);
        assert_eq!(config.shutdown_grace, Duration::from_secs(5));
        assert_eq!(config.default_mode, "1v1");
    }

    #[test]
    fn grpc_addr_comes_from_flag_or_file() {
        let file = FileConfig::from_toml("grpc_addr = \"0.0.0.0:6565\"").expect("valid");
        let config = Config::resolve(ags_flags(), file.clone()).expect("valid");
        assert_eq!(
            config.grpc_addr,
            Some("0.0.0.0:6565".parse().expect("addr"))
        );
        let flags = Overrides {
            grpc_addr: Some("127.0.0.1:7000".parse().expect("addr")),
            ..ags_flags()
        };
        let config = Config::resolve(flags, file).expect("valid");
        assert_eq!(
            config.grpc_addr.map(|a| a.port()),
            Some(7000),
            "flag over file"
        );
        let config = Config::resolve(ags_flags(), FileConfig::default()).expect("valid");
        assert_eq!(config.grpc_addr, None, "off by default");
        assert!(FileConfig::from_toml("grpc_adr = \"0.0.0.0:6565\"").is_err());
    }

    #[test]
    fn grpc_auth_is_on_unless_turned_off_by_flag_or_file() {
        let config = Config::resolve(ags_flags(), FileConfig::default()).expect("valid");
        assert!(config.grpc_auth, "on by default");
        let file = FileConfig::from_toml("grpc_auth = false").expect("valid");
        let config = Config::resolve(ags_flags(), file.clone()).expect("valid");
        assert!(!config.grpc_auth, "file");
        let flags = Overrides {
            grpc_auth: Some(true),
            ..ags_flags()
        };
        assert!(
            Config::resolve(flags, file).expect("valid").grpc_auth,
            "flag over file"
        );
        assert!(FileConfig::from_toml("grpc_auth = \"no\"").is_err());
    }

    #[test]
    fn unknown_keys_are_refused_everywhere() {
        for text in [
            "adress = \"127.0.0.1:1\"",
            "[ags]\nbaseurl = \"x\"",
            "[engine]\nleese = \"3s\"",
            "[pipeline]\nclaim_retries = 3",
            "[[modes]]\nname = \"x\"\nteamsize = 2",
        ] {
            let err = FileConfig::from_toml(text).expect_err(text);
            assert!(err.to_string().contains("unknown field"), "{text}: {err}");
        }
    }

    #[test]
    fn missing_ags_settings_name_flag_env_and_key() {
        let err =
            Config::resolve(Overrides::default(), FileConfig::default()).expect_err("no base url");
        let text = err.to_string();
        assert!(
            text.contains("--base-url") && text.contains("AB_BASE_URL"),
            "{text}"
        );
        let no_namespace = Overrides {
            namespace: None,
            ..ags_flags()
        };
        let err = Config::resolve(no_namespace, FileConfig::default()).expect_err("no ns");
        assert!(err.to_string().contains("AB_NAMESPACE"), "{err}");
    }

    #[test]
    fn modes_and_default_mode() {
        let file = FileConfig::from_toml(
            r#"
            [[modes]]
            name = "5v5"
            teams = 2
            team_size = 5
            [[modes]]
            name = "2v2"
            teams = 2
            team_size = 2
            "#,
        )
        .expect("valid");
        let config = Config::resolve(ags_flags(), file.clone()).expect("valid");
        assert_eq!(config.default_mode, "2v2", "first by name without a 1v1");
        let flags = Overrides {
            default_mode: Some("nope".into()),
            ..ags_flags()
        };
        let err = Config::resolve(flags, file).expect_err("unknown default");
        assert!(err.to_string().starts_with("default_mode:"), "{err}");
    }

    #[test]
    fn bad_values_are_named() {
        let file = FileConfig::from_toml("[auth]\nclock_skew_secs = 900").expect("parses");
        let err = Config::resolve(ags_flags(), file).expect_err("skew too large");
        assert!(err.to_string().starts_with("auth:"), "{err}");
        let err = FileConfig::from_toml("[engine]\nlease_secs = -1").expect_err("negative");
        assert!(err.to_string().starts_with("engine.lease_secs:"), "{err}");
    }

    #[test]
    fn durations_use_the_one_grammar() {
        let file = FileConfig::from_toml(
            "shutdown_grace = \"1.5s\"\n[engine]\nlease = \"5m\"\ntick = \"250ms\"\n\
             [[modes]]\nname = \"1v1\"\ntimeout = \"1m\"\nregion_wait = \"2.5s\"\n",
        )
        .expect("valid");
        assert!(file.deprecated.is_empty());
        let config = Config::resolve(ags_flags(), file).expect("valid");
        assert_eq!(config.shutdown_grace, Duration::from_millis(1500));
        assert_eq!(config.engine.lease, Duration::from_secs(300));
        assert_eq!(config.engine.renew_every, Duration::from_secs(100));
        assert_eq!(config.engine.tick, Duration::from_millis(250));
        let mode = config.modes.get("1v1").expect("mode");
        assert_eq!(mode.timeout, Duration::from_secs(60));
        assert_eq!(mode.region_wait, Duration::from_millis(2500));
    }

    #[test]
    fn old_secs_keys_still_work_and_are_deprecated() {
        let file = FileConfig::from_toml(
            "[engine]\nlease_secs = 5\n[[modes]]\nname = \"ffa\"\n\
             free_for_all = { min_players = 2, max_players = 8, fill_after_secs = 2.5 }\n",
        )
        .expect("valid");
        let notes: Vec<String> = file.deprecated.iter().map(ToString::to_string).collect();
        assert_eq!(
            notes,
            [
                "`engine.lease_secs` is deprecated: write `lease = \"5s\"` instead",
                "`modes[0].free_for_all.fill_after_secs` is deprecated: write `fill_after = \"2.5s\"` instead",
            ]
        );
        let config = Config::resolve(ags_flags(), file).expect("valid");
        assert_eq!(config.engine.lease, Duration::from_secs(5));
    }

    #[test]
    fn both_spellings_or_a_bad_duration_are_refused_by_name() {
        let err = FileConfig::from_toml("[http]\nwait_poll = \"1s\"\nwait_poll_secs = 1\n")
            .expect_err("both");
        assert_eq!(
            err.to_string(),
            "http.wait_poll: give either `http.wait_poll` or the deprecated `http.wait_poll_secs`, not both"
        );
        let err = FileConfig::from_toml("[engine]\nscan_limit = 5\nlease = \"5 secs\"\n")
            .expect_err("bad unit");
        let message = err.to_string();
        assert!(message.contains("line 3"), "{message}");
        assert!(message.contains("lease"), "{message}");
        assert!(message.contains("\"1.5s\""), "{message}");
        let err = FileConfig::from_toml("[engine]\nlease = 5\n").expect_err("no unit");
        assert!(err.to_string().contains("\"300ms\""), "{err}");
    }

    #[test]
    fn the_example_files_are_valid() {
        for (name, text) in [
            ("1v1", include_str!("../../examples/1v1.toml")),
            ("2v2", include_str!("../../examples/2v2.toml")),
            ("5v5", include_str!("../../examples/5v5.toml")),
            ("ffa", include_str!("../../examples/ffa.toml")),
        ] {
            let file = FileConfig::from_toml(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            let config =
                Config::resolve(ags_flags(), file).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(config.modes.get(&config.default_mode).is_some(), "{name}");
        }
    }

    #[test]
    fn an_embedded_table_reads_like_a_file() {
        let table: toml::Table = toml::from_str(
            "default_mode = \"2v2\"\n[[modes]]\nname = \"2v2\"\nteams = 2\nteam_size = 2",
        )
        .expect("toml");
        let file = FileConfig::from_table(table).expect("valid table");
        let config = Config::resolve(ags_flags(), file).expect("valid");
        assert_eq!(config.default_mode, "2v2");
        let bad: toml::Table = toml::from_str("nope = 1").expect("toml");
        assert!(FileConfig::from_table(bad).is_err());
    }

    #[test]
    fn debug_hides_secrets() {
        let flags = Overrides {
            redis_url: Some("redis://user:hunter2@127.0.0.1:6379".into()),
            ..ags_flags()
        };
        let config = Config::resolve(flags, FileConfig::default()).expect("valid");
        let text = format!("{config:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("secret\""),
            "{text}"
        );
    }
}
