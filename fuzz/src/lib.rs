//! Mutation fuzzing of matchbench's parsers and its token validator, on the stable toolchain
//! (cargo-fuzz needs nightly): each [`Target`] brings a seed corpus of valid inputs (frames,
//! request bodies, fault files, scenario files, signed tokens), the [`mutate`] engine breaks
//! them byte by byte and structure by structure, and inputs a target accepts join the corpus so
//! later mutations start from deeper, still-valid shapes.
//!
//! A target must never panic; some also check a property (a frame that parses survives
//! `encode` and a second parse unchanged). [`run`] counts executions, catches a panic and hands
//! back the input that caused it. `matchbench-fuzz <target> --iterations N` runs one target
//! (see `docs/fuzzing.md`); `tests/smoke.rs` runs each for a few thousand cases in CI.

pub mod mutate;
pub mod targets;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use mutate::Mutator;

/// Most inputs kept in a corpus (seeds plus accepted mutants).
pub const MAX_CORPUS: usize = 4096;

/// What an execution showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The target took the input as valid.
    Accepted,
    /// The target refused it with an error (the expected answer to garbage).
    Refused,
}

/// A parser (or validator) under fuzzing.
pub trait Target {
    /// The name on the command line.
    fn name(&self) -> &'static str;
    /// Valid inputs to start from.
    fn seeds(&self) -> Vec<Vec<u8>>;
    /// Tokens worth inserting (keys, keywords).
    fn dictionary(&self) -> Vec<String>;
    /// A new input from `base` (and `other`, for splices).
    fn mutate(&self, m: &mut Mutator, base: &[u8], other: &[u8]) -> Vec<u8> {
        m.bytes(base, other)
    }
    /// Runs one input; panics on a broken property.
    fn execute(&mut self, input: &[u8]) -> Verdict;
}

/// The figures of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub executions: u64,
    pub accepted: u64,
    pub corpus: usize,
    pub elapsed: Duration,
}

/// A panic and the input that caused it.
#[derive(Debug, Clone)]
pub struct Crash {
    pub input: Vec<u8>,
    pub message: String,
    pub after: u64,
}

/// Runs `target` for `iterations` mutated inputs (plus every seed once) from `seed`, calling
/// `progress` about every `every` executions. Stops at the first panic.
pub fn run(
    target: &mut dyn Target,
    iterations: u64,
    seed: u64,
    every: u64,
    progress: &mut dyn FnMut(&Stats),
) -> Result<Stats, Box<Crash>> {
    let started = Instant::now();
    let mut corpus = target.seeds();
    assert!(!corpus.is_empty(), "a target needs at least one seed");
    let dictionary = target.dictionary();
    let words: Vec<&str> = dictionary.iter().map(String::as_str).collect();
    let mut m = Mutator::new(seed, &words);
    let mut stats = Stats {
        executions: 0,
        accepted: 0,
        corpus: corpus.len(),
        elapsed: Duration::ZERO,
    };
    let seeds = corpus.clone();
    for input in &seeds {
        execute(target, input, &mut stats)?;
    }
    for _ in 0..iterations {
        let base = m.below(corpus.len());
        let other = m.below(corpus.len());
        let input = target.mutate(&mut m, &corpus[base], &corpus[other]);
        // Accepted mutants join the corpus unless they shrank to a fraction of where they came
        // from: otherwise trivial inputs (an empty fault file is valid) crowd out deep ones.
        let keep = input.len() * 2 >= corpus[base].len() && input != corpus[base];
        if execute(target, &input, &mut stats)? == Verdict::Accepted && keep {
            if corpus.len() < MAX_CORPUS {
                corpus.push(input);
            } else {
                // Keep the seeds; replace an accepted mutant.
                let slot = seeds.len() + m.below(MAX_CORPUS - seeds.len());
                corpus[slot] = input;
            }
        }
        if every > 0 && stats.executions % every == 0 {
            stats.corpus = corpus.len();
            stats.elapsed = started.elapsed();
            progress(&stats);
        }
    }
    stats.corpus = corpus.len();
    stats.elapsed = started.elapsed();
    Ok(stats)
}

fn execute(
    target: &mut dyn Target,
    input: &[u8],
    stats: &mut Stats,
) -> Result<Verdict, Box<Crash>> {
    let verdict = catch_unwind(AssertUnwindSafe(|| target.execute(input))).map_err(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "a panic without a message".to_owned());
        Box::new(Crash {
            input: input.to_vec(),
            message,
            after: stats.executions,
        })
    })?;
    stats.executions += 1;
    if verdict == Verdict::Accepted {
        stats.accepted += 1;
    }
    Ok(verdict)
}

/// Every target by name (the token target starts an in-process fakes, hence the `Result`).
pub fn target(name: &str) -> anyhow::Result<Box<dyn Target>> {
    Ok(match name {
        "frame" => Box::new(targets::frame::FrameTarget),
        "request" => Box::new(targets::request::RequestTarget::new()),
        "faults" => Box::new(targets::faults::FaultsTarget),
        "scenario" => Box::new(targets::scenario::ScenarioTarget::new()?),
        "token" => Box::new(targets::token::TokenTarget::start()?),
        other => anyhow::bail!("unknown target {other}; targets: {}", TARGETS.join(", ")),
    })
}

/// The target names.
pub const TARGETS: &[&str] = &["frame", "request", "faults", "scenario", "token"];
