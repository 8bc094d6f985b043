//! Rendering: [`draw`] paints one frame from a [`ViewModel`] and nothing else.
//!
//! Pure and synchronous, so tests render known view models into ratatui's `TestBackend` and
//! read the text back. Two layouts: the full one (120x40 and larger) with every panel, and a
//! compact one for smaller terminals (down to [`MIN_WIDTH`]x[`MIN_HEIGHT`]) that keeps the
//! header, players, pairing latency, thresholds and the latency and claims charts. Below that
//! a one-paragraph notice says how big the terminal needs to be.
//!
//! Owns colours and layout; must not know where snapshots come from or what keys do.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Cell, Chart, Clear, Dataset, GraphType, List, ListItem, Paragraph, Row,
    Table, Wrap,
};

use super::state::{ChartLine, ChartModel, LineKind, Stat, Tone, ViewModel};

/// Smallest terminal the dashboard draws in.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;
/// From this size on, every panel is shown.
pub const FULL_WIDTH: u16 = 120;
pub const FULL_HEIGHT: u16 = 40;

const LEFT_FULL: u16 = 40;
const LEFT_COMPACT: u16 = 32;

/// Paints the whole dashboard.
pub fn draw(frame: &mut Frame<'_>, vm: &ViewModel) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(frame, area, vm);
        return;
    }
    let compact = area.width < FULL_WIDTH || area.height < FULL_HEIGHT;
    // The banner wraps onto a second line in narrow terminals rather than lose its point.
    let banner = vm.saturation.as_ref().map_or(0, |text| {
        if text.chars().count() + 1 > usize::from(area.width) {
            2
        } else {
            1
        }
    });
    let [header, banner_area, body, footer] = Layout::vertical([
        Constraint::Length(if compact { 3 } else { 4 }),
        Constraint::Length(banner),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(frame, header, vm, compact);
    if let Some(text) = &vm.saturation {
        let style = Style::new()
            .fg(Color::White)
            .bg(Color::Red)
            .add_modifier(Modifier::BOLD);
        let banner = Paragraph::new(format!(" {text}"))
            .style(style)
            .wrap(Wrap { trim: false });
        frame.render_widget(banner, banner_area);
    }
    if compact {
        draw_compact(frame, body, vm);
    } else {
        draw_full(frame, body, vm);
    }
    draw_footer(frame, footer, vm, compact);
    if vm.help {
        draw_help(frame, area);
    }
}

fn draw_full(frame: &mut Frame<'_>, body: Rect, vm: &ViewModel) {
    let [left, right] =
        Layout::horizontal([Constraint::Length(LEFT_FULL), Constraint::Min(0)]).areas(body);
    let [players, latency, claims, thresholds] = Layout::vertical([
        Constraint::Length(vm.players.len() as u16 + 2),
        Constraint::Length(8),
        Constraint::Length(vm.claims.len() as u16 + 2),
        Constraint::Min(0),
    ])
    .areas(left);
    draw_stats(frame, players, " Players ", &vm.players);
    draw_latency(frame, latency, vm);
    draw_stats(frame, claims, " DSMC claims ", &vm.claims);
    draw_thresholds(frame, thresholds, vm);

    let [latency_chart, claims_chart, bottom] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Fill(1),
        Constraint::Length(12),
    ])
    .areas(right);
    draw_chart(
        frame,
        latency_chart,
        latency_title(vm, false),
        &vm.latency_chart,
    );
    draw_chart(
        frame,
        claims_chart,
        claims_title(vm, false),
        &vm.claims_chart,
    );
    let [throughput, errors] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(bottom);
    let summary = Line::from(Span::styled(
        format!(" {} ", vm.throughput_summary),
        Style::new().fg(Color::Gray),
    ))
    .alignment(Alignment::Right);
    draw_chart_in(
        frame,
        throughput,
        block(chart_title("Throughput /s", &vm.throughput_chart, false)).title_bottom(summary),
        &vm.throughput_chart,
    );
    draw_errors(frame, errors, vm);
}

