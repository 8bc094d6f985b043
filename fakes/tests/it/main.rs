//! fakes integration tests: every service over real sockets on 127.0.0.1, ephemeral ports.

mod common;
mod dsmc;
mod durable;
mod faults;
mod hardening;
mod iam;
mod lifecycle;
mod lobby;
mod match2;
mod parties;
mod redis;
mod sessionbrowser;
mod stats;
mod tls;
mod tutorial;
mod v2_support;
mod wire_fixes;
