//! The match pool's ruleset JSON → the matchmaker's own rules ([`GameMode`]) plus what only the
//! match function needs (which player attribute is the skill, the latency limit, backfill).
//!
//! AGS hands the function the ruleset as raw JSON on every call. The dialect accepted here is the
//! matchmaker's game-mode spec (the keys of a `[[modes]]` table, without `name`) with the AGS
//! spellings a studio already uses for the same ideas:
//!
//! ```json
//! {
//!   "alliance": { "min_number": 2, "max_number": 2, "player_min_number": 5, "player_max_number": 5 },
//!   "skill_attribute": "mmr",
//!   "mmr_window": { "start": 100, "widen_per_sec": 10, "max": 1000 },
//!   "region_latency_max_ms": 150,
//!   "region_wait_secs": 10,
//!   "timeout_secs": 100,
//!   "auto_backfill": false
//! }
//! ```
//!
//! - `alliance` (AGS) or `teams` + `team_size` or `free_for_all` (the matchmaker's): the format.
//!   An alliance with a fixed number of fixed-size teams is `teams` × `team_size`; one with a
//!   range of teams of one player each (`player_max_number` 1) is a free-for-all between
//!   `min_number` (at least 2: a match of one is no match) and `max_number` players. Teams of a variable size are refused: the
//!   matchmaker's rules fill every team exactly.
//! - `mmr_window` or AGS's `matching_rule` (one `distance` rule): the skill window; the rule's
//!   `attribute` is the skill attribute and its `reference` the (fixed) window. AGS's
//!   `flexing_rule` is refused with a pointer to `mmr_window.widen_per_sec` (the matchmaker
//!   widens linearly, not in steps).
//! - `skill_attribute` (default `mmr`): the player attribute, i.e. the stat code, that holds skill.
//! - `region_latency_max_ms`: regions a ticket reports above this are never its region.
//!
//! Any other key is refused, naming it: a typo must not silently change matchmaking. Every error
//! names the JSON path (e.g. `alliance.max_number`).

use std::time::Duration;

use serde::Deserialize;

use crate::config::{Format, FreeForAllSpec, GameMode, GameModeSpec, SkillWindowSpec};

/// The name the pool's rules run under inside the matcher (tickets of one stream share a pool).
pub const POOL_MODE: &str = "match_pool";

/// The skill attribute when the rules name none.
pub const DEFAULT_SKILL_ATTRIBUTE: &str = "mmr";

/// A pool's rules, parsed and validated.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolRules {
    /// The matchmaker's rules: format, skill window, region wait, timeout.
    pub mode: GameMode,
    /// The player attribute (stat code) that holds skill.
    pub skill_attribute: String,
    /// The largest ticket (party) the rules can place.
    pub max_party_size: u32,
    /// Regions a ticket reports above this latency are never its region.
    pub region_latency_max_ms: Option<u64>,
    /// A free-for-all match that forms below `max_players` asks AGS to backfill it.
    pub auto_backfill: bool,
}

/// Why a ruleset was refused: the message says what and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("rules JSON: {0}")]
pub struct RulesError(pub String);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesJson {
    alliance: Option<AllianceJson>,
    teams: Option<u32>,
    team_size: Option<u32>,
    free_for_all: Option<FreeForAllSpec>,
    mmr_window: Option<SkillWindowSpec>,
    matching_rule: Option<Vec<MatchingRuleJson>>,
    /// Accepted only to refuse it with a useful message.
    flexing_rule: Option<serde_json::Value>,
    skill_attribute: Option<String>,
    region_wait_secs: Option<f64>,
    region_latency_max_ms: Option<u64>,
    timeout_secs: Option<f64>,
    auto_backfill: Option<bool>,
}

/// AGS's alliance rule: how many teams, how many players per team.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllianceJson {
    min_number: u32,
    max_number: u32,
    player_min_number: u32,
    player_max_number: u32,
}

/// AGS's matching rule: an attribute whose values in one match lie within `reference`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatchingRuleJson {
    attribute: String,
    criteria: String,
    reference: f64,
}

