//! systemd's notify protocol from the worker's side: the datagram a worker of a pool with
//! `readiness = "notify"` sends to `$NOTIFY_SOCKET` once it can answer requests.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sends `message` (e.g. `READY=1\n`) to `$NOTIFY_SOCKET`, a path or, after `@`, a name in the
/// abstract namespace as systemd writes it. `Ok(false)` when the variable is not set.
pub fn notify(message: &[u8]) -> io::Result<bool> {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let target = target.as_bytes();
    let address = match target.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name)?,
        None => SocketAddr::from_pathname(std::ffi::OsStr::from_bytes(target))?,
    };
    UnixDatagram::unbound()?.send_to_addr(message, &address)?;
    Ok(true)
}
