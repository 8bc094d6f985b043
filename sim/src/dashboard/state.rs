//! The dashboard's state and view model: pure data derived from [`MetricsSnapshot`]s and the
//! keys a person pressed, with no terminal, clock or channel in sight.
//!
//! [`UiState`] is what the dashboard remembers between frames (help overlay open, a stop
//! requested, the rate set with `+`/`-`, a short notice, when faults were active). Keys go in
//! through [`UiState::on_key`], which answers with the [`EngineCommand`] to send, if any.
//! [`ViewModel::new`] turns the header, the latest snapshot and the UI state into everything the
//! view draws — numbers formatted, chart points laid out, tones chosen — so rendering is a pure
//! function of a `ViewModel` and tests can build one from a known snapshot.
//!
//! Must not know how the engine produces snapshots, or how a frame reaches the terminal.

use std::time::Duration;

use crate::engine::EngineCommand;
use crate::metrics::{ClaimCounts, MetricsSnapshot, Percentiles, Phase, SeriesPoint};
use crate::report::describe_arrival;
use crate::report::summary::ms;
use crate::scenario::{ArrivalPlan, Plan, TargetPlan, format_duration};
use crate::thresholds::{Status, format_rate};

/// Frames a notice stays on screen (at the dashboard's frame rate, about three seconds).
pub const NOTICE_FRAMES: u32 = 24;

/// What the header shows that does not change during a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub scenario: String,
    pub seed: u64,
    /// Scheduled length of arrivals.
    pub duration: Duration,
    /// How long players in flight get after arrivals stop.
    pub drain: Duration,
    /// The system under test: `embedded` or `urls <matchmaker>`.
    pub target: String,
    /// The arrival model, e.g. `open, 50 arrivals/s, poisson gaps`.
    pub arrival: String,
    /// Whether `+`/`-` can change the arrival rate (open models only).
    pub open_model: bool,
}

impl Header {
    pub fn from_plan(plan: &Plan) -> Header {
        Header {
            scenario: plan.name.clone(),
            seed: plan.run.seed,
            duration: plan.run.duration,
            drain: plan.run.drain,
            target: match &plan.target {
                TargetPlan::Embedded(_) => "embedded".to_owned(),
                TargetPlan::Urls(urls) => format!(
                    "urls {}",
                    urls.matchmaker
                        .iter()
                        .map(url::Url::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
            arrival: describe_arrival(plan),
            open_model: matches!(plan.population.arrival, ArrivalPlan::Open { .. }),
        }
    }
}

/// A key, as the dashboard understands it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// `q` or Ctrl-C: stop arrivals, drain, write the reports.
    Quit,
    /// `p`: pause or resume arrivals.
    Pause,
    /// `+` (or `=`): raise the arrival rate.
    Faster,
    /// `-` (or `_`): lower the arrival rate.
    Slower,
    /// `?` (or `h`): toggle the help overlay.
    Help,
    /// Esc: close the help overlay.
    Close,
    /// Ctrl-L: repaint the whole screen.
    Redraw,
}

/// A stretch of the run during which a fault was active, in seconds since arrivals started.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpan {
    pub label: String,
    pub from_s: f64,
    /// `None` while still active.
    pub to_s: Option<f64>,
}

/// What the dashboard remembers between frames.
#[derive(Debug, Clone, Default)]
pub struct UiState {
    pub help: bool,
    /// A stop was requested (by `q`, Ctrl-C or a signal); the engine is draining.
    pub stopping: bool,
    /// The last rate set with `+`/`-` (parties per second).
    pub rate: Option<f64>,
    /// The last non-zero target rate seen (the base for `+`/`-` while paused).
    last_target: f64,
    notice: Option<(String, u32)>,
    /// When faults were active, as seen in snapshots.
    pub faults: Vec<FaultSpan>,
}

impl UiState {
    pub fn new() -> UiState {
        UiState::default()
    }

