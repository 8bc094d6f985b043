//! Serves the test double of the tutorial's matchmaking contract (the one the integration tests
//! use) as its own process, so `sim run --fakes-url … --matchmaker-url …` can drive a fakes and
//! a matchmaker in separate processes before the real matchmaker is wired in.
//!
//! ```text
//! cargo run --release -p sim --example tutorial_double -- http://127.0.0.1:8080 8081 60
//! ```
//! Arguments: the fakes base URL, the port to listen on, how long a lone request waits for a
//! partner before its 408 (seconds).

#[path = "../tests/it/double.rs"]
mod double;

use std::time::Duration;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let fakes: url::Url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned())
        .parse()?;
    let port: u16 = args.next().map_or(Ok(8081), |p| p.parse())?;
    let wait = Duration::from_secs(args.next().map_or(Ok(60), |s| s.parse())?);
    let (soft, _) = sim::limits::raise_open_files()?;
    let d = double::spawn(&fakes, wait, port).await;
    println!(
        "tutorial double on {} (fakes {fakes}, wait {wait:?}, open files {soft})",
        d.url
    );
    tokio::signal::ctrl_c().await?;
    println!("matches made: {}", d.state.matches());
    Ok(())
}
