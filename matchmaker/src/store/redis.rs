//! The Redis [`Store`]: what replicas share. Every state change is one Lua script, so it is
//! atomic on the server: several replicas on one Redis never put a player in two matches.
//!
//! **Lease bound.** A claim holds its tickets until `lease_until`. The engine's defaults are a
//! 30 s lease, renewed every 10 s while the pipeline runs, and a reaper pass every 1 s on every
//! replica, so the tickets of a replica that dies mid-pipeline are back in the queue within
//! about lease + reaper interval ≈ 31 s (plus clock skew between replicas), each with one
//! attempt counted. Both numbers are configurable (`EngineConfig`). Lease times are the
//! replicas' wall clocks, so keep them in sync (NTP) to well under the lease.
//!
//! # Key layout
//! Every key starts with the configured prefix `P` (default `matchbench`):
//!
//! | key | type | contents |
//! |---|---|---|
//! | `P:ticket:{ticket id}` | hash | `id`, `mode`, `members` (JSON array of player ids, leader first), `mmr`?, `region`?, `extra` (JSON object), `enqueued_at` (ms), `attempts`, `max_attempts`, `state` (`queued`, `claimed`, `matched`, `cancelled`, `timed_out`, `failed`), and by state `match_id`, `lease_until`, `session_id`, `server_ip`, `server_port`, `players` (JSON array), `reason`. Finished tickets expire after the retention period |
//! | `P:queue:{game mode}` | sorted set | queued ticket ids, score = original enqueue time (ms); ties by id |
//! | `P:player:{player id}` | string | the player's live ticket id (removed when the ticket finishes) |
//! | `P:match:{match id}` | hash | `mode`, `tickets` (JSON array of ticket ids), `lease_until` — one per claimed match |
//! | `P:leases` | sorted set | claimed match ids, score = lease end (ms) |
//! | `P:notice:{match id}` | hash | `tickets` (JSON array of ticket ids) — a recorded match whose players may not have been told yet; expires after the retention period |
//! | `P:notices` | sorted set | those match ids, score = when any replica may send their notifications (Redis's clock, ms): recording time + `notice_grace`, pushed on by whoever takes one |
//! | `P:finished` | pub/sub channel | the id of every ticket that reaches a final state, published by the script that finished it |
//!
//! Each store handle keeps one pub/sub connection subscribed to `P:finished` and turns its
//! messages into [`StoreEvent::Finished`]; after a reconnect it sends [`StoreEvent::Resync`],
//! because messages published while it was away are lost (pub/sub keeps nothing).
//!
//! The scripts build key names from the prefix (passed as the first argument) rather than
//! declaring them, which is fine on a single Redis. On Redis Cluster, put the prefix in a hash
//! tag (e.g. `{matchbench}`) so every key lands in one slot.
//!
//! Redis does not roll a script back when it fails half-way, so every script checks all its
//! preconditions before its first write; only a corrupt record (which this code never writes)
//! could stop one in the middle.
//!
//! Must not know about matching rules or the engine.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use futures_util::StreamExt as _;
use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSub};
use tokio::sync::broadcast;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{
    CancelOutcome, DEFAULT_RETENTION, DueNotice, EVENT_CAPACITY, NOTICE_GRACE, Reclaimed, Store,
    StoreError, StoreEvent, check_outcomes, check_proposal,
};
use crate::clock::UnixMillis;
use crate::ticket::{
    Attributes, ClaimedMatch, Completion, MatchId, MatchProposal, NewTicket, Party, Placement,
    PlayerId, ServerAddr, Ticket, TicketId, TicketOutcome, TicketState,
};

/// How to reach Redis and where to keep the keys.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// A `redis://` URL.
    pub url: String,
    /// The prefix of every key.
    pub prefix: String,
    /// How long finished tickets stay readable.
    pub retention: Duration,
    /// How long one command may take before the connection reports an error.
    pub response_timeout: Duration,
    /// How long a recorded match's notice waits for its replica's confirmation before any
    /// replica may send it ([`NOTICE_GRACE`]).
    pub notice_grace: Duration,
}

impl RedisConfig {
    /// Defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            prefix: "matchbench".to_owned(),
            retention: DEFAULT_RETENTION,
            response_timeout: Duration::from_secs(5),
            notice_grace: NOTICE_GRACE,
        }
    }

    /// The same, with another key prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