fn draw_compact(frame: &mut Frame<'_>, body: Rect, vm: &ViewModel) {
    let [left, right] =
        Layout::horizontal([Constraint::Length(LEFT_COMPACT), Constraint::Min(0)]).areas(body);
    let [players, latency, thresholds] = Layout::vertical([
        Constraint::Length(vm.players.len() as u16 + 2),
        Constraint::Length(7),
        Constraint::Min(0),
    ])
    .areas(left);
    draw_stats(frame, players, " Players ", &vm.players);
    draw_latency(frame, latency, vm);
    draw_thresholds(frame, thresholds, vm);
    let [latency_chart, claims_chart] =
        Layout::vertical([Constraint::Fill(1), Constraint::Fill(1)]).areas(right);
    draw_chart(
        frame,
        latency_chart,
        latency_title(vm, true),
        &vm.latency_chart,
    );
    draw_chart(
        frame,
        claims_chart,
        claims_title(vm, true),
        &vm.claims_chart,
    );
}

fn tone(t: Tone) -> Style {
    match t {
        Tone::Normal => Style::new(),
        Tone::Good => Style::new().fg(Color::Green),
        Tone::Warn => Style::new().fg(Color::Yellow),
        Tone::Bad => Style::new()
            .fg(Color::LightRed)
            .add_modifier(Modifier::BOLD),
        Tone::Dim => Style::new().fg(Color::DarkGray),
    }
}

fn color(kind: LineKind) -> Color {
    match kind {
        LineKind::P50 | LineKind::Matched => Color::Green,
        LineKind::P90 | LineKind::Arrivals => Color::Cyan,
        LineKind::P99 | LineKind::NotReady => Color::Yellow,
        LineKind::Max | LineKind::Unreachable => Color::LightRed,
        LineKind::Target | LineKind::Attempted => Color::Gray,
        LineKind::Conflict => Color::Magenta,
        LineKind::NotFound => Color::LightBlue,
        LineKind::TimedOut => Color::LightCyan,
    }
}

const FAULT: Color = Color::Red;

fn block(title: Line<'_>) -> Block<'_> {
    Block::new()
        .borders(Borders::ALL)
        .border_style(Style::new().fg(Color::DarkGray))
        .title(title)
}

fn title(text: &str) -> Line<'_> {
    Line::from(Span::styled(
        text,
        Style::new().add_modifier(Modifier::BOLD),
    ))
}

fn draw_header(frame: &mut Frame<'_>, area: Rect, vm: &ViewModel, compact: bool) {
    let sep = || Span::styled("  │  ", Style::new().fg(Color::DarkGray));
    let phase = Span::styled(
        vm.phase.text.clone(),
        tone(vm.phase.tone).add_modifier(Modifier::BOLD),
    );
    let clock = Span::raw(format!(
        "{} ({:.0}%)",
        vm.clock,
        (vm.progress * 100.0).floor()
    ));
    let active = if compact {
        &vm.faults_active
    } else {
        &vm.fault_now
    };
    let fault = match active {
        Some(f) => Span::styled(
            format!("fault: {f}"),
            Style::new().fg(FAULT).add_modifier(Modifier::BOLD),
        ),
        None => Span::styled("fault: none", Style::new().fg(Color::DarkGray)),
    };
    let scenario = Span::styled(
        vm.scenario.clone(),
        Style::new().add_modifier(Modifier::BOLD),
    );
    let lines = if compact {
        vec![Line::from(vec![
            scenario,
            sep(),
            phase,
            sep(),
            clock,
            sep(),
            fault,
            sep(),
            Span::raw(format!("seed {}", vm.seed)),
            sep(),
            Span::raw(vm.target.clone()),
        ])]
    } else {
        vec![
            Line::from(vec![
                Span::raw("scenario "),
                scenario,
                sep(),
                phase,
                sep(),
                Span::raw("elapsed "),
                clock,
                sep(),
                Span::raw(format!("seed {}", vm.seed)),
                sep(),
                Span::raw(format!("target {}", vm.target)),
            ]),
            Line::from(vec![
                Span::raw(format!("arrivals {}", vm.arrival)),
                sep(),
                fault,
            ]),
        ]
    };
    frame.render_widget(
        Paragraph::new(lines).block(block(title(" matchbench sim "))),
        area,
    );
}