impl PoolRules {
    /// Parses and validates a ruleset.
    pub fn from_json(json: &str) -> Result<PoolRules, RulesError> {
        if json.trim().is_empty() {
            return Err(RulesError(
                "empty; send at least {} (the default: 1v1)".to_owned(),
            ));
        }
        let mut de = serde_json::Deserializer::from_str(json);
        let raw: RulesJson = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            if path == "." || path == "?" {
                RulesError(e.into_inner().to_string())
            } else {
                RulesError(format!("{path}: {}", e.into_inner()))
            }
        })?;
        de.end().map_err(|e| RulesError(e.to_string()))?;
        raw.into_rules()
    }

    /// The stat codes AGS should fetch into the players' attributes.
    pub fn stat_codes(&self) -> Vec<String> {
        vec![self.skill_attribute.clone()]
    }
}

impl RulesJson {
    fn into_rules(self) -> Result<PoolRules, RulesError> {
        let bad = |why: String| Err(RulesError(why));
        if self.flexing_rule.is_some() {
            return bad(
                "flexing_rule is not supported: the matchmaker widens the skill window \
                 linearly; use mmr_window { start, widen_per_sec, max }"
                    .to_owned(),
            );
        }
        let mut spec = GameModeSpec {
            name: POOL_MODE.to_owned(),
            teams: self.teams,
            team_size: self.team_size,
            free_for_all: self.free_for_all,
            mmr_window: self.mmr_window,
            region_wait: None,
            region_wait_secs: self.region_wait_secs,
            timeout: None,
            timeout_secs: self.timeout_secs,
            max_attempts: None,
        };
        let mut max_party_size = None;
        if let Some(a) = self.alliance {
            if spec.teams.is_some() || spec.team_size.is_some() || spec.free_for_all.is_some() {
                return bad(
                    "alliance excludes teams, team_size and free_for_all: use one".to_owned(),
                );
            }
            if a.min_number > a.max_number {
                return bad(format!(
                    "alliance: max_number ({}) is less than min_number ({})",
                    a.max_number, a.min_number
                ));
            }
            if a.player_min_number > a.player_max_number {
                return bad(format!(
                    "alliance: player_max_number ({}) is less than player_min_number ({})",
                    a.player_max_number, a.player_min_number
                ));
            }
            if a.max_number == 0 || a.player_max_number == 0 {
                return bad("alliance: max_number and player_max_number must be at least 1".into());
            }
            if a.min_number == a.max_number && a.player_min_number == a.player_max_number {
                spec.teams = Some(a.max_number);
                spec.team_size = Some(a.player_max_number);
            } else if a.player_max_number == 1 {
                spec.free_for_all = Some(FreeForAllSpec {
                    min_players: a.min_number.max(2),
                    max_players: a.max_number,
                    fill_after: None,
                    fill_after_secs: None,
                });
                max_party_size = Some(1);
            } else {
                return bad(format!(
                    "alliance: teams of {}..{} players ({}..{} teams) are not supported: the \
                     matchmaker fills every team exactly, so set player_min_number = \
                     player_max_number and min_number = max_number, or player_max_number = 1 \
                     for a free-for-all",
                    a.player_min_number, a.player_max_number, a.min_number, a.max_number
                ));
            }
        }
        let mut skill_attribute = self.skill_attribute;
        if let Some(rules) = self.matching_rule {
            if spec.mmr_window.is_some() {
                return bad(
                    "matching_rule and mmr_window both set the skill window: use one".to_owned(),
                );
            }
            let [rule] = rules.as_slice() else {
                return bad(format!(
                    "matching_rule: exactly one rule (the skill attribute) is supported, got {}",
                    rules.len()
                ));
            };
            if rule.criteria != "distance" {
                return bad(format!(
                    "matching_rule[0].criteria: only \"distance\" is supported, got {:?}",
                    rule.criteria
                ));
            }
            if !(rule.reference.is_finite() && rule.reference >= 0.0) {
                return bad("matching_rule[0].reference: must be a non-negative number".into());
            }
            if skill_attribute
                .as_ref()
                .is_some_and(|s| s != &rule.attribute)
            {
                return bad(
                    "matching_rule[0].attribute and skill_attribute disagree: use one".to_owned(),
                );
            }
            skill_attribute = Some(rule.attribute.clone());
            // Saturating float → int: a reference beyond u32 means "any skill".
            let window = rule.reference.round() as u32;
            spec.mmr_window = Some(SkillWindowSpec {
                start: window,
                widen_per_sec: 0,
                max: window,
            });
        }
        let skill_attribute = skill_attribute.unwrap_or_else(|| DEFAULT_SKILL_ATTRIBUTE.into());
        if skill_attribute.is_empty() {
            return bad("skill_attribute: must not be empty".to_owned());
        }
        let mode = GameMode::try_from(spec).map_err(|e| {
            // "game mode match_pool: why" → "why": the pool has no name of ours.
            let text = e.to_string();
            let prefix = format!("game mode {POOL_MODE}: ");
            RulesError(text.strip_prefix(&prefix).unwrap_or(&text).to_owned())
        })?;
        let max_party_size = max_party_size.unwrap_or_else(|| mode.max_party_size());
        Ok(PoolRules {
            max_party_size,
            skill_attribute,
            region_latency_max_ms: self.region_latency_max_ms,
            auto_backfill: self.auto_backfill.unwrap_or(false),
            mode,
        })
    }
}

