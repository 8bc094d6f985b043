//! AGS match tickets → the matchmaker's [`Ticket`]s, checked against a pool's rules.
//!
//! How a ticket is read:
//! - the **party** is the ticket's players (a `party_session_id` marks a party; a ticket is
//!   never split either way), at least one, no player twice, at most the rules' party size;
//! - the **skill** is the ticket attribute named by the rules' skill attribute when the ticket
//!   carries it (e.g. added by `EnrichTicket`), else the mean of the players' values of that
//!   attribute (the stat code AGS fetched), rounded; a ticket without any matches any skill;
//! - the **region** is the region of lowest latency among `latencies` (ties by name), leaving
//!   out regions above the rules' `region_latency_max_ms`;
//! - the **enqueue time** is `CreatedAt`, so the rules' skill widening, region wait and timeout
//!   run on the time the ticket has waited in AGS, tick after tick.
//!
//! Must not know about gRPC streams; only about the generated message types.

use std::collections::BTreeMap;

use prost_types::value::Kind;
use prost_types::{Struct, Timestamp, Value};

use super::proto;
use super::rules::{POOL_MODE, PoolRules};
use crate::clock::UnixMillis;
use crate::ticket::{Attributes, Party, PlayerId, Ticket, TicketId, TicketState};

/// Why a ticket can never be matched under the rules.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("ticket {ticket}: {why}")]
pub struct InvalidTicket {
    pub ticket: String,
    pub why: String,
}

/// A ticket the rules accept, with what matching and the answer need.
#[derive(Clone, Debug)]
pub struct Admitted {
    /// The matchmaker's view of it (queued, in the pool's mode).
    pub ticket: Ticket,
    /// Regions the ticket accepts, lowest latency first (all of them when it reported none).
    pub regions: Vec<(String, i64)>,
    /// Whether the ticket reported latencies at all.
    pub reported_latencies: bool,
}

impl Admitted {
    /// The ticket's latency to `region`, if it accepts that region. A ticket that reported no
    /// latencies accepts every region (latency unknown).
    pub fn accepts(&self, region: &str) -> bool {
        !self.reported_latencies || self.regions.iter().any(|(r, _)| r == region)
    }
}

/// Checks `ticket` against `rules` and converts it; a ticket without `CreatedAt` counts as
/// created `now`.
pub fn admit(
    ticket: &proto::Ticket,
    rules: &PoolRules,
    now: UnixMillis,
) -> Result<Admitted, InvalidTicket> {
    let invalid = |why: String| InvalidTicket {
        ticket: if ticket.ticket_id.is_empty() {
            "<no ticket_id>".to_owned()
        } else {
            ticket.ticket_id.clone()
        },
        why,
    };
    if ticket.ticket_id.is_empty() {
        return Err(invalid("ticket_id is empty".to_owned()));
    }
    let mut members = Vec::with_capacity(ticket.players.len());
    for (i, player) in ticket.players.iter().enumerate() {
        if player.player_id.is_empty() {
            return Err(invalid(format!("players[{i}].player_id is empty")));
        }
        members.push(PlayerId::new(player.player_id.clone()));
    }
    let party = Party::new(members).map_err(|e| invalid(e.to_string()))?;
    let size = party.size();
    if u32::try_from(size).map_or(true, |n| n > rules.max_party_size) {
        return Err(invalid(format!(
            "a party of {size} players does not fit: the rules place at most {} players together",
            rules.max_party_size
        )));
    }
    let mmr = skill_of(ticket, &rules.skill_attribute).map_err(invalid)?;

    let mut regions = Vec::with_capacity(ticket.latencies.len());
    for (region, &ms) in &ticket.latencies {
        if ms < 0 {
            return Err(invalid(format!("latencies.{region} is negative ({ms} ms)")));
        }
        if rules
            .region_latency_max_ms
            .is_none_or(|max| u64::try_from(ms).is_ok_and(|ms| ms <= max))
        {
            regions.push((region.clone(), ms));
        }
    }
    regions.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    let reported_latencies = !ticket.latencies.is_empty();
    if let Some(max) = rules.region_latency_max_ms {
        if regions.is_empty() {
            let why = match ticket.latencies.iter().min_by_key(|(r, ms)| (**ms, *r)) {
                Some((region, ms)) => format!(
                    "no region within region_latency_max_ms {max} (best: {region} at {ms} ms)"
                ),
                None => {
                    format!("no latencies reported, and the rules need a region within {max} ms")
                }
            };
            return Err(invalid(why));
        }
    }

    Ok(Admitted {
        ticket: Ticket {
            id: TicketId::new(ticket.ticket_id.clone()),
            game_mode: POOL_MODE.to_owned(),
            party,
            attributes: Attributes {
                mmr,
                region: regions.first().map(|(r, _)| r.clone()),
                extra: BTreeMap::new(),
            },
            enqueued_at: ticket.created_at.as_ref().map_or(now, created_at),
            attempts: 0,
            max_attempts: 1,
            state: TicketState::Queued,
        },
        regions,
        reported_latencies,
    })
}

