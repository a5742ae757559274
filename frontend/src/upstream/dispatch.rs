//! Per-pool worker slots and the FIFO queue in front of them.
//!
//! Each pool holds a stack of idle slots (a prefork worker has one, or three with the places
//! ahead below; a threaded worker several) and a fair semaphore counting them. A request takes a permit
//! (waiting in FIFO order, bounded in length and time), then pops the most recently used slot, so
//! the least recently used workers stay idle and can be retired. A dropped request future leaves the queue by itself: a client that goes away
//! while queued never reaches a worker.
//!
//! A `builtin = "php"` worker with `send_ahead` has two more slots, places ahead: each its own
//! kept connection, on which a request is sent while the worker runs another, to wait in that
//! socket. The worker finds it there when it ends the running one and goes on without sleeping,
//! instead of waiting for the front end to read that answer and send the next request (a sleep
//! and a wake-up that cost about as much CPU as a small PHP page on a loaded machine). With one
//! place the worker still slept when it ended the request waiting there before the front end had
//! sent the next; two keep it busy (docs/benchmarks.md, "Two places ahead"), three gained
//! nothing more. A slot of an idle worker is always handed out before a place ahead. A request
//! sent ahead counts as waiting, not running (for the master's sizing and the status page),
//! until the requests before it end; its `request_timeout` starts then. Its FastCGI request id
//! is its ordinal on the worker, so that the worker takes its waiting requests in the order they
//! were sent ([`Lease::fastcgi_id`]).
//!
//! A threaded worker with `send_ahead` has as many places ahead as threads
//! ([`AHEAD_PER_THREAD`]): a request sent to it while all its threads are busy waits in its
//! server (granian queues it for the next free thread; uWSGI leaves the connection in its
//! backlog), and runs when a thread ends a request. Its turn is counted as a prefork worker's:
//! the k-th request waiting there runs once k more requests have ended, which is exact for a
//! server that takes requests in the order they arrive and, where two arrive together, off by
//! the time between two endings (short, or places ahead are not given out).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protocol::control::{ExitReason, KillReason, PoolDispatchSpec, PoolLoad, ToMaster, WorkerId};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::{Notify, Semaphore};

use crate::metrics::activity::WorkerActivity;
use crate::metrics::{Rejection, WorkerRequest};
use crate::upstream::worker_connection::{SpareBuffers, WorkerConnection};

/// Places ahead of a `builtin = "php"` worker with `send_ahead` (see the module's comment).
const PLACES_AHEAD: u32 = 2;
/// Places ahead of a threaded worker with `send_ahead`, per thread: each process may hold twice
/// as many requests as it has threads, as many as behind nginx when the clients are that many
/// (docs/benchmarks.md, "Requests sent ahead to threaded workers").
const AHEAD_PER_THREAD: u32 = 1;

/// Idle slots, from the most recently used, among which one whose kept connection is the
/// calling thread's is preferred (no move between event loops, see `Lease::connection`): a few,
/// so that the least recently used workers still stay idle and can be retired.
const AFFINITY_WINDOW: usize = 4;

/// One worker process as the front end sees it.
#[derive(Debug)]
pub(crate) struct WorkerHandle {
    pub id: WorkerId,
    /// 0 for the socket of an external pool (no process of ours).
    pub pid: u32,
    pub socket: PathBuf,
    /// Requests it serves at once: 1 for prefork, `threads` for a threaded worker.
    pub slots: u32,
    alive: AtomicBool,
    /// Requests in flight on this worker.
    leased: AtomicU32,
    /// Requests handed to this worker so far, and the count at which it retires.
    served: AtomicU64,
    request_limit: u64,
    /// Set once the worker is to take no new request; the master stops it when drained.
    retiring: Mutex<Option<ExitReason>>,
    drained_reported: AtomicBool,
    /// When it last finished a request (or came up).
    last_used: Mutex<Instant>,
    /// Places ahead (`send_ahead`): slots beyond `slots`, for requests that wait in its socket.
    ahead_places: u32,
    /// Requests it has ended; with `turn`, how a request sent ahead learns that its turn came.
    ended: AtomicU64,
    turn: Notify,
    /// Held while `leased` and `ended` change together on a worker with places ahead, so that a
    /// new lease knows exactly whether a request runs before it, and which end is its turn.
    order: Mutex<()>,
    /// Its places ahead while they are held back: from the start, and while the pool's requests
    /// take so long that waiting behind one costs more than the worker's sleep it saves.
    parked: Mutex<Vec<Slot>>,
    /// Requests running and served, RSS, age: for the status page and metrics.
    pub activity: Arc<WorkerActivity>,
}

