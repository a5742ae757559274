//! The deadlines of every parked connection of one listener, and its stop, kept in one place.
//!
//! Why: a parked HTTP/1.1 connection (`conn::http1_session`) holds nothing but its socket and
//! the future that waits on it, and that future is most of what an idle connection costs (its
//! task is the future, rounded up to tokio's 128-byte alignment). With a tokio `Sleep` for its
//! deadline (112 bytes) and a watcher of the stop signal (about 120) in every one of them, those
//! two were 40 % of the future. Here each parked connection holds an [`IdleTimer`] of 32 bytes
//! instead; its deadline and waker sit in the listener's table (about 70 bytes with its share of
//! the ordered index), and one task per listener ([`IdleDeadlines::run`]) sleeps until the
//! earliest deadline, wakes the connections whose deadline passed, and wakes them all when the
//! stop comes.
//!
//! The table is one mutex per listener. A connection arms its timer when it parks (once per
//! keep-alive request under load) and disarms it when it unparks: two short critical sections
//! a request, as tokio's own timer has (reset, then drop).
//!
//! The same task watches the listener's epoll set, where the sockets of connections parked
//! longer than [`DEEP_PARK_AFTER`] sleep outside tokio ([`ClientSocket`]): a socket there is
//! keyed by its connection's entry in the table, and its readability wakes that entry.

use std::collections::BTreeSet;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::Duration;

use rustix::buffer::spare_capacity;
use rustix::event::{epoll, Timespec};
use slab::Slab;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::conn::accept::StopSignal;
use crate::conn::client_socket::ClientSocket;

/// The parked connections of one listener: their deadlines, in order, and whether it stops.
#[derive(Debug)]
pub(crate) struct IdleDeadlines {
    table: Mutex<Table>,
    /// Set once the listener stops; read without the lock by connections deciding their linger.
    stopping: AtomicBool,
    /// Tells the task that a deadline earlier than the one it sleeps for was armed.
    earlier: Notify,
    /// Where the sockets of long-idle connections sleep ([`ClientSocket`]); `None` if it could
    /// not be made (then they stay with tokio).
    deep: Option<AsyncFd<OwnedFd>>,
    /// How long a connection is idle before its socket goes to sleep in `deep`.
    deep_after: Duration,
}

/// How long a parked connection waits before its socket leaves tokio for the listener's epoll
/// set: long enough that a connection between the requests of one page view (a browser's,
/// tens of milliseconds apart) never moves, short against the keep-alive timeout (75 s by
/// default), so that an idle connection spends nearly all its life in the cheap place.
pub(crate) const DEEP_PARK_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct Table {
    entries: Slab<Entry>,
    /// Armed entries by deadline; the key breaks ties.
    order: BTreeSet<(Instant, usize)>,
    /// The deadline the task sleeps until (`None`: none armed when it last looked).
    task_wakes_at: Option<Instant>,
}

#[derive(Debug)]
struct Entry {
    /// The deadline while armed; `None` once it fired (the connection re-arms on its next poll).
    at: Option<Instant>,
    waker: Waker,
}

/// A new epoll set, watched by tokio's driver.
#[allow(unsafe_code)] // tokio's registration of a raw descriptor (I/O safety, see below)
fn epoll_set() -> std::io::Result<AsyncFd<OwnedFd>> {
    let fd = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    // SAFETY: the `OwnedFd` is the only owner of the descriptor; it stays open and the same
    // until the `AsyncFd` drops it.
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(|e| e.into())
}

/// Sleeping sockets taken from the epoll set per wake-up of the task.
const EVENTS_PER_WAIT: usize = 256;

/// Readability of the epoll set, or never when there is none.
async fn readable(
    deep: &Option<AsyncFd<OwnedFd>>,
) -> std::io::Result<tokio::io::unix::AsyncFdReadyGuard<'_, OwnedFd>> {
    match deep {
        Some(deep) => deep.readable().await,
        None => std::future::pending().await,
    }
}

/// What [`IdleTimer::poll_until`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// The deadline has passed.
    Due,
    /// Armed: the task is woken at the deadline or at a stop.
    Armed,
    /// The listener is stopping and the caller had not said it knew: nothing was armed.
    Stopping,
}

