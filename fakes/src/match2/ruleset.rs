//! The rule set format AGS documents for its default match function, parsed and validated:
//!
//! ```json
//! {
//!   "alliance": {"min_number": 2, "max_number": 2, "player_min_number": 1, "player_max_number": 1},
//!   "alliance_flexing_rule": [{"duration": 30, "min_number": 1, "max_number": 2,
//!                              "player_min_number": 1, "player_max_number": 1}],
//!   "matching_rule": [{"attribute": "mmr", "criteria": "distance", "reference": 100}],
//!   "flexing_rule": [{"duration": 20, "attribute": "mmr", "criteria": "distance", "reference": 300}],
//!   "region_latency_initial_range_ms": 100, "region_expansion_range_ms": 50,
//!   "region_expansion_rate_ms": 5000, "region_latency_max_ms": 300
//! }
//! ```
//!
//! - `alliance`: teams (`min_number`..`max_number`) of `player_min_number`..`player_max_number`
//!   players; a match needs at least `min_number` teams each at its minimum;
//! - `alliance_flexing_rule`: after `duration` seconds of waiting, that alliance applies instead
//!   (the entry with the largest `duration` not above the wait);
//! - `matching_rule`: `distance` rules — every ticket's numeric `attribute` within `reference` of
//!   the others'; `flexing_rule` widens a rule's reference after `duration` seconds;
//! - region latencies: a ticket may play in a region whose latency is at most
//!   `initial + range × ⌊wait / rate⌋`, capped at `max` (no limit when the rule set names none).
//!   Tickets match only when they share such a region.
//!
//! Unknown keys are kept (custom match functions read them) and ignored here.

use serde::Deserialize;

