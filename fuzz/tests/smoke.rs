//! The CI smoke of every fuzz target: a few thousand mutated inputs each, no panic. The long
//! runs (ten million and more) are in `docs/fuzzing.md`.

fn smoke(name: &str, iterations: u64) {
    let mut target = fuzz::target(name).expect("target starts");
    let stats = fuzz::run(target.as_mut(), iterations, 7, 0, &mut |_| {}).unwrap_or_else(|crash| {
        panic!(
            "{name} panicked: {} on {:?}",
            crash.message,
            String::from_utf8_lossy(&crash.input)
        )
    });
    assert!(stats.executions > iterations, "{name}: {stats:?}");
    assert!(
        stats.accepted > 0,
        "{name}: no input was accepted: {stats:?}"
    );
}

#[test]
fn frame() {
    smoke("frame", 5_000);
}

#[test]
fn request() {
    smoke("request", 5_000);
}

#[test]
fn faults() {
    smoke("faults", 3_000);
}

#[test]
fn scenario() {
    smoke("scenario", 1_000);
}

#[test]
fn token() {
    smoke("token", 3_000);
}

#[test]
fn unknown_targets_are_named() {
    let Err(err) = fuzz::target("nope") else {
        panic!("an unknown target was accepted");
    };
    assert!(err.to_string().contains("frame, request"), "{err}");
}

/// The first long run of `frame` stopped here: a bare CR inside a value survives `parse` and
/// becomes a space in `encode` (the format has no escaping). Lossy by design; the target's
/// property allows it, and the input stays as a regression case.
#[test]
fn a_bare_cr_inside_a_value_is_not_a_broken_round_trip() {
    let mut target = fuzz::target("frame").expect("target");
    let input = b"type: messageNotif\npayload: found 127.0.0.1 7777\nsentAt: 00:00\r8x:00Z";
    assert_eq!(target.execute(input), fuzz::Verdict::Accepted);
}
