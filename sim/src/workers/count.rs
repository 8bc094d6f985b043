//! How many worker processes a plan needs: the players it may hold at once against what one
//! process's open-files limit leaves room for ([`crate::limits`]).
//!
//! One process (everything in `sim run`, today's behaviour) whenever the plan fits; otherwise
//! enough workers that each holds its share with two descriptors per player (its lobby socket
//! and matchmaking request — the servers' ends live in the parent or elsewhere).

use crate::limits;
use crate::scenario::{ArrivalPlan, Plan, TargetPlan};

/// Most workers `sim run` starts on its own.
pub const MAX_AUTO_WORKERS: usize = 64;

/// Descriptors one searching player costs a worker (lobby socket, matchmaking request).
pub const WORKER_FDS_PER_PLAYER: u64 = 2;

/// Players the plan may hold at the same time: a closed model's population; for an open
/// model, the peak arrival rate times the longest a search may last (the request timeout).
pub fn peak_players(plan: &Plan) -> u64 {
    match &plan.population.arrival {
        ArrivalPlan::Closed { players, .. } => u64::from(*players),
        ArrivalPlan::Open { profile, .. } => {
            let per_second = profile.peak() * plan.mean_party_size();
            let held = per_second * plan.population.behaviour.request_timeout.as_secs_f64();
            held.ceil().max(0.0) as u64
        }
    }
}

/// The number of processes for `plan` under an open-files `limit` (the same for every
/// process): 1 when it fits in one, else enough workers at [`WORKER_FDS_PER_PLAYER`] each.
pub fn workers_for(plan: &Plan, limit: u64) -> usize {
    let peak = peak_players(plan);
    let in_process = match plan.target {
        TargetPlan::Embedded(_) => 4,
        TargetPlan::Urls(_) => 2,
    };
    if peak <= limits::capacity(limit, in_process, plan.run.workers).players {
        return 1;
    }
    let each = limits::capacity(limit, WORKER_FDS_PER_PLAYER, plan.run.workers)
        .players
        .max(1);
    usize::try_from(peak.div_ceil(each))
        .unwrap_or(MAX_AUTO_WORKERS)
        .clamp(2, MAX_AUTO_WORKERS)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn plan(text: &str) -> Plan {
        Plan::parse(text, "t.toml", Path::new(".")).expect("valid")
    }

    #[test]
    fn small_plans_stay_in_one_process() {
        let smoke = plan(
            "version = 1\n[run]\nduration = \"8s\"\nworkers = 4\n[population]\narrival = { kind = \"constant\", rate = 20 }\n[population.behaviour]\nrequest_timeout = \"15s\"\n",
        );
        assert_eq!(peak_players(&smoke), 300);
        assert_eq!(workers_for(&smoke, 20_000), 1);
    }

    #[test]
    fn large_closed_plans_split_by_the_limit() {
        let big = plan(
            "version = 1\n[run]\nduration = \"60s\"\nworkers = 8\n[population]\narrival = { kind = \"closed\", players = 40000 }\n",
        );
        assert_eq!(peak_players(&big), 40_000);
        // (20000 - 256 - 8 * 64) / 2 = 9616 players per worker.
        assert_eq!(workers_for(&big, 20_000), 5);
        // 12000 embedded players do not fit one process at 4 descriptors each.
        let capacity = plan(
            "version = 1\n[run]\nduration = \"60s\"\nworkers = 8\n[population]\narrival = { kind = \"closed\", players = 12000 }\n",
        );
        assert_eq!(workers_for(&capacity, 20_000), 2);
        assert_eq!(workers_for(&capacity, 1_000_000), 1);
    }
}