    /// Takes in a snapshot: remembers the target rate and when faults start and end.
    pub fn observe(&mut self, snap: &MetricsSnapshot) {
        if snap.phase == Phase::Running && snap.target_rate > 0.0 {
            self.last_target = snap.target_rate;
        }
        let now = snap.elapsed_ms as f64 / 1000.0;
        let finished = snap.phase == Phase::Finished;
        for span in self.faults.iter_mut().filter(|s| s.to_s.is_none()) {
            if finished || !snap.active_faults.contains(&span.label) {
                span.to_s = Some(now);
            }
        }
        if finished {
            return;
        }
        for label in &snap.active_faults {
            let open = self
                .faults
                .iter()
                .any(|s| s.to_s.is_none() && &s.label == label);
            if !open {
                self.faults.push(FaultSpan {
                    label: label.clone(),
                    from_s: now,
                    to_s: None,
                });
            }
        }
    }

    /// Advances one frame: notices expire.
    pub fn frame(&mut self) {
        if let Some((_, left)) = &mut self.notice {
            *left = left.saturating_sub(1);
            if *left == 0 {
                self.notice = None;
            }
        }
    }

    /// Shows `text` in the footer for a few seconds.
    pub fn notify(&mut self, text: impl Into<String>) {
        self.notice = Some((text.into(), NOTICE_FRAMES));
    }

    pub fn notice(&self) -> Option<&str> {
        self.notice.as_ref().map(|(text, _)| text.as_str())
    }

    /// A stop that did not come from a key (a signal, the caller's token).
    pub fn stop_requested(&mut self, why: &str) {
        if !self.stopping {
            self.stopping = true;
            self.notify(format!(
                "{why}: stopping arrivals, draining players in flight"
            ));
        }
    }

    /// Handles a key; returns the command to send to the engine, if any.
    pub fn on_key(
        &mut self,
        key: Key,
        snap: &MetricsSnapshot,
        header: &Header,
    ) -> Option<EngineCommand> {
        match key {
            Key::Help => {
                self.help = !self.help;
                None
            }
            Key::Close => {
                self.help = false;
                None
            }
            Key::Redraw => None,
            Key::Quit => {
                if self.stopping {
                    self.notify(format!(
                        "already stopping: players in flight get up to {} to finish",
                        format_duration(header.drain)
                    ));
                    return None;
                }
                self.stopping = true;
                self.notify(format!(
                    "stopping: arrivals ended, draining players in flight (up to {}); reports follow",
                    format_duration(header.drain)
                ));
                Some(EngineCommand::Stop)
            }
            Key::Pause => {
                if self.stopping {
                    self.notify("stopping: pause no longer applies");
                    return None;
                }
                match snap.phase {
                    Phase::Running => {
                        self.notify("paused: arrivals held, players in flight continue");
                        Some(EngineCommand::Pause)
                    }
                    Phase::Paused => {
                        self.notify("resumed");
                        Some(EngineCommand::Resume)
                    }
                    other => {
                        self.notify(format!("cannot pause while {}", other.as_str()));
                        None
                    }
                }
            }
            Key::Faster | Key::Slower => {
                if !header.open_model {
                    self.notify("closed model: the number of players sets the load, not a rate");
                    return None;
                }
                if self.stopping || matches!(snap.phase, Phase::Draining | Phase::Finished) {
                    self.notify("arrivals are over");
                    return None;
                }
                let base = self.rate.unwrap_or(if snap.target_rate > 0.0 {
                    snap.target_rate
                } else {
                    self.last_target
                });
                let rate = step_rate(base, key == Key::Faster);
                self.rate = Some(rate);
                self.notify(format!("arrival rate set to {rate:.1}/s"));
                Some(EngineCommand::SetRate(rate))
            }
        }
    }
}

/// The next rate up or down from `base`: 10% steps, at least 1 party per second, never negative.
pub fn step_rate(base: f64, up: bool) -> f64 {
    let step = (base * 0.1).max(1.0);
    let next = if up { base + step } else { base - step };
    (next.max(0.0) * 10.0).round() / 10.0
}

/// How a value should look; the view picks the colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Normal,
    Good,
    Warn,
    Bad,
    Dim,
}

/// A labelled value in a stats panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Stat {
    pub label: &'static str,
    pub value: String,
    pub tone: Tone,
}