/// The Redis store: a cheap-clone handle over one auto-reconnecting multiplexed connection (plus
/// one pub/sub connection for announcements, closed when the last clone is dropped).
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: Arc<str>,
    retention_ms: u64,
    notice_grace_ms: u64,
    events: broadcast::Sender<StoreEvent>,
    _listener: Arc<DropGuard>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("retention_ms", &self.retention_ms)
            .finish_non_exhaustive()
    }
}

/// Matches handed back per reclaim script run, so one run never blocks Redis for long.
const RECLAIM_BATCH: usize = 100;

macro_rules! lua {
    ($body:literal) => {
        concat!(
            r#"
local P = ARGV[1]
local RETENTION = ARGV[2]
local function tkey(id) return P .. ':ticket:' .. id end
local function pkey(p) return P .. ':player:' .. p end
local function qkey(m) return P .. ':queue:' .. m end
local function mkey(id) return P .. ':match:' .. id end
local LEASES = P .. ':leases'
local NOTICES = P .. ':notices'
local function nkey(id) return P .. ':notice:' .. id end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A finished ticket: out of the queue, players freed, deleted after the retention period.
local function finish(id, state)
  local k = tkey(id)
  local t = redis.call('HMGET', k, 'members', 'mode')
  if t[1] then
    for _, p in ipairs(cjson.decode(t[1])) do
      if redis.call('GET', pkey(p)) == id then redis.call('DEL', pkey(p)) end
    end
  end
  if t[2] then redis.call('ZREM', qkey(t[2]), id) end
  redis.call('HSET', k, 'state', state)
  redis.call('HDEL', k, 'lease_until')
  redis.call('PEXPIRE', k, RETENTION)
  redis.call('PUBLISH', P .. ':finished', id)
end

-- Back in the queue at the original enqueue time.
local function requeue(id)
  local k = tkey(id)
  local t = redis.call('HMGET', k, 'mode', 'enqueued_at')
  redis.call('HSET', k, 'state', 'queued')
  redis.call('HDEL', k, 'match_id', 'lease_until')
  redis.call('ZADD', qkey(t[1]), t[2], id)
end

-- A failed attempt: back in the queue, or failed once the attempts run out.
local function failed_attempt(id, reason)
  local k = tkey(id)
  local n = redis.call('HINCRBY', k, 'attempts', 1)
  local max = tonumber(redis.call('HGET', k, 'max_attempts')) or 1
  if n >= max then
    redis.call('HSET', k, 'reason', 'gave up after ' .. n .. ' attempts: ' .. reason)
    finish(id, 'failed')
    return 'failed'
  end
  requeue(id)
  return 'queued'
end
"#,
            $body
        )
    };
}

/// ARGV: P, RETENTION, id, mode, members (JSON), enqueued_at, then field/value pairs.
/// Returns `{'ok'}`, `{'duplicate'}` or `{'conflict', player, held ticket}`.
static ENQUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(lua!(
        r#"
local id, mode, members, at = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local k = tkey(id)
if redis.call('EXISTS', k) == 1 then return {'duplicate'} end
local players = cjson.decode(members)
for _, p in ipairs(players) do
  local held = redis.call('GET', pkey(p))
  if held then
    local st = redis.call('HGET', tkey(held), 'state')
    if st == 'queued' or st == 'claimed' then return {'conflict', p, held} end
  end
end
local fields = {}
for i = 7, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', k, unpack(fields))
for _, p in ipairs(players) do redis.call('SET', pkey(p), id) end
redis.call('ZADD', qkey(mode), at, id)
return {'ok'}
"#
    ))
});

/// ARGV: P, RETENTION, match id, mode, lease_until, ticket ids...
/// Returns `{}` when any ticket is not queued in that mode (nothing changed), else the
/// HGETALL of every ticket after the claim, in argument order.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(lua!(
        r#"
local mid, mode, lease = ARGV[3], ARGV[4], ARGV[5]
local ids = {}
for i = 6, #ARGV do ids[#ids + 1] = ARGV[i] end
for _, id in ipairs(ids) do
  local t = redis.call('HMGET', tkey(id), 'state', 'mode')
  if t[1] ~= 'queued' or t[2] ~= mode then return {} end
end
for _, id in ipairs(ids) do
  redis.call('HSET', tkey(id), 'state', 'claimed', 'match_id', mid, 'lease_until', lease)
  redis.call('ZREM', qkey(mode), id)
end
redis.call('HSET', mkey(mid), 'mode', mode, 'tickets', cjson.encode(ids), 'lease_until', lease)
redis.call('ZADD', LEASES, lease, mid)
local out = {}
for _, id in ipairs(ids) do out[#out + 1] = redis.call('HGETALL', tkey(id)) end
return out
"#
    ))
});

