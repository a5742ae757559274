//! Workers that say when they are ready (`readiness = "notify"`).
//!
//! Such a worker is started with `NOTIFY_SOCKET` naming the master's datagram socket and sends
//! `READY=1` there once its application is loaded, as uWSGI and gunicorn do under systemd.
//! Until then the front end does not know of it, so requests wait in the front end's queue (where
//! a ready worker can take them) rather than in the backlog of a process still importing its
//! application; the policy counts it as spare capacity on its way, so it is not started twice.
//! The kernel stamps every datagram with its sender's pid (`SO_PASSCRED`), which is how a
//! message is matched to a worker, and why no other process can make a worker look ready.

use std::io::{self, IoSliceMut};
use std::os::fd::AsRawFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

use mio::{Interest, Registry, Token};
use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::socket::{
    recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, UnixCredentials,
};
use nix::unistd::Pid;
use protocol::control::{ExitReason, WorkerId};
use tracing::{debug, error, info, warn};

use super::Master;
use crate::config::Readiness;

/// The master's end of the notify protocol: an abstract datagram socket (no file to clean up or
/// to give a pool's user access to), named after the master's pid.
#[derive(Debug)]
pub(super) struct NotifySocket {
    socket: mio::net::UnixDatagram,
    /// `NOTIFY_SOCKET` for workers: `@` marks an abstract name, as systemd writes it.
    address: String,
}

impl NotifySocket {
    pub(super) fn open(registry: &Registry, token: Token) -> io::Result<Self> {
        let name = format!("paddock-{}-notify", std::process::id());
        let socket = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes())?)?;
        socket.set_nonblocking(true)?;
        setsockopt(&socket, sockopt::PassCred, &true)?;
        let mut socket = mio::net::UnixDatagram::from_std(socket);
        registry.register(&mut socket, token, Interest::READABLE)?;
        Ok(Self {
            socket,
            address: format!("@{name}"),
        })
    }

    pub(super) fn address(&self) -> &str {
        &self.address
    }

    /// Every datagram waiting, with the pid of its sender.
    fn receive(&self) -> Vec<(Pid, String)> {
        let mut messages = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let mut iov = [IoSliceMut::new(&mut buffer)];
            let mut space = nix::cmsg_space!(UnixCredentials);
            let received = recvmsg::<()>(
                self.socket.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
            );
            let (length, sender) = match received {
                Ok(message) => {
                    let sender = message.cmsgs().ok().and_then(|mut c| {
                        c.find_map(|c| match c {
                            ControlMessageOwned::ScmCredentials(credentials) => {
                                Some(Pid::from_raw(credentials.pid()))
                            }
                            _ => None,
                        })
                    });
                    (message.bytes, sender)
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => break,
                Err(e) => {
                    warn!(error = %e, "cannot read the worker notify socket");
                    break;
                }
            };
            if let Some(sender) = sender {
                let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
                messages.push((sender, text));
            }
        }
        messages
    }
}

/// Whether a notify message says `READY=1` (one `KEY=VALUE` per line).
fn says_ready(message: &str) -> bool {
    message.lines().any(|line| line.trim_end() == "READY=1")
}

impl Master {
    /// `NOTIFY_SOCKET` for a worker of `pool`, when the pool waits for workers to say so.
    pub(super) fn notify_address(&self, pool: usize) -> Option<&str> {
        match self.pools[pool].config.readiness {
            Readiness::Notify { .. } => Some(self.notify.address()),
            Readiness::Listening => None,
        }
    }

    /// How many more workers of `pool` may start now: `max_starting` less those still starting.
    pub(super) fn start_room(&self, pool: usize) -> u32 {
        match self.pools[pool].config.readiness {
            Readiness::Notify { max_starting, .. } => {
                let starting = self
                    .workers
                    .values()
                    .filter(|w| w.pool == pool && w.is_starting() && w.stopping.is_none())
                    .count() as u32;
                max_starting.saturating_sub(starting)
            }
            Readiness::Listening => u32::MAX,
        }
    }

