//! The verdict's rules on synthetic samples.

use super::*;
use crate::process::ProcessSample;
use crate::sampler::MachineSample;

fn process(role: &str, pid: u32) -> ProcessReport {
    let mut p = ProcessReport::of_pid(role, u32::MAX);
    p.pid = pid;
    p
}

/// `n` one-second samples at `cpu` percent with `files` open files.
fn samples(n: u64, cpu: f64, files: u64) -> Vec<ProcessSample> {
    (0..n)
        .map(|i| ProcessSample {
            at_ms: i * 1000,
            cpu_percent: cpu,
            open_files: files,
            rss_bytes: 1 << 20,
        })
        .collect()
}

struct Fixture {
    saturation: Saturation,
    processes: Vec<ProcessReport>,
    machine: Option<MachineReport>,
    sut: Option<SutCounters>,
    errors: Vec<ErrorCount>,
    embedded: bool,
}

impl Fixture {
    fn new(processes: Vec<ProcessReport>) -> Fixture {
        Fixture {
            saturation: Saturation::default(),
            processes,
            machine: None,
            sut: None,
            errors: Vec::new(),
            embedded: true,
        }
    }

    fn judge(&self) -> Verdict {
        judge_evidence(&Evidence {
            embedded: self.embedded,
            saturation: &self.saturation,
            arrivals: 1_000,
            processes: &self.processes,
            machine: self.machine.as_ref(),
            sut: self.sut.as_ref(),
            errors: &self.errors,
        })
    }
}

#[test]
fn a_quiet_run_is_ok_and_trustworthy() {
    let mut p = process("single", 10);
    p.samples = samples(30, 40.0, 100);
    p.open_files_limit = Some(20_000);
    p.peak_open_files = 100;
    let v = Fixture::new(vec![p]).judge();
    assert_eq!(v.status, Status::Ok, "{v:?}");
    assert!(v.trustworthy);
    assert!(v.findings.is_empty());
    assert!(v.headline.starts_with("OK:"), "{}", v.headline);
}

#[test]
fn a_worker_near_its_open_files_limit_is_named_with_the_limit() {
    let mut parent = process("parent", 10);
    parent.samples = samples(10, 20.0, 500);
    let mut worker = process("worker 2", 12);
    worker.samples = samples(40, 30.0, 19_800);
    worker.open_files_limit = Some(20_000);
    worker.peak_open_files = 19_800;
    worker.peak_open_files_at_ms = 35_000;
    let v = Fixture::new(vec![parent, worker]).judge();
    assert_eq!(v.status, Status::Saturated);
    assert!(!v.trustworthy);
    assert_eq!(v.findings.len(), 1, "{v:?}");
    let f = &v.findings[0];
    assert_eq!((f.side, f.limit), (Side::Generator, Limit::OpenFiles));
    assert_eq!(
        v.headline,
        "SATURATED: worker 2 (pid 12) hit 19,800/20,000 open files at 0:35"
    );
}

#[test]
fn below_ninety_percent_of_the_limit_is_not_near_it() {
    let mut worker = process("worker 0", 12);
    worker.open_files_limit = Some(20_000);
    worker.peak_open_files = 17_999;
    assert_eq!(Fixture::new(vec![worker]).judge().status, Status::Ok);
}

#[test]
fn sustained_cpu_names_the_process_and_a_burst_does_not() {
    // 40 s at 98% of a core after 5 quiet seconds: the parent (fakes primary) is the stack.
    let mut parent = process("parent", 10);
    parent.samples = samples(5, 10.0, 10);
    parent.samples.extend((5..46).map(|i| ProcessSample {
        at_ms: i * 1000,
        cpu_percent: 98.0,
        open_files: 10,
        rss_bytes: 0,
    }));
    // Four seconds pegged, then idle: under the five seconds that count as sustained.
    let mut worker = process("worker 1", 11);
    worker.samples = samples(4, 100.0, 10);
    worker.samples.extend((4..20).map(|i| ProcessSample {
        at_ms: i * 1000,
        cpu_percent: 5.0,
        open_files: 10,
        rss_bytes: 0,
    }));
    let v = Fixture::new(vec![parent, worker]).judge();
    assert_eq!(v.findings.len(), 1, "{v:?}");
    let f = &v.findings[0];
    assert_eq!((f.side, f.limit), (Side::Stack, Limit::Cpu));
    assert_eq!(
        f.message,
        "parent (fakes primary) (pid 10) at 98% CPU for 41 s from 0:04"
    );
    assert!(v.saturated() && !v.trustworthy);
}