/// ARGV: P, RETENTION, match id, lease_until. Returns 1, or 0 if the lease is gone.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(lua!(
        r#"
local mid, lease = ARGV[3], ARGV[4]
local raw = redis.call('HGET', mkey(mid), 'tickets')
if not raw then return 0 end
redis.call('HSET', mkey(mid), 'lease_until', lease)
redis.call('ZADD', LEASES, lease, mid)
for _, id in ipairs(cjson.decode(raw)) do redis.call('HSET', tkey(id), 'lease_until', lease) end
return 1
"#
    ))
});

/// ARGV: P, RETENTION, match id, outcomes (JSON array of objects with `id`, `kind`, `reason`,
/// `session_id`, `ip`, `port`, `players` (a JSON array, as a string)). Returns `{'lease_lost'}`, `{'mismatch'}` or
/// `{'ok', id, final state, ...}`.
static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(lua!(
        r#"
local mid = ARGV[3]
local raw = redis.call('HGET', mkey(mid), 'tickets')
if not raw then return {'lease_lost'} end
local ids = cjson.decode(raw)
local outcomes = cjson.decode(ARGV[4])
if #outcomes ~= #ids then return {'mismatch'} end
local expected = {}
for _, id in ipairs(ids) do expected[id] = true end
for _, o in ipairs(outcomes) do
  if not expected[o.id] then return {'mismatch'} end
  expected[o.id] = nil
  local t = redis.call('HMGET', tkey(o.id), 'state', 'match_id')
  if t[1] ~= 'claimed' or t[2] ~= mid then return {'lease_lost'} end
end
local out = {'ok'}
local notify = false
for _, o in ipairs(outcomes) do
  local k = tkey(o.id)
  local final
  if o.kind == 'matched' then
    redis.call('HSET', k, 'session_id', o.session_id, 'server_ip', o.ip, 'server_port', o.port,
      'players', o.players)
    finish(o.id, 'matched')
    final = 'matched'
  elseif o.kind == 'requeue' then
    final = failed_attempt(o.id, o.reason)
  elseif o.kind == 'release' then
    requeue(o.id)
    final = 'queued'
  else
    redis.call('HSET', k, 'reason', o.reason)
    finish(o.id, 'failed')
    final = 'failed'
  end
  out[#out + 1] = o.id
  out[#out + 1] = final
  if final == 'matched' or final == 'failed' then notify = true end
end
if notify then
  -- Players must hear of this: kept as a notice until the recording replica confirms it sent
  -- them, else any replica's reaper sends them once it is due.
  redis.call('HSET', nkey(mid), 'tickets', raw)
  redis.call('PEXPIRE', nkey(mid), RETENTION)
  redis.call('ZADD', NOTICES, now_ms() + tonumber(ARGV[5]), mid)
end
redis.call('DEL', mkey(mid))
redis.call('ZREM', LEASES, mid)
return out
"#
    ))
});

