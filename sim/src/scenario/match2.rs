//! `[target.match2]`: what a `flow = "match2"` run needs on the target before players arrive —
//! a Session v2 template, a rule set and a match pool — created by the sim at start with the
//! game client. The rule set is checked here by the built-in match function's own parser, so
//! `sim check` names a bad rule before a run would fail on the 400.
//!
//! `match_function = "matchmaker"` runs the pool on the matchmaker's match function instead of
//! fakes' built-in one: the embedded target serves the matchmaker's Extend gRPC interface (in
//! process, or on each matchmaker replica process), registers it with fakes as
//! [`MATCHMAKER_FUNCTION`] and names it in the pool; fakes calls it every tick with its own
//! IAM's token, which the function checks. The rule set is then checked by the matchmaker's
//! parser (its dialect: `alliance`, `matching_rule` or `mmr_window`, …). Embedded targets only.
//!
//! ```toml
//! [target.match2]
//! pool = "duel"                 # match pool (and, suffixed, rule set and template) name
//! ticket_expiration = "20s"     # a ticket unmatched this long expires (OnMatchmakingTicketExpired)
//! ds_timeout = "15s"            # after OnMatchFound, how long to wait for the server
//! match_function = "default"    # or "matchmaker": the matchmaker as the pool's Extend function
//! [target.match2.ruleset]       # the rule set's data, as AGS documents it
//! alliance = { min_number = 2, max_number = 2, player_min_number = 1, player_max_number = 1 }
//! matching_rule = [{ attribute = "mmr", criteria = "distance", reference = 200 }]
//! ```

use std::time::Duration;

use serde::Serialize;

use super::node::{Problems, Table};

/// The name the matchmaker's match function is registered under in fakes and named by the pool.
pub const MATCHMAKER_FUNCTION: &str = "matchmaker";

/// Which match function makes the pool's matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Match2Function {
    /// fakes' built-in matcher (AGS's `default`).
    #[default]
    Default,
    /// The matchmaker's Extend match function over gRPC.
    Matchmaker,
}

impl Match2Function {
    /// The pool's `match_function`.
    pub fn pool_function_name(self) -> &'static str {
        match self {
            Match2Function::Default => "default",
            Match2Function::Matchmaker => MATCHMAKER_FUNCTION,
        }
    }
}

/// The match2 setup of a scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Match2Plan {
    pub pool: String,
    /// The function that makes the pool's matches.
    pub match_function: Match2Function,
    /// The rule set's JSON (`data` of `api.RuleSetPayload`).
    pub ruleset: serde_json::Value,
    pub ticket_expiration: Duration,
    /// After `OnMatchFound`, how long a player waits for `DSInformation` to settle.
    pub ds_timeout: Duration,
    /// Players a session holds: the template's `minPlayers` and `maxPlayers`, from the rule
    /// set's alliance (teams × players per team).
    pub min_players: u32,
    pub max_players: u32,
}

impl Match2Plan {
    pub fn rule_set_name(&self) -> String {
        format!("{}-rules", self.pool)
    }

    pub fn template_name(&self) -> String {
        format!("{}-template", self.pool)
    }
}

/// Reads `[target.match2]`; `embedded` says whether the target is started by the sim (the
/// matchmaker's match function needs that).
pub(super) fn read_match2(
    mut t: Table<'_>,
    embedded: bool,
    p: &mut Problems<'_>,
) -> Option<Match2Plan> {
    let mut ok = true;
    let match_function = match t.opt_str(p, "match_function") {
        None => Match2Function::Default,
        Some((name, _)) if name == "default" => Match2Function::Default,
        Some((name, span)) if name == MATCHMAKER_FUNCTION => {
            if !embedded {
                p.push(
                    &span,
                    t.field("match_function"),
                    "\"matchmaker\" needs an embedded target (the sim starts the function and \
                     registers it with fakes)",
                );
                ok = false;
            }
            Match2Function::Matchmaker
        }
        Some((other, span)) => {
            p.push(
                &span,
                t.field("match_function"),
                format!("unknown match function {other:?}: expected \"default\" or \"matchmaker\""),
            );
            ok = false;
            Match2Function::Default
        }
    };
    let pool = match t.opt_str(p, "pool") {
        Some((name, span)) => {
            let valid = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid {
                p.push(
                    &span,
                    t.field("pool"),
                    "must be 1 to 64 letters, digits, '-' or '_'",
                );
                ok = false;
            }
            name
        }
        None => {
            if !t.has("pool") {
                t.missing(p, "pool");
            }
            ok = false;
            String::new()
        }
    };
    let ticket_expiration = match t.opt_duration(p, "ticket_expiration") {
        Some((d, span)) if d < Duration::from_secs(1) => {
            p.push(&span, t.field("ticket_expiration"), "must be at least 1s");
            ok = false;
            d
        }
        Some((d, _)) => d,
        None => Duration::from_secs(30),
    };
    let ds_timeout = match t.opt_duration(p, "ds_timeout") {
        Some((d, span)) if d.is_zero() => {
            p.push(&span, t.field("ds_timeout"), "must be positive");
            ok = false;
            d
        }
        Some((d, _)) => d,
        None => Duration::from_secs(30),
    };
    let field = t.field("ruleset");
    let ruleset = match t.node("ruleset") {
        Some(node) => {
            let json = node.value.to_json();
            if !json.is_object() {
                p.push(
                    &node.span,
                    field,
                    format!("expected a table, found {}", node.value.type_name()),
                );
                ok = false;
                None
            } else {
                match players_per_match(&json, match_function) {
                    Ok(players) => Some((json, players)),
                    Err(why) => {
                        p.push(&node.span, field, why);
                        ok = false;
                        None
                    }
                }
            }
        }
        None => {
            t.missing(p, "ruleset");
            ok = false;
            None
        }
    };
    t.finish(p);
    let (ruleset, (min_players, max_players)) = ruleset?;
    ok.then(|| Match2Plan {
        pool,
        match_function,
        ruleset,
        ticket_expiration,
        ds_timeout,
        min_players,
        max_players,
    })
}

/// The rule set, read by the parser of the function that will use it → the fewest and most
/// players a session holds.
fn players_per_match(
    json: &serde_json::Value,
    function: Match2Function,
) -> Result<(u32, u32), String> {
    match function {
        Match2Function::Default => {
            let rules = fakes::match2::ruleset::RuleSet::parse(json)?;
            let a = rules.alliance;
            // Flexing may lower the minimum while tickets wait; the template must admit that size.
            let min_players = rules
                .alliance_flexing_rule
                .iter()
                .map(|f| f.min_number * f.player_min_number)
                .fold(a.min_number * a.player_min_number, u32::min);
            Ok((min_players, a.max_number * a.player_max_number))
        }
        Match2Function::Matchmaker => {
            let rules = matchmaker::extend::PoolRules::from_json(&json.to_string())
                .map_err(|e| format!("the matchmaker's match function: {e}"))?;
            Ok(match rules.mode.format {
                matchmaker::config::Format::Teams { teams, team_size } => {
                    (teams * team_size, teams * team_size)
                }
                matchmaker::config::Format::FreeForAll {
                    min_players,
                    max_players,
                    ..
                } => (min_players, max_players),
            })
        }
    }
}
