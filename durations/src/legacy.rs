//! The older spellings: a number under a unit-suffixed key (`timeout_secs = 10`,
//! `p99_ms = 800`, `hold_s = 2`, a fleet file's integer milliseconds). They keep working; a
//! reader calls [`pick`] with both keys of a field and gets the value, or a [`Deprecation`] to
//! log (servers) or report as a warning (scenarios) when the old key was used, or an error when
//! both were given.

use std::fmt;
use std::time::Duration;

/// The unit of an old key's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Millis,
    Secs,
}

impl Unit {
    /// `value` of this unit as a duration; `None` when negative, not finite or too large.
    pub fn to_duration(self, value: f64) -> Option<Duration> {
        let secs = match self {
            Unit::Millis => value / 1000.0,
            Unit::Secs => value,
        };
        Duration::try_from_secs_f64(secs).ok()
    }

    fn name(self) -> &'static str {
        match self {
            Unit::Millis => "milliseconds",
            Unit::Secs => "seconds",
        }
    }
}

/// An old key was used: what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deprecation {
    /// The old key as given (a dotted path, e.g. `engine.lease_secs`).
    pub old: String,
    /// The key to write instead (e.g. `engine.lease`).
    pub new: String,
    pub value: Duration,
}

impl fmt::Display for Deprecation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.new.rsplit('.').next().unwrap_or(&self.new);
        write!(
            f,
            "`{}` is deprecated: write `{key} = \"{}\"` instead",
            self.old,
            crate::format(self.value)
        )
    }
}

/// Why [`pick`] refused a field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickError {
    #[error("give either `{new}` or the deprecated `{old}`, not both")]
    Both { new: String, old: String },
    #[error("{value} is not a non-negative number of {unit}; better, write `{new}` as {grammar}", grammar = crate::GRAMMAR)]
    Invalid {
        new: String,
        old: String,
        value: String,
        unit: &'static str,
    },
}

impl PickError {
    /// The field the error is about: the old key for a bad old value, else the new one.
    pub fn field(&self) -> &str {
        match self {
            PickError::Both { new, .. } => new,
            PickError::Invalid { old, .. } => old,
        }
    }
}

/// The value of a field given under its new key (`new`, already parsed from the grammar) or its
/// old one (`old`, a number of `unit`), never both. Field names are the dotted paths that
/// messages show. Returns the value (if any) and, for the old key, the deprecation.
pub fn pick(
    new_field: &str,
    new: Option<Duration>,
    old_field: &str,
    old: Option<f64>,
    unit: Unit,
) -> Result<(Option<Duration>, Option<Deprecation>), PickError> {
    match (new, old) {
        (Some(_), Some(_)) => Err(PickError::Both {
            new: new_field.to_owned(),
            old: old_field.to_owned(),
        }),
        (Some(d), None) => Ok((Some(d), None)),
        (None, None) => Ok((None, None)),
        (None, Some(value)) => {
            let d = unit.to_duration(value).ok_or_else(|| PickError::Invalid {
                new: new_field.to_owned(),
                old: old_field.to_owned(),
                value: value.to_string(),
                unit: unit.name(),
            })?;
            Ok((
                Some(d),
                Some(Deprecation {
                    old: old_field.to_owned(),
                    new: new_field.to_owned(),
                    value: d,
                }),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_old_key_works_and_is_deprecated() {
        let (d, note) = pick(
            "engine.lease",
            None,
            "engine.lease_secs",
            Some(5.0),
            Unit::Secs,
        )
        .expect("valid");
        assert_eq!(d, Some(Duration::from_secs(5)));
        let note = note.expect("deprecated");
        assert_eq!(
            note.to_string(),
            "`engine.lease_secs` is deprecated: write `lease = \"5s\"` instead"
        );
        let (d, _) = pick("delay", None, "latency_ms", Some(300.0), Unit::Millis).expect("ms");
        assert_eq!(d, Some(Duration::from_millis(300)));
    }

    #[test]
    fn the_new_key_is_silent_and_both_are_refused() {
        let one = Some(Duration::from_secs(1));
        assert_eq!(
            pick("timeout", one, "timeout_secs", None, Unit::Secs),
            Ok((one, None))
        );
        assert_eq!(
            pick("timeout", None, "timeout_secs", None, Unit::Secs),
            Ok((None, None))
        );
        let err = pick("timeout", one, "timeout_secs", Some(1.0), Unit::Secs).expect_err("both");
        assert_eq!(err.field(), "timeout");
        assert_eq!(
            err.to_string(),
            "give either `timeout` or the deprecated `timeout_secs`, not both"
        );
    }

    #[test]
    fn a_bad_old_number_shows_the_grammar() {
        let err = pick("hold", None, "hold_s", Some(-1.0), Unit::Secs).expect_err("negative");
        let message = err.to_string();
        assert!(
            message.contains("-1 is not a non-negative number of seconds"),
            "{message}"
        );
        assert!(message.contains("\"1.5s\""), "{message}");
        assert_eq!(err.field(), "hold_s");
        assert!(pick("hold", None, "hold_s", Some(f64::NAN), Unit::Secs).is_err());
    }
}
