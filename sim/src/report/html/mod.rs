//! One self-contained HTML page per run: a verdict header (every check with its figure and
//! limit), key figures, charts of pairing latency over time (log scale, fault windows and
//! phases shaded and labelled), the latency distribution, throughput, DSMC claims, errors,
//! the matchmaking funnel, endpoints, the generator's health, each process's CPU and memory,
//! and the scenario as run.
//!
//! The page has no external asset: the charts are drawn by uPlot (vendored under
//! `sim/assets/uplot/`, MIT) from a JSON document embedded in the page, so it opens offline
//! from disk or a CI artefact. Tables and figures are plain HTML and read without the script.
//! A script error is written into the page (`data-js-errors` on `<html>`, and a visible box),
//! so a headless browser's DOM dump shows it.

mod data;
mod sections;
pub mod timeline;

use std::fmt::Write as _;

use super::RunReport;
use super::junit::escape;
use super::summary;

pub use data::chart_data;

const UPLOT_JS: &str = include_str!("../../../assets/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../../assets/uplot/uPlot.min.css");
const PAGE_JS: &str = include_str!("page.js");
const PAGE_CSS: &str = include_str!("page.css");
/// Installed before any other script: records script errors into the page.
const ERROR_TRAP: &str = include_str!("trap.js");

/// The page's head: title, styles and the error trap.
pub fn head(h: &mut String, title: &str) {
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\" data-js-errors=\"0\" data-charts=\"0\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title>\n\
<script>{ERROR_TRAP}</script>\n<style>{UPLOT_CSS}\n{PAGE_CSS}</style></head><body>\n\
<pre id=\"js-errors\" hidden></pre>\n",
        escape(title)
    );
}

/// The page's end: the data, uPlot, the run page's script.
pub fn tail(h: &mut String, data: &serde_json::Value) {
    tail_with(h, data, PAGE_JS);
}

/// The page's end with another script drawing from the same data (`#report-data`).
pub fn tail_with(h: &mut String, data: &serde_json::Value, script: &str) {
    let _ = write!(
        h,
        "<script type=\"application/json\" id=\"report-data\">{}</script>\n<script>{UPLOT_JS}</script>\n<script>{script}</script>\n</body></html>\n",
        script_safe(&data.to_string())
    );
}

/// JSON that cannot close the `<script>` element it sits in.
pub fn script_safe(json: &str) -> String {
    json.replace("</", "<\\/").replace("<!--", "<\\!--")
}

/// The page.
pub fn render(report: &RunReport) -> String {
    let mut h = String::new();
    head(&mut h, &format!("sim: {}", report.scenario.name));
    h.push_str("<main>\n");
    sections::header(&mut h, report);
    h.push_str("<section id=\"charts\" class=\"grid\">\n");
    sections::chart(
        &mut h,
        "chart-latency",
        "Pairing latency of players matched each second",
        "log scale; red bands are fault windows, grey bands the run's phases",
        true,
    );
    sections::chart(
        &mut h,
        "chart-throughput",
        "Throughput",
        "players arriving, matched and timed out per second",
        false,
    );
    sections::chart(
        &mut h,
        "chart-claims",
        "DSMC claims by outcome",
        "claims per second, from the fakes' counters",
        false,
    );
    sections::chart(
        &mut h,
        "chart-errors",
        "Failures over time",
        "players per second ending other than matched",
        false,
    );
    sections::chart(
        &mut h,
        "chart-curve",
        "Pairing latency distribution",
        "HDR percentile curve over the whole run",
        false,
    );
    sections::chart(
        &mut h,
        "chart-histogram",
        "Pairing latency histogram",
        "matched players per latency bucket (log buckets)",
        false,
    );
    sections::chart(
        &mut h,
        "chart-generator",
        "Generator start lag",
        "worst lag behind schedule each second; above 50 ms the generator is saturated",
        false,
    );
    if report.processes.iter().any(|p| !p.samples.is_empty()) {
        sections::chart(
            &mut h,
            "chart-cpu",
            "CPU per process",
            "% of one core, seconds since sampling started",
            false,
        );
        sections::chart(
            &mut h,
            "chart-rss",
            "Memory per process",
            "resident set, MiB",
            false,
        );
    }
    h.push_str("</section>\n");
    sections::funnel(&mut h, report);
    sections::endpoints(&mut h, report);
    sections::generator(&mut h, report);
    sections::scenario(&mut h, report);
    let _ = writeln!(
        h,
        "<details id=\"summary\"><summary>Text summary</summary><pre>{}</pre></details>",
        escape(&summary::render(report))
    );
    h.push_str("</main>\n");
    tail(&mut h, &chart_data(report));
    h
}

#[cfg(test)]
mod tests;