impl WorkerHandle {
    pub(crate) fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Stop handing out this worker's slots (it died, or is about to be killed).
    pub(crate) fn mark_dead(&self) {
        self.alive.store(false, Ordering::Release);
    }

    fn is_retiring(&self) -> bool {
        self.retiring.lock().unwrap().is_some()
    }

    /// Can take a new request (alive and not retiring).
    pub(crate) fn is_usable(&self) -> bool {
        self.is_alive() && !self.is_retiring()
    }

    fn retire(&self, reason: ExitReason) {
        self.retiring.lock().unwrap().get_or_insert(reason);
    }

    /// Requests sent ahead to it: in flight beyond the ones it runs.
    fn sent_ahead(&self) -> u32 {
        self.leased
            .load(Ordering::Acquire)
            .saturating_sub(self.slots)
    }

    /// Returns once the worker has ended more than `ended` requests: for a request sent ahead
    /// while one other ran, the moment it starts to run.
    pub(crate) async fn ended_more_than(&self, ended: u64) {
        loop {
            let turn = self.turn.notified();
            if self.ended.load(Ordering::Acquire) > ended {
                return;
            }
            turn.await;
        }
    }
}

/// What the master is told once a retiring worker has nothing in flight.
fn drained_message(pool: &str, worker: &WorkerHandle, reason: ExitReason) -> ToMaster {
    match reason {
        // A threaded worker one of whose requests overran request_timeout: the thread still runs
        // it and cannot be stopped alone, so the process goes as soon as its other requests are
        // done, by SIGKILL (a SIGTERM would wait on that very thread).
        ExitReason::TimeoutKill => ToMaster::KillWorker {
            pool: pool.to_string(),
            worker: worker.id,
            reason: KillReason::RequestTimeout,
        },
        reason => ToMaster::Drained {
            pool: pool.to_string(),
            worker: worker.id,
            reason,
        },
    }
}

/// A place for one concurrent request on one worker, with its persistent connection.
#[derive(Debug)]
struct Slot {
    worker: Arc<WorkerHandle>,
    /// When it was last handed out, on a worker with places ahead: how long a request kept its
    /// worker (`send_ahead`).
    leased_at: Instant,
    connection: Option<WorkerConnection>,
    /// The buffers of the last connection closed, for the next one.
    spare: Option<SpareBuffers>,
}

impl Slot {
    fn new(worker: &Arc<WorkerHandle>) -> Self {
        Self {
            worker: worker.clone(),
            leased_at: Instant::now(),
            connection: None,
            spare: None,
        }
    }

    /// Whether it keeps a connection that the caller's event loop watches: taking it costs
    /// neither a move (`Lease::connection`) nor a new connection.
    fn at_home(&self) -> bool {
        self.connection
            .as_ref()
            .is_some_and(|c| !c.on_another_event_loop())
    }

    fn close_connection(&mut self) {
        if let Some(connection) = self.connection.take() {
            self.spare = Some(connection.close());
        }
    }
}

/// Why no slot was handed out.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum AdmissionError {
    #[error("the queue of pool `{0}` is full")]
    QueueFull(String),
    #[error("no worker of pool `{0}` became free in time")]
    QueueTimeout(String),
    #[error("pool `{pool}` cannot serve: {reason}")]
    Failing { pool: String, reason: String },
}

/// The `reason` label under which the metrics count a rejection.
impl From<&AdmissionError> for Rejection {
    fn from(error: &AdmissionError) -> Self {
        match error {
            AdmissionError::QueueFull(_) => Rejection::Full,
            AdmissionError::QueueTimeout(_) => Rejection::Timeout,
            AdmissionError::Failing { .. } => Rejection::Failing,
        }
    }
}

/// What is left of one request's `queue_timeout`. A request waits in its pool's queue again when
/// its worker could not be reached or died before answering; every wait spends from the same
/// budget, so that no request waits longer than `queue_timeout` in all. (With a new
/// `queue_timeout` for each wait, a GET on a crash-looping pool once waited past its client's
/// 30 s with a `queue_timeout` of 20 s.)
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueBudget {
    left: Duration,
}

impl QueueBudget {
    /// The whole `queue_timeout` of `pool`, for a request's first wait.
    pub(crate) fn of(pool: &PoolDispatch) -> Self {
        Self {
            left: Duration::from_millis(pool.spec().queue_timeout_ms),
        }
    }
}

