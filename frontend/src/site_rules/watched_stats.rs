//! File-system answers kept from one request to the next while inotify reports no change, so
//! that a request for a file that has not changed costs no `stat`.
//!
//! Why: on a site that reads `.htaccess` files (the default) the directories on a request's
//! path are watched already ([`htaccess_watch`](super::htaccess_watch)), and a request drains
//! their change notices before it looks at anything. A directory's watch reports every change to
//! the names in it (created, removed, renamed, written, attributes changed), so an answer about
//! `dir/name` stays true until a notice about some name is applied. Then a remembered verdict
//! (the verdict cache) needs no `stat` at all: the one `lstat` of the requested file was 9 % of
//! the front end's CPU on a 1 KiB static file (docs/benchmarks.md, row 26).
//!
//! The answers are one runtime thread's (no lock, no memory the other thread writes), and all
//! of them are forgotten when any name in any watched directory changes: a count of such
//! notices ([`HtaccessFiles::stat_validity`]) is compared on every use. A site whose
//! application writes under its root all the time (a cache directory) therefore keeps few
//! answers and `stat`s as before; a site whose files change at a deploy keeps them all.
//!
//! Only what a watch can vouch for is kept:
//! - an answer about a path whose directory is watched and was watched before the `stat`
//!   (so a change after the `stat` is a notice to come);
//! - not an answer that went through a symbolic link at the end of the path (a change of the
//!   link's target is reported to the target's directory, which may not be watched), nor a
//!   refusal by the symlink policy.
//!
//! And no answer is used once it is a second old ([`MAX_AGE`]): a change the kernel does not
//! report to the watched directory (a file written through a hard link in another directory
//! or through a shared `mmap`, a file system mounted over a directory under the root) counts
//! within a second. nginx's `open_file_cache` has the same blind spot for its validity period
//! (`open_file_cache_valid`, 60 s by default). A static file served 70,000 times a second is
//! then asked about once a second per runtime thread.
//!
//! [`HtaccessFiles::stat_validity`]: super::htaccess_files::HtaccessFiles::stat_validity

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::Metadata;
use std::path::Path;
use std::time::Duration;

use rustix::time::{clock_gettime, ClockId};

/// Past this many answers a thread's list starts again.
const MAX_ANSWERS: usize = 4096;
/// How long an answer is used, at most, when no notice voids it.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(1);

/// What the answers of one request may be checked against: taken right after the request
/// drained the change notices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StatValidity {
    /// The `.htaccess` cache (one per configuration generation) whose watches vouch.
    pub(super) owner: u64,
    /// Its count of `.htaccess` notices: which of this thread's directory records are current.
    pub(super) notices: u64,
    /// Its count of notices about any name in a watched directory.
    pub(super) changes: u64,
}

#[derive(Default)]
struct Answers {
    owner: u64,
    changes: u64,
    /// Each answer with when it was found ([`coarse_now`]).
    by_path: HashMap<OsString, (Option<Metadata>, Duration)>,
}

/// The monotonic clock as the kernel last ticked it (a few milliseconds coarse): read without a
/// system call and without reading the hardware counter, which is all a one-second bound needs.
fn coarse_now() -> Duration {
    let now = clock_gettime(ClockId::MonotonicCoarse);
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

thread_local! {
    static ANSWERS: RefCell<Answers> = RefCell::default();
}

/// The remembered answer for `path`, if nothing has changed since it was found.
pub(crate) fn recall(validity: &StatValidity, path: &Path) -> Option<Option<Metadata>> {
    ANSWERS.with(|answers| {
        let answers = answers.borrow();
        if (answers.owner, answers.changes) != (validity.owner, validity.changes) {
            return None;
        }
        let (answer, found) = answers.by_path.get(path.as_os_str())?;
        (coarse_now().saturating_sub(*found) < MAX_AGE).then(|| answer.clone())
    })
}

/// Whether an answer about `path` found from now on may be remembered: its directory is
/// watched. Asked before the `stat`, so that a change after it is a notice to come.
pub(crate) fn may_remember(validity: &StatValidity, path: &Path) -> bool {
    path.parent().is_some_and(|dir| {
        super::htaccess_files::watched_on_this_thread(validity.owner, validity.notices, dir)
    })
}

/// Remembers `answer` for `path` (the caller checked [`may_remember`] before the `stat`).
pub(crate) fn remember(validity: &StatValidity, path: &Path, answer: &Option<Metadata>) {
    ANSWERS.with(|answers| {
        let mut answers = answers.borrow_mut();
        let stale = (answers.owner, answers.changes) != (validity.owner, validity.changes);
        if stale || answers.by_path.len() >= MAX_ANSWERS {
            answers.owner = validity.owner;
            answers.changes = validity.changes;
            answers.by_path.clear();
        }
        answers
            .by_path
            .insert(path.as_os_str().to_owned(), (answer.clone(), coarse_now()));
    });
}

/// Answers this thread holds (tests).
#[cfg(test)]
pub(crate) fn held() -> usize {
    ANSWERS.with(|answers| answers.borrow().by_path.len())
}

#[cfg(test)]
mod tests;
