//! Binary upgrade without closing a listener (the approach of nginx's USR2, Pingora and Sozu).
//!
//! 1. SIGUSR2 to the running master: it starts the paddock binary now on disk at the same path,
//!    with the same config, handing it the listening sockets as inherited descriptors (their names
//!    and numbers in `PADDOCK_UPGRADE_LISTENERS`, its own pid in `PADDOCK_UPGRADE_FROM`).
//! 2. The new master starts its own front end and workers on those same sockets. While both run,
//!    the kernel hands each new connection to one of the two front ends: none is refused.
//! 3. Once its front end is ready, the new master sends SIGTERM to the old one, which stops
//!    accepting, lets its in-flight requests finish, and exits, leaving the runtime directory and
//!    the command socket to its successor.
//!
//! If the new master fails to start, the old one logs why and keeps serving.

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tracing::{error, info, warn};

use super::Master;
use crate::spawn::{spawn, Confinement, Inherit};

const LISTENERS_ENV: &str = "PADDOCK_UPGRADE_LISTENERS";
const FROM_ENV: &str = "PADDOCK_UPGRADE_FROM";
/// Where the handed-over listeners start in the new master.
const FIRST_FD: RawFd = 3;

/// What a new master received from the one it replaces.
#[derive(Debug)]
pub(super) struct Inheritance {
    /// Listener name → inherited descriptor.
    pub listeners: HashMap<String, RawFd>,
    /// The master to stop once this one serves.
    pub from: Pid,
}

/// Reads (and clears, so no child sees them) the upgrade variables, if this master was started
/// by an upgrade.
pub(super) fn inheritance_from_env() -> Option<Inheritance> {
    let listeners = std::env::var(LISTENERS_ENV).ok()?;
    let from = std::env::var(FROM_ENV).ok()?.parse().ok()?;
    std::env::remove_var(LISTENERS_ENV);
    std::env::remove_var(FROM_ENV);
    let listeners = listeners
        .split(';')
        .filter_map(|entry| {
            let (name, fd) = entry.split_once('=')?;
            Some((name.to_string(), fd.parse().ok()?))
        })
        .collect();
    Some(Inheritance {
        listeners,
        from: Pid::from_raw(from),
    })
}

impl Master {
    /// SIGUSR2: start the new binary as a new master on our listeners.
    pub(super) fn begin_upgrade(&mut self) {
        if self.shutdown.is_some() {
            warn!("binary upgrade requested while stopping; ignored");
            return;
        }
        if let Some(pid) = self.upgrade_child {
            warn!(
                new_master = pid.as_raw(),
                "a binary upgrade is already in progress"
            );
            return;
        }
        let mut command = Command::new(&self.exe);
        command.arg("serve");
        if let Some(path) = &self.config.path {
            command.arg("--config").arg(path);
        }
        let mut inherit = Vec::new();
        let mut names = Vec::new();
        for (i, (listener, spec)) in self
            .listeners
            .iter()
            .zip(&self.config.frontend.listeners)
            .enumerate()
        {
            let target = FIRST_FD + i as RawFd;
            match Inherit::new(listener, target) {
                Ok(handover) => inherit.push(handover),
                Err(e) => {
                    error!(error = %e, "binary upgrade failed: cannot hand over the listeners");
                    return;
                }
            }
            names.push(format!("{}={target}", spec.name));
        }
        command
            .env(LISTENERS_ENV, names.join(";"))
            .env(FROM_ENV, std::process::id().to_string())
            // NOTIFY_SOCKET stays: the new master tells systemd it is the main process now.
            .stdin(Stdio::null())
            // Its own process group, and no death signal: it must outlive this master.
            .process_group(0);
        match spawn(&mut command, inherit, Confinement::default(), None) {
            Ok(child) => {
                let pid = Pid::from_raw(child.id() as i32);
                info!(new_master = pid.as_raw(), exe = %self.exe.display(), "binary upgrade: new master started");
                self.upgrade_child = Some(pid);
            }
            Err(e) => {
                error!(error = %e, exe = %self.exe.display(), "binary upgrade failed: cannot start the new binary; this master keeps serving")
            }
        }
    }

    /// The new master exited before taking over.
    pub(super) fn on_upgrade_child_exit(&mut self, status: &str) {
        if self.shutdown.is_none() {
            error!(
                status,
                "binary upgrade failed: the new master exited; this master keeps serving"
            );
        }
        self.upgrade_child = None;
    }

    /// In a new master, once its front end serves: stop the old one.
    pub(super) fn complete_takeover(&mut self) {
        let Some(from) = self.upgrade_from.take() else {
            return;
        };
        match kill(from, Signal::SIGTERM) {
            Ok(()) => info!(
                old_master = from.as_raw(),
                "binary upgrade: took over; the old master drains and exits"
            ),
            Err(e) => {
                warn!(old_master = from.as_raw(), error = %e, "binary upgrade: cannot signal the old master")
            }
        }
        crate::sd_notify::notify(&format!("MAINPID={}\nREADY=1", std::process::id()));
    }

    /// Whether a successor is serving on our sockets (so we leave shared state to it on exit).
    pub(super) fn superseded(&self) -> bool {
        self.upgrade_child.is_some()
    }
}