fn stat(label: &'static str, value: String, tone: Tone) -> Stat {
    Stat { label, value, tone }
}

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartLine {
    pub name: &'static str,
    pub points: Vec<(f64, f64)>,
    /// Which colour slot the view uses for this line.
    pub kind: LineKind,
}

/// The meaning of a chart line, for colour and marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    P50,
    P90,
    P99,
    Max,
    Matched,
    Arrivals,
    Target,
    Attempted,
    NotReady,
    Unreachable,
    Conflict,
    NotFound,
    TimedOut,
}

/// A chart: lines over the series window, with bounds, axis labels and the fault spans inside
/// it. Lines are in legend order; the first is drawn on top.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartModel {
    pub lines: Vec<ChartLine>,
    /// Seconds since arrivals started.
    pub x: [f64; 2],
    /// In the lines' units: per second, or `log10(ms)` when `log_scale`.
    pub y: [f64; 2],
    pub x_labels: Vec<String>,
    pub y_labels: Vec<String>,
    /// Fault spans clipped to `x`, at the top of `y`: drawn as a bar along the top.
    pub faults: Vec<[(f64, f64); 2]>,
    /// Latency charts plot `log10(milliseconds)`, so p50 stays readable under a tall max.
    pub log_scale: bool,
}

impl ChartModel {
    pub fn is_empty(&self) -> bool {
        self.lines.iter().all(|l| l.points.is_empty())
    }
}

/// One row of the errors table.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorRow {
    pub endpoint: String,
    pub kind: String,
    pub count: String,
    pub share: String,
}

/// One threshold, as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdRow {
    /// `PASS`, `FAIL` or `....` (not decided yet).
    pub verdict: &'static str,
    pub condition: String,
    pub actual: String,
    pub tone: Tone,
}

/// The phase as shown: a word and a tone.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseView {
    pub text: String,
    pub tone: Tone,
}

/// Everything one frame shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewModel {
    pub scenario: String,
    pub phase: PhaseView,
    /// `1:12 / 2:00`.
    pub clock: String,
    /// Share of the scheduled duration done, 0..=1.
    pub progress: f64,
    pub seed: u64,
    pub target: String,
    pub arrival: String,
    /// The faults active now, with when each began; `None` when no fault is active.
    pub fault_now: Option<String>,
    /// The same without the times, for narrow headers.
    pub faults_active: Option<String>,
    /// The red banner's text when the generator is saturated.
    pub saturation: Option<String>,
    pub players: Vec<Stat>,
    /// Pairing latency: `(label, now, whole run)` rows for p50/p90/p99/max.
    pub latency: Vec<(&'static str, String, String)>,
    /// Players matched in the last second and over the run.
    pub latency_counts: (u64, u64),
    pub latency_chart: ChartModel,
    pub throughput_chart: ChartModel,
    /// `matched 48/s now, peak 60/s`.
    pub throughput_summary: String,
    pub claims: Vec<Stat>,
    pub claims_chart: ChartModel,
    pub errors: Vec<ErrorRow>,
    pub errors_total: u64,
    pub thresholds: Vec<ThresholdRow>,
    pub help: bool,
    /// Footer notice (a key's effect, a stop in progress).
    pub notice: Option<String>,
    pub paused: bool,
    pub open_model: bool,
}

