//! sim's integration tests: one binary, real sockets on 127.0.0.1 ephemeral ports.

mod capacity;
mod cli;
mod deploy;
mod double;
mod e2e;
mod failover;
mod game_token;
mod live_metrics;
mod match2;
mod overload;
mod scenarios;
mod shards;
mod stack;
mod workers;