#[derive(Debug)]
pub(crate) struct PoolDispatch {
    pub name: String,
    /// Replaced by a reload; each use reads the current settings.
    spec: arc_swap::ArcSwap<PoolDispatchSpec>,
    idle: Mutex<Vec<Slot>>,
    /// One permit per slot in `idle` (unusable slots included until popped and discarded).
    free: Semaphore,
    waiting: AtomicUsize,
    /// How long a request keeps its worker, in µs: a moving average over the pool's recent
    /// requests (`send_ahead` pools only). Places ahead are given out while it is below
    /// `send_ahead_below` (500 µs by default). AHEAD_PAYS_BELOW: a worker's sleep and wake-up
    /// between two requests costs it about 25 µs of CPU on the 2-core machine of
    /// docs/benchmarks.md, 5 % of a 500 µs request, while a request sent ahead waits up to that
    /// long behind the one before it even if another worker frees up first; for longer requests
    /// queueing in the front end costs less in latency than the places save.
    service_us: AtomicU64,
    /// `waiting` as of the last load report (0 again once the queue empties): only a queue grown
    /// past it is news for the master, so a pool kept saturated by steady traffic does not send a
    /// report (and wake the master) for every request that waits.
    reported_waiting: AtomicUsize,
    workers: Mutex<HashMap<WorkerId, Arc<WorkerHandle>>>,
    failing: Mutex<Option<String>>,
    /// Wakes the waiting requests when the pool is marked failing or loses a worker, so that they
    /// can tell whether any worker is left to wait for.
    failing_news: Notify,
    /// Messages to the master (drained workers).
    to_master: UnboundedSender<ToMaster>,
    /// Wakes the load reporter when a request has to wait: queue pressure.
    pressure: Arc<Notify>,
    /// Dropped by a reload: no route leads here any more; kept until its workers are gone.
    removed: AtomicBool,
}

/// Counts for the status page and readiness.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct PoolSnapshot {
    pub name: String,
    pub workers: usize,
    pub idle_slots: usize,
    pub waiting: usize,
    /// Requests sent ahead (`send_ahead`), waiting in a busy worker's socket.
    pub sent_ahead: usize,
    pub failing: Option<String>,
}

impl PoolDispatch {
    pub(crate) fn new(
        spec: PoolDispatchSpec,
        to_master: UnboundedSender<ToMaster>,
        pressure: Arc<Notify>,
    ) -> Self {
        Self {
            name: spec.name.clone(),
            // Unknown yet: no place ahead until a request shorter than the bound is measured.
            service_us: AtomicU64::new(spec.send_ahead_below_us),
            spec: arc_swap::ArcSwap::from_pointee(spec),
            idle: Mutex::new(Vec::new()),
            free: Semaphore::new(0),
            waiting: AtomicUsize::new(0),
            reported_waiting: AtomicUsize::new(0),
            workers: Mutex::new(HashMap::new()),
            failing: Mutex::new(None),
            failing_news: Notify::new(),
            to_master,
            pressure,
            removed: AtomicBool::new(false),
        }
    }

    pub(crate) fn mark_removed(&self) {
        self.removed.store(true, Ordering::Release);
    }

