//! The pipes between `sim run` and its workers.
//!
//! Worker → parent, on the worker's stdout: one JSON [`WorkerMessage`] per line — snapshots
//! (with exact histograms) a few times a second, which double as the heartbeat, then one
//! `finished` with the worker's report and every player's outcome, or one `failed`. The
//! worker's stderr carries its logs, which the parent prefixes and passes on.
//!
//! Parent → worker, on the worker's stdin: one command per line (`start` once every worker is
//! ready, `stop`, `pause`, `resume`, `rate 12.5`). End of input means the parent is gone: the worker stops as for `stop`.

use serde::{Deserialize, Serialize};

use crate::engine::{EngineCommand, Outcomes};
use crate::metrics::MetricsSnapshot;
use crate::report::RunReport;

/// One line from a worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkerMessage {
    /// The worker's live figures (its `series` left out: the merge rebuilds it from the
    /// mergeable seconds).
    Snapshot { snapshot: Box<MetricsSnapshot> },
    /// The run is over: the worker's report and what its players recorded.
    Finished {
        report: Box<RunReport>,
        outcomes: Box<Outcomes>,
    },
    /// The run could not happen (`config`: a problem with the scenario or setup, exit 2).
    Failed { message: String, config: bool },
}

impl WorkerMessage {
    /// The line, without its newline.
    pub fn to_line(&self) -> String {
        // Plain data with string keys: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(r#"{{"kind":"failed","message":"cannot encode: {e}","config":false}}"#)
        })
    }

    pub fn from_line(line: &str) -> Result<WorkerMessage, serde_json::Error> {
        serde_json::from_str(line)
    }
}

/// A command as a line, without its newline.
pub fn command_line(command: EngineCommand) -> String {
    match command {
        EngineCommand::Pause => "pause".to_owned(),
        EngineCommand::Resume => "resume".to_owned(),
        EngineCommand::Stop => "stop".to_owned(),
        EngineCommand::Start => "start".to_owned(),
        EngineCommand::SetRate(rate) => format!("rate {rate}"),
    }
}

/// Reads [`command_line`]'s output.
pub fn parse_command(line: &str) -> Option<EngineCommand> {
    match line.trim().split_once(' ') {
        Some(("rate", rate)) => rate.trim().parse().ok().map(EngineCommand::SetRate),
        Some(_) => None,
        None => match line.trim() {
            "pause" => Some(EngineCommand::Pause),
            "resume" => Some(EngineCommand::Resume),
            "stop" => Some(EngineCommand::Stop),
            "start" => Some(EngineCommand::Start),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip() {
        for c in [
            EngineCommand::Pause,
            EngineCommand::Resume,
            EngineCommand::Stop,
            EngineCommand::SetRate(12.5),
        ] {
            assert_eq!(parse_command(&command_line(c)), Some(c));
        }
        assert_eq!(parse_command("rate x"), None);
        assert_eq!(parse_command("jump"), None);
    }

    #[test]
    fn messages_round_trip() {
        let m = WorkerMessage::Failed {
            message: "no".into(),
            config: true,
        };
        let line = m.to_line();
        assert!(!line.contains('\n'));
        assert!(matches!(
            WorkerMessage::from_line(&line),
            Ok(WorkerMessage::Failed { config: true, .. })
        ));
        let snap = WorkerMessage::Snapshot {
            snapshot: Box::new(MetricsSnapshot {
                matched: 7,
                ..MetricsSnapshot::default()
            }),
        };
        match WorkerMessage::from_line(&snap.to_line()) {
            Ok(WorkerMessage::Snapshot { snapshot }) => assert_eq!(snapshot.matched, 7),
            other => panic!("{other:?}"),
        }
    }
}
