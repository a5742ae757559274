//! Per-pool supervision state: how many workers run, and the crash-loop backoff.
//!
//! A handler that dies right after starting (a missing extension, a broken ini file) must not turn
//! the master into a fork bomb. Each quick death doubles the respawn delay up to a cap; a worker that
//! stays up for [`HEALTHY_AFTER`] resets it. While the pool is failing, the front end answers its
//! requests with a fast 503 naming the reason instead of letting them queue.

use std::time::{Duration, Instant};

use crate::config::PoolConfig;

/// A worker that lived this long was healthy: its exit does not count as a crash-loop step.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(1);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Pool {
    pub config: PoolConfig,
    /// Workers started and not yet reaped.
    pub live: u32,
    /// Consecutive quick deaths or failed spawns.
    pub failures: u32,
    /// No spawn before this instant (crash-loop backoff).
    pub hold_until: Option<Instant>,
    /// Why the pool cannot start workers, as shown to clients and operators.
    pub failing: Option<String>,
}

impl Pool {
    pub fn new(config: PoolConfig) -> Self {
        Self {
            config,
            live: 0,
            failures: 0,
            hold_until: None,
            failing: None,
        }
    }

    /// How many workers to start now.
    pub fn spawns_due(&self, now: Instant) -> u32 {
        if self.hold_until.is_some_and(|t| now < t) {
            return 0;
        }
        self.config.workers.saturating_sub(self.live)
    }

    /// Records a worker exit (or a failed spawn, with `lived` zero) and returns the backoff applied.
    pub fn record_exit(&mut self, lived: Duration, now: Instant) -> Option<Duration> {
        if lived >= HEALTHY_AFTER {
            self.failures = 0;
            self.hold_until = None;
            return None;
        }
        self.failures = self.failures.saturating_add(1);
        let delay = backoff(self.failures);
        self.hold_until = Some(now + delay);
        Some(delay)
    }

    /// A worker has been up long enough to count as healthy.
    pub fn record_healthy(&mut self) {
        self.failures = 0;
        self.hold_until = None;
    }
}

/// 100 ms, 200 ms, 400 ms … capped at 30 s.
pub fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    (FIRST_BACKOFF * 2u32.pow(doublings)).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PoolMode;

    fn pool(workers: u32) -> Pool {
        Pool::new(PoolConfig {
            name: "php".into(),
            mode: PoolMode::Prefork,
            command: vec!["php-cgi".into()],
            workers,
            slots_per_worker: 1,
            working_directory: None,
            env: Default::default(),
        })
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(5), Duration::from_millis(1600));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[test]
    fn quick_deaths_hold_spawning_and_healthy_exit_resets() {
        let now = Instant::now();
        let mut pool = pool(2);
        assert_eq!(pool.spawns_due(now), 2);
        pool.live = 1;
        assert_eq!(
            pool.record_exit(Duration::ZERO, now),
            Some(Duration::from_millis(100))
        );
        pool.live = 0;
        assert_eq!(pool.spawns_due(now), 0);
        assert_eq!(pool.spawns_due(now + Duration::from_millis(100)), 2);
        assert_eq!(
            pool.record_exit(Duration::from_millis(5), now),
            Some(Duration::from_millis(200))
        );
        assert_eq!(pool.record_exit(Duration::from_secs(10), now), None);
        assert_eq!(pool.failures, 0);
        assert_eq!(pool.spawns_due(now), 2);
    }
}