impl ViewModel {
    pub fn new(header: &Header, snap: &MetricsSnapshot, ui: &UiState) -> ViewModel {
        let elapsed_s = snap.elapsed_ms as f64 / 1000.0;
        let total_s = header.duration.as_secs_f64();
        let series = &snap.series;
        let x = x_window(series, elapsed_s);
        let faults = fault_bars(&ui.faults, x, elapsed_s);

        ViewModel {
            scenario: header.scenario.clone(),
            phase: phase_view(snap.phase, ui.stopping),
            clock: format!("{} / {}", clock(elapsed_s), clock(total_s)),
            progress: if total_s > 0.0 {
                (elapsed_s / total_s).clamp(0.0, 1.0)
            } else {
                0.0
            },
            seed: header.seed,
            target: header.target.clone(),
            arrival: match ui.rate {
                Some(rate) => format!("{} (set to {rate:.1}/s)", header.arrival),
                None => header.arrival.clone(),
            },
            fault_now: fault_now(snap, &ui.faults),
            faults_active: (!snap.active_faults.is_empty()).then(|| snap.active_faults.join(", ")),
            saturation: snap.saturated.then(|| {
                format!(
                    "SATURATED: players start up to {} late; the load generator is the bottleneck, the offered load is not met",
                    ms(snap.max_lag_ms)
                )
            }),
            players: players(snap),
            latency: latency_rows(&snap.latency_now, &snap.latency),
            latency_counts: (snap.latency_now.count, snap.latency.count),
            latency_chart: latency_chart(series, x, faults.clone()),
            throughput_chart: throughput_chart(series, x, faults.clone()),
            throughput_summary: throughput_summary(series),
            claims: claims(snap),
            claims_chart: claims_chart(series, x, faults),
            errors: error_rows(snap),
            errors_total: snap.errors_by.iter().map(|e| e.count).sum(),
            thresholds: threshold_rows(snap),
            help: ui.help,
            notice: ui.notice().map(str::to_owned),
            paused: snap.phase == Phase::Paused,
            open_model: header.open_model,
        }
    }
}

/// Seconds as `m:ss` (or `h:mm:ss`).
pub fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).floor() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// A count with thousands separators: `12,345`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A signed gauge, never shown below zero.
fn gauge(n: i64) -> String {
    count(u64::try_from(n).unwrap_or(0))
}

/// A per-second rate: one decimal below 100.
pub fn per_second(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}/s")
    } else {
        format!("{v:.1}/s")
    }
}

fn phase_view(phase: Phase, stopping: bool) -> PhaseView {
    let (text, tone) = match phase {
        Phase::Preparing => ("PREPARING", Tone::Dim),
        Phase::Running => ("RUNNING", Tone::Good),
        Phase::Paused => ("PAUSED", Tone::Warn),
        Phase::Draining => ("DRAINING", Tone::Warn),
        Phase::Finished => ("FINISHED", Tone::Normal),
    };
    let text = if stopping && phase != Phase::Finished {
        format!("{text} (stopping)")
    } else {
        text.to_owned()
    };
    PhaseView { text, tone }
}

fn fault_now(snap: &MetricsSnapshot, spans: &[FaultSpan]) -> Option<String> {
    if snap.active_faults.is_empty() {
        return None;
    }
    let text = snap
        .active_faults
        .iter()
        .map(|label| {
            let since = spans
                .iter()
                .rev()
                .find(|s| &s.label == label && s.to_s.is_none())
                .map(|s| format!(" since {}", clock(s.from_s)))
                .unwrap_or_default();
            format!("{label}{since}")
        })
        .collect::<Vec<_>>()
        .join(", ");
    Some(text)
}

fn players(snap: &MetricsSnapshot) -> Vec<Stat> {
    let bad = |n: u64| if n > 0 { Tone::Bad } else { Tone::Normal };
    let warn = |n: u64| if n > 0 { Tone::Warn } else { Tone::Normal };
    let behind = snap.saturated
        || (snap.phase == Phase::Running
            && snap.target_rate >= 5.0
            && snap.actual_rate < snap.target_rate * 0.8);
    vec![
        stat("arrived", count(snap.arrived), Tone::Normal),
        stat("searching", gauge(snap.searching), Tone::Normal),
        stat(
            "matched",
            count(snap.matched),
            if snap.matched > 0 {
                Tone::Good
            } else {
                Tone::Normal
            },
        ),
        stat("timed out", count(snap.timed_out), bad(snap.timed_out)),
        stat("cancelled", count(snap.cancelled), Tone::Normal),
        stat("failed", count(snap.failed), bad(snap.failed)),
        stat("errors", count(snap.errors), warn(snap.errors)),
        stat("open sockets", gauge(snap.open_sockets), Tone::Normal),
        stat(
            "arrivals/s",
            format!(
                "{} of {}",
                per_second(snap.actual_rate),
                per_second(snap.target_rate)
            ),
            if behind { Tone::Bad } else { Tone::Normal },
        ),
    ]
}