/// ARGV: P, RETENTION, hold (ms), batch size. Takes the notices that are due (by Redis's clock),
/// pushing each one's due time `hold` on so no other replica takes it meanwhile. Returns
/// `{match id, tickets (JSON), ...}`.
static DUE_NOTICES: LazyLock<Script> = LazyLock::new(|| {
    Script::new(lua!(
        r#"
local now = now_ms()
local mids = redis.call('ZRANGEBYSCORE', NOTICES, '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
local out = {}
for _, mid in ipairs(mids) do
  local raw = redis.call('HGET', nkey(mid), 'tickets')
  if raw then
    redis.call('ZADD', NOTICES, now + tonumber(ARGV[3]), mid)
    out[#out + 1] = mid
    out[#out + 1] = raw
  else
    redis.call('ZREM', NOTICES, mid)
  end
end
return out
"#
    ))
});

/// ARGV: P, RETENTION, match id. The match's players were told: forget the notice.
static NOTICE_SENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(lua!(
        r#"
redis.call('ZREM', NOTICES, ARGV[3])
redis.call('DEL', nkey(ARGV[3]))
return 1
"#
    ))
});

/// ARGV: P, RETENTION, now, batch size. Returns `{matches handled, id, final state, mode, ...}`.
static RECLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(lua!(
        r#"
local mids = redis.call('ZRANGEBYSCORE', LEASES, '-inf', ARGV[3], 'LIMIT', 0, tonumber(ARGV[4]))
local out = {tostring(#mids)}
for _, mid in ipairs(mids) do
  local raw = redis.call('HGET', mkey(mid), 'tickets')
  if raw then
    for _, id in ipairs(cjson.decode(raw)) do
      local t = redis.call('HMGET', tkey(id), 'state', 'match_id', 'mode')
      if t[1] == 'claimed' and t[2] == mid then
        out[#out + 1] = id
        out[#out + 1] = failed_attempt(id, 'the lease of match ' .. mid .. ' expired')
        out[#out + 1] = t[3]
      end
    end
  end
  redis.call('DEL', mkey(mid))
  redis.call('ZREM', LEASES, mid)
end
return out
"#
    ))
});

/// ARGV: P, RETENTION, ticket ids... Returns the ids that were queued and are now timed out.
static TIME_OUT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(lua!(
        r#"
local out = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  if redis.call('HGET', tkey(id), 'state') == 'queued' then
    finish(id, 'timed_out')
    out[#out + 1] = id
  end
end
return out
"#
    ))
});

/// ARGV: P, RETENTION, ticket id. Returns `cancelled`, `in_progress`, `finished` or `not_found`.
static CANCEL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(lua!(
        r#"
local id = ARGV[3]
local st = redis.call('HGET', tkey(id), 'state')
if not st then return 'not_found' end
if st == 'queued' then
  finish(id, 'cancelled')
  return 'cancelled'
end
if st == 'claimed' then return 'in_progress' end
return 'finished'
"#
    ))
});

impl RedisStore {
    /// Connects (and fails fast if Redis does not answer).
    pub async fn connect(config: RedisConfig) -> Result<Self, StoreError> {
        let client = redis::Client::open(config.url.as_str())?;
        let manager = ConnectionManagerConfig::new()
            .set_response_timeout(Some(config.response_timeout))
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(3);
        let conn = client.get_connection_manager_with_config(manager).await?;
        // Subscribed before `connect` returns, so nothing finished after it is missed.
        let channel = format!("{}:finished", config.prefix);
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(&channel).await?;
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let stop = CancellationToken::new();
        tokio::spawn(listen(
            client,
            channel,
            pubsub,
            events.clone(),
            stop.clone(),
        ));
        Ok(RedisStore {
            conn,
            prefix: config.prefix.into(),
            retention_ms: u64::try_from(config.retention.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
            notice_grace_ms: u64::try_from(config.notice_grace.as_millis()).unwrap_or(u64::MAX),
            events,
            _listener: Arc::new(stop.drop_guard()),
        })
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn ticket_key(&self, id: &TicketId) -> String {
        format!("{}:ticket:{}", self.prefix, id)
    }

    fn script<'s>(&self, script: &'s Script) -> redis::ScriptInvocation<'s> {
        let mut invocation = script.prepare_invoke();
        invocation.arg(&*self.prefix).arg(self.retention_ms);
        invocation
    }

    async fn load(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError> {
        let key = self.ticket_key(id);
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut self.conn.clone())
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        parse_ticket(&key, &fields).map(Some)
    }
}

/// How often the pub/sub connection is PINGed, and how long the answer may take before the
/// connection counts as dead: a dead subscription is noticed within about 4 s.
const PUBSUB_PING_EVERY: Duration = Duration::from_secs(2);
const PUBSUB_PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Forwards `P:finished` messages as [`StoreEvent::Finished`] until `stop`, resubscribing (with
/// backoff, then a [`StoreEvent::Resync`]: waiters re-read what they may have missed) whenever
/// the connection drops or stops answering PINGs.
async fn listen(
    client: redis::Client,
    channel: String,
    mut pubsub: PubSub,
    events: broadcast::Sender<StoreEvent>,
    stop: CancellationToken,
) {
    const FIRST_BACKOFF: Duration = Duration::from_millis(100);
    let mut backoff = FIRST_BACKOFF;
    loop {
        {
            let (mut sink, mut messages) = pubsub.split();
            let mut ping = tokio::time::interval(PUBSUB_PING_EVERY);
            ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    message = messages.next() => {
                        let Some(message) = message else { break };
                        backoff = FIRST_BACKOFF;
                        match message.get_payload::<String>() {
                            // No receiver is not an error: nobody is waiting.
                            Ok(id) => drop(events.send(StoreEvent::Finished(TicketId::new(id)))),
                            Err(e) => tracing::warn!(error = %e, "unreadable announcement"),
                        }
                    }
                    _ = ping.tick() => {
                        // A connection that died silently (a hung Redis, a cut link) never
                        // ends the stream: a PING unanswered in time says so.
                        let answered =
                            tokio::time::timeout(PUBSUB_PING_TIMEOUT, sink.ping::<redis::Value>())
                                .await;
                        if !matches!(answered, Ok(Ok(_))) {
                            break;
                        }
                    }
                }
            }
        }
        tracing::warn!(%channel, "redis pub/sub connection lost; resubscribing");
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
            let resubscribed = async {
                let mut fresh = client.get_async_pubsub().await?;
                fresh.subscribe(&channel).await?;
                Ok::<_, redis::RedisError>(fresh)
            };
            match resubscribed.await {
                Ok(fresh) => {
                    pubsub = fresh;
                    let _ = events.send(StoreEvent::Resync);
                    break;
                }
                Err(e) => tracing::warn!(error = %e, "redis pub/sub resubscribe failed"),
            }
        }
    }
}

