//! A self-contained HTML page: the summary, thresholds, invariants, and inline SVG plots of
//! pairing latency percentiles, throughput and claim failures over time. No script, no external
//! asset, so it can be attached to a CI run and opened anywhere.

use std::fmt::Write as _;

use super::RunReport;
use super::junit::escape;
use super::summary;

const WIDTH: f64 = 860.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 36.0;

/// One line of a chart.
struct Line<'a> {
    name: &'a str,
    color: &'a str,
    points: Vec<(f64, f64)>,
}

/// The page.
pub fn render(report: &RunReport) -> String {
    let mut h = String::new();
    let title = format!("sim: {}", report.scenario.name);
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>\
body{{font-family:system-ui,sans-serif;margin:24px;color:#222}}\
h1 .pass{{color:#1a7f37}} h1 .fail{{color:#cf222e}}\
table{{border-collapse:collapse;margin:8px 0 16px}} td,th{{border:1px solid #ddd;padding:4px 8px;text-align:right}}\
th{{background:#f6f8fa}} td:first-child,th:first-child{{text-align:left}}\
pre{{background:#f6f8fa;padding:12px;overflow:auto}} svg{{display:block;margin:8px 0 20px}}\
</style></head><body>\n",
        escape(&title)
    );
    let verdict = if report.passed {
        "<span class=\"pass\">PASS</span>"
    } else {
        "<span class=\"fail\">FAIL</span>"
    };
    let _ = writeln!(h, "<h1>{} — {verdict}</h1>", escape(&title));
    let v = &report.verdict;
    if !v.headline.is_empty() {
        let (class, note) = if v.trustworthy {
            ("pass", "")
        } else {
            (
                "fail",
                " The results are not trustworthy: they measure the harness, not only the system under test.",
            )
        };
        let _ = writeln!(
            h,
            "<h2>Verdict</h2><p class=\"{class}\"><strong>{}</strong>{note}</p>",
            escape(&v.headline)
        );
    }
    if let Some(d) = &report.scenario.description {
        let _ = writeln!(h, "<p>{}</p>", escape(d));
    }
    let _ = writeln!(h, "<pre>{}</pre>", escape(&summary::render(report)));

    let series = &report.series;
    let t = |i: usize| series[i].t as f64;
    let latency = [
        ("p50", "#0969da", 0),
        ("p90", "#1a7f37", 1),
        ("p99", "#bf8700", 2),
        ("max", "#cf222e", 3),
    ]
    .into_iter()
    .map(|(name, color, which)| Line {
        name,
        color,
        points: (0..series.len())
            .filter(|&i| series[i].latency.count > 0)
            .map(|i| {
                let l = &series[i].latency;
                let v = [l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms][which];
                (t(i), v)
            })
            .collect(),
    })
    .collect::<Vec<_>>();
    h.push_str(&chart(
        "Pairing latency of players matched each second (ms)",
        &latency,
    ));

    let throughput = vec![
        Line {
            name: "target arrivals/s",
            color: "#8c959f",
            points: (0..series.len())
                .map(|i| (t(i), series[i].target_rate))
                .collect(),
        },
        Line {
            name: "arrivals/s",
            color: "#0969da",
            points: (0..series.len())
                .map(|i| (t(i), series[i].arrivals as f64))
                .collect(),
        },
        Line {
            name: "matched players/s",
            color: "#1a7f37",
            points: (0..series.len())
                .map(|i| (t(i), series[i].matched as f64))
                .collect(),
        },
        Line {
            name: "timed out/s",
            color: "#bf8700",
            points: (0..series.len())
                .map(|i| (t(i), series[i].timed_out as f64))
                .collect(),
        },
        Line {
            name: "errors/s",
            color: "#cf222e",
            points: (0..series.len())
                .map(|i| (t(i), series[i].errors as f64))
                .collect(),
        },
    ];
    h.push_str(&chart("Throughput", &throughput));

    let claims = vec![
        Line {
            name: "claims/s",
            color: "#0969da",
            points: (0..series.len())
                .map(|i| (t(i), series[i].claims.attempted as f64))
                .collect(),
        },
        Line {
            name: "claim failures/s",
            color: "#cf222e",
            points: (0..series.len())
                .map(|i| (t(i), series[i].claims.failed() as f64))
                .collect(),
        },
        Line {
            name: "failed matches/s",
            color: "#bf8700",
            points: (0..series.len())
                .map(|i| (t(i), series[i].failed as f64))
                .collect(),
        },
    ];
    h.push_str(&chart("DSMC claims", &claims));

    if !report.faults.is_empty() {
        h.push_str("<h2>Faults</h2><table><tr><th>fault</th><th>from</th><th>until</th><th>state</th></tr>\n");
        for f in &report.faults {
            let until = f
                .until_ms
                .map_or("end".to_owned(), |u| format!("{:.1}s", u as f64 / 1000.0));
            let state = f
                .error
                .clone()
                .unwrap_or_else(|| if f.applied { "applied" } else { "not applied" }.to_owned());
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{:.1}s</td><td>{}</td><td>{}</td></tr>",
                escape(&f.label),
                f.at_ms as f64 / 1000.0,
                escape(&until),
                escape(&state)
            );
        }
        h.push_str("</table>\n");
    }
    if !report.failovers.is_empty() {
        h.push_str("<h2>Matchmaker failovers</h2><table><tr><th>unreachable URL</th><th>requests moved on</th></tr>\n");
        for (url, n) in &report.failovers {
            let _ = writeln!(h, "<tr><td>{}</td><td>{n}</td></tr>", escape(url));
        }
        h.push_str("</table>\n");
    }
    if !report.processes.is_empty() {
        h.push_str("<h2>Processes</h2><table><tr><th>process</th><th>pid</th><th>peak RSS (MiB)</th><th>CPU (s)</th><th>peak CPU (% of a core)</th><th>peak open files</th><th>open-files limit</th><th>local resource errors</th></tr>\n");
        for p in &report.processes {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.2}</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&p.role),
                p.pid,
                p.peak_rss_bytes as f64 / (1024.0 * 1024.0),
                p.cpu_seconds,
                p.peak_cpu_percent,
                p.peak_open_files,
                p.open_files_limit.map_or("-".to_owned(), |l| l.to_string()),
                p.local_resource_errors
            );
        }
        h.push_str("</table>\n");
        let sampled: Vec<_> = report
            .processes
            .iter()
            .filter(|p| !p.samples.is_empty())
            .collect();
        if !sampled.is_empty() {
            let cpu: Vec<Line<'_>> = sampled
                .iter()
                .enumerate()
                .map(|(i, p)| Line {
                    name: &p.role,
                    color: PALETTE[i % PALETTE.len()],
                    points: p
                        .samples
                        .iter()
                        .map(|x| (x.at_ms as f64 / 1000.0, x.cpu_percent))
                        .collect(),
                })
                .collect();
            h.push_str(&chart("CPU per process (% of one core) over seconds", &cpu));
            let files: Vec<Line<'_>> = sampled
                .iter()
                .enumerate()
                .map(|(i, p)| Line {
                    name: &p.role,
                    color: PALETTE[i % PALETTE.len()],
                    points: p
                        .samples
                        .iter()
                        .map(|x| (x.at_ms as f64 / 1000.0, x.open_files as f64))
                        .collect(),
                })
                .collect();
            h.push_str(&chart("Open files per process over seconds", &files));
        }
    }
    if !report.invariants.violations.is_empty() {
        h.push_str("<h2>Invariant violations</h2><ul>\n");
        for v in &report.invariants.violations {
            let _ = writeln!(h, "<li>{}</li>", escape(&v.to_string()));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("</body></html>\n");
    h
}

/// Colours for one line per process.
const PALETTE: [&str; 6] = [
    "#0969da", "#1a7f37", "#bf8700", "#cf222e", "#8250df", "#57606a",
];

/// A line chart with axes, five ticks per axis and a legend.
fn chart(title: &str, lines: &[Line<'_>]) -> String {
    let mut s = String::new();
    let all = lines.iter().flat_map(|l| l.points.iter());
    let (mut x_max, mut y_max) = (1.0f64, 0.0f64);
    for &(x, y) in all {
        x_max = x_max.max(x);
        y_max = y_max.max(y);
    }
    let y_max = nice_ceiling(y_max);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let px = |x: f64| LEFT + x / x_max * plot_w;
    let py = |y: f64| TOP + plot_h - y / y_max * plot_h;
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-size=\"11\">"
    );
    let _ = writeln!(
        s,
        "<text x=\"{LEFT}\" y=\"16\" font-size=\"13\" font-weight=\"bold\">{}</text>",
        escape(title)
    );
    for i in 0..=5 {
        let y = y_max * f64::from(i) / 5.0;
        let _ = writeln!(
            s,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y1:.1}\" y2=\"{y1:.1}\" stroke=\"#eee\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            py(y) + 4.0,
            short(y),
            y1 = py(y)
        );
        let x = x_max * f64::from(i) / 5.0;
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}s</text>",
            px(x),
            HEIGHT - BOTTOM + 16.0,
            short(x)
        );
    }
    let _ = writeln!(
        s,
        "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{plot_w}\" height=\"{plot_h}\" fill=\"none\" stroke=\"#999\"/>"
    );
    let mut legend_x = LEFT;
    for line in lines {
        if line.points.is_empty() {
            continue;
        }
        let pts: Vec<String> = line
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>",
            line.color,
            pts.join(" ")
        );
        let _ = writeln!(
            s,
            "<rect x=\"{legend_x:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            HEIGHT - 14.0,
            line.color,
            legend_x + 14.0,
            HEIGHT - 5.0,
            escape(line.name)
        );
        legend_x += 24.0 + 7.0 * line.name.len() as f64;
    }
    if lines.iter().all(|l| l.points.is_empty()) {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#999\">no data</text>",
            LEFT + plot_w / 2.0,
            TOP + plot_h / 2.0
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The smallest 1, 2 or 5 × 10ⁿ at or above `v` (at least 1).
fn nice_ceiling(v: f64) -> f64 {
    if v <= 1.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    for step in [1.0, 2.0, 5.0, 10.0] {
        if step * magnitude >= v {
            return step * magnitude;
        }
    }
    10.0 * magnitude
}

fn short(v: f64) -> String {
    if v >= 1_000_000.0 {
        format!("{:.1}M", v / 1_000_000.0)
    } else if v >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_are_round() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(13.0), 20.0);
        assert_eq!(nice_ceiling(420.0), 500.0);
        assert_eq!(short(12_500.0), "12k");
    }
}