fn latency_rows(now: &Percentiles, run: &Percentiles) -> Vec<(&'static str, String, String)> {
    let f = |p: &Percentiles, v: f64| {
        if p.count == 0 { "-".to_owned() } else { ms(v) }
    };
    vec![
        ("p50", f(now, now.p50_ms), f(run, run.p50_ms)),
        ("p90", f(now, now.p90_ms), f(run, run.p90_ms)),
        ("p99", f(now, now.p99_ms), f(run, run.p99_ms)),
        ("max", f(now, now.max_ms), f(run, run.max_ms)),
    ]
}

/// The x range of the charts: the series window, at least 30 seconds wide.
fn x_window(series: &[SeriesPoint], elapsed_s: f64) -> [f64; 2] {
    let first = series.first().map_or(0.0, |p| f64::from(p.t));
    let last = series
        .last()
        .map_or(0.0, |p| f64::from(p.t))
        .max(elapsed_s.floor() - 1.0);
    [first, last.max(first + 30.0)]
}

fn fault_bars(spans: &[FaultSpan], x: [f64; 2], elapsed_s: f64) -> Vec<[(f64, f64); 2]> {
    spans
        .iter()
        .filter_map(|s| {
            let from = s.from_s.max(x[0]);
            let to = s.to_s.unwrap_or(elapsed_s).min(x[1]);
            // `y` is filled in per chart (the bar sits at its top).
            (to > from).then_some([(from, 0.0), (to, 0.0)])
        })
        .collect()
}

fn with_top(faults: Vec<[(f64, f64); 2]>, y: f64) -> Vec<[(f64, f64); 2]> {
    faults
        .into_iter()
        .map(|[(a, _), (b, _)]| [(a, y), (b, y)])
        .collect()
}

/// A y bound with some headroom, rounded to a readable value.
fn nice_max(v: f64, floor: f64) -> f64 {
    let v = (v * 1.1).max(floor);
    let magnitude = 10f64.powf(v.log10().floor());
    let steps = [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0];
    let unit = steps
        .iter()
        .map(|s| s * magnitude)
        .find(|s| *s >= v)
        .unwrap_or(10.0 * magnitude);
    if unit.is_finite() { unit } else { floor }
}

/// `m:ss` labels at the start, middle and end of `x`.
fn x_labels(x: [f64; 2]) -> Vec<String> {
    vec![clock(x[0]), clock((x[0] + x[1]) / 2.0), clock(x[1])]
}

/// A per-second chart from `lines` (in legend order).
fn rate_chart(lines: Vec<ChartLine>, x: [f64; 2], faults: Vec<[(f64, f64); 2]>) -> ChartModel {
    let top = nice_max(y_top(&lines), 5.0);
    ChartModel {
        faults: with_top(faults, top),
        lines,
        x,
        y: [0.0, top],
        x_labels: x_labels(x),
        y_labels: vec![per_second(0.0), per_second(top / 2.0), per_second(top)],
        log_scale: false,
    }
}

/// A decade as a label: `1ms`, `100ms`, `10s`.
fn decade(exp: i32) -> String {
    if exp >= 3 {
        format!("{}s", 10u64.pow(exp.unsigned_abs() - 3))
    } else if exp >= 0 {
        format!("{}ms", 10u64.pow(exp.unsigned_abs()))
    } else {
        format!("{}ms", 10f64.powi(exp))
    }
}

fn series_line(
    series: &[SeriesPoint],
    name: &'static str,
    kind: LineKind,
    f: impl Fn(&SeriesPoint) -> Option<f64>,
) -> ChartLine {
    ChartLine {
        name,
        kind,
        points: series
            .iter()
            .filter_map(|p| f(p).map(|v| (f64::from(p.t), v)))
            .collect(),
    }
}

fn y_top(lines: &[ChartLine]) -> f64 {
    lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0, f64::max)
}

