//! Requests start running in the order they were read.
//!
//! A thread that has read a request needs the GIL to run the application. CPython's GIL is not
//! fair: a thread that asks for it while it happens to be free takes it ahead of threads that
//! have waited, and a waiter passed over that way only forces a switch after the switch interval
//! (5 ms). Under load a process holds a queue of started-but-waiting threads (8 threads, and as
//! many requests sent ahead), and the one passed over again and again is the tail: p99 of the
//! Flask JSON endpoint 12–23 ms with send_ahead, against 5.5–7.4 ms once requests take turns,
//! for about the same requests a second (docs/benchmarks.md, "Requests taking turns in
//! paddock-wsgi").
//!
//! So a thread takes a turn, in the order requests were read, before asking for the GIL, and
//! hands it to the next thread once it has the GIL ([`Turn`] is dropped). Only the start is
//! ordered: a running request that lets go of the GIL (for I/O, a lock, `time.sleep`) competes
//! for it again as before, so an application that waits in the middle of a request is not
//! serialised by this.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// Tickets handed out in the order threads ask, and the one whose turn it is.
#[derive(Debug, Default)]
pub(crate) struct Turns {
    state: Mutex<Tickets>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Tickets {
    /// The ticket the next thread to ask gets.
    next: u64,
    /// The ticket whose holder may ask for the GIL now.
    serving: u64,
}

/// The turn to start a request: held until the thread has the GIL, then handed on by `drop`.
#[derive(Debug)]
#[must_use = "the turn passes to the next thread when dropped"]
pub(crate) struct Turn<'a> {
    turns: &'a Turns,
}

impl Turns {
    /// Waits until every thread that asked before has had its turn.
    pub(crate) fn take(&self) -> Turn<'_> {
        let mut state = self.lock();
        let ticket = state.next;
        state.next = ticket.wrapping_add(1);
        while state.serving != ticket {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        Turn { turns: self }
    }

    /// How many threads wait for a turn (for tests).
    #[cfg(test)]
    fn waiting(&self) -> u64 {
        let state = self.lock();
        state.next.wrapping_sub(state.serving).saturating_sub(1)
    }

    fn pass(&self) {
        let mut state = self.lock();
        state.serving = state.serving.wrapping_add(1);
        drop(state);
        // Every waiter wakes and the one holding the next ticket goes on. Measured against
        // waking that one alone (a queue of parked threads, unparked in order): on the Flask
        // page, 5.0–6.2k against 4.7–5.4k req/s with the same p99 (docs/benchmarks.md,
        // "Requests taking turns in paddock-wsgi"); at most `threads` - 1 wait.
        self.changed.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, Tickets> {
        // No code holding this lock can panic, so a poisoned lock's state is still whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.turns.pass();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;
    use std::time::Duration;

    /// Threads that queue for a turn get it in the order they queued, each only after the one
    /// before has handed it on.
    #[test]
    fn turns_go_in_the_order_asked() {
        let turns = Turns::default();
        let order = Mutex::new(Vec::new());
        thread::scope(|scope| {
            let first = turns.take();
            for n in 0..5 {
                let (turns, order) = (&turns, &order);
                scope.spawn(move || {
                    let turn = turns.take();
                    order.lock().unwrap().push(n);
                    drop(turn);
                });
                // The next thread starts only once this one is queued: the queue's order is
                // known.
                while turns.waiting() < n + 1 {
                    thread::sleep(Duration::from_millis(1));
                }
            }
            assert!(
                order.lock().unwrap().is_empty(),
                "nobody ran while the first held its turn"
            );
            drop(first);
        });
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
        // Everyone has handed it on: the next asker takes it at once.
        drop(turns.take());
    }
}
