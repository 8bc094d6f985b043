//! How a held `POST /matchmaking` learns that its ticket finished — whichever replica finished
//! it.
//!
//! One [`Waiters`] registry per process maps ticket ids to a [`Notify`]. One dispatcher task
//! ([`Waiters::dispatch`]) reads the store's announcements ([`Store::events`]: an in-process
//! broadcast for the memory store, the `P:finished` Redis pub/sub channel for Redis, which every
//! replica's store scripts publish to) and wakes the waiter of each announced ticket; a
//! [`StoreEvent::Resync`] (lag, reconnect) wakes them all. A woken request re-reads its ticket
//! from the store, so an announcement is only a hint and can never carry a wrong result.
//!
//! Pub/sub is at-most-once, so a waiter also re-reads its ticket on a slow timer (the HTTP
//! layer's `wait_poll`, 2 s by default): a lost announcement costs latency, never a lost answer.
//! A waiter registers *before* its first read, and [`Notify`] keeps a permit for a wake-up that
//! arrives between the read and the wait, so no announcement falls in a gap.
//!
//! Why pub/sub and not polling alone: with 10,000 held requests, a 100 ms poll is 100,000
//! Redis reads a second for nothing; announcements cost one publish per finished ticket, and one
//! subscription per replica.
//!
//! [`Store::events`]: crate::store::Store::events

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

use crate::store::StoreEvent;
use crate::ticket::TicketId;

/// Ticket id → the notify of the request waiting for it.
#[derive(Debug, Default)]
pub struct Waiters {
    map: Mutex<HashMap<TicketId, Arc<Notify>>>,
}

/// A registration; removed from the registry on drop.
#[derive(Debug)]
pub struct Waiter {
    waiters: Arc<Waiters>,
    id: TicketId,
    notify: Arc<Notify>,
}

impl Waiter {
    /// Resolves once the ticket was announced (or right away if it was since the last call).
    pub async fn woken(&self) {
        self.notify.notified().await;
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut map = self.waiters.map.lock();
        if map
            .get(&self.id)
            .is_some_and(|n| Arc::ptr_eq(n, &self.notify))
        {
            map.remove(&self.id);
        }
    }
}

impl Waiters {
    pub fn new() -> Arc<Self> {
        Arc::new(Waiters::default())
    }

    /// Registers interest in `id` (a later registration for the same id replaces this one).
    pub fn register(self: &Arc<Self>, id: TicketId) -> Waiter {
        let notify = Arc::new(Notify::new());
        self.map.lock().insert(id.clone(), notify.clone());
        Waiter {
            waiters: self.clone(),
            id,
            notify,
        }
    }

    /// How many requests wait.
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// Whether no request waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Wakes the waiter of `id`, if any.
    pub fn wake(&self, id: &TicketId) {
        if let Some(notify) = self.map.lock().get(id) {
            notify.notify_one();
        }
    }

    /// Wakes every waiter (they re-read their tickets).
    pub fn wake_all(&self) {
        for notify in self.map.lock().values() {
            notify.notify_one();
        }
    }

    /// Forwards store announcements to waiters until `stop` or until the store stops
    /// announcing (then waiters rely on their timers).
    pub async fn dispatch(
        self: Arc<Self>,
        mut events: broadcast::Receiver<StoreEvent>,
        stop: CancellationToken,
    ) {
        loop {
            let event = tokio::select! {
                () = stop.cancelled() => return,
                event = events.recv() => event,
            };
            match event {
                Ok(StoreEvent::Finished(id)) => self.wake(&id),
                Ok(StoreEvent::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.wake_all();
                }
                Err(broadcast::error::RecvError::Closed) => {
                    tracing::info!("the store announces nothing; held requests poll their tickets");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn announcements_wake_the_right_waiter_even_before_it_waits() {
        let waiters = Waiters::new();
        let (tx, rx) = broadcast::channel(8);
        let stop = CancellationToken::new();
        let task = tokio::spawn(waiters.clone().dispatch(rx, stop.clone()));
        let a = waiters.register("a".into());
        let b = waiters.register("b".into());
        tx.send(StoreEvent::Finished("a".into())).expect("send");
        tokio::time::timeout(Duration::from_secs(1), a.woken())
            .await
            .expect("a woken");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), b.woken())
                .await
                .is_err(),
            "b not woken"
        );
        tx.send(StoreEvent::Resync).expect("send");
        tokio::time::timeout(Duration::from_secs(1), b.woken())
            .await
            .expect("b woken by a resync");
        drop(a);
        assert_eq!(waiters.len(), 1);
        stop.cancel();
        task.await.expect("dispatcher ends");
    }
}
