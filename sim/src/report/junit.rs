//! JUnit XML: one test case per threshold, one for the invariant check, and one for the
//! saturation verdict (skipped, with the verdict as its message, when the harness saturated and
//! the figures cannot be trusted — a warning, not a failure), so a CI system shows which limit
//! broke without reading logs.

use std::fmt::Write as _;

use super::RunReport;

/// The report as JUnit XML.
pub fn render(report: &RunReport) -> String {
    let suite = format!("sim.{}", report.scenario.name);
    let seconds = report.elapsed_ms as f64 / 1000.0;
    let cases = report.thresholds.len() + 2;
    let skipped = usize::from(report.verdict.saturated());
    let failures = report.failed_thresholds().count() + usize::from(!report.invariants.passed());
    let mut xml = String::new();
    xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"sim\" tests=\"{cases}\" failures=\"{failures}\" errors=\"0\" time=\"{seconds:.3}\">"
    );
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{}\" tests=\"{cases}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{seconds:.3}\">",
        escape(&suite)
    );
    xml.push_str("    <properties>\n");
    for (name, value) in [
        ("scenario.file", report.scenario.file.clone()),
        ("scenario.seed", report.scenario.seed.to_string()),
        ("scenario.target", report.scenario.target.clone()),
        ("players", report.players.to_string()),
        ("matched", report.outcomes.matched.to_string()),
        ("shards", report.shards.to_string()),
    ] {
        let _ = writeln!(
            xml,
            "      <property name=\"{}\" value=\"{}\"/>",
            escape(name),
            escape(&value)
        );
    }
    xml.push_str("    </properties>\n");
    for t in &report.thresholds {
        let _ = write!(
            xml,
            "    <testcase classname=\"{}.thresholds\" name=\"{}\" time=\"0\"",
            escape(&suite),
            escape(&t.condition)
        );
        let actual = t.actual.as_deref().unwrap_or("not measured");
        if t.passed() {
            let _ = writeln!(
                xml,
                ">\n      <system-out>{}: {}</system-out>\n    </testcase>",
                escape(&t.name),
                escape(actual)
            );
        } else {
            let _ = writeln!(
                xml,
                ">\n      <failure type=\"threshold\" message=\"{}\">{}: {}</failure>\n    </testcase>",
                escape(&t.message),
                escape(&t.name),
                escape(actual)
            );
        }
    }
    let inv = &report.invariants;
    let _ = write!(
        xml,
        "    <testcase classname=\"{}\" name=\"invariants\" time=\"0\"",
        escape(&suite)
    );
    if inv.passed() {
        let _ = writeln!(
            xml,
            ">\n      <system-out>{} players, {} sessions, no violation</system-out>\n    </testcase>",
            inv.players, inv.sessions
        );
    } else {
        let body: Vec<String> = inv.violations.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            xml,
            ">\n      <failure type=\"invariant\" message=\"{} invariant violations\">{}</failure>\n    </testcase>",
            inv.violations.len(),
            escape(&body.join("\n"))
        );
    }
    let v = &report.verdict;
    let _ = write!(
        xml,
        "    <testcase classname=\"{}\" name=\"saturation\" time=\"0\"",
        escape(&suite)
    );
    if v.saturated() {
        let _ = writeln!(
            xml,
            ">\n      <skipped message=\"results not trustworthy: {}\"/>\n    </testcase>",
            escape(&v.headline)
        );
    } else {
        let _ = writeln!(
            xml,
            ">\n      <system-out>{}</system-out>\n    </testcase>",
            escape(&v.headline)
        );
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

/// Escapes text for XML attributes and content; drops characters XML 1.0 cannot carry.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}
