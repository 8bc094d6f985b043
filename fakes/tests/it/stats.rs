//! `GET /_fakes/stats` read back with the types fakes renders it from: the body and the
//! in-process report are one typed value, so a client reading either sees the same counters.

use fakes::stats::StatsReport;
use fakes::{FakesConfig, faults::Service};
use reqwest::StatusCode;

use crate::common;

#[tokio::test]
async fn the_stats_body_reads_back_as_the_report() {
    let handle = common::start_with(FakesConfig::default()).await;
    let base = handle.base_url();
    // A route no service serves counts under `other`, which a fault file cannot name.
    let missing = common::http()
        .get(format!("{base}/no/such/route"))
        .send()
        .await
        .expect("404");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let jwks = common::http()
        .get(format!("{base}/iam/v3/oauth/jwks"))
        .send()
        .await
        .expect("jwks");
    assert_eq!(jwks.status(), StatusCode::OK);

    let response = common::http()
        .get(format!("{base}/_fakes/stats"))
        .send()
        .await
        .expect("stats");
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.text().await.expect("body");
    let read: StatsReport = serde_json::from_str(&body).expect("the body is a StatsReport");

    assert_eq!(read.requests.by_service[&Service::Other].by_status[&404], 1);
    assert_eq!(read.requests.by_service[&Service::Iam].by_status[&200], 1);
    assert!(
        read.requests
            .routes
            .iter()
            .any(|r| r.service == Service::Other && r.status == 404)
    );
    let now = fakes::stats::report(&handle.state);
    assert_eq!(read.dsmc.claims.attempted, now.dsmc.claims.attempted);
    assert_eq!(read.fleet, now.fleet);
    assert_eq!(read.faults.injected_by_kind, now.faults.injected_by_kind);
    // Written again, the value is the body it was read from.
    assert_eq!(
        serde_json::to_value(&read).expect("json"),
        serde_json::from_str::<serde_json::Value>(&body).expect("json")
    );
}
