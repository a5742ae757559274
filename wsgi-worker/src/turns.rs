//! Requests start running in the order they were read.
//!
//! A thread that has read a request needs the GIL to run the application. CPython's GIL is not
//! fair: a thread that asks for it while it happens to be free takes it ahead of threads that
//! have waited, and a waiter passed over that way only forces a switch after the switch interval
//! (5 ms). Under load a process holds a queue of started-but-waiting threads (8 threads, and as
//! many requests sent ahead), and the one passed over again and again is the tail: p99 of the
//! JSON endpoint 12–23 ms with send_ahead, against 5.5–7.4 ms once requests take turns
//! (docs/benchmarks.md, "Requests taking turns").
//!
//! So a thread takes a turn, in the order requests were read, before asking for the GIL, and
//! hands it to the next thread once it has the GIL ([`Turn`] is dropped). Only the start is
//! ordered: a running request that lets go of the GIL (for I/O, a lock, `time.sleep`) competes
//! for it again as before, so an application that waits in the middle of a request is not
//! serialised by this.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread::{self, Thread};

/// The queue of threads waiting to start a request.
#[derive(Debug, Default)]
pub(crate) struct Turns {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Whether a thread holds the turn now.
    taken: bool,
    /// Threads waiting for it, first come first.
    waiting: VecDeque<Waiter>,
    /// The next waiter's identity in the queue.
    next_ticket: u64,
}

#[derive(Debug)]
struct Waiter {
    thread: Thread,
    ticket: u64,
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
        if !state.taken {
            state.taken = true;
            return Turn { turns: self };
        }
        let ticket = state.next_ticket;
        state.next_ticket = ticket.wrapping_add(1);
        state.waiting.push_back(Waiter {
            thread: thread::current(),
            ticket,
        });
        // Handed over by `pass`, which removes the waiter from the queue; a wake-up that finds
        // it still queued was spurious (`park` allows them).
        while state.waiting.iter().any(|w| w.ticket == ticket) {
            drop(state);
            thread::park();
            state = self.lock();
        }
        Turn { turns: self }
    }

    /// How many threads wait for a turn (for tests).
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }

    fn pass(&self) {
        let mut state = self.lock();
        match state.waiting.pop_front() {
            // The turn stays taken: it goes straight to the next waiter, nobody can slip in.
            Some(next) => next.thread.unpark(),
            None => state.taken = false,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
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
