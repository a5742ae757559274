//! The master: a single-threaded event loop that owns every process and socket.
//!
//! It never runs request code and never starts threads (no async runtime), so forking from it is
//! always safe. It wakes up for signals, control messages from the front end, worker output and
//! timers (the one-second sizing tick, respawn backoff, kill escalation, health marks, shutdown
//! deadlines), and otherwise sleeps.
//!
//! # Layout
//! - this file — state, start-up, the event loop and timers;
//! - `command_socket` — `paddock status|reload|stop` from the command line;
//! - `frontend_link` — starting the front end and talking to it;
//! - `workers` — starting, retiring, stopping and reaping workers; executing the sizing policy;
//! - `lifecycle` — signals, reaping, graceful and fast stop;
//! - `php_parents` — the warm PHP parents of `builtin = "php"` pools;
//! - `readiness` — workers that say when they are ready (`readiness = "notify"`);
//! - `reload` — applying a new configuration without closing anything;
//! - `upgrade` — handing the listeners to a new binary (SIGUSR2).

mod command_socket;
mod frontend_link;
mod lifecycle;
mod php_parents;
mod readiness;
mod reload;
mod upgrade;
mod workers;

use std::collections::BTreeMap;
use std::io;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use protocol::control::{ExitReason, WorkerId};
use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook_mio::v1_0::Signals;
use tracing::{info, warn};

use crate::config::Config;
use crate::control::ControlChannel;
use crate::pool::Pool;
use crate::sockets::{bind_tcp, RuntimeDir};
use crate::worker_output::WorkerOutput;

const SIGNALS: Token = Token(0);
const CONTROL: Token = Token(1);
const COMMANDS: Token = Token(2);
const NOTIFY: Token = Token(3);
const FIRST_WORKER_TOKEN: usize = 4;
/// The sizing policy's maintenance pass, as in Apache and php-fpm.
const TICK: Duration = Duration::from_secs(1);

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
    #[error("server.user = {0:?} needs paddock to be started as root (or as that user)")]
    Privileges(String),
    #[error("cannot open the command socket {path}: {source}")]
    CommandSocket { path: PathBuf, source: io::Error },
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
    /// Health already credited to the pool (see [`crate::pool::HEALTHY_AFTER`]).
    healthy: bool,
    /// Asked to retire: the front end drains it, then it is stopped.
    retiring: Option<ExitReason>,
    /// Signalled to stop, and why: its exit is not a crash.
    stopping: Option<ExitReason>,
    /// Resident memory at the last sample.
    rss_bytes: u64,
    /// The CPU it is pinned to (`cpu_affinity = "spread"`).
    cpu: Option<usize>,
    /// Started but not ready yet (`readiness = "notify"`): unknown to the front end, and killed
    /// if still not ready at this instant.
    ready_by: Option<Instant>,
}

impl Worker {
    /// Counts towards the pool's size (not on its way out).
    fn is_active(&self) -> bool {
        self.retiring.is_none() && self.stopping.is_none()
    }

    /// Has not said it is ready yet, so the front end does not know of it.
    fn is_starting(&self) -> bool {
        self.ready_by.is_some()
    }
}

