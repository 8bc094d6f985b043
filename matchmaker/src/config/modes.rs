//! Matching rules per game mode.
//!
//! Owns [`GameMode`] (teams × team size or free-for-all, the skill window, region preference,
//! timeout and attempts), [`Modes`] (the validated set the engine runs) and [`GameModeSpec`], the
//! shape of a mode in the TOML config file (unknown keys rejected). The default is the tutorial's
//! single mode: a 1v1 that times out after 100 s.
//!
//! Must not know where the config comes from (flags, environment, file): the binary merges those
//! and hands over specs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

/// How players are grouped into a match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Format {
    /// Exactly `teams` teams of exactly `team_size` players each; a party fills part of one team.
    Teams { teams: u32, team_size: u32 },
    /// Every ticket (a solo player or a party) is its own side. A match forms as soon as
    /// `max_players` are available, or with at least `min_players` once the oldest ticket has
    /// waited `fill_after`.
    FreeForAll {
        min_players: u32,
        max_players: u32,
        fill_after: Duration,
    },
}

/// The skill window: how far apart (max − min) the `mmr` values in one match may be, given how
/// long the match's oldest ticket has waited: `start + widen_per_sec × waited`, capped at `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SkillWindow {
    pub start: u32,
    pub widen_per_sec: u32,
    pub max: u32,
}

impl SkillWindow {
    /// The window after waiting `waited`.
    pub fn at(&self, waited: Duration) -> u32 {
        let widened = u128::from(self.widen_per_sec) * waited.as_millis() / 1000;
        let total = u128::from(self.start) + widened;
        u32::try_from(total).unwrap_or(u32::MAX).min(self.max)
    }
}

impl Default for SkillWindow {
    fn default() -> Self {
        SkillWindow {
            start: 100,
            widen_per_sec: 10,
            max: 1_000,
        }
    }
}

/// The rules of one game mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GameMode {
    pub name: String,
    pub format: Format,
    /// Applies to tickets that carry an `mmr`; tickets without one match any skill.
    pub skill: SkillWindow,
    /// A ticket with a preferred region is matched only in that region until it has waited this
    /// long; after that it accepts any region.
    pub region_wait: Duration,
    /// A ticket still queued after this long times out.
    pub timeout: Duration,
    /// Failed pipeline attempts after which a ticket fails instead of going back to the queue.
    pub max_attempts: u32,
}

/// The tutorial's wait limit (`FIND_OTHER_USER_MAX_DURATION`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(100);
/// How long a regional preference holds by default.
pub const DEFAULT_REGION_WAIT: Duration = Duration::from_secs(10);
/// Pipeline attempts per ticket by default.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// How long a free-for-all waits for a full lobby by default before starting with fewer.
pub const DEFAULT_FILL_AFTER: Duration = Duration::from_secs(10);

impl GameMode {
    /// `teams` teams of `team_size`, with default skill, region, timeout and attempts.
    pub fn teams(name: impl Into<String>, teams: u32, team_size: u32) -> Self {
        GameMode {
            name: name.into(),
            format: Format::Teams { teams, team_size },
            skill: SkillWindow::default(),
            region_wait: DEFAULT_REGION_WAIT,
            timeout: DEFAULT_TIMEOUT,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }

    /// The tutorial's mode: two players, one against one.
    pub fn one_v_one(name: impl Into<String>) -> Self {
        Self::teams(name, 2, 1)
    }

    /// Free-for-all between `min_players` and `max_players`.
    pub fn free_for_all(name: impl Into<String>, min_players: u32, max_players: u32) -> Self {
        GameMode {
            format: Format::FreeForAll {
                min_players,
                max_players,
                fill_after: DEFAULT_FILL_AFTER,
            },
            ..Self::teams(name, 1, 1)
        }
    }

    /// The largest party this mode accepts: a team, or a whole free-for-all lobby.
    pub fn max_party_size(&self) -> u32 {
        match self.format {
            Format::Teams { team_size, .. } => team_size,
            Format::FreeForAll { max_players, .. } => max_players,
        }
    }

    /// Checks the rules make sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |why: &str| {
            Err(ConfigError::Invalid {
                mode: self.name.clone(),
                why: why.to_owned(),
            })
        };
        if self.name.is_empty() || self.name.contains(char::is_whitespace) {
            return bad("the name must be non-empty and without spaces");
        }
        match self.format {
            Format::Teams { teams, team_size } => {
                if teams == 0 || team_size == 0 {
                    return bad("teams and team_size must be at least 1");
                }
                if teams.checked_mul(team_size).is_none_or(|n| n > 10_000) {
                    return bad("teams × team_size must be at most 10000");
                }
            }
            Format::FreeForAll {
                min_players,
                max_players,
                ..
            } => {
                if min_players < 2 || max_players < min_players || max_players > 10_000 {
                    return bad("free-for-all needs 2 <= min_players <= max_players <= 10000");
                }
            }
        }
        if self.skill.start > self.skill.max {
            return bad("the mmr window must start at or below its max");
        }
        if self.timeout.is_zero() {
            return bad("timeout must be positive");
        }
        if self.max_attempts == 0 {
            return bad("max_attempts must be at least 1");
        }
        Ok(())
    }
}

