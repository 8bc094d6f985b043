//! Memory per queued ticket: what waiting players cost the matchmaker, in its own process
//! (in-memory store) and in Redis (Redis store, read from `INFO memory` of a private
//! `redis-server`).
//!
//! Enqueues `BENCH_TICKETS` (default 100,000) solo tickets with a skill rating and a region, as a
//! launch-day queue would hold, and reports the RSS (or Redis `used_memory`) grown per ticket.
//! Bounded in count; local only. Run with:
//!
//! ```sh
//! cargo bench -p matchmaker --bench queue_memory
//! ```

use std::process::Stdio;
use std::time::{Duration, Instant};

use matchmaker::ticket::{Attributes, NewTicket, Party, PlayerId, TicketId};
use matchmaker::{MemoryStore, RedisConfig, RedisStore, Store, UnixMillis};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn ticket(i: u64) -> NewTicket {
    NewTicket {
        id: TicketId::new(format!("{:032x}", u128::from(i) * 0x9e37_79b9_7f4a_7c15)),
        game_mode: "1v1".to_owned(),
        party: Party::solo(PlayerId::new(format!(
            "{:032x}",
            u128::from(i) + (1 << 100)
        ))),
        attributes: Attributes {
            mmr: Some(1000 + (i % 2000) as u32),
            region: Some("us-east-1".to_owned()),
            ..Attributes::default()
        },
        enqueued_at: UnixMillis(1_800_000_000_000 + i),
        max_attempts: 3,
    }
}

async fn fill(store: &impl Store, n: u64) -> anyhow::Result<Duration> {
    let started = Instant::now();
    for i in 0..n {
        store.enqueue(ticket(i)).await?;
    }
    Ok(started.elapsed())
}

async fn redis_used_memory(url: &str) -> anyhow::Result<u64> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut conn)
        .await?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no used_memory in INFO"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: u64 = std::env::var("BENCH_TICKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);

    let before = rss_kib();
    let store = MemoryStore::new();
    let took = fill(&store, n).await?;
    let after = rss_kib();
    println!(
        "memory store: {n} queued tickets, {:.2} KiB RSS per ticket ({before} -> {after} KiB), enqueued in {:.2}s",
        after.saturating_sub(before) as f64 / n as f64,
        took.as_secs_f64()
    );
    drop(store);

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut server = tokio::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let url = format!("redis://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        anyhow::ensure!(Instant::now() < deadline, "redis-server did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let store = RedisStore::connect(RedisConfig::new(&url)).await?;
    let redis_before = redis_used_memory(&url).await?;
    let rss_before = rss_kib();
    let took = fill(&store, n).await?;
    let redis_after = redis_used_memory(&url).await?;
    let rss_after = rss_kib();
    println!(
        "redis store:  {n} queued tickets, {:.2} KiB in Redis per ticket, {:.2} KiB matchmaker RSS per ticket, enqueued in {:.2}s",
        redis_after.saturating_sub(redis_before) as f64 / 1024.0 / n as f64,
        rss_after.saturating_sub(rss_before) as f64 / n as f64,
        took.as_secs_f64()
    );
    let _ = server.kill().await;
    Ok(())
}
