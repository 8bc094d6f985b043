//! fakes throughput benchmark: token grants/s (password grant), free-form notifications
//! delivered/s to connected lobby WebSockets, DSMC register+claim pairs/s, and the fakes'
//! memory per connected lobby WebSocket.
//!
//! Runs the real `fakes` binary as a child process on 127.0.0.1 (so its memory can be read from
//! /proc and the load generator's CPU is not counted as the server's), drives it from this
//! process over loopback, and prints a table. Bounded: every phase stops after a fixed time or
//! count. Run with:
//!
//! ```sh
//! cargo bench -p fakes --bench throughput
//! ```
//!
//! Knobs (environment): `BENCH_SECONDS` (per phase, default 5), `BENCH_CONCURRENCY` (default
//! 64), `BENCH_SOCKETS` (default 5000), `BENCH_LOBBY_SHARDS` (default 0: lobby sockets in the
//! fakes process; N: in N shard processes, with a private `redis-server` as their bus — memory
//! is then reported for the primary and the shards separately), `BENCH_DURABLE=1` (fakes with
//! `--state-dir` in the temp dir: every mutating request waits for its group commit).

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use fakes::seed::builtin::{GAME_CLIENT as GAME, NAMESPACE, PLAYER_CLIENT_ID as PLAYER_CLIENT};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Fakes {
    child: tokio::process::Child,
    base: String,
    _redis: Option<tokio::process::Child>,
}

/// A private redis-server for the shards' bus.
async fn start_redis() -> anyhow::Result<(tokio::process::Child, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = tokio::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        anyhow::ensure!(Instant::now() < deadline, "redis-server did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok((child, format!("redis://127.0.0.1:{port}")))
}

fn rss_kib_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl Fakes {
    async fn start(shards: u64) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let fleet = std::env::temp_dir().join(format!("matchbench-bench-fleet-{port}.toml"));
        std::fs::write(&fleet, "[[regions]]\nname = \"bench\"\nservers = 50000\n")?;
        let redis = if shards > 0 {
            Some(start_redis().await?)
        } else {
            None
        };
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_fakes"));
        command
            .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--fleet"])
            .arg(&fleet);
        if let Some((_, url)) = &redis {
            command.args(["--lobby-shards", &shards.to_string(), "--redis", url]);
        }
        if env_or("BENCH_DURABLE", 0) == 1 {
            let dir = std::env::temp_dir().join(format!("matchbench-bench-state-{port}"));
            command.arg("--state-dir").arg(dir);
        }
        let mut child = command
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        // The banner is printed once the listener is bound.
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        while let Some(line) = lines.next_line().await? {
            if line.contains("AB_BASE_URL") {
                break;
            }
        }
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _redis: redis.map(|(child, _)| child),
        })
    }

    fn rss_kib(&self) -> u64 {
        self.child.id().map_or(0, rss_kib_of)
    }

    /// RSS of the lobby shard processes (the fakes process's children).
    fn shards_rss_kib(&self) -> u64 {
        let Some(pid) = self.child.id() else { return 0 };
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        children
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .map(rss_kib_of)
            .sum()
    }
}

async fn client_token(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let body: Value = http
        .post(format!("{base}/iam/v3/oauth/token"))
        .basic_auth(GAME.0, Some(GAME.1))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(body["access_token"].as_str().unwrap_or_default().to_owned())
}