/// The hash fields of a new ticket.
fn ticket_fields(ticket: &NewTicket) -> Result<Vec<(&'static str, String)>, StoreError> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt {
        key: ticket.id.to_string(),
        detail: e.to_string(),
    };
    let members: Vec<&str> = ticket
        .party
        .members()
        .iter()
        .map(PlayerId::as_str)
        .collect();
    let mut fields = vec![
        ("id", ticket.id.to_string()),
        ("mode", ticket.game_mode.clone()),
        ("members", serde_json::to_string(&members).map_err(corrupt)?),
        ("enqueued_at", ticket.enqueued_at.as_millis().to_string()),
        ("attempts", "0".to_owned()),
        ("max_attempts", ticket.max_attempts.to_string()),
        ("state", "queued".to_owned()),
        (
            "extra",
            serde_json::to_string(&ticket.attributes.extra).map_err(corrupt)?,
        ),
    ];
    if let Some(mmr) = ticket.attributes.mmr {
        fields.push(("mmr", mmr.to_string()));
    }
    if let Some(region) = &ticket.attributes.region {
        fields.push(("region", region.clone()));
    }
    Ok(fields)
}

/// Reads a ticket hash back.
fn parse_ticket(key: &str, fields: &HashMap<String, String>) -> Result<Ticket, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        key: key.to_owned(),
        detail,
    };
    let text = |name: &str| {
        fields
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| corrupt(format!("missing field {name}")))
    };
    fn number<T: std::str::FromStr>(
        value: &str,
        name: &str,
        corrupt: impl Fn(String) -> StoreError,
    ) -> Result<T, StoreError> {
        value
            .parse()
            .map_err(|_| corrupt(format!("field {name} is not a number: {value:?}")))
    }

    let members: Vec<String> = serde_json::from_str(text("members")?)
        .map_err(|e| corrupt(format!("field members: {e}")))?;
    let party = Party::new(members.into_iter().map(PlayerId::new).collect())
        .map_err(|e| corrupt(format!("field members: {e}")))?;
    let extra = match fields.get("extra") {
        Some(raw) => serde_json::from_str(raw).map_err(|e| corrupt(format!("field extra: {e}")))?,
        None => Default::default(),
    };
    let mmr = match fields.get("mmr") {
        Some(raw) => Some(number(raw, "mmr", corrupt)?),
        None => None,
    };
    let match_id = || text("match_id").map(MatchId::new);
    let state = match text("state")? {
        "queued" => TicketState::Queued,
        "claimed" => TicketState::Claimed {
            match_id: match_id()?,
            lease_until: UnixMillis(number(text("lease_until")?, "lease_until", corrupt)?),
        },
        "matched" => TicketState::Matched {
            match_id: match_id()?,
            placement: Placement {
                session_id: text("session_id")?.to_owned(),
                server: ServerAddr {
                    ip: text("server_ip")?.to_owned(),
                    port: number(text("server_port")?, "server_port", corrupt)?,
                },
                players: match fields.get("players") {
                    Some(raw) => serde_json::from_str::<Vec<String>>(raw)
                        .map_err(|e| corrupt(format!("field players: {e}")))?
                        .into_iter()
                        .map(PlayerId::new)
                        .collect(),
                    None => Vec::new(),
                },
            },
        },
        "cancelled" => TicketState::Cancelled,
        "timed_out" => TicketState::TimedOut,
        "failed" => TicketState::Failed {
            reason: fields.get("reason").cloned().unwrap_or_default(),
        },
        other => return Err(corrupt(format!("unknown state {other:?}"))),
    };
    Ok(Ticket {
        id: TicketId::new(text("id")?),
        game_mode: text("mode")?.to_owned(),
        party,
        attributes: Attributes {
            mmr,
            region: fields.get("region").cloned(),
            extra,
        },
        enqueued_at: UnixMillis(number(text("enqueued_at")?, "enqueued_at", corrupt)?),
        attempts: number(text("attempts")?, "attempts", corrupt)?,
        max_attempts: number(text("max_attempts")?, "max_attempts", corrupt)?,
        state,
    })
}