/// Teams and their sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Alliance {
    pub min_number: u32,
    pub max_number: u32,
    pub player_min_number: u32,
    pub player_max_number: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct AllianceFlex {
    pub duration: u64,
    pub min_number: u32,
    pub max_number: u32,
    pub player_min_number: u32,
    pub player_max_number: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MatchingRule {
    pub attribute: String,
    pub criteria: String,
    pub reference: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FlexingRule {
    pub duration: u64,
    pub attribute: String,
    pub criteria: String,
    pub reference: f64,
}

/// A parsed rule set.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RuleSet {
    pub alliance: Alliance,
    #[serde(default)]
    pub alliance_flexing_rule: Vec<AllianceFlex>,
    #[serde(default)]
    pub matching_rule: Vec<MatchingRule>,
    #[serde(default)]
    pub flexing_rule: Vec<FlexingRule>,
    #[serde(default)]
    pub region_latency_initial_range_ms: Option<u64>,
    #[serde(default)]
    pub region_expansion_range_ms: Option<u64>,
    #[serde(default)]
    pub region_expansion_rate_ms: Option<u64>,
    #[serde(default)]
    pub region_latency_max_ms: Option<u64>,
}

fn check_alliance(what: &str, min: u32, max: u32, pmin: u32, pmax: u32) -> Result<(), String> {
    if min == 0 || max < min {
        return Err(format!(
            "{what}: need 1 <= min_number <= max_number, got {min}..{max}"
        ));
    }
    if pmin == 0 || pmax < pmin {
        return Err(format!(
            "{what}: need 1 <= player_min_number <= player_max_number, got {pmin}..{pmax}"
        ));
    }
    Ok(())
}

impl RuleSet {
    /// Parses `data` (a rule set's JSON), naming the field that is wrong.
    pub fn parse(data: &serde_json::Value) -> Result<Self, String> {
        let rules: RuleSet =
            serde_json::from_value(data.clone()).map_err(|e| format!("rule set data: {e}"))?;
        let a = rules.alliance;
        check_alliance(
            "alliance",
            a.min_number,
            a.max_number,
            a.player_min_number,
            a.player_max_number,
        )?;
        for (i, f) in rules.alliance_flexing_rule.iter().enumerate() {
            check_alliance(
                &format!("alliance_flexing_rule[{i}]"),
                f.min_number,
                f.max_number,
                f.player_min_number,
                f.player_max_number,
            )?;
        }
        for (i, r) in rules.matching_rule.iter().enumerate() {
            if r.criteria != "distance" {
                return Err(format!(
                    "matching_rule[{i}].criteria: only \"distance\" is supported, got {:?}",
                    r.criteria
                ));
            }
            if r.reference < 0.0 {
                return Err(format!("matching_rule[{i}].reference must not be negative"));
            }
        }
        for (i, r) in rules.flexing_rule.iter().enumerate() {
            if r.criteria != "distance" {
                return Err(format!(
                    "flexing_rule[{i}].criteria: only \"distance\" is supported, got {:?}",
                    r.criteria
                ));
            }
        }
        Ok(rules)
    }

    /// The alliance in force after waiting `waited_s` seconds.
    pub fn alliance_at(&self, waited_s: u64) -> Alliance {
        self.alliance_flexing_rule
            .iter()
            .filter(|f| f.duration <= waited_s)
            .max_by_key(|f| f.duration)
            .map_or(self.alliance, |f| Alliance {
                min_number: f.min_number,
                max_number: f.max_number,
                player_min_number: f.player_min_number,
                player_max_number: f.player_max_number,
            })
    }

    /// `(attribute, reference)` of each distance rule after waiting `waited_s` seconds.
    pub fn distances_at(&self, waited_s: u64) -> Vec<(String, f64)> {
        self.matching_rule
            .iter()
            .map(|rule| {
                let reference = self
                    .flexing_rule
                    .iter()
                    .filter(|f| f.attribute == rule.attribute && f.duration <= waited_s)
                    .max_by_key(|f| f.duration)
                    .map_or(rule.reference, |f| f.reference);
                (rule.attribute.clone(), reference)
            })
            .collect()
    }

    /// The highest latency (ms) a region may have for a ticket that waited `waited_ms`;
    /// `None` when the rule set sets no region rules.
    pub fn latency_limit_at(&self, waited_ms: u64) -> Option<u64> {
        let initial = self.region_latency_initial_range_ms?;
        let steps = match (
            self.region_expansion_rate_ms,
            self.region_expansion_range_ms,
        ) {
            (Some(rate), Some(range)) if rate > 0 => (waited_ms / rate).saturating_mul(range),
            _ => 0,
        };
        let limit = initial.saturating_add(steps);
        Some(
            self.region_latency_max_ms
                .map_or(limit, |max| limit.min(max)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> RuleSet {
        RuleSet::parse(&json!({
            "alliance": {"min_number": 2, "max_number": 2, "player_min_number": 1, "player_max_number": 2},
            "alliance_flexing_rule": [{"duration": 30, "min_number": 1, "max_number": 2,
                                       "player_min_number": 1, "player_max_number": 2}],
            "matching_rule": [{"attribute": "mmr", "criteria": "distance", "reference": 100}],
            "flexing_rule": [{"duration": 10, "attribute": "mmr", "criteria": "distance", "reference": 300},
                             {"duration": 20, "attribute": "mmr", "criteria": "distance", "reference": 600}],
            "region_latency_initial_range_ms": 100, "region_expansion_range_ms": 50,
            "region_expansion_rate_ms": 1000, "region_latency_max_ms": 200,
            "auto_backfill": false
        }))
        .expect("valid")
    }

    #[test]
    fn flexing_widens_over_time() {
        let rules = sample();
        assert_eq!(rules.distances_at(0), vec![("mmr".to_owned(), 100.0)]);
        assert_eq!(rules.distances_at(15), vec![("mmr".to_owned(), 300.0)]);
        assert_eq!(rules.distances_at(25), vec![("mmr".to_owned(), 600.0)]);
        assert_eq!(rules.alliance_at(0).min_number, 2);
        assert_eq!(rules.alliance_at(31).min_number, 1);
        assert_eq!(rules.latency_limit_at(0), Some(100));
        assert_eq!(rules.latency_limit_at(1_500), Some(150));
        assert_eq!(rules.latency_limit_at(60_000), Some(200), "capped at max");
    }

    #[test]
    fn bad_rule_sets_name_the_field() {
        let err = RuleSet::parse(&json!({"alliance": {"min_number": 3, "max_number": 2,
            "player_min_number": 1, "player_max_number": 1}}))
        .unwrap_err();
        assert!(err.starts_with("alliance:"), "{err}");
        let err = RuleSet::parse(&json!({})).unwrap_err();
        assert!(err.contains("alliance"), "{err}");
        let err = RuleSet::parse(&json!({
            "alliance": {"min_number": 1, "max_number": 1, "player_min_number": 1, "player_max_number": 1},
            "matching_rule": [{"attribute": "mmr", "criteria": "equal", "reference": 1}]
        }))
        .unwrap_err();
        assert!(err.starts_with("matching_rule[0].criteria"), "{err}");
    }
}
