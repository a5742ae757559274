//! The control messages: master → front end ([`ToFrontend`]) and front end → master
//! ([`ToMaster`]), with the values they carry.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::FrontendSpec;

/// Identifies one worker process for the lifetime of the master (never reused).
pub type WorkerId = u64;

/// Master → front end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToFrontend {
    /// The complete front-end configuration. Always the first message.
    Configure(Box<FrontendSpec>),
    /// A worker is listening on `socket` and can take `slots` concurrent requests.
    WorkerUp {
        pool: String,
        worker: WorkerId,
        pid: u32,
        socket: PathBuf,
        slots: u32,
        /// For a worker that said when it was ready (`readiness = "notify"`), the time from its
        /// start to its `READY=1`, in ms; `None` otherwise, and when a worker is announced again
        /// to a restarted front end.
        ready_after_ms: Option<u64>,
        /// The CPU the master pinned it to (`cpu_affinity = "spread"`); `None` when it runs on
        /// any. Absent from a message of a build before it: `None`.
        #[serde(default)]
        cpu: Option<u32>,
    },
    /// A worker of a `readiness = "notify"` pool was started and loads its application: shown on
    /// `/status` as starting, given no request. `WorkerUp` (once it says it is ready) or
    /// `WorkerDown` follows.
    WorkerLoading {
        pool: String,
        worker: WorkerId,
        pid: u32,
    },
    /// A worker is gone (exited, killed or retired); its slots must not be used again.
    WorkerDown {
        pool: String,
        worker: WorkerId,
        reason: ExitReason,
    },
    /// Periodic per-worker figures only the master can measure.
    WorkerStats {
        pool: String,
        worker: WorkerId,
        rss_bytes: u64,
    },
    /// Whether the pool can start workers. While `failing` is set and no worker is up, requests
    /// for the pool get a fast 503 carrying the reason instead of waiting in the queue.
    PoolStatus {
        pool: String,
        failing: Option<String>,
    },
    /// Retire this worker gracefully: hand it no new request, and answer with
    /// [`ToMaster::Drained`] once it has none in flight.
    Retire {
        pool: String,
        worker: WorkerId,
        reason: ExitReason,
    },
    /// A configuration reload was attempted (for the reload counters); a successful one is
    /// preceded by a new [`ToFrontend::Configure`].
    ReloadOutcome { success: bool },
    /// The pool wanted more workers than its maximum while requests waited (once per episode).
    MaxWorkersReached { pool: String },
    /// Stop accepting, finish in-flight requests within `deadline_ms` (0 = drop everything now).
    Shutdown { deadline_ms: u64 },
    /// Close and reopen the access log file (SIGUSR1, after logrotate moved it).
    ReopenLogs,
    /// Load every listener's certificate files again (SIGHUP). Open connections keep the
    /// certificate they were handshaken with; a file that does not load leaves the old one in use.
    ReloadCertificates,
}

/// Why a worker process ended: a bounded label set for metrics and the status page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    /// Died on its own without being asked (signal, non-zero exit, unexpected exit).
    Crash,
    /// Exited on its own after its request limit (php-cgi's PHP_FCGI_MAX_REQUESTS), or was
    /// recycled by paddock after `max_requests`.
    MaxRequests,
    /// Retired after sitting idle.
    Idle,
    /// Recycled for using too much memory.
    Memory,
    /// Recycled after its maximum lifetime.
    Lifetime,
    /// Killed because a request overran its deadline.
    TimeoutKill,
    /// Replaced by a config reload.
    Reload,
    /// Stopped because paddock is stopping.
    Shutdown,
}

impl ExitReason {
    pub const ALL: [ExitReason; 8] = [
        ExitReason::Crash,
        ExitReason::MaxRequests,
        ExitReason::Idle,
        ExitReason::Memory,
        ExitReason::Lifetime,
        ExitReason::TimeoutKill,
        ExitReason::Reload,
        ExitReason::Shutdown,
    ];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::Crash => "crash",
            ExitReason::MaxRequests => "max_requests",
            ExitReason::Idle => "idle",
            ExitReason::Memory => "memory",
            ExitReason::Lifetime => "lifetime",
            ExitReason::TimeoutKill => "timeout_kill",
            ExitReason::Reload => "reload",
            ExitReason::Shutdown => "shutdown",
        }
    }
}

/// Front end → master.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToMaster {
    /// The front end has taken its listeners and is serving.
    Ready,
    /// The demand a pool sees, sent when it changes (coalesced) and at once when a request has
    /// to wait for a slot, so the master can size the pool.
    PoolLoad(PoolLoad),
    /// The front end retired this worker (it reached `max_requests`): it takes no new request,
    /// and [`ToMaster::Drained`] follows once its last ones are done. Sent as its last request
    /// starts, so that the master can start its successor meanwhile.
    Retiring {
        pool: String,
        worker: WorkerId,
        reason: ExitReason,
    },
    /// This retiring worker has no request in flight any more: stop it.
    Drained {
        pool: String,
        worker: WorkerId,
        reason: ExitReason,
    },
    /// Kill this worker (it overran its request deadline or broke the protocol) and replace it.
    KillWorker {
        pool: String,
        worker: WorkerId,
        reason: KillReason,
    },
}

/// One pool's demand as the front end sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolLoad {
    pub pool: String,
    /// Workers the front end knows of (to tell which spawned workers it has not seen yet).
    pub workers_known: u32,
    /// Free slots on workers that are not retiring.
    pub idle_slots: u32,
    pub busy_slots: u32,
    /// Requests waiting in the queue.
    pub waiting: u32,
    /// Fully idle, non-retiring workers and milliseconds since each last finished a request,
    /// longest idle first.
    pub idle_workers: Vec<(WorkerId, u64)>,
}

/// Why the front end asks for a worker to be killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KillReason {
    RequestTimeout,
    ProtocolError,
}