/// Turns a flat `[field, value, ...]` list (HGETALL inside a script) into a map.
fn pairs(flat: Vec<String>) -> HashMap<String, String> {
    let mut map = HashMap::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        map.insert(k, v);
    }
    map
}

/// Reads `{id, state, ...}` triples or pairs into a completion.
fn record(done: &mut Completion, id: String, state: &str) {
    let id = TicketId::new(id);
    match state {
        "matched" => done.matched.push(id),
        "queued" => done.requeued.push(id),
        _ => done.failed.push(id),
    }
}

fn unexpected(script: &str, reply: &[String]) -> StoreError {
    StoreError::Corrupt {
        key: format!("{script} script"),
        detail: format!("unexpected reply {reply:?}"),
    }
}

impl Store for RedisStore {
    async fn enqueue(&self, ticket: NewTicket) -> Result<Ticket, StoreError> {
        let members: Vec<&str> = ticket
            .party
            .members()
            .iter()
            .map(PlayerId::as_str)
            .collect();
        let members = serde_json::to_string(&members).map_err(|e| StoreError::Corrupt {
            key: ticket.id.to_string(),
            detail: e.to_string(),
        })?;
        let mut invocation = self.script(&ENQUEUE);
        invocation
            .arg(ticket.id.as_str())
            .arg(&ticket.game_mode)
            .arg(members)
            .arg(ticket.enqueued_at.as_millis());
        for (field, value) in ticket_fields(&ticket)? {
            invocation.arg(field).arg(value);
        }
        let reply: Vec<String> = invocation.invoke_async(&mut self.conn.clone()).await?;
        match reply.as_slice() {
            [ok] if ok == "ok" => Ok(Ticket::queued(ticket)),
            [dup] if dup == "duplicate" => Err(StoreError::DuplicateTicket(ticket.id)),
            [conflict, player, held] if conflict == "conflict" => Err(StoreError::Conflict {
                player: PlayerId::new(player.clone()),
                ticket: TicketId::new(held.clone()),
            }),
            _ => Err(unexpected("enqueue", &reply)),
        }
    }

    async fn get(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError> {
        self.load(id).await
    }

    async fn live_ticket(&self, player: &PlayerId) -> Result<Option<Ticket>, StoreError> {
        let held: Option<String> = redis::cmd("GET")
            .arg(format!("{}:player:{}", self.prefix, player))
            .query_async(&mut self.conn.clone())
            .await?;
        let Some(held) = held else {
            return Ok(None);
        };
        Ok(self
            .load(&TicketId::new(held))
            .await?
            .filter(Ticket::is_live))
    }

    async fn cancel(&self, id: &TicketId) -> Result<CancelOutcome, StoreError> {
        let mut invocation = self.script(&CANCEL);
        invocation.arg(id.as_str());
        let reply: String = invocation.invoke_async(&mut self.conn.clone()).await?;
        match reply.as_str() {
            "cancelled" => Ok(CancelOutcome::Cancelled),
            "in_progress" => Ok(CancelOutcome::InProgress),
            "finished" => Ok(CancelOutcome::AlreadyFinished),
            "not_found" => Ok(CancelOutcome::NotFound),
            _ => Err(unexpected("cancel", &[reply])),
        }
    }

    async fn queued(&self, game_mode: &str, limit: usize) -> Result<Vec<Ticket>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(format!("{}:queue:{}", self.prefix, game_mode))
            .arg(0)
            .arg(limit.saturating_sub(1))
            .query_async(&mut conn)
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids
            .into_iter()
            .map(|id| format!("{}:ticket:{}", self.prefix, id))
            .collect();
        let mut pipe = redis::pipe();
        for key in &keys {
            pipe.cmd("HGETALL").arg(key);
        }
        let hashes: Vec<HashMap<String, String>> = pipe.query_async(&mut conn).await?;
        let mut tickets = Vec::with_capacity(hashes.len());
        for (key, fields) in keys.iter().zip(&hashes) {
            if fields.is_empty() {
                continue; // finished and expired between the two reads
            }
            match parse_ticket(key, fields) {
                Ok(ticket) if ticket.state == TicketState::Queued => tickets.push(ticket),
                Ok(_) => {} // claimed or finished between the two reads
                Err(e) => tracing::warn!(error = %e, "skipping an unreadable queued ticket"),
            }
        }
        Ok(tickets)
    }

