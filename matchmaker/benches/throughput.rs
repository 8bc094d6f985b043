//! matchmaker benchmark: matches formed per second with the in-memory and the Redis store, for
//! 1v1 and 5v5, and the latency the matchmaker adds between the last ticket a match needs and
//! the `found` notification on the players' lobby sockets.
//!
//! Everything runs in this process on the same cores: fakes (`fakes::spawn`, zero latency, a
//! 50,000-server fleet), the matchmaker (`matchmaker::spawn`), the load generator, and a
//! private `redis-server` on an ephemeral port (or `MATCHBENCH_REDIS_URL`). Bounded: every phase
//! submits a fixed number of tickets and gives up after a fixed time.
//!
//! ```sh
//! cargo bench -p matchmaker --bench throughput
//! ```
//!
//! Knobs (environment): `BENCH_TICKETS` (per throughput phase, default 4000),
//! `BENCH_CONCURRENCY` (requests in flight, default 64), `BENCH_SAMPLES` (latency samples per
//! phase, default 200).
//!
//! - **Throughput**: `BENCH_TICKETS` players submit one ticket each through `POST /v1/tickets`
//!   (`BENCH_CONCURRENCY` in flight); the clock runs from the first submission to the last match
//!   recorded. Every match runs the whole pipeline against fakes (session browser create, DSMC
//!   register + claim + get, add players, session get, notifications).
//! - **Added latency**: one match at a time; all tickets but one are queued, then the last one is
//!   submitted and the clock runs until every player of the match has received `found` on its
//!   lobby WebSocket. That is HTTP + token validation + enqueue + `searching` + matching + the
//!   pipeline + `found`, with fakes answering at once.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use accelbyte::client::{AbClient, Config as AbConfig, LobbyConnection, LobbyOptions};
use anyhow::{Context as _, bail};
use fakes::FakesConfig;
use futures_util::StreamExt as _;
use matchmaker::config::{GameMode, Modes};
use matchmaker::metrics::FinalState;
use matchmaker::store::RedisConfig;
use url::Url;

use fakes::seed::builtin::{GAME_CLIENT as GAME, NAMESPACE, PLAYER_CLIENT_ID as PLAYER_CLIENT};
const PHASE_LIMIT: Duration = Duration::from_secs(300);

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A private redis-server, killed on drop.
struct Redis {
    url: String,
    child: Option<Child>,
}

