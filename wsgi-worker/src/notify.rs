//! `READY=1` to `$NOTIFY_SOCKET` (systemd's notify protocol), which paddock gives workers of pools
//! with `readiness = "notify"`: sent once the application is imported, so the front end hands
//! this process requests only when it can answer them.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

pub(crate) fn ready() {
    let Some(address) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let address = address.as_encoded_bytes();
    let sent = UnixDatagram::unbound().and_then(|socket| {
        // '@' marks a name in the abstract namespace, as systemd writes it.
        let target = match address.strip_prefix(b"@") {
            Some(name) => SocketAddr::from_abstract_name(name)?,
            None => SocketAddr::from_pathname(std::ffi::OsStr::from_bytes(address))?,
        };
        socket.send_to_addr(b"READY=1", &target)
    });
    if let Err(e) = sent {
        eprintln!("paddock-wsgi: READY=1 to NOTIFY_SOCKET failed: {e}");
    }
}
