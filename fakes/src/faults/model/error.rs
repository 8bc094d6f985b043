//! The one error type of fault parsing: a [`FieldError`] names the field it is about (a dotted
//! path such as `faults[2].delay.p99_ms`), so a person fixing a fault file or an API body knows
//! where to look. `de` turns serde's errors into one, with the path serde_path_to_error found.

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

/// A problem with a fault, naming the field (dotted path; `""` for the fault as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for FieldError {}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error one level down: `faults[2]` + `probability` → `faults[2].probability`.
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = join(prefix, &self.field);
        self
    }

    /// From a serde error at `path` (relative to `prefix`). "unknown field `x`" and "missing
    /// field `x`" point at `x` itself, so the field is named even when the path is the parent.
    fn from_serde(prefix: &str, path: &serde_path_to_error::Path, message: String) -> Self {
        let path = path.to_string();
        let mut field = if path == "." {
            prefix.to_owned()
        } else {
            join(prefix, &path)
        };
        for lead in ["unknown field `", "missing field `"] {
            if let Some(name) = message
                .strip_prefix(lead)
                .and_then(|rest| rest.split('`').next())
            {
                // serde_path_to_error already names an unknown field; a missing one it does not.
                if field.rsplit('.').next() != Some(name) {
                    field = join(&field, name);
                }
            }
        }
        Self { field, message }
    }
}

pub(super) fn join(prefix: &str, field: &str) -> String {
    match (prefix.is_empty(), field.is_empty()) {
        (true, _) => field.to_owned(),
        (false, true) => prefix.to_owned(),
        (false, false) if field.starts_with('[') => format!("{prefix}{field}"),
        (false, false) => format!("{prefix}.{field}"),
    }
}

/// Deserializes `value` as `T`, naming the failing field under `prefix`.
pub(super) fn de<T: DeserializeOwned>(prefix: &str, value: Value) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(value)
        .map_err(|e| FieldError::from_serde(prefix, e.path(), e.inner().to_string()))
}