    pub(crate) fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Acquire)
    }

    /// The current dispatch settings.
    pub(crate) fn spec(&self) -> Arc<PoolDispatchSpec> {
        self.spec.load_full()
    }

    /// New settings from a reload (queue bounds, deadlines, recycling) for requests from now on.
    pub(crate) fn set_spec(&self, spec: PoolDispatchSpec) {
        self.removed.store(false, Ordering::Release);
        self.spec.store(Arc::new(spec));
    }

    /// The request count at which a new worker retires: `max_requests` plus a per-worker share of
    /// the jitter, so that workers started together do not all restart together.
    fn request_limit(&self, id: WorkerId) -> u64 {
        let spec = self.spec();
        match spec.max_requests {
            0 => u64::MAX,
            max => {
                let spread = spec.max_requests_jitter + 1;
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos() as u64);
                max + (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ nanos) % spread
            }
        }
    }

    pub(crate) fn worker_up(&self, id: WorkerId, pid: u32, socket: PathBuf, slots: u32) {
        let worker = Arc::new(WorkerHandle {
            id,
            pid,
            socket,
            slots,
            alive: AtomicBool::new(true),
            leased: AtomicU32::new(0),
            served: AtomicU64::new(0),
            request_limit: self.request_limit(id),
            retiring: Mutex::new(None),
            drained_reported: AtomicBool::new(false),
            last_used: Mutex::new(Instant::now()),
            ahead_places: match (self.spec().send_ahead, slots) {
                (false, _) => 0,
                (true, 1) => PLACES_AHEAD,
                (true, threads) => threads * AHEAD_PER_THREAD,
            },
            ended: AtomicU64::new(0),
            turn: Notify::new(),
            order: Mutex::new(()),
            parked: Mutex::new(Vec::new()),
            activity: Arc::new(WorkerActivity::new(slots)),
        });
        // Places ahead start held back: they are given out once the pool's requests have shown
        // to be short (see `release`).
        worker
            .parked
            .lock()
            .unwrap()
            .extend((0..worker.ahead_places).map(|_| Slot::new(&worker)));
        self.workers.lock().unwrap().insert(id, worker.clone());
        let mut idle = self.idle.lock().unwrap();
        for _ in 0..slots {
            idle.push(Slot::new(&worker));
        }
        drop(idle);
        self.free.add_permits(slots as usize);
    }

    pub(crate) fn worker_down(&self, id: WorkerId) {
        if let Some(worker) = self.workers.lock().unwrap().remove(&id) {
            worker.mark_dead();
            // Its parked places hold the handle: let both go.
            worker.parked.lock().unwrap().clear();
        }
        // Its waiting requests may have been waiting for it alone, in a failing pool.
        self.failing_news.notify_waiters();
    }

    /// A request on `worker` overran its deadline while others may still run on it (a threaded
    /// worker): no new request goes there, and the master kills it once the others are done
    /// (each within its own deadline), so none of them fails for a neighbour's hang.
    pub(crate) fn retire_after_timeout(&self, worker: &WorkerHandle) {
        worker.retire(ExitReason::TimeoutKill);
        self.report_if_drained(worker);
    }

    /// Stops handing requests to a worker; the master hears back once it has none in flight.
    pub(crate) fn retire(&self, id: WorkerId, reason: ExitReason) {
        let worker = self.workers.lock().unwrap().get(&id).cloned();
        if let Some(worker) = worker {
            worker.retire(reason);
            self.report_if_drained(&worker);
        }
    }

    fn report_if_drained(&self, worker: &WorkerHandle) {
        let reason = *worker.retiring.lock().unwrap();
        let Some(reason) = reason else {
            return;
        };
        if worker.leased.load(Ordering::Acquire) == 0
            && !worker.drained_reported.swap(true, Ordering::AcqRel)
        {
            let _ = self
                .to_master
                .send(drained_message(&self.name, worker, reason));
        }
    }

    /// The pool's demand, for the master's sizing policy (to be sent: the queue length it reports
    /// is remembered, see [`PoolDispatch::acquire`]).
    pub(crate) fn load(&self) -> PoolLoad {
        let now = Instant::now();
        let waiting = self.waiting.load(Ordering::Relaxed);
        self.reported_waiting.store(waiting, Ordering::Relaxed);
        let idle_slots = self
            .idle
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.worker.is_usable())
            .count() as u32;
        let workers = self.workers.lock().unwrap();
        let mut busy_slots = 0;
        let mut workers_known = 0;
        let mut idle_workers = Vec::new();
        let mut sent_ahead = 0;
        for worker in workers.values() {
            let leased = worker.leased.load(Ordering::Acquire);
            busy_slots += leased.min(worker.slots);
            sent_ahead += worker.sent_ahead();
            if worker.is_usable() {
                workers_known += 1;
                if leased == 0 {
                    let idle = now.duration_since(*worker.last_used.lock().unwrap());
                    idle_workers.push((worker.id, idle.as_millis() as u64));
                }
            }
        }
        idle_workers.sort_by_key(|&(_, idle_ms)| std::cmp::Reverse(idle_ms));
        PoolLoad {
            pool: self.name.clone(),
            workers_known,
            idle_slots,
            busy_slots,
            waiting: waiting as u32 + sent_ahead,
            idle_workers,
        }
    }

    /// Able to serve: not failing, and with workers unless it starts them on demand.
    pub(crate) fn is_ready(&self) -> bool {
        self.failing.lock().unwrap().is_none()
            && (self.spec().starts_empty
                || self.workers.lock().unwrap().values().any(|w| w.is_usable()))
    }

    /// Every worker known to the pool (retiring ones included until the master reports them gone).
    pub(crate) fn workers(&self) -> Vec<Arc<WorkerHandle>> {
        self.workers.lock().unwrap().values().cloned().collect()
    }

    pub(crate) fn worker(&self, id: WorkerId) -> Option<Arc<WorkerHandle>> {
        self.workers.lock().unwrap().get(&id).cloned()
    }

    pub(crate) fn set_failing(&self, reason: Option<String>) {
        let failing = reason.is_some();
        *self.failing.lock().unwrap() = reason;
        if failing {
            self.failing_news.notify_waiters();
        }
    }

    pub(crate) fn snapshot(&self) -> PoolSnapshot {
        let sent_ahead = self.sent_ahead();
        let idle = self.idle.lock().unwrap();
        PoolSnapshot {
            name: self.name.clone(),
            workers: self.workers.lock().unwrap().len(),
            idle_slots: idle.iter().filter(|s| s.worker.is_alive()).count(),
            waiting: self.waiting.load(Ordering::Relaxed),
            sent_ahead,
            failing: self.failing.lock().unwrap().clone(),
        }
    }

    /// Requests sent ahead, waiting in their worker's socket.
    pub(crate) fn sent_ahead(&self) -> usize {
        self.workers
            .lock()
            .unwrap()
            .values()
            .map(|w| w.sent_ahead() as usize)
            .sum()
    }

    /// Waits in the pool's queue for a free slot, for what is left of the request's `budget`.
    /// A failing pool with no worker able to serve answers at once, and wakes the requests
    /// already waiting when it comes to that: until the master's next restart attempt only a
    /// queue timeout could end their wait, and it would not say why.
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        budget: &mut QueueBudget,
    ) -> Result<Lease, AdmissionError> {
        // Read in place (no count taken on the shared settings), and not held across the wait.
        let (queue_max, grows_on_demand, places_ahead) = {
            let spec = self.spec.load();
            (spec.queue_max, spec.grows_on_demand, spec.send_ahead)
        };
        if let Some(failing) = self.failing_with_no_worker() {
            return Err(failing);
        }
        if let Some(lease) = self.free_slot_at_once(places_ahead) {
            return Ok(lease);
        }
        if self.waiting.load(Ordering::Relaxed) >= queue_max {
            return Err(AdmissionError::QueueFull(self.name.clone()));
        }
        let waiting = self.waiting.fetch_add(1, Ordering::Relaxed) + 1;
        let _waiting = WaitingGuard {
            waiting: &self.waiting,
            reported: &self.reported_waiting,
        };
        if grows_on_demand
            && self.free.available_permits() == 0
            && waiting > self.reported_waiting.load(Ordering::Relaxed)
        {
            // No free slot right now and a longer queue than the master last heard of: tell it at
            // once, so it can start workers without waiting for its next tick. (A queue that
            // stays as long as it was is reported by the tick.)
            self.pressure.notify_one();
        }
        let started = tokio::time::Instant::now();
        let outcome = self
            .wait_for_slot(started + budget.left, places_ahead)
            .await;
        budget.left = budget.left.saturating_sub(started.elapsed());
        outcome
    }

    /// A request's wait in the queue with its whole `queue_timeout` (tests).
    #[cfg(test)]
    pub(crate) async fn acquire_fresh(self: &Arc<Self>) -> Result<Lease, AdmissionError> {
        self.acquire(&mut QueueBudget::of(self)).await
    }

    async fn wait_for_slot(
        self: &Arc<Self>,
        deadline: tokio::time::Instant,
        places_ahead: bool,
    ) -> Result<Lease, AdmissionError> {
        loop {
            // Listening before looking, so that a pool failing in between still wakes this wait.
            let failing_news = self.failing_news.notified();
            tokio::pin!(failing_news);
            failing_news.as_mut().enable();
            if let Some(failing) = self.failing_with_no_worker() {
                return Err(failing);
            }
            let permit = tokio::select! {
                permit = tokio::time::timeout_at(deadline, self.free.acquire()) => permit
                    .map_err(|_| AdmissionError::QueueTimeout(self.name.clone()))?
                    .expect("the semaphore is never closed"),
                () = &mut failing_news => continue,
            };
            permit.forget();
            // None for a dead or retiring worker's slot: its permit is spent, wait for a usable one.
            if let Some(lease) = self.lease_idle_slot(places_ahead) {
                return Ok(lease);
            }
        }
    }

    /// A usable slot when one is free right now: what most requests find, taken without the
    /// queue's timer and notification set-up (a tenth of a microsecond a request). `None` sends
    /// the request to [`Self::wait_for_slot`] (a permit taken here for a slot that turned out
    /// unusable is spent, as there).
    fn free_slot_at_once(self: &Arc<Self>, places_ahead: bool) -> Option<Lease> {
        self.free.try_acquire().ok()?.forget();
        self.lease_idle_slot(places_ahead)
    }

    /// For a permit just taken: the idle slot it stands for, leased, unless its worker is no
    /// longer usable (that slot is dropped).
    fn lease_idle_slot(self: &Arc<Self>, places_ahead: bool) -> Option<Lease> {
        // Chosen and counted on its worker under one lock: two requests choosing at once must
        // not both see the same worker as the one with the fewest in flight, or one of them
        // would wait behind a running request while another worker has a thread free.
        let mut idle = self.idle.lock().unwrap();
        let slot = Self::take_idle_slot(&mut idle, places_ahead)?;
        slot.worker.is_usable().then(|| self.lease(slot))
    }

    /// The answer for a request while the pool is failing (the master backs off restarting it)
    /// and none of its workers can take a request.
    fn failing_with_no_worker(&self) -> Option<AdmissionError> {
        let reason = self.failing.lock().unwrap().clone()?;
        let workers = self.workers.lock().unwrap();
        (!workers.values().any(|w| w.is_usable())).then(|| AdmissionError::Failing {
            pool: self.name.clone(),
            reason,
        })
    }

    /// The most recently used idle slot; with places ahead, one of the usable worker with the
    /// fewest requests in flight (the most recently used among equals), so that no request waits
    /// behind another while a worker is free, nor behind two while one has a single request.
    fn take_idle_slot(idle: &mut Vec<Slot>, places_ahead: bool) -> Option<Slot> {
        if places_ahead {
            // From the most recent; a worker with nothing in flight whose connection is this
            // thread's cannot be bettered.
            let mut best: Option<(usize, (u32, bool))> = None;
            for (index, slot) in idle.iter().enumerate().rev() {
                if !slot.worker.is_usable() {
                    continue;
                }
                let rank = (slot.worker.leased.load(Ordering::Acquire), !slot.at_home());
                if best.is_none_or(|(_, fewest)| rank < fewest) {
                    best = Some((index, rank));
                    if rank == (0, false) {
                        break;
                    }
                }
            }
            if let Some((index, _)) = best {
                return Some(idle.remove(index));
            }
        }
        // Among the most recent few, one whose connection needs no move to this thread. Never
        // one without a connection before one with: a new connection to an external server
        // can wait in its backlog while its few processes each hold a kept one
        // (docs/benchmarks.md, "Two front-end changes on the kept HTTP path").
        let recent = idle.len().saturating_sub(AFFINITY_WINDOW);
        let home = (recent..idle.len()).rev().find(|&i| idle[i].at_home());
        match home {
            Some(index) => Some(idle.remove(index)),
            None => idle.pop(),
        }
    }

    /// Hands `slot` out, counting the request on its worker (which retires at its limit). On a
    /// worker with places ahead, a request that finds `slots` others there is sent ahead: it
    /// runs once the worker has ended one more request than now.
    fn lease(self: &Arc<Self>, slot: Slot) -> Lease {
        let mut slot = slot;
        let worker = &slot.worker;
        let (ahead_of, sequence) = if worker.ahead_places > 0 {
            slot.leased_at = Instant::now();
            let _order = worker.order.lock().unwrap();
            let before = worker.leased.fetch_add(1, Ordering::AcqRel);
            let ended = worker.ended.load(Ordering::Acquire);
            // Behind `before - slots` other places ahead: its turn is when that many more
            // requests than the one running have ended.
            let ahead_of =
                (before >= worker.slots).then(|| ended + u64::from(before - worker.slots));
            (ahead_of, ended + u64::from(before))
        } else {
            worker.leased.fetch_add(1, Ordering::AcqRel);
            (None, 0)
        };
        let served = worker.served.fetch_add(1, Ordering::Relaxed) + 1;
        if served >= worker.request_limit {
            worker.retire(ExitReason::MaxRequests);
        }
        if served == worker.request_limit {
            // Told now rather than once drained: its successor starts while this request runs.
            let _ = self.to_master.send(ToMaster::Retiring {
                pool: self.name.clone(),
                worker: worker.id,
                reason: ExitReason::MaxRequests,
            });
        }
        Lease {
            pool: self.clone(),
            slot: Some(slot),
            deadline: None,
            activity: None,
            ahead_of,
            sequence,
        }
    }

    /// A slot whose request was abandoned by its client midway (the request's future dropped):
    /// it comes back once the worker has ended that request. A worker still running it at the
    /// request's deadline is killed, as a timed-out request's would be; an external pool's
    /// connection is closed instead (its server owns its processes).
    async fn finish_abandoned(&self, mut slot: Slot, deadline: tokio::time::Instant) {
        let Some(mut connection) = slot.connection.take() else {
            return self.release(slot);
        };
        let worker = slot.worker.clone();
        tracing::debug!(pool = %self.name, pid = worker.pid,
            "a client went away during its request; the worker finishes it before taking another");
        let drained = tokio::time::timeout_at(deadline, connection.drain_abandoned()).await;
        if drained.is_err() && !self.spec().external {
            tracing::warn!(pool = %self.name, pid = worker.pid,
                "a request abandoned by its client ran past its deadline; killing the worker");
            worker.mark_dead();
            let _ = self.to_master.send(ToMaster::KillWorker {
                pool: self.name.clone(),
                worker: worker.id,
                reason: protocol::control::KillReason::RequestTimeout,
            });
        }
        // The connection is not reused: the worker may have closed it, or be past the request.
        self.release(slot);
    }

    fn release(&self, slot: Slot) {
        let worker = slot.worker.clone();
        let now = Instant::now();
        let previous_end = std::mem::replace(&mut *worker.last_used.lock().unwrap(), now);
        if worker.ahead_places > 0 {
            // The request had its worker from when it was sent or the one before it ended.
            let kept = now.duration_since(slot.leased_at.max(previous_end));
            self.record_service(kept);
            return self.release_with_places_ahead(slot);
        }
        if worker.is_usable() {
            self.idle.lock().unwrap().push(slot);
            self.free.add_permits(1);
        } else {
            drop(slot);
        }
        worker.leased.fetch_sub(1, Ordering::AcqRel);
        self.report_if_drained(&worker);
    }

    fn record_service(&self, kept: Duration) {
        let sample = kept.as_micros().min(u128::from(u32::MAX)) as u64;
        let average = self.service_us.load(Ordering::Relaxed);
        // An average over about the last 8 requests (concurrent updates may lose one: harmless).
        let next = average - average / 8 + sample / 8;
        self.service_us.store(next, Ordering::Relaxed);
    }

    /// Whether a request waiting behind another on its worker costs less than the worker's sleep
    /// between two requests that it saves (docs/worker-lifecycle.md, `builtin = "php"`, step 7).
    fn places_ahead_pay(&self) -> bool {
        // A reload may have turned send_ahead off: the places of workers started before it
        // are parked as they come back.
        let spec = self.spec();
        spec.send_ahead && self.service_us.load(Ordering::Relaxed) < spec.send_ahead_below_us
    }

    /// A worker with places ahead: a slot freed while the worker still runs a request is a place
    /// ahead, given out only while they pay; a worker left with nothing to run gets its places
    /// back when they do.
    fn release_with_places_ahead(&self, slot: Slot) {
        let worker = slot.worker.clone();
        let order = worker.order.lock().unwrap();
        let in_flight = worker.leased.fetch_sub(1, Ordering::AcqRel) - 1;
        worker.ended.fetch_add(1, Ordering::AcqRel);
        drop(order);
        worker.turn.notify_waiters();
        let pay = self.places_ahead_pay();
        let mut freed = Vec::with_capacity(2);
        if in_flight >= worker.slots && !pay {
            worker.parked.lock().unwrap().push(slot);
        } else {
            freed.push(slot);
        }
        // With a thread (or the one process) of its own free, nothing sent ahead waits.
        if in_flight < worker.slots && pay {
            freed.append(&mut worker.parked.lock().unwrap());
        }
        if worker.is_usable() && !freed.is_empty() {
            let count = freed.len();
            self.idle.lock().unwrap().extend(freed);
            self.free.add_permits(count);
        }
        self.report_if_drained(&worker);
    }
}