fn latency_chart(series: &[SeriesPoint], x: [f64; 2], faults: Vec<[(f64, f64); 2]>) -> ChartModel {
    // Below 1ms is noise on this scale; log10 of it would go negative.
    let log = |v: f64| v.max(1.0).log10();
    let of = |f: fn(&Percentiles) -> f64| {
        move |p: &SeriesPoint| (p.latency.count > 0).then(|| log(f(&p.latency)))
    };
    let lines = vec![
        series_line(series, "p50", LineKind::P50, of(|l| l.p50_ms)),
        series_line(series, "p90", LineKind::P90, of(|l| l.p90_ms)),
        series_line(series, "p99", LineKind::P99, of(|l| l.p99_ms)),
        series_line(series, "max", LineKind::Max, of(|l| l.max_ms)),
    ];
    let values = || lines.iter().flat_map(|l| l.points.iter().map(|p| p.1));
    let lo = values().fold(f64::INFINITY, f64::min);
    let hi = values().fold(0.0, f64::max);
    // Whole decades, at least one apart, from 1ms up.
    let lo = if lo.is_finite() {
        lo.floor().max(0.0)
    } else {
        1.0
    };
    let hi = hi.ceil().max(lo + 1.0);
    let decades = (lo as i32)..=(hi as i32);
    ChartModel {
        faults: with_top(faults, hi),
        lines,
        x,
        y: [lo, hi],
        x_labels: x_labels(x),
        y_labels: decades.map(decade).collect(),
        log_scale: true,
    }
}

fn throughput_chart(
    series: &[SeriesPoint],
    x: [f64; 2],
    faults: Vec<[(f64, f64); 2]>,
) -> ChartModel {
    let lines = vec![
        series_line(series, "matched", LineKind::Matched, |p| {
            Some(p.matched as f64)
        }),
        series_line(series, "arrivals", LineKind::Arrivals, |p| {
            Some(p.arrivals as f64)
        }),
        series_line(series, "target", LineKind::Target, |p| Some(p.target_rate)),
    ];
    rate_chart(lines, x, faults)
}

fn throughput_summary(series: &[SeriesPoint]) -> String {
    let now = series.last().map_or(0, |p| p.matched);
    let peak = series.iter().map(|p| p.matched).max().unwrap_or(0);
    format!(
        "matched {} now, peak {}",
        per_second(now as f64),
        per_second(peak as f64)
    )
}

fn claims_chart(series: &[SeriesPoint], x: [f64; 2], faults: Vec<[(f64, f64); 2]>) -> ChartModel {
    let c = |f: fn(&ClaimCounts) -> u64| move |p: &SeriesPoint| Some(f(&p.claims) as f64);
    let lines = vec![
        series_line(series, "not_ready", LineKind::NotReady, c(|c| c.not_ready)),
        series_line(
            series,
            "unreachable",
            LineKind::Unreachable,
            c(|c| c.unreachable),
        ),
        series_line(series, "conflict", LineKind::Conflict, c(|c| c.conflict)),
        series_line(series, "not_found", LineKind::NotFound, c(|c| c.not_found)),
        series_line(series, "timed out", LineKind::TimedOut, |p| {
            Some(p.timed_out as f64)
        }),
        series_line(series, "attempted", LineKind::Attempted, c(|c| c.attempted)),
    ];
    rate_chart(lines, x, faults)
}

fn claims(snap: &MetricsSnapshot) -> Vec<Stat> {
    let Some(c) = snap.claims else {
        return vec![stat(
            "claims",
            "unreadable (no fakes stats)".to_owned(),
            Tone::Dim,
        )];
    };
    let failed = c.failed();
    let rate = if c.attempted == 0 {
        0.0
    } else {
        failed as f64 / c.attempted as f64
    };
    let bad = |n: u64| if n > 0 { Tone::Bad } else { Tone::Normal };
    vec![
        stat("attempted", count(c.attempted), Tone::Normal),
        stat("succeeded", count(c.succeeded), Tone::Normal),
        stat(
            "failed",
            format!("{} ({})", count(failed), format_rate(rate)),
            bad(failed),
        ),
        stat("not_ready", count(c.not_ready), bad(c.not_ready)),
        stat("unreachable", count(c.unreachable), bad(c.unreachable)),
        stat("conflict", count(c.conflict), bad(c.conflict)),
        stat("not_found", count(c.not_found), bad(c.not_found)),
    ]
}

