//! Test support: a private `redis-server` per test (or `MATCHBENCH_REDIS_URL`), a recording
//! [`MatchSink`], and small builders.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use matchmaker::clock::{Clock, UnixMillis};
use matchmaker::engine::{MatchSink, TicketRequest};
use matchmaker::store::{RedisConfig, RedisStore};
use matchmaker::ticket::{
    Attributes, ClaimedMatch, MatchOutcome, NewTicket, Party, Placement, PlayerId, ServerAddr,
    TicketOutcome,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// An arbitrary wall-clock origin for tests.
pub const T0: UnixMillis = UnixMillis(1_700_000_000_000);

/// `T0` plus `ms` milliseconds.
pub fn at(ms: u64) -> UnixMillis {
    UnixMillis(T0.0 + ms)
}

/// A Redis to test against: `MATCHBENCH_REDIS_URL` when set, else a `redis-server` of our own
/// on a free loopback port, killed on drop. Keys of each test live under a unique prefix, and
/// on a shared server they are deleted on drop.
pub struct TestRedis {
    url: String,
    server: Option<Child>,
    prefixes: std::sync::Mutex<Vec<String>>,
}

impl TestRedis {
    pub fn start() -> Self {
        if let Ok(url) = std::env::var("MATCHBENCH_REDIS_URL") {
            return TestRedis {
                url,
                server: None,
                prefixes: Default::default(),
            };
        }
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect(
                    "redis-server must be on PATH (apt-get install redis-server), \
                     or set MATCHBENCH_REDIS_URL",
                );
            if answers_ping(port, &mut child) {
                return TestRedis {
                    url: format!("redis://127.0.0.1:{port}"),
                    server: Some(child),
                    prefixes: Default::default(),
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("could not start a redis-server");
    }

    /// A fresh key prefix for one test.
    pub fn prefix(&self, test: &str) -> String {
        let prefix = format!("mbtest:{test}:{}", uuid::Uuid::new_v4().simple());
        self.prefixes
            .lock()
            .expect("prefix list")
            .push(prefix.clone());
        prefix
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A store handle (its own connection) under `prefix`.
    pub async fn store(&self, prefix: &str) -> RedisStore {
        RedisStore::connect(RedisConfig::new(&self.url).with_prefix(prefix))
            .await
            .expect("connect to the test redis")
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        if let Some(child) = &mut self.server {
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        // A shared server: delete only our own keys.
        let Ok(client) = redis::Client::open(self.url.as_str()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        let prefixes = self.prefixes.lock().map(|p| p.clone()).unwrap_or_default();
        for prefix in prefixes {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}:*"))
                .query(&mut conn)
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut conn);
            }
        }
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

fn answers_ping(port: u16, child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false; // exited: most likely the port was taken meanwhile
        }
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
            let mut reply = [0u8; 7];
            if stream.write_all(b"PING\r\n").is_ok()
                && stream.read_exact(&mut reply).is_ok()
                && &reply == b"+PONG\r\n"
            {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// A ticket for the stores, in game mode `m` unless changed.
pub fn new_ticket(id: &str, players: &[&str], enqueued_at: UnixMillis) -> NewTicket {
    NewTicket {
        id: id.into(),
        game_mode: "m".into(),
        party: party(players),
        attributes: Attributes::default(),
        enqueued_at,
        max_attempts: 3,
    }
}

pub fn party(players: &[&str]) -> Party {
    Party::new(players.iter().map(|p| PlayerId::from(*p)).collect()).expect("valid party")
}

/// A request for the engine.
pub fn request(mode: &str, players: &[&str]) -> TicketRequest {
    TicketRequest {
        game_mode: mode.into(),
        party: party(players),
        attributes: Attributes::default(),
        id: None,
    }
}

pub fn placement(session: &str) -> Placement {
    Placement {
        session_id: session.into(),
        server: ServerAddr {
            ip: "10.0.0.1".into(),
            port: 7777,
        },
        players: vec!["p1".into(), "p2".into()],
    }
}

/// What a [`RecordingSink`] does with the n-th match it is given (0-based).
pub enum Behavior {
    /// Returns at once.
    Return(MatchOutcome),
    /// Works for a while, then returns.
    After(Duration, MatchOutcome),
    /// Works until told the lease is lost, then returns this (which must be ignored).
    UntilLeaseLost(MatchOutcome),
    /// Never returns, whatever happens.
    Hang,
}

/// One match the sink was given, and when.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub claimed: ClaimedMatch,
    pub at: UnixMillis,
}

type Script = dyn Fn(&ClaimedMatch, usize) -> Behavior + Send + Sync;

/// A sink that records every match into a channel and behaves as scripted.
pub struct RecordingSink {
    clock: Arc<dyn Clock>,
    calls: AtomicUsize,
    lease_losses: Arc<parking_lot::Mutex<Vec<UnixMillis>>>,
    script: Box<Script>,
    tx: mpsc::UnboundedSender<Recorded>,
}

impl RecordingSink {
    pub fn new(
        clock: Arc<dyn Clock>,
        script: impl Fn(&ClaimedMatch, usize) -> Behavior + Send + Sync + 'static,
    ) -> (Self, mpsc::UnboundedReceiver<Recorded>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let sink = RecordingSink {
            clock,
            calls: AtomicUsize::new(0),
            lease_losses: Arc::default(),
            script: Box::new(script),
            tx,
        };
        (sink, rx)
    }

    /// When the sink was told a lease was lost (shared, readable after the sink is moved).
    pub fn lease_losses(&self) -> Arc<parking_lot::Mutex<Vec<UnixMillis>>> {
        self.lease_losses.clone()
    }

    /// A sink that places every match on a server named after the match.
    pub fn matching(clock: Arc<dyn Clock>) -> (Self, mpsc::UnboundedReceiver<Recorded>) {
        Self::new(clock, |claimed, _| {
            Behavior::Return(MatchOutcome::All(TicketOutcome::Matched(placement(
                claimed.id.as_str(),
            ))))
        })
    }
}

impl MatchSink for RecordingSink {
    async fn run(&self, claimed: ClaimedMatch, lease_lost: CancellationToken) -> MatchOutcome {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let behavior = (self.script)(&claimed, n);
        let _ = self.tx.send(Recorded {
            claimed,
            at: self.clock.now(),
        });
        match behavior {
            Behavior::Return(outcome) => outcome,
            Behavior::After(delay, outcome) => {
                tokio::time::sleep(delay).await;
                outcome
            }
            Behavior::UntilLeaseLost(outcome) => {
                lease_lost.cancelled().await;
                self.lease_losses.lock().push(self.clock.now());
                outcome
            }
            Behavior::Hang => std::future::pending().await,
        }
    }
}

/// Receives the next recorded match, failing the test after `within` (tokio time).
pub async fn next_match(rx: &mut mpsc::UnboundedReceiver<Recorded>, within: Duration) -> Recorded {
    tokio::time::timeout(within, rx.recv())
        .await
        .expect("a match within the time limit")
        .expect("sink alive")
}

/// Waits (tokio time) until `check` holds, polling every 10 ms, for at most `within`.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
