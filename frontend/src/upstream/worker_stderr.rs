//! FCGI_STDERR from workers into the log, rate-limited per pool.
//!
//! A worker may write any amount to its FastCGI stderr stream (a runaway debug loop, or a hostile
//! application writing 100 MiB). Each line is cut at [`MAX_LINE`] bytes, and each pool may log
//! [`BURST`] bytes at once and then [`PER_SECOND`] bytes a second; what is left out is counted and
//! reported in one line when the request ends. Reading the stream goes on at full speed either
//! way: the worker is never slowed down by the log.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use protocol::log_budget::LogBudget;
use tracing::warn;

/// Longest line logged; the rest of a longer line is dropped.
const MAX_LINE: usize = 4096;
/// Bytes a pool may log at once.
const BURST: u64 = 256 * 1024;
/// Bytes a pool may log per second after the burst.
const PER_SECOND: u64 = 64 * 1024;

/// One budget per pool, shared by all of the pool's requests.
fn budgets() -> &'static Mutex<HashMap<String, LogBudget>> {
    static BUDGETS: OnceLock<Mutex<HashMap<String, LogBudget>>> = OnceLock::new();
    BUDGETS.get_or_init(Default::default)
}

/// The stderr of one request; reports what the rate limit left out when dropped.
#[derive(Debug)]
pub(crate) struct WorkerStderr<'a> {
    pool: &'a str,
    pid: u32,
    request_id: &'a str,
    dropped: u64,
}

impl<'a> WorkerStderr<'a> {
    pub(crate) fn new(pool: &'a str, pid: u32, request_id: &'a str) -> Self {
        Self {
            pool,
            pid,
            request_id,
            dropped: 0,
        }
    }

    /// Logs the lines of one FCGI_STDERR record (within the pool's budget).
    ///
    /// The pool's budget is looked up once per record, not per line: a flood of short lines
    /// (100 MiB is 2.6 million of them) must cost the front end a scan, not a lock and a map
    /// lookup each, or the flooding request itself would run into its deadline.
    pub(crate) fn write(&mut self, content: &[u8]) {
        let lines = content
            .split(|&b| b == b'\n')
            .map(|line| &line[..line.len().min(MAX_LINE)])
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
            .filter(|line| !line.is_empty());
        // Decided under the lock, logged after it: writing the log may block, and other pools'
        // workers must not wait for that.
        let mut allowed = Vec::new();
        {
            let now = Instant::now();
            let mut budgets = budgets().lock().unwrap_or_else(|e| e.into_inner());
            let budget = match budgets.get_mut(self.pool) {
                Some(budget) => budget,
                None => budgets
                    .entry(self.pool.to_string())
                    .or_insert_with(|| LogBudget::new(BURST, PER_SECOND)),
            };
            for line in lines {
                if budget.allow(line.len() as u64, now) {
                    allowed.push(line);
                } else {
                    self.dropped += line.len() as u64;
                }
            }
        }
        for line in allowed {
            warn!(target: "paddock::worker", pool = self.pool, pid = self.pid,
                request_id = self.request_id, "{}", String::from_utf8_lossy(line));
        }
    }
}

impl Drop for WorkerStderr<'_> {
    fn drop(&mut self) {
        if self.dropped > 0 {
            warn!(target: "paddock::worker", pool = self.pool, pid = self.pid,
                request_id = self.request_id, dropped_bytes = self.dropped,
                "worker stderr rate-limited: {} bytes not logged", self.dropped);
        }
    }
}
