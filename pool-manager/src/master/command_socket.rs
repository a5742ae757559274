//! The local command socket: `paddock status`, `paddock reload` and `paddock stop` reach the
//! running master here, and get an answer (signals give none).
//!
//! One line in (`status`, `reload`, `stop`, `stop-fast`), one answer out, then the connection
//! closes. The socket is mode 0600, so only paddock's own user can command it.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::json;
use tracing::warn;

use super::Master;

/// How long a command client may take to send its line: the master waits for nobody longer.
const COMMAND_READ_TIMEOUT: Duration = Duration::from_millis(500);

/// Binds the command socket, refusing to take over one that a running paddock answers on
/// (unless this master is that paddock's successor in a binary upgrade).
pub(super) fn bind(path: &Path, takeover: bool) -> std::io::Result<mio::net::UnixListener> {
    if !takeover && UnixStream::connect(path).is_ok() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!("another paddock is running: {} answers", path.display()),
        ));
    }
    let _ = std::fs::remove_file(path);
    let listener = mio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

impl Master {
    pub(super) fn on_command_connections(&mut self) {
        loop {
            let accepted = match &self.commands {
                Some(listener) => listener.accept(),
                None => return,
            };
            match accepted {
                Ok((stream, _)) => self.serve_command(stream),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    warn!(error = %e, "command socket accept failed");
                    return;
                }
            }
        }
    }

    fn serve_command(&mut self, stream: mio::net::UnixStream) {
        let stream = UnixStream::from(std::os::fd::OwnedFd::from(stream));
        if stream.set_nonblocking(false).is_err()
            || stream.set_read_timeout(Some(COMMAND_READ_TIMEOUT)).is_err()
        {
            return;
        }
        let mut line = String::new();
        let mut reader = BufReader::new(std::io::Read::take(&stream, 256));
        if reader.read_line(&mut line).is_err() {
            return;
        }
        let answer = match line.trim() {
            "status" => self.status_json().to_string(),
            "reload" => match self.reload() {
                Ok(()) => "reloaded".to_string(),
                Err(reason) => {
                    format!("error: reload failed, the running configuration stays: {reason}")
                }
            },
            "stop" => {
                self.begin_shutdown(false);
                "stopping: in-flight requests finish first".to_string()
            }
            "stop-fast" => {
                self.begin_shutdown(true);
                "stopping now".to_string()
            }
            other => format!("error: unknown command {other:?} (status, reload, stop, stop-fast)"),
        };
        let _ = (&stream).write_all(format!("{answer}\n").as_bytes());
    }

    fn status_json(&self) -> serde_json::Value {
        let pools: Vec<_> = self
            .pools
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.removed)
            .map(|(index, pool)| {
                let workers = self.workers.values().filter(|w| w.pool == index);
                json!({
                    "name": pool.config.name,
                    "mode": format!("{:?}", pool.config.mode).to_lowercase(),
                    "workers": workers.clone().filter(|w| w.is_active()).count(),
                    "retiring": workers.clone().filter(|w| !w.is_active()).count(),
                    "pids": workers.map(|w| w.pid.as_raw()).collect::<Vec<_>>(),
                    "failing": pool.failing,
                })
            })
            .collect();
        json!({
            "pid": std::process::id(),
            "config": self.config.origin,
            "frontend_pid": self.frontend.as_ref().map(|f| f.pid.as_raw()),
            "stopping": self.shutdown.is_some(),
            "pools": pools,
        })
    }
}
