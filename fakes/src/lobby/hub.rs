//! The lobby registry: who is connected, and the notifications waiting for those who are not.
//!
//! A [`Hub`] maps `(namespace, user id)` to at most one live connection plus a backlog of
//! notifications. The socket task of each connection owns a [`Connection`] (its receiving end)
//! and only writes what arrives there; everything else — REST notifications, broadcasts,
//! replacement by a newer connection — goes through the hub.
//!
//! Design points, and why:
//! - **One live connection per user.** A newer connection for the same user replaces the old
//!   one, which is told to close with [`CLOSE_MULTIPLE_SESSIONS`] (4041), as AGS does.
//! - **Small per-connection memory.** A connection costs a registry entry, a bounded tokio mpsc
//!   channel (blocks are allocated on demand, so an idle channel holds one small block) and a
//!   oneshot for the close signal; the registry is sharded so 100,000 sockets do not contend on
//!   one lock.
//! - **Offline notifications are queued** (AGS behaviour unknown; this is our documented
//!   choice): a notification for a user who is not connected waits in a per-user backlog of at
//!   most [`BACKLOG_LIMIT`], oldest dropped first, and is delivered in order on connect.
//! - **Order is kept on connect.** While a new connection still has a backlog to receive, new
//!   notifications join the back of that backlog instead of overtaking it; the socket task pulls
//!   the backlog into its channel with [`Connection::pump`] as room frees up.
//! - **A full channel drops** the notification and counts it ([`Delivery::Dropped`]): a client
//!   that does not read must not grow the emulator's memory without bound.
//! - **One send path.** Every `messageNotif` is built and sent by `Hub::emit`, which asks the
//!   optional [`NotifyHook`] (fault injection) whether to drop, delay or duplicate it first.
//!
//! No lock is held across an `.await`: every operation here is synchronous.

use std::borrow::Cow;
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use accelbyte::models::lobby::MessageNotif;
use chrono::{DateTime, SecondsFormat, Utc};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

/// Outbound frames a connection's channel holds before further notifications are dropped.
/// Lobby traffic is a few notifications per match, so 128 only fills for a client that has
/// stopped reading.
pub const CHANNEL_CAPACITY: usize = 128;

/// Notifications kept per user while they are offline (or still receiving an earlier
/// backlog); beyond this the oldest is dropped and counted.
pub const BACKLOG_LIMIT: usize = 1_000;

/// Close code for a connection replaced by a newer one of the same user (Unity `WsCloseCode`
/// `DisconnectDueToMultipleSessions`).
pub const CLOSE_MULTIPLE_SESSIONS: u16 = 4041;

/// Close code for a user whose tokens an admin revoked (Unity `WsCloseCode`
/// `DisconnectTokenRevokedCode`).
pub const CLOSE_TOKEN_REVOKED: u16 = 4020;

/// Close code for a user who logged out (Unity `WsCloseCode` `DisconnectDueToIAMLoggedOut`).
pub const CLOSE_LOGGED_OUT: u16 = 4021;

/// Close code for "unknown error" (Unity `WsCloseCode.Unknown`), used when a connection lost
/// its registry entry without being told why.
pub const CLOSE_UNKNOWN: u16 = 4099;

/// Registry shards: a power of two comfortably above the core count, so concurrent
/// notifications for different users rarely meet on one lock.
const SHARDS: usize = 64;

/// Why the hub wants a connection closed: the WebSocket close code and reason to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    pub code: u16,
    pub reason: Cow<'static, str>,
}

impl Close {
    /// A newer connection of the same user took over.
    pub const MULTIPLE_SESSIONS: Close = Close {
        code: CLOSE_MULTIPLE_SESSIONS,
        reason: Cow::Borrowed("multiple sessions"),
    };
    /// An admin revoked the user's tokens.
    pub const TOKEN_REVOKED: Close = Close {
        code: CLOSE_TOKEN_REVOKED,
        reason: Cow::Borrowed("token revoked"),
    };
    /// The user logged out.
    pub const LOGGED_OUT: Close = Close {
        code: CLOSE_LOGGED_OUT,
        reason: Cow::Borrowed("logged out"),
    };
    /// The registry entry vanished without a reason (should not happen; kept total).
    pub const UNKNOWN: Close = Close {
        code: CLOSE_UNKNOWN,
        reason: Cow::Borrowed("unknown error"),
    };
}

/// What became of one notification for one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Delivery {
    /// Handed to the user's live connection.
    Delivered,
    /// Kept in the user's backlog: they are offline, or still receiving older notifications.
    Queued,
    /// The user's connection is not reading and its channel is full; the notification is gone.
    Dropped,
}