fn stat_lines(stats: &[Stat], width: u16) -> Vec<Line<'_>> {
    let width = usize::from(width);
    stats
        .iter()
        .map(|s| {
            let pad = width.saturating_sub(s.label.len() + s.value.chars().count() + 1);
            Line::from(vec![
                Span::raw(format!("{} ", s.label)),
                Span::raw(" ".repeat(pad)),
                Span::styled(s.value.clone(), tone(s.tone)),
            ])
        })
        .collect()
}

fn draw_stats(frame: &mut Frame<'_>, area: Rect, name: &str, stats: &[Stat]) {
    if area.height < 3 {
        return;
    }
    let b = block(title(name));
    let inner = b.inner(area);
    frame.render_widget(
        Paragraph::new(stat_lines(stats, inner.width)).block(b),
        area,
    );
}

fn draw_latency(frame: &mut Frame<'_>, area: Rect, vm: &ViewModel) {
    if area.height < 3 {
        return;
    }
    let dim = Style::new().fg(Color::DarkGray);
    let rows = vm.latency.iter().map(|(label, now, run)| {
        Row::new(vec![
            Cell::from(*label),
            Cell::from(Line::from(now.as_str()).alignment(Alignment::Right)),
            Cell::from(Line::from(run.as_str()).alignment(Alignment::Right)),
        ])
    });
    let header = Row::new(vec![
        Cell::from(""),
        Cell::from(Line::from("last 1s").alignment(Alignment::Right)),
        Cell::from(Line::from("whole run").alignment(Alignment::Right)),
    ])
    .style(dim);
    let (now, all) = vm.latency_counts;
    let counts = Row::new(vec![
        Cell::from("n"),
        Cell::from(Line::from(super::state::count(now)).alignment(Alignment::Right)),
        Cell::from(Line::from(super::state::count(all)).alignment(Alignment::Right)),
    ])
    .style(dim);
    let table = Table::new(
        rows,
        [
            Constraint::Length(4),
            Constraint::Fill(1),
            Constraint::Fill(1),
        ],
    )
    .header(header)
    .block(block(title(" Pairing latency ")));
    // The counts row only when there is room for it below the four percentiles.
    let table = if area.height >= 8 {
        table.footer(counts)
    } else {
        table
    };
    frame.render_widget(table, area);
}

fn draw_thresholds(frame: &mut Frame<'_>, area: Rect, vm: &ViewModel) {
    if area.height == 0 {
        return;
    }
    if area.height < 3 {
        // No room for a list: one summary line.
        let mut line = title(" thresholds ");
        line.spans.extend(threshold_counts(vm));
        frame.render_widget(Paragraph::new(line), area);
        return;
    }
    let mut heading = title(" Thresholds ");
    if !vm.thresholds.is_empty() {
        heading.spans.extend(threshold_counts(vm));
        heading.spans.push(Span::raw(" "));
    }
    let b = block(heading);
    if vm.thresholds.is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled("none set", tone(Tone::Dim))).block(b),
            area,
        );
        return;
    }
    let width = usize::from(b.inner(area).width);
    let items: Vec<ListItem<'_>> = vm
        .thresholds
        .iter()
        .map(|t| {
            let verdict = Span::styled(t.verdict, tone(t.tone).add_modifier(Modifier::BOLD));
            let condition = Span::raw(format!(" {}", t.condition));
            let one_line = t.verdict.len() + 1 + t.condition.len() + 2 + t.actual.chars().count();
            if one_line <= width {
                ListItem::new(Line::from(vec![
                    verdict,
                    condition,
                    Span::styled(format!("  {}", t.actual), tone(Tone::Dim)),
                ]))
            } else {
                // Too wide for one line: the measured value goes under the condition.
                ListItem::new(vec![
                    Line::from(vec![verdict, condition]),
                    Line::from(Span::styled(format!("     {}", t.actual), tone(Tone::Dim))),
                ])
            }
        })
        .collect();
    frame.render_widget(List::new(items).block(b), area);
}