    pub(super) fn on_notify(&mut self, now: Instant) {
        for (sender, message) in self.notify.receive() {
            let Some(id) = self.starting_worker_sent(sender) else {
                debug!(pid = sender.as_raw(), message = %message.trim_end(), "notify message from no starting worker; ignored");
                continue;
            };
            if says_ready(&message) {
                self.worker_ready(id, now);
            }
        }
    }

    /// The starting worker a message came from: the worker itself, or a process of its group
    /// (a wrapper it runs under, or a child it forked, as uWSGI's master forks its workers).
    fn starting_worker_sent(&self, sender: Pid) -> Option<WorkerId> {
        let group = nix::unistd::getpgid(Some(sender)).ok();
        let starting = || self.workers.iter().filter(|(_, w)| w.is_starting());
        starting()
            .find(|(_, w)| w.pid == sender)
            .or_else(|| starting().find(|(_, w)| Some(w.pid) == group))
            .map(|(&id, _)| id)
    }

    fn worker_ready(&mut self, id: WorkerId, now: Instant) {
        let Some(worker) = self.workers.get_mut(&id) else {
            return;
        };
        worker.ready_by = None;
        if !worker.is_active() {
            // Asked to go while it started (a reload, a stop): it is being stopped already.
            return;
        }
        let took = now.duration_since(worker.started);
        let message = self.worker_up(id, &self.workers[&id], Some(took));
        let worker = &self.workers[&id];
        info!(pool = %self.pools[worker.pool].config.name, pid = worker.pid.as_raw(), took = ?took, "worker ready");
        self.tell_frontend(message);
    }

    /// Kills the workers that did not say they were ready in time; each is a failed start.
    pub(super) fn check_start_timeouts(&mut self, now: Instant) {
        let late: Vec<WorkerId> = self
            .workers
            .iter()
            .filter(|(_, w)| w.stopping.is_none() && w.ready_by.is_some_and(|t| now >= t))
            .map(|(&id, _)| id)
            .collect();
        for id in late {
            let worker = &self.workers[&id];
            let (pool, pid) = (worker.pool, worker.pid.as_raw());
            let waited = now.duration_since(worker.started).as_secs_f64();
            let reason = format!(
                "a worker did not send READY=1 to $NOTIFY_SOCKET within {waited:.1} s of its \
                 start (readiness = \"notify\", start_timeout); killed"
            );
            error!(pool = %self.pools[pool].config.name, pid, "{reason}");
            let delay = self.pools[pool].record_exit(Duration::ZERO, now);
            let failing = match delay {
                Some(delay) => format!("{reason}; next attempt in {delay:?}"),
                None => reason,
            };
            self.set_pool_failing(pool, Some(failing));
            self.stop_worker(id, Signal::SIGKILL, ExitReason::Crash);
        }
    }

    /// When the next starting worker runs out of time.
    pub(super) fn start_deadlines(&self) -> impl Iterator<Item = Instant> + '_ {
        self.workers
            .values()
            .filter(|w| w.stopping.is_none())
            .filter_map(|w| w.ready_by)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_is_one_line_among_others() {
        assert!(says_ready("READY=1"));
        assert!(says_ready("STATUS=uWSGI is ready\nREADY=1\n"));
        assert!(!says_ready("STATUS=initializing uWSGI\n"));
        assert!(!says_ready("READY=0"));
        assert!(!says_ready("NOTREADY=1"));
    }

    #[test]
    fn messages_carry_their_sender_pid() {
        let poll = mio::Poll::new().unwrap();
        let notify = NotifySocket::open(poll.registry(), Token(0)).unwrap();
        let name = notify.address().strip_prefix('@').unwrap();
        let to = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sender = UnixDatagram::unbound().unwrap();
        sender.send_to_addr(b"STATUS=loading\n", &to).unwrap();
        sender.send_to_addr(b"READY=1\n", &to).unwrap();
        let own = Pid::from_raw(std::process::id() as i32);
        assert_eq!(
            notify.receive(),
            vec![
                (own, "STATUS=loading\n".to_string()),
                (own, "READY=1\n".to_string())
            ]
        );
        assert!(notify.receive().is_empty());
    }
}
