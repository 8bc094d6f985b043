//! Time as the matchmaker sees it: wall-clock milliseconds since the Unix epoch.
//!
//! Owns [`UnixMillis`] and the [`Clock`] trait. Enqueue times and lease deadlines cross replicas
//! (they live in Redis), so they are wall-clock values, not `Instant`s; every replica must keep its
//! clock within a small skew of the others (NTP), much smaller than a lease.
//!
//! Nothing below the engine reads the time itself: the engine asks its injected [`Clock`] and
//! passes `now` down, so matching rules and stores are deterministic under test.
//! [`TokioClock`] follows tokio's (pausable) clock, which lets `#[tokio::test(start_paused = true)]`
//! drive widening windows, timeouts and leases without sleeping.

use std::fmt;
use std::ops::Add;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixMillis(pub u64);

impl UnixMillis {
    /// The raw millisecond count.
    pub fn as_millis(self) -> u64 {
        self.0
    }

    /// How long ago `earlier` was, as seen from `self`; zero if `earlier` is in the future.
    pub fn since(self, earlier: UnixMillis) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for UnixMillis {
    type Output = UnixMillis;

    fn add(self, rhs: Duration) -> UnixMillis {
        let ms = u64::try_from(rhs.as_millis()).unwrap_or(u64::MAX);
        UnixMillis(self.0.saturating_add(ms))
    }
}

impl fmt::Display for UnixMillis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// A source of wall-clock time.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> UnixMillis;
}

/// The operating system's wall clock: what services use.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixMillis {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        UnixMillis(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
    }
}

/// Wall time that advances with tokio's clock: a fixed wall-clock origin plus the tokio time
/// elapsed since the clock was made. Under a paused runtime it jumps exactly as tokio's timers do.
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    origin: UnixMillis,
    started: tokio::time::Instant,
}

impl TokioClock {
    /// Starts at `origin` now (must be called inside a tokio runtime).
    pub fn starting_at(origin: UnixMillis) -> Self {
        TokioClock {
            origin,
            started: tokio::time::Instant::now(),
        }
    }

    /// Starts at the system's current wall-clock time.
    pub fn new() -> Self {
        Self::starting_at(SystemClock.now())
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> UnixMillis {
        self.origin + self.started.elapsed()
    }
}

/// A clock that moves only when told to: for tests that step time by hand.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock reading `at`.
    pub fn new(at: UnixMillis) -> Self {
        ManualClock(AtomicU64::new(at.0))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the clock to `at`.
    pub fn set(&self, at: UnixMillis) {
        self.0.store(at.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixMillis {
        UnixMillis(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(UnixMillis(5).since(UnixMillis(9)), Duration::ZERO);
        assert_eq!(UnixMillis(9).since(UnixMillis(5)), Duration::from_millis(4));
        assert_eq!(
            UnixMillis(u64::MAX) + Duration::from_secs(1),
            UnixMillis(u64::MAX)
        );
        assert_eq!(
            UnixMillis(1_000) + Duration::from_millis(1_500),
            UnixMillis(2_500)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let clock = TokioClock::starting_at(UnixMillis(1_000));
        assert_eq!(clock.now(), UnixMillis(1_000));
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        assert_eq!(clock.now(), UnixMillis(3_500));
    }

    #[test]
    fn manual_clock_moves_when_told() {
        let clock = ManualClock::new(UnixMillis(10));
        clock.advance(Duration::from_millis(5));
        assert_eq!(clock.now(), UnixMillis(15));
        clock.set(UnixMillis(1));
        assert_eq!(clock.now(), UnixMillis(1));
    }
}
