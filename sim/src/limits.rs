//! The process's open-files limit: raising it to the hard limit at start, and how many players
//! it leaves room for.
//!
//! Every lobby socket and every in-flight matchmaking request is a file descriptor; with an
//! embedded target both ends live in this process. A run that cannot fit should be refused
//! before it fails half-way with "too many open files".

/// Descriptors kept for listeners, pools, files and the runtime.
pub const BASE_RESERVE: u64 = 256;
/// Extra descriptors per worker (its HTTP pool's idle connections).
pub const PER_WORKER_RESERVE: u64 = 64;

/// Raises the soft open-files limit to the hard limit; returns `(soft, hard)` after.
pub fn raise_open_files() -> std::io::Result<(u64, u64)> {
    let soft = rlimit::increase_nofile_limit(u64::MAX)?;
    let hard = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(soft, |(_, hard)| hard);
    Ok((soft, hard))
}

/// Sets the soft open-files limit to `soft` (at most the hard limit) instead of raising it:
/// a run that should meet the limit early, e.g. to test what it reports when it does. Returns
/// `(soft, hard)` after.
pub fn lower_open_files(soft: u64) -> std::io::Result<(u64, u64)> {
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    let soft = soft.min(hard);
    rlimit::setrlimit(rlimit::Resource::NOFILE, soft, hard)?;
    Ok((soft, hard))
}

/// The current soft open-files limit.
pub fn open_files_limit() -> Option<u64> {
    rlimit::getrlimit(rlimit::Resource::NOFILE)
        .ok()
        .map(|(soft, _)| soft)
}

/// Room for players under a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub limit: u64,
    pub reserve: u64,
    pub per_player: u64,
    /// Players that can search at the same time.
    pub players: u64,
}

/// How many players fit under `limit` when each costs `per_player` descriptors.
pub fn capacity(limit: u64, per_player: u64, workers: usize) -> Capacity {
    let reserve = BASE_RESERVE + PER_WORKER_RESERVE * workers as u64;
    let per_player = per_player.max(1);
    Capacity {
        limit,
        reserve,
        per_player,
        players: limit.saturating_sub(reserve) / per_player,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_leaves_a_reserve() {
        let c = capacity(20_000, 4, 8);
        assert_eq!(c.reserve, 256 + 512);
        assert_eq!(c.players, (20_000 - 768) / 4);
        assert_eq!(capacity(100, 2, 8).players, 0);
    }
}