/// A configuration problem, naming the game mode (or the engine).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("game mode {mode}: {why}")]
    Invalid { mode: String, why: String },
    #[error("game mode {0} is defined twice")]
    Duplicate(String),
    #[error("no game mode is defined")]
    Empty,
    #[error("engine: {0}")]
    Engine(String),
}

/// The validated set of game modes, by name. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Modes {
    by_name: Arc<BTreeMap<String, Arc<GameMode>>>,
}

impl Modes {
    /// Validates `modes`; names must be unique.
    pub fn new(modes: impl IntoIterator<Item = GameMode>) -> Result<Self, ConfigError> {
        let mut by_name = BTreeMap::new();
        for mode in modes {
            mode.validate()?;
            let name = mode.name.clone();
            if by_name.insert(name.clone(), Arc::new(mode)).is_some() {
                return Err(ConfigError::Duplicate(name));
            }
        }
        if by_name.is_empty() {
            return Err(ConfigError::Empty);
        }
        Ok(Modes {
            by_name: Arc::new(by_name),
        })
    }

    /// Builds the modes from config-file specs.
    pub fn from_specs(specs: impl IntoIterator<Item = GameModeSpec>) -> Result<Self, ConfigError> {
        let modes = specs
            .into_iter()
            .map(GameMode::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(modes)
    }

    /// The rules of `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<GameMode>> {
        self.by_name.get(name)
    }

    /// Every mode, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<GameMode>> {
        self.by_name.values()
    }
}

impl Default for Modes {
    /// The tutorial's single 1v1 mode, named `1v1`.
    fn default() -> Self {
        let mode = GameMode::one_v_one("1v1");
        Modes {
            by_name: Arc::new(BTreeMap::from([(mode.name.clone(), Arc::new(mode))])),
        }
    }
}

/// A game mode as written in the config file. Omitted fields take the defaults of
/// [`GameMode::teams`]; `teams`/`team_size` and `free_for_all` are mutually exclusive.
///
/// ```toml
/// [[modes]]
/// name = "5v5"
/// teams = 2
/// team_size = 5
/// mmr_window = { start = 100, widen_per_sec = 10, max = 1000 }
/// region_wait = "10s"
/// timeout = "100s"
/// max_attempts = 3
///
/// [[modes]]
/// name = "royale"
/// free_for_all = { min_players = 50, max_players = 100, fill_after = "20s" }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GameModeSpec {
    pub name: String,
    pub teams: Option<u32>,
    pub team_size: Option<u32>,
    pub free_for_all: Option<FreeForAllSpec>,
    pub mmr_window: Option<SkillWindowSpec>,
    #[serde(default, with = "durations::serde_text::option")]
    pub region_wait: Option<Duration>,
    /// Deprecated spelling of `region_wait`.
    pub region_wait_secs: Option<f64>,
    #[serde(default, with = "durations::serde_text::option")]
    pub timeout: Option<Duration>,
    /// Deprecated spelling of `timeout`.
    pub timeout_secs: Option<f64>,
    pub max_attempts: Option<u32>,
}

/// The `free_for_all` table of a [`GameModeSpec`].
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreeForAllSpec {
    pub min_players: u32,
    pub max_players: u32,
    #[serde(default, with = "durations::serde_text::option")]
    pub fill_after: Option<Duration>,
    /// Deprecated spelling of `fill_after`.
    pub fill_after_secs: Option<f64>,
}

/// The `mmr_window` table of a [`GameModeSpec`].
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkillWindowSpec {
    pub start: u32,
    pub widen_per_sec: u32,
    pub max: u32,
}

impl GameModeSpec {
    /// Moves the deprecated `*_secs` values to their new fields, refusing a field given both
    /// ways; `path` prefixes the field names (`modes[2].`). Returns what was deprecated.
    pub fn settle(
        &mut self,
        path: &str,
    ) -> Result<Vec<durations::Deprecation>, durations::PickError> {
        let mut notes = Vec::new();
        let mut one = |new: &mut Option<Duration>, old: &mut Option<f64>, name: &str| {
            let (value, note) = durations::pick(
                &format!("{path}{name}"),
                *new,
                &format!("{path}{name}_secs"),
                old.take(),
                durations::Unit::Secs,
            )?;
            *new = value;
            notes.extend(note);
            Ok::<_, durations::PickError>(())
        };
        one(
            &mut self.region_wait,
            &mut self.region_wait_secs,
            "region_wait",
        )?;
        one(&mut self.timeout, &mut self.timeout_secs, "timeout")?;
        if let Some(ffa) = self.free_for_all.as_mut() {
            one(
                &mut ffa.fill_after,
                &mut ffa.fill_after_secs,
                "free_for_all.fill_after",
            )?;
        }
        Ok(notes)
    }
}

impl TryFrom<GameModeSpec> for GameMode {
    type Error = ConfigError;