fn error_rows(snap: &MetricsSnapshot) -> Vec<ErrorRow> {
    let total: u64 = snap.errors_by.iter().map(|e| e.count).sum();
    let mut rows: Vec<_> = snap.errors_by.iter().filter(|e| e.count > 0).collect();
    rows.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.endpoint.cmp(&b.endpoint))
            .then_with(|| a.kind.cmp(&b.kind))
    });
    rows.into_iter()
        .map(|e| ErrorRow {
            endpoint: e.endpoint.clone(),
            kind: e.kind.clone(),
            count: count(e.count),
            share: format!("{:.1}%", 100.0 * e.count as f64 / total.max(1) as f64),
        })
        .collect()
}

/// Failures first, then those not decided yet, then passes (each in the scenario's order): in
/// a short panel what is broken stays in sight.
fn threshold_rows(snap: &MetricsSnapshot) -> Vec<ThresholdRow> {
    let mut sorted: Vec<_> = snap.thresholds.iter().collect();
    sorted.sort_by_key(|t| match t.status {
        Status::Fail => 0,
        Status::Pending => 1,
        Status::Pass => 2,
    });
    sorted
        .into_iter()
        .map(|t| {
            let (verdict, tone) = match t.status {
                Status::Pass => ("PASS", Tone::Good),
                Status::Fail => ("FAIL", Tone::Bad),
                Status::Pending => ("....", Tone::Dim),
            };
            ThresholdRow {
                verdict,
                condition: t.condition.clone(),
                actual: t.actual.clone().unwrap_or_else(|| "-".to_owned()),
                tone,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::snapshot::ErrorCount;

    fn header() -> Header {
        Header {
            scenario: "t".to_owned(),
            seed: 1,
            duration: Duration::from_secs(60),
            drain: Duration::from_secs(10),
            target: "embedded".to_owned(),
            arrival: "open".to_owned(),
            open_model: true,
        }
    }

    fn running(rate: f64) -> MetricsSnapshot {
        MetricsSnapshot {
            phase: Phase::Running,
            target_rate: rate,
            ..MetricsSnapshot::default()
        }
    }

    #[test]
    fn keys_map_to_commands() {
        let h = header();
        let mut ui = UiState::new();
        let snap = running(50.0);
        ui.observe(&snap);
        assert_eq!(ui.on_key(Key::Pause, &snap, &h), Some(EngineCommand::Pause));
        let paused = MetricsSnapshot {
            phase: Phase::Paused,
            ..MetricsSnapshot::default()
        };
        assert_eq!(
            ui.on_key(Key::Pause, &paused, &h),
            Some(EngineCommand::Resume)
        );
        // While paused the target reads 0: `+` steps from the last rate seen.
        assert_eq!(
            ui.on_key(Key::Faster, &paused, &h),
            Some(EngineCommand::SetRate(55.0))
        );
        assert_eq!(
            ui.on_key(Key::Slower, &snap, &h),
            Some(EngineCommand::SetRate(49.5))
        );
        assert_eq!(ui.on_key(Key::Help, &snap, &h), None);
        assert!(ui.help);
        assert_eq!(ui.on_key(Key::Close, &snap, &h), None);
        assert!(!ui.help);
        assert_eq!(ui.on_key(Key::Quit, &snap, &h), Some(EngineCommand::Stop));
        assert_eq!(ui.on_key(Key::Quit, &snap, &h), None, "stop is sent once");
        assert_eq!(ui.on_key(Key::Pause, &snap, &h), None);
        assert!(ui.notice().is_some());
    }

    #[test]
    fn closed_models_have_no_rate() {
        let h = Header {
            open_model: false,
            ..header()
        };
        let mut ui = UiState::new();
        assert_eq!(ui.on_key(Key::Faster, &running(10.0), &h), None);
        assert!(ui.notice().is_some_and(|n| n.contains("closed model")));
    }

    #[test]
    fn rate_steps_are_ten_percent_at_least_one() {
        assert_eq!(step_rate(50.0, true), 55.0);
        assert_eq!(step_rate(50.0, false), 45.0);
        assert_eq!(step_rate(2.0, true), 3.0);
        assert_eq!(step_rate(0.5, false), 0.0);
    }

    #[test]
    fn notices_expire() {
        let mut ui = UiState::new();
        ui.notify("x");
        for _ in 0..NOTICE_FRAMES {
            assert_eq!(ui.notice(), Some("x"));
            ui.frame();
        }
        assert_eq!(ui.notice(), None);
    }

    #[test]
    fn fault_spans_follow_snapshots() {
        let mut ui = UiState::new();
        let at = |ms: u64, faults: &[&str]| MetricsSnapshot {
            elapsed_ms: ms,
            phase: Phase::Running,
            active_faults: faults.iter().map(|s| (*s).to_owned()).collect(),
            ..MetricsSnapshot::default()
        };
        ui.observe(&at(1000, &[]));
        ui.observe(&at(10_000, &["brownout"]));
        ui.observe(&at(12_000, &["brownout"]));
        let vm = ViewModel::new(&header(), &at(12_000, &["brownout"]), &ui);
        assert_eq!(vm.fault_now.as_deref(), Some("brownout since 0:10"));
        ui.observe(&at(20_000, &[]));
        assert_eq!(
            ui.faults,
            vec![FaultSpan {
                label: "brownout".to_owned(),
                from_s: 10.0,
                to_s: Some(20.0),
            }]
        );
        let vm = ViewModel::new(&header(), &at(21_000, &[]), &ui);
        assert_eq!(vm.fault_now, None);
        assert_eq!(vm.claims_chart.faults.len(), 1);
        assert_eq!(vm.claims_chart.faults[0][0].0, 10.0);
        assert_eq!(vm.claims_chart.faults[0][1].0, 20.0);
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(clock(72.9), "1:12");
        assert_eq!(clock(3661.0), "1:01:01");
        assert_eq!(nice_max(0.0, 10.0), 10.0);
        assert_eq!(nice_max(90.0, 10.0), 100.0);
        assert_eq!(nice_max(1900.0, 10.0), 2500.0);
        assert_eq!(nice_max(9400.0, 10.0), 12_000.0);
        assert_eq!(decade(0), "1ms");
        assert_eq!(decade(2), "100ms");
        assert_eq!(decade(4), "10s");
    }

    #[test]
    fn latency_is_charted_on_whole_decades() {
        let point = |t: u32, p50: f64, max: f64| SeriesPoint {
            t,
            target_rate: 1.0,
            arrivals: 1,
            matched: 1,
            timed_out: 0,
            failed: 0,
            errors: 0,
            latency: Percentiles {
                count: 1,
                p50_ms: p50,
                p90_ms: p50,
                p95_ms: p50,
                p99_ms: max,
                max_ms: max,
            },
            claims: ClaimCounts::default(),
        };
        let series = vec![point(0, 120.0, 300.0), point(1, 150.0, 2000.0)];
        let chart = latency_chart(&series, [0.0, 30.0], Vec::new());
        assert!(chart.log_scale);
        assert_eq!(chart.y, [2.0, 4.0]);
        assert_eq!(chart.y_labels, vec!["100ms", "1s", "10s"]);
        assert_eq!(chart.lines[0].name, "p50");
        assert_eq!(chart.lines[0].points[0], (0.0, 120f64.log10()));
        // Seconds without a match leave a gap, not a zero.
        let mut quiet = point(2, 0.0, 0.0);
        quiet.latency.count = 0;
        let chart = latency_chart(&[quiet], [0.0, 30.0], Vec::new());
        assert!(chart.is_empty());
        assert_eq!(chart.y, [1.0, 2.0]);
    }

    #[test]
    fn errors_sort_by_count() {
        let snap = MetricsSnapshot {
            errors_by: vec![
                ErrorCount {
                    endpoint: "a".into(),
                    kind: "x".into(),
                    count: 1,
                },
                ErrorCount {
                    endpoint: "b".into(),
                    kind: "y".into(),
                    count: 3,
                },
            ],
            ..MetricsSnapshot::default()
        };
        let rows = error_rows(&snap);
        assert_eq!(rows[0].endpoint, "b");
        assert_eq!(rows[0].share, "75.0%");
    }
}
