//! The live dashboard: known snapshots rendered into ratatui's `TestBackend` with each panel's
//! text asserted, and the real `sim` binary driven under a pseudo-terminal (tmux) — panels on
//! screen, keys acting on the engine, `q` ending the run with the reports written and the
//! terminal restored.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use sim::dashboard::state::{LineKind, NOTICE_FRAMES};
use sim::dashboard::{Header, Key, UiState, ViewModel, view};
use sim::engine::EngineCommand;
use sim::metrics::snapshot::ErrorCount;
use sim::metrics::{ClaimCounts, MetricsSnapshot, Percentiles, Phase, SeriesPoint};
use sim::scenario::Thresholds;
use sim::thresholds::{self, ResultView};

// ---------------------------------------------------------------------------------------------
// A dsmc-brownout run, second by second: claims fail from 0:30 to 1:30, timeouts follow.

const FAULT: &str = "claim-brownout";
const FAULT_FROM: u32 = 30;
const FAULT_TO: u32 = 90;

fn header() -> Header {
    Header {
        scenario: "dsmc-brownout".to_owned(),
        seed: 42,
        duration: Duration::from_secs(120),
        drain: Duration::from_secs(15),
        target: "embedded".to_owned(),
        arrival: "open, 40 arrivals/s, poisson gaps".to_owned(),
        open_model: true,
    }
}

fn faulty(t: u32) -> bool {
    (FAULT_FROM..FAULT_TO).contains(&t)
}

fn pct(p50: f64, p90: f64, p99: f64, max: f64, count: u64) -> Percentiles {
    Percentiles {
        count,
        p50_ms: p50,
        p90_ms: p90,
        p95_ms: (p90 + p99) / 2.0,
        p99_ms: p99,
        max_ms: max,
    }
}

/// Second `t` of the run.
fn point(t: u32) -> SeriesPoint {
    let wobble = [0i64, 1, -1, 2, -2][(t % 5) as usize];
    let fault = faulty(t);
    // Timeouts follow the fault by the 10s request timeout and outlast it as much.
    let timing_out = (FAULT_FROM + 10..FAULT_TO + 10).contains(&t);
    let matched = match t {
        0 => 0,
        _ if fault => 28 + u64::from(t % 3),
        _ => 39 + u64::from(t % 3),
    };
    let slow = (FAULT_FROM + 2..FAULT_TO + 5).contains(&t);
    let latency = if matched == 0 {
        Percentiles::default()
    } else if slow {
        pct(
            880.0 + f64::from(t % 7) * 10.0,
            1900.0,
            4200.0,
            9100.0 + f64::from(t % 4) * 100.0,
            matched,
        )
    } else {
        pct(
            170.0 + f64::from(t % 5) * 4.0,
            320.0,
            610.0,
            880.0 + f64::from(t % 3) * 20.0,
            matched,
        )
    };
    SeriesPoint {
        t,
        target_rate: 40.0,
        arrivals: u64::try_from(40 + wobble).unwrap_or(40),
        matched,
        timed_out: if timing_out { 3 + u64::from(t % 3) } else { 0 },
        failed: if fault { 2 } else { 0 },
        errors: if timing_out { 1 } else { 0 },
        latency,
        claims: ClaimCounts {
            attempted: if fault { 34 } else { matched / 2 },
            succeeded: if fault { 17 } else { matched / 2 },
            not_ready: if fault { 7 } else { 0 },
            unreachable: if fault { 10 } else { 0 },
            conflict: 0,
            not_found: 0,
        },
    }
}

