//! The server lifecycle: stopping a fakes instance stops its background tasks (fault driver,
//! match2 loop) even while the state is still referenced, and reports it cleanly.

use crate::common;

#[tokio::test]
async fn shutdown_stops_the_fault_driver_and_the_match2_loop() {
    let handle = common::start().await;
    // Kept alive past the shutdown: the tasks cannot end because the state was dropped.
    let state = handle.state.clone();
    let tasks = state.tasks.clone();
    // The fault driver and the match2 loop start with the state.
    assert_eq!(tasks.tracker().len(), 2, "driver and match2 loop running");
    assert!(!tasks.is_stopping());

    let health = common::http()
        .get(format!("{}/healthz", handle.base_url()))
        .send()
        .await
        .expect("served");
    assert_eq!(health.status(), 200);

    handle.shutdown().await.expect("clean stop");
    assert!(tasks.is_stopping());
    assert!(
        tasks.tracker().is_empty(),
        "{} background task(s) outlived the server",
        tasks.tracker().len()
    );
    assert!(tasks.panics().is_empty());
    drop(state);
}

#[tokio::test]
async fn dropping_the_handle_stops_the_background_tasks() {
    let handle = common::start().await;
    let state = handle.state.clone();
    let tracker = state.tasks.tracker().clone();
    drop(handle);
    // Observed, not slept on: the tracker's wait ends when the last task does.
    tracker.close();
    tokio::time::timeout(std::time::Duration::from_secs(10), tracker.wait())
        .await
        .expect("background tasks ended after the handle was dropped");
    assert!(state.tasks.is_stopping());
}
