//! Handing a forked worker to the master: the process side of the warm parent, and the one
//! place in the crate that forks.
//!
//! The master is a child subreaper. The parent forks a middle process; the middle process forks
//! the workers, makes each the leader of its own process group (so that the master's `killpg`
//! reaches it and whatever it starts), reports their pids to the master and exits. The orphaned
//! workers are re-parented to the master, which reaps, times out and recycles them exactly as
//! php-cgi workers it started itself. The parent never has a worker as its child, so its death
//! costs no worker anything.
//!
//! Forking this process is not cheap: PHP with Debian's extensions maps about 110 libraries in
//! 580 areas, and a fork copies every area's bookkeeping (most of a fork's time, `perf`). So one
//! middle process forks up to [`GROUP`] workers, asked for at once, instead of one each (a burst
//! of 32 workers costs 8 middle processes, not 32), and the parent does not wait for a middle
//! process before it takes the next requests: middle processes of different groups run side by
//! side. They are reaped before the parent waits for more requests, so none stays a zombie.
#![allow(unsafe_code)]

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, getppid, setpgid, ForkResult, Pid};

/// The most workers one middle process forks. A worker waits for its middle process to exit
/// (to become the master's child), so a larger group delays its first workers by the forks
/// after theirs.
pub(crate) const GROUP: usize = 4;

/// A fork request: the worker id, its listening socket and its output pipe.
pub(crate) type Request = (u64, OwnedFd, OwnedFd);

/// Which side of [`fork_workers`] this process is on.
#[derive(Debug)]
pub(crate) enum Forked {
    /// A new worker, with its own request (the others' descriptors closed): it still has to
    /// call [`become_masters_child`].
    Worker(Request),
    /// The warm parent. The middle process reports and exits on its own; the parent must
    /// [`reap`] it (not at once: it can fork the next workers meanwhile).
    Parent { middle: Pid },
}

/// Forks the workers of `group` through one middle process, which calls `report(id, pid)` for
/// each (pid 0 when that fork failed) before it exits. In the parent, the group's descriptors
/// are closed when this returns.
pub(crate) fn fork_workers(group: Vec<Request>, report: impl Fn(u64, i32)) -> nix::Result<Forked> {
    // SAFETY: the warm parent has a single thread (it never starts one, and PHP's non-thread-safe
    // build starts none), so the child gets a consistent copy of all memory, locks included.
    match unsafe { fork() }? {
        ForkResult::Parent { child } => Ok(Forked::Parent { middle: child }),
        ForkResult::Child => {
            for request in group {
                // SAFETY: as above: this middle process is single-threaded too.
                match unsafe { fork() } {
                    // Returning drops the rest of the group: the worker keeps only its own.
                    Ok(ForkResult::Child) => return Ok(Forked::Worker(request)),
                    Ok(ForkResult::Parent { child }) => {
                        // Done here as well as in the worker, so the group exists whichever runs
                        // first: the master may signal the group as soon as it has the pid.
                        let _ = setpgid(child, child);
                        report(request.0, child.as_raw());
                    }
                    Err(_) => report(request.0, 0),
                }
                // The request's descriptors close here, before the next worker's fork.
            }
            // SAFETY: _exit ends this process without running atexit handlers or flushing
            // stdio buffers copied from the parent, which belong to the parent.
            unsafe { libc::_exit(0) }
        }
    }
}

/// Waits for middle processes to exit, so that none is left a zombie. Each exits right after its
/// fork and report, within a millisecond or two.
pub(crate) fn reap(middles: &mut Vec<Pid>) {
    for middle in middles.drain(..) {
        while let Err(nix::errno::Errno::EINTR) = waitpid(middle, None) {}
    }
}

/// In a new worker: waits until the middle process has exited and the master has adopted this
/// process, then asks for SIGTERM when the master dies (set any earlier, it would fire when the
/// middle process exits). Fails if the master is not the new parent within `timeout` (it is not
/// a subreaper, or it died).
///
/// The wait is for a signal, not a poll: the worker asks for SIGUSR2 (blocked, so it only
/// queues) when its parent exits, and the kernel sends it once the orphan has been re-parented.
/// A middle process forks up to four workers before it exits, so its first worker may wait a
/// few milliseconds; thirty such workers polling every 50 µs took a core from the forks.
pub(crate) fn become_masters_child(master: Pid, timeout: Duration) -> Result<(), String> {
    let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
    let mut orphaned = SigSet::empty();
    orphaned.add(Signal::SIGUSR2);
    let mut mask = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&orphaned), Some(&mut mask))
        .map_err(|e| format!("sigprocmask: {e}"))?;
    let adopted = wait_for_adoption(master, timeout, &orphaned);
    // A SIGUSR2 that came after the last check is spent: take it before the mask goes back.
    let _ = take_signal(&orphaned, Duration::ZERO);
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&mask), None);
    adopted
}

fn wait_for_adoption(master: Pid, timeout: Duration, orphaned: &SigSet) -> Result<(), String> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGUSR2).map_err(|e| format!("prctl: {e}"))?;
    // Checked after the prctl: a middle process that exited before it sent no signal, but then
    // the master is already the parent.
    let deadline = Instant::now() + timeout;
    while getppid() != master {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "not adopted by the master (pid {master}) within {timeout:?}; parent is {}",
                getppid()
            ));
        }
        let _ = take_signal(orphaned, left);
    }
    nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(|e| format!("prctl: {e}"))?;
    // The master may have died between the check and the prctl.
    if getppid() != master {
        return Err("the master exited".into());
    }
    Ok(())
}

/// Waits up to `timeout` for one of the blocked signals `set` and takes it off the queue.
fn take_signal(set: &SigSet, timeout: Duration) -> bool {
    let timeout = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `set` is a valid signal set, no siginfo is asked for (null), and `timeout` lives
    // through the call.
    unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &timeout) > 0 }
}
