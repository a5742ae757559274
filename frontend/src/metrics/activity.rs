//! What each worker is doing, for the status page and the per-state worker gauges: the requests
//! running on its slots (method, path, since when), how many it has served, its RSS as last
//! reported by the master, and its age.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use http::Method;
use protocol::fcgi::RequestUsage;

/// A worker counts as starting during its first second unless it has already served: the front
/// end cannot see inside the process, and the master announces it as soon as it is spawned
/// (its socket is bound before the program runs, so early requests simply wait in the backlog).
/// The same second is the master's "healthy after" mark for crash-loop detection. A worker that
/// said it was ready (`readiness = "notify"`) is announced only then, and is not starting.
pub(crate) const STARTING_FOR: Duration = Duration::from_secs(1);

/// The state of one worker as shown by `/status` and `paddock_pool_workers{state}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WorkerState {
    Starting,
    Idle,
    Busy,
    /// No longer handed requests (killed after a timeout, unreachable, or being retired) but not
    /// yet reported gone by the master.
    Retiring,
}

impl WorkerState {
    pub(crate) const ALL: [WorkerState; 4] = [
        WorkerState::Starting,
        WorkerState::Idle,
        WorkerState::Busy,
        WorkerState::Retiring,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            WorkerState::Starting => "starting",
            WorkerState::Idle => "idle",
            WorkerState::Busy => "busy",
            WorkerState::Retiring => "retiring",
        }
    }

    /// One character per worker in the scoreboard line (in the spirit of Apache's mod_status).
    pub(crate) fn symbol(self) -> char {
        match self {
            WorkerState::Starting => 'S',
            WorkerState::Idle => '_',
            WorkerState::Busy => 'W',
            WorkerState::Retiring => 'R',
        }
    }
}

/// Live figures of one worker.
#[derive(Debug)]
pub(crate) struct WorkerActivity {
    pub slots: u32,
    started: Instant,
    started_at: SystemTime,
    served: AtomicU64,
    /// Announced after it said it was ready (`readiness = "notify"`): never shown as starting.
    said_ready: AtomicBool,
    /// 0 until the master reports it.
    rss_bytes: AtomicU64,
    /// The CPU the master pinned the worker to, as announced; unset for none.
    cpu: OnceLock<u32>,
    next_token: AtomicU64,
    running: Mutex<Vec<RunningRequest>>,
    /// What its last request cost, if the worker reports it.
    last_usage: Mutex<Option<RequestUsage>>,
}

#[derive(Debug, Clone)]
struct RunningRequest {
    token: u64,
    request_id: String,
    method: Method,
    path: String,
    since: Instant,
}

/// A request running on a worker, as the status page shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct RunningView {
    pub request_id: String,
    pub method: String,
    /// The URL path without the query string (which may carry secrets).
    pub path: String,
    pub age_seconds: f64,
    /// CPU seconds used so far, for workers that report what their requests cost.
    pub cpu_seconds: Option<f64>,
}

impl WorkerActivity {
    pub(crate) fn new(slots: u32) -> Self {
        Self {
            slots,
            started: Instant::now(),
            started_at: SystemTime::now(),
            served: AtomicU64::new(0),
            said_ready: AtomicBool::new(false),
            rss_bytes: AtomicU64::new(0),
            cpu: OnceLock::new(),
            next_token: AtomicU64::new(0),
            running: Mutex::new(Vec::new()),
            last_usage: Mutex::new(None),
        }
    }

    /// Records a request on one of the worker's slots; `finish` takes the token back.
    pub(crate) fn begin(&self, request_id: &str, method: &Method, path: &str) -> u64 {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        self.running.lock().unwrap().push(RunningRequest {
            token,
            request_id: request_id.to_string(),
            method: method.clone(),
            path: path.to_string(),
            since: Instant::now(),
        });
        token
    }

    pub(crate) fn finish(&self, token: u64) {
        self.running.lock().unwrap().retain(|r| r.token != token);
        self.served.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set_rss(&self, bytes: u64) {
        self.rss_bytes.store(bytes, Ordering::Relaxed);
    }

    pub(crate) fn rss_bytes(&self) -> Option<u64> {
        Some(self.rss_bytes.load(Ordering::Relaxed)).filter(|&b| b > 0)
    }

    /// Records the CPU the master announced with the worker; a worker keeps its CPU for life.
    pub(crate) fn set_cpu(&self, cpu: u32) {
        let _ = self.cpu.set(cpu);
    }

    /// The CPU the master pinned the worker to, if it did (`cpu_affinity = "spread"`).
    pub(crate) fn cpu(&self) -> Option<u32> {
        self.cpu.get().copied()
    }

    pub(crate) fn set_last_usage(&self, usage: RequestUsage) {
        *self.last_usage.lock().unwrap() = Some(usage);
    }

    pub(crate) fn last_usage(&self) -> Option<RequestUsage> {
        *self.last_usage.lock().unwrap()
    }

    pub(crate) fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    pub(crate) fn age(&self) -> Duration {
        self.started.elapsed()
    }

    pub(crate) fn started_at(&self) -> SystemTime {
        self.started_at
    }

    pub(crate) fn busy_slots(&self) -> u32 {
        self.running.lock().unwrap().len() as u32
    }

    pub(crate) fn running(&self) -> Vec<RunningView> {
        let now = Instant::now();
        self.running
            .lock()
            .unwrap()
            .iter()
            .map(|r| RunningView {
                request_id: r.request_id.clone(),
                method: r.method.to_string(),
                path: r.path.clone(),
                age_seconds: now.saturating_duration_since(r.since).as_secs_f64(),
                cpu_seconds: None,
            })
            .collect()
    }

    /// The worker said it was ready before it was announced: it is not starting.
    pub(crate) fn mark_ready(&self) {
        self.said_ready.store(true, Ordering::Relaxed);
    }

    pub(crate) fn state(&self, alive: bool) -> WorkerState {
        if !alive {
            WorkerState::Retiring
        } else if self.busy_slots() > 0 {
            WorkerState::Busy
        } else if self.served() == 0
            && self.age() < STARTING_FOR
            && !self.said_ready.load(Ordering::Relaxed)
        {
            WorkerState::Starting
        } else {
            WorkerState::Idle
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_makes_the_worker_busy_then_counts_as_served() {
        let activity = WorkerActivity::new(1);
        assert_eq!(activity.state(true), WorkerState::Starting);
        let token = activity.begin("abc-1", &Method::POST, "/form.php");
        assert_eq!(activity.state(true), WorkerState::Busy);
        let running = activity.running();
        assert_eq!(running.len(), 1);
        assert_eq!(running[0].method, "POST");
        assert_eq!(running[0].path, "/form.php");
        activity.finish(token);
        assert_eq!(activity.served(), 1);
        assert_eq!(activity.state(true), WorkerState::Idle);
        assert_eq!(activity.state(false), WorkerState::Retiring);
    }

    #[test]
    fn a_worker_that_said_it_was_ready_is_idle_at_once() {
        let activity = WorkerActivity::new(8);
        activity.mark_ready();
        assert_eq!(activity.state(true), WorkerState::Idle);
    }

    #[test]
    fn rss_is_unknown_until_reported() {
        let activity = WorkerActivity::new(1);
        assert_eq!(activity.rss_bytes(), None);
        activity.set_rss(12 << 20);
        assert_eq!(activity.rss_bytes(), Some(12 << 20));
    }
}
