//! Starting the front end, and the master's side of the conversation with it.

use std::io;
use std::os::unix::net::UnixStream;
use std::time::Instant;

use mio::Interest;
use protocol::control::{ExitReason, KillReason, ToFrontend, ToMaster};
use tracing::{error, info, warn};

use super::{Frontend, Master, CONTROL};
use crate::children::spawn_frontend;
use crate::pool::backoff;

impl Master {
    pub(super) fn start_frontend(&mut self) -> io::Result<()> {
        let (ours, theirs) = UnixStream::pair()?;
        let pid = spawn_frontend(
            &self.exe,
            &self.config.log_level,
            self.config.frontend_runtime,
            &theirs,
            &self.listeners,
        )?;
        drop(theirs);
        let mut channel = crate::control::ControlChannel::new(ours)?;
        self.poll.registry().register(
            channel.source(),
            CONTROL,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        channel.send(&ToFrontend::Configure(Box::new(
            self.config.frontend.clone(),
        )))?;
        // A restarted front end learns the current workers; retiring ones are left out, and
        // starting ones are shown as loading until they are ready.
        for (&worker, w) in &self.workers {
            if !w.is_active() {
                continue;
            }
            if w.is_starting() {
                let pool = &self.pools[w.pool].config.name;
                channel.send(&super::workers::loading(pool, worker, w))?;
            } else {
                channel.send(&self.worker_up(worker, w, None))?;
            }
        }
        for pool in &self.pools {
            if let (Some(worker), Some(socket)) = (pool.external_id, &pool.config.external_socket) {
                channel.send(&ToFrontend::WorkerUp {
                    pool: pool.config.name.clone(),
                    worker,
                    pid: 0,
                    socket: socket.clone(),
                    slots: pool.config.slots_per_worker,
                    ready_after_ms: None,
                    cpu: None,
                })?;
            }
            if pool.failing.is_some() {
                channel.send(&ToFrontend::PoolStatus {
                    pool: pool.config.name.clone(),
                    failing: pool.failing.clone(),
                })?;
            }
        }
        info!(pid = pid.as_raw(), "front end started");
        self.frontend = Some(Frontend { pid, channel });
        self.frontend_hold_until = None;
        Ok(())
    }

    pub(super) fn hold_frontend(&mut self, now: Instant) {
        self.frontend_failures += 1;
        self.frontend_hold_until = Some(now + backoff(self.frontend_failures));
    }

    /// Sends a message if the front end is running; false when there is none to tell.
    pub(super) fn tell_frontend(&mut self, message: ToFrontend) -> bool {
        let Some(frontend) = &mut self.frontend else {
            return false;
        };
        if let Err(e) = frontend.channel.send(&message) {
            warn!(error = %e, "control channel to the front end failed");
        }
        true
    }

    pub(super) fn on_control(&mut self, writable: bool) {
        let Some(frontend) = &mut self.frontend else {
            return;
        };
        if writable && frontend.channel.wants_write() {
            let _ = frontend.channel.flush();
        }
        let messages = match frontend.channel.receive() {
            Ok(Some(messages)) => messages,
            // Closed or broken: the front end is exiting; SIGCHLD will tell us when it is gone.
            Ok(None) | Err(_) => {
                let _ = self.poll.registry().deregister(frontend.channel.source());
                return;
            }
        };
        let now = Instant::now();
        for message in messages {
            match message {
                ToMaster::Ready => {
                    self.frontend_failures = 0;
                    info!("front end ready");
                    crate::sd_notify::notify("READY=1\nSTATUS=serving");
                    self.complete_takeover();
                }
                ToMaster::PoolLoad(load) => {
                    if let Some(pool) = self.pools.iter().position(|p| p.config.name == load.pool) {
                        let pressure = load.waiting > 0;
                        self.pools[pool].load = load;
                        if pressure {
                            self.size_pool(pool, now, false);
                        }
                    }
                }
                ToMaster::Retiring { worker, reason, .. } => {
                    self.on_worker_retiring(worker, reason, now)
                }
                ToMaster::Drained { worker, reason, .. } => {
                    self.stop_worker(worker, nix::sys::signal::Signal::SIGTERM, reason);
                }
                ToMaster::KillWorker {
                    pool,
                    worker,
                    reason,
                } => {
                    if let Some(w) = self.workers.get(&worker) {
                        warn!(pool = %pool, pid = w.pid.as_raw(), ?reason, "killing worker at the front end's request");
                        let why = match reason {
                            KillReason::RequestTimeout => ExitReason::TimeoutKill,
                            KillReason::ProtocolError => ExitReason::Crash,
                        };
                        self.stop_worker(worker, nix::sys::signal::Signal::SIGKILL, why);
                    }
                }
            }
        }
    }

    pub(super) fn on_frontend_exit(&mut self, status: &str, now: Instant) {
        if let Some(mut frontend) = self.frontend.take() {
            let _ = self.poll.registry().deregister(frontend.channel.source());
        }
        if self.shutdown.is_some() {
            info!(status, "front end stopped");
            self.stop_all_workers(nix::sys::signal::Signal::SIGTERM);
            return;
        }
        error!(
            status,
            "front end exited unexpectedly; restarting it with the same listeners"
        );
        // Workers it was draining will never be reported drained: stop them now (they have no
        // requests, since the connections to them died with the front end).
        let draining: Vec<_> = self
            .workers
            .iter()
            .filter_map(|(&id, w)| w.retiring.map(|reason| (id, reason)))
            .collect();
        for (id, reason) in draining {
            self.stop_worker(id, nix::sys::signal::Signal::SIGTERM, reason);
        }
        self.hold_frontend(now);
    }
}
