//! Taking ownership of the descriptors the master placed for us before exec.
//!
//! The only `unsafe` in the front end: turning a raw descriptor number into an owned handle.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Claims descriptor `fd`, checking first that it is open.
///
/// Call at most once per descriptor, at start-up, before anything else could have opened (and
/// therefore own) a descriptor with that number.
pub(crate) fn claim(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD only reads the descriptor flags; it is harmless on any number.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("descriptor {fd} was not inherited: `paddock frontend` is started by `paddock serve`, not by hand"),
        ));
    }
    // SAFETY: the descriptor is open (checked above), was placed by the master for this process,
    // and is claimed exactly once at start-up, so no other owner exists.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
