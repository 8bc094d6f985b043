//! The duration spellings of a fault: every duration field is written in the one grammar
//! (`durations`) under a key without a unit (`hold = "2s"`, `window = { start = "10s" }`,
//! `delay = { dist = "log_normal", p50 = "80ms", p99 = "800ms" }`); the older keys with a unit
//! suffix (`hold_s`, `start_s`, `p50_ms`, …) keep working and are reported as deprecated.
//!
//! [`settle`] runs on the raw JSON before serde: a new key's string becomes the number the
//! kind's struct holds under the old key (so the structs, their sampling and their checks stay
//! one representation), an old key is noted, both at once is an error naming the field.
//! [`Renames`] maps the old keys back so a later range error names the key the input used.

use serde_json::{Map, Number, Value};

use super::error::{FieldError, join};
use durations::{Deprecation, Unit};

/// The duration keys of each kind (new key, old key, unit of the old key, whole numbers only).
fn kind_fields(kind: &str) -> &'static [(&'static str, &'static str, Unit, bool)] {
    match kind {
        "hang" => &[("hold", "hold_s", Unit::Secs, false)],
        "token_expiry" => &[
            ("access", "access_s", Unit::Secs, true),
            ("refresh", "refresh_s", Unit::Secs, true),
        ],
        "jwks_rotation" => &[("every", "every_s", Unit::Secs, false)],
        "ticket_expiry" => &[("after", "after_s", Unit::Secs, true)],
        _ => &[],
    }
}

/// The kinds whose `delay` is a distribution.
const DISTRIBUTION_KINDS: [&str; 3] = ["latency", "delay_notification", "ready_delay"];

const WINDOW_FIELDS: [(&str, &str, Unit, bool); 2] = [
    ("start", "start_s", Unit::Secs, false),
    ("end", "end_s", Unit::Secs, false),
];

fn distribution_fields(dist: &str) -> &'static [(&'static str, &'static str, Unit, bool)] {
    match dist {
        "fixed" => &[("value", "ms", Unit::Millis, false)],
        "uniform" => &[
            ("min", "min_ms", Unit::Millis, false),
            ("max", "max_ms", Unit::Millis, false),
        ],
        "normal" => &[
            ("mean", "mean_ms", Unit::Millis, false),
            ("stddev", "stddev_ms", Unit::Millis, false),
        ],
        "log_normal" => &[
            ("p50", "p50_ms", Unit::Millis, false),
            ("p99", "p99_ms", Unit::Millis, false),
        ],
        _ => &[],
    }
}

/// Old key paths that were written under their new key, to rename in later errors.
#[derive(Debug, Default)]
pub struct Renames(Vec<(String, String)>);

impl Renames {
    /// The error with its field named as the input named it.
    pub fn apply(&self, mut error: FieldError) -> FieldError {
        if let Some((_, new)) = self.0.iter().find(|(old, _)| *old == error.field) {
            error.field = new.clone();
        }
        error
    }
}

/// Rewrites the duration keys of one fault (`map`, the fault's JSON object) to the kind's
/// internal numbers; returns the deprecations (paths relative to the fault) and the renames.
pub fn settle(map: &mut Map<String, Value>) -> Result<(Vec<Deprecation>, Renames), FieldError> {
    let mut notes = Vec::new();
    let mut renames = Renames::default();
    let kind = map
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    settle_fields(map, "", kind_fields(&kind), &mut notes, &mut renames)?;
    if let Some(Value::Object(window)) = map.get_mut("window") {
        settle_fields(window, "window", &WINDOW_FIELDS, &mut notes, &mut renames)?;
    }
    if DISTRIBUTION_KINDS.contains(&kind.as_str()) {
        if let Some(Value::Object(delay)) = map.get_mut("delay") {
            let dist = delay
                .get("dist")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            settle_fields(
                delay,
                "delay",
                distribution_fields(&dist),
                &mut notes,
                &mut renames,
            )?;
        }
    }
    Ok((notes, renames))
}

fn settle_fields(
    map: &mut Map<String, Value>,
    prefix: &str,
    fields: &[(&str, &str, Unit, bool)],
    notes: &mut Vec<Deprecation>,
    renames: &mut Renames,
) -> Result<(), FieldError> {
    for &(new, old, unit, whole) in fields {
        let new_path = join(prefix, new);
        let old_path = join(prefix, old);
        match (map.remove(new), map.get(old)) {
            (None, None) => {}
            (Some(_), Some(_)) => {
                return Err(FieldError::new(
                    new_path.clone(),
                    format!("give either `{new_path}` or the deprecated `{old_path}`, not both"),
                ));
            }
            (None, Some(value)) => {
                if let Some(d) = value.as_f64().and_then(|v| unit.to_duration(v)) {
                    notes.push(Deprecation {
                        old: old_path,
                        new: new_path,
                        value: d,
                    });
                }
                // A bad old value is left for serde and the range checks to name.
            }
            (Some(value), None) => {
                let d = match &value {
                    Value::String(text) => durations::parse(text),
                    _ => Err(durations::ParseError {
                        text: value.to_string(),
                    }),
                }
                .map_err(|e| FieldError::new(new_path.clone(), e.to_string()))?;
                let number = match unit {
                    Unit::Millis => Number::from_f64(d.as_secs_f64() * 1000.0),
                    Unit::Secs if whole => {
                        if d.subsec_nanos() != 0 {
                            return Err(FieldError::new(
                                new_path,
                                format!("must be whole seconds, got {}", durations::format(d)),
                            ));
                        }
                        Some(Number::from(d.as_secs()))
                    }
                    Unit::Secs => Number::from_f64(d.as_secs_f64()),
                };
                let number =
                    number.ok_or_else(|| FieldError::new(new_path.clone(), "too large"))?;
                map.insert(old.to_owned(), Value::Number(number));
                renames.0.push((old_path, new_path));
            }
        }
    }
    Ok(())
}