/// `3 PASS 1 FAIL 1 ....`, for a title or a summary line.
fn threshold_counts(vm: &ViewModel) -> Vec<Span<'static>> {
    let count = |v: &str| vm.thresholds.iter().filter(|t| t.verdict == v).count();
    let (pass, fail, pending) = (count("PASS"), count("FAIL"), count("...."));
    let mut spans = vec![
        Span::styled(format!("{pass} PASS "), tone(Tone::Good)),
        Span::styled(
            format!("{fail} FAIL"),
            if fail > 0 {
                tone(Tone::Bad)
            } else {
                tone(Tone::Dim)
            },
        ),
    ];
    if pending > 0 {
        spans.push(Span::styled(format!(" {pending} ...."), tone(Tone::Dim)));
    }
    spans
}

fn legend(lines: &[(&str, Color)]) -> Vec<Span<'static>> {
    let mut spans = Vec::new();
    for (name, c) in lines {
        spans.push(Span::styled(format!("━ {name} "), Style::new().fg(*c)));
    }
    spans
}

fn chart_title(name: &str, model: &ChartModel, compact: bool) -> Line<'static> {
    let mut spans = vec![Span::styled(
        format!(" {name}  "),
        Style::new().add_modifier(Modifier::BOLD),
    )];
    let names: Vec<(&str, Color)> = model
        .lines
        .iter()
        .filter(|l| drawn(model, l))
        .map(|l| (l.name, color(l.kind)))
        .collect();
    if !compact {
        spans.extend(legend(&names));
        if !model.faults.is_empty() {
            spans.push(Span::styled("▀ fault ", Style::new().fg(FAULT)));
        }
    }
    Line::from(spans)
}

/// Whether a line is drawn (and named in the legend). A rate that is zero throughout would
/// only hide the axis and the lines below it; on a log scale the bottom is 1ms, a real value.
fn drawn(model: &ChartModel, line: &ChartLine) -> bool {
    model.log_scale || line.points.iter().any(|p| p.1 != 0.0)
}

fn latency_title(vm: &ViewModel, compact: bool) -> Line<'static> {
    chart_title(
        "Pairing latency over time (log scale)",
        &vm.latency_chart,
        compact,
    )
}

fn claims_title(vm: &ViewModel, compact: bool) -> Line<'static> {
    chart_title("DSMC claims and timeouts /s", &vm.claims_chart, compact)
}

fn draw_chart(frame: &mut Frame<'_>, area: Rect, name: Line<'static>, model: &ChartModel) {
    draw_chart_in(frame, area, block(name), model);
}

fn draw_chart_in(frame: &mut Frame<'_>, area: Rect, b: Block<'_>, model: &ChartModel) {
    if area.height < 3 {
        return;
    }
    if model.is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled(
                "waiting for the first second…",
                tone(Tone::Dim),
            ))
            .block(b),
            area,
        );
        return;
    }
    let mut datasets = Vec::new();
    // The first line of the legend is drawn last, on top.
    for line in model.lines.iter().rev() {
        if !drawn(model, line) {
            continue;
        }
        datasets.push(
            Dataset::default()
                .data(&line.points)
                .graph_type(GraphType::Line)
                .marker(Marker::Braille)
                .style(Style::new().fg(color(line.kind))),
        );
    }
    // Fault bars over everything: when a fault was active must stay visible.
    for bar in &model.faults {
        datasets.push(
            Dataset::default()
                .data(bar)
                .graph_type(GraphType::Line)
                .marker(Marker::HalfBlock)
                .style(Style::new().fg(FAULT)),
        );
    }
    let axis = Style::new().fg(Color::DarkGray);
    let chart = Chart::new(datasets)
        .block(b)
        .legend_position(None)
        .x_axis(
            Axis::default()
                .bounds(model.x)
                .labels(model.x_labels.iter().map(String::as_str))
                .style(axis),
        )
        .y_axis(
            Axis::default()
                .bounds(model.y)
                .labels(model.y_labels.iter().map(String::as_str))
                .style(axis),
        );
    frame.render_widget(chart, area);
}

