//! The fakes' fault parser ([`fakes::faults::model`]): fault files as TOML (what
//! `fakes serve --faults` reads) and fault objects as JSON (what the control API and scenario
//! files hand it). Seeds are the example fault files plus one fault of every kind.

use fakes::faults::model::{FaultFile, parse_fault};
use serde_json::Value;

use crate::mutate::{Mutator, json_to_toml, keys_of, toml_to_json};
use crate::{Target, Verdict};

const EXAMPLES: &[&str] = &[
    include_str!("../../../fakes/examples/dsmc-brownout.toml"),
    include_str!("../../../fakes/examples/iam-slow.toml"),
    include_str!("../../../fakes/examples/lobby-flaky.toml"),
    include_str!("../../../fakes/examples/outage.toml"),
];

/// One JSON fault of each kind, as the control API takes them.
const JSON_SEEDS: &[&str] = &[
    r#"{"id": "slow-iam", "kind": "latency", "target": {"service": "iam", "method": "post"}, "probability": 0.5, "window": {"start_s": 1, "end_s": 2.5}, "delay": {"dist": "log_normal", "p50_ms": 80, "p99_ms": 800}}"#,
    r#"{"kind": "latency", "target": "/iam/**", "delay": {"dist": "fixed", "ms": 5}}"#,
    r#"{"kind": "latency", "delay": {"dist": "uniform", "min_ms": 1, "max_ms": 9}}"#,
    r#"{"kind": "error", "status": 503, "target": "dsmcontroller"}"#,
    r#"{"kind": "outage", "target": "sessionbrowser", "window": {"start_s": 10, "end_s": 40}}"#,
    r#"{"kind": "drop_notification", "target": {"user": "u*", "topic": "NOTIF"}, "probability": 0.1}"#,
    r#"{"kind": "disconnect", "close_code": 1011, "per_minute": 2}"#,
    r#"{"kind": "claim_outcome", "conflict": 0.2, "not_ready": 0.3, "unreachable": 0.1}"#,
    r#"{"kind": "ready_delay", "delay": {"dist": "fixed", "ms": 200}}"#,
    r#"{"kind": "token_expiry", "access_s": 5}"#,
    r#"{"kind": "hang", "hold_s": 2, "target": {"service": "lobby"}}"#,
    r#"{"kind": "capacity", "region": "us-east-1", "servers": 0}"#,
    // The same durations in the one grammar (the old keys above stay as deprecated spellings).
    r#"{"kind": "latency", "window": {"start": "1s", "end": "2.5s"}, "delay": {"dist": "log_normal", "p50": "80ms", "p99": "0.8s"}}"#,
    r#"{"kind": "latency", "delay": {"dist": "normal", "mean": "100ms", "stddev": "250us"}}"#,
    r#"{"kind": "hang", "hold": "1.5s", "then": "answer"}"#,
    r#"{"kind": "token_expiry", "access": "5m", "refresh": "1h"}"#,
    r#"{"kind": "ticket_expiry", "after": "30s"}"#,
];

#[derive(Debug)]
pub struct FaultsTarget;

impl Target for FaultsTarget {
    fn name(&self) -> &'static str {
        "faults"
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        EXAMPLES
            .iter()
            .chain(JSON_SEEDS)
            .map(|s| s.as_bytes().to_vec())
            .collect()
    }

    fn dictionary(&self) -> Vec<String> {
        let mut keys = Vec::new();
        for text in EXAMPLES {
            if let Some(v) = toml_to_json(text) {
                keys_of(&v, &mut keys);
            }
        }
        for text in JSON_SEEDS {
            if let Ok(v) = serde_json::from_str::<Value>(text) {
                keys_of(&v, &mut keys);
            }
        }
        keys.extend(
            [
                "latency",
                "error",
                "outage",
                "hang",
                "disconnect",
                "drop_notification",
                "claim_outcome",
                "ready_delay",
                "token_expiry",
                "capacity",
                "iam",
                "lobby",
                "dsmcontroller",
                "sessionbrowser",
                "fixed",
                "uniform",
                "log_normal",
                "[[faults]]",
            ]
            .map(str::to_owned),
        );
        keys.sort();
        keys.dedup();
        keys
    }

    fn mutate(&self, m: &mut Mutator, base: &[u8], other: &[u8]) -> Vec<u8> {
        if m.chance(0.5) {
            if let Ok(text) = std::str::from_utf8(base) {
                if let Ok(mut v) = serde_json::from_str::<Value>(text) {
                    m.json(&mut v);
                    return serde_json::to_vec(&v).unwrap_or_default();
                }
                if let Some(mut v) = toml_to_json(text) {
                    m.json(&mut v);
                    if let Some(text) = json_to_toml(&v) {
                        return text.into_bytes();
                    }
                }
            }
        }
        m.bytes(base, other)
    }

    fn execute(&mut self, input: &[u8]) -> Verdict {
        let accepted = if input.first() == Some(&b'{') {
            match serde_json::from_slice::<Value>(input) {
                Ok(value) => {
                    let one = parse_fault(value.clone()).is_ok();
                    let file = FaultFile::from_value(value).is_ok();
                    one || file
                }
                Err(_) => false,
            }
        } else {
            let text = String::from_utf8_lossy(input);
            FaultFile::from_toml(&text).is_ok()
        };
        if accepted {
            Verdict::Accepted
        } else {
            Verdict::Refused
        }
    }
}
