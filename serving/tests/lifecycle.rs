//! The server lifecycle end to end: a real listener on 127.0.0.1, a real accept loop and axum
//! router, tracked background tasks; stopping reports what went wrong.

use std::sync::Arc;
use std::time::Duration;

use serving::{AcceptOptions, Refusal, Server, ShutdownError, Tasks};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::oneshot;

fn options() -> AcceptOptions {
    AcceptOptions {
        max_connections: 64,
        refusal: Refusal {
            retry_after_secs: 1,
            content_type: "application/json",
            body: "{}".into(),
        },
        dispatch: None,
    }
}

/// Starts a server answering `GET /` with `hello` through the accept loop.
fn start(tasks: Tasks) -> serving::Handle {
    let listener = serving::bind(([127, 0, 0, 1], 0).into()).expect("bind");
    Server::new(tasks)
        .grace(Duration::from_secs(5))
        .start(listener, |listener, stop| async move {
            let accepted =
                serving::accept::start(listener, options(), Arc::default()).expect("accept loop");
            let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
            axum::serve(accepted, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        })
        .expect("start")
}

async fn get(addr: std::net::SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
}

#[tokio::test]
async fn serves_then_stops_cleanly_with_its_tasks() {
    let tasks = Tasks::new();
    let handle = start(tasks.clone());
    assert!(handle.url("http").starts_with("http://127.0.0.1:"));
    assert!(get(handle.local_addr()).await.ends_with("hello"));

    // A timer that would run forever: the token ends it.
    let (ended_tx, ended_rx) = oneshot::channel::<()>();
    tasks
        .spawn(async move {
            let _ended = ended_tx;
            std::future::pending::<()>().await;
        })
        .expect("inside a runtime");
    assert_eq!(tasks.tracker().len(), 1);

    handle.shutdown().await.expect("clean stop");
    // The task's future was dropped, and with it the sender.
    assert!(ended_rx.await.is_err());
    assert!(tasks.tracker().is_empty());
    assert!(tasks.is_stopping());
}

#[tokio::test]
async fn a_panicking_tracked_task_makes_shutdown_fail() {
    let tasks = Tasks::new();
    let handle = start(tasks.clone());
    let task = tasks
        .spawn(async { panic!("timer exploded") })
        .expect("inside a runtime");
    // The wrapper catches the panic and ends normally once it has been recorded.
    task.await.expect("the wrapper itself does not panic");
    assert_eq!(tasks.panics(), vec!["timer exploded".to_owned()]);
    // The server itself is unaffected.
    assert!(get(handle.local_addr()).await.ends_with("hello"));

    match handle.shutdown().await {
        Err(ShutdownError::TasksPanicked(panics)) => {
            assert_eq!(panics, vec!["timer exploded".to_owned()]);
        }
        other => panic!("expected TasksPanicked, got {other:?}"),
    }
}

#[tokio::test]
async fn a_panicking_server_task_makes_shutdown_fail() {
    let listener = serving::bind(([127, 0, 0, 1], 0).into()).expect("bind");
    let handle = Server::new(Tasks::new())
        .start(listener, |_listener, stop| async move {
            stop.cancelled().await;
            if stop.is_cancelled() {
                panic!("server exploded while draining");
            }
            Ok::<(), std::io::Error>(())
        })
        .expect("start");
    match handle.shutdown().await {
        Err(ShutdownError::ServerPanicked(message)) => {
            assert_eq!(message, "server exploded while draining");
        }
        other => panic!("expected ServerPanicked, got {other:?}"),
    }
}

#[tokio::test]
async fn a_failing_server_task_is_reported() {
    let listener = serving::bind(([127, 0, 0, 1], 0).into()).expect("bind");
    let handle = Server::new(Tasks::new())
        .start(listener, |_listener, _stop| async move {
            Err(std::io::Error::other("cannot serve"))
        })
        .expect("start");
    let error = handle.shutdown().await.expect_err("the serve error");
    assert!(matches!(error, ShutdownError::Server(_)), "{error:?}");
    assert!(error.to_string().contains("cannot serve"), "{error}");
}

#[tokio::test]
async fn serve_until_returns_at_once_when_the_server_fails_on_its_own() {
    let tasks = Tasks::new();
    let listener = serving::bind(([127, 0, 0, 1], 0).into()).expect("bind");
    let handle = Server::new(tasks.clone())
        .start(listener, |_listener, _stop| async move {
            Err(std::io::Error::other("certificate rejected"))
        })
        .expect("start");
    // `stop` never resolves: only the server's own end can return this.
    let error = handle
        .serve_until(std::future::pending())
        .await
        .expect_err("the serve error");
    assert!(
        error.to_string().contains("certificate rejected"),
        "{error}"
    );
    assert!(tasks.is_stopping(), "background tasks were told to stop");
}

#[tokio::test]
async fn serve_until_stops_cleanly_when_told() {
    let tasks = Tasks::new();
    let handle = start(tasks.clone());
    let addr = handle.local_addr();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let serving = tokio::spawn(handle.serve_until(async move {
        let _ = stop_rx.await;
    }));
    assert!(get(addr).await.ends_with("hello"));
    stop_tx.send(()).expect("still serving");
    serving.await.expect("joined").expect("clean stop");
    assert!(tasks.is_stopping());
}

#[tokio::test]
async fn tasks_outliving_the_grace_period_are_reported() {
    let tasks = Tasks::new();
    // Ignores the token on purpose.
    tasks
        .spawn_watched(std::future::pending::<()>())
        .expect("inside a runtime");
    let error = tasks
        .shutdown(Duration::from_millis(20))
        .await
        .expect_err("still running");
    assert!(
        matches!(error, ShutdownError::TasksStillRunning { running: 1, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server_and_its_tasks() {
    let tasks = Tasks::new();
    let handle = start(tasks.clone());
    let (ended_tx, ended_rx) = oneshot::channel::<()>();
    tasks.spawn(async move {
        let _ended = ended_tx;
        std::future::pending::<()>().await;
    });
    drop(handle);
    assert!(ended_rx.await.is_err(), "the task ended on the token");
    tasks.tracker().close();
    tasks.tracker().wait().await;
    assert!(tasks.is_stopping());
}

#[test]
fn spawning_outside_a_runtime_runs_nothing() {
    let tasks = Tasks::new();
    assert!(tasks.spawn(async {}).is_none());
    assert!(tasks.tracker().is_empty());
}
