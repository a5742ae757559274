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

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};

use slab::Slab;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::conn::accept::StopSignal;

/// The parked connections of one listener: their deadlines, in order, and whether it stops.
#[derive(Debug, Default)]
pub(crate) struct IdleDeadlines {
    table: Mutex<Table>,
    /// Set once the listener stops; read without the lock by connections deciding their linger.
    stopping: AtomicBool,
    /// Tells the task that a deadline earlier than the one it sleeps for was armed.
    earlier: Notify,
}

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
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
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
        // here or sees `stopping` when it arms (`arm` reads it under the same lock).
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
    /// The deadline last armed (a poll that finds the same one does not touch the table).
    at: Option<Instant>,
}

/// An [`IdleTimer`] that has no entry.
const NO_KEY: u32 = u32::MAX;

impl IdleTimer<'_> {
    /// Whether the listener's stop has come.
    pub(crate) fn stopping(&self) -> bool {
        self.deadlines.stopping()
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
        if self.key == NO_KEY {
            return;
        }
        let key = self.key as usize;
        let mut table = self.deadlines.lock();
        if let Some(at) = table.entries.remove(key).at {
            table.order.remove(&(at, key));
        }
    }
}

#[cfg(test)]
mod tests;
