//! The page's parts that are plain HTML (readable without the script, and what tests read):
//! the verdict header with every check's figure and limit, key figures, the matchmaking
//! funnel, the per-endpoint table, the generator's health and processes, and the scenario as
//! run.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::super::RunReport;
use super::super::junit::escape;
use super::super::summary::ms;
use super::timeline;
use crate::metrics::Percentiles;

/// Title, PASS/FAIL, verdict, fault windows in words, and the checks.
pub fn header(h: &mut String, report: &RunReport) {
    let sc = &report.scenario;
    let (class, word) = if report.passed {
        ("pass", "PASS")
    } else {
        ("fail", "FAIL")
    };
    let _ = writeln!(
        h,
        "<header id=\"verdict\" class=\"{class}\"><div class=\"badge\">{word}</div><div><h1>{}</h1>\
<p class=\"sub\">{} target · {} · seed {} · {:.1}s{}</p>",
        escape(&sc.name),
        escape(&sc.target),
        escape(&sc.arrival),
        sc.seed,
        report.elapsed_ms as f64 / 1000.0,
        if report.shards > 1 {
            format!(" · {} shards", report.shards)
        } else {
            String::new()
        }
    );
    if let Some(d) = &sc.description {
        let _ = writeln!(h, "<p class=\"desc\">{}</p>", escape(d));
    }
    let v = &report.verdict;
    if !v.headline.is_empty() {
        let trust = if v.trustworthy {
            ""
        } else {
            " — the figures are not trustworthy: they measure the harness, not only the system under test"
        };
        let _ = writeln!(
            h,
            "<p class=\"headline {}\">{}{trust}</p>",
            if v.trustworthy { "ok" } else { "warn" },
            escape(&v.headline)
        );
    }
    let applied = report.faults.iter().filter(|f| f.applied);
    for (f, event) in timeline::faults(report).into_iter().zip(applied) {
        // A chaos step says how long after it ended matching was back.
        let recovery = event
            .recovered_ms
            .map(|ms| format!("; matching again {:.1}s after it ended", ms as f64 / 1000.0))
            .unwrap_or_default();
        let _ = writeln!(
            h,
            "<p class=\"fault\"><span class=\"swatch\"></span>fault <strong>{}</strong> from {:.1}s to {:.1}s{recovery}</p>",
            escape(&f.label),
            f.from_s,
            f.to_s
        );
    }
    h.push_str("</div></header>\n");
    checks(h, report);
    key_figures(h, report);
}

