//! A fault file (TOML) or a whole fault set (JSON): [`FaultFile`], an optional seed and the
//! faults, each error naming the fault it is in (`faults[1].probability`).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::error::FieldError;
use super::fault::{Fault, parse_fault_noting, take};

/// A fault file (TOML) or a whole fault set (JSON): an optional RNG seed and the faults.
///
/// ```toml
/// seed = 42
///
/// [[faults]]
/// kind = "error"
/// target = "dsmc"
/// probability = 0.2
/// status = 503
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FaultFile {
    /// Seeds every decision; absent: a random seed, reported by `GET /_fakes/faults`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    pub faults: Vec<Fault>,
    /// The deprecated duration keys the input used (`faults[0].hold_s`), for the reader to
    /// log or report; not part of the fault set.
    #[serde(skip)]
    pub deprecated: Vec<durations::Deprecation>,
}

impl FaultFile {
    /// Parses a TOML fault file; unknown keys are refused.
    pub fn from_toml(text: &str) -> Result<Self, FieldError> {
        let table: toml::Table = toml::from_str(text)
            .map_err(|e| FieldError::new("", e.to_string().trim_end().to_owned()))?;
        let value = serde_json::to_value(table).map_err(|e| FieldError::new("", e.to_string()))?;
        Self::from_value(value)
    }

    /// Parses `{"seed": 42, "faults": [...]}`; unknown keys are refused.
    pub fn from_value(value: Value) -> Result<Self, FieldError> {
        let Value::Object(mut map) = value else {
            return Err(FieldError::new(
                "",
                "expected a table with `seed` and `faults`",
            ));
        };
        let seed: Option<u64> = take(&mut map, "seed")?;
        let mut deprecated = Vec::new();
        let faults = match map.remove("faults") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| {
                    let at = format!("faults[{i}]");
                    let (fault, notes) = parse_fault_noting(item).map_err(|e| e.within(&at))?;
                    deprecated.extend(notes.into_iter().map(|mut n| {
                        n.old = format!("{at}.{}", n.old);
                        n.new = format!("{at}.{}", n.new);
                        n
                    }));
                    Ok(fault)
                })
                .collect::<Result<Vec<_>, FieldError>>()?,
            Some(other) => {
                return Err(FieldError::new(
                    "faults",
                    format!("must be an array of faults, got {other}"),
                ));
            }
        };
        if let Some(key) = map.keys().next() {
            return Err(FieldError::new(
                key.clone(),
                format!("unknown key `{key}`, expected `seed` or `faults`"),
            ));
        }
        let file = Self {
            seed,
            faults,
            deprecated,
        };
        file.check_unique_ids()?;
        Ok(file)
    }

    /// Explicit ids must be unique.
    pub fn check_unique_ids(&self) -> Result<(), FieldError> {
        let mut seen = std::collections::HashSet::new();
        for (i, fault) in self.faults.iter().enumerate() {
            if !fault.id.is_empty() && !seen.insert(fault.id.as_str()) {
                return Err(FieldError::new(
                    format!("faults[{i}].id"),
                    format!("duplicate id {:?}", fault.id),
                ));
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for FaultFile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::from_value(Value::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}
