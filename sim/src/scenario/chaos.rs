//! `[[chaos]]`: process-level faults in the scenario timeline, next to the fakes' `[[faults]]`.
//!
//! ```toml
//! [[chaos]]
//! at = "20s"                 # since arrivals started
//! action = "kill"            # kill | pause | restart | partition
//! process = "matchmaker-0"   # kill, pause, restart: "matchmaker-N", "redis" or "fakes"
//! duration = "5s"            # kill: down this long, then started again (omitted: stays down)
//!                            # pause: SIGSTOP, SIGCONT after this long (required)
//!                            # partition: cut this long (omitted: until the end)
//! link = "matchmaker-redis"  # partition: "matchmaker-redis" or "matchmaker-fakes"
//! mode = "blackhole"         # partition: "blackhole" (hang) or "reset" (connections closed)
//! label = "replica 0 crashes"
//! ```
//!
//! Chaos needs the embedded target spread over processes: a scenario with `[[chaos]]` runs its
//! matchmaker as replica processes (`[target] replicas`, default 2) on a Redis the run starts
//! with an append-only file, reached through proxies a partition can cut.

use std::time::Duration;

use serde::Serialize;

use super::node::{Node, Problems, Table};
use super::{RunPlan, check_before_end, required_duration};
use crate::stack::control::{LinkName, ProcessName};
use crate::stack::proxy::LinkMode;

/// Replicas a chaos scenario runs unless `[target] replicas` says otherwise.
pub const DEFAULT_CHAOS_REPLICAS: usize = 2;

/// What a chaos step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ChaosAction {
    /// SIGKILL; started again after the step's duration, if it has one.
    Kill {
        #[serde(serialize_with = "display")]
        process: ProcessName,
    },
    /// SIGSTOP, then SIGCONT after the step's duration.
    Pause {
        #[serde(serialize_with = "display")]
        process: ProcessName,
    },
    /// SIGTERM (drain), then started again.
    Restart {
        #[serde(serialize_with = "display")]
        process: ProcessName,
    },
    /// The link cut for the step's duration (or until the end).
    Partition {
        #[serde(serialize_with = "display")]
        link: LinkName,
        #[serde(serialize_with = "mode_name")]
        mode: LinkMode,
    },
}

fn display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

fn mode_name<S: serde::Serializer>(m: &LinkMode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match m {
        LinkMode::Pass => "pass",
        LinkMode::Blackhole => "blackhole",
        LinkMode::Reset => "reset",
    })
}

impl ChaosAction {
    /// The process a step acts on, if any.
    pub fn process(&self) -> Option<ProcessName> {
        match self {
            ChaosAction::Kill { process }
            | ChaosAction::Pause { process }
            | ChaosAction::Restart { process } => Some(*process),
            ChaosAction::Partition { .. } => None,
        }
    }

    /// A default label: `kill matchmaker-0`, `partition matchmaker-redis (blackhole)`.
    pub fn describe(&self) -> String {
        match self {
            ChaosAction::Kill { process } => format!("kill {process}"),
            ChaosAction::Pause { process } => format!("pause {process}"),
            ChaosAction::Restart { process } => format!("restart {process}"),
            ChaosAction::Partition { link, mode } => {
                let mode = match mode {
                    LinkMode::Reset => "reset",
                    _ => "blackhole",
                };
                format!("partition {link} ({mode})")
            }
        }
    }
}

/// One entry of the chaos timeline.
#[derive(Debug, Clone, Serialize)]
pub struct ChaosStep {
    /// Since the start of arrivals.
    pub at: Duration,
    /// How long the harm lasts (see the module doc); `None`: until the end.
    pub duration: Option<Duration>,
    pub label: String,
    #[serde(flatten)]
    pub action: ChaosAction,
    /// Where it was written, for runtime errors.
    pub line: usize,
}