    async fn queue_depth(&self, game_mode: &str) -> Result<usize, StoreError> {
        Ok(redis::cmd("ZCARD")
            .arg(format!("{}:queue:{}", self.prefix, game_mode))
            .query_async(&mut self.conn.clone())
            .await?)
    }

    async fn try_claim(
        &self,
        proposal: &MatchProposal,
        lease_until: UnixMillis,
    ) -> Result<Option<ClaimedMatch>, StoreError> {
        let ids = check_proposal(proposal)?;
        let match_id = MatchId::generate();
        let mut invocation = self.script(&CLAIM);
        invocation
            .arg(match_id.as_str())
            .arg(&proposal.game_mode)
            .arg(lease_until.as_millis());
        for id in &ids {
            invocation.arg(id.as_str());
        }
        let reply: Vec<Vec<String>> = invocation.invoke_async(&mut self.conn.clone()).await?;
        if reply.is_empty() {
            return Ok(None);
        }
        if reply.len() != ids.len() {
            return Err(StoreError::Corrupt {
                key: "claim script".to_owned(),
                detail: format!("{} tickets back for {}", reply.len(), ids.len()),
            });
        }
        let mut claimed = Vec::with_capacity(ids.len());
        for (id, flat) in ids.iter().zip(reply) {
            claimed.push(parse_ticket(&self.ticket_key(id), &pairs(flat))?);
        }
        let mut claimed = claimed.into_iter();
        let teams = proposal
            .teams
            .iter()
            .map(|team| claimed.by_ref().take(team.len()).collect())
            .collect();
        Ok(Some(ClaimedMatch {
            id: match_id,
            game_mode: proposal.game_mode.clone(),
            region: proposal.region.clone(),
            teams,
            lease_until,
        }))
    }

    async fn renew_lease(
        &self,
        match_id: &MatchId,
        lease_until: UnixMillis,
    ) -> Result<bool, StoreError> {
        let mut invocation = self.script(&RENEW);
        invocation
            .arg(match_id.as_str())
            .arg(lease_until.as_millis());
        let renewed: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(renewed == 1)
    }

    async fn complete(
        &self,
        claimed: &ClaimedMatch,
        outcomes: &[(TicketId, TicketOutcome)],
    ) -> Result<Completion, StoreError> {
        check_outcomes(claimed, outcomes)?;
        let encoded: Vec<serde_json::Value> = outcomes
            .iter()
            .map(|(id, outcome)| {
                let (kind, reason, session, ip, port, players) = match outcome {
                    TicketOutcome::Matched(p) => {
                        let players: Vec<&str> = p.players.iter().map(PlayerId::as_str).collect();
                        (
                            "matched",
                            "",
                            p.session_id.as_str(),
                            p.server.ip.as_str(),
                            p.server.port.to_string(),
                            serde_json::to_string(&players)?,
                        )
                    }
                    TicketOutcome::Requeue { reason } => (
                        "requeue",
                        reason.as_str(),
                        "",
                        "",
                        String::new(),
                        String::new(),
                    ),
                    TicketOutcome::Release => ("release", "", "", "", String::new(), String::new()),
                    TicketOutcome::Fail { reason } => (
                        "fail",
                        reason.as_str(),
                        "",
                        "",
                        String::new(),
                        String::new(),
                    ),
                };
                Ok(serde_json::json!({
                    "id": id.as_str(), "kind": kind, "reason": reason,
                    "session_id": session, "ip": ip, "port": port, "players": players,
                }))
            })
            .collect::<Result<_, serde_json::Error>>()
            .map_err(|e| StoreError::Corrupt {
                key: claimed.id.to_string(),
                detail: e.to_string(),
            })?;
        let encoded = serde_json::to_string(&encoded).map_err(|e| StoreError::Corrupt {
            key: claimed.id.to_string(),
            detail: e.to_string(),
        })?;
        let mut invocation = self.script(&COMPLETE);
        invocation
            .arg(claimed.id.as_str())
            .arg(encoded)
            .arg(self.notice_grace_ms);
        let reply: Vec<String> = invocation.invoke_async(&mut self.conn.clone()).await?;
        let mut it = reply.iter();
        match it.next().map(String::as_str) {
            Some("ok") => {
                let mut done = Completion::default();
                while let (Some(id), Some(state)) = (it.next(), it.next()) {
                    record(&mut done, id.clone(), state);
                }
                Ok(done)
            }
            Some("lease_lost") => Err(StoreError::LeaseLost(claimed.id.clone())),
            Some("mismatch") => Err(StoreError::OutcomeMismatch(claimed.id.clone())),
            _ => Err(unexpected("complete", &reply)),
        }
    }