/// Every threshold and the invariant check, each with its figure and its limit.
fn checks(h: &mut String, report: &RunReport) {
    h.push_str("<section id=\"checks\"><h2>Checks</h2><table><tr><th>check</th><th>measured</th><th>limit</th><th>result</th></tr>\n");
    for t in &report.thresholds {
        let limit = t
            .condition
            .strip_prefix(t.name.as_str())
            .map_or(t.condition.as_str(), str::trim);
        let result = if t.passed() {
            "<td class=\"pass\">pass</td>".to_owned()
        } else {
            format!("<td class=\"fail\">FAIL: {}</td>", escape(&t.message))
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td>{result}</tr>",
            escape(&t.name),
            escape(t.actual.as_deref().unwrap_or("not measured")),
            escape(limit)
        );
    }
    let inv = &report.invariants;
    let _ = writeln!(
        h,
        "<tr><td>invariants</td><td>{} players, {} sessions, {} violations</td><td>0 violations</td>{}</tr>",
        inv.players,
        inv.sessions,
        inv.violations.len(),
        if inv.passed() {
            "<td class=\"pass\">pass</td>"
        } else {
            "<td class=\"fail\">FAIL</td>"
        }
    );
    h.push_str("</table>\n");
    if !inv.violations.is_empty() {
        h.push_str("<details open><summary>Invariant violations</summary><ul>\n");
        for v in inv.violations.iter().take(200) {
            let _ = writeln!(h, "<li>{}</li>", escape(&v.to_string()));
        }
        h.push_str("</ul></details>\n");
    }
    h.push_str("</section>\n");
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".to_owned()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

/// The numbers a reader looks for first.
fn key_figures(h: &mut String, report: &RunReport) {
    let o = &report.outcomes;
    let finished = o.finished();
    let p = &report.pairing;
    let mut cards = vec![
        ("players", report.players.to_string(), String::new()),
        ("matched", o.matched.to_string(), pct(o.matched, finished)),
        (
            "timed out",
            o.timed_out.to_string(),
            pct(o.timed_out, finished),
        ),
        ("failed", o.failed.to_string(), pct(o.failed, finished)),
        ("errors", o.error.to_string(), pct(o.error, finished)),
        ("pairing p50", lat(p, p.p50_ms), String::new()),
        ("pairing p99", lat(p, p.p99_ms), String::new()),
    ];
    if let Some(c) = &report.claims {
        cards.push((
            "claims failed",
            c.failed().to_string(),
            format!("{} of {}", pct(c.failed(), c.attempted), c.attempted),
        ));
    }
    h.push_str("<section id=\"figures\" class=\"cards\">\n");
    for (name, value, note) in cards {
        let _ = writeln!(
            h,
            "<div class=\"card\"><div class=\"k\">{}</div><div class=\"v\">{}</div><div class=\"n\">{}</div></div>",
            escape(name),
            escape(&value),
            escape(&note)
        );
    }
    h.push_str("</section>\n");
}

fn lat(p: &Percentiles, v: f64) -> String {
    if p.count == 0 { "-".to_owned() } else { ms(v) }
}

/// A placeholder the page script fills with a chart.
pub fn chart(h: &mut String, id: &str, title: &str, note: &str, wide: bool) {
    let _ = writeln!(
        h,
        "<figure class=\"chart{}\"><figcaption>{}<small>{}</small></figcaption><div id=\"{id}\" class=\"plot\"></div></figure>",
        if wide { " wide" } else { "" },
        escape(title),
        escape(note)
    );
}

/// arrived → logged in → connected → searching → outcomes, with failures by reason.
pub fn funnel(h: &mut String, report: &RunReport) {
    let ok = |name: &str| {
        report
            .endpoints
            .get(name)
            .map(|e| e.calls.saturating_sub(e.errors))
    };
    let calls = |name: &str| report.endpoints.get(name).map(|e| e.calls);
    let o = &report.outcomes;
    let top = report.players.max(1);
    let mut rows: Vec<(String, u64, &str)> =
        vec![("arrived (players)".to_owned(), report.players, "")];
    if let Some(n) = ok("login") {
        rows.push(("logged in".to_owned(), n, ""));
    }
    if let Some(n) = ok("lobby_connect") {
        rows.push(("lobby connected".to_owned(), n, ""));
    }
    if let Some(n) = calls("matchmaking") {
        rows.push(("matchmaking requests (searching)".to_owned(), n, ""));
    }
    rows.push(("matched".to_owned(), o.matched, "good"));
    rows.push(("timed out".to_owned(), o.timed_out, "bad"));
    rows.push(("cancelled".to_owned(), o.cancelled, "meh"));
    rows.push((
        "failed: no server could be claimed".to_owned(),
        o.failed_claim,
        "bad",
    ));
    rows.push((
        "failed: other".to_owned(),
        o.failed.saturating_sub(o.failed_claim),
        "bad",
    ));
    rows.push(("errors".to_owned(), o.error, "bad"));
    h.push_str("<section id=\"funnel\"><h2>Matchmaking funnel</h2><table class=\"funnel\">\n");
    for (name, n, class) in rows {
        let width = (n as f64 * 100.0 / top as f64).min(100.0);
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{n}</td><td>{}</td><td class=\"barcell\"><div class=\"bar {class}\" style=\"width:{width:.1}%\"></div></td></tr>",
            escape(&name),
            pct(n, report.players)
        );
    }
    h.push_str("</table>\n");
    if !report.errors.is_empty() {
        h.push_str("<h3>Errors by endpoint and kind</h3><table><tr><th>endpoint</th><th>kind</th><th>count</th></tr>\n");
        for e in &report.errors {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&e.endpoint),
                escape(&e.kind),
                e.count
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("</section>\n");
}

/// Calls, errors by kind and latency per endpoint.
pub fn endpoints(h: &mut String, report: &RunReport) {
    let mut kinds: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for e in &report.errors {
        kinds
            .entry(e.endpoint.as_str())
            .or_default()
            .push(format!("{} {}", e.kind, e.count));
    }
    h.push_str("<section id=\"endpoints\"><h2>Endpoints</h2><table><tr><th>endpoint</th><th>calls</th><th>errors</th><th>error rate</th><th>errors by kind</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>\n");
    for (name, e) in &report.endpoints {
        let l = &e.latency;
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(name),
            e.calls,
            e.errors,
            pct(e.errors, e.calls),
            escape(
                &kinds
                    .get(name.as_str())
                    .map_or(String::new(), |k| k.join(", "))
            ),
            lat(l, l.p50_ms),
            lat(l, l.p90_ms),
            lat(l, l.p99_ms),
            lat(l, l.max_ms)
        );
    }
    h.push_str("</table></section>\n");
}

