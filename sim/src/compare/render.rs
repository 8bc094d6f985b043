//! A [`Comparison`] as a text table (terminal), an HTML page (side-by-side table and both
//! runs' latency drawn over each other) and JUnit XML (one case per regression limit).

use std::fmt::Write as _;

use serde_json::json;

use super::limit::show;
use super::{Better, Comparison};
use crate::report::RunReport;
use crate::report::html::{chart_data, head, tail_with};
use crate::report::junit::escape;

/// The comparison as a terminal table and the limits' verdicts.
pub fn text(c: &Comparison, base_file: &str, new_file: &str) -> String {
    let mut s = String::new();
    let verdict = if c.checks.is_empty() {
        "no limits".to_owned()
    } else if c.passed() {
        "PASS".to_owned()
    } else {
        "FAIL".to_owned()
    };
    let _ = writeln!(s, "sim compare: {base_file} → {new_file} — {verdict}");
    let _ = writeln!(
        s,
        "  {:<28} {:>12} {:>12} {:>9}",
        "figure", "base", "new", "change"
    );
    for r in &c.rows {
        let change = r
            .change_percent()
            .map_or("-".to_owned(), |p| format!("{p:+.1}%"));
        let mark = match (r.change_percent(), r.better) {
            (Some(p), Better::Lower) if p > 0.5 => " worse",
            (Some(p), Better::Higher) if p < -0.5 => " worse",
            (Some(p), Better::Lower) if p < -0.5 => " better",
            (Some(p), Better::Higher) if p > 0.5 => " better",
            _ => "",
        };
        let _ = writeln!(
            s,
            "  {:<28} {:>12} {:>12} {:>9}{mark}",
            r.key,
            show(r.unit, r.base),
            show(r.unit, r.new),
            change
        );
    }
    for ch in &c.checks {
        let _ = writeln!(
            s,
            "  {} {} — {}",
            if ch.passed { "pass" } else { "FAIL" },
            ch.condition,
            ch.message
        );
    }
    s
}

/// One JUnit case per limit.
pub fn junit(c: &Comparison) -> String {
    let failures = c.checks.iter().filter(|x| !x.passed).count();
    let cases = c.checks.len();
    let suite = format!("sim.compare.{}", c.new_name);
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"sim compare\" tests=\"{cases}\" failures=\"{failures}\" errors=\"0\">\n  <testsuite name=\"{}\" tests=\"{cases}\" failures=\"{failures}\" errors=\"0\">",
        escape(&suite)
    );
    for ch in &c.checks {
        let _ = write!(
            xml,
            "    <testcase classname=\"{}.regressions\" name=\"{}\" time=\"0\">",
            escape(&suite),
            escape(&ch.condition)
        );
        if ch.passed {
            let _ = writeln!(
                xml,
                "<system-out>{}</system-out></testcase>",
                escape(&ch.message)
            );
        } else {
            let _ = writeln!(
                xml,
                "<failure type=\"regression\" message=\"{}\">{}</failure></testcase>",
                escape(&ch.message),
                escape(&ch.message)
            );
        }
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

/// A page with both runs side by side.
pub fn html(c: &Comparison, base: &RunReport, new: &RunReport, files: (&str, &str)) -> String {
    let mut h = String::new();
    head(&mut h, &format!("sim compare: {}", c.new_name));
    let (class, word) = if c.checks.is_empty() {
        ("pass", "NO LIMITS")
    } else if c.passed() {
        ("pass", "PASS")
    } else {
        ("fail", "FAIL")
    };
    let _ = writeln!(
        h,
        "<main><header id=\"verdict\" class=\"{class}\"><div class=\"badge\">{word}</div><div><h1>{} → {}</h1><p class=\"sub\">base {} · new {}</p></div></header>",
        escape(&c.base_name),
        escape(&c.new_name),
        escape(files.0),
        escape(files.1)
    );
    if !c.checks.is_empty() {
        h.push_str("<section id=\"checks\"><h2>Regression limits</h2><table><tr><th>limit</th><th>figures</th><th>result</th></tr>\n");
        for ch in &c.checks {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td class=\"l\">{}</td><td class=\"{}\">{}</td></tr>",
                escape(&ch.condition),
                escape(&ch.message),
                if ch.passed { "pass" } else { "fail" },
                if ch.passed { "pass" } else { "FAIL" }
            );
        }
        h.push_str("</table></section>\n");
    }
    h.push_str("<section id=\"side-by-side\"><h2>Side by side</h2><table><tr><th>figure</th><th>base</th><th>new</th><th>change</th></tr>\n");
    for r in &c.rows {
        let change = r.change_percent();
        let class = match (change, r.better) {
            (Some(p), Better::Lower) if p > 0.5 => "fail",
            (Some(p), Better::Higher) if p < -0.5 => "fail",
            (Some(p), _) if p.abs() > 0.5 => "pass",
            _ => "",
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td></tr>",
            escape(&r.key),
            escape(&show(r.unit, r.base)),
            escape(&show(r.unit, r.new)),
            change.map_or("-".to_owned(), |p| format!("{p:+.1}%"))
        );
    }
    h.push_str("</table></section>\n<section class=\"grid\">\n");
    for (id, title) in [
        ("chart-p99", "Pairing latency p99 each second, base and new"),
        ("chart-curve", "Pairing latency distribution, base and new"),
    ] {
        let _ = writeln!(
            h,
            "<figure class=\"chart\"><figcaption>{title}</figcaption><div id=\"{id}\" class=\"plot\"></div></figure>"
        );
    }
    h.push_str("</section></main>\n");
    let data = json!({ "base": chart_data(base), "new": chart_data(new) });
    tail_with(&mut h, &data, COMPARE_JS);
    h
}

/// Draws the comparison's charts (the run page's assets, this script instead of the run's).
const COMPARE_JS: &str = include_str!("compare.js");
