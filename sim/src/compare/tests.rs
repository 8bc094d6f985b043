use super::*;
use crate::report::tests_support::{report, report_of};

/// `n` players of latency `base + i` ms, every latency times `factor`.
fn scaled(n: u64, base: u64, factor: u64) -> crate::report::RunReport {
    report_of(&(0..n).map(|i| (base + i) * factor).collect::<Vec<_>>())
}

#[test]
fn a_doubled_p99_fails_a_ten_percent_limit_and_an_unchanged_rerun_passes() {
    let base = report(100, 100);
    // The same run with every latency doubled: p99 twice the base's.
    let slow = scaled(100, 100, 2);
    assert!(slow.pairing.p99_ms > 1.9 * base.pairing.p99_ms);
    let limits = parse_limits(&["p99=10%", "timeout_rate=0.01"]).expect("limits");

    let bad = compare(&base, &slow, &limits);
    assert!(!bad.passed());
    let p99 = bad
        .checks
        .iter()
        .find(|c| c.key == "p99")
        .expect("p99 check");
    assert!(!p99.passed, "{p99:?}");
    assert!(
        p99.message.contains("regression beyond the limit"),
        "{}",
        p99.message
    );
    assert!(
        bad.checks
            .iter()
            .find(|c| c.key == "timeout_rate")
            .is_some_and(|c| c.passed)
    );

    let same = compare(&base, &report(100, 100), &limits);
    assert!(same.passed(), "{:?}", same.checks);
    let xml = render::junit(&bad);
    assert!(xml.contains("failures=\"1\""), "{xml}");
    assert!(xml.contains("name=\"p99 may get worse by 10%\""));
    let text = render::text(&bad, "base.json", "new.json");
    assert!(text.contains("FAIL p99 may get worse by 10%"), "{text}");
}

#[test]
fn an_absolute_latency_limit_and_a_throughput_drop() {
    let base = report(100, 100);
    let slow = scaled(100, 100, 2);
    let loose = parse_limits(&["p99=250ms"]).expect("limits");
    assert!(compare(&base, &slow, &loose).passed());
    let tight = parse_limits(&["p99=50ms"]).expect("limits");
    assert!(!compare(&base, &slow, &tight).passed());
    // Fewer matched players in the same duration: throughput fell by half.
    let fewer = report(50, 100);
    let limits = parse_limits(&["throughput=10%"]).expect("limits");
    assert!(!compare(&base, &fewer, &limits).passed());
    assert!(
        compare(&fewer, &base, &limits).passed(),
        "more throughput is no regression"
    );
}

#[test]
fn bad_limits_are_refused_with_the_text() {
    for (text, why) in [
        ("p99", "expected KEY=LIMIT"),
        ("p99=fast", "a latency limit is a percentage"),
        ("latency=10%", "unknown figure"),
        ("p99=-5%", "zero or more"),
        ("timeout_rate=x", "a percentage (10%) or a number"),
    ] {
        let err = parse_limits(&[text]).expect_err(text);
        assert_eq!(err.text, text);
        assert!(err.reason.contains(why), "{text}: {}", err.reason);
    }
    assert_eq!(
        parse_limits(&["p99=10%,matchmaking.p99=200ms"])
            .expect("two")
            .len(),
        2
    );
}

#[test]
fn the_html_comparison_shows_both_runs() {
    let base = report(100, 100);
    let slow = scaled(100, 100, 2);
    let c = compare(&base, &slow, &parse_limits(&["p99=10%"]).expect("limits"));
    let page = render::html(&c, &base, &slow, ("base.json", "new.json"));
    assert!(page.contains("<div class=\"badge\">FAIL</div>"));
    assert!(page.contains("<td>p99</td>"));
    assert!(page.contains("id=\"chart-p99\""));
    assert_eq!(page.matches("id=\"report-data\"").count(), 1);
}