    async fn due_notices(&self, hold: Duration) -> Result<Vec<DueNotice>, StoreError> {
        let mut invocation = self.script(&DUE_NOTICES);
        invocation
            .arg(u64::try_from(hold.as_millis()).unwrap_or(u64::MAX))
            .arg(RECLAIM_BATCH);
        let reply: Vec<String> = invocation.invoke_async(&mut self.conn.clone()).await?;
        let mut out = Vec::new();
        let mut it = reply.into_iter();
        while let (Some(id), Some(raw)) = (it.next(), it.next()) {
            let ids: Vec<String> = serde_json::from_str(&raw).map_err(|e| StoreError::Corrupt {
                key: format!("match {id}"),
                detail: e.to_string(),
            })?;
            let mut tickets = Vec::with_capacity(ids.len());
            for ticket in ids {
                if let Some(t) = self.load(&TicketId::new(ticket)).await? {
                    tickets.push(t);
                }
            }
            out.push(DueNotice {
                match_id: MatchId::new(id),
                tickets,
            });
        }
        Ok(out)
    }

    async fn notice_sent(&self, id: &MatchId) -> Result<(), StoreError> {
        let mut invocation = self.script(&NOTICE_SENT);
        invocation.arg(id.as_str());
        let _: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(())
    }

    async fn reclaim_expired(&self, now: UnixMillis) -> Result<Reclaimed, StoreError> {
        let mut out = Reclaimed::default();
        let mut done = Completion::default();
        loop {
            let mut invocation = self.script(&RECLAIM);
            invocation.arg(now.as_millis()).arg(RECLAIM_BATCH);
            let reply: Vec<String> = invocation.invoke_async(&mut self.conn.clone()).await?;
            let mut it = reply.iter();
            let handled: usize = it
                .next()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| unexpected("reclaim", &reply))?;
            while let (Some(id), Some(state), Some(mode)) = (it.next(), it.next(), it.next()) {
                record(&mut done, id.clone(), state);
                if !out.game_modes.contains(mode) {
                    out.game_modes.push(mode.clone());
                }
            }
            if handled < RECLAIM_BATCH {
                break;
            }
        }
        out.requeued = done.requeued;
        out.failed = done.failed;
        out.game_modes.sort();
        Ok(out)
    }

    async fn time_out(&self, ids: &[TicketId]) -> Result<Vec<TicketId>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = self.script(&TIME_OUT);
        for id in ids {
            invocation.arg(id.as_str());
        }
        let reply: Vec<String> = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(reply.into_iter().map(TicketId::new).collect())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let _: String = redis::cmd("PING")
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    fn events(&self) -> broadcast::Receiver<StoreEvent> {
        self.events.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_ticket_round_trips_through_its_hash() {
        let new = NewTicket {
            id: "t1".into(),
            game_mode: "2v2".into(),
            party: Party::new(vec!["a".into(), "b".into()]).expect("party"),
            attributes: Attributes {
                mmr: Some(1_234),
                region: Some("eu".into()),
                extra: [("k".to_owned(), "v".to_owned())].into(),
            },
            enqueued_at: UnixMillis(1_700_000_000_123),
            max_attempts: 3,
        };
        let hash: HashMap<String, String> = ticket_fields(&new)
            .expect("fields")
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let back = parse_ticket("k", &hash).expect("parses");
        assert_eq!(back, Ticket::queued(new));
    }

    #[test]
    fn corrupt_hashes_are_errors_not_panics() {
        let base = [
            ("id", "t"),
            ("mode", "m"),
            ("members", "[\"a\"]"),
            ("enqueued_at", "5"),
            ("attempts", "0"),
            ("max_attempts", "3"),
            ("state", "queued"),
        ];
        assert!(parse_ticket("k", &fields(&base)).is_ok());
        for (field, bad) in [
            ("members", "not json"),
            ("members", "[]"),
            ("enqueued_at", "soon"),
            ("state", "exploded"),
            ("state", "claimed"),
        ] {
            let mut map = fields(&base);
            map.insert(field.to_owned(), bad.to_owned());
            let err = parse_ticket("k", &map).expect_err(bad);
            assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        }
        let mut missing = fields(&base);
        missing.remove("mode");
        assert!(parse_ticket("k", &missing).is_err());
    }
}
