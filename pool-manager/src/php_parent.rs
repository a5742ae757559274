//! The warm PHP parent of a `builtin = "php"` pool (`paddock-php zygote`), seen from the master.
//!
//! The master starts one parent per pool, with the pool's isolation (environment, user, rlimits)
//! and a control socket at [`CONTROL_FD`]. To add a worker, the master binds the worker's socket
//! and output pipe as for any worker and sends both to the parent; the parent forks a worker
//! through a middle process that reports the worker's pid and exits, so the worker is
//! re-parented to the master (a child subreaper). From then on the worker is an ordinary worker:
//! the master reaps it, times it out, recycles it and kills its process group.
//!
//! The fork request is answered within milliseconds, so the master simply waits for the answer
//! (bounded by [`FORK_TIMEOUT`], longer for a parent still starting PHP). If the parent dies, the
//! workers it forked go on serving; the master starts a new parent.

use std::io::{self, IoSlice, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use protocol::control::WorkerId;
use protocol::zygote::{self as wire, CONTROL_FD, FORKED_LEN};

use crate::children::{limits, pool_command, start_error, SpawnError, SpawnedWorker};
use crate::config::PoolConfig;
use crate::sockets::RuntimeDir;
use crate::spawn::{spawn, Inherit};
use crate::worker_output::WorkerOutput;

/// The longest wait for a worker's pid from a parent that is up.
const FORK_TIMEOUT: Duration = Duration::from_secs(2);
/// The same for the first worker of a new parent, which starts PHP first.
const FIRST_FORK_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug)]
pub(crate) struct PhpParent {
    pub(crate) pid: Pid,
    pub(crate) started: Instant,
    channel: UnixStream,
    /// Has forked a worker: PHP is up.
    forked: bool,
}

impl PhpParent {
    /// Starts the pool's parent; it loads PHP while the master goes on.
    pub(crate) fn start(pool: &PoolConfig) -> Result<PhpParent, SpawnError> {
        let program = &pool.command[0];
        let error = |source: io::Error| start_error(program, source);
        // Orphaned workers must come to the master, not to init.
        nix::sys::prctl::set_child_subreaper(true).map_err(|e| error(e.into()))?;
        let (ours, theirs) = UnixStream::pair().map_err(error)?;
        let log = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map_err(error)?;
        let mut command = pool_command(pool)?;
        // PHP's start-up messages go to the master's log, like paddock's own.
        command.stdin(Stdio::null()).stdout(Stdio::from(log));
        let child = spawn(
            &mut command,
            vec![Inherit::new(&theirs, CONTROL_FD).map_err(error)?],
            limits(pool),
            Some(libc::SIGTERM),
        )
        .map_err(error)?;
        Ok(PhpParent {
            pid: Pid::from_raw(child.id() as i32),
            started: Instant::now(),
            channel: ours,
            forked: false,
        })
    }

    /// Has forked a worker, so PHP started: its death is not a start-up failure.
    pub(crate) fn has_forked(&self) -> bool {
        self.forked
    }

    /// Forks worker `id` serving on `listener`, its output on `output`; returns its pid.
    fn fork_worker(
        &mut self,
        id: WorkerId,
        listener: &UnixListener,
        output: &OwnedFd,
    ) -> io::Result<Pid> {
        let message = wire::encode_fork(id);
        let fds = [listener.as_raw_fd(), output.as_raw_fd()];
        sendmsg::<()>(
            self.channel.as_raw_fd(),
            &[IoSlice::new(&message)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        )?;
        let timeout = if self.forked {
            FORK_TIMEOUT
        } else {
            FIRST_FORK_TIMEOUT
        };
        self.channel.set_read_timeout(Some(timeout))?;
        let mut reply = [0; FORKED_LEN];
        loop {
            self.channel.read_exact(&mut reply)?;
            let (worker, pid) = wire::decode_forked(reply);
            // An answer for an earlier request that timed out is stale: skip it.
            if worker != id {
                continue;
            }
            if pid <= 0 {
                return Err(io::Error::other("the PHP parent could not fork"));
            }
            self.forked = true;
            return Ok(Pid::from_raw(pid));
        }
    }

    /// Stops a parent that failed, and says why it failed as far as its exit tells.
    fn kill_and_explain(self, failure: &io::Error) -> SpawnError {
        let _ = kill(self.pid, Signal::SIGKILL);
        let status = loop {
            match waitpid(self.pid, None) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other,
            }
        };
        explain(status.ok(), failure)
    }
}