/// The snapshot the engine publishes at `elapsed_ms`, built from the seconds before it.
fn snapshot_at(elapsed_ms: u64) -> MetricsSnapshot {
    let seconds = u32::try_from(elapsed_ms / 1000).unwrap_or(0);
    let series: Vec<SeriesPoint> = (0..seconds).map(point).collect();
    let sum = |f: fn(&SeriesPoint) -> u64| series.iter().map(f).sum::<u64>();
    let mut claims = ClaimCounts::default();
    let mut pairing = sim::metrics::new_histogram();
    for p in &series {
        claims.add(&p.claims);
        let l = p.latency;
        let (n90, n99) = (p.matched * 3 / 10, p.matched / 10);
        let n_max = u64::from(p.t % 10 == 0).min(p.matched - n90 - n99);
        for (ms, n) in [
            (l.p50_ms, p.matched - n90 - n99 - n_max),
            (l.p90_ms, n90),
            (l.p99_ms, n99),
            (l.max_ms, n_max),
        ] {
            for _ in 0..n {
                sim::metrics::record(&mut pairing, Duration::from_secs_f64(ms / 1000.0));
            }
        }
    }
    let (matched, timed_out, failed, errors) = (
        sum(|p| p.matched),
        sum(|p| p.timed_out),
        sum(|p| p.failed),
        sum(|p| p.errors),
    );
    let th = Thresholds {
        pairing_p95: Some(Duration::from_secs(2)),
        pairing_p99: Some(Duration::from_secs(5)),
        timeout_rate: Some(0.01),
        claim_failure_rate: Some(0.25),
        min_matched: Some(4000),
        ..Thresholds::default()
    };
    let view = ResultView {
        pairing: &pairing,
        matched,
        timed_out,
        failed,
        errors,
        finished: matched + timed_out + failed + errors,
        claims: Some(claims),
    };
    let now = seconds.saturating_sub(1);
    let fault_now = faulty(u32::try_from(elapsed_ms / 1000).unwrap_or(0));
    let arrived = sum(|p| p.arrivals);
    MetricsSnapshot {
        elapsed_ms,
        phase: Phase::Running,
        ready: false,
        active_faults: if fault_now {
            vec![FAULT.to_owned()]
        } else {
            Vec::new()
        },
        arrived,
        searching: 212,
        in_flight: 230,
        matched,
        timed_out,
        cancelled: 0,
        failed,
        errors,
        open_sockets: 241,
        target_rate: 40.0,
        actual_rate: series.last().map_or(0.0, |p| p.arrivals as f64),
        latency: sim::metrics::Percentiles::of(&pairing),
        latency_now: series.last().map_or(Percentiles::default(), |p| p.latency),
        claims: Some(claims),
        errors_by: vec![
            ErrorCount {
                endpoint: "matchmaking".to_owned(),
                kind: "timeout".to_owned(),
                count: timed_out,
            },
            ErrorCount {
                endpoint: "lobby".to_owned(),
                kind: "no_found".to_owned(),
                count: errors,
            },
            ErrorCount {
                endpoint: "release_server".to_owned(),
                kind: "http_503".to_owned(),
                count: if now >= FAULT_FROM { 3 } else { 0 },
            },
            ErrorCount {
                endpoint: "login".to_owned(),
                kind: "transport".to_owned(),
                count: 0,
            },
        ],
        thresholds: thresholds::evaluate(&th, &view, true),
        saturated: false,
        max_lag_ms: 4.2,
        failovers: 0,
        mergeable: None,
        series,
    }
}

/// Feeds the dashboard's UI state four snapshots a second up to `elapsed_ms`, as the engine
/// would, and returns the last snapshot.
fn run_until(ui: &mut UiState, elapsed_ms: u64) -> MetricsSnapshot {
    let mut last = MetricsSnapshot::default();
    for ms in (0..=elapsed_ms).step_by(250) {
        last = snapshot_at(ms);
        ui.observe(&last);
    }
    last
}

// ---------------------------------------------------------------------------------------------
// Reading a rendered screen back.

/// A rendered screen, one `Vec<char>` per row.
struct Screen {
    rows: Vec<Vec<char>>,
    terminal: Terminal<TestBackend>,
}

fn render(vm: &ViewModel, width: u16, height: u16) -> Screen {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
    terminal
        .draw(|frame| view::draw(frame, vm))
        .expect("draw into the test backend");
    let buffer = terminal.backend().buffer();
    let rows = (0..height)
        .map(|y| {
            (0..width)
                .map(|x| buffer[(x, y)].symbol().chars().next().unwrap_or(' '))
                .collect()
        })
        .collect();
    Screen { rows, terminal }
}