impl IdleDeadlines {
    /// Must be called inside the runtime (the epoll set registers with its driver).
    pub(crate) fn new() -> Arc<Self> {
        Self::with_deep_park_after(DEEP_PARK_AFTER)
    }

    pub(crate) fn with_deep_park_after(deep_after: Duration) -> Arc<Self> {
        let deep = match epoll_set() {
            Ok(deep) => Some(deep),
            Err(e) => {
                warn!(error = %e, "no epoll set for long-idle connections; they stay with tokio");
                None
            }
        };
        Arc::new(Self {
            table: Mutex::default(),
            stopping: AtomicBool::new(false),
            earlier: Notify::new(),
            deep,
            deep_after,
        })
    }

    /// When a connection idle since `since` should put its socket to sleep, if it can.
    pub(crate) fn deep_park_at(&self, since: Instant) -> Option<Instant> {
        self.deep.as_ref().map(|_| since + self.deep_after)
    }

    /// Puts `socket` to sleep in the epoll set; its readability wakes `timer`'s connection.
    /// `false` when it stays with tokio (no set, or the move failed).
    pub(crate) fn sleep_deep(&self, socket: &mut ClientSocket, timer: &IdleTimer<'_>) -> bool {
        let (Some(deep), Some(key)) = (&self.deep, timer.key()) else {
            return false;
        };
        match socket.sleep_in(deep.get_ref().as_fd(), u64::from(key)) {
            Ok(()) => true,
            Err(e) => {
                debug!(error = %e, "a long-idle socket stays with tokio");
                false
            }
        }
    }

    /// Takes `socket` back from the epoll set into tokio.
    pub(crate) fn wake_deep(&self, socket: &mut ClientSocket) -> std::io::Result<()> {
        socket.wake_up(self.deep.as_ref().map(|d| d.get_ref().as_fd()))
    }

    /// Wakes the connections whose sleeping sockets became readable.
    fn wake_readable(&self, events: &[epoll::Event]) {
        let table = self.lock();
        let wakers: Vec<Waker> = events
            .iter()
            .filter_map(|event| usize::try_from(event.data.u64()).ok())
            .filter_map(|key| table.entries.get(key).map(|e| e.waker.clone()))
            .collect();
        drop(table);
        wakers.into_iter().for_each(Waker::wake);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().expect("not poisoned")
    }

    /// Whether the listener's stop has come.
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// A timer for one parked connection, not armed yet.
    pub(crate) fn timer(&self) -> IdleTimer<'_> {
        IdleTimer {
            deadlines: self,
            key: NO_KEY,
            deep: false,
            at: None,
        }
    }

    /// Wakes the parked connections whose deadline passed, until `stop` fires; then wakes every
    /// parked connection once (each then takes its drain linger) and goes on waking them at
    /// their deadlines. Runs until aborted, when the listener's connections are all gone.
    pub(crate) async fn run(self: Arc<Self>, mut stop: StopSignal) {
        let mut stop_seen = stop.borrow_and_update().is_some();
        if stop_seen {
            self.stop_now();
        }
        let sleep = tokio::time::sleep_until(Instant::now());
        tokio::pin!(sleep);
        loop {
            let next = self.wake_due();
            if let Some(at) = next {
                sleep.as_mut().reset(at);
            }
            tokio::select! {
                biased;
                changed = stop.changed(), if !stop_seen => {
                    // A dropped sender is a stop, as the accept loop takes it.
                    if changed.is_err() || stop.borrow_and_update().is_some() {
                        stop_seen = true;
                        self.stop_now();
                    }
                }
                ready = readable(&self.deep) => {
                    if let Ok(mut guard) = ready {
                        let deep = guard.get_inner().as_fd();
                        // Made here, not kept across the loop's awaits: an event is not `Send`.
                        let mut events = Vec::with_capacity(EVENTS_PER_WAIT);
                        // Not waiting (a zero timeout): the set is known to be readable.
                        let _ = epoll::wait(deep, spare_capacity(&mut events), Some(&Timespec::default()));
                        self.wake_readable(&events);
                        if events.len() < events.capacity() {
                            guard.clear_ready();
                        }
                    }
                }
                () = self.earlier.notified() => {}
                () = &mut sleep, if next.is_some() => {}
            }
        }
    }

    /// Wakes every entry whose deadline passed; the earliest deadline still armed.
    fn wake_due(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut due = Vec::new();
        let mut table = self.lock();
        while let Some(&(at, key)) = table.order.first() {
            if at > now {
                break;
            }
            table.order.pop_first();
            let entry = &mut table.entries[key];
            entry.at = None;
            due.push(entry.waker.clone());
        }
        let next = table.order.first().map(|&(at, _)| at);
        table.task_wakes_at = next;
        drop(table);
        due.into_iter().for_each(Waker::wake);
        next
    }

    fn stop_now(&self) {
        self.stopping.store(true, Ordering::Release);
        // Under the lock, so that a connection arming at the same time either is in the table
        // here or sees `stopping` when it arms (`poll_until` reads it under the same lock).
        let table = self.lock();
        let all: Vec<Waker> = table.entries.iter().map(|(_, e)| e.waker.clone()).collect();
        drop(table);
        all.into_iter().for_each(Waker::wake);
    }
}

