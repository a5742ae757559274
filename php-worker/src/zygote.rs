//! The warm parent: starts PHP once, then forks a worker for each listening socket the master
//! sends, until the master closes the control socket.
//!
//! Nothing PHP does per request happens here: the parent only runs PHP's module startup (ini
//! files, extensions, OPcache's shared memory), so every worker starts from the same clean,
//! initialised image and shares its pages copy-on-write, OPcache's cache included.
#![allow(unsafe_code)]

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessageOwned, MsgFlags};
use nix::unistd::getppid;
use protocol::zygote::{self as wire, CONTROL_FD, FDS_PER_FORK, FORK_LEN};

use crate::args::Args;
use crate::fork::{fork_spare_middle, reap_middles_automatically, Forked, Request, Taken, GROUP};

/// The parent's process name (its workers rename themselves `php-worker`).
const PARENT_NAME: &std::ffi::CStr = c"paddock-php";

/// Returns the exit status of the parent (the workers never return here).
pub(crate) fn run(args: &Args) -> i32 {
    // The process runs the engine's executable (`php-cgi8.2`), which names it; `ps`, the status
    // page's tools and the tests look for this name.
    let _ = nix::sys::prctl::set_name(PARENT_NAME);
    let master = getppid();
    // SAFETY: F_GETFD only reads the descriptor flags; harmless on any number.
    if unsafe { libc::fcntl(CONTROL_FD, libc::F_GETFD) } < 0 {
        eprintln!(
            "paddock-php: no control socket at fd {CONTROL_FD}: only paddock starts this program"
        );
        return 2;
    }
    // SAFETY: the descriptor is open (checked above), was placed at this number by the master
    // for this process, and is claimed once, before anything else could own it.
    let control = unsafe { OwnedFd::from_raw_fd(CONTROL_FD) };
    // The engine's version is known once it has started (the executable sets it then).
    let started = crate::ffi::startup(args.ini.as_deref(), &args.defines, &args.admin)
        .and_then(|()| crate::ffi::engine_matches());
    if let Err(why) = started {
        eprintln!("paddock-php: {why}");
        return wire::EXIT_PHP_STARTUP;
    }
    if let Err(e) = reap_middles_automatically() {
        eprintln!("paddock-php: SIGCHLD: {e}");
        return 1;
    }
    // PHP is up: the master may send fork requests from now on.
    let ready = wire::encode_forked(wire::READY, std::process::id() as i32);
    if let Err(e) = sendmsg::<()>(
        control.as_raw_fd(),
        &[IoSlice::new(&ready)],
        &[],
        MsgFlags::empty(),
        None,
    ) {
        eprintln!("paddock-php: control socket: {e}");
        return 1;
    }
    // Spare middle processes that die unasked, in a row, before the parent gives up.
    const SPARE_DEATHS: u32 = 3;
    let mut deaths = 0;
    loop {
        let forked = fork_spare_middle(
            || take_requests(control.as_raw_fd()),
            |worker, pid| report(control.as_raw_fd(), worker, pid),
        );
        match forked {
            Ok(Forked::Worker((_, listener, output))) => {
                crate::worker::run(listener, output, control, master, args)
            }
            Ok(Forked::Parent(spare)) => match spare.wait() {
                Taken::Requests => deaths = 0,
                Taken::End => return 0,
                Taken::Broken => return 1,
                Taken::Died => {
                    deaths += 1;
                    if deaths == SPARE_DEATHS {
                        eprintln!("paddock-php: {deaths} spare middle processes died unasked");
                        return 1;
                    }
                }
            },
            // No process to spare (a process limit, memory): the master hears that these
            // workers failed, and the next requests try again.
            Err(e) => {
                eprintln!("paddock-php: cannot fork: {e}");
                match take_requests(control.as_raw_fd()) {
                    Ok(Some(group)) => group
                        .iter()
                        .for_each(|r| report(control.as_raw_fd(), r.0, 0)),
                    Ok(None) => return 0,
                    Err(why) => {
                        eprintln!("paddock-php: {why}");
                        return 1;
                    }
                }
            }
        }
    }
}

/// Waits for the next fork requests and takes those sent with the first (the master asks for a
/// burst's workers at once), up to a middle process's [`GROUP`]. `None` at the channel's end.
fn take_requests(control: RawFd) -> Result<Option<Vec<Request>>, String> {
    let first = receive(control, MsgFlags::empty()).map_err(|e| format!("control socket: {e}"))?;
    let Some(first) = first else {
        return Ok(None);
    };
    let mut group = vec![first];
    // The end of the channel or an error shows again to the next middle process.
    while group.len() < GROUP {
        match receive(control, MsgFlags::MSG_DONTWAIT) {
            Ok(Some(request)) => group.push(request),
            _ => break,
        }
    }
    Ok(Some(group))
}

/// Tells the master worker `worker`'s pid (0: its fork failed).
fn report(control: RawFd, worker: u64, pid: i32) {
    let message = wire::encode_forked(worker, pid);
    let _ = sendmsg::<()>(
        control,
        &[IoSlice::new(&message)],
        &[],
        MsgFlags::empty(),
        None,
    );
}

/// One fork request: the worker id, its listening socket and its output pipe. `None` at the end
/// of the channel.
/// `flags`: `MSG_DONTWAIT` to take only a request already queued (`EAGAIN` when none is).
fn receive(control: RawFd, flags: MsgFlags) -> nix::Result<Option<Request>> {
    let mut bytes = [0u8; FORK_LEN];
    let mut space = nix::cmsg_space!([RawFd; FDS_PER_FORK]);
    let (read, fds) = loop {
        let mut iov = [IoSliceMut::new(&mut bytes)];
        match recvmsg::<()>(
            control,
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC | flags,
        ) {
            Ok(message) => {
                let mut fds = Vec::new();
                for cmsg in message.cmsgs()? {
                    if let ControlMessageOwned::ScmRights(received) = cmsg {
                        fds.extend(received);
                    }
                }
                break (message.bytes, fds);
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    };
    // SAFETY: SCM_RIGHTS installed these descriptors in this process just now; nothing else
    // owns them.
    let mut fds: Vec<OwnedFd> = fds
        .into_iter()
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect();
    if read == 0 {
        return Ok(None);
    }
    if read != FORK_LEN || fds.len() != FDS_PER_FORK {
        return Err(nix::errno::Errno::EPROTO);
    }
    let output = fds.pop().expect("two descriptors");
    let listener = fds.pop().expect("two descriptors");
    Ok(Some((wire::decode_fork(bytes), listener, output)))
}