impl PoolRules {
    /// Most players one match holds.
    pub fn capacity(&self) -> u32 {
        match self.mode.format {
            Format::Teams { teams, team_size } => teams.saturating_mul(team_size),
            Format::FreeForAll { max_players, .. } => max_players,
        }
    }

    /// The rules' ticket timeout.
    pub fn timeout(&self) -> Duration {
        self.mode.timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_object_is_the_tutorial_1v1() {
        let rules = PoolRules::from_json("{}").expect("valid");
        assert_eq!(
            rules.mode.format,
            Format::Teams {
                teams: 2,
                team_size: 1
            }
        );
        assert_eq!(rules.stat_codes(), vec!["mmr".to_owned()]);
        assert_eq!(rules.max_party_size, 1);
    }

    #[test]
    fn alliance_maps_to_teams_or_free_for_all() {
        let rules = PoolRules::from_json(
            r#"{"alliance":{"min_number":2,"max_number":2,"player_min_number":5,"player_max_number":5}}"#,
        )
        .expect("5v5");
        assert_eq!(
            rules.mode.format,
            Format::Teams {
                teams: 2,
                team_size: 5
            }
        );
        let ffa = PoolRules::from_json(
            r#"{"alliance":{"min_number":4,"max_number":8,"player_min_number":1,"player_max_number":1}}"#,
        )
        .expect("ffa");
        assert!(matches!(
            ffa.mode.format,
            Format::FreeForAll {
                min_players: 4,
                max_players: 8,
                ..
            }
        ));
        assert_eq!(ffa.max_party_size, 1);
        let err = PoolRules::from_json(
            r#"{"alliance":{"min_number":2,"max_number":2,"player_min_number":1,"player_max_number":3}}"#,
        )
        .expect_err("variable team size");
        assert!(err.0.contains("not supported"), "{err}");
    }

    #[test]
    fn matching_rule_sets_the_skill_attribute_and_window() {
        let rules = PoolRules::from_json(
            r#"{"matching_rule":[{"attribute":"elo","criteria":"distance","reference":150}]}"#,
        )
        .expect("valid");
        assert_eq!(rules.skill_attribute, "elo");
        assert_eq!(rules.mode.skill.at(Duration::from_secs(60)), 150);
    }

    #[test]
    fn errors_name_the_path() {
        let err = PoolRules::from_json(r#"{"alliance":{"min_number":"2"}}"#).expect_err("type");
        assert!(err.0.starts_with("alliance.min_number:"), "{err}");
        let err = PoolRules::from_json(r#"{"teamsize":2}"#).expect_err("unknown");
        assert!(err.0.contains("unknown field `teamsize`"), "{err}");
        let err = PoolRules::from_json("{").expect_err("syntax");
        assert!(err.0.contains("EOF"), "{err}");
        let err = PoolRules::from_json(r#"{"teams":0}"#).expect_err("zero");
        assert!(err.0.contains("at least 1"), "{err}");
        let err = PoolRules::from_json(r#"{"flexing_rule":[]}"#).expect_err("flexing");
        assert!(err.0.contains("widen_per_sec"), "{err}");
    }
}
