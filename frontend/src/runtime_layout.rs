//! How the front end's event loops are laid out over the machine's cores.
//!
//! - [`RuntimeLayout::PerCore`] (the default): one single-threaded tokio runtime per core, each
//!   on its own thread and each accepting from every public listener, like nginx's worker
//!   processes. A connection lives and dies on the thread that accepted it: its tasks, timers
//!   and socket never move, so no work-stealing, no cross-thread wake-ups and no cache lines
//!   bouncing between cores for one request.
//! - [`RuntimeLayout::PerCorePinned`]: the same, each event loop's thread pinned to a CPU of its
//!   own (loop n on the n-th CPU the front end may use), like nginx's `worker_cpu_affinity auto`.
//!   Threads the loops start for blocking work are not pinned.
//! - [`RuntimeLayout::Shared`]: one multi-threaded tokio runtime (a worker thread per core) that
//!   moves tasks between its threads to balance them.
//!
//! Why per core: measured side by side (docs/benchmarks.md, row 23), the per-core layout served
//! 1 KiB static files 6–29 % faster over HTTP/1.1 and 1 MiB files 1–88 % faster than the shared
//! runtime, where `perf stat` had shown the shared runtime migrating four times as often as
//! nginx and leaving part of a core idle. The cost: connections do not move, so a thread whose
//! connections happen to be the busy ones cannot hand work to an idle neighbour (nginx has the
//! same property); the listeners' accept queue is shared, so new connections go to whichever
//! thread is free to accept.
//!
//! Everything that is not a public connection (the control channel to the master, the admin
//! listener, HTTP/3, ACME, the metrics history) runs on the first runtime, on the main thread.
//! Upstream connections to workers are shared by every thread: a request may take a slot whose
//! kept connection another thread opened. It moves the connection to its own event loop first
//! ([`current_event_loop`]): otherwise the worker's reply would wake the other thread, which
//! would then wake this one, two threads up for one reply.

use std::cell::Cell;
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use protocol::control::ListenerKind;
use tokio::sync::oneshot;

use crate::conn::accept::{self, Listener, StopSignal};
use crate::conn::limits::ConnectionLimits;
use crate::state::State;

thread_local! {
    /// The per-core event loop this thread runs (1 for the main thread's); 0 on a thread of the
    /// shared runtime, where every thread polls the same reactor.
    static EVENT_LOOP: Cell<u32> = const { Cell::new(0) };
}

/// The event loop of the calling thread: a socket registered from another one is watched by
/// that thread (see the module's comment). 0 where that does not matter (shared layout).
pub(crate) fn current_event_loop() -> u32 {
    EVENT_LOOP.with(Cell::get)
}

/// The layout of the front end's event loops (`server.frontend_runtime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RuntimeLayout {
    #[default]
    PerCore,
    PerCorePinned,
    Shared,
}

impl RuntimeLayout {
    /// The configuration's spellings.
    pub const NAMES: [&'static str; 3] = ["per-core", "per-core-pinned", "shared"];

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "per-core" => Some(Self::PerCore),
            "per-core-pinned" => Some(Self::PerCorePinned),
            "shared" => Some(Self::Shared),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::PerCore => "per-core",
            Self::PerCorePinned => "per-core-pinned",
            Self::Shared => "shared",
        }
    }

    fn is_per_core(self) -> bool {
        matches!(self, Self::PerCore | Self::PerCorePinned)
    }

    /// The runtime of the main thread.
    pub(crate) fn main_runtime(self) -> anyhow::Result<tokio::runtime::Runtime> {
        // Read before the main thread's loop is pinned.
        cores();
        allowed_cpus();
        let mut builder = match self {
            Self::PerCore => tokio::runtime::Builder::new_current_thread(),
            Self::PerCorePinned => {
                let mut builder = tokio::runtime::Builder::new_current_thread();
                // A thread inherits its creator's CPUs: the threads a pinned loop starts for
                // blocking work (file reads, DNS) get back every CPU the front end may use.
                let allowed = allowed_cpus();
                builder.on_thread_start(move || {
                    if let Some(allowed) = &allowed {
                        let _ = sched_setaffinity(Pid::from_raw(0), allowed);
                    }
                });
                builder
            }
            Self::Shared => {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                builder.thread_name("paddock-frontend");
                builder
            }
        };
        builder
            .enable_all()
            .build()
            .context("cannot start the async runtime")
    }

    /// Marks the calling thread as running per-core event loop `n` (1 for the main thread), and
    /// pins it to the n-th allowed CPU (round them) when the layout says so.
    pub(crate) fn enter_event_loop(self, n: u32) {
        if self.is_per_core() {
            EVENT_LOOP.with(|current| current.set(n));
        }
        if self == Self::PerCorePinned {
            pin_to_nth_cpu(n.saturating_sub(1) as usize);
        }
    }

    /// How many runtimes run beside the main thread's: one for every core after the first
    /// (per core), none (shared).
    fn more_threads(self) -> usize {
        match self {
            Self::PerCore | Self::PerCorePinned => cores() - 1,
            Self::Shared => 0,
        }
    }
}