/// The ticket's skill: its own attribute, else the players' mean; `None` when nobody has one.
pub fn skill_of(ticket: &proto::Ticket, attribute: &str) -> Result<Option<u32>, String> {
    if let Some(value) = field(ticket.ticket_attributes.as_ref(), attribute) {
        return skill_value(value)
            .map(Some)
            .map_err(|kind| format!("ticket_attributes.{attribute} is {kind}, not a skill value"));
    }
    let mut sum = 0.0;
    let mut count = 0u32;
    for (i, player) in ticket.players.iter().enumerate() {
        if let Some(value) = field(player.attributes.as_ref(), attribute) {
            let v = skill_value(value).map_err(|kind| {
                format!("players[{i}].attributes.{attribute} is {kind}, not a skill value")
            })?;
            sum += f64::from(v);
            count += 1;
        }
    }
    // The mean of u32 values fits a u32.
    Ok((count > 0).then(|| (sum / f64::from(count)).round() as u32))
}

fn field<'a>(s: Option<&'a Struct>, name: &str) -> Option<&'a Value> {
    s?.fields
        .get(name)
        .filter(|v| !matches!(v.kind, None | Some(Kind::NullValue(_))))
}

/// A non-negative finite number (or a numeric string), rounded; else a description of it.
fn skill_value(value: &Value) -> Result<u32, String> {
    let number = match &value.kind {
        Some(Kind::NumberValue(n)) => *n,
        Some(Kind::StringValue(s)) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("the string {s:?}"))?,
        Some(Kind::BoolValue(b)) => return Err(format!("the boolean {b}")),
        Some(Kind::StructValue(_)) => return Err("an object".to_owned()),
        Some(Kind::ListValue(_)) => return Err("a list".to_owned()),
        Some(Kind::NullValue(_)) | None => return Err("null".to_owned()),
    };
    if !number.is_finite() || number < 0.0 || number > f64::from(u32::MAX) {
        return Err(format!("{number}"));
    }
    Ok(number.round() as u32)
}

/// `CreatedAt` as wall-clock milliseconds (the epoch when before it).
pub fn created_at(ts: &Timestamp) -> UnixMillis {
    let ms = ts
        .seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(ts.nanos) / 1_000_000);
    UnixMillis(u64::try_from(ms).unwrap_or(0))
}

/// Wall-clock milliseconds as a protobuf timestamp.
pub fn timestamp(at: UnixMillis) -> Timestamp {
    let ms = i64::try_from(at.as_millis()).unwrap_or(i64::MAX);
    Timestamp {
        seconds: ms / 1000,
        nanos: i32::try_from((ms % 1000) * 1_000_000).unwrap_or(0),
    }
}

/// A protobuf number value.
pub fn number(n: f64) -> Value {
    Value {
        kind: Some(Kind::NumberValue(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn player(id: &str, mmr: Option<f64>) -> proto::ticket::PlayerData {
        proto::ticket::PlayerData {
            player_id: id.to_owned(),
            attributes: mmr.map(|m| Struct {
                fields: BTreeMap::from([("mmr".to_owned(), number(m))]),
            }),
        }
    }

    #[test]
    fn skill_is_the_ticket_attribute_or_the_players_mean() {
        let mut t = proto::Ticket {
            ticket_id: "t".into(),
            players: vec![
                player("a", Some(1000.0)),
                player("b", Some(1201.0)),
                player("c", None),
            ],
            ..Default::default()
        };
        assert_eq!(skill_of(&t, "mmr"), Ok(Some(1101)));
        t.ticket_attributes = Some(Struct {
            fields: BTreeMap::from([("mmr".to_owned(), number(5.0))]),
        });
        assert_eq!(skill_of(&t, "mmr"), Ok(Some(5)));
        assert_eq!(skill_of(&t, "elo"), Ok(None));
        t.ticket_attributes = Some(Struct {
            fields: BTreeMap::from([("mmr".to_owned(), number(-1.0))]),
        });
        assert!(skill_of(&t, "mmr").is_err());
    }

    #[test]
    fn timestamps_round_trip() {
        let at = UnixMillis(1_700_000_123_456);
        assert_eq!(created_at(&timestamp(at)), at);
    }
}
