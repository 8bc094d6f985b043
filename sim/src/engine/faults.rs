//! The fault timeline: at each step's time, `POST /_fakes/faults` with the step's fault object
//! (under a sim-assigned `id` unless the step names one), and `DELETE /_fakes/faults/{id}` when
//! its duration ends. Whatever is still active when the run ends is deleted too.
//!
//! The fault object is the fakes' (kind, target, probability, window, kind fields) and passes
//! through as written; a refusal (400 naming the field) is recorded with the step's line.

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::metrics::Recorder;
use crate::outcome::{Endpoint, ErrorKind};
use crate::report::FaultEvent;
use crate::scenario::FaultStep;

/// What the timeline has done so far; shared with the engine's snapshots.
#[derive(Debug, Default)]
pub struct FaultState {
    /// Labels of faults active now.
    pub active: Mutex<Vec<String>>,
    pub events: Mutex<Vec<FaultEvent>>,
}

impl FaultState {
    pub fn active(&self) -> Vec<String> {
        self.active.lock().clone()
    }
}

/// One scheduled action of a timeline of windows: step `i` begins, or ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Action {
    Add(usize),
    Remove(usize),
}

/// The actions of windows given as `(start, length)` in time order: each window's start, and its
/// end when it has a length; an end before a start at the same moment. Shared by the fakes' fault
/// timeline and the chaos timeline.
pub(super) fn window_actions(
    windows: impl IntoIterator<Item = (std::time::Duration, Option<std::time::Duration>)>,
) -> Vec<(std::time::Duration, Action)> {
    let mut out = Vec::new();
    for (i, (at, length)) in windows.into_iter().enumerate() {
        out.push((at, Action::Add(i)));
        if let Some(d) = length {
            out.push((at + d, Action::Remove(i)));
        }
    }
    out.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| matches!(a.1, Action::Add(_)).cmp(&matches!(b.1, Action::Add(_))))
    });
    out
}

/// The actions of `steps` in time order (a removal before an addition at the same time).
fn actions(steps: &[FaultStep]) -> Vec<(std::time::Duration, Action)> {
    window_actions(steps.iter().map(|s| (s.at, s.duration)))
}

/// The id a step's fault is known by.
pub fn fault_id(step: &FaultStep, index: usize) -> String {
    step.body
        .get("id")
        .and_then(|v| v.as_str())
        .map_or_else(|| format!("sim-{}", index + 1), str::to_owned)
}

/// Runs the timeline until its last action or `stop`.
pub async fn run_timeline(
    steps: Vec<FaultStep>,
    http: reqwest::Client,
    faults_url: Url,
    state: Arc<FaultState>,
    start: Instant,
    stop: CancellationToken,
    recorder: Recorder,
) {
    for (at, action) in actions(&steps) {
        tokio::select! {
            () = tokio::time::sleep_until(start + at) => {}
            () = stop.cancelled() => return,
        }
        let ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        match action {
            Action::Add(i) => {
                let step = &steps[i];
                let id = fault_id(step, i);
                let mut body = step.body.clone();
                if let Some(obj) = body.as_object_mut() {
                    obj.insert("id".to_owned(), serde_json::Value::String(id.clone()));
                }
                let started = Instant::now();
                let result = send(http.post(faults_url.clone()).json(&body)).await;
                recorder.call(
                    Endpoint::Faults,
                    started.elapsed(),
                    result.as_ref().map(|_| ()).map_err(|(k, _)| *k),
                );
                let error = result
                    .err()
                    .map(|(_, why)| format!("line {}: {why}", step.line));
                if error.is_none() {
                    state.active.lock().push(step.label.clone());
                }
                state.events.lock().push(FaultEvent {
                    label: step.label.clone(),
                    id,
                    at_ms: ms,
                    until_ms: None,
                    applied: error.is_none(),
                    error,
                    recovered_ms: None,
                });
            }
            Action::Remove(i) => {
                let id = fault_id(&steps[i], i);
                remove(&http, &faults_url, &id, &recorder).await;
                state.active.lock().retain(|l| *l != steps[i].label);
                if let Some(e) = state
                    .events
                    .lock()
                    .iter_mut()
                    .rev()
                    .find(|e| e.id == id && e.applied)
                {
                    e.until_ms = Some(ms);
                }
            }
        }
    }
}

/// Deletes every fault the timeline added that is still there.
pub async fn cleanup(
    http: &reqwest::Client,
    faults_url: &Url,
    state: &FaultState,
    recorder: &Recorder,
) {
    let open: Vec<String> = state
        .events
        .lock()
        .iter()
        .filter(|e| e.applied && e.until_ms.is_none())
        .map(|e| e.id.clone())
        .collect();
    for id in open {
        remove(http, faults_url, &id, recorder).await;
    }
    state.active.lock().clear();
}

async fn remove(http: &reqwest::Client, faults_url: &Url, id: &str, recorder: &Recorder) {
    let mut url = faults_url.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.push(id);
    }
    let started = Instant::now();
    let result = send(http.delete(url)).await;
    // Already gone (a reset, or a window that ended) is fine.
    let result = match result {
        Err((ErrorKind::Status(404), _)) | Ok(()) => Ok(()),
        Err((kind, _)) => Err(kind),
    };
    recorder.call(Endpoint::Faults, started.elapsed(), result);
}

async fn send(request: reqwest::RequestBuilder) -> Result<(), (ErrorKind, String)> {
    match request.send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            let body: String = body.chars().take(300).collect();
            Err((
                ErrorKind::Status(status),
                format!("http {status}: {}", body.trim()),
            ))
        }
        Err(err) => Err((ErrorKind::of_reqwest(&err), err.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn step(at: u64, duration: Option<u64>, body: serde_json::Value) -> FaultStep {
        FaultStep {
            at: Duration::from_secs(at),
            duration: duration.map(Duration::from_secs),
            label: "x".into(),
            body,
            line: 1,
        }
    }

    #[test]
    fn actions_are_ordered_and_ids_assigned() {
        let steps = vec![
            step(10, Some(5), serde_json::json!({"kind": "outage"})),
            step(15, None, serde_json::json!({"kind": "error", "id": "mine"})),
            step(2, Some(1), serde_json::json!({"kind": "latency"})),
        ];
        let order: Vec<_> = actions(&steps)
            .into_iter()
            .map(|(t, a)| (t.as_secs(), a))
            .collect();
        assert_eq!(
            order,
            vec![
                (2, Action::Add(2)),
                (3, Action::Remove(2)),
                (10, Action::Add(0)),
                (15, Action::Remove(0)),
                (15, Action::Add(1)),
            ]
        );
        assert_eq!(fault_id(&steps[0], 0), "sim-1");
        assert_eq!(fault_id(&steps[1], 1), "mine");
    }
}
