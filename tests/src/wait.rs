//! Waiting on events instead of on the clock: the one bound for "this must happen" ([`PATIENCE`]),
//! polling helpers, and [`Hold`], which occupies a worker until the test lets it go.
//!
//! A test that sleeps and then asserts that something has happened fails on a loaded machine;
//! a test that polls for the event with a generous bound only gets slower there. Bounds on how
//! *fast* something must be belong to the few tests whose point is speed, and those derive them
//! from a baseline measured in the same run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long a test waits for an event that must happen (a log line, a status field, a closed
/// connection) before it fails. Only a failing test ever waits this long, so it is generous: a
/// 2-core machine running the whole suite beside a CPU hog must never reach it.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// How often the polling helpers look again.
const POLL: Duration = Duration::from_millis(20);

/// Polls `condition` until it holds; panics naming `what` after [`PATIENCE`].
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    wait_for(what, || condition().then_some(()));
}

/// Polls `check` until it returns a value; panics naming `what` after [`PATIENCE`].
pub fn wait_for<T>(what: &str, check: impl FnMut() -> Option<T>) -> T {
    poll(PATIENCE, check)
        .unwrap_or_else(|| panic!("timed out after {PATIENCE:?} waiting for {what}"))
}

/// Polls `check` until it returns a value, or `None` once `limit` has passed.
pub fn poll<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// A worker held by `tests/site/hold.php` until [`Hold::release`] (or drop): the script polls
/// for a release file, so the worker stays busy exactly as long as the test needs it, however
/// slow the machine.
#[derive(Debug)]
pub struct Hold {
    _dir: tempfile::TempDir,
    file: PathBuf,
}

impl Hold {
    pub fn new() -> Hold {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("hold.release");
        Hold { _dir: dir, file }
    }

    /// The path (and query) of a request that holds its worker until released.
    pub fn path(&self) -> String {
        format!("/hold.php?until={}", self.file.display())
    }

    /// Lets every request of this hold answer.
    pub fn release(&self) {
        std::fs::write(&self.file, b"").expect("write the release file");
    }
}

impl Default for Hold {
    fn default() -> Self {
        Self::new()
    }
}

// Dropping the hold removes its directory, which releases the script too.