/// Creates `count` users through the admin test-user API; returns (user_id, username, password).
async fn create_users(
    http: &reqwest::Client,
    base: &str,
    admin: &str,
    count: u64,
) -> anyhow::Result<Vec<(String, String, String)>> {
    let mut users = Vec::new();
    while (users.len() as u64) < count {
        let batch = (count - users.len() as u64).min(5000);
        let body: Value = http
            .post(format!(
                "{base}/iam/v4/admin/namespaces/{NAMESPACE}/test_users"
            ))
            .bearer_auth(admin)
            .json(&json!({"count": batch, "userInfo": {"country": "US"}}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        for u in body["data"].as_array().into_iter().flatten() {
            users.push((
                u["userId"].as_str().unwrap_or_default().to_owned(),
                u["username"].as_str().unwrap_or_default().to_owned(),
                u["password"].as_str().unwrap_or_default().to_owned(),
            ));
        }
    }
    Ok(users)
}

async fn password_grant(
    http: &reqwest::Client,
    base: &str,
    user: &str,
    pass: &str,
) -> anyhow::Result<String> {
    let body: Value = http
        .post(format!("{base}/iam/v3/oauth/token"))
        .basic_auth(PLAYER_CLIENT, Some(""))
        .form(&[
            ("grant_type", "password"),
            ("username", user),
            ("password", pass),
        ])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(body["access_token"].as_str().unwrap_or_default().to_owned())
}

/// Runs `op` from `concurrency` tasks until `duration` passes; returns (ok, failed, elapsed).
async fn run_for<F, Fut>(concurrency: u64, duration: Duration, op: F) -> (u64, u64, Duration)
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|worker| {
            let (op, ok, failed) = (op.clone(), ok.clone(), failed.clone());
            tokio::spawn(async move {
                let mut i = worker;
                while Instant::now() < deadline {
                    if op(i).await {
                        ok.fetch_add(1, Ordering::Relaxed)
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed)
                    };
                    i += concurrency;
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    (
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        start.elapsed(),
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds = Duration::from_secs(env_or("BENCH_SECONDS", 5));
    let concurrency = env_or("BENCH_CONCURRENCY", 64);
    let sockets = env_or("BENCH_SOCKETS", 5000);
    let shards = env_or("BENCH_LOBBY_SHARDS", 0);
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let fakes = Fakes::start(shards).await?;
    let base = fakes.base.clone();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()?;
    let admin = client_token(&http, &base).await?;
    let users = Arc::new(create_users(&http, &base, &admin, sockets.max(concurrency)).await?);
    let mut rows: Vec<(String, String)> = Vec::new();

    // 1. password grants/s
    let (ok, failed, elapsed) = {
        let (http, base, users) = (http.clone(), base.clone(), users.clone());
        run_for(concurrency, seconds, move |i| {
            let (http, base, users) = (http.clone(), base.clone(), users.clone());
            async move {
                let (_, name, pass) = &users[(i as usize) % users.len()];
                password_grant(&http, &base, name, pass).await.is_ok()
            }
        })
        .await
    };
    rows.push((
        "token grants/s (password grant)".into(),
        format!(
            "{:.0}  ({ok} ok, {failed} failed, {concurrency} concurrent)",
            ok as f64 / elapsed.as_secs_f64()
        ),
    ));

    // 2. lobby sockets: connect, measure the server's memory per socket
    let rss_before = fakes.rss_kib();
    let shards_rss_before = fakes.shards_rss_kib();
    let mut tokens = Vec::with_capacity(sockets as usize);
    for (_, name, pass) in users.iter().take(sockets as usize) {
        tokens.push(password_grant(&http, &base, name, pass).await?);
    }
    let received = Arc::new(AtomicU64::new(0));
    let ws_base = base.replacen("http", "ws", 1);
    let connect_start = Instant::now();
    let mut readers = Vec::new();
    for token in &tokens {
        let mut req = format!("{ws_base}/lobby/").into_client_request()?;
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0);
        let (ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(config), true).await?;
        let received = received.clone();
        readers.push(tokio::spawn(async move {
            let (_sink, mut stream) = ws.split();
            while let Some(Ok(msg)) = stream.next().await {
                if msg
                    .to_text()
                    .is_ok_and(|t| t.starts_with("type: messageNotif"))
                {
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let connect_elapsed = connect_start.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await; // let allocations settle before reading RSS
    let rss_after = fakes.rss_kib();
    let shards_rss_after = fakes.shards_rss_kib();
    if shards > 0 {
        rows.push((
            format!("lobby shards' memory per socket ({shards} shards)"),
            format!(
                "{:.1} KiB  (RSS {} → {} KiB in all shards)",
                shards_rss_after.saturating_sub(shards_rss_before) as f64 / sockets as f64,
                shards_rss_before,
                shards_rss_after
            ),
        ));
    }
    rows.push((
        "lobby connects/s (sequential, one client)".into(),
        format!("{:.0}", sockets as f64 / connect_elapsed.as_secs_f64()),
    ));
    rows.push((
        if shards > 0 {
            "primary's memory per lobby WebSocket (hub + relay)".into()
        } else {
            "fakes memory per lobby WebSocket".into()
        },
        format!(
            "{:.1} KiB  (RSS {} → {} KiB for {sockets} sockets)",
            (rss_after.saturating_sub(rss_before)) as f64 / sockets as f64,
            rss_before,
            rss_after
        ),
    ));

    // 3. free-form notifications delivered/s to connected sockets
    let user_ids: Arc<Vec<String>> = Arc::new(
        users
            .iter()
            .take(sockets as usize)
            .map(|u| u.0.clone())
            .collect(),
    );
    let before = received.load(Ordering::Relaxed);
    let (sent, failed, elapsed) = {
        let (http, base, admin, user_ids) =
            (http.clone(), base.clone(), admin.clone(), user_ids.clone());
        run_for(concurrency, seconds, move |i| {
            let (http, base, admin, user_ids) =
                (http.clone(), base.clone(), admin.clone(), user_ids.clone());
            async move {
                let uid = &user_ids[(i as usize) % user_ids.len()];
                http.post(format!(
                    "{base}/notification/namespaces/{NAMESPACE}/users/{uid}/freeform"
                ))
                .bearer_auth(&admin)
                .json(&json!({"topic": "BENCH", "message": "hello"}))
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == 204)
            }
        })
        .await
    };
    // Wait (bounded) for frames still in flight.
    let drain_deadline = Instant::now() + Duration::from_secs(5);
    while received.load(Ordering::Relaxed) - before < sent && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered = received.load(Ordering::Relaxed) - before;
    rows.push((
        "free-form notifications delivered/s".into(),
        format!(
            "{:.0}  ({sent} sent, {delivered} received on sockets, {failed} failed)",
            delivered as f64 / elapsed.as_secs_f64()
        ),
    ));
    for r in readers {
        r.abort();
    }

    // 4. DSMC register + claim pairs/s, until the fleet is exhausted or time is up. The rate is
    // taken up to the last successful claim, so the 503s after exhaustion do not dilute it.
    let counter = Arc::new(AtomicU64::new(0));
    let phase_start = Instant::now();
    let last_ok_us = Arc::new(AtomicU64::new(0));
    let (ok, failed, _) = {
        let (http, base, admin, counter, last_ok_us) = (
            http.clone(),
            base.clone(),
            admin.clone(),
            counter.clone(),
            last_ok_us.clone(),
        );
        run_for(concurrency, seconds, move |_| {
            let (http, base, admin, counter, last_ok_us) = (http.clone(), base.clone(), admin.clone(), counter.clone(), last_ok_us.clone());
            async move {
                let session_id = format!("bench{:027}", counter.fetch_add(1, Ordering::Relaxed));
                let body = json!({
                    "client_version": "", "configuration": "", "deployment": "default", "game_mode": "1v1",
                    "matching_allies": [], "namespace": NAMESPACE, "pod_name": "", "region": "",
                    "session_id": session_id,
                });
                let registered = http
                    .post(format!("{base}/dsmcontroller/namespaces/{NAMESPACE}/sessions"))
                    .bearer_auth(&admin)
                    .json(&body)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                let claimed = registered
                    && http
                        .post(format!("{base}/dsmcontroller/namespaces/{NAMESPACE}/sessions/claim"))
                        .bearer_auth(&admin)
                        .json(&json!({"session_id": session_id}))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().as_u16() == 204);
                if claimed {
                    last_ok_us.fetch_max(phase_start.elapsed().as_micros() as u64, Ordering::Relaxed);
                }
                claimed
            }
        })
        .await
    };
    let busy_for = Duration::from_micros(last_ok_us.load(Ordering::Relaxed).max(1));
    rows.push((
        "DSMC register+claim pairs/s".into(),
        format!(
            "{:.0}  ({ok} claimed in {:.2}s, then {failed} refused: fleet full)",
            ok as f64 / busy_for.as_secs_f64(),
            busy_for.as_secs_f64()
        ),
    ));

    println!();
    println!(
        "fakes throughput on {} cores, {}s per phase, {concurrency} concurrent clients",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        seconds.as_secs()
    );
    for (name, value) in rows {
        println!("  {name:<44} {value}");
    }
    Ok(())
}
