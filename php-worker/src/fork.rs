//! Handing a forked worker to the master: the process side of the warm parent, and the one
//! place in the crate that forks.
//!
//! The master is a child subreaper. A worker is forked by a middle process, a child of the
//! parent: the middle process forks its workers, makes each the leader of its own process group
//! (so that the master's `killpg` reaches it and whatever it starts), reports their pids to the
//! master and exits. The orphaned workers are re-parented to the master, which reaps, times out
//! and recycles them exactly as php-cgi workers it started itself. The parent never has a worker
//! as its child, so its death costs no worker anything.
//!
//! Forking this process is not cheap: PHP with Debian's extensions maps about 110 libraries in
//! 580 areas, and a fork copies every area's bookkeeping (most of a fork's time, `perf`). Two
//! things keep that off a request's way:
//! - the middle process is forked *before* it is needed: a spare one waits for the next fork
//!   requests itself, on the control socket, so a new worker costs the time of one fork, not two.
//!   Once it has taken its requests it tells the parent, which forks the next spare while this
//!   one forks its workers (measured: sooner pids than forking the spare after the workers);
//! - one middle process forks up to [`GROUP`] workers asked for at once (a burst of 32 workers
//!   costs 8 middle processes, not 32).
//!
//! The parent ignores SIGCHLD, so the kernel reaps its middle processes as they exit: none stays
//! a zombie, and the parent never waits for one.
#![allow(unsafe_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use nix::sys::signal::{signal, sigprocmask, SigHandler, SigSet, SigmaskHow, Signal};
use nix::unistd::{fork, getpid, getppid, pipe2, setpgid, ForkResult, Pid};

/// The most workers one middle process forks. A worker waits for its middle process to exit
/// (to become the master's child), so a larger group delays its first workers by the forks
/// after theirs.
pub(crate) const GROUP: usize = 4;

/// A middle process's name, while it waits and forks (`ps` tells it from the parent and the
/// workers; a new worker keeps it until it is adopted).
const MIDDLE_NAME: &std::ffi::CStr = c"php-fork";

/// A fork request: the worker id, its listening socket and its output pipe.
pub(crate) type Request = (u64, OwnedFd, OwnedFd);

/// What a spare middle process found on the control socket.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Taken {
    /// Fork requests: it forks them, and the parent forks the next spare.
    Requests,
    /// The master closed the channel: the pool was removed or reloaded, or paddock stops.
    End,
    /// The channel failed (the middle process said why on stderr).
    Broken,
    /// The middle process died before it said anything (killed): the parent forks another.
    Died,
}

/// Which side of [`fork_spare_middle`] this process is on.
#[derive(Debug)]
pub(crate) enum Forked {
    /// A new worker, with its own request (the others' descriptors closed): it still has to
    /// call [`become_masters_child`].
    Worker(Request),
    /// The warm parent, with the spare middle process it forked.
    Parent(SpareMiddle),
}

/// The parent's side of a spare middle process: the pipe on which it says what it took.
#[derive(Debug)]
pub(crate) struct SpareMiddle {
    told: File,
}

impl SpareMiddle {
    /// Blocks until the spare middle process has taken fork requests, found the channel's end,
    /// or died.
    pub(crate) fn wait(mut self) -> Taken {
        let mut said = [0u8; 1];
        loop {
            return match self.told.read(&mut said) {
                Ok(1) => match said[0] {
                    b'R' => Taken::Requests,
                    b'E' => Taken::End,
                    _ => Taken::Broken,
                },
                Ok(_) => Taken::Died,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => Taken::Broken,
            };
        }
    }
}

/// In the warm parent, once: its middle processes are reaped by the kernel as they exit.
pub(crate) fn reap_middles_automatically() -> nix::Result<()> {
    // SAFETY: SIG_IGN installs no handler; the parent has one thread.
    unsafe { signal(Signal::SIGCHLD, SigHandler::SigIgn) }.map(drop)
}

/// Forks a spare middle process. In it, `take` waits for the next group of fork requests (`None`
/// at the channel's end, `Err` with a message when it fails); the middle process tells the
/// parent, then forks a worker for each request, calling `report(id, pid)` for each (pid 0 when
/// that fork failed), and exits. The parent gets the spare back at once.
pub(crate) fn fork_spare_middle(
    take: impl FnOnce() -> Result<Option<Vec<Request>>, String>,
    report: impl Fn(u64, i32),
) -> nix::Result<Forked> {
    let (told, tell) = pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let parent = getpid();
    // SAFETY: the warm parent has a single thread (it never starts one, and PHP's non-thread-safe
    // build starts none), so the child gets a consistent copy of all memory, locks included.
    match unsafe { fork() }? {
        ForkResult::Parent { .. } => Ok(Forked::Parent(SpareMiddle {
            told: File::from(told),
        })),
        ForkResult::Child => {
            drop(told);
            middle_process(parent, File::from(tell), take, report)
        }
    }
}

/// A middle process's life; returns only in a new worker.
fn middle_process(
    parent: Pid,
    mut tell: File,
    take: impl FnOnce() -> Result<Option<Vec<Request>>, String>,
    report: impl Fn(u64, i32),
) -> nix::Result<Forked> {
    // The parent ignores SIGCHLD; here a worker that dies before this process exits must stay a
    // zombie, to be re-parented and reaped by the master like any worker.
    // SAFETY: SIG_DFL installs no handler; this process has one thread.
    let _ = unsafe { signal(Signal::SIGCHLD, SigHandler::SigDfl) };
    let _ = nix::sys::prctl::set_name(MIDDLE_NAME);
    // A spare must not outlive its parent: it would go on taking the master's requests.
    if nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_err() || getppid() != parent {
        end(1)
    }
    let group = match take() {
        Ok(Some(group)) => group,
        Ok(None) => exit(&mut tell, b'E', 0),
        Err(why) => {
            eprintln!("paddock-php: {why}");
            exit(&mut tell, b'B', 1)
        }
    };
    let _ = tell.write_all(b"R");
    drop(tell);
    // Its work is no longer waiting: the parent's death must not stop the forks under way.
    let _ = nix::sys::prctl::set_pdeathsig(None);
    for request in group {
        // SAFETY: as above: this middle process is single-threaded too.
        match unsafe { fork() } {
            // Returning drops the rest of the group: the worker keeps only its own.
            Ok(ForkResult::Child) => return Ok(Forked::Worker(request)),
            Ok(ForkResult::Parent { child }) => {
                // Done here as well as in the worker, so the group exists whichever runs first:
                // the master may signal the group as soon as it has the pid.
                let _ = setpgid(child, child);
                report(request.0, child.as_raw());
            }
            Err(_) => report(request.0, 0),
        }
        // The request's descriptors close here, before the next worker's fork.
    }
    end(0)
}

/// Tells the parent `said` and ends the middle process.
fn exit(tell: &mut File, said: u8, code: i32) -> ! {
    let _ = tell.write_all(&[said]);
    end(code)
}

fn end(code: i32) -> ! {
    // SAFETY: _exit ends this process without running atexit handlers or flushing stdio buffers
    // copied from the parent, which belong to the parent.
    unsafe { libc::_exit(code) }
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
