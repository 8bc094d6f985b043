//! Times `MakeMatches` ticks of the match function over gRPC on 127.0.0.1: a pool of solo
//! tickets with spread skill and two regions, sent the way AGS sends a tick (parameters, the
//! tickets, half-close), answered with matches.
//!
//! ```sh
//! cargo run --release -p matchmaker --example match_function_tick -- 10000 5v5
//! cargo run --release -p matchmaker --example match_function_tick -- 10000 1v1 http://127.0.0.1:6565
//! ```
//!
//! Arguments: tickets per tick [10000], `1v1` or `5v5` [5v5], and the URL of a running match
//! function (else one is started in this process). Prints the tick's wall time and matches.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::stream;
use matchmaker::extend::proto::match_function_client::MatchFunctionClient;
use matchmaker::extend::proto::{MakeMatchesRequest, Rules, Ticket, make_matches_request, ticket};
use matchmaker::extend::{MatchFunctionService, spawn_grpc};
use prost_types::value::Kind;
use prost_types::{Struct, Timestamp, Value};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map_or(Ok(10_000), |a| a.parse())?;
    let rules = match args.next().as_deref().unwrap_or("5v5") {
        "1v1" => "{}",
        "5v5" => {
            r#"{"teams":2,"team_size":5,"mmr_window":{"start":100,"widen_per_sec":10,"max":1000}}"#
        }
        other => return Err(format!("unknown format {other}: 1v1 or 5v5").into()),
    };
    let (_server, url) = match args.next() {
        Some(url) => (None, url),
        None => {
            let server = spawn_grpc(MatchFunctionService::default()).await?;
            let url = server.url();
            (Some(server), url)
        }
    };
    let mut client = MatchFunctionClient::connect(url)
        .await?
        .max_decoding_message_size(64 << 20);

    let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
    let tickets: Vec<Ticket> = (0..count)
        .map(|i| {
            // Spread skill 0..2000 and ages 0..20 s; two regions.
            let mmr = (i * 7919 % 2000) as f64;
            let age = Duration::from_millis((i * 104_729 % 20_000) as u64);
            let created = now.saturating_sub(age);
            let region = if i % 2 == 0 { "eu-west" } else { "us-east" };
            Ticket {
                ticket_id: format!("t{i}"),
                match_pool: "bench".into(),
                created_at: Some(Timestamp {
                    seconds: created.as_secs() as i64,
                    nanos: created.subsec_nanos() as i32,
                }),
                players: vec![ticket::PlayerData {
                    player_id: format!("p{i}"),
                    attributes: Some(Struct {
                        fields: BTreeMap::from([(
                            "mmr".to_owned(),
                            Value {
                                kind: Some(Kind::NumberValue(mmr)),
                            },
                        )]),
                    }),
                }],
                latencies: [(region.to_owned(), 40)].into(),
                ..Default::default()
            }
        })
        .collect();

    for tick in 1..=3u64 {
        let mut messages = vec![MakeMatchesRequest {
            request_type: Some(make_matches_request::RequestType::Parameters(
                make_matches_request::MakeMatchesParameters {
                    scope: None,
                    rules: Some(Rules { json: rules.into() }),
                    tick_id: tick,
                },
            )),
        }];
        messages.extend(tickets.iter().cloned().map(|t| MakeMatchesRequest {
            request_type: Some(make_matches_request::RequestType::Ticket(t)),
        }));
        let started = Instant::now();
        let mut responses = client
            .make_matches(stream::iter(messages))
            .await?
            .into_inner();
        let mut matches = 0usize;
        let mut players = 0usize;
        while let Some(r) = responses.message().await? {
            matches += 1;
            players += r
                .r#match
                .map_or(0, |m| m.teams.iter().map(|t| t.user_ids.len()).sum());
        }
        println!(
            "tick {tick}: {count} tickets -> {matches} matches ({players} players) in {:.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    Ok(())
}
