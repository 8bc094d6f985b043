//! `matchbench-fuzz <target> [--iterations N] [--seed S]`: runs one fuzz target, prints its
//! progress and figures, and on a panic writes the input to `fuzz-crash-<target>.bin` and exits
//! with status 1. See `docs/fuzzing.md`.

use std::process::ExitCode;

use clap::Parser;

/// Mutation fuzzing of matchbench's parsers and token validator.
#[derive(Debug, Parser)]
#[command(name = "matchbench-fuzz")]
struct Args {
    /// frame, request, faults, scenario or token.
    target: String,
    /// Mutated inputs to run (each seed runs once more on top).
    #[arg(long, default_value_t = 1_000_000)]
    iterations: u64,
    /// Seed of the mutation stream (a run is repeatable from it).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print a progress line every this many executions (0: never).
    #[arg(long, default_value_t = 1_000_000)]
    every: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut target = match fuzz::target(&args.target) {
        Ok(target) => target,
        Err(e) => {
            eprintln!("matchbench-fuzz: {e:#}");
            return ExitCode::from(2);
        }
    };
    let seeds = target.seeds();
    let accepted = seeds
        .iter()
        .filter(|s| target.execute(s) == fuzz::Verdict::Accepted)
        .count();
    println!(
        "{}: {} seeds ({accepted} accepted), {} mutated inputs, seed {}",
        args.target,
        seeds.len(),
        args.iterations,
        args.seed
    );
    let result = fuzz::run(
        target.as_mut(),
        args.iterations,
        args.seed,
        args.every,
        &mut |s| {
            println!(
                "  {:>12} executions  {:>8.1}s  {:>9.0}/s  accepted {}  corpus {}",
                s.executions,
                s.elapsed.as_secs_f64(),
                s.executions as f64 / s.elapsed.as_secs_f64().max(1e-9),
                s.accepted,
                s.corpus
            );
        },
    );
    match result {
        Ok(s) => {
            println!(
                "{}: {} executions in {:.1}s ({:.0}/s), no panic; {} accepted, corpus {}",
                args.target,
                s.executions,
                s.elapsed.as_secs_f64(),
                s.executions as f64 / s.elapsed.as_secs_f64().max(1e-9),
                s.accepted,
                s.corpus
            );
            ExitCode::SUCCESS
        }
        Err(crash) => {
            let path = format!("fuzz-crash-{}.bin", args.target);
            let saved = std::fs::write(&path, &crash.input).is_ok();
            eprintln!(
                "{}: PANIC after {} executions: {}\n  input ({} bytes{}): {:?}",
                args.target,
                crash.after,
                crash.message,
                crash.input.len(),
                if saved {
                    format!(", saved to {path}")
                } else {
                    String::new()
                },
                String::from_utf8_lossy(&crash.input)
            );
            ExitCode::FAILURE
        }
    }
}