struct WaitingGuard<'a> {
    waiting: &'a AtomicUsize,
    reported: &'a AtomicUsize,
}

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        if self.waiting.fetch_sub(1, Ordering::Relaxed) == 1 {
            // The queue is empty: the next request that has to wait starts a new burst, which
            // the master must hear about at once.
            self.reported.store(0, Ordering::Relaxed);
        }
    }
}

/// A slot held for one request; it returns to the pool when dropped.
#[derive(Debug)]
pub(crate) struct Lease {
    pool: Arc<PoolDispatch>,
    slot: Option<Slot>,
    /// When the request on this slot must be over (see [`Lease::set_deadline`]).
    deadline: Option<tokio::time::Instant>,
    /// The request as the status page and metrics show it on the worker: it stays there while
    /// an abandoned request is drained.
    activity: Option<WorkerRequest>,
    /// Taken as a place ahead: the worker's ended-request count after which the request runs
    /// (see [`WorkerHandle::ended_more_than`]).
    ahead_of: Option<u64>,
    /// On a worker with places ahead, the request's ordinal among the worker's requests (those
    /// ended before it was leased, plus those in flight then); 0 elsewhere.
    sequence: u64,
}

impl Lease {
    fn slot(&mut self) -> &mut Slot {
        self.slot.as_mut().expect("present until drop")
    }