impl Redis {
    fn start() -> anyhow::Result<Redis> {
        if let Ok(url) = std::env::var("MATCHBENCH_REDIS_URL") {
            return Ok(Redis { url, child: None });
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("redis-server must be on PATH (or set MATCHBENCH_REDIS_URL)")?;
        let url = format!("redis://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("redis-server did not start");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Redis {
            url,
            child: Some(child),
        })
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[derive(Clone)]
struct Account {
    token: String,
}

async fn accounts(base: &Url, n: usize) -> anyhow::Result<Vec<Account>> {
    let game = AbClient::new(AbConfig::new(
        base.clone(),
        GAME.0,
        Some(GAME.1.into()),
        NAMESPACE,
    ))?;
    let admin = game.login_client().await?.access_token;
    let players = AbClient::new(AbConfig::new(base.clone(), PLAYER_CLIENT, None, NAMESPACE))?;
    let mut users = Vec::with_capacity(n);
    while users.len() < n {
        let batch = u32::try_from((n - users.len()).min(10_000))?;
        users.extend(game.create_test_users(&admin, NAMESPACE, batch).await?);
    }
    let logins = futures_util::stream::iter(users)
        .map(|u| {
            let players = players.clone();
            async move {
                players
                    .login_password(&u.username, &u.password)
                    .await
                    .map(|t| Account {
                        token: t.access_token,
                    })
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    Ok(logins.into_iter().collect::<Result<_, _>>()?)
}

fn config(base: &Url, redis: Option<(&Redis, String)>) -> matchmaker::Config {
    let mut config = matchmaker::Config::new(AbConfig::new(
        base.clone(),
        GAME.0,
        Some(GAME.1.into()),
        NAMESPACE,
    ));
    config.modes = Modes::new([GameMode::one_v_one("1v1"), GameMode::teams("5v5", 2, 5)])
        .expect("valid modes");
    config.redis = redis.map(|(r, prefix)| RedisConfig::new(&r.url).with_prefix(prefix));
    config
}

struct Throughput {
    store: &'static str,
    mode: &'static str,
    tickets: usize,
    matches: usize,
    seconds: f64,
}

async fn throughput(
    mm: &matchmaker::Handle,
    store: &'static str,
    mode: &'static str,
    per_match: usize,
    accounts: &[Account],
    concurrency: usize,
) -> anyhow::Result<Throughput> {
    let tickets = accounts.len() / per_match * per_match;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/tickets", mm.base_url());
    let body = serde_json::json!({"game_mode": mode});
    let matched = || mm.state.metrics().finished(mode, FinalState::Matched) as usize;
    let before = matched();
    let started = Instant::now();
    let failures = futures_util::stream::iter(&accounts[..tickets])
        .map(|a| {
            let request = http.post(&url).bearer_auth(&a.token).json(&body);
            async move {
                match request.send().await {
                    Ok(r) if r.status() == reqwest::StatusCode::ACCEPTED => 0,
                    _ => 1,
                }
            }
        })
        .buffer_unordered(concurrency)
        .fold(0, |n, f| async move { n + f })
        .await;
    if failures > 0 {
        bail!("{failures} of {tickets} submissions failed");
    }
    while matched() - before < tickets {
        if started.elapsed() > PHASE_LIMIT {
            bail!(
                "{store} {mode}: only {} of {tickets} tickets matched",
                matched() - before
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(Throughput {
        store,
        mode,
        tickets,
        matches: tickets / per_match,
        seconds: started.elapsed().as_secs_f64(),
    })
}

struct Latency {
    store: &'static str,
    mode: &'static str,
    samples: Vec<Duration>,
}

async fn added_latency(
    mm: &matchmaker::Handle,
    store: &'static str,
    mode: &'static str,
    players: &mut [(Account, LobbyConnection)],
    samples: usize,
) -> anyhow::Result<Latency> {
    let http = reqwest::Client::new();
    let url = format!("{}/v1/tickets", mm.base_url());
    let body = serde_json::json!({"game_mode": mode});
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let (first, last) = players.split_at_mut(players.len() - 1);
        for (account, _) in first.iter() {
            let response = http
                .post(&url)
                .bearer_auth(&account.token)
                .json(&body)
                .send()
                .await?;
            if response.status() != reqwest::StatusCode::ACCEPTED {
                bail!("submit answered {}", response.status());
            }
        }
        let started = Instant::now();
        let response = http
            .post(&url)
            .bearer_auth(&last[0].0.token)
            .json(&body)
            .send()
            .await?;
        if response.status() != reqwest::StatusCode::ACCEPTED {
            bail!("submit answered {}", response.status());
        }
        for (_, lobby) in players.iter_mut() {
            tokio::time::timeout(
                Duration::from_secs(30),
                lobby.wait_message(|m| m.payload.starts_with("found ")),
            )
            .await
            .context("found in time")??;
        }
        out.push(started.elapsed());
    }
    out.sort();
    Ok(Latency {
        store,
        mode,
        samples: out,
    })
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

async fn run() -> anyhow::Result<()> {
    let tickets = knob("BENCH_TICKETS", 4_000);
    let concurrency = knob("BENCH_CONCURRENCY", 64);
    let samples = knob("BENCH_SAMPLES", 200);

    let mut fakes_config = FakesConfig::default();
    fakes_config.fleet.regions[0].servers = 50_000;
    let fakes = fakes::spawn(fakes_config).await?;
    let base = Url::parse(&fakes.base_url())?;
    let redis = Redis::start()?;
    eprintln!("creating and logging in {tickets} players...");
    let pool = accounts(&base, tickets).await?;
    let players_client =
        AbClient::new(AbConfig::new(base.clone(), PLAYER_CLIENT, None, NAMESPACE))?;
    let mut connected = Vec::new();
    for account in pool.iter().take(10) {
        let lobby = players_client
            .connect_lobby(&account.token, &LobbyOptions::default())
            .await?;
        connected.push((account.clone(), lobby));
    }
    let pool = Arc::new(pool[10..].to_vec());

    let mut rates = Vec::new();
    let mut latencies = Vec::new();
    for (store, redis) in [("memory", None), ("redis", Some(&redis))] {
        for (mode, per_match) in [("1v1", 2), ("5v5", 10)] {
            let prefix = format!("mmbench:{}", uuid::Uuid::new_v4().simple());
            let mm = matchmaker::spawn(config(&base, redis.map(|r| (r, prefix))))
                .await
                .context("matchmaker starts")?;
            eprintln!("{store} {mode}: throughput...");
            rates.push(throughput(&mm, store, mode, per_match, &pool, concurrency).await?);
            eprintln!("{store} {mode}: added latency...");
            latencies
                .push(added_latency(&mm, store, mode, &mut connected[..per_match], samples).await?);
            mm.shutdown().await?;
        }
    }

    println!();
    println!("matches formed per second ({concurrency} submissions in flight, POST /v1/tickets)");
    println!(
        "{:<8} {:<5} {:>8} {:>8} {:>9} {:>10} {:>10}",
        "store", "mode", "tickets", "matches", "seconds", "matches/s", "tickets/s"
    );
    for r in &rates {
        println!(
            "{:<8} {:<5} {:>8} {:>8} {:>9.2} {:>10.0} {:>10.0}",
            r.store,
            r.mode,
            r.tickets,
            r.matches,
            r.seconds,
            r.matches as f64 / r.seconds,
            r.tickets as f64 / r.seconds
        );
    }
    println!();
    println!(
        "added latency, last needed ticket submitted -> every player's found (one match at a time)"
    );
    println!(
        "{:<8} {:<5} {:>8} {:>8} {:>8} {:>8}",
        "store", "mode", "samples", "p50 ms", "p99 ms", "max ms"
    );
    for l in &latencies {
        println!(
            "{:<8} {:<5} {:>8} {:>8.2} {:>8.2} {:>8.2}",
            l.store,
            l.mode,
            l.samples.len(),
            percentile(&l.samples, 50.0),
            percentile(&l.samples, 99.0),
            percentile(&l.samples, 100.0)
        );
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}
