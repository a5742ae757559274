//! Handing a forked worker to the master: the process side of the warm parent, and the one
//! place in the crate that forks.
//!
//! The master is a child subreaper. The parent forks a middle process; the middle process forks
//! the worker, makes it the leader of its own process group (so that the master's `killpg`
//! reaches it and whatever it starts), reports its pid to the master and exits. The orphaned
//! worker is re-parented to the master, which reaps, times out and recycles it exactly as a
//! php-cgi worker it started itself. The parent never has a worker as its child, so its death
//! costs no worker anything.
#![allow(unsafe_code)]

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::wait::waitpid;
use nix::unistd::{fork, getppid, setpgid, ForkResult, Pid};

/// Which side of [`fork_worker`] this process is on.
#[derive(Debug)]
pub(crate) enum Forked {
    /// The new worker: it still has to call [`become_masters_child`].
    Worker,
    /// The warm parent, after the middle process has reported and exited.
    Parent,
}

/// Forks a worker through a middle process that calls `report` with the worker's pid (0 when
/// the second fork failed) before it exits.
pub(crate) fn fork_worker(report: impl FnOnce(i32)) -> nix::Result<Forked> {
    // SAFETY: the warm parent has a single thread (it never starts one, and PHP's non-thread-safe
    // build starts none), so the child gets a consistent copy of all memory, locks included.
    match unsafe { fork() }? {
        ForkResult::Parent { child } => {
            // The middle process exits at once; reap it so it leaves no zombie.
            while let Err(nix::errno::Errno::EINTR) = waitpid(child, None) {}
            Ok(Forked::Parent)
        }
        // SAFETY: as above: this middle process is single-threaded too.
        ForkResult::Child => match unsafe { fork() } {
            Ok(ForkResult::Child) => Ok(Forked::Worker),
            Ok(ForkResult::Parent { child }) => {
                // Done here as well as in the worker, so the group exists whichever runs first:
                // the master may signal the group as soon as it has the pid.
                let _ = setpgid(child, child);
                report(child.as_raw());
                // SAFETY: _exit ends this process without running atexit handlers or flushing
                // stdio buffers copied from the parent, which belong to the parent.
                unsafe { libc::_exit(0) }
            }
            Err(_) => {
                report(0);
                // SAFETY: as above.
                unsafe { libc::_exit(1) }
            }
        },
    }
}

/// In a new worker: waits until the middle process has exited and the master has adopted this
/// process, then asks for SIGTERM when the master dies (set any earlier, it would fire when the
/// middle process exits). Fails if the master is not the new parent within `timeout` (it is not
/// a subreaper, or it died).
pub(crate) fn become_masters_child(master: Pid, timeout: Duration) -> Result<(), String> {
    let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
    let deadline = Instant::now() + timeout;
    while getppid() != master {
        if Instant::now() >= deadline {
            return Err(format!(
                "not adopted by the master (pid {master}) within {timeout:?}; parent is {}",
                getppid()
            ));
        }
        std::thread::sleep(Duration::from_micros(50));
    }
    nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(|e| format!("prctl: {e}"))?;
    // The master may have died between the check and the prctl.
    if getppid() != master {
        return Err("the master exited".into());
    }
    Ok(())
}
