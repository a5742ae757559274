//! Per-pool supervision state: crash-loop backoff, the sizing ramp, the last demand report.
//!
//! A handler that dies right after starting (a missing extension, a broken ini file) must not turn
//! the master into a fork bomb. Each quick death doubles the respawn delay up to a cap; a worker that
//! stays up for [`HEALTHY_AFTER`] resets it. While the pool is failing, the front end answers its
//! requests with a fast 503 naming the reason instead of letting them queue.

use std::time::{Duration, Instant};

use protocol::control::{PoolLoad, WorkerId};

use crate::config::{PoolConfig, PoolMode, Sizing};
use crate::php_parent::PhpParent;
use crate::policy::{Ramp, Snapshot};

/// A worker that lived this long was healthy: its exit does not count as a crash-loop step.
pub(crate) const HEALTHY_AFTER: Duration = Duration::from_secs(1);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub(crate) struct Pool {
    pub config: PoolConfig,
    /// Consecutive quick deaths or failed spawns.
    pub failures: u32,
    /// No spawn before this instant (crash-loop backoff).
    pub hold_until: Option<Instant>,
    /// Why the pool cannot start workers, as shown to clients and operators.
    pub failing: Option<String>,
    pub ramp: Ramp,
    /// The front end's latest demand report.
    pub load: PoolLoad,
    /// The fixed worker id under which an external pool's socket is announced.
    pub external_id: Option<WorkerId>,
    /// Dropped by a reload: its workers retire and none are started.
    pub removed: bool,
    /// `builtin = "php"`: the warm parent that forks the workers, once started.
    pub php_parent: Option<PhpParent>,
    /// `builtin = "php"`: workers to start when the first parent is ready (the pool's initial
    /// workers, which cannot be forked before PHP has started).
    pub php_initial_workers: u32,
}

impl Pool {
    pub(crate) fn new(config: PoolConfig, external_id: Option<WorkerId>) -> Self {
        let mut pool = Self {
            config,
            failures: 0,
            hold_until: None,
            failing: None,
            ramp: Ramp::default(),
            load: PoolLoad::default(),
            external_id,
            removed: false,
            php_parent: None,
            php_initial_workers: 0,
        };
        if pool.config.builtin_php() {
            pool.php_initial_workers = pool.initial_workers();
        }
        pool
    }

    pub(crate) fn is_managed(&self) -> bool {
        self.config.mode != PoolMode::External && !self.removed
    }

    /// Workers to start when paddock starts (Apache's StartServers, php-fpm's start_servers).
    pub(crate) fn initial_workers(&self) -> u32 {
        match self.config.sizing {
            _ if !self.is_managed() => 0,
            Sizing::Static { workers } => workers,
            Sizing::Dynamic { start, .. } => start,
            Sizing::OnDemand { .. } => 0,
        }
    }

    pub(crate) fn is_held(&self, now: Instant) -> bool {
        self.hold_until.is_some_and(|t| now < t)
    }

    /// The policy's view of the pool, given how many of its workers are active (not retiring).
    pub(crate) fn snapshot(&self, active: u32) -> Snapshot {
        let load = &self.load;
        Snapshot {
            active,
            unreported: active.saturating_sub(load.workers_known),
            idle_slots: load.idle_slots,
            waiting: load.waiting,
            idle_workers: load
                .idle_workers
                .iter()
                .map(|&(worker, ms)| (worker, Duration::from_millis(ms)))
                .collect(),
        }
    }

    /// Records a worker exit (or a failed spawn, with `lived` zero) and returns the backoff applied.
    pub(crate) fn record_exit(&mut self, lived: Duration, now: Instant) -> Option<Duration> {
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
    pub(crate) fn record_healthy(&mut self) {
        self.failures = 0;
        self.hold_until = None;
    }
}

/// 100 ms, 200 ms, 400 ms … capped at 30 s.
pub(crate) fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    (FIRST_BACKOFF * 2u32.pow(doublings)).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(5), Duration::from_millis(1600));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