    pub(crate) fn worker(&self) -> &Arc<WorkerHandle> {
        &self.slot.as_ref().expect("present until drop").worker
    }

    /// For a place ahead, the worker's ended-request count after which it runs (see
    /// [`WorkerHandle::ended_more_than`]); `None` for a request that runs at once.
    pub(crate) fn ahead_of(&self) -> Option<u64> {
        self.ahead_of
    }

    /// The request's FastCGI id: 1, except on a worker with places ahead, where it is the
    /// request's ordinal on the worker (1 to 65535, then round again). Such a worker may find
    /// requests waiting on two connections at once; it runs the one with the earlier id
    /// (`php-worker/src/connections.rs`), so that requests run in the order their deadlines and
    /// turns were given.
    pub(crate) fn fastcgi_id(&self) -> u16 {
        protocol::fcgi::sequenced_request_id(self.sequence)
    }

    /// The slot's connection to its worker, opened (or reopened, if the worker closed it) as needed.
    pub(crate) fn connection(&mut self) -> std::io::Result<&mut WorkerConnection> {
        let spec = self.pool.spec();
        let (protocol, keep) = (spec.protocol, spec.keep_connections);
        let slot = self.slot();
        // A reload may have changed `keep_connections`: a connection opened under the other
        // setting is replaced, so that none asks an external server to keep it any more.
        if slot
            .connection
            .as_ref()
            .is_some_and(|c| c.is_stale() || c.keeps() != keep)
        {
            slot.close_connection();
        }
        if let Some(kept) = slot.connection.take_if(|c| c.on_another_event_loop()) {
            // Opened by another thread: moved here, or (should that fail) replaced below.
            slot.connection = kept.moved_to_this_event_loop().ok();
        }
        if slot.connection.is_none() {
            let spare = slot.spare.take();
            slot.connection = Some(WorkerConnection::connect(
                &slot.worker.socket,
                protocol,
                keep,
                spare,
            )?);
        }
        Ok(slot.connection.as_mut().expect("just set"))
    }

