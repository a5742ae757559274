//! Signals, reaping, and stopping paddock (gracefully or fast).

use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use protocol::control::{ExitReason, ToFrontend};
use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
use tracing::info;

use super::{ExitKind, Master, Shutdown};

impl Master {
    pub(super) fn on_signals(&mut self) {
        let pending: Vec<i32> = self.signals.pending().collect();
        for signal in pending {
            match signal {
                SIGCHLD => self.reap(),
                SIGTERM | SIGQUIT => self.begin_shutdown(false),
                SIGINT => self.begin_shutdown(true),
                SIGHUP => {
                    let _ = self.reload();
                }
                SIGUSR1 => {
                    info!("SIGUSR1: reopening the access log");
                    self.tell_frontend(ToFrontend::ReopenLogs);
                }
                SIGUSR2 => self.begin_upgrade(),
                _ => {}
            }
        }
    }

    fn reap(&mut self) {
        let now = Instant::now();
        loop {
            let (pid, status, how) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => {
                    (pid, format!("exit status {code}"), ExitKind::Status(code))
                }
                Ok(WaitStatus::Signaled(pid, signal, _)) => {
                    (pid, format!("killed by {signal}"), ExitKind::Signal(signal))
                }
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => continue,
            };
            self.kills.retain(|&(_, p)| p != pid);
            if self.upgrade_child == Some(pid) {
                self.on_upgrade_child_exit(&status);
            } else if self.frontend.as_ref().is_some_and(|f| f.pid == pid) {
                self.on_frontend_exit(&status, now);
            } else if let Some(pool) = self
                .pools
                .iter()
                .position(|p| p.php_parent.as_ref().is_some_and(|z| z.pid == pid))
            {
                self.on_php_parent_exit(pool, &status, how, now);
            } else if let Some(id) = self
                .workers
                .iter()
                .find(|(_, w)| w.pid == pid)
                .map(|(id, _)| *id)
            {
                self.on_worker_exit(id, &status, how, now);
            }
        }
    }

    /// Graceful: the front end stops accepting and finishes in-flight requests (up to
    /// `shutdown_timeout`), then workers are stopped. Fast (SIGINT, or a second signal): everything
    /// stops now.
    pub(super) fn begin_shutdown(&mut self, fast: bool) {
        let already = self.shutdown.is_some();
        let fast = fast || already;
        info!(fast, "stopping");
        crate::sd_notify::notify("STOPPING=1");
        let deadline_ms = if fast {
            0
        } else {
            self.config.shutdown_timeout.as_millis() as u64
        };
        self.tell_frontend(ToFrontend::Shutdown { deadline_ms });
        if self.frontend.is_none() || fast {
            if let Some(frontend) = &self.frontend {
                if already {
                    let _ = killpg(frontend.pid, Signal::SIGKILL);
                }
            }
            self.stop_all_workers(if already {
                Signal::SIGKILL
            } else {
                Signal::SIGTERM
            });
        } else if !already {
            // One extra second for the front end to close its connections after its own deadline.
            let deadline = Instant::now() + self.config.shutdown_timeout + Duration::from_secs(1);
            self.shutdown = Some(Shutdown::Draining { deadline });
        }
    }

    pub(super) fn stop_all_workers(&mut self, signal: Signal) {
        self.shutdown = Some(Shutdown::StoppingWorkers);
        // PHP parents serve nothing: closing their control socket ends them.
        for pool in &mut self.pools {
            pool.php_parent = None;
        }
        for id in self.workers.keys().copied().collect::<Vec<_>>() {
            self.stop_worker(id, signal, ExitReason::Shutdown);
        }
    }
}