/// Counters since start (not reset by [`Hub::reset`], so a load test can diff snapshots).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LobbyStats {
    /// Sockets currently open (a replaced socket counts until it has closed).
    pub connections_open: u64,
    /// Connections ever registered.
    pub connects_total: u64,
    /// Connections closed with 4041 because the same user connected again.
    pub sessions_replaced: u64,
    /// `messageNotif` frames handed to a live connection (including backlog flushed on connect).
    pub notifications_delivered: u64,
    /// Notifications put in a backlog (each is later counted again when delivered).
    pub notifications_queued: u64,
    /// Notifications lost: a full connection channel, or the oldest of an overflowing backlog.
    pub notifications_dropped: u64,
    /// Text or binary frames received from clients.
    pub frames_received: u64,
    /// `errorNotif` frames sent in answer to frames the lobby could not accept.
    pub error_frames_sent: u64,
    /// Notifications fault injection dropped (also counted in `notifications_dropped`).
    pub notifications_fault_dropped: u64,
    /// Notifications fault injection held back before sending.
    pub notifications_fault_delayed: u64,
    /// Extra copies fault injection sent (each also counted in `notifications_delivered`).
    pub notifications_fault_duplicated: u64,
}

#[derive(Debug, Default)]
struct Counters {
    connections_open: AtomicU64,
    connects_total: AtomicU64,
    sessions_replaced: AtomicU64,
    notifications_delivered: AtomicU64,
    notifications_queued: AtomicU64,
    notifications_dropped: AtomicU64,
    frames_received: AtomicU64,
    error_frames_sent: AtomicU64,
    notifications_fault_dropped: AtomicU64,
    notifications_fault_delayed: AtomicU64,
    notifications_fault_duplicated: AtomicU64,
}

/// Relaxed is enough: each counter is independent and only read for reporting.
fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// One notification, shared by every recipient of a broadcast (hence the `Arc`s).
#[derive(Debug, Clone)]
struct Pending {
    id: u128,
    topic: Arc<str>,
    payload: Arc<str>,
    sent_at: DateTime<Utc>,
}

impl Pending {
    fn new(topic: &str, payload: &str) -> Self {
        Self {
            id: uuid::Uuid::new_v4().as_u128(),
            topic: topic.into(),
            payload: payload.into(),
            sent_at: Utc::now(),
        }
    }
}

/// One user's queued notifications as saved state keeps them.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SavedBacklog {
    namespace: String,
    user_id: String,
    notifications: Vec<SavedNotification>,
}

/// A queued notification as saved state keeps it.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SavedNotification {
    /// 32 hex digits (a JSON number cannot carry 128 bits).
    id: String,
    topic: String,
    payload: String,
    sent_at: DateTime<Utc>,
}

impl From<&Pending> for SavedNotification {
    fn from(p: &Pending) -> Self {
        Self {
            id: format!("{:032x}", p.id),
            topic: p.topic.to_string(),
            payload: p.payload.to_string(),
            sent_at: p.sent_at,
        }
    }
}

impl From<SavedNotification> for Pending {
    fn from(s: SavedNotification) -> Self {
        Self {
            // An unreadable id gets a fresh one: the notification itself is what matters.
            id: u128::from_str_radix(&s.id, 16).unwrap_or_else(|_| uuid::Uuid::new_v4().as_u128()),
            topic: s.topic.into(),
            payload: s.payload.into(),
            sent_at: s.sent_at,
        }
    }
}

/// The hub's end of a live connection.
#[derive(Debug)]
struct Live {
    id: u64,
    tx: mpsc::Sender<String>,
    close: oneshot::Sender<Close>,
}

impl Live {
    /// Tells the socket task to close with `close`; a task that already ended ignores it.
    fn close(self, close: Close) {
        let _ = self.close.send(close);
    }
}

/// Everything the hub keeps for one user.
#[derive(Debug, Default)]
struct Slot {
    live: Option<Live>,
    backlog: VecDeque<Pending>,
}

impl Slot {
    fn is_empty(&self) -> bool {
        self.live.is_none() && self.backlog.is_empty()
    }
}

/// Namespace → user id → slot. Boxed strs: the keys never grow, so no spare capacity.
type Shard = HashMap<Box<str>, HashMap<Box<str>, Slot>>;

/// What fault injection sees of a notification about to be sent.
#[derive(Debug, Clone, Copy)]
pub struct NotifyAttempt<'a> {
    pub user_id: &'a str,
    pub topic: &'a str,
    /// The lobby frame type; every notification the hub sends is a `messageNotif`.
    pub message_type: &'a str,
}

/// What fault injection decides for one notification (the default: send it once, now).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NotifyFault {
    /// Lose it: nothing is sent, the sender still sees it delivered.
    pub drop: bool,
    /// Send it this much later (newer notifications may overtake it).
    pub delay: Option<Duration>,
    /// Send this many extra copies, with the same id.
    pub extra_copies: u32,
}

/// Decides the fate of each notification. Called under the hub's shard lock: it must be quick
/// and must not call back into the [`Hub`].
pub type NotifyHook = Arc<dyn Fn(&NotifyAttempt<'_>) -> NotifyFault + Send + Sync>;

/// The installed hook, if any (a newtype so `Inner` can stay `Debug`).
#[derive(Default)]
struct HookSlot(RwLock<Option<NotifyHook>>);

impl std::fmt::Debug for HookSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.read().is_some() {
            "HookSlot(installed)"
        } else {
            "HookSlot(none)"
        })
    }
}

/// The outcome of one attempt to put a frame on a connection's channel.
enum Emit {
    Sent,
    Full,
    Closed,
}