/// The operator's version of a parent's death.
fn explain(status: Option<WaitStatus>, failure: &io::Error) -> SpawnError {
    let (reason, missing) = match status {
        // The dynamic loader's status for a missing library.
        Some(WaitStatus::Exited(_, 127)) => (
            "libphp8.2.so cannot be loaded: install it with `apt-get install libphp8.2-embed`"
                .to_string(),
            true,
        ),
        Some(WaitStatus::Exited(_, wire::EXIT_NO_PHP)) => (
            "paddock-php was built without PHP: `apt-get install libphp8.2-embed php8.2-dev`, then \
             rebuild it (`cargo build --release -p paddock-php`)"
                .to_string(),
            true,
        ),
        Some(WaitStatus::Exited(_, wire::EXIT_PHP_STARTUP)) => (
            "PHP failed to start in the pool's PHP parent (php.ini, extensions: see its messages \
             above)"
                .to_string(),
            false,
        ),
        Some(WaitStatus::Exited(_, code)) => {
            (format!("the PHP parent exited with status {code}"), false)
        }
        Some(WaitStatus::Signaled(_, signal, _)) => {
            (format!("the PHP parent was killed by {signal}"), false)
        }
        _ => (format!("the PHP parent did not answer: {failure}"), false),
    };
    SpawnError::PhpParent { reason, missing }
}

/// Starts one worker of a `builtin = "php"` pool, starting the pool's parent first if needed.
pub(crate) fn spawn_php_worker(
    pool: &PoolConfig,
    parent: &mut Option<PhpParent>,
    id: WorkerId,
    runtime: &RuntimeDir,
) -> Result<SpawnedWorker, SpawnError> {
    let (listener, socket) = runtime
        .bind_worker_socket(&pool.name, id)
        .map_err(|source| SpawnError::Socket {
            path: runtime.path().to_path_buf(),
            source,
        })?;
    let fail = |error: SpawnError| {
        let _ = std::fs::remove_file(&socket);
        error
    };
    let io_error = |source: io::Error| SpawnError::Exec {
        program: pool.command[0].clone(),
        source,
    };
    let (read_end, write_end) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| fail(io_error(e.into())))?;
    let output = WorkerOutput::new(read_end).map_err(|e| fail(io_error(e)))?;
    if parent.is_none() {
        let started = PhpParent::start(pool).map_err(fail)?;
        tracing::info!(pool = %pool.name, pid = started.pid.as_raw(), "PHP parent started");
        *parent = Some(started);
    }
    let running = parent.as_mut().expect("started above");
    match running.fork_worker(id, &listener, &write_end) {
        Ok(pid) => Ok(SpawnedWorker {
            pid,
            socket,
            output,
        }),
        Err(e) => {
            let failed = parent.take().expect("running");
            Err(fail(failed.kill_and_explain(&e)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(status: WaitStatus) -> (String, bool) {
        match explain(Some(status), &io::ErrorKind::UnexpectedEof.into()) {
            SpawnError::PhpParent { reason, missing } => (reason, missing),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn a_missing_libphp_names_the_package() {
        let pid = Pid::from_raw(1);
        let (text, missing) = reason(WaitStatus::Exited(pid, 127));
        assert!(text.contains("apt-get install libphp8.2-embed"), "{text}");
        assert!(missing);
        let (text, missing) = reason(WaitStatus::Exited(pid, wire::EXIT_NO_PHP));
        assert!(text.contains("php8.2-dev"), "{text}");
        assert!(missing);
        let (text, missing) = reason(WaitStatus::Exited(pid, wire::EXIT_PHP_STARTUP));
        assert!(text.contains("php.ini"), "{text}");
        assert!(!missing);
    }
}
