//! When a fault applies: a [`Window`] of seconds relative to the moment the fault was added,
//! and its range checks.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::MAX_SECONDS;
use super::error::FieldError;

/// When a fault applies, in seconds relative to the moment it was added (for faults loaded at
/// start, the moment the server started). Replacing a fault adds it anew.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    #[serde(default)]
    pub start_s: f64,
    /// Absent: until the fault is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_s: Option<f64>,
}

impl Window {
    pub fn start(&self) -> Duration {
        Duration::try_from_secs_f64(self.start_s).unwrap_or(Duration::MAX)
    }

    pub fn end(&self) -> Option<Duration> {
        self.end_s
            .map(|s| Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX))
    }

    /// Whether `elapsed` (since the fault was added) is inside the window.
    pub fn contains(&self, elapsed: Duration) -> bool {
        elapsed >= self.start() && self.end().is_none_or(|end| elapsed < end)
    }

    pub(super) fn validate(&self) -> Result<(), FieldError> {
        let max = MAX_SECONDS as f64;
        if !self.start_s.is_finite() || !(0.0..=max).contains(&self.start_s) {
            return Err(FieldError::new(
                "window.start_s",
                format!("must be a number of seconds between 0 and {MAX_SECONDS}"),
            ));
        }
        if let Some(end) = self.end_s {
            if !end.is_finite() || end <= self.start_s || end > max {
                return Err(FieldError::new(
                    "window.end_s",
                    format!(
                        "must be a number of seconds > start_s ({}) and at most {MAX_SECONDS}",
                        self.start_s
                    ),
                ));
            }
        }
        Ok(())
    }
}
