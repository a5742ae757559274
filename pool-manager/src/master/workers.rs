//! Worker processes: starting them, sizing pools, retiring, stopping and reaping.

use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Interest, Token};
use nix::sys::signal::{killpg, Signal};
use protocol::control::{ExitReason, ToFrontend, WorkerId};
use tracing::{debug, error, info, warn};

use super::{ExitKind, Master, Worker, FIRST_WORKER_TOKEN};
use crate::children::{spawn_worker, SpawnError, SpawnedWorker};
use crate::config::{CpuAffinity, Readiness};
use crate::cpu_affinity;
use crate::policy::{self, Action};

/// Time between SIGTERM and SIGKILL for a worker being stopped.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// Pause before retrying a pool whose program is missing: installing it is a manual step.
const MISSING_PROGRAM_RETRY: Duration = Duration::from_secs(5);

impl Master {
    pub(super) fn start_initial_workers(&mut self, now: Instant) {
        for pool in 0..self.pools.len() {
            self.start_pool(pool, now);
        }
    }

    /// Starts a new pool: its initial workers and, for a `builtin = "php"` pool, its PHP parent
    /// whatever the sizing, so that even an on-demand pool's first workers are a fork away
    /// rather than PHP's whole start-up (about 30 ms, more with a large `opcache.preload`).
    pub(super) fn start_pool(&mut self, pool: usize, now: Instant) {
        if self.pools[pool].config.builtin_php() && self.pools[pool].is_managed() {
            if let Err(e) = self.php_parent_ready(pool) {
                self.spawn_failed(pool, &e, now);
                return;
            }
        }
        let count = self.pools[pool].initial_workers();
        self.start_workers(pool, count, now);
    }

    fn active_workers(&self, pool: usize) -> u32 {
        self.workers
            .values()
            .filter(|w| w.pool == pool && w.is_active())
            .count() as u32
    }

    /// Runs the sizing policy for one pool and carries out its decision.
    pub(super) fn size_pool(&mut self, pool: usize, now: Instant, tick: bool) {
        if !self.pools[pool].is_managed() || self.shutdown.is_some() {
            return;
        }
        let snapshot = self.pools[pool].snapshot(self.active_workers(pool));
        let p = &mut self.pools[pool];
        let actions = policy::plan(
            &p.config.sizing,
            p.config.slots_per_worker,
            p.config.spawn_rate,
            &snapshot,
            &mut p.ramp,
            tick,
        );
        for action in actions {
            match action {
                Action::Spawn(count) => {
                    if self.pools[pool].is_held(now) {
                        break;
                    }
                    self.start_workers(pool, count, now);
                }
                Action::Retire(worker) => self.retire_worker(worker, ExitReason::Idle),
                Action::MaxReached => {
                    let name = self.pools[pool].config.name.clone();
                    warn!(
                        pool = %name,
                        max = self.pools[pool].config.sizing.max_workers(),
                        waiting = snapshot.waiting,
                        "pool reached its maximum number of workers while requests wait"
                    );
                    self.tell_frontend(ToFrontend::MaxWorkersReached { pool: name });
                }
            }
        }
    }

    /// Starts `count` workers; false when the pool cannot start (more) workers now (for a
    /// `builtin = "php"` pool, also while its PHP parent starts: it asks for its workers once
    /// ready). A builtin pool's workers are asked of its parent all at once.
    pub(super) fn start_workers(&mut self, pool: usize, count: u32, now: Instant) -> bool {
        if count == 0 {
            return true;
        }
        if self.pools[pool].config.builtin_php() {
            return match self.php_parent_ready(pool) {
                Ok(true) => self.fork_php_workers(pool, count, now),
                Ok(false) => false,
                Err(e) => {
                    self.spawn_failed(pool, &e, now);
                    false
                }
            };
        }
        // A pool whose workers say when they are ready starts at most `max_starting` at once;
        // the sizing policy asks again as they become ready.
        for _ in 0..count.min(self.start_room(pool)) {
            let id = self.next_worker;
            self.next_worker += 1;
            let notify = self.notify_address(pool);
            let cpu = self.cpu_for_next_worker(pool);
            match spawn_worker(&self.pools[pool].config, id, &self.runtime, notify, cpu) {
                Ok(spawned) => self.add_worker(pool, id, spawned, now),
                Err(e) => {
                    self.spawn_failed(pool, &e, now);
                    return false;
                }
            }
        }
        true
    }