/// How a child ended, as far as the crash-loop logic cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExitKind {
    Status(i32),
    Signal(Signal),
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
    let run_as = config.frontend.run_as.as_ref();
    let root = nix::unistd::geteuid().is_root();
    if let Some(user) = run_as.filter(|u| !root && u.uid != nix::unistd::geteuid().as_raw()) {
        return Err(MasterError::Privileges(user.user.clone()));
    }
    let owner = run_as.filter(|_| root).map(|u| (u.uid, u.gid));
    let runtime = RuntimeDir::create(config.runtime_dir.as_deref(), owner)
        .map_err(MasterError::RuntimeDir)?;
    let configured_listeners = config.frontend.listeners.clone();
    let inheritance = upgrade::inheritance_from_env();
    let mut listeners = Vec::new();
    for spec in &mut config.frontend.listeners {
        let inherited = inheritance
            .as_ref()
            .and_then(|i| i.listeners.get(&spec.name))
            .map(|&fd| crate::spawn::claim_inherited(fd).map(TcpListener::from));
        let listener = match inherited {
            Some(listener) => listener,
            None => bind_tcp(spec.address),
        }
        .map_err(|source| MasterError::Bind {
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
    let mut signals = Signals::new([SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2])
        .map_err(MasterError::EventLoop)?;
    poll.registry()
        .register(&mut signals, SIGNALS, Interest::READABLE)
        .map_err(MasterError::EventLoop)?;
    let exe = std::env::current_exe().map_err(MasterError::Frontend)?;
    let commands = match &config.control_socket {
        None => None,
        Some(path) => {
            let takeover = inheritance.is_some();
            let mut listener = command_socket::bind(path, takeover).map_err(|source| {
                MasterError::CommandSocket {
                    path: path.clone(),
                    source,
                }
            })?;
            poll.registry()
                .register(&mut listener, COMMANDS, Interest::READABLE)
                .map_err(MasterError::EventLoop)?;
            Some(listener)
        }
    };
    let notify =
        readiness::NotifySocket::open(poll.registry(), NOTIFY).map_err(MasterError::EventLoop)?;
    info!(runtime_dir = %runtime.path().display(), config = %config.origin, "paddock master starting");

    let mut next_worker = 1;
    let pools = config
        .pools
        .iter()
        .cloned()
        .map(|pool| {
            let external_id = pool.external_socket.is_some().then(|| {
                next_worker += 1;
                next_worker - 1
            });
            Pool::new(pool, external_id)
        })
        .collect();
    let mut master = Master {
        configured_listeners,
        pools,
        config,
        exe,
        runtime,
        listeners,
        poll,
        signals,
        commands,
        notify,
        frontend: None,
        frontend_failures: 0,
        frontend_hold_until: None,
        workers: BTreeMap::new(),
        next_worker,
        kills: Vec::new(),
        shutdown: None,
        next_tick: Instant::now() + TICK,
        upgrade_child: None,
        upgrade_from: inheritance.map(|i| i.from),
    };
    master.start_frontend().map_err(MasterError::Frontend)?;
    master.start_initial_workers(Instant::now());
    let result = master.run();
    if master.superseded() {
        // The new master serves from the same runtime directory and command socket.
        master.runtime.keep();
    } else if let Some(path) = &master.config.control_socket {
        let _ = std::fs::remove_file(path);
    }
    result.map_err(MasterError::EventLoop)
}

struct Master {
    config: Config,
    /// The listeners as configured (before port 0 was resolved), to compare on reload.
    configured_listeners: Vec<protocol::control::ListenerSpec>,
    exe: PathBuf,
    runtime: RuntimeDir,
    listeners: Vec<TcpListener>,
    poll: Poll,
    signals: Signals,
    /// The command socket for `paddock status|reload|stop`, when configured.
    commands: Option<mio::net::UnixListener>,
    /// Where workers of `readiness = "notify"` pools say they are ready.
    notify: readiness::NotifySocket,
    frontend: Option<Frontend>,
    frontend_failures: u32,
    frontend_hold_until: Option<Instant>,
    pools: Vec<Pool>,
    workers: BTreeMap<WorkerId, Worker>,
    next_worker: WorkerId,
    /// Processes to SIGKILL at the given instant if they are still alive.
    kills: Vec<(Instant, Pid)>,
    shutdown: Option<Shutdown>,
    next_tick: Instant,
    /// The new master started by a binary upgrade, until it exits (or this one does).
    upgrade_child: Option<Pid>,
    /// In a master started by an upgrade: the old master, stopped once this one serves.
    upgrade_from: Option<Pid>,
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
                    COMMANDS => self.on_command_connections(),
                    NOTIFY => self.on_notify(Instant::now()),
                    Token(n) => {
                        let id = n as WorkerId - FIRST_WORKER_TOKEN as WorkerId;
                        match self.php_parent_pool(id) {
                            Some(pool) => self.on_php_parent_readable(pool),
                            None => self.on_worker_output(id),
                        }
                    }
                }
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let holds = self.pools.iter().filter_map(|p| p.hold_until);
        let health = self
            .workers
            .values()
            .filter(|w| !w.healthy && !w.is_starting())
            .map(|w| w.started + crate::pool::HEALTHY_AFTER);
        let kills = self.kills.iter().map(|(at, _)| *at);
        let drain = match self.shutdown {
            Some(Shutdown::Draining { deadline }) => Some(deadline),
            _ => None,
        };
        let tick = self.shutdown.is_none().then_some(self.next_tick);
        holds
            .chain(health)
            .chain(self.php_parent_deadlines())
            .chain(self.start_deadlines())
            .chain(kills)
            .chain(drain)
            .chain(tick)
            .chain(self.frontend_hold_until)
            .min()
    }

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
        self.credit_healthy_workers(now);
        if self.shutdown.is_some() {
            return;
        }
        if self.frontend.is_none() && self.frontend_hold_until.is_none_or(|t| now >= t) {
            if let Err(e) = self.start_frontend() {
                tracing::error!(error = %e, "cannot restart the front end");
                self.hold_frontend(now);
            }
        }
        self.check_php_parent_starts(now);
        self.check_start_timeouts(now);
        let tick = now >= self.next_tick;
        if tick {
            self.next_tick = now + TICK;
            self.check_recycling(now);
        }
        for pool in 0..self.pools.len() {
            self.size_pool(pool, now, tick);
        }
    }
}