#[derive(Debug)]
struct Inner {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    next_connection: AtomicU64,
    /// Shared with delayed sends, which finish after `emit` returned.
    counters: Arc<Counters>,
    hook: HookSlot,
    /// The server's background tasks: delayed sends run there and stop with the server.
    tasks: serving::Tasks,
}

/// The lobby registry (see the module docs). A cheap-clone handle.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Hub {
    /// The stats only: the registry itself may hold 100,000 entries.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    /// A hub with background tasks of its own (tests of the hub alone).
    pub fn new() -> Self {
        Self::with_tasks(serving::Tasks::new())
    }

    /// A hub whose delayed sends run on `tasks` (the server's).
    pub fn with_tasks(tasks: serving::Tasks) -> Self {
        Self {
            inner: Arc::new(Inner {
                shards: (0..SHARDS).map(|_| Mutex::new(Shard::new())).collect(),
                hasher: RandomState::new(),
                next_connection: AtomicU64::new(1),
                counters: Arc::new(Counters::default()),
                hook: HookSlot::default(),
                tasks,
            }),
        }
    }

    /// Registers a new connection for `user_id`, replacing (and closing with 4041) any
    /// previous one. The user's backlog stays queued until the caller pulls it with
    /// [`Connection::pump`], after it has sent its own greeting.
    pub fn connect(&self, namespace: &str, user_id: &str) -> Connection {
        let inner = &self.inner;
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let (close_tx, close_rx) = oneshot::channel();
        let id = inner.next_connection.fetch_add(1, Ordering::Relaxed);
        {
            let mut shard = inner.shard(user_id).lock();
            let slot = slot_entry(&mut shard, namespace, user_id);
            if let Some(old) = slot.live.replace(Live {
                id,
                tx,
                close: close_tx,
            }) {
                old.close(Close::MULTIPLE_SESSIONS);
                bump(&inner.counters.sessions_replaced);
            }
        }
        bump(&inner.counters.connects_total);
        bump(&inner.counters.connections_open);
        Connection {
            id,
            namespace: namespace.into(),
            user_id: user_id.into(),
            rx,
            closed: Some(close_rx),
            hub: Arc::clone(inner),
        }
    }

    /// Sends a free-form notification to one user: delivered now if they are connected, queued
    /// if not (see [`Delivery`]).
    pub fn notify(&self, namespace: &str, user_id: &str, topic: &str, payload: &str) -> Delivery {
        let pending = Pending::new(topic, payload);
        let mut shard = self.inner.shard(user_id).lock();
        let slot = slot_entry(&mut shard, namespace, user_id);
        self.inner.deliver(slot, user_id, pending)
    }

    /// Sends one notification to each of `user_ids` (duplicates receive it once), returning
    /// what became of it per user, in the order given.
    pub fn notify_many<'a>(
        &self,
        namespace: &str,
        user_ids: impl IntoIterator<Item = &'a str>,
        topic: &str,
        payload: &str,
    ) -> Vec<(&'a str, Delivery)> {
        let pending = Pending::new(topic, payload);
        let mut seen = std::collections::HashSet::new();
        let mut outcomes = Vec::new();
        for user_id in user_ids {
            if !seen.insert(user_id) {
                continue;
            }
            let mut shard = self.inner.shard(user_id).lock();
            let slot = slot_entry(&mut shard, namespace, user_id);
            outcomes.push((user_id, self.inner.deliver(slot, user_id, pending.clone())));
        }
        outcomes
    }

    /// Sends a notification to every user of `namespace` connected right now, returning how
    /// many it reached (delivered, or queued behind a backlog the connection is still
    /// receiving). Offline users are not reached: a broadcast is for whoever is online.
    pub fn broadcast(&self, namespace: &str, topic: &str, payload: &str) -> usize {
        let pending = Pending::new(topic, payload);
        let mut reached = 0;
        for shard in self.inner.shards.iter() {
            let mut shard = shard.lock();
            let Some(users) = shard.get_mut(namespace) else {
                continue;
            };
            // Only live slots; `deliver` may still queue (behind a backlog being received, or
            // for a socket that ended a moment ago), so no slot becomes empty here.
            for (user_id, slot) in users.iter_mut() {
                if slot.live.is_none() {
                    continue;
                }
                match self.inner.deliver(slot, user_id, pending.clone()) {
                    Delivery::Delivered | Delivery::Queued => reached += 1,
                    Delivery::Dropped => {}
                }
            }
        }
        reached
    }

    /// Closes `user_id`'s live connection with `close`; `false` if they are not connected.
    /// Their backlog, if any, is kept for the next connection.
    pub fn disconnect(&self, namespace: &str, user_id: &str, close: Close) -> bool {
        let mut shard = self.inner.shard(user_id).lock();
        let Some(users) = shard.get_mut(namespace) else {
            return false;
        };
        let Some(slot) = users.get_mut(user_id) else {
            return false;
        };
        let Some(live) = slot.live.take() else {
            return false;
        };
        live.close(close);
        remove_if_empty(&mut shard, namespace, user_id);
        true
    }

    /// Whether `user_id` has a live connection.
    pub fn is_connected(&self, namespace: &str, user_id: &str) -> bool {
        self.inner
            .with_slot(namespace, user_id, |slot| slot.live.is_some())
            .unwrap_or(false)
    }

    /// How many notifications wait in `user_id`'s backlog.
    pub fn backlog_len(&self, namespace: &str, user_id: &str) -> usize {
        self.inner
            .with_slot(namespace, user_id, |slot| slot.backlog.len())
            .unwrap_or(0)
    }

    /// Counts a frame received from a client (the socket task reports it here so all lobby
    /// counters live in one place).
    pub fn count_frame_received(&self) {
        bump(&self.inner.counters.frames_received);
    }

    /// Counts an `errorNotif` sent to a client.
    pub fn count_error_frame(&self) {
        bump(&self.inner.counters.error_frames_sent);
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> LobbyStats {
        let c = &self.inner.counters;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        LobbyStats {
            connections_open: get(&c.connections_open),
            connects_total: get(&c.connects_total),
            sessions_replaced: get(&c.sessions_replaced),
            notifications_delivered: get(&c.notifications_delivered),
            notifications_queued: get(&c.notifications_queued),
            notifications_dropped: get(&c.notifications_dropped),
            frames_received: get(&c.frames_received),
            error_frames_sent: get(&c.error_frames_sent),
            notifications_fault_dropped: get(&c.notifications_fault_dropped),
            notifications_fault_delayed: get(&c.notifications_fault_delayed),
            notifications_fault_duplicated: get(&c.notifications_fault_duplicated),
        }
    }

    /// Installs (or with `None` removes) the fault-injection hook of the send path.
    pub fn set_notify_hook(&self, hook: Option<NotifyHook>) {
        *self.inner.hook.0.write() = hook;
    }

    /// Every live connection as `(namespace, user id)`, sorted (so rolls over them are
    /// reproducible whatever the registry's hash order).
    pub fn connected(&self) -> Vec<(String, String)> {
        let mut users = Vec::new();
        for shard in self.inner.shards.iter() {
            let shard = shard.lock();
            for (namespace, slots) in shard.iter() {
                for (user_id, slot) in slots {
                    if slot.live.is_some() {
                        users.push((namespace.to_string(), user_id.to_string()));
                    }
                }
            }
        }
        users.sort_unstable();
        users
    }

    /// Writes every queued notification as JSON (saved state): `[[namespace, user, [queued…]]…]`.
    /// Live sockets are not state: their users reconnect.
    pub fn save_to(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let mut queued: Vec<SavedBacklog> = Vec::new();
        for shard in self.inner.shards.iter() {
            let shard = shard.lock();
            for (namespace, users) in shard.iter() {
                for (user_id, slot) in users.iter().filter(|(_, s)| !s.backlog.is_empty()) {
                    queued.push(SavedBacklog {
                        namespace: namespace.to_string(),
                        user_id: user_id.to_string(),
                        notifications: slot.backlog.iter().map(SavedNotification::from).collect(),
                    });
                }
            }
        }
        serde_json::to_writer(out, &queued)
    }

    /// Replaces the queued notifications with saved ones (for users with no socket now).
    pub fn restore_from(&self, saved: serde_json::Value) -> serde_json::Result<()> {
        let queued: Vec<SavedBacklog> = serde_json::from_value(saved)?;
        self.reset();
        for backlog in queued {
            let mut shard = self.inner.shard(&backlog.user_id).lock();
            let slot = shard
                .entry(backlog.namespace.into_boxed_str())
                .or_default()
                .entry(backlog.user_id.into_boxed_str())
                .or_default();
            slot.backlog = backlog
                .notifications
                .into_iter()
                .map(Pending::from)
                .collect();
        }
        Ok(())
    }

    /// Drops every queued notification. Open sockets stay open and registered; counters are
    /// kept (they are totals since start).
    pub fn reset(&self) {
        for shard in self.inner.shards.iter() {
            let mut shard = shard.lock();
            for users in shard.values_mut() {
                users.retain(|_, slot| {
                    slot.backlog = VecDeque::new();
                    slot.live.is_some()
                });
            }
            shard.retain(|_, users| !users.is_empty());
        }
    }
}

