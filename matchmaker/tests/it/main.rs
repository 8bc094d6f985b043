//! The matchmaker's integration tests: one binary. Redis tests run against a private
//! `redis-server` per test (or `MATCHBENCH_REDIS_URL` when set), under a unique key prefix.

mod auth;
mod engine;
mod extend;
mod extend_auth;
mod extend_fakes;
mod hostile;
mod pubsub;
mod replicas;
mod service;
mod stack;
mod store;
mod support;
