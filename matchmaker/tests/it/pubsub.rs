//! The store's `finished` subscription survives its connection being killed: the store
//! resubscribes, tells its waiters to re-read (`Resync`), and hears announcements again.

use std::time::Duration;

use matchmaker::store::{Store, StoreEvent};

use crate::support::TestRedis;

const WAIT: Duration = Duration::from_secs(15);

async fn next_event(
    events: &mut tokio::sync::broadcast::Receiver<StoreEvent>,
    wanted: impl Fn(&StoreEvent) -> bool,
) {
    tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(event) if wanted(&event) => return,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("events ended: {e}"),
            }
        }
    })
    .await
    .expect("the event came in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_pubsub_connection_is_resubscribed_and_announcements_resume() {
    let redis = TestRedis::start();
    let prefix = redis.prefix("pubsub_kill");
    let store = redis.store(&prefix).await;
    let mut events = store.events();
    let channel = format!("{prefix}:finished");
    let client = redis::Client::open(redis.url()).expect("redis url");
    let mut admin = client
        .get_multiplexed_async_connection()
        .await
        .expect("admin connection");

    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut admin)
        .await
        .expect("CLIENT KILL");
    assert!(killed >= 1, "the store's subscription was killed");
    next_event(&mut events, |e| matches!(e, StoreEvent::Resync)).await;

    let subscribers: (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(&channel)
        .query_async(&mut admin)
        .await
        .expect("PUBSUB NUMSUB");
    assert_eq!(subscribers.1, 1, "subscribed again");
    let _: i64 = redis::cmd("PUBLISH")
        .arg(&channel)
        .arg("ticket-after-the-kill")
        .query_async(&mut admin)
        .await
        .expect("PUBLISH");
    next_event(
        &mut events,
        |e| matches!(e, StoreEvent::Finished(id) if id.as_str() == "ticket-after-the-kill"),
    )
    .await;
}
