//! systemd readiness notification (`Type=notify`): a datagram to `$NOTIFY_SOCKET`.
//!
//! The protocol is one line of `KEY=VALUE` pairs on a Unix datagram socket whose path (or abstract
//! name, written with a leading `@`) systemd puts in the environment. Without `NOTIFY_SOCKET`
//! (not under systemd) every call does nothing.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The variable systemd sets; children must not inherit it (only the main process notifies).
pub(crate) const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Sends `state` (e.g. `READY=1`) to systemd, if paddock runs under it. Failures are logged and
/// otherwise ignored: readiness reporting must never stop the server.
pub(crate) fn notify(state: &str) {
    if let Some(target) = std::env::var_os(NOTIFY_SOCKET) {
        notify_to(&target.to_string_lossy(), state);
    }
}

/// [`notify`] to the socket `target` names (a path, or `@name` for an abstract socket).
fn notify_to(target: &str, state: &str) {
    let address = match target.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
        None => SocketAddr::from_pathname(target),
    };
    let sent = address.and_then(|address| {
        let socket = UnixDatagram::unbound()?;
        socket.send_to_addr(state.as_bytes(), &address)
    });
    if let Err(e) = sent {
        tracing::warn!(error = %e, socket = %target, "cannot notify systemd");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_the_state_to_the_notify_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        notify_to(path.to_str().unwrap(), "READY=1\nSTATUS=serving");
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=serving");
    }
}
