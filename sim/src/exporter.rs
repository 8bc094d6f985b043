//! `sim run --metrics-addr ADDR`: serves the run's live figures at `GET /metrics` in the
//! Prometheus text format, so a long soak or a multi-process run can be watched in Grafana
//! (`docs/grafana/`). It reads the same snapshots the dashboard does — in a run of several
//! processes, the parent's merged ones — and renders the latest on each scrape
//! ([`crate::metrics::prometheus`]).

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics::{MetricsSnapshot, prometheus};

/// A running exporter.
#[derive(Debug)]
pub struct Exporter {
    /// Where it listens (the port the OS chose for `:0`).
    pub addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Exporter {
    /// Binds `addr` and serves `/metrics` from the latest snapshot until [`stop`](Self::stop).
    pub async fn start(
        addr: SocketAddr,
        snapshots: watch::Receiver<MetricsSnapshot>,
    ) -> std::io::Result<Exporter> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/metrics", get(metrics))
            .with_state(snapshots);
        let stop = CancellationToken::new();
        let until = stop.clone();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { until.cancelled().await })
                .await;
            if let Err(err) = served {
                tracing::warn!("metrics endpoint stopped: {err}");
            }
        });
        Ok(Exporter { addr, stop, task })
    }

    /// Stops serving (after the run, so a last scrape can read the final figures).
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn metrics(State(snapshots): State<watch::Receiver<MetricsSnapshot>>) -> impl IntoResponse {
    let text = prometheus::render(&snapshots.borrow());
    ([(header::CONTENT_TYPE, prometheus::CONTENT_TYPE)], text)
}