impl Inner {
    fn shard(&self, user_id: &str) -> &Mutex<Shard> {
        // The modulo keeps the index in range whatever the hash; SHARDS is small, so the
        // truncating cast cannot matter.
        let index = (self.hasher.hash_one(user_id) % SHARDS as u64) as usize;
        &self.shards[index]
    }

    fn with_slot<T>(
        &self,
        namespace: &str,
        user_id: &str,
        f: impl FnOnce(&Slot) -> T,
    ) -> Option<T> {
        let shard = self.shard(user_id).lock();
        shard
            .get(namespace)
            .and_then(|users| users.get(user_id))
            .map(f)
    }

    /// Delivers `pending` to the user of `slot` now if possible, else queues it.
    fn deliver(&self, slot: &mut Slot, user_id: &str, pending: Pending) -> Delivery {
        // A connection still receiving its backlog must not see newer notifications first.
        if slot.backlog.is_empty() {
            if let Some(live) = &slot.live {
                match self.emit(live, user_id, &pending) {
                    Emit::Sent => return Delivery::Delivered,
                    Emit::Full => {
                        bump(&self.counters.notifications_dropped);
                        return Delivery::Dropped;
                    }
                    // The socket task has ended but not unregistered yet: treat as offline.
                    Emit::Closed => slot.live = None,
                }
            }
        }
        self.enqueue(slot, pending);
        Delivery::Queued
    }

