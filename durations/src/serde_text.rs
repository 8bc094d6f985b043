//! serde helpers for `Duration` fields written in the grammar: `#[serde(with =
//! "durations::serde_text")]` on a `Duration`, `durations::serde_text::option` on an
//! `Option<Duration>`. Reading takes only a string of the grammar (a bare number has no unit and
//! is refused, naming the grammar); writing gives [`crate::format`]'s spelling.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

struct TextVisitor;

impl Visitor<'_> for TextVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(crate::GRAMMAR)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        crate::parse(text).map_err(E::custom)
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    deserializer.deserialize_str(TextVisitor)
}

pub fn serialize<S: Serializer>(d: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&crate::format(*d))
}

/// The same for `Option<Duration>` (use with `#[serde(default)]`).
pub mod option {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        super::deserialize(deserializer).map(Some)
    }

    pub fn serialize<S: Serializer>(
        d: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::serialize(d, serializer),
            None => serializer.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    struct Settings {
        #[serde(with = "crate::serde_text")]
        timeout: Duration,
        #[serde(default, with = "crate::serde_text::option")]
        lease: Option<Duration>,
    }

    #[test]
    fn toml_strings_read_and_write() {
        let s: Settings = toml::from_str("timeout = \"1.5s\"\nlease = \"5m\"").expect("valid");
        assert_eq!(s.timeout, Duration::from_millis(1500));
        assert_eq!(s.lease, Some(Duration::from_secs(300)));
        let back = toml::to_string(&s).expect("serializes");
        assert_eq!(back, "timeout = \"1.5s\"\nlease = \"5m\"\n");
        let s: Settings = toml::from_str("timeout = \"10ms\"").expect("lease optional");
        assert_eq!(s.lease, None);
    }

    #[test]
    fn errors_name_line_field_and_grammar() {
        let err = toml::from_str::<Settings>("timeout = \"1s\"\nlease = \"5 minutes\"")
            .expect_err("bad unit");
        let message = err.to_string();
        assert!(message.contains("line 2"), "{message}");
        assert!(message.contains("lease"), "{message}");
        assert!(message.contains("\"1.5s\""), "{message}");
        let err = toml::from_str::<Settings>("timeout = 10").expect_err("a number has no unit");
        let message = err.to_string();
        assert!(message.contains("timeout"), "{message}");
        assert!(message.contains("\"300ms\""), "{message}");
        let err = serde_json::from_str::<Settings>(r#"{"timeout": "1x"}"#).expect_err("json");
        assert!(
            err.to_string().contains("\"1x\" is not a duration"),
            "{err}"
        );
    }
}