    /// The connection [`Lease::connection`] opened, if the slot still holds it.
    pub(crate) fn open_connection(&mut self) -> Option<&mut WorkerConnection> {
        self.slot().connection.as_mut()
    }

    /// Drop the connection: its state is unknown after a failed or abandoned exchange.
    pub(crate) fn discard_connection(&mut self) {
        self.slot().close_connection();
    }

    /// The client went away while its answer streamed: the worker is drained like an abandoned
    /// one's (see [`Lease::set_deadline`]).
    pub(crate) fn client_gone(&mut self) {
        if let Some(connection) = self.slot().connection.as_mut() {
            connection.mark_interrupted();
        }
    }

    /// The request's deadline and its entry on the worker's activity: if its client goes away,
    /// the slot stays taken (and the request shown on the worker) until the worker has finished
    /// the request, at most until the deadline.
    pub(crate) fn begin_request(
        &mut self,
        deadline: tokio::time::Instant,
        activity: Option<WorkerRequest>,
    ) {
        self.deadline = Some(deadline);
        self.activity = activity;
    }

    /// The request's entry on the worker's activity, once it runs (see [`Lease::begin_request`]).
    pub(crate) fn set_activity(&mut self, activity: WorkerRequest) {
        self.activity = Some(activity);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(slot) = self.slot.take() else {
            return;
        };
        let abandoned = slot
            .connection
            .as_ref()
            .is_some_and(WorkerConnection::interrupted);
        let runtime = tokio::runtime::Handle::try_current();
        // A retiring worker is drained too: the master stops it once its last slot is back.
        match (abandoned && slot.worker.is_alive(), self.deadline, runtime) {
            (true, Some(deadline), Ok(runtime)) => {
                let pool = self.pool.clone();
                let activity = self.activity.take();
                runtime.spawn(async move {
                    pool.finish_abandoned(slot, deadline).await;
                    drop(activity);
                });
            }
            _ => self.pool.release(slot),
        }
    }
}

#[cfg(test)]
#[path = "dispatch_tests.rs"]
pub(crate) mod tests;

#[cfg(test)]
#[path = "dispatch_ahead_tests.rs"]
mod ahead_tests;

#[cfg(test)]
#[path = "dispatch_loop_tests.rs"]
mod loop_tests;
