//! The master: a single-threaded event loop that owns every process and socket.
//!
//! It never runs request code and never starts threads (no async runtime), so forking from it is
//! always safe. It wakes up for signals, control messages from the front end, worker output and
//! timers (respawn backoff, kill escalation, health marks, shutdown deadlines), and otherwise sleeps.

use std::collections::BTreeMap;
use std::io;
use std::net::TcpListener;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use protocol::control::{ExitReason, KillReason, ToFrontend, ToMaster, WorkerId};
use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1};
use signal_hook_mio::v1_0::Signals;
use tracing::{debug, error, info, warn};

use crate::children::{spawn_frontend, spawn_worker, SpawnError};
use crate::config::Config;
use crate::control::ControlChannel;
use crate::pool::{backoff, Pool, HEALTHY_AFTER};
use crate::sockets::{bind_tcp, RuntimeDir};
use crate::worker_output::WorkerOutput;

const SIGNALS: Token = Token(0);
const CONTROL: Token = Token(1);
const FIRST_WORKER_TOKEN: usize = 2;
/// Time between SIGTERM and SIGKILL for a worker being stopped.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// The master could not start serving.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error("cannot create the runtime directory: {0}")]
    RuntimeDir(io::Error),
    #[error("cannot listen on {address} (listener `{name}`): {source}")]
    Bind {
        name: String,
        address: std::net::SocketAddr,
        source: io::Error,
    },
    #[error("cannot set up the event loop: {0}")]
    EventLoop(io::Error),
    #[error("cannot start the front end: {0}")]
    Frontend(io::Error),
}

#[derive(Debug)]
struct Frontend {
    pid: Pid,
    channel: ControlChannel,
}