/// Serves the public listeners on the layout's other threads, each with its own
/// single-threaded runtime and its own copy (a duplicated descriptor) of every public listener.
/// Each receiver fires when that thread's listeners have stopped and drained.
pub(crate) fn serve_on_other_threads(
    layout: RuntimeLayout,
    listeners: &[Listener],
    state: &Arc<State>,
    limits: &Arc<ConnectionLimits>,
    stop: &StopSignal,
) -> anyhow::Result<Vec<oneshot::Receiver<()>>> {
    let mut stopped = Vec::new();
    for n in 1..=layout.more_threads() {
        let mut copies = Vec::new();
        for listener in listeners
            .iter()
            .filter(|l| l.spec.kind != ListenerKind::Admin)
        {
            let fd = std::os::fd::AsFd::as_fd(&listener.tcp)
                .try_clone_to_owned()
                .with_context(|| format!("listener `{}`", listener.spec.name))?;
            let tcp = std::net::TcpListener::from(fd);
            copies.push((listener.spec.clone(), tcp, listener.tls.clone()));
        }
        let (state, limits, stop) = (state.clone(), limits.clone(), stop.clone());
        let runtime = layout.main_runtime()?;
        let (done, stopped_here) = oneshot::channel();
        std::thread::Builder::new()
            // Short: a thread's name is cut at 15 bytes.
            .name(format!("paddock-loop-{n}"))
            .spawn(move || {
                layout.enter_event_loop(n as u32 + 1);
                runtime.block_on(async move {
                    let mut tasks = Vec::new();
                    for (spec, tcp, tls) in copies {
                        // Registered here, with this thread's event loop.
                        let tcp = match tokio::net::TcpListener::from_std(tcp) {
                            Ok(tcp) => tcp,
                            Err(e) => {
                                tracing::error!(listener = %spec.name, error = %e, "cannot watch a listener copy");
                                continue;
                            }
                        };
                        let listener = Listener { spec, tcp, tls };
                        let serving = accept::serve(listener, state.clone(), limits.clone(), stop.clone());
                        tasks.push(tokio::spawn(serving));
                    }
                    for task in tasks {
                        let _ = task.await;
                    }
                });
                let _ = done.send(());
            })
            .context("cannot start a front-end thread")?;
        stopped.push(stopped_here);
    }
    Ok(stopped)
}

/// The cores the front end may use (its CPUs, within its cgroup's quota), as they were before
/// any loop was pinned: a pinned thread would count one.
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The CPUs the front end may run on (its `taskset`, cgroup cpuset), as they were before any
/// loop was pinned: read once, by the main thread as it builds its runtime, since a pinned
/// thread (and every thread it starts) would read its own CPU alone. `None` if the kernel will
/// not say.
fn allowed_cpus() -> Option<CpuSet> {
    static ALLOWED: OnceLock<Option<CpuSet>> = OnceLock::new();
    *ALLOWED.get_or_init(|| sched_getaffinity(Pid::from_raw(0)).ok())
}

/// Pins the calling thread to the n-th of the allowed CPUs (round them); left as it is if
/// the kernel refuses.
fn pin_to_nth_cpu(n: usize) {
    let Some(allowed) = allowed_cpus() else {
        return;
    };
    let cpus: Vec<usize> = (0..CpuSet::count())
        .filter(|&cpu| allowed.is_set(cpu).unwrap_or(false))
        .collect();
    if cpus.is_empty() {
        return;
    }
    let mut one = CpuSet::new();
    if one.set(cpus[n % cpus.len()]).is_ok() {
        if let Err(e) = sched_setaffinity(Pid::from_raw(0), &one) {
            tracing::warn!(error = %e, "cannot pin an event loop to its CPU; it runs unpinned");
        }
    }
}
