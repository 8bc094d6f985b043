//! Delay distributions (fixed, uniform, normal, log-normal), their sampling from a caller's
//! RNG and their range checks. Sampling draws a fixed number of values per variant so seeded
//! decision streams stay reproducible.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::error::{FieldError, join};

/// The longest delay any fault may produce (latency samples are clamped to it).
pub const MAX_DELAY_MS: f64 = 3_600_000.0;

/// The standard normal quantile at 0.99: `sigma = ln(p99 / p50) / Z_99` for a log-normal.
pub const Z_99: f64 = 2.326_347_874_040_841;

/// A delay distribution, in milliseconds. Samples are clamped to `[0, 1 h]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "snake_case", deny_unknown_fields)]
pub enum Distribution {
    Fixed {
        ms: f64,
    },
    Uniform {
        min_ms: f64,
        max_ms: f64,
    },
    /// Negative samples become 0.
    Normal {
        mean_ms: f64,
        stddev_ms: f64,
    },
    /// Given by its median and 99th percentile: `mu = ln p50`, `sigma = ln(p99 / p50) / 2.326`.
    LogNormal {
        p50_ms: f64,
        p99_ms: f64,
    },
}

impl Distribution {
    /// One sample. Draws a fixed number of values from `rng` per variant (none for `fixed`,
    /// one for `uniform`, two for the others), so decision sequences stay reproducible.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        let ms = match *self {
            Self::Fixed { ms } => ms,
            Self::Uniform { min_ms, max_ms } => min_ms + (max_ms - min_ms) * rng.r#gen::<f64>(),
            Self::Normal { mean_ms, stddev_ms } => mean_ms + stddev_ms * standard_normal(rng),
            Self::LogNormal { p50_ms, p99_ms } => {
                let sigma = (p99_ms / p50_ms).ln() / Z_99;
                (p50_ms.ln() + sigma * standard_normal(rng)).exp()
            }
        };
        let ms = if ms.is_finite() {
            ms.clamp(0.0, MAX_DELAY_MS)
        } else {
            MAX_DELAY_MS
        };
        Duration::from_secs_f64(ms / 1000.0)
    }

    pub(super) fn validate(&self, field: &str) -> Result<(), FieldError> {
        let check = |name: &str, value: f64| {
            if value.is_finite() && (0.0..=MAX_DELAY_MS).contains(&value) {
                Ok(())
            } else {
                Err(FieldError::new(
                    join(field, name),
                    format!("must be between 0 and {MAX_DELAY_MS} ms, got {value}"),
                ))
            }
        };
        match *self {
            Self::Fixed { ms } => check("ms", ms),
            Self::Uniform { min_ms, max_ms } => {
                check("min_ms", min_ms)?;
                check("max_ms", max_ms)?;
                if max_ms < min_ms {
                    return Err(FieldError::new(
                        join(field, "max_ms"),
                        format!("must be ≥ min_ms ({min_ms})"),
                    ));
                }
                Ok(())
            }
            Self::Normal { mean_ms, stddev_ms } => {
                check("mean_ms", mean_ms)?;
                check("stddev_ms", stddev_ms)
            }
            Self::LogNormal { p50_ms, p99_ms } => {
                check("p50_ms", p50_ms)?;
                check("p99_ms", p99_ms)?;
                if p50_ms <= 0.0 {
                    return Err(FieldError::new(join(field, "p50_ms"), "must be > 0"));
                }
                if p99_ms < p50_ms {
                    return Err(FieldError::new(
                        join(field, "p99_ms"),
                        format!("must be ≥ p50_ms ({p50_ms})"),
                    ));
                }
                Ok(())
            }
        }
    }
}

/// A standard normal variate by Box–Muller (two uniform draws, one of the pair used).
pub fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    // 1 - [0, 1) is (0, 1]: ln never sees 0.
    let u1 = 1.0 - rng.r#gen::<f64>();
    let u2 = rng.r#gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