    fn enqueue(&self, slot: &mut Slot, pending: Pending) {
        if slot.backlog.len() >= BACKLOG_LIMIT {
            slot.backlog.pop_front();
            bump(&self.counters.notifications_dropped);
        }
        slot.backlog.push_back(pending);
        bump(&self.counters.notifications_queued);
    }

    /// **The single send path**: every `messageNotif` any client receives is built and handed
    /// to its connection here — live notifications, broadcasts and backlogs alike.
    ///
    /// Fault injection hooks in here through the [`NotifyHook`]: a dropped notification counts
    /// as sent (the sender cannot tell), a delayed one is handed to the channel later by a
    /// task (and counted delivered then), duplicates follow the original. Do not add another
    /// way to send a `messageNotif`, or faults will silently miss it.
    ///
    /// Field order and formats follow `MessageNotif::to_frame`: a 32-hex id, `from: system`,
    /// `sentAt` in RFC 3339 UTC whole seconds.
    fn emit(&self, live: &Live, user_id: &str, pending: &Pending) -> Emit {
        let fault = self.fault_for(user_id, pending);
        if fault.drop {
            bump(&self.counters.notifications_dropped);
            bump(&self.counters.notifications_fault_dropped);
            return Emit::Sent;
        }
        let notif = MessageNotif {
            id: format!("{:032x}", pending.id),
            from: "system".to_owned(),
            to: user_id.to_owned(),
            topic: pending.topic.to_string(),
            payload: pending.payload.to_string(),
            sent_at: pending.sent_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        };
        let frame = notif.to_frame().encode();
        let copies = fault.extra_copies.saturating_add(1);
        if let Some(delay) = fault.delay.filter(|d| !d.is_zero()) {
            // Outside a runtime (unit tests of the hub) there is nothing to wait on: send now.
            if tokio::runtime::Handle::try_current().is_ok() {
                bump(&self.counters.notifications_fault_delayed);
                let tx = live.tx.clone();
                let counters = Arc::clone(&self.counters);
                self.tasks.spawn(async move {
                    tokio::time::sleep(delay).await;
                    for copy in 0..copies {
                        // Late and the client is gone or not reading: lost, like on the wire.
                        let sent = send(&counters, &tx, frame.clone());
                        match sent {
                            Emit::Sent if copy > 0 => {
                                bump(&counters.notifications_fault_duplicated)
                            }
                            Emit::Sent => {}
                            Emit::Full | Emit::Closed => bump(&counters.notifications_dropped),
                        }
                    }
                });
                return Emit::Sent;
            }
        }
        if copies == 1 {
            return send(&self.counters, &live.tx, frame);
        }
        let first = send(&self.counters, &live.tx, frame.clone());
        if matches!(first, Emit::Sent) {
            for _ in 1..copies {
                match send(&self.counters, &live.tx, frame.clone()) {
                    Emit::Sent => bump(&self.counters.notifications_fault_duplicated),
                    Emit::Full | Emit::Closed => bump(&self.counters.notifications_dropped),
                }
            }
        }
        first
    }

    /// What the fault hook decides for `pending` (nothing, without a hook).
    fn fault_for(&self, user_id: &str, pending: &Pending) -> NotifyFault {
        let hook = self.hook.0.read();
        match hook.as_ref() {
            Some(hook) => hook(&NotifyAttempt {
                user_id,
                topic: &pending.topic,
                message_type: accelbyte::models::lobby::types::MESSAGE_NOTIF,
            }),
            None => NotifyFault::default(),
        }
    }

    /// Moves as much of connection `id`'s backlog into its channel as fits; `true` while some
    /// remains.
    fn pump(&self, namespace: &str, user_id: &str, id: u64) -> bool {
        let mut shard = self.shard(user_id).lock();
        let Some(slot) = shard
            .get_mut(namespace)
            .and_then(|users| users.get_mut(user_id))
        else {
            return false;
        };
        let Slot { live, backlog } = slot;
        let Some(current) = live.as_ref().filter(|l| l.id == id) else {
            return false;
        };
        while let Some(front) = backlog.front() {
            // Every send to this channel happens under this shard lock, except late sends of
            // delayed notifications (fault injection); if one takes the room first, the send
            // below reports `Full` and the backlog waits for the next pump.
            if current.tx.capacity() == 0 {
                return true;
            }
            match self.emit(current, user_id, front) {
                Emit::Sent => {
                    backlog.pop_front();
                }
                Emit::Full => return true,
                Emit::Closed => {
                    *live = None;
                    return false;
                }
            }
        }
        false
    }