/// Reads `[[chaos]]`; `replicas` is how many matchmaker replicas the scenario runs.
pub(super) fn read_chaos(
    items: &[Node],
    run: Option<&RunPlan>,
    replicas: usize,
    p: &mut Problems<'_>,
) -> Vec<ChaosStep> {
    let mut steps = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("chaos[{i}]");
        let Some(mut t) = Table::from_node(item, &path, p) else {
            continue;
        };
        let at = required_duration(&mut t, p, "at", false);
        let duration = required_duration_opt(&mut t, p);
        let label = t.opt_str(p, "label").map(|(l, _)| l);
        let action = read_action(&mut t, duration, replicas, p);
        check_before_end(at, run, &item.span, &path, p);
        let line = p.line_of(item.span.start);
        t.finish(p);
        if let (Some(at), Some(action)) = (at, action) {
            steps.push(ChaosStep {
                at,
                duration,
                label: label.unwrap_or_else(|| action.describe()),
                action,
                line,
            });
        }
    }
    steps
}

fn required_duration_opt(t: &mut Table<'_>, p: &mut Problems<'_>) -> Option<Duration> {
    match t.opt_duration(p, "duration") {
        Some((d, span)) if d.is_zero() => {
            p.push(&span, t.field("duration"), "must be positive");
            None
        }
        Some((d, _)) => Some(d),
        None => None,
    }
}

fn read_action(
    t: &mut Table<'_>,
    duration: Option<Duration>,
    replicas: usize,
    p: &mut Problems<'_>,
) -> Option<ChaosAction> {
    let Some((action, action_span)) = t.opt_str(p, "action") else {
        if !t.has("action") {
            p.push(
                &t.span,
                t.field("action"),
                "missing (required: kill, pause, restart or partition)",
            );
        }
        return None;
    };
    match action.as_str() {
        "kill" => {
            read_process(t, p, &action, replicas).map(|process| ChaosAction::Kill { process })
        }
        "pause" => {
            let process = read_process(t, p, &action, replicas);
            if duration.is_none() && !t.has("duration") {
                p.push(
                    &t.span,
                    t.field("duration"),
                    "missing (required for pause: how long the process stays stopped)",
                );
                return None;
            }
            process.map(|process| ChaosAction::Pause { process })
        }
        "restart" => {
            if let Some(node) = t.node("duration") {
                p.push(
                    &node.span,
                    t.field("duration"),
                    "a restart takes no duration (use kill with a duration for a crash followed by a start)",
                );
            }
            read_process(t, p, &action, replicas).map(|process| ChaosAction::Restart { process })
        }
        "partition" => {
            let link = match t.opt_str(p, "link") {
                Some((name, span)) => match name.parse::<LinkName>() {
                    Ok(link) => Some(link),
                    Err(message) => {
                        p.push(&span, t.field("link"), message);
                        None
                    }
                },
                None => {
                    if !t.has("link") {
                        p.push(
                            &t.span,
                            t.field("link"),
                            "missing (required for partition: \"matchmaker-redis\" or \"matchmaker-fakes\")",
                        );
                    }
                    None
                }
            };
            let mode = match t.opt_str(p, "mode") {
                None => Some(LinkMode::Blackhole),
                Some((mode, span)) => match mode.as_str() {
                    "blackhole" => Some(LinkMode::Blackhole),
                    "reset" => Some(LinkMode::Reset),
                    other => {
                        p.push(
                            &span,
                            t.field("mode"),
                            format!("unknown mode {other:?}: expected \"blackhole\" or \"reset\""),
                        );
                        None
                    }
                },
            };
            Some(ChaosAction::Partition {
                link: link?,
                mode: mode?,
            })
        }
        other => {
            p.push(
                &action_span,
                t.field("action"),
                format!("unknown action {other:?}: expected kill, pause, restart or partition"),
            );
            None
        }
    }
}

fn read_process(
    t: &mut Table<'_>,
    p: &mut Problems<'_>,
    action: &str,
    replicas: usize,
) -> Option<ProcessName> {
    let Some((name, span)) = t.opt_str(p, "process") else {
        if !t.has("process") {
            p.push(
                &t.span,
                t.field("process"),
                format!(
                    "missing (required for {action}: \"matchmaker-N\", \"redis\" or \"fakes\")"
                ),
            );
        }
        return None;
    };
    match name.parse::<ProcessName>() {
        Ok(ProcessName::Replica(i)) if i >= replicas => {
            p.push(
                &span,
                t.field("process"),
                format!(
                    "the run has {replicas} matchmaker replicas (matchmaker-0 … matchmaker-{}); set [target] replicas to run more",
                    replicas.saturating_sub(1)
                ),
            );
            None
        }
        Ok(process) => Some(process),
        Err(message) => {
            p.push(&span, t.field("process"), message);
            None
        }
    }
}