    /// The CPU to pin the pool's next worker to: with `cpu_affinity = "spread"`, the allowed CPU
    /// with the fewest of the pool's workers that are not on their way out.
    fn cpu_for_next_worker(&self, pool: usize) -> Option<usize> {
        if self.pools[pool].config.cpu_affinity != CpuAffinity::Spread {
            return None;
        }
        let pinned = self
            .workers
            .values()
            .filter(|w| w.pool == pool && w.is_active())
            .filter_map(|w| w.cpu);
        cpu_affinity::least_used(&cpu_affinity::allowed_cpus(), pinned)
    }

    /// A started worker: watched, recorded and announced to the front end (for a pool of
    /// `readiness = "notify"`, once the worker says it is ready).
    pub(super) fn add_worker(
        &mut self,
        pool: usize,
        id: WorkerId,
        spawned: SpawnedWorker,
        now: Instant,
    ) {
        let config = &self.pools[pool].config;
        let name = config.name.clone();
        let ready_by = match config.readiness {
            Readiness::Notify { start_timeout, .. } => Some(now + start_timeout),
            Readiness::Listening => None,
        };
        let fd = spawned.output.source_fd();
        let token = Token(FIRST_WORKER_TOKEN + id as usize);
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut SourceFd(&fd), token, Interest::READABLE)
        {
            warn!(error = %e, "cannot watch worker output");
        }
        debug!(pool = %name, pid = spawned.pid.as_raw(), worker = id, waits_for_ready = ready_by.is_some(), "worker started");
        let worker = Worker {
            pool,
            pid: spawned.pid,
            socket: spawned.socket,
            output: Some(spawned.output),
            started: now,
            healthy: false,
            retiring: None,
            stopping: None,
            rss_bytes: 0,
            cpu: spawned.cpu,
            ready_by,
        };
        let news = match ready_by {
            None => self.worker_up(id, &worker, None),
            Some(_) => loading(&self.pools[pool].config.name, id, &worker),
        };
        self.tell_frontend(news);
        self.workers.insert(id, worker);
    }

    /// A worker (or a pool's PHP parent) could not be started: crash-loop backoff, and the pool
    /// is failing with the reason.
    pub(super) fn spawn_failed(&mut self, pool: usize, e: &SpawnError, now: Instant) {
        let delay = self.pools[pool].record_exit(Duration::ZERO, now);
        let reason = e.to_string();
        if self.pools[pool].failing.as_deref() != Some(reason.as_str()) {
            error!(pool = %self.pools[pool].config.name, retry_in = ?delay, "{reason}");
        }
        if matches!(
            e,
            SpawnError::CommandNotFound { .. } | SpawnError::PhpParent { missing: true, .. }
        ) {
            self.pools[pool].hold_until = Some(now + MISSING_PROGRAM_RETRY);
        }
        self.set_pool_failing(pool, Some(reason));
    }

    pub(super) fn set_pool_failing(&mut self, pool: usize, failing: Option<String>) {
        if self.pools[pool].failing == failing {
            return;
        }
        if failing.is_none() {
            info!(pool = %self.pools[pool].config.name, "pool recovered");
        }
        self.pools[pool].failing = failing.clone();
        let pool = self.pools[pool].config.name.clone();
        self.tell_frontend(ToFrontend::PoolStatus { pool, failing });
    }

    pub(super) fn credit_healthy_workers(&mut self, now: Instant) {
        let newly_healthy: Vec<WorkerId> = self
            .workers
            .iter()
            .filter(|(_, w)| {
                !w.healthy && !w.is_starting() && now >= w.started + crate::pool::HEALTHY_AFTER
            })
            .map(|(&id, _)| id)
            .collect();
        for id in newly_healthy {
            let worker = self.workers.get_mut(&id).expect("listed");
            worker.healthy = true;
            let pool = worker.pool;
            self.pools[pool].record_healthy();
            self.set_pool_failing(pool, None);
        }
    }

    /// Retires a worker gracefully: the front end stops handing it requests and reports it
    /// drained once its in-flight requests are done; only then is it stopped.
    pub(super) fn retire_worker(&mut self, id: WorkerId, reason: ExitReason) {
        let Some(worker) = self.workers.get_mut(&id) else {
            return;
        };
        if !worker.is_active() {
            return;
        }
        worker.retiring = Some(reason);
        let pool = self.pools[worker.pool].config.name.clone();
        debug!(pool = %pool, pid = worker.pid.as_raw(), reason = reason.as_str(), "retiring worker");
        // One still starting has no request (the front end does not know of it); without a
        // front end, no request can be in flight either.
        if worker.is_starting()
            || !self.tell_frontend(ToFrontend::Retire {
                pool,
                worker: id,
                reason,
            })
        {
            self.stop_worker(id, Signal::SIGTERM, reason);
        }
    }

    /// The front end retired a worker on its own (`max_requests`): it no longer counts towards
    /// the pool's size, so the sizing policy starts its successor now, while the worker's last
    /// request runs, instead of after its exit. The worker is stopped once drained, as any.
    pub(super) fn on_worker_retiring(&mut self, id: WorkerId, reason: ExitReason, now: Instant) {
        let Some(worker) = self.workers.get_mut(&id) else {
            return;
        };
        if !worker.is_active() {
            return;
        }
        worker.retiring = Some(reason);
        let pool = worker.pool;
        debug!(pool = %self.pools[pool].config.name, pid = worker.pid.as_raw(), reason = reason.as_str(), "worker retiring; starting its successor");
        self.size_pool(pool, now, false);
    }

    pub(super) fn stop_worker(&mut self, id: WorkerId, signal: Signal, reason: ExitReason) {
        let Some(worker) = self.workers.get_mut(&id) else {
            return;
        };
        worker.stopping.get_or_insert(reason);
        let _ = killpg(worker.pid, signal);
        if signal != Signal::SIGKILL {
            self.kills.push((Instant::now() + KILL_GRACE, worker.pid));
        }
    }

    /// Lifetime and memory limits, checked on every tick; memory figures go to the front end.
    pub(super) fn check_recycling(&mut self, now: Instant) {
        let page_size = page_size();
        let mut retire = Vec::new();
        let mut stats = Vec::new();
        for (&id, worker) in &mut self.workers {
            if worker.stopping.is_some() {
                continue;
            }
            worker.rss_bytes = resident_pages(worker.pid.as_raw()).unwrap_or(0) * page_size;
            let pool = &self.pools[worker.pool];
            stats.push(ToFrontend::WorkerStats {
                pool: pool.config.name.clone(),
                worker: id,
                rss_bytes: worker.rss_bytes,
            });
            if worker.retiring.is_some() {
                continue;
            }
            let recycle = &pool.config.recycle;
            if recycle.max_rss.is_some_and(|max| worker.rss_bytes > max) {
                retire.push((id, ExitReason::Memory));
            } else if recycle
                .max_lifetime
                .is_some_and(|max| now.duration_since(worker.started) > max)
            {
                retire.push((id, ExitReason::Lifetime));
            }
        }
        for message in stats {
            self.tell_frontend(message);
        }
        for (id, reason) in retire {
            self.retire_worker(id, reason);
        }
    }

    pub(super) fn on_worker_output(&mut self, id: WorkerId) {
        let Some(worker) = self.workers.get_mut(&id) else {
            return;
        };
        let pool = &self.pools[worker.pool].config.name;
        let pid = worker.pid.as_raw();
        let Some(output) = &mut worker.output else {
            return;
        };
        let open =
            output.drain(|line| info!(target: "paddock::worker", pool = %pool, pid, "{line}"));
        if !open {
            let fd = output.source_fd();
            let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
            worker.output = None;
        }
    }

    /// `status` describes how it ended, for the log.
    pub(super) fn on_worker_exit(
        &mut self,
        id: WorkerId,
        status: &str,
        how: ExitKind,
        now: Instant,
    ) {
        // Log what it wrote last (often the reason it died) before forgetting it.
        self.on_worker_output(id);
        let Some(worker) = self.workers.remove(&id) else {
            return;
        };
        if let Some(output) = &worker.output {
            let fd = output.source_fd();
            let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        }
        let _ = std::fs::remove_file(&worker.socket);
        let pool = &mut self.pools[worker.pool];
        let name = pool.config.name.clone();
        let lived = now - worker.started;
        let asked = worker.stopping.or(worker.retiring);
        let reason = match (asked, self.shutdown) {
            (Some(reason), _) => reason,
            (None, Some(_)) => ExitReason::Shutdown,
            // A clean exit nobody asked for is a handler recycling itself (php-cgi after
            // PHP_FCGI_MAX_REQUESTS requests).
            (None, None) if how == ExitKind::Status(0) => ExitReason::MaxRequests,
            (None, None) => ExitReason::Crash,
        };
        if asked.is_some() || self.shutdown.is_some() {
            debug!(pool = %name, pid = worker.pid.as_raw(), status, reason = reason.as_str(), "worker stopped");
        } else {
            if reason == ExitReason::Crash {
                warn!(pool = %name, pid = worker.pid.as_raw(), status, lived = ?lived, "worker exited unexpectedly");
            } else {
                debug!(pool = %name, pid = worker.pid.as_raw(), status, "worker recycled itself");
            }
            // SIGKILL from outside (the OOM killer, an operator) says nothing about whether the
            // handler can start, and neither does a php-cgi leaving after its
            // PHP_FCGI_MAX_REQUESTS (it races the front end's own retirement, which comes after
            // the same count, and a busy pool gets there quickly): only other quick deaths count
            // towards the crash-loop backoff.
            let recycled =
                reason == ExitReason::MaxRequests && pool.config.exits_after_requests().is_some();
            let lived = if how == ExitKind::Signal(Signal::SIGKILL) || recycled {
                crate::pool::HEALTHY_AFTER
            } else if worker.is_starting() {
                // However long it took, a worker that ends before it is ready never started.
                Duration::ZERO
            } else {
                lived
            };
            let delay = pool.record_exit(lived, now);
            if let Some(delay) = delay.filter(|_| pool.failures >= 3) {
                let failing = format!(
                    "workers exit right after starting ({status}); next attempt in {delay:?}"
                );
                self.set_pool_failing(worker.pool, Some(failing));
            }
        }
        self.tell_frontend(ToFrontend::WorkerDown {
            pool: name,
            worker: id,
            reason,
        });
    }
}

impl Master {
    /// The announcement of a ready worker to the front end, with the time it took to say it
    /// was ready if it did.
    pub(super) fn worker_up(
        &self,
        id: WorkerId,
        worker: &Worker,
        ready_after: Option<Duration>,
    ) -> ToFrontend {
        let pool = &self.pools[worker.pool].config;
        ToFrontend::WorkerUp {
            pool: pool.name.clone(),
            worker: id,
            pid: worker.pid.as_raw() as u32,
            socket: worker.socket.clone(),
            slots: pool.slots_per_worker,
            ready_after_ms: ready_after.map(|d| d.as_millis() as u64),
            cpu: worker.cpu.and_then(|cpu| u32::try_from(cpu).ok()),
        }
    }
}

/// The news that a worker of a `readiness = "notify"` pool loads its application.
pub(super) fn loading(pool: &str, id: WorkerId, worker: &Worker) -> ToFrontend {
    ToFrontend::WorkerLoading {
        pool: pool.to_string(),
        worker: id,
        pid: worker.pid.as_raw() as u32,
    }
}

fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |size| size as u64)
}

/// Resident set size in pages, from /proc/PID/statm.
fn resident_pages(pid: i32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    statm.split_whitespace().nth(1)?.parse().ok()
}
