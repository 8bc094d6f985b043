//! A Redis for the lobby-shard tests: `MATCHBENCH_REDIS_URL` when set, else a private
//! `redis-server` on a free loopback port, killed on drop. (The shards' bus uses channels under
//! a random prefix, so a shared server is safe.)

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct TestRedis {
    pub url: String,
    server: Option<Child>,
}

impl TestRedis {
    pub fn start() -> Self {
        if let Ok(url) = std::env::var("MATCHBENCH_REDIS_URL") {
            return TestRedis { url, server: None };
        }
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
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
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("could not start a redis-server");
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        if let Some(child) = &mut self.server {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
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
