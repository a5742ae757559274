//! Starting child processes: the only place in the master with `unsafe` code.
//!
//! Children are started by fork+exec only (`std::process::Command`); the `pre_exec` hook below runs
//! between the two and therefore does nothing but async-signal-safe system calls:
//! - place inherited descriptors at the numbers the child expects (`dup2` also clears CLOEXEC on the
//!   copy), then mark every descriptor above them close-on-exec: paddock's own are CLOEXEC anyway,
//!   but whatever paddock itself inherited without CLOEXEC (a shell's or a build tool's pipes) must
//!   not reach a worker;
//! - apply resource limits (`setrlimit`), the scheduling policy (`sched_setscheduler`) and the
//!   CPU the worker is pinned to, if any (`sched_setaffinity`);
//! - ask the kernel to signal the child when the master dies, so no worker outlives its master.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

/// Descriptors are parked at or above this number before the fork, so that placing them at their
/// (small) target numbers can never overwrite another source descriptor.
const PARK_FLOOR: RawFd = 64;

/// A descriptor to place at `target` in the child.
#[derive(Debug)]
pub(crate) struct Inherit {
    parked: OwnedFd,
    target: RawFd,
}

impl Inherit {
    pub(crate) fn new(fd: impl AsFd, target: RawFd) -> io::Result<Self> {
        let parked = nix::fcntl::fcntl(
            fd.as_fd(),
            nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(PARK_FLOOR),
        )?;
        // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
        let parked = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(parked) };
        Ok(Self { parked, target })
    }
}

/// A resource limit to set in the child (soft and hard).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limit {
    pub resource: libc::__rlimit_resource_t,
    pub value: u64,
}

/// What a child runs under besides its descriptors.
#[derive(Debug, Default)]
pub(crate) struct Confinement {
    pub limits: Vec<Limit>,
    /// Run under `SCHED_BATCH` (inherited by the child's own forks and threads): woken, it does
    /// not preempt the task that woke it, so the front end that hands it a request goes on with
    /// its other ready work instead of being switched out at once (docs/worker-lifecycle.md,
    /// "Scheduling"). Best effort: a kernel or sandbox that refuses it leaves the default.
    pub batch_scheduling: bool,
    /// The one CPU the child and all its threads run on (`cpu_affinity = "spread"`). Best
    /// effort as well: a CPU taken away since it was chosen (a cgroup's cpuset changed) leaves
    /// the child where the master may run.
    pub cpu: Option<usize>,
}

/// Spawns `command` with `inherit` placed at their target numbers and `confinement` applied;
/// `death_signal`, if any, is delivered to the child if the master exits first (a new master
/// started for a binary upgrade has none: it must outlive the old one).
pub(crate) fn spawn(
    command: &mut Command,
    inherit: Vec<Inherit>,
    confinement: Confinement,
    death_signal: Option<i32>,
) -> io::Result<Child> {
    let Confinement {
        limits,
        batch_scheduling,
        cpu,
    } = confinement;
    // Built before the fork: the child only hands it to the kernel.
    let cpu_set = cpu.and_then(one_cpu_set);
    let master_pid = std::process::id() as libc::pid_t;
    let places: Vec<(RawFd, RawFd)> = inherit
        .iter()
        .map(|i| (i.parked.as_raw_fd(), i.target))
        .collect();
    // SAFETY: the closure only calls async-signal-safe functions (dup2, close_range/fcntl,
    // setrlimit, sched_setscheduler, sched_setaffinity, prctl, getppid, _exit) and reads only
    // the `places` and `limits` vectors and the CPU set, all made before the fork.
    unsafe {
        command.pre_exec(move || {
            for &(parked, target) in &places {
                if libc::dup2(parked, target) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            let first_unused = places.iter().map(|&(_, t)| t + 1).max().unwrap_or(3).max(3);
            close_from(first_unused);
            for limit in &limits {
                let value = libc::rlimit {
                    rlim_cur: limit.value as libc::rlim_t,
                    rlim_max: limit.value as libc::rlim_t,
                };
                if libc::setrlimit(limit.resource, &value) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if batch_scheduling {
                // SCHED_BATCH takes no priority (0) and no privilege; a refusal (a seccomp
                // filter) is ignored: the worker runs as well without it, only less cheaply.
                let param = libc::sched_param { sched_priority: 0 };
                libc::sched_setscheduler(0, libc::SCHED_BATCH, &param);
            }
            if let Some(set) = &cpu_set {
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set);
            }
            if let Some(signal) = death_signal {
                if libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong) < 0 {
                    return Err(io::Error::last_os_error());
                }
                // The master may have died between fork and prctl; then nobody would signal us.
                if libc::getppid() != master_pid {
                    libc::_exit(1);
                }
            }
            Ok(())
        });
    }
    let child = command.spawn();
    drop(inherit);
    child
}

/// The set holding `cpu` alone; `None` for a number beyond what a `cpu_set_t` holds.
fn one_cpu_set(cpu: usize) -> Option<libc::cpu_set_t> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return None;
    }
    // SAFETY: cpu_set_t is a plain bit array, for which all zeroes is the empty set; CPU_SET
    // writes one bit of it, below CPU_SETSIZE as checked above.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        Some(set)
    }
}

/// Marks every descriptor from `first` up close-on-exec, so none survives the exec. (Closing them
/// outright would also close the pipe through which std reports a failed exec to the parent.)
/// Runs between fork and exec: system calls only.
fn close_from(first: RawFd) {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets descriptor flags.
    let marked = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if marked != 0 {
        // Kernels before 5.11 lack the flag: mark the usual range one by one.
        for fd in first..4096 {
            // SAFETY: F_SETFD only sets the flags of a descriptor (or fails on a closed one).
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
    }
}

/// Takes ownership of a listening socket inherited from the previous master (binary upgrade).
pub(crate) fn claim_inherited(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD only reads the descriptor's flags; it is harmless on any number.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor is open (checked above), was placed by the previous master for this
    // process, and is claimed once, at start-up, before anything else could own its number.
    let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // Mark it close-on-exec like everything else paddock owns.
    nix::fcntl::fcntl(
        &owned,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )?;
    Ok(owned)
}