impl Screen {
    fn text(&self) -> String {
        self.rows
            .iter()
            .map(|r| r.iter().collect::<String>().trim_end().to_owned())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn find(&self, needle: &str) -> Option<(usize, usize)> {
        let needle: Vec<char> = needle.chars().collect();
        self.rows.iter().enumerate().find_map(|(y, row)| {
            row.windows(needle.len())
                .position(|w| w == needle.as_slice())
                .map(|x| (x, y))
        })
    }

    /// The text inside the bordered panel whose title contains `title`, one line per row.
    fn panel(&self, title: &str) -> String {
        let Some((x, y)) = self.find(title) else {
            panic!("no panel titled {title:?} in\n{}", self.text());
        };
        let row = &self.rows[y];
        let left = row[..x]
            .iter()
            .rposition(|c| *c == '┌')
            .unwrap_or_else(|| panic!("panel {title:?} has no left corner"));
        let right = x + row[x..]
            .iter()
            .position(|c| *c == '┐')
            .unwrap_or_else(|| panic!("panel {title:?} has no right corner"));
        let mut lines = Vec::new();
        for r in &self.rows[y + 1..] {
            if r[left] == '└' {
                break;
            }
            lines.push(
                r[left + 1..right]
                    .iter()
                    .collect::<String>()
                    .trim_end()
                    .to_owned(),
            );
        }
        lines.join("\n")
    }

    fn fg_at(&self, needle: &str) -> Color {
        let (x, y) = self
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not on screen"));
        let x = u16::try_from(x).unwrap_or(u16::MAX);
        let y = u16::try_from(y).unwrap_or(u16::MAX);
        self.terminal.backend().buffer()[(x, y)].fg
    }

    fn bg_at(&self, needle: &str) -> Color {
        let (x, y) = self
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not on screen"));
        let x = u16::try_from(x).unwrap_or(u16::MAX);
        let y = u16::try_from(y).unwrap_or(u16::MAX);
        self.terminal.backend().buffer()[(x, y)].bg
    }
}

/// Whether `text` has a line with these words in this order (any spacing between them).
fn has_line(text: &str, words: &[&str]) -> bool {
    text.lines().any(|line| {
        let mut rest = line;
        words.iter().all(|w| match rest.find(w) {
            Some(i) => {
                rest = &rest[i + w.len()..];
                true
            }
            None => false,
        })
    })
}

macro_rules! assert_line {
    ($text:expr, $($word:expr),+ $(,)?) => {
        let text = &$text;
        assert!(
            has_line(text, &[$($word),+]),
            "no line with {:?} in\n{}",
            [$($word),+],
            text
        );
    };
}

// ---------------------------------------------------------------------------------------------
// Panels.

#[test]
fn every_panel_shows_a_brownout_in_progress() {
    let mut ui = UiState::new();
    let snap = run_until(&mut ui, 52_400);
    let vm = ViewModel::new(&header(), &snap, &ui);
    let screen = render(&vm, 160, 50);

    let head = screen.panel("matchbench sim");
    assert_line!(
        head,
        "scenario dsmc-brownout",
        "RUNNING",
        "elapsed 0:52 / 2:00 (43%)"
    );
    assert_line!(head, "seed 42", "target embedded");
    assert_line!(
        head,
        "arrivals open, 40 arrivals/s",
        "fault: claim-brownout since 0:30"
    );
    assert_eq!(screen.fg_at("fault: claim-brownout"), Color::Red);

    let players = screen.panel(" Players ");
    assert_line!(players, "arrived", "2,081");
    assert_line!(players, "searching", "212");
    assert_line!(players, "matched", "1,798");
    assert_line!(players, "timed out", "48");
    assert_line!(players, "cancelled", "0");
    assert_line!(players, "failed", "44");
    assert_line!(players, "errors", "12");
    assert_line!(players, "open sockets", "241");
    assert_line!(players, "arrivals/s", "41.0/s of 40.0/s");
    assert_eq!(screen.fg_at("48"), Color::LightRed, "timeouts stand out");

    let latency = screen.panel(" Pairing latency ─");
    assert_line!(latency, "last 1s", "whole run");
    assert_line!(latency, "p50", "900ms", "320ms");
    assert_line!(latency, "p90", "1.90s", "1.90s");
    assert_line!(latency, "p99", "4.20s", "4.20s");
    assert_line!(latency, "max", "9.40s", "9.31s");
    assert_line!(latency, "n", "28", "1,798");

    let claims = screen.panel(" DSMC claims ─");
    assert_line!(claims, "attempted", "1,319");
    assert_line!(claims, "succeeded", "945");
    assert_line!(claims, "failed", "374 (28.355%)");
    assert_line!(claims, "not_ready", "154");
    assert_line!(claims, "unreachable", "220");
    assert_line!(claims, "conflict", "0");
    assert_line!(claims, "not_found", "0");

    let th = screen.panel(" Thresholds ");
    // Failures first, then undecided, then passes.
    let order: Vec<&str> = th
        .lines()
        .filter_map(|l| l.get(..4))
        .filter(|v| v.trim() != "")
        .collect();
    // The scenario's five plus the default error_rate and failure_rate.
    assert_eq!(
        order,
        ["FAIL", "FAIL", "FAIL", "....", "PASS", "PASS", "PASS"],
        "{th}"
    );
    assert_line!(screen.text(), "Thresholds", "3 PASS", "3 FAIL", "1 ....");
    assert_line!(th, "PASS", "pairing_p95 <= 2s", "1.9");
    assert_line!(th, "PASS", "pairing_p99 <= 5s", "4.2");
    assert_line!(th, "FAIL", "timeout_rate <= 1%");
    assert_line!(th, "2.524% (48/1902)");
    assert_line!(th, "FAIL", "claim_failure_rate <= 25%");
    assert_line!(th, "28.355% (374/1319)");
    assert_line!(th, "....", "matched >= 4000", "1798");
    assert_eq!(screen.fg_at("FAIL timeout_rate"), Color::LightRed);
    assert_eq!(screen.fg_at("PASS pairing_p95"), Color::Green);

    let chart = screen.panel("Pairing latency over time (log scale)");
    assert_line!(chart, "10s");
    assert_line!(chart, "1s");
    assert_line!(chart, "100ms");
    assert_line!(chart, "0:00", "0:25", "0:51");
    assert!(
        chart
            .chars()
            .any(|c| ('\u{2801}'..='\u{28ff}').contains(&c)),
        "no braille line in\n{chart}"
    );
    let (x, y) = screen.find("Pairing latency over time").unwrap_or_default();
    let title = &screen.rows[y][x..];
    let title: String = title.iter().collect();
    for name in ["max", "p99", "p90", "p50", "▀ fault"] {
        assert!(title.contains(name), "legend lacks {name}: {title}");
    }

    let claims_chart = screen.panel("DSMC claims and timeouts /s");
    assert!(
        claims_chart.contains('▀'),
        "no fault bar in\n{claims_chart}"
    );
    let (x, y) = screen.find("DSMC claims and timeouts").unwrap_or_default();
    let title: String = screen.rows[y][x..].iter().collect();
    for name in [
        "not_ready",
        "unreachable",
        "timed out",
        "attempted",
        "▀ fault",
    ] {
        assert!(title.contains(name), "legend lacks {name}: {title}");
    }
    // Reasons that never happened are neither drawn nor named.
    for name in ["conflict", "not_found"] {
        assert!(!title.contains(name), "legend names {name}: {title}");
    }

    let throughput = screen.panel("Throughput /s");
    assert_line!(throughput, "50.0/s");
    assert_line!(throughput, "0:00", "0:25", "0:51");
    let (x, y) = screen.find("Throughput").unwrap_or_default();
    let title: String = screen.rows[y][x..].iter().collect();
    for name in ["matched", "arrivals", "target", "▀ fault"] {
        assert!(title.contains(name), "legend lacks {name}: {title}");
    }
    assert_line!(screen.text(), "matched 28.0/s now, peak 41.0/s");

    let errors = screen.panel("Errors by endpoint and kind");
    assert_line!(errors, "endpoint", "kind", "count", "share");
    assert_line!(errors, "matchmaking", "timeout", "48", "76.2%");
    assert_line!(errors, "lobby", "no_found", "12", "19.0%");
    assert_line!(errors, "release_server", "http_503", "3", "4.8%");
    assert_line!(screen.text(), "Errors by endpoint and kind", "63 total");
    assert!(!errors.contains("transport"), "zero counts are left out");

    let footer = screen.text();
    assert_line!(footer, "q stop", "p pause", "+/- rate", "? help");
    assert!(!footer.contains("SATURATED"));
}

#[test]
fn claim_failures_and_timeouts_fall_after_the_fault() {
    let mut ui = UiState::new();
    let during = run_until(&mut ui, 60_000);
    let vm = ViewModel::new(&header(), &during, &ui);
    let failed_now = |vm: &ViewModel, kind: LineKind| {
        vm.claims_chart
            .lines
            .iter()
            .find(|l| l.kind == kind)
            .and_then(|l| l.points.last())
            .map_or(0.0, |p| p.1)
    };
    assert_eq!(failed_now(&vm, LineKind::Unreachable), 10.0);
    assert!(failed_now(&vm, LineKind::TimedOut) > 0.0);

    let after = run_until(&mut ui, 110_000);
    let vm = ViewModel::new(&header(), &after, &ui);
    assert_eq!(failed_now(&vm, LineKind::Unreachable), 0.0);
    assert_eq!(failed_now(&vm, LineKind::TimedOut), 0.0);
    assert_eq!(vm.fault_now, None);
    // The fault's span stays on the charts, where it was.
    assert_eq!(vm.claims_chart.faults.len(), 1);
    let [(from, _), (to, _)] = vm.claims_chart.faults[0];
    assert!(
        (from - 30.0).abs() < 0.5 && (to - 90.0).abs() < 0.5,
        "{from}..{to}"
    );

    let screen = render(&vm, 160, 50);
    assert_line!(screen.panel("matchbench sim"), "fault: none");
    assert!(screen.panel("DSMC claims and timeouts").contains('▀'));
}

#[test]
fn saturation_raises_a_red_banner() {
    let mut ui = UiState::new();
    let mut snap = run_until(&mut ui, 20_000);
    snap.saturated = true;
    snap.max_lag_ms = 312.0;
    snap.actual_rate = 22.0;
    let vm = ViewModel::new(&header(), &snap, &ui);
    for (w, h) in [(160, 50), (80, 24)] {
        let screen = render(&vm, w, h);
        let text = screen.text();
        assert_line!(text, "SATURATED: players start up to 312ms late");
        // Two lines at 80 columns rather than a cut sentence.
        assert!(text.contains("offered load is not met"), "{text}");
        assert_eq!(screen.bg_at("SATURATED"), Color::Red);
        assert_line!(screen.panel(" Players "), "arrivals/s", "22.0/s of 40.0/s");
        assert_eq!(screen.fg_at("22.0/s of 40.0/s"), Color::LightRed);
    }
}

#[test]
fn keys_open_help_pause_and_change_the_rate() {
    let h = header();
    let mut ui = UiState::new();
    let snap = run_until(&mut ui, 10_000);

    assert_eq!(ui.on_key(Key::Help, &snap, &h), None);
    let screen = render(&ViewModel::new(&h, &snap, &ui), 160, 50);
    let help = screen.panel(" Help ");
    assert_line!(help, "q, Ctrl-C", "stop: end arrivals");
    assert_line!(help, "p", "pause / resume arrivals");
    assert_line!(help, "+ / -", "arrival rate up / down by 10%");
    assert_line!(help, "?, Esc", "show / hide this help");
    assert_line!(help, "SATURATED", "players start late");
    assert_eq!(ui.on_key(Key::Close, &snap, &h), None);
    assert!(
        render(&ViewModel::new(&h, &snap, &ui), 160, 50)
            .find(" Help ")
            .is_none()
    );

    assert_eq!(ui.on_key(Key::Pause, &snap, &h), Some(EngineCommand::Pause));
    let paused = MetricsSnapshot {
        phase: Phase::Paused,
        target_rate: 0.0,
        ..snap.clone()
    };
    ui.observe(&paused);
    let screen = render(&ViewModel::new(&h, &paused, &ui), 160, 50);
    assert_line!(screen.panel("matchbench sim"), "PAUSED");
    assert_line!(screen.text(), "p resume", "paused: arrivals held");

    assert_eq!(
        ui.on_key(Key::Faster, &paused, &h),
        Some(EngineCommand::SetRate(44.0))
    );
    assert_eq!(
        ui.on_key(Key::Faster, &paused, &h),
        Some(EngineCommand::SetRate(48.4))
    );
    assert_eq!(
        ui.on_key(Key::Slower, &paused, &h),
        Some(EngineCommand::SetRate(43.6))
    );
    let screen = render(&ViewModel::new(&h, &paused, &ui), 160, 50);
    assert_line!(screen.text(), "arrival rate set to 43.6/s");
    assert_line!(screen.panel("matchbench sim"), "(set to 43.6/s)");
    for _ in 0..NOTICE_FRAMES {
        ui.frame();
    }
    let screen = render(&ViewModel::new(&h, &paused, &ui), 160, 50);
    assert!(
        !screen.text().contains("arrival rate set to"),
        "notices expire"
    );

    assert_eq!(ui.on_key(Key::Quit, &paused, &h), Some(EngineCommand::Stop));
    let draining = MetricsSnapshot {
        phase: Phase::Draining,
        ..snap
    };
    let screen = render(&ViewModel::new(&h, &draining, &ui), 160, 50);
    assert_line!(screen.panel("matchbench sim"), "DRAINING (stopping)");
    assert_line!(
        screen.text(),
        "stopping: arrivals ended, draining players in flight (up to 15s)"
    );
}

#[test]
fn before_the_first_second_the_charts_wait() {
    let snap = MetricsSnapshot {
        phase: Phase::Preparing,
        ..MetricsSnapshot::default()
    };
    let ui = UiState::new();
    let screen = render(&ViewModel::new(&header(), &snap, &ui), 160, 50);
    assert_line!(
        screen.panel("matchbench sim"),
        "PREPARING",
        "0:00 / 2:00 (0%)"
    );
    assert_line!(
        screen.panel("Pairing latency over time"),
        "waiting for the first second"
    );
    assert_line!(screen.panel(" Pairing latency ─"), "p50", "-", "-");
    assert_line!(screen.panel(" Thresholds "), "none set");
    assert_line!(screen.panel("Errors by endpoint and kind"), "no errors");
}

#[test]
fn small_terminals_keep_the_essentials() {
    let mut ui = UiState::new();
    let snap = run_until(&mut ui, 52_000);
    let vm = ViewModel::new(&header(), &snap, &ui);

    let screen = render(&vm, 80, 24);
    let head = screen.panel("matchbench sim");
    assert_line!(
        head,
        "dsmc-brownout",
        "RUNNING",
        "0:52 / 2:00",
        "fault: claim-brownout"
    );
    assert_line!(screen.panel(" Pairing latency ─"), "max", "9.40s");
    assert_line!(screen.panel(" Players "), "matched", "1,798");
    assert_line!(screen.panel(" Pairing latency ─"), "p99", "4.20s");
    assert!(
        screen
            .panel("Pairing latency over time")
            .chars()
            .any(|c| ('\u{2801}'..='\u{28ff}').contains(&c))
    );
    assert!(screen.panel("DSMC claims and timeouts").contains('▀'));
    assert_line!(screen.text(), "thresholds", "3 PASS", "3 FAIL", "1 ....");
    assert_line!(
        screen.text(),
        "q stop",
        "120x40 or larger shows every panel"
    );

    let tiny = render(&vm, 50, 12);
    assert_line!(tiny.text(), "terminal too small for the dashboard");
    assert_line!(tiny.text(), "q stops the run");

    // No size makes drawing panic, with or without the help overlay.
    let mut with_help = vm.clone();
    with_help.help = true;
    for vm in [&vm, &with_help] {
        for w in (1..=200).step_by(13) {
            for h in (1..=60).step_by(7) {
                render(vm, w, h);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The real binary under a pseudo-terminal.

/// A private tmux server (its own socket), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("run tmux")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "dash"]).stdout)
            .into_owned()
    }

    fn keys(&self, keys: &str) {
        let out = self.cmd(&["send-keys", "-t", "dash", keys]);
        assert!(out.status.success(), "send-keys {keys}: {out:?}");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // The server leaves its socket file behind: find it first, remove it after.
        let socket = self.cmd(&["display-message", "-p", "#{socket_path}"]);
        let socket = String::from_utf8_lossy(&socket.stdout).trim().to_owned();
        let _ = self.cmd(&["kill-server"]);
        if !socket.is_empty() {
            let _ = std::fs::remove_file(socket);
        }
    }
}

fn tmux_installed() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Polls `check` until it answers or `within` passes.
fn eventually<T>(within: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

fn scratch_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!("sim-dashboard-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn the_real_binary_shows_the_dashboard_and_q_writes_the_reports() {
    if !tmux_installed() {
        eprintln!(
            "SKIPPED the_real_binary_shows_the_dashboard: tmux is not installed (apt-get install tmux)"
        );
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root");
    let scenario = root.join("scenarios/smoke.toml");
    assert!(scenario.is_file(), "{} is missing", scenario.display());
    let dir = scratch_dir();
    let (report, junit, exit) = (
        dir.join("report.json"),
        dir.join("junit.xml"),
        dir.join("exit"),
    );
    // Long enough that `q`, not the schedule, ends the run; the exit code goes to a file and
    // the pane stays open so the restored screen can be read.
    let script = format!(
        "unset SIM_HEADLESS SIM_REPORT SIM_JUNIT SIM_HTML; cd {root} && {bin} run {scenario} --duration 5m --report {report} --junit {junit}; echo $? > {exit}; sleep 600",
        root = quote(root),
        bin = quote(Path::new(env!("CARGO_BIN_EXE_sim"))),
        scenario = quote(&scenario),
        report = quote(&report),
        junit = quote(&junit),
        exit = quote(&exit),
    );
    let tmux = Tmux {
        socket: format!("sim-dashboard-{}", std::process::id()),
    };
    let started = tmux.cmd(&[
        "new-session",
        "-d",
        "-x",
        "160",
        "-y",
        "50",
        "-s",
        "dash",
        &script,
    ]);
    assert!(started.status.success(), "tmux new-session: {started:?}");

    let exit_code = || {
        std::fs::read_to_string(&exit)
            .ok()
            .map(|s| s.trim().to_owned())
    };
    let panels = [
        "matchbench sim",
        " Players ",
        " Pairing latency ─",
        "Pairing latency over time",
        " DSMC claims ─",
        "DSMC claims and timeouts /s",
        "Throughput",
        "Errors by endpoint and kind",
        " Thresholds ",
        "q stop",
    ];
    let shown = eventually(Duration::from_secs(120), || {
        if let Some(code) = exit_code() {
            panic!(
                "sim exited ({code}) before the dashboard ran:\n{}",
                tmux.screen()
            );
        }
        let screen = tmux.screen();
        (screen.contains("RUNNING") && panels.iter().all(|p| screen.contains(p))).then_some(screen)
    });
    let Some(screen) = shown else {
        panic!("the dashboard never showed every panel:\n{}", tmux.screen());
    };
    assert!(
        screen.contains("scenario smoke") || screen.contains("scenario "),
        "{screen}"
    );

    // Keys reach the engine: pause shows in the header, help opens and closes.
    tmux.keys("p");
    let paused = eventually(Duration::from_secs(10), || {
        tmux.screen().contains("PAUSED").then_some(())
    });
    assert!(paused.is_some(), "p did not pause:\n{}", tmux.screen());
    tmux.keys("p");
    let resumed = eventually(Duration::from_secs(10), || {
        let s = tmux.screen();
        (s.contains("RUNNING") && !s.contains("PAUSED")).then_some(())
    });
    assert!(resumed.is_some(), "p did not resume:\n{}", tmux.screen());
    tmux.keys("?");
    let help = eventually(Duration::from_secs(5), || {
        tmux.screen().contains(" Help ").then_some(())
    });
    assert!(
        help.is_some(),
        "? did not open the help:\n{}",
        tmux.screen()
    );
    tmux.keys("Escape");

    tmux.keys("q");
    let code = eventually(Duration::from_secs(120), exit_code);
    let Some(code) = code else {
        panic!("q did not end the run:\n{}", tmux.screen());
    };
    let after = tmux.screen();
    assert!(code == "0" || code == "1", "exit code {code}:\n{after}");
    // The terminal is back: normal screen, the summary printed on it.
    let alternate = tmux.cmd(&["display-message", "-p", "-t", "dash", "#{alternate_on}"]);
    assert_eq!(
        String::from_utf8_lossy(&alternate.stdout).trim(),
        "0",
        "{after}"
    );
    assert!(!after.contains("Pairing latency over time"), "{after}");
    assert!(
        after.contains("pairing"),
        "no summary on the restored screen:\n{after}"
    );

    let json = std::fs::read_to_string(&report).expect("report written");
    let report: serde_json::Value = serde_json::from_str(&json).expect("report is JSON");
    let elapsed = report["elapsed_ms"].as_u64().expect("elapsed_ms");
    assert!(
        elapsed < 300_000,
        "q ended the run early, not the schedule: {elapsed}ms"
    );
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert!(xml.contains("<testsuite"), "{xml}");
    drop(tmux);
    let _ = std::fs::remove_dir_all(&dir);
}
