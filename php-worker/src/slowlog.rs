//! The slow-request log's clock: a watcher thread that flags the request in flight once it has
//! run for the pool's `slowlog_timeout`. PHP's own thread then logs the request's stack at the
//! VM's next interrupt check (`csrc/slowlog.c`), so nothing here reads PHP's state.
//!
//! The thread is started in the worker (never in the warm parent, which must stay
//! single-threaded to fork safely). Flagging and clearing happen under one lock, so a flag
//! raised for one request can never fire in the next.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::ffi;

/// The worker's side of the watcher: say when a request starts and ends.
#[derive(Debug)]
pub(crate) struct SlowLog {
    timeout: Duration,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    /// When the request in flight becomes slow; `None` between requests and once flagged.
    deadline: Mutex<Option<Instant>>,
    changed: Condvar,
}

impl SlowLog {
    /// Starts the watcher for requests slower than `timeout`, logging `depth` frames at most.
    pub(crate) fn start(timeout: Duration, depth: u32) -> std::io::Result<SlowLog> {
        ffi::slowlog_install(depth);
        let shared = Arc::new(Shared::default());
        let watched = shared.clone();
        std::thread::Builder::new()
            .name("slowlog".into())
            .spawn(move || watch(&watched))?;
        Ok(SlowLog { timeout, shared })
    }

    /// A request starts now.
    pub(crate) fn begin(&self) {
        *self.shared.deadline.lock().unwrap() = Some(Instant::now() + self.timeout);
        self.shared.changed.notify_one();
    }

    /// The request has ended: a flag it did not use is dropped.
    pub(crate) fn end(&self) {
        let mut deadline = self.shared.deadline.lock().unwrap();
        *deadline = None;
        ffi::clear_slow_request();
    }
}

fn watch(shared: &Shared) {
    let mut deadline = shared.deadline.lock().unwrap();
    loop {
        deadline = match *deadline {
            None => shared.changed.wait(deadline).unwrap(),
            Some(at) => {
                let now = Instant::now();
                if now >= at {
                    // Under the lock: `end` cannot run between the check and the flag.
                    ffi::flag_slow_request();
                    *deadline = None;
                    deadline
                } else {
                    shared.changed.wait_timeout(deadline, at - now).unwrap().0
                }
            }
        };
    }
}