fn draw_errors(frame: &mut Frame<'_>, area: Rect, vm: &ViewModel) {
    let b = block(title(" Errors by endpoint and kind ")).title_top(
        Line::from(Span::styled(
            format!(" {} total ", super::state::count(vm.errors_total)),
            if vm.errors_total > 0 {
                tone(Tone::Warn)
            } else {
                tone(Tone::Dim)
            },
        ))
        .alignment(Alignment::Right),
    );
    if vm.errors.is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled("no errors", tone(Tone::Good))).block(b),
            area,
        );
        return;
    }
    let rows = vm.errors.iter().map(|e| {
        Row::new(vec![
            Cell::from(e.endpoint.as_str()),
            Cell::from(e.kind.as_str()),
            Cell::from(Line::from(e.count.as_str()).alignment(Alignment::Right)),
            Cell::from(Line::from(e.share.as_str()).alignment(Alignment::Right)),
        ])
    });
    let header = Row::new(vec![
        Cell::from("endpoint"),
        Cell::from("kind"),
        Cell::from(Line::from("count").alignment(Alignment::Right)),
        Cell::from(Line::from("share").alignment(Alignment::Right)),
    ])
    .style(Style::new().fg(Color::DarkGray));
    let table = Table::new(
        rows,
        [
            Constraint::Fill(3),
            Constraint::Fill(2),
            Constraint::Length(8),
            Constraint::Length(6),
        ],
    )
    .header(header)
    .block(b);
    frame.render_widget(table, area);
}

fn draw_footer(frame: &mut Frame<'_>, area: Rect, vm: &ViewModel, compact: bool) {
    let key = |k: &'static str| Span::styled(k, Style::new().add_modifier(Modifier::BOLD));
    let dim = Style::new().fg(Color::DarkGray);
    let mut spans = vec![
        Span::raw(" "),
        key("q"),
        Span::styled(" stop  ", dim),
        key("p"),
        Span::styled(if vm.paused { " resume  " } else { " pause  " }, dim),
    ];
    if vm.open_model {
        spans.push(key("+/-"));
        spans.push(Span::styled(" rate  ", dim));
    }
    spans.push(key("?"));
    spans.push(Span::styled(" help", dim));
    if let Some(notice) = &vm.notice {
        spans.push(Span::styled("  │  ", dim));
        spans.push(Span::styled(notice.clone(), tone(Tone::Warn)));
    } else if compact {
        spans.push(Span::styled(
            format!("  │  {FULL_WIDTH}x{FULL_HEIGHT} or larger shows every panel"),
            dim,
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The help overlay's text.
pub const HELP: &[(&str, &str)] = &[
    (
        "q, Ctrl-C",
        "stop: end arrivals, let players in flight finish, write the reports",
    ),
    ("p", "pause / resume arrivals (players in flight carry on)"),
    ("+ / -", "arrival rate up / down by 10% (open models)"),
    ("?, Esc", "show / hide this help"),
    ("Ctrl-L", "repaint the screen"),
    ("", ""),
    (
        "latency",
        "scheduled arrival to match found: last second and whole run",
    ),
    (
        "claims",
        "DSMC claims per second by failure reason, and timeouts",
    ),
    ("▀ fault", "the red bar atop a chart: a fault was active"),
    ("....", "a threshold that cannot be decided yet"),
    (
        "SATURATED",
        "players start late: the generator, not the system, is the limit",
    ),
];

fn draw_help(frame: &mut Frame<'_>, area: Rect) {
    let width = 84.min(area.width.saturating_sub(2));
    let height = (HELP.len() as u16 + 2).min(area.height.saturating_sub(2));
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let lines: Vec<Line<'_>> = HELP
        .iter()
        .map(|(k, what)| {
            if k.is_empty() {
                // A blank line; padded with spaces the wrapper would make it two.
                return Line::default();
            }
            Line::from(vec![
                Span::styled(
                    format!(" {k:<10} "),
                    Style::new().add_modifier(Modifier::BOLD),
                ),
                Span::raw(*what),
            ])
        })
        .collect();
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::new()
                .borders(Borders::ALL)
                .border_style(Style::new().fg(Color::Yellow))
                .title(title(" Help ")),
        ),
        popup,
    );
}

fn too_small(frame: &mut Frame<'_>, area: Rect, vm: &ViewModel) {
    let text = vec![
        Line::from(format!("{}  {}  {}", vm.scenario, vm.phase.text, vm.clock)),
        Line::from(format!(
            "terminal too small for the dashboard: {MIN_WIDTH}x{MIN_HEIGHT} at least"
        )),
        Line::from("q stops the run"),
    ];
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
}
