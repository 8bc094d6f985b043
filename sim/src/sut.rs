//! What the system under test says about its own refusals: the fakes' accept counters
//! (`GET /_fakes/stats` → `accept.refused_over_cap`, `accept.resource_errors`) and each
//! matchmaker's (`GET /metrics` → `matchmaker_connections_refused_total`,
//! `matchmaker_accept_resource_errors_total`).
//!
//! Why: a 503 a player saw may be the server refusing on purpose at its connection cap (an
//! honest answer of the system under test) or something else; the servers' own counters tell
//! which, and an `accept()` that failed for lack of descriptors shows a server that ran out of
//! files. Read before and after the run; the report keeps the difference.

use serde::{Deserialize, Serialize};
use url::Url;

/// The servers' refusal counters over the run (`None`: that server's could not be read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SutCounters {
    /// Connections the fakes refused with 503 at their connection cap.
    #[serde(default)]
    pub fakes_refused_over_cap: Option<u64>,
    /// The fakes' `accept()` failures for lack of descriptors or memory.
    #[serde(default)]
    pub fakes_accept_resource_errors: Option<u64>,
    /// Connections the matchmakers refused at their cap (summed over replicas).
    #[serde(default)]
    pub matchmaker_refused: Option<u64>,
    /// The matchmakers' `accept()` failures for lack of descriptors or memory.
    #[serde(default)]
    pub matchmaker_accept_resource_errors: Option<u64>,
}

impl SutCounters {
    /// Reads them now, on connections of its own (the players' pools may hold connections the
    /// servers closed under load).
    pub async fn read(fakes: &Url, matchmakers: &[Url]) -> SutCounters {
        Self::read_with_token(fakes, matchmakers, None).await
    }

    /// [`read`](Self::read), with the bearer token a fakes beyond loopback wants for
    /// `/_fakes/stats`.
    pub async fn read_with_token(
        fakes: &Url,
        matchmakers: &[Url],
        control_token: Option<&str>,
    ) -> SutCounters {
        let mut out = SutCounters::default();
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(value) = control_token
            .and_then(|t| reqwest::header::HeaderValue::from_str(&format!("Bearer {t}")).ok())
        {
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let Ok(http) = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(std::time::Duration::from_secs(3))
            .pool_max_idle_per_host(1)
            .build()
        else {
            return out;
        };
        let http = &http;
        let mut stats = fakes.clone();
        stats.set_path("/_fakes/stats");
        if let Some(body) = get_text(http, &stats).await {
            if let Ok(report) = serde_json::from_str::<fakes::stats::StatsReport>(&body) {
                out.fakes_refused_over_cap = Some(report.accept.refused_over_cap);
                out.fakes_accept_resource_errors = Some(report.accept.resource_errors);
            }
        }
        for url in matchmakers {
            let mut metrics = url.clone();
            metrics.set_path("/metrics");
            metrics.set_query(None);
            let Some(text) = get_text(http, &metrics).await else {
                continue;
            };
            add(
                &mut out.matchmaker_refused,
                prometheus_value(&text, "matchmaker_connections_refused_total"),
            );
            add(
                &mut out.matchmaker_accept_resource_errors,
                prometheus_value(&text, "matchmaker_accept_resource_errors_total"),
            );
        }
        out
    }

    /// What happened between `before` and `self` (counters only grow; a restarted server
    /// reads as zero).
    pub fn since(&self, before: &SutCounters) -> SutCounters {
        let d =
            |now: Option<u64>, then: Option<u64>| now.map(|n| n.saturating_sub(then.unwrap_or(0)));
        SutCounters {
            fakes_refused_over_cap: d(self.fakes_refused_over_cap, before.fakes_refused_over_cap),
            fakes_accept_resource_errors: d(
                self.fakes_accept_resource_errors,
                before.fakes_accept_resource_errors,
            ),
            matchmaker_refused: d(self.matchmaker_refused, before.matchmaker_refused),
            matchmaker_accept_resource_errors: d(
                self.matchmaker_accept_resource_errors,
                before.matchmaker_accept_resource_errors,
            ),
        }
    }

    /// Two processes' views of the same servers: the larger of each (they count the same
    /// connections, so adding would count them twice).
    pub fn max(&self, other: &SutCounters) -> SutCounters {
        let m = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        SutCounters {
            fakes_refused_over_cap: m(self.fakes_refused_over_cap, other.fakes_refused_over_cap),
            fakes_accept_resource_errors: m(
                self.fakes_accept_resource_errors,
                other.fakes_accept_resource_errors,
            ),
            matchmaker_refused: m(self.matchmaker_refused, other.matchmaker_refused),
            matchmaker_accept_resource_errors: m(
                self.matchmaker_accept_resource_errors,
                other.matchmaker_accept_resource_errors,
            ),
        }
    }
}

fn add(slot: &mut Option<u64>, value: Option<u64>) {
    if let Some(v) = value {
        *slot = Some(slot.unwrap_or(0) + v);
    }
}

/// `GET url` as text. A server at its cap refuses this call too (503 + `Retry-After: 1`), and
/// just after a run it may still hold the requests and sockets the players left (until its own
/// timeouts end them): tries for up to about ten seconds.
async fn get_text(http: &reqwest::Client, url: &Url) -> Option<String> {
    const TRIES: u32 = 12;
    for attempt in 0..TRIES {
        if attempt > 0 {
            let wait = (125u64 << attempt).min(1000);
            tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
        }
        let response = http.get(url.clone()).send().await;
        match response {
            Ok(r) if r.status().is_success() => return r.text().await.ok(),
            // Refused at a cap: try again.
            Ok(r) if matches!(r.status().as_u16(), 429 | 503) => {}
            // Anything else (a server without these counters): no use asking again.
            Ok(_) => return None,
            // Nothing listens there (a replica that is down): no use asking again.
            Err(e) if e.is_connect() => return None,
            // Reset or slow: try again.
            Err(_) => {}
        }
    }
    None
}

/// The value of an unlabelled sample `name` in Prometheus text.
pub fn prometheus_value(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (key, value) = line.trim().split_once(' ')?;
        if key != name {
            return None;
        }
        value.trim().parse::<f64>().ok().map(|v| v as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_subtracted_and_merged() {
        let text = "# HELP matchmaker_connections_refused_total x\n\
                    # TYPE matchmaker_connections_refused_total counter\n\
                    matchmaker_connections_refused_total 12\n\
                    matchmaker_accept_resource_errors_total 0\n";
        assert_eq!(
            prometheus_value(text, "matchmaker_connections_refused_total"),
            Some(12)
        );
        assert_eq!(prometheus_value(text, "absent"), None);
        let before = SutCounters {
            matchmaker_refused: Some(2),
            ..SutCounters::default()
        };
        let after = SutCounters {
            matchmaker_refused: Some(12),
            fakes_refused_over_cap: Some(5),
            ..SutCounters::default()
        };
        let d = after.since(&before);
        assert_eq!(d.matchmaker_refused, Some(10));
        assert_eq!(d.fakes_refused_over_cap, Some(5));
        assert_eq!(d.fakes_accept_resource_errors, None);
        assert_eq!(d.max(&before).matchmaker_refused, Some(10));
    }
}