/// One parked connection's place in its listener's [`IdleDeadlines`]; leaves it when dropped.
#[derive(Debug)]
pub(crate) struct IdleTimer<'a> {
    deadlines: &'a IdleDeadlines,
    /// The entry in the table, or [`NO_KEY`]: a `u32`, not an `Option<usize>`, to keep 8 bytes
    /// out of every parked connection.
    key: u32,
    /// This wait has put its connection's socket to sleep in the listener's epoll set (or
    /// tried to); it does so once. Kept here, where it takes no room of its own: it fills the
    /// key's padding.
    pub(crate) deep: bool,
    /// The deadline last armed (a poll that finds the same one does not touch the table).
    at: Option<Instant>,
}

/// An [`IdleTimer`] that has no entry.
const NO_KEY: u32 = u32::MAX;

impl IdleTimer<'_> {
    /// The listener this timer belongs to.
    pub(crate) fn deadlines(&self) -> &IdleDeadlines {
        self.deadlines
    }

    /// The timer's entry in the table, once armed.
    fn key(&self) -> Option<u32> {
        (self.key != NO_KEY).then_some(self.key)
    }

    /// `Due` when `at` has passed; else arms the timer for `at` with this task's waker.
    /// `knows_stop`: the caller already reacts to the stop (its `at` includes the drain
    /// linger); otherwise a stopping listener answers `Stopping` and arms nothing.
    pub(crate) fn poll_until(&mut self, at: Instant, knows_stop: bool, cx: &Context<'_>) -> Wait {
        if at <= Instant::now() {
            return Wait::Due;
        }
        if self.at == Some(at) && (knows_stop || !self.deadlines.stopping()) {
            // Armed for this deadline already, by this task. Had it fired, `at` would be past.
            return Wait::Armed;
        }
        let mut table = self.deadlines.lock();
        if !knows_stop && self.deadlines.stopping() {
            return Wait::Stopping;
        }
        let key = match self.key {
            NO_KEY => {
                let key = table.entries.insert(Entry {
                    at: Some(at),
                    waker: cx.waker().clone(),
                });
                self.key = u32::try_from(key).expect("fewer than 4 billion parked connections");
                key
            }
            key => {
                let key = key as usize;
                let entry = &mut table.entries[key];
                let old = entry.at.replace(at);
                if !entry.waker.will_wake(cx.waker()) {
                    entry.waker = cx.waker().clone();
                }
                if let Some(old) = old {
                    table.order.remove(&(old, key));
                }
                key
            }
        };
        table.order.insert((at, key));
        self.at = Some(at);
        if table.task_wakes_at.is_none_or(|wakes| at < wakes) {
            table.task_wakes_at = Some(at);
            drop(table);
            self.deadlines.earlier.notify_one();
        }
        Wait::Armed
    }
}

impl Drop for IdleTimer<'_> {
    fn drop(&mut self) {
        let Some(key) = self.key() else { return };
        let key = key as usize;
        let mut table = self.deadlines.lock();
        if let Some(at) = table.entries.remove(key).at {
            table.order.remove(&(at, key));
        }
    }
}

#[cfg(test)]
mod tests;