#[test]
fn the_machine_busy_and_short_of_memory_is_found() {
    let mut big = process("worker 0", 11);
    big.peak_rss_bytes = 900 << 20;
    let mut f = Fixture::new(vec![process("parent", 10), big]);
    f.machine = Some(MachineReport {
        cores: 2,
        mem_total_bytes: 1 << 30,
        min_mem_available_bytes: 50 << 20,
        samples: (0..10)
            .map(|i| MachineSample {
                at_ms: i * 1000,
                busy_percent: 99.0,
                mem_available_bytes: 50 << 20,
            })
            .collect(),
    });
    let v = f.judge();
    let limits: Vec<(Side, Limit)> = v.findings.iter().map(|f| (f.side, f.limit)).collect();
    assert_eq!(
        limits,
        [(Side::Machine, Limit::Cpu), (Side::Machine, Limit::Memory)]
    );
    assert!(v.findings[0].message.contains("all 2 cores busy"), "{v:?}");
    assert_eq!(v.findings[1].who, "worker 0 (pid 11)");
    assert!(v.saturated());
}

#[test]
fn refusals_of_the_sut_are_apart_from_local_resource_failures() {
    let mut f = Fixture::new(vec![process("single", 10)]);
    f.errors = vec![
        ErrorCount {
            endpoint: "matchmaking".into(),
            kind: "http_503".into(),
            count: 1204,
        },
        ErrorCount {
            endpoint: "lobby_connect".into(),
            kind: "transport".into(),
            count: 3,
        },
    ];
    f.sut = Some(SutCounters {
        matchmaker_refused: Some(1204),
        fakes_refused_over_cap: Some(0),
        ..SutCounters::default()
    });
    let v = f.judge();
    assert_eq!(v.status, Status::SutRefused);
    assert!(v.trustworthy, "refusals are the system under test's answer");
    assert_eq!(
        v.headline,
        "SUT REFUSED: 1,204 requests got 429/503 from the matchmaker (1,204 connections refused at its connection cap)"
    );

    // The same run where the generator also ran out of descriptors: both are said, and the
    // saturation comes first.
    f.processes[0].local_resource_errors = 7;
    let v = f.judge();
    assert_eq!(v.status, Status::Saturated);
    assert!(!v.trustworthy);
    assert!(
        v.headline.starts_with("SATURATED: single (players and embedded stack) (pid 10): 7 calls failed for lack of local descriptors or ports")
            && v.headline.contains(" — SUT REFUSED: 1,204 requests"),
        "{}",
        v.headline
    );
}

#[test]
fn start_lag_joins_the_verdict_and_server_accept_errors_side_with_the_target() {
    let mut f = Fixture::new(Vec::new());
    f.saturation = Saturation {
        warned: true,
        lagged_starts: 12,
        max_lag_ms: 340.0,
    };
    f.sut = Some(SutCounters {
        fakes_accept_resource_errors: Some(5),
        ..SutCounters::default()
    });
    let v = f.judge();
    let sides: Vec<(Side, Limit)> = v.findings.iter().map(|f| (f.side, f.limit)).collect();
    assert_eq!(
        sides,
        [
            (Side::Generator, Limit::StartLag),
            (Side::Stack, Limit::OpenFiles)
        ]
    );
    // Against URLs the fakes are the system under test: its accept failures are its own.
    f.embedded = false;
    f.saturation = Saturation::default();
    let v = f.judge();
    assert_eq!(v.status, Status::SutRefused);
    assert_eq!(v.findings[0].side, Side::Sut);
}

#[test]
fn a_process_is_said_to_host_the_stack_only_when_the_target_is_embedded() {
    let mut single = process("single", 10);
    single.local_resource_errors = 2;
    let mut f = Fixture::new(vec![single]);
    assert!(
        f.judge()
            .headline
            .contains("single (players and embedded stack) (pid 10): 2 calls"),
        "{:?}",
        f.judge()
    );
    f.embedded = false;
    assert!(
        f.judge()
            .headline
            .starts_with("SATURATED: single (pid 10): 2 calls"),
        "{:?}",
        f.judge()
    );
}

#[test]
fn busy_stretches_are_measured_between_samples() {
    let pts = [
        (0, 10.0),
        (1000, 95.0),
        (2000, 95.0),
        (7000, 99.0),
        (8000, 10.0),
    ];
    assert_eq!(longest_busy(pts.into_iter(), 90.0), Some((0, 7000, 99.0)));
    let short = [(0, 95.0), (4000, 95.0)];
    assert_eq!(longest_busy(short.into_iter(), 90.0), None);
    assert_eq!(thousands(19_800), "19,800");
    assert_eq!(thousands(999), "999");
    assert_eq!(thousands(1_000_000), "1,000,000");
}

#[test]
fn a_stray_late_start_is_not_saturation_but_many_or_one_very_late_are() {
    let mut f = Fixture::new(Vec::new());
    let lag = |lagged_starts, max_lag_ms| Saturation {
        warned: true,
        lagged_starts,
        max_lag_ms,
    };
    let start_lag = |f: &Fixture| {
        f.judge()
            .findings
            .iter()
            .any(|finding| finding.limit == Limit::StartLag)
    };
    // The fixture's run has 1,000 searches: one 60 ms late is a hiccup.
    f.saturation = lag(1, 60.0);
    assert!(!start_lag(&f));
    f.saturation = lag(2, 60.0);
    assert!(start_lag(&f), "0.2% of starts late");
    f.saturation = lag(1, 1_500.0);
    assert!(start_lag(&f), "one start 1.5 s late");
}
