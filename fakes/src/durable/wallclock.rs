//! Serde helpers for saved state: an [`Instant`] is stored as wall-clock milliseconds since the
//! Unix epoch (an `Instant` means nothing in another process), and a map with tuple keys as a
//! list of pairs (JSON object keys are strings only).

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `instant` as milliseconds since the epoch, by its distance from now.
pub fn to_unix_ms(instant: Instant) -> i64 {
    let now = Instant::now();
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64;
    if instant >= now {
        wall + instant.duration_since(now).as_millis() as i64
    } else {
        wall - now.duration_since(instant).as_millis() as i64
    }
}

/// Milliseconds since the epoch back to an `Instant` of this process; a moment before this
/// process's clock can represent becomes the earliest it can.
pub fn from_unix_ms(ms: i64) -> Instant {
    let now = Instant::now();
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64;
    let delta = Duration::from_millis(ms.abs_diff(wall));
    if ms >= wall {
        now + delta
    } else {
        now.checked_sub(delta).unwrap_or(now)
    }
}

/// `#[serde(with = "crate::durable::wallclock::instant")]`.
pub mod instant {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Instant, s: S) -> Result<S::Ok, S::Error> {
        to_unix_ms(*value).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Instant, D::Error> {
        i64::deserialize(d).map(from_unix_ms)
    }
}

/// `#[serde(with = "crate::durable::wallclock::option_instant")]`.
pub mod option_instant {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Option<Instant>, s: S) -> Result<S::Ok, S::Error> {
        value.map(to_unix_ms).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Instant>, D::Error> {
        Option::<i64>::deserialize(d).map(|v| v.map(from_unix_ms))
    }
}

/// `#[serde(with = "crate::durable::wallclock::pairs")]`: a `HashMap` as `[[key, value], …]`.
pub mod pairs {
    use super::*;

    pub fn serialize<S, K, V>(map: &HashMap<K, V>, s: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        K: Serialize,
        V: Serialize,
    {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D, K, V>(d: D) -> Result<HashMap<K, V>, D::Error>
    where
        D: Deserializer<'de>,
        K: Deserialize<'de> + Eq + Hash,
        V: Deserialize<'de>,
    {
        Vec::<(K, V)>::deserialize(d).map(|v| v.into_iter().collect())
    }
}

/// `#[serde(with = "crate::durable::wallclock::session_status")]`: a Session v2 member or
/// server status, one of AGS's constants, read back as that constant (an unknown one is an
/// error, not a leak).
pub mod session_status {
    use accelbyte::models::session::{ds_status, member_status};

    use super::*;

    const KNOWN: [&str; 10] = [
        "",
        ds_status::NEED_TO_REQUEST,
        ds_status::REQUESTED,
        ds_status::AVAILABLE,
        ds_status::FAILED_TO_REQUEST,
        ds_status::ENDED,
        member_status::INVITED,
        member_status::JOINED,
        member_status::CONNECTED,
        member_status::LEFT,
    ];
    const MORE: [&str; 1] = [member_status::KICKED];

    pub fn serialize<S: Serializer>(value: &&'static str, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(value)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
        let text = String::deserialize(d)?;
        KNOWN
            .iter()
            .chain(MORE.iter())
            .find(|k| **k == text)
            .copied()
            .ok_or_else(|| serde::de::Error::custom(format!("unknown status {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_survives_the_round_trip_within_a_millisecond_or_two() {
        let later = Instant::now() + Duration::from_secs(30);
        let back = from_unix_ms(to_unix_ms(later));
        let gap = if back > later {
            back - later
        } else {
            later - back
        };
        assert!(gap < Duration::from_millis(5), "{gap:?}");
    }

    #[test]
    fn tuple_keyed_maps_round_trip_through_json() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Holder {
            #[serde(with = "pairs")]
            map: HashMap<(String, String), u32>,
        }
        let holder = Holder {
            map: [(("ns".to_owned(), "a".to_owned()), 7)]
                .into_iter()
                .collect(),
        };
        let text = serde_json::to_string(&holder).unwrap();
        assert_eq!(text, r#"{"map":[[["ns","a"],7]]}"#);
        assert_eq!(serde_json::from_str::<Holder>(&text).unwrap(), holder);
    }
}
