//! A snapshot of every pool and worker: what `/status` shows (HTML and JSON) and what the pool
//! gauges of `/metrics` are set from, so that both always agree.

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime};

use super::activity::{RunningView, WorkerActivity, WorkerState};
use super::exits::ExitRecord;
use super::Metrics;

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct StatusReport {
    pub version: &'static str,
    /// The front end's pid (the process that serves this page).
    pub pid: u32,
    pub uptime_seconds: f64,
    /// Seconds since the Unix epoch.
    pub started_at: f64,
    pub pools: Vec<PoolReport>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct PoolReport {
    pub name: String,
    /// Worker processes known to the front end, retiring ones included.
    pub workers: usize,
    /// Workers by state: `starting`, `idle`, `busy`, `retiring`.
    pub states: BTreeMap<&'static str, usize>,
    /// One character per worker: `S` starting, `_` idle, `W` busy, `R` retiring.
    pub scoreboard: String,
    /// Slots of live workers.
    pub total_slots: u64,
    pub busy_slots: u64,
    pub idle_slots: usize,
    /// Requests waiting in the queue now.
    pub waiting: usize,
    /// Requests sent ahead to a busy worker (`send_ahead`), waiting in its socket now.
    pub sent_ahead: usize,
    pub queue_max: usize,
    pub queue_timeout_ms: u64,
    pub request_timeout_ms: u64,
    /// Why the pool cannot serve (crash loop, missing command), if it cannot.
    pub failing: Option<String>,
    /// The pool has a live worker and can take requests.
    pub ready: bool,
    /// Requests completed by the workers listed below.
    pub requests_served: u64,
    pub last_exit_reason: Option<&'static str>,
    pub processes: Vec<WorkerReport>,
    /// The last worker exits, newest first.
    pub recent_exits: Vec<ExitRecord>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct WorkerReport {
    pub worker: u64,
    pub pid: u32,
    pub state: WorkerState,
    pub requests_served: u64,
    pub slots: u32,
    pub busy_slots: u32,
    /// Resident memory as last measured by the master; `None` until it reports.
    pub rss_bytes: Option<u64>,
    /// The CPU it is pinned to (`cpu_affinity = "spread"`); `None` when it runs on any.
    pub cpu: Option<u32>,
    pub age_seconds: f64,
    /// Seconds since the Unix epoch.
    pub started_at: f64,
    /// The requests running on its slots (at most one for a prefork worker).
    pub current: Vec<RunningView>,
    /// What its last request cost, for workers that report it (paddock's own PHP worker).
    pub last_request: Option<LastRequestView>,
}

/// A worker loading its application (`readiness = "notify"`), not yet known to the dispatcher.
#[derive(Debug, Clone)]
pub(crate) struct LoadingWorker {
    pub pool: String,
    pub pid: u32,
    since: Instant,
    since_at: SystemTime,
}

impl LoadingWorker {
    pub(crate) fn new(pool: String, pid: u32) -> Self {
        Self {
            pool,
            pid,
            since: Instant::now(),
            since_at: SystemTime::now(),
        }
    }
}

/// What a worker's last request cost.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct LastRequestView {
    pub cpu_seconds: f64,
    pub peak_memory_bytes: u64,
}

fn epoch_seconds(at: SystemTime) -> f64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl WorkerReport {
    /// One worker's line: who it is and whether it takes new requests (the dispatcher knows), the
    /// rest from its live figures.
    pub(crate) fn new(worker: u64, pid: u32, usable: bool, activity: &WorkerActivity) -> Self {
        let a = activity;
        let last = a.last_usage();
        let mut current = a.running();
        // A prefork worker runs one request at a time: the process's CPU clock is that request's.
        if let [running] = current.as_mut_slice() {
            running.cpu_seconds = super::usage::running_cpu_seconds(pid, last);
        }
        WorkerReport {
            worker,
            pid,
            state: a.state(usable),
            requests_served: a.served(),
            slots: a.slots,
            busy_slots: a.busy_slots(),
            rss_bytes: a.rss_bytes(),
            cpu: a.cpu(),
            age_seconds: a.age().as_secs_f64(),
            started_at: epoch_seconds(a.started_at()),
            current,
            last_request: last.map(|usage| LastRequestView {
                cpu_seconds: usage.cpu_us as f64 / 1e6,
                peak_memory_bytes: usage.peak_memory_bytes,
            }),
        }
    }
}

impl WorkerReport {
    /// A loading worker's line: starting, no slot yet.
    pub(crate) fn loading(worker: u64, loading: &LoadingWorker) -> Self {
        WorkerReport {
            worker,
            pid: loading.pid,
            state: WorkerState::Starting,
            requests_served: 0,
            slots: 0,
            busy_slots: 0,
            rss_bytes: None,
            cpu: None,
            age_seconds: loading.since.elapsed().as_secs_f64(),
            started_at: epoch_seconds(loading.since_at),
            current: Vec::new(),
            last_request: None,
        }
    }
}

/// What the dispatcher knows of one pool, for its line of the report (the rest is summed from
/// its workers' lines and the exit log).
#[derive(Debug, Clone)]
pub(crate) struct PoolFigures {
    pub name: String,
    pub idle_slots: usize,
    pub waiting: usize,
    pub sent_ahead: usize,
    pub queue_max: usize,
    pub queue_timeout_ms: u64,
    pub request_timeout_ms: u64,
    pub ready: bool,
    pub failing: Option<String>,
}

impl Metrics {
    /// The report of `pools` (each with its workers' lines, in any order), with this process's
    /// figures and each pool's recent exits.
    pub(crate) fn status_report(
        &self,
        pools: impl IntoIterator<Item = (PoolFigures, Vec<WorkerReport>)>,
    ) -> StatusReport {
        let mut pools: Vec<PoolReport> = pools
            .into_iter()
            .map(|(figures, mut processes)| {
                processes.sort_by_key(|w| w.worker);
                let mut states: BTreeMap<&'static str, usize> =
                    WorkerState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
                for w in &processes {
                    *states.entry(w.state.as_str()).or_default() += 1;
                }
                let live = || {
                    processes
                        .iter()
                        .filter(|w| w.state != WorkerState::Retiring)
                };
                let recent_exits = self.exit_log.recent(&figures.name);
                PoolReport {
                    name: figures.name,
                    workers: processes.len(),
                    scoreboard: processes.iter().map(|w| w.state.symbol()).collect(),
                    total_slots: live().map(|w| u64::from(w.slots)).sum(),
                    busy_slots: live().map(|w| u64::from(w.busy_slots)).sum(),
                    idle_slots: figures.idle_slots,
                    waiting: figures.waiting,
                    sent_ahead: figures.sent_ahead,
                    queue_max: figures.queue_max,
                    queue_timeout_ms: figures.queue_timeout_ms,
                    request_timeout_ms: figures.request_timeout_ms,
                    ready: figures.ready,
                    failing: figures.failing,
                    requests_served: processes.iter().map(|w| w.requests_served).sum(),
                    last_exit_reason: recent_exits.first().map(|e| e.reason),
                    states,
                    processes,
                    recent_exits,
                }
            })
            .collect();
        pools.sort_by(|a, b| a.name.cmp(&b.name));
        StatusReport {
            version: env!("CARGO_PKG_VERSION"),
            pid: std::process::id(),
            uptime_seconds: self.uptime().as_secs_f64(),
            started_at: epoch_seconds(self.started_at()),
            pools,
        }
    }
}

impl StatusReport {
    /// Pools that cannot take requests now, with the reason.
    pub(crate) fn not_ready(&self) -> Vec<String> {
        self.pools
            .iter()
            .filter(|p| !p.ready)
            .map(|p| match &p.failing {
                Some(reason) => format!("{}: {reason}", p.name),
                None => format!("{}: no live worker", p.name),
            })
            .collect()
    }
}