/// Whether the load generator kept its schedule, and what every process cost.
pub fn generator(h: &mut String, report: &RunReport) {
    let s = &report.saturation;
    let _ = writeln!(
        h,
        "<section id=\"generator\"><h2>Load generator health</h2><p>{}: {} players started more than 50ms late; worst start lag {}.</p>",
        if s.warned {
            "<strong class=\"failtext\">saturated</strong>"
        } else {
            "<strong class=\"passtext\">kept its schedule</strong>"
        },
        s.lagged_starts,
        ms(s.max_lag_ms)
    );
    for f in &report.verdict.findings {
        let _ = writeln!(
            h,
            "<p class=\"finding\">{}</p>",
            escape(&format!("{}: {}", f.who, f.message))
        );
    }
    if !report.processes.is_empty() {
        h.push_str("<table><tr><th>process</th><th>pid</th><th>peak RSS</th><th>CPU time</th><th>peak CPU (% of a core)</th><th>peak open files</th><th>open-files limit</th><th>local resource errors</th></tr>\n");
        for p in &report.processes {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{:.1} MiB</td><td>{:.2}s</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
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
    }
    if !report.failovers.is_empty() {
        h.push_str("<h3>Matchmaker failovers</h3><table><tr><th>unreachable URL</th><th>requests moved on</th></tr>\n");
        for (url, n) in &report.failovers {
            let _ = writeln!(h, "<tr><td>{}</td><td>{n}</td></tr>", escape(url));
        }
        h.push_str("</table>\n");
    }
}

/// The scenario file, seed, overrides and versions: enough to run it again.
pub fn scenario(h: &mut String, report: &RunReport) {
    let sc = &report.scenario;
    h.push_str("<section id=\"scenario\"><h2>Scenario as run</h2><table>\n");
    let mut command = format!("sim run {}", sc.file);
    if !sc.overrides.is_empty() {
        command.push(' ');
        command.push_str(&sc.overrides.join(" "));
    }
    if !sc.overrides.iter().any(|o| o.starts_with("--seed")) {
        let _ = write!(command, " --seed {}", sc.seed);
    }
    let versions = sc
        .versions
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    for (k, v) in [
        ("name", sc.name.clone()),
        ("file", sc.file.clone()),
        ("seed", sc.seed.to_string()),
        (
            "duration",
            format!("{:.1}s", sc.duration_ms as f64 / 1000.0),
        ),
        ("target", sc.target.clone()),
        ("arrivals", sc.arrival.clone()),
        (
            "overrides",
            if sc.overrides.is_empty() {
                "none".to_owned()
            } else {
                sc.overrides.join(" ")
            },
        ),
        (
            "versions",
            if versions.is_empty() {
                "not recorded".to_owned()
            } else {
                versions
            },
        ),
        ("to reproduce", command),
    ] {
        let _ = writeln!(
            h,
            "<tr><th>{k}</th><td class=\"l\"><code>{}</code></td></tr>",
            escape(&v)
        );
    }
    h.push_str("</table>\n");
    match &sc.text {
        Some(text) => {
            let _ = writeln!(
                h,
                "<details><summary>{} as run</summary><pre>{}</pre></details>",
                escape(&sc.file),
                escape(text)
            );
        }
        None => h.push_str("<p>The scenario file's text was not recorded in this report.</p>\n"),
    }
    h.push_str("</section>\n");
}
