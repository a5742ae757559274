//! The master <-> warm PHP parent (zygote) wire of `builtin = "php"` pools: fixed-size messages
//! on a Unix stream socket at [`CONTROL_FD`] in the parent.
//!
//! - master → parent: [`encode_fork`] (the worker id), sent with two descriptors attached
//!   (SCM_RIGHTS): the worker's listening socket, then the write end of its output pipe. The
//!   parent's spare middle process, which shares the socket, is the one that reads them.
//! - forked worker's middle process → master: [`encode_forked`] (the id and the worker's pid, or
//!   pid 0 when the fork failed).
//! - parent → master, once PHP has started: `encode_forked(READY, its own pid)`. The master sends
//!   no fork request before it, so it never waits for PHP to start.
//!
//! The master may send many fork requests before it reads an answer; the answers come in the
//! order the middle processes get to run, each naming its worker id. Every message is a few
//! bytes written with one `sendmsg`, which a Unix stream socket queues whole, so the reports of
//! middle processes running side by side never interleave.

/// Where the parent finds its control socket.
pub const CONTROL_FD: i32 = 3;
/// Where the parent's process finds paddock-php's library, which the master opened: the engine's
/// executable is started with `LD_PRELOAD=/proc/self/fd/SAPI_FD` and [`SAPI_FD_VAR`] set, and the
/// library, once it has taken over the start, closes it and removes both variables (so that
/// nothing a script starts inherits them).
pub const SAPI_FD: i32 = 5;
/// Set (to [`SAPI_FD`]) only in the environment of a parent the master starts: a process that
/// inherited the library without it runs the executable's own `main`.
pub const SAPI_FD_VAR: &str = "PADDOCK_PHP_SAPI_FD";
/// Descriptors sent with each fork request: the listener and the output pipe.
pub const FDS_PER_FORK: usize = 2;
pub const FORK_LEN: usize = 8;
/// The worker id of the parent's "PHP has started" message (worker ids start at 1).
pub const READY: u64 = 0;
pub const FORKED_LEN: usize = 12;

/// Exit status of a paddock-php built without PHP (no php8.2-dev at build time): the master
/// reports it as a build problem, not a crash.
pub const EXIT_NO_PHP: i32 = 69;
/// Exit status when PHP itself fails to start (a broken ini file, a missing extension).
pub const EXIT_PHP_STARTUP: i32 = 70;

pub fn encode_fork(worker: u64) -> [u8; FORK_LEN] {
    worker.to_le_bytes()
}

pub fn decode_fork(bytes: [u8; FORK_LEN]) -> u64 {
    u64::from_le_bytes(bytes)
}

pub fn encode_forked(worker: u64, pid: i32) -> [u8; FORKED_LEN] {
    let mut out = [0; FORKED_LEN];
    out[..8].copy_from_slice(&worker.to_le_bytes());
    out[8..].copy_from_slice(&pid.to_le_bytes());
    out
}

/// The worker id and pid (0: the fork failed).
pub fn decode_forked(bytes: [u8; FORKED_LEN]) -> (u64, i32) {
    let (id, pid) = bytes.split_at(8);
    (
        u64::from_le_bytes(id.try_into().unwrap_or_default()),
        i32::from_le_bytes(pid.try_into().unwrap_or_default()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        assert_eq!(decode_fork(encode_fork(u64::MAX - 3)), u64::MAX - 3);
        assert_eq!(decode_forked(encode_forked(42, 31337)), (42, 31337));
        assert_eq!(decode_forked(encode_forked(7, 0)), (7, 0));
    }
}
