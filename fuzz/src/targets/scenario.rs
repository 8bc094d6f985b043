//! The sim's scenario parser ([`sim::scenario::Plan::parse`]): every scenario file of the
//! repository is a seed; mutants are refused with `file:line: field: message` problems or
//! accepted, never a panic. Parsing reads no file (an `accounts` path is only resolved), so
//! mutated paths are harmless.

use std::path::PathBuf;

use sim::scenario::Plan;

use crate::mutate::{Mutator, json_to_toml, keys_of, toml_to_json};
use crate::{Target, Verdict};

const SCENARIOS: &[&str] = &[
    include_str!("../../../scenarios/capacity.toml"),
    include_str!("../../../scenarios/dsmc-brownout.toml"),
    include_str!("../../../scenarios/iam-slow.toml"),
    include_str!("../../../scenarios/launch-100k.toml"),
    include_str!("../../../scenarios/launch-spike.toml"),
    include_str!("../../../scenarios/lobby-flaky.toml"),
    include_str!("../../../scenarios/parties-5v5.toml"),
    include_str!("../../../scenarios/smoke.toml"),
    include_str!("../../../scenarios/soak.toml"),
    include_str!("../../../scenarios/steady-1v1.toml"),
];

#[derive(Debug)]
pub struct ScenarioTarget {
    base: PathBuf,
}

impl ScenarioTarget {
    pub fn new() -> anyhow::Result<Self> {
        Ok(ScenarioTarget {
            base: std::env::temp_dir(),
        })
    }
}

impl Target for ScenarioTarget {
    fn name(&self) -> &'static str {
        "scenario"
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        SCENARIOS.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    fn dictionary(&self) -> Vec<String> {
        let mut keys = Vec::new();
        for text in SCENARIOS {
            if let Some(v) = toml_to_json(text) {
                keys_of(&v, &mut keys);
            }
        }
        keys.extend(
            [
                "[run]",
                "[target]",
                "[population]",
                "[thresholds]",
                "[[faults]]",
                "urls",
                "embedded",
                "closed",
                "poisson",
                "ramp",
                "spike",
                "constant",
                "normal",
                "uniform",
                "forever",
                "auto",
                "\"1s\"",
                "\"0s\"",
                "= ",
            ]
            .map(str::to_owned),
        );
        keys.sort();
        keys.dedup();
        keys
    }

    fn mutate(&self, m: &mut Mutator, base: &[u8], other: &[u8]) -> Vec<u8> {
        if m.chance(0.5) {
            if let Some(mut v) = std::str::from_utf8(base).ok().and_then(toml_to_json) {
                m.json(&mut v);
                if let Some(text) = json_to_toml(&v) {
                    return text.into_bytes();
                }
            }
        }
        m.bytes(base, other)
    }

    fn execute(&mut self, input: &[u8]) -> Verdict {
        let text = String::from_utf8_lossy(input);
        match Plan::parse(&text, "fuzz.toml", &self.base) {
            Ok(_) => Verdict::Accepted,
            Err(_) => Verdict::Refused,
        }
    }
}
