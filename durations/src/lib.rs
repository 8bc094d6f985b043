//! The one duration grammar of every matchbench config file: fleet files, fault files, the
//! matchmaker's config and scenarios (which embed the other three) all write a duration the
//! same way, as a string of a number and a unit:
//!
//! `"250us"`, `"300ms"`, `"1.5s"`, `"5m"`, `"1h"` — decimals allowed, an optional space
//! between number and unit, `"0"` for zero (`µs` and `min` are accepted as aliases).
//!
//! - [`parse`] / [`format`] — the grammar itself; errors show it ([`GRAMMAR`]);
//! - [`serde_text`] — serde helpers for `Duration` fields written in the grammar;
//! - [`legacy`] — the older unit-suffixed keys (`timeout_secs = 10`, `latency_ms = 300`,
//!   `hold_s`): converting their numbers, refusing a field given both ways, and the
//!   deprecation message a reader logs or reports.
//!
//! Why a crate of its own: every config reader (`fakes`, `matchmaker`, `sim`) needs it, and
//! none of them depends on all the others; `accelbyte` is the AGS wire contract, which has no
//! durations written by people. The grammar is hand-written because `humantime` refuses
//! decimals (`"1.5s"`), which our files use.

pub mod legacy;
pub mod serde_text;

use std::time::Duration;

pub use legacy::{Deprecation, PickError, Unit, pick};

/// The grammar, as error messages show it.
pub const GRAMMAR: &str = "a string of a number (decimals allowed) and a unit among us, ms, s, \
                           m, h, such as \"250us\", \"300ms\", \"1.5s\", \"5m\" or \"1h\"";

/// A string that is not a duration of the grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a duration: expected {GRAMMAR}")]
pub struct ParseError {
    pub text: String,
}

/// Parses a duration of the grammar: `"1.5s"`, `"250ms"`, `"2m"`, `"1h"`, `"100us"`, `"0"`.
pub fn parse(text: &str) -> Result<Duration, ParseError> {
    let bad = || ParseError {
        text: text.to_owned(),
    };
    let trimmed = text.trim();
    if trimmed == "0" {
        return Ok(Duration::ZERO);
    }
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    // `f64::from_str` would take "inf", "1e3" or "+1"; the split above keeps only digits and dots.
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return Err(bad());
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    let scale = match unit.trim_start() {
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(value * scale).map_err(|_| bad())
}

/// Formats a duration in the grammar, in the largest unit that keeps it short: `"250us"`,
/// `"300ms"`, `"1.5s"`, `"5m"`, `"1h"`. [`parse`] reads it back (to the microsecond below a
/// second, to the millisecond below two minutes).
pub fn format(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms == 0.0 {
        "0s".to_owned()
    } else if ms < 1.0 {
        format!("{}us", (ms * 1000.0).round())
    } else if ms < 1000.0 {
        format!("{}ms", trim_float((ms * 1000.0).round() / 1000.0))
    } else if ms < 120_000.0 {
        format!("{}s", trim_float(ms / 1000.0))
    } else if ms < 3_600_000.0 {
        format!("{}m", trim_float(ms / 60_000.0))
    } else {
        format!("{}h", trim_float(ms / 3_600_000.0))
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_and_decimals() {
        let cases = [
            ("250us", Duration::from_micros(250)),
            ("250µs", Duration::from_micros(250)),
            ("300ms", Duration::from_millis(300)),
            ("0.5ms", Duration::from_micros(500)),
            ("1.5s", Duration::from_millis(1500)),
            ("10s", Duration::from_secs(10)),
            ("5m", Duration::from_secs(300)),
            ("2min", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("0.25h", Duration::from_secs(900)),
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            (" 30 s ", Duration::from_secs(30)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn bad_input_is_refused_with_the_grammar() {
        for text in [
            "",
            "10",
            "1.5",
            "s",
            "ms",
            "-1s",
            "+1s",
            "1e3ms",
            "inf",
            "NaN s",
            "1.s",
            ".5s",
            "1..5s",
            "5 minutes",
            "1d",
            "1h30m",
            "1,5s",
        ] {
            let err = parse(text).expect_err(text);
            let message = err.to_string();
            assert!(message.contains(&format!("{text:?}")), "{message}");
            assert!(message.contains("\"1.5s\""), "{message}");
        }
    }

    #[test]
    fn format_reads_back() {
        for text in [
            "250us", "300ms", "12.5ms", "1.5s", "90s", "5m", "1h", "1.5h", "0s",
        ] {
            let d = parse(text).expect(text);
            assert_eq!(format(d), text);
            assert_eq!(parse(&format(d)), Ok(d));
        }
        assert_eq!(format(Duration::from_millis(2500)), "2.5s");
    }
}