    /// Unregisters connection `id` if it is still the user's live one (a replacement must not
    /// be removed by the old socket's cleanup), and counts its socket as closed.
    fn release(&self, namespace: &str, user_id: &str, id: u64) {
        self.counters
            .connections_open
            .fetch_sub(1, Ordering::Relaxed);
        let mut shard = self.shard(user_id).lock();
        let Some(slot) = shard
            .get_mut(namespace)
            .and_then(|users| users.get_mut(user_id))
        else {
            return;
        };
        if slot.live.as_ref().is_some_and(|l| l.id == id) {
            slot.live = None;
            remove_if_empty(&mut shard, namespace, user_id);
        }
    }
}

/// Puts one frame on a connection's channel, counting it delivered if it fits.
fn send(counters: &Counters, tx: &mpsc::Sender<String>, frame: String) -> Emit {
    match tx.try_send(frame) {
        Ok(()) => {
            bump(&counters.notifications_delivered);
            Emit::Sent
        }
        Err(mpsc::error::TrySendError::Full(_)) => Emit::Full,
        Err(mpsc::error::TrySendError::Closed(_)) => Emit::Closed,
    }
}

/// The user's slot, created if missing. (`entry` allocates the two small keys even when they
/// exist; that is cheaper than the frame every caller is about to render.)
fn slot_entry<'a>(shard: &'a mut Shard, namespace: &str, user_id: &str) -> &'a mut Slot {
    shard
        .entry(namespace.into())
        .or_default()
        .entry(user_id.into())
        .or_default()
}

fn remove_if_empty(shard: &mut Shard, namespace: &str, user_id: &str) {
    let Some(users) = shard.get_mut(namespace) else {
        return;
    };
    if users.get(user_id).is_some_and(Slot::is_empty) {
        users.remove(user_id);
    }
    if users.is_empty() {
        shard.remove(namespace);
    }
}

/// The socket task's end of a registered connection. Dropping it unregisters the connection
/// (only if it is still the user's live one) and counts the socket as closed, so cleanup also
/// happens when the task is cancelled or panics.
#[derive(Debug)]
pub struct Connection {
    id: u64,
    namespace: Box<str>,
    user_id: Box<str>,
    rx: mpsc::Receiver<String>,
    /// `None` once the close signal has been received.
    closed: Option<oneshot::Receiver<Close>>,
    hub: Arc<Inner>,
}

/// What [`Connection::next`] hands the socket task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// A text frame to write as is (the task adds the envelope if the client asked for one).
    Frame(String),
    /// Close the socket with this code.
    Close(Close),
}

impl Connection {
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The next thing to write: a frame from the hub, or the close the hub asks for. Closes
    /// win over queued frames (a replaced session has nothing more to say). Once it returned
    /// a close it keeps returning [`Close::UNKNOWN`]. Cancel-safe.
    pub async fn next(&mut self) -> Outbound {
        let Some(closed) = self.closed.as_mut() else {
            return Outbound::Close(Close::UNKNOWN);
        };
        tokio::select! {
            biased;
            close = closed => {
                self.closed = None;
                Outbound::Close(close.unwrap_or(Close::UNKNOWN))
            }
            text = self.rx.recv() => match text {
                Some(text) => Outbound::Frame(text),
                // The hub dropped this connection without a close: should not happen.
                None => Outbound::Close(Close::UNKNOWN),
            },
        }
    }

    /// Frames waiting in the channel.
    pub fn pending(&self) -> usize {
        self.rx.len()
    }