#[derive(Debug)]
struct Worker {
    pool: usize,
    pid: Pid,
    socket: PathBuf,
    output: Option<WorkerOutput>,
    started: Instant,
    /// Health already credited to the pool (see [`HEALTHY_AFTER`]).
    healthy: bool,
    /// paddock asked it to stop, and why: its exit is not a crash.
    stopping: Option<ExitReason>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shutdown {
    /// Waiting for the front end to finish in-flight requests.
    Draining { deadline: Instant },
    /// The front end is gone; workers were told to stop.
    StoppingWorkers,
}

/// Binds the listeners, starts the front end and the pools, and supervises them until a stop
/// signal has been handled.
pub fn serve(mut config: Config) -> Result<(), MasterError> {
    let runtime =
        RuntimeDir::create(config.runtime_dir.as_deref()).map_err(MasterError::RuntimeDir)?;
    let mut listeners = Vec::new();
    for spec in &mut config.frontend.listeners {
        let listener = bind_tcp(spec.address).map_err(|source| MasterError::Bind {
            name: spec.name.clone(),
            address: spec.address,
            source,
        })?;
        if let Ok(bound) = listener.local_addr() {
            spec.address = bound;
        }
        info!(listener = %spec.name, address = %spec.address, kind = ?spec.kind, "listening");
        listeners.push(listener);
    }
    let poll = Poll::new().map_err(MasterError::EventLoop)?;
    let mut signals = Signals::new([SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1])
        .map_err(MasterError::EventLoop)?;
    poll.registry()
        .register(&mut signals, SIGNALS, Interest::READABLE)
        .map_err(MasterError::EventLoop)?;
    let exe = std::env::current_exe().map_err(MasterError::Frontend)?;
    info!(runtime_dir = %runtime.path().display(), config = %config.origin, "paddock master starting");

    let mut master = Master {
        pools: config.pools.iter().cloned().map(Pool::new).collect(),
        config,
        exe,
        runtime,
        listeners,
        poll,
        signals,
        frontend: None,
        frontend_failures: 0,
        frontend_hold_until: None,
        workers: BTreeMap::new(),
        next_worker: 1,
        kills: Vec::new(),
        shutdown: None,
    };
    master.start_frontend().map_err(MasterError::Frontend)?;
    master.run().map_err(MasterError::EventLoop)
}

struct Master {
    config: Config,
    exe: PathBuf,
    runtime: RuntimeDir,
    listeners: Vec<TcpListener>,
    poll: Poll,
    signals: Signals,
    frontend: Option<Frontend>,
    frontend_failures: u32,
    frontend_hold_until: Option<Instant>,
    pools: Vec<Pool>,
    workers: BTreeMap<WorkerId, Worker>,
    next_worker: WorkerId,
    /// Processes to SIGKILL at the given instant if they are still alive.
    kills: Vec<(Instant, Pid)>,
    shutdown: Option<Shutdown>,
}

impl Master {
    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(256);
        loop {
            self.on_timers(Instant::now());
            if self.shutdown == Some(Shutdown::StoppingWorkers) && self.workers.is_empty() {
                info!("all workers stopped; paddock exits");
                return Ok(());
            }
            let timeout = self
                .next_deadline()
                .map(|at| at.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for event in events.iter() {
                match event.token() {
                    SIGNALS => self.on_signals(),
                    CONTROL => self.on_control(event.is_writable()),
                    Token(n) => {
                        self.on_worker_output(n as WorkerId - FIRST_WORKER_TOKEN as WorkerId)
                    }
                }
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let pools = self.pools.iter().filter_map(|p| {
            (p.live < p.config.workers)
                .then_some(p.hold_until)
                .flatten()
        });
        let health = self
            .workers
            .values()
            .filter(|w| !w.healthy)
            .map(|w| w.started + HEALTHY_AFTER);
        let kills = self.kills.iter().map(|(at, _)| *at);
        let drain = match self.shutdown {
            Some(Shutdown::Draining { deadline }) => Some(deadline),
            _ => None,
        };
        pools
            .chain(health)
            .chain(kills)
            .chain(drain)
            .chain(self.frontend_hold_until)
            .min()
    }

    // ----- timers -------------------------------------------------------------------------------

    fn on_timers(&mut self, now: Instant) {
        self.kills.retain(|&(at, pid)| {
            if at <= now {
                let _ = killpg(pid, Signal::SIGKILL);
                false
            } else {
                true
            }
        });
        if let Some(Shutdown::Draining { deadline }) = self.shutdown {
            if now >= deadline {
                if let Some(frontend) = &self.frontend {
                    warn!("front end did not finish in time; killing it");
                    let _ = killpg(frontend.pid, Signal::SIGKILL);
                }
            }
        }
        for id in self.workers.keys().copied().collect::<Vec<_>>() {
            let worker = &self.workers[&id];
            if !worker.healthy && now >= worker.started + HEALTHY_AFTER {
                let pool = worker.pool;
                self.workers.get_mut(&id).expect("listed").healthy = true;
                self.pools[pool].record_healthy();
                self.set_pool_failing(pool, None);
            }
        }
        if self.shutdown.is_some() {
            return;
        }
        if self.frontend.is_none() && self.frontend_hold_until.is_none_or(|t| now >= t) {
            if let Err(e) = self.start_frontend() {
                error!(error = %e, "cannot restart the front end");
                self.hold_frontend(now);
            }
        }
        for pool in 0..self.pools.len() {
            for _ in 0..self.pools[pool].spawns_due(now) {
                if !self.start_worker(pool, now) {
                    break;
                }
            }
        }
    }

    fn hold_frontend(&mut self, now: Instant) {
        self.frontend_failures += 1;
        self.frontend_hold_until = Some(now + backoff(self.frontend_failures));
    }

    // ----- front end ----------------------------------------------------------------------------

    fn start_frontend(&mut self) -> io::Result<()> {
        let (ours, theirs) = UnixStream::pair()?;
        let pid = spawn_frontend(&self.exe, &self.config.log_level, &theirs, &self.listeners)?;
        drop(theirs);
        let mut channel = ControlChannel::new(ours)?;
        self.poll.registry().register(
            channel.source(),
            CONTROL,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        channel.send(&ToFrontend::Configure(Box::new(
            self.config.frontend.clone(),
        )))?;
        for (&worker, w) in &self.workers {
            if w.stopping.is_none() {
                let pool = &self.pools[w.pool].config;
                channel.send(&ToFrontend::WorkerUp {
                    pool: pool.name.clone(),
                    worker,
                    pid: w.pid.as_raw() as u32,
                    socket: w.socket.clone(),
                    slots: pool.slots_per_worker,
                })?;
            }
        }
        for pool in &self.pools {
            if pool.failing.is_some() {
                channel.send(&ToFrontend::PoolStatus {
                    pool: pool.config.name.clone(),
                    failing: pool.failing.clone(),
                })?;
            }
        }
        info!(pid = pid.as_raw(), "front end started");
        self.frontend = Some(Frontend { pid, channel });
        self.frontend_hold_until = None;
        Ok(())
    }

    fn tell_frontend(&mut self, message: ToFrontend) {
        if let Some(frontend) = &mut self.frontend {
            if let Err(e) = frontend.channel.send(&message) {
                warn!(error = %e, "control channel to the front end failed");
            }
        }
    }

    fn on_control(&mut self, writable: bool) {
        let Some(frontend) = &mut self.frontend else {
            return;
        };
        if writable && frontend.channel.wants_write() {
            let _ = frontend.channel.flush();
        }
        let messages = match frontend.channel.receive() {
            Ok(Some(messages)) => messages,
            // Closed or broken: the front end is exiting; SIGCHLD will tell us when it is gone.
            Ok(None) | Err(_) => {
                let _ = self.poll.registry().deregister(frontend.channel.source());
                return;
            }
        };
        for message in messages {
            match message {
                ToMaster::Ready => {
                    self.frontend_failures = 0;
                    info!("front end ready");
                }
                ToMaster::KillWorker {
                    pool,
                    worker,
                    reason,
                } => {
                    if let Some(w) = self.workers.get(&worker) {
                        warn!(pool = %pool, pid = w.pid.as_raw(), ?reason, "killing worker at the front end's request");
                        let why = match reason {
                            KillReason::RequestTimeout => ExitReason::TimeoutKill,
                            KillReason::ProtocolError => ExitReason::Crash,
                        };
                        self.stop_worker(worker, Signal::SIGKILL, why);
                    }
                }
            }
        }
    }

    // ----- workers ------------------------------------------------------------------------------

    /// Starts one worker; false when the pool cannot start workers now.
    fn start_worker(&mut self, pool: usize, now: Instant) -> bool {
        let id = self.next_worker;
        self.next_worker += 1;
        let config = &self.pools[pool].config;
        match spawn_worker(config, id, &self.runtime) {
            Ok(spawned) => {
                let name = config.name.clone();
                let slots = config.slots_per_worker;
                let fd = spawned.output.source_fd();
                let token = Token(FIRST_WORKER_TOKEN + id as usize);
                if let Err(e) =
                    self.poll
                        .registry()
                        .register(&mut SourceFd(&fd), token, Interest::READABLE)
                {
                    warn!(error = %e, "cannot watch worker output");
                }
                debug!(pool = %name, pid = spawned.pid.as_raw(), worker = id, "worker started");
                self.pools[pool].live += 1;
                self.tell_frontend(ToFrontend::WorkerUp {
                    pool: name,
                    worker: id,
                    pid: spawned.pid.as_raw() as u32,
                    socket: spawned.socket.clone(),
                    slots,
                });
                self.workers.insert(
                    id,
                    Worker {
                        pool,
                        pid: spawned.pid,
                        socket: spawned.socket,
                        output: Some(spawned.output),
                        started: now,
                        healthy: false,
                        stopping: None,
                    },
                );
                true
            }
            Err(e) => {
                let delay = self.pools[pool].record_exit(Duration::ZERO, now);
                let reason = e.to_string();
                if self.pools[pool].failing.as_deref() != Some(reason.as_str()) {
                    error!(pool = %self.pools[pool].config.name, retry_in = ?delay, "{reason}");
                }
                if matches!(e, SpawnError::CommandNotFound { .. }) {
                    // Installing the program is a manual step: retry slowly, not in a tight ramp.
                    self.pools[pool].hold_until = Some(now + Duration::from_secs(5));
                }
                self.set_pool_failing(pool, Some(reason));
                false
            }
        }
    }

    fn set_pool_failing(&mut self, pool: usize, failing: Option<String>) {
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

    fn stop_worker(&mut self, id: WorkerId, signal: Signal, reason: ExitReason) {
        let Some(worker) = self.workers.get_mut(&id) else {
            return;
        };
        worker.stopping.get_or_insert(reason);
        let _ = killpg(worker.pid, signal);
        if signal != Signal::SIGKILL {
            self.kills.push((Instant::now() + KILL_GRACE, worker.pid));
        }
    }

    fn on_worker_output(&mut self, id: WorkerId) {
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

    fn on_worker_exit(&mut self, id: WorkerId, status: &str, now: Instant) {
        let Some(mut worker) = self.workers.remove(&id) else {
            return;
        };
        if worker.output.is_some() {
            // Log what it wrote last (often the reason it died) before forgetting it.
            self.workers.insert(id, worker);
            self.on_worker_output(id);
            worker = self.workers.remove(&id).expect("just inserted");
            if let Some(output) = &worker.output {
                let fd = output.source_fd();
                let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
            }
        }
        let _ = std::fs::remove_file(&worker.socket);
        let pool = &mut self.pools[worker.pool];
        pool.live -= 1;
        let name = pool.config.name.clone();
        let lived = now - worker.started;
        let reason = match (worker.stopping, self.shutdown) {
            (Some(reason), _) => reason,
            (None, Some(_)) => ExitReason::Shutdown,
            (None, None) => ExitReason::Crash,
        };
        if reason != ExitReason::Crash || worker.stopping.is_some() {
            debug!(pool = %name, pid = worker.pid.as_raw(), status, reason = reason.as_str(), "worker stopped");
        } else {
            let delay = pool.record_exit(lived, now);
            warn!(pool = %name, pid = worker.pid.as_raw(), status, lived = ?lived, "worker exited unexpectedly");
            if let Some(delay) = delay {
                if pool.failures >= 3 {
                    let failing = format!(
                        "workers exit right after starting ({status}); next attempt in {delay:?}"
                    );
                    self.set_pool_failing(worker.pool, Some(failing));
                }
            }
        }
        self.tell_frontend(ToFrontend::WorkerDown {
            pool: name,
            worker: id,
            reason,
        });
    }

    // ----- signals ------------------------------------------------------------------------------

    fn on_signals(&mut self) {
        let pending: Vec<i32> = self.signals.pending().collect();
        for signal in pending {
            match signal {
                SIGCHLD => self.reap(),
                SIGTERM | SIGQUIT => self.begin_shutdown(false),
                SIGINT => self.begin_shutdown(true),
                SIGHUP => {
                    warn!("SIGHUP: reloading certificates only; a full configuration reload is not implemented yet");
                    self.tell_frontend(ToFrontend::ReloadCertificates);
                }
                SIGUSR1 => self.tell_frontend(ToFrontend::ReopenLogs),
                _ => {}
            }
        }
    }

    fn reap(&mut self) {
        let now = Instant::now();
        loop {
            let (pid, status) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, format!("exit status {code}")),
                Ok(WaitStatus::Signaled(pid, signal, _)) => (pid, format!("killed by {signal}")),
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => continue,
            };
            self.kills.retain(|&(_, p)| p != pid);
            if self.frontend.as_ref().is_some_and(|f| f.pid == pid) {
                self.on_frontend_exit(&status, now);
            } else if let Some(id) = self
                .workers
                .iter()
                .find(|(_, w)| w.pid == pid)
                .map(|(id, _)| *id)
            {
                self.on_worker_exit(id, &status, now);
            }
        }
    }

    fn on_frontend_exit(&mut self, status: &str, now: Instant) {
        if let Some(mut frontend) = self.frontend.take() {
            let _ = self.poll.registry().deregister(frontend.channel.source());
        }
        if self.shutdown.is_some() {
            info!(status, "front end stopped");
            self.stop_all_workers(Signal::SIGTERM);
        } else {
            error!(
                status,
                "front end exited unexpectedly; restarting it with the same listeners"
            );
            self.hold_frontend(now);
        }
    }

    fn begin_shutdown(&mut self, fast: bool) {
        let already = self.shutdown.is_some();
        let fast = fast || already;
        info!(fast, "stopping");
        let deadline_ms = if fast {
            0
        } else {
            self.config.shutdown_timeout.as_millis() as u64
        };
        self.tell_frontend(ToFrontend::Shutdown { deadline_ms });
        if self.frontend.is_none() || fast {
            if let Some(frontend) = &self.frontend {
                if already {
                    let _ = killpg(frontend.pid, Signal::SIGKILL);
                }
            }
            self.stop_all_workers(if already {
                Signal::SIGKILL
            } else {
                Signal::SIGTERM
            });
        } else if !already {
            // One extra second for the front end to close its connections after its own deadline.
            let deadline = Instant::now() + self.config.shutdown_timeout + Duration::from_secs(1);
            self.shutdown = Some(Shutdown::Draining { deadline });
        }
    }

    fn stop_all_workers(&mut self, signal: Signal) {
        self.shutdown = Some(Shutdown::StoppingWorkers);
        for id in self.workers.keys().copied().collect::<Vec<_>>() {
            self.stop_worker(id, signal, ExitReason::Shutdown);
        }
    }
}
