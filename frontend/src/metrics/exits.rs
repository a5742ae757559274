//! The last few worker exits of each pool, so that the status page can say why a worker went
//! away after it is gone.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::SystemTime;

use protocol::control::ExitReason;

/// Exits remembered per pool.
const KEPT_PER_POOL: usize = 16;

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct ExitRecord {
    pub worker: u64,
    /// `None` when the front end never saw the worker up (it restarted in between).
    pub pid: Option<u32>,
    pub reason: &'static str,
    pub requests_served: u64,
    pub lived_seconds: Option<f64>,
    /// Seconds since the Unix epoch.
    pub at: f64,
}

#[derive(Debug, Default)]
pub(crate) struct ExitLog {
    pools: Mutex<HashMap<String, VecDeque<ExitRecord>>>,
}

/// What the front end knew about a worker when it went away.
#[derive(Debug)]
pub(crate) struct ExitedWorker {
    pub worker: u64,
    pub pid: Option<u32>,
    pub requests_served: u64,
    pub lived_seconds: Option<f64>,
}

impl ExitLog {
    pub(crate) fn record(&self, pool: &str, exited: ExitedWorker, reason: ExitReason) {
        let at = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let mut pools = self.pools.lock().unwrap();
        let log = pools.entry(pool.to_string()).or_default();
        if log.len() == KEPT_PER_POOL {
            log.pop_front();
        }
        log.push_back(ExitRecord {
            worker: exited.worker,
            pid: exited.pid,
            reason: reason.as_str(),
            requests_served: exited.requests_served,
            lived_seconds: exited.lived_seconds,
            at,
        });
    }

    /// The pool's recent exits, newest first.
    pub(crate) fn recent(&self, pool: &str) -> Vec<ExitRecord> {
        self.pools
            .lock()
            .unwrap()
            .get(pool)
            .map(|log| log.iter().rev().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_exits_first_and_bounded() {
        let log = ExitLog::default();
        for worker in 0..20 {
            let exited = ExitedWorker {
                worker,
                pid: Some(100 + worker as u32),
                requests_served: 1,
                lived_seconds: Some(2.0),
            };
            log.record("php", exited, ExitReason::Crash);
        }
        let recent = log.recent("php");
        assert_eq!(recent.len(), KEPT_PER_POOL);
        assert_eq!(recent[0].worker, 19);
        assert_eq!(recent[0].reason, "crash");
        assert!(log.recent("other").is_empty());
    }
}