    fn try_from(spec: GameModeSpec) -> Result<Self, ConfigError> {
        let name = spec.name;
        let invalid = |why: String| ConfigError::Invalid {
            mode: name.clone(),
            why,
        };
        // Either spelling (a spec read from a file was settled by `GameModeSpec::settle`).
        let pick = |new: &str, value: Option<Duration>, old: Option<f64>, default: Duration| {
            durations::pick(
                new,
                value,
                &format!("{new}_secs"),
                old,
                durations::Unit::Secs,
            )
            .map(|(d, _)| d.unwrap_or(default))
            .map_err(|e| invalid(format!("{}: {e}", e.field())))
        };
        let format = match (spec.free_for_all, spec.teams, spec.team_size) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(invalid(
                    "free_for_all excludes teams and team_size".to_owned(),
                ));
            }
            (Some(ffa), None, None) => Format::FreeForAll {
                min_players: ffa.min_players,
                max_players: ffa.max_players,
                fill_after: pick(
                    "fill_after",
                    ffa.fill_after,
                    ffa.fill_after_secs,
                    DEFAULT_FILL_AFTER,
                )?,
            },
            (None, teams, team_size) => Format::Teams {
                teams: teams.unwrap_or(2),
                team_size: team_size.unwrap_or(1),
            },
        };
        let mode = GameMode {
            format,
            skill: spec
                .mmr_window
                .map(|w| SkillWindow {
                    start: w.start,
                    widen_per_sec: w.widen_per_sec,
                    max: w.max,
                })
                .unwrap_or_default(),
            region_wait: pick(
                "region_wait",
                spec.region_wait,
                spec.region_wait_secs,
                DEFAULT_REGION_WAIT,
            )?,
            timeout: pick("timeout", spec.timeout, spec.timeout_secs, DEFAULT_TIMEOUT)?,
            max_attempts: spec.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS),
            name: name.clone(),
        };
        mode.validate()?;
        Ok(mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_tutorial_1v1() {
        let modes = Modes::default();
        let mode = modes.get("1v1").expect("default mode");
        assert_eq!(
            mode.format,
            Format::Teams {
                teams: 2,
                team_size: 1
            }
        );
        assert_eq!(mode.timeout, Duration::from_secs(100));
        assert_eq!(mode.max_party_size(), 1);
        assert!(mode.validate().is_ok());
    }

    #[test]
    fn window_widens_then_caps() {
        let w = SkillWindow {
            start: 100,
            widen_per_sec: 50,
            max: 300,
        };
        assert_eq!(w.at(Duration::ZERO), 100);
        assert_eq!(w.at(Duration::from_millis(1_500)), 175);
        assert_eq!(w.at(Duration::from_secs(4)), 300);
        assert_eq!(w.at(Duration::from_secs(u64::MAX / 2)), 300);
    }

    #[test]
    fn specs_parse_from_toml() {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            modes: Vec<GameModeSpec>,
        }
        let file: File = toml::from_str(
            r#"
            [[modes]]
            name = "5v5"
            teams = 2
            team_size = 5
            mmr_window = { start = 50, widen_per_sec = 5, max = 500 }
            timeout_secs = 60

            [[modes]]
            name = "royale"
            free_for_all = { min_players = 10, max_players = 100, fill_after_secs = 2.5 }
            "#,
        )
        .expect("valid toml");
        let modes = Modes::from_specs(file.modes).expect("valid modes");
        let five = modes.get("5v5").expect("5v5");
        assert_eq!(
            five.format,
            Format::Teams {
                teams: 2,
                team_size: 5
            }
        );
        assert_eq!(five.skill.max, 500);
        assert_eq!(five.timeout, Duration::from_secs(60));
        assert_eq!(five.max_attempts, DEFAULT_MAX_ATTEMPTS);
        let royale = modes.get("royale").expect("royale");
        assert_eq!(
            royale.format,
            Format::FreeForAll {
                min_players: 10,
                max_players: 100,
                fill_after: Duration::from_millis(2_500)
            }
        );
        assert_eq!(royale.max_party_size(), 100);
    }

    #[test]
    fn bad_specs_are_rejected_with_the_mode_name() {
        let unknown = toml::from_str::<GameModeSpec>("name = \"x\"\nteamsize = 2\n");
        assert!(unknown.is_err(), "unknown keys are rejected");

        let both = GameModeSpec {
            name: "x".into(),
            teams: Some(2),
            free_for_all: Some(FreeForAllSpec {
                min_players: 2,
                max_players: 4,
                fill_after: None,
                fill_after_secs: None,
            }),
            ..GameModeSpec::default()
        };
        let err = GameMode::try_from(both).expect_err("exclusive");
        assert!(err.to_string().starts_with("game mode x:"), "{err}");

        let negative = GameModeSpec {
            name: "y".into(),
            timeout_secs: Some(-1.0),
            ..GameModeSpec::default()
        };
        assert!(GameMode::try_from(negative).is_err());

        let zero = GameMode::teams("z", 0, 5);
        assert!(zero.validate().is_err());
        let dup = Modes::new([GameMode::one_v_one("a"), GameMode::one_v_one("a")]);
        assert_eq!(dup.err(), Some(ConfigError::Duplicate("a".into())));
        assert_eq!(Modes::new([]).err(), Some(ConfigError::Empty));
    }
}