    /// Moves as much of the user's backlog into this connection's channel as fits, in order;
    /// `true` while some remains (call again once the channel has drained).
    pub fn pump(&self) -> bool {
        self.hub.pump(&self.namespace, &self.user_id, self.id)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.hub.release(&self.namespace, &self.user_id, self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use accelbyte::frame::Frame;

    const NS: &str = "ns";

    fn parse(text: &str) -> MessageNotif {
        let frame = Frame::parse(text).expect("hub emits valid frames");
        MessageNotif::from_frame(&frame).expect("a messageNotif")
    }

    /// Everything currently in the channel, without waiting.
    fn drain(conn: &mut Connection) -> Vec<MessageNotif> {
        let mut out = Vec::new();
        while let Ok(text) = conn.rx.try_recv() {
            out.push(parse(&text));
        }
        out
    }

    #[test]
    fn message_notif_has_contract_fields_in_order() {
        let hub = Hub::new();
        let mut conn = hub.connect(NS, "u1");
        assert_eq!(
            hub.notify(NS, "u1", "NOTIF", "found 127.0.0.1 7777"),
            Delivery::Delivered
        );
        let text = conn.rx.try_recv().expect("one frame");
        let keys: Vec<&str> = text
            .lines()
            .map(|l| l.split(": ").next().unwrap_or_default())
            .collect();
        assert_eq!(
            keys,
            ["type", "id", "from", "to", "topic", "payload", "sentAt"]
        );
        let notif = parse(&text);
        assert_eq!(notif.id.len(), 32);
        assert!(
            notif
                .id
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!((notif.from.as_str(), notif.to.as_str()), ("system", "u1"));
        assert_eq!(
            (notif.topic.as_str(), notif.payload.as_str()),
            ("NOTIF", "found 127.0.0.1 7777")
        );
        assert!(
            chrono::NaiveDateTime::parse_from_str(&notif.sent_at, "%Y-%m-%dT%H:%M:%SZ").is_ok()
        );
    }

    #[test]
    fn offline_notifications_wait_and_arrive_in_order_before_newer_ones() {
        let hub = Hub::new();
        for i in 0..3 {
            assert_eq!(hub.notify(NS, "u1", "T", &i.to_string()), Delivery::Queued);
        }
        assert_eq!(hub.backlog_len(NS, "u1"), 3);
        let mut conn = hub.connect(NS, "u1");
        // Before the socket pulls its backlog, a new notification queues behind it.
        assert_eq!(hub.notify(NS, "u1", "T", "3"), Delivery::Queued);
        assert!(
            drain(&mut conn).is_empty(),
            "nothing is sent before the pump"
        );
        assert!(!conn.pump());
        let payloads: Vec<String> = drain(&mut conn).into_iter().map(|n| n.payload).collect();
        assert_eq!(payloads, ["0", "1", "2", "3"]);
        assert_eq!(hub.notify(NS, "u1", "T", "4"), Delivery::Delivered);
        let stats = hub.stats();
        assert_eq!(
            (stats.notifications_queued, stats.notifications_delivered),
            (4, 5)
        );
    }

    #[test]
    fn a_large_backlog_is_pumped_as_the_channel_drains() {
        let hub = Hub::new();
        let total = CHANNEL_CAPACITY + 10;
        for i in 0..total {
            hub.notify(NS, "u1", "T", &i.to_string());
        }
        let mut conn = hub.connect(NS, "u1");
        assert!(conn.pump(), "more than a channel's worth remains");
        let mut payloads: Vec<String> = drain(&mut conn).into_iter().map(|n| n.payload).collect();
        assert_eq!(payloads.len(), CHANNEL_CAPACITY);
        assert!(!conn.pump());
        payloads.extend(drain(&mut conn).into_iter().map(|n| n.payload));
        let expected: Vec<String> = (0..total).map(|i| i.to_string()).collect();
        assert_eq!(payloads, expected);
    }

    #[test]
    fn backlog_is_bounded_and_drops_the_oldest() {
        let hub = Hub::new();
        for i in 0..BACKLOG_LIMIT + 5 {
            hub.notify(NS, "u1", "T", &i.to_string());
        }
        assert_eq!(hub.backlog_len(NS, "u1"), BACKLOG_LIMIT);
        assert_eq!(hub.stats().notifications_dropped, 5);
        let mut conn = hub.connect(NS, "u1");
        conn.pump();
        let first = drain(&mut conn)
            .into_iter()
            .next()
            .expect("backlog delivered");
        assert_eq!(first.payload, "5");
    }

    #[test]
    fn a_full_channel_drops_and_counts() {
        let hub = Hub::new();
        let _conn = hub.connect(NS, "u1");
        for _ in 0..CHANNEL_CAPACITY {
            assert_eq!(hub.notify(NS, "u1", "T", "x"), Delivery::Delivered);
        }
        assert_eq!(hub.notify(NS, "u1", "T", "x"), Delivery::Dropped);
        assert_eq!(hub.stats().notifications_dropped, 1);
    }

    #[tokio::test]
    async fn a_second_connection_replaces_the_first_with_4041() {
        let hub = Hub::new();
        let mut first = hub.connect(NS, "u1");
        let mut second = hub.connect(NS, "u1");
        assert_eq!(
            first.next().await,
            Outbound::Close(Close::MULTIPLE_SESSIONS)
        );
        assert_eq!(hub.notify(NS, "u1", "T", "x"), Delivery::Delivered);
        assert_eq!(drain(&mut second).len(), 1);
        assert!(
            first.rx.try_recv().is_err(),
            "the old connection gets nothing new"
        );
        // The old socket's cleanup must not unregister its replacement.
        drop(first);
        assert!(hub.is_connected(NS, "u1"));
        assert_eq!(hub.stats().connections_open, 1);
        assert_eq!(hub.stats().sessions_replaced, 1);
        drop(second);
        assert!(!hub.is_connected(NS, "u1"));
        assert_eq!(hub.stats().connections_open, 0);
    }

    #[tokio::test]
    async fn disconnect_closes_with_the_given_code() {
        let hub = Hub::new();
        let mut conn = hub.connect(NS, "u1");
        let close = Close {
            code: 4000,
            reason: Cow::Borrowed("server shutting down"),
        };
        assert!(hub.disconnect(NS, "u1", close.clone()));
        assert_eq!(conn.next().await, Outbound::Close(close));
        assert!(!hub.is_connected(NS, "u1"));
        assert!(!hub.disconnect(NS, "u1", Close::UNKNOWN));
    }

    #[test]
    fn broadcast_reaches_connected_users_of_the_namespace_only() {
        let hub = Hub::new();
        let mut a = hub.connect(NS, "a");
        let mut b = hub.connect(NS, "b");
        let mut other = hub.connect("other", "c");
        hub.notify(NS, "offline", "T", "queued");
        assert_eq!(hub.broadcast(NS, "T", "hello"), 2);
        assert_eq!(drain(&mut a)[0].to, "a");
        assert_eq!(drain(&mut b)[0].to, "b");
        assert!(drain(&mut other).is_empty());
        assert_eq!(
            hub.backlog_len(NS, "offline"),
            1,
            "offline users are not broadcast to"
        );
    }

    #[test]
    fn notify_many_sends_once_per_distinct_user() {
        let hub = Hub::new();
        let mut a = hub.connect(NS, "a");
        let outcomes = hub.notify_many(NS, ["a", "b", "a"], "T", "x");
        assert_eq!(
            outcomes,
            [("a", Delivery::Delivered), ("b", Delivery::Queued)]
        );
        assert_eq!(drain(&mut a).len(), 1);
    }

    #[test]
    fn reset_drops_backlogs_but_keeps_connections() {
        let hub = Hub::new();
        let _conn = hub.connect(NS, "a");
        hub.notify(NS, "b", "T", "x");
        hub.reset();
        assert_eq!(hub.backlog_len(NS, "b"), 0);
        assert!(hub.is_connected(NS, "a"));
        assert_eq!(hub.notify(NS, "a", "T", "x"), Delivery::Delivered);
    }

    fn hook(fault: NotifyFault) -> NotifyHook {
        Arc::new(move |attempt: &NotifyAttempt<'_>| {
            if attempt.topic == "faulty" && attempt.message_type == "messageNotif" {
                fault
            } else {
                NotifyFault::default()
            }
        })
    }

    #[test]
    fn the_hook_drops_a_notification_that_still_looks_delivered() {
        let hub = Hub::new();
        hub.set_notify_hook(Some(hook(NotifyFault {
            drop: true,
            ..NotifyFault::default()
        })));
        let mut conn = hub.connect(NS, "u1");
        assert_eq!(hub.notify(NS, "u1", "faulty", "x"), Delivery::Delivered);
        assert_eq!(hub.notify(NS, "u1", "fine", "y"), Delivery::Delivered);
        let payloads: Vec<String> = drain(&mut conn).into_iter().map(|n| n.payload).collect();
        assert_eq!(payloads, ["y"]);
        let stats = hub.stats();
        assert_eq!(
            (
                stats.notifications_dropped,
                stats.notifications_fault_dropped,
                stats.notifications_delivered
            ),
            (1, 1, 1)
        );
    }

    #[test]
    fn the_hook_duplicates_with_the_same_id() {
        let hub = Hub::new();
        hub.set_notify_hook(Some(hook(NotifyFault {
            extra_copies: 2,
            ..NotifyFault::default()
        })));
        let mut conn = hub.connect(NS, "u1");
        hub.notify(NS, "u1", "faulty", "x");
        let notifs = drain(&mut conn);
        assert_eq!(notifs.len(), 3);
        assert!(notifs.iter().all(|n| n.id == notifs[0].id));
        assert_eq!(hub.stats().notifications_fault_duplicated, 2);
        hub.set_notify_hook(None);
        hub.notify(NS, "u1", "faulty", "x");
        assert_eq!(drain(&mut conn).len(), 1, "no hook, no fault");
    }

    #[tokio::test(start_paused = true)]
    async fn the_hook_delays_and_later_notifications_overtake() {
        let hub = Hub::new();
        let delay = Duration::from_secs(5);
        hub.set_notify_hook(Some(hook(NotifyFault {
            delay: Some(delay),
            ..NotifyFault::default()
        })));
        let mut conn = hub.connect(NS, "u1");
        assert_eq!(hub.notify(NS, "u1", "faulty", "late"), Delivery::Delivered);
        hub.notify(NS, "u1", "fine", "early");
        let first = conn.next().await;
        let second = conn.next().await;
        let payload = |o: Outbound| match o {
            Outbound::Frame(text) => parse(&text).payload,
            Outbound::Close(close) => panic!("unexpected close {close:?}"),
        };
        assert_eq!(
            (payload(first), payload(second)),
            ("early".to_owned(), "late".to_owned())
        );
        let stats = hub.stats();
        assert_eq!(
            (
                stats.notifications_fault_delayed,
                stats.notifications_delivered
            ),
            (1, 2)
        );
    }

    #[test]
    fn connected_lists_live_users_sorted() {
        let hub = Hub::new();
        let _b = hub.connect(NS, "b");
        let _a = hub.connect(NS, "a");
        hub.notify(NS, "offline", "T", "x");
        assert_eq!(
            hub.connected(),
            [
                (NS.to_owned(), "a".to_owned()),
                (NS.to_owned(), "b".to_owned())
            ]
        );
    }

    #[test]
    fn released_users_leave_no_registry_entry() {
        let hub = Hub::new();
        drop(hub.connect(NS, "a"));
        let empty = hub.inner.shards.iter().all(|s| s.lock().is_empty());
        assert!(empty, "a disconnected user with no backlog costs nothing");
    }
}
