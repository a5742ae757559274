//! The warm PHP parent of a `builtin = "php"` pool (`paddock-php zygote`), seen from the master.
//!
//! The master starts one parent per pool, with the pool's isolation (environment, user, rlimits,
//! scheduling) and a control socket at [`CONTROL_FD`], which the master's event loop watches. The
//! parent starts PHP and says so ([`wire::READY`]); the master sends no fork request before that,
//! so it never waits for PHP to start (an `opcache.preload` of a large application takes seconds).
//!
//! To add a worker, the master binds the worker's socket and output pipe as for any worker and
//! sends both to the parent; the parent's spare middle process (forked ahead, waiting for
//! requests) forks the worker, reports its pid and exits, so the worker is re-parented to the master (a child subreaper). From
//! then on the worker is an ordinary worker: the master reaps it, times it out, recycles it and
//! kills its process group. The answer to a fork request takes about a millisecond, so the
//! master waits for it (at most [`FORK_TIMEOUT`]). If the parent dies, the workers it forked go
//! on serving; the master starts a new parent.

use std::io::{self, IoSlice, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use protocol::control::WorkerId;
use protocol::zygote::{self as wire, CONTROL_FD, FORKED_LEN};

use crate::children::{confinement, pool_command_of, start_error, SpawnError, SpawnedWorker};
use crate::config::{PoolConfig, PHP_PROGRAM};
use crate::sockets::RuntimeDir;
use crate::spawn::{spawn, Inherit};
use crate::worker_output::WorkerOutput;

/// The longest wait for a worker's pid from a parent that is ready.
const FORK_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest a parent may take to start PHP (extensions, OPcache, `opcache.preload`).
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub(crate) struct PhpParent {
    pub(crate) pid: Pid,
    pub(crate) started: Instant,
    /// The id under which the master's event loop watches the control socket (taken from the
    /// worker ids, which are never reused).
    pub(crate) token: WorkerId,
    /// Non-blocking; the master's event loop watches it until the parent is ready.
    channel: UnixStream,
    /// Bytes received and not yet a whole message.
    inbox: Vec<u8>,
    /// PHP has started: fork requests may be sent.
    ready: bool,
}

/// What a readable control socket brought.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ParentNews {
    /// PHP has started in the parent.
    Ready,
    /// The parent closed its end: it is exiting (its exit is reaped as usual).
    Closed,
    Nothing,
}

/// How a parent ended, for [`explain`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ended {
    Exited(i32),
    Killed(Signal),
    /// Did not become ready in time, or broke the protocol.
    Unresponsive,
}

/// Where the parent finds its own program when the master starts it through a descriptor.
const PROGRAM_FD: RawFd = CONTROL_FD + 1;
const _: () = assert!(PROGRAM_FD != wire::SAPI_FD);

/// The parent as the master starts it: the pool's engine executable (`php_engine`, php-cgi) with
/// paddock-php's library preloaded, which takes over the executable's start (see
/// `php-worker/src/host.rs`), named `paddock-php`.
///
/// With a pool `user` or `group` the parent runs as that user, who need not be able to reach
/// paddock's own directory (a build under a directory only root may enter: `mktemp -d`, a home
/// directory), so the master opens the library, and the program, while it is still root: the
/// library is named to the dynamic loader as `/proc/self/fd/N`, and the program is started
/// through its descriptor, which checks only the file's own permissions. paddock-php names its
/// process, since a program started this way is named after the descriptor's number.
fn parent_command(pool: &PoolConfig, program: &str) -> Result<(Command, Vec<Inherit>), SpawnError> {
    let library = pool
        .php_library
        .as_deref()
        .expect("builtin php pools have paddock-php's library");
    let library_error = |source: io::Error| start_error(&library.to_string_lossy(), source);
    let library_file = std::fs::File::open(library).map_err(library_error)?;
    let mut inherit = vec![Inherit::new(&library_file, wire::SAPI_FD).map_err(library_error)?];
    let mut command = if pool.user.is_none() && pool.group.is_none() {
        Command::new(program)
    } else {
        let file = std::fs::File::open(program).map_err(|e| engine_error(program, e))?;
        inherit.push(Inherit::new(&file, PROGRAM_FD).map_err(|e| engine_error(program, e))?);
        Command::new(format!("/proc/self/fd/{PROGRAM_FD}"))
    };
    command.arg0(PHP_PROGRAM);
    Ok((command, inherit))
}

/// The environment that has the engine's executable load paddock-php's library and run it.
fn preload_environment(command: &mut Command) {
    command
        .env("LD_PRELOAD", format!("/proc/self/fd/{}", wire::SAPI_FD))
        .env(wire::SAPI_FD_VAR, wire::SAPI_FD.to_string());
}

/// A failed start of the engine's executable, with the package that installs it.
fn engine_error(program: &str, source: io::Error) -> SpawnError {
    if source.kind() == io::ErrorKind::NotFound {
        SpawnError::CommandNotFound {
            program: program.to_string(),
            hint: " (the PHP engine of builtin = \"php\" pools); install it with `apt-get \
                   install php8.2-cgi`, or set the pool's php_engine"
                .into(),
        }
    } else {
        start_error(program, source)
    }
}

impl PhpParent {
    /// Starts the pool's parent; it starts PHP while the master goes on.
    pub(crate) fn start(pool: &PoolConfig, token: WorkerId) -> Result<PhpParent, SpawnError> {
        let program = &pool.command[0];
        let error = |source: io::Error| start_error(program, source);
        // Orphaned workers must come to the master, not to init.
        nix::sys::prctl::set_child_subreaper(true).map_err(|e| error(e.into()))?;
        let (ours, theirs) = UnixStream::pair().map_err(error)?;
        ours.set_nonblocking(true).map_err(error)?;
        let log = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map_err(error)?;
        let (command, files) = parent_command(pool, program)?;
        let mut command = pool_command_of(pool, command)?;
        preload_environment(&mut command);
        // PHP's start-up messages go to the master's log, like paddock's own.
        command.stdin(Stdio::null()).stdout(Stdio::from(log));
        let mut inherit = vec![Inherit::new(&theirs, CONTROL_FD).map_err(error)?];
        inherit.extend(files);
        let child = spawn(
            &mut command,
            inherit,
            confinement(pool),
            Some(libc::SIGTERM),
        )
        .map_err(|e| engine_error(program, e))?;
        Ok(PhpParent {
            pid: Pid::from_raw(child.id() as i32),
            started: Instant::now(),
            token,
            channel: ours,
            inbox: Vec::new(),
            ready: false,
        })
    }

    pub(crate) fn source_fd(&self) -> RawFd {
        self.channel.as_raw_fd()
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.ready
    }

    /// When the parent must have started PHP (none once it has).
    pub(crate) fn start_deadline(&self) -> Option<Instant> {
        (!self.ready).then_some(self.started + START_TIMEOUT)
    }

    /// Reads what the parent sent: its readiness (answers to fork requests are read by
    /// [`PhpParent::fork_worker`] itself).
    pub(crate) fn on_readable(&mut self) -> ParentNews {
        let was_ready = self.ready;
        let open = self.receive();
        while let Some((id, _)) = self.next_message() {
            // Anything else is the late answer to a fork request that timed out: stale.
            if id == wire::READY {
                self.ready = true;
            }
        }
        match (open, was_ready, self.ready) {
            (false, _, _) => ParentNews::Closed,
            (true, false, true) => ParentNews::Ready,
            _ => ParentNews::Nothing,
        }
    }

    /// Reads everything available without blocking; false at the end of the stream.
    fn receive(&mut self) -> bool {
        let mut buf = [0u8; 256];
        loop {
            match self.channel.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => self.inbox.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => return false,
            }
        }
    }

    fn next_message(&mut self) -> Option<(u64, i32)> {
        let bytes: [u8; FORKED_LEN] = self.inbox.get(..FORKED_LEN)?.try_into().ok()?;
        self.inbox.drain(..FORKED_LEN);
        Some(wire::decode_forked(bytes))
    }

    /// Asks for one worker per `(id, listener, output)`: worker `id` serves on `listener`, its
    /// output on `output`. All requests go before any answer is read, so the parent forks them
    /// back to back; [`Self::await_forks`] takes the answers.
    fn send_forks(&mut self, batch: &[(WorkerId, &UnixListener, &OwnedFd)]) -> io::Result<()> {
        for (id, listener, output) in batch {
            let message = wire::encode_fork(*id);
            let fds = [listener.as_raw_fd(), output.as_raw_fd()];
            sendmsg::<()>(
                self.channel.as_raw_fd(),
                &[IoSlice::new(&message)],
                &[ControlMessage::ScmRights(&fds)],
                MsgFlags::MSG_NOSIGNAL,
                None,
            )?;
        }
        Ok(())
    }

    /// Waits for the answers to the fork requests for `ids`, calling `answer(index in ids, pid)`
    /// as each comes (pid 0: that fork failed). The middle processes report in the order they
    /// get to run, not the order asked. An error when the parent does not answer them all within
    /// [`FORK_TIMEOUT`].
    fn await_forks(
        &mut self,
        ids: &[WorkerId],
        mut answer: impl FnMut(usize, i32),
    ) -> io::Result<()> {
        let mut missing = ids.len();
        let deadline = Instant::now() + FORK_TIMEOUT;
        loop {
            while let Some((worker, pid)) = self.next_message() {
                if let Some(index) = ids.iter().position(|&id| id == worker) {
                    missing -= 1;
                    answer(index, pid);
                }
            }
            if missing == 0 {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(self.channel.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, timeout) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            if !self.receive() && self.inbox.len() < FORKED_LEN {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Stops a parent that failed, and says why it failed as far as its exit tells.
    pub(crate) fn kill_and_explain(self) -> SpawnError {
        let _ = kill(self.pid, Signal::SIGKILL);
        let status = loop {
            match waitpid(self.pid, None) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other,
            }
        };
        explain(match status {
            Ok(WaitStatus::Exited(_, code)) if self.ready || code != 0 => Ended::Exited(code),
            Ok(WaitStatus::Signaled(_, signal, _)) if signal != Signal::SIGKILL => {
                Ended::Killed(signal)
            }
            _ => Ended::Unresponsive,
        })
    }
}

/// The operator's version of a parent's death before it was ready.
pub(crate) fn explain(ended: Ended) -> SpawnError {
    let (reason, missing) = match ended {
        // The dynamic loader's status for a missing library.
        Ended::Exited(127) => (
            "the PHP engine's executable cannot load paddock-php (see the dynamic loader's \
             message above): php_engine must be a php-cgi of the PHP version paddock-php was \
             built for (`apt-get install php8.2-cgi`)"
                .to_string(),
            true,
        ),
        Ended::Exited(wire::EXIT_NO_PHP) => (
            "paddock-php was built without PHP: `apt-get install php8.2-dev php8.2-cgi`, then \
             rebuild it (`cargo build --release -p paddock-php`)"
                .to_string(),
            true,
        ),
        Ended::Exited(wire::EXIT_PHP_STARTUP) => (
            "PHP failed to start in the pool's PHP parent (php.ini, extensions: see its messages \
             above)"
                .to_string(),
            false,
        ),
        Ended::Exited(code) => (format!("the PHP parent exited with status {code}"), false),
        Ended::Killed(signal) => (format!("the PHP parent was killed by {signal}"), false),
        Ended::Unresponsive => (
            format!(
                "the PHP parent did not start PHP within {}s or did not answer",
                START_TIMEOUT.as_secs()
            ),
            false,
        ),
    };
    SpawnError::PhpParent { reason, missing }
}

/// Makes the sockets and pipes of workers `ids` of a `builtin = "php"` pool, to be forked by
/// [`fork_prepared`]; stops at the first that cannot be made, and says why (the parent is not
/// at fault).
pub(crate) fn prepare_workers(
    pool: &PoolConfig,
    ids: &[WorkerId],
    runtime: &RuntimeDir,
) -> (Vec<Prepared>, Option<SpawnError>) {
    let mut prepared = Vec::with_capacity(ids.len());
    for &id in ids {
        match prepare(pool, id, runtime) {
            Ok(p) => prepared.push(p),
            Err(e) => return (prepared, Some(e)),
        }
    }
    (prepared, None)
}

/// Asks the pool's ready parent for all the `prepared` workers at once, and hands each to
/// `started` as soon as its pid comes (the front end can use it while its siblings are still
/// being forked). [`Forks::Refused`] when the parent answered but could not fork some (the system
/// refused: a process limit, memory; the parent itself is fine); an error when the parent did
/// not answer: it failed, and the caller stops it ([`PhpParent::kill_and_explain`]).
pub(crate) fn fork_prepared(
    parent: &mut PhpParent,
    prepared: Vec<Prepared>,
    mut started: impl FnMut(WorkerId, SpawnedWorker),
) -> io::Result<Forks> {
    let asked: Vec<WorkerId> = prepared.iter().map(|p| p.id).collect();
    let batch: Vec<_> = prepared
        .iter()
        .map(|p| (p.id, &p.listener, &p.write_end))
        .collect();
    let sent = parent.send_forks(&batch);
    // The parent has its own copies of the listeners and pipes now; the master keeps the
    // socket paths and the pipes' read ends.
    let mut waiting: Vec<Option<Waiting>> = prepared
        .into_iter()
        .map(|p| {
            Some(Waiting {
                socket: p.socket,
                output: p.output,
            })
        })
        .collect();
    let mut refused = false;
    let answered = sent.and_then(|()| {
        parent.await_forks(&asked, |index, pid| {
            let Some(w) = waiting.get_mut(index).and_then(Option::take) else {
                return;
            };
            if pid > 0 {
                let (socket, output) = (w.socket, w.output);
                started(
                    asked[index],
                    SpawnedWorker {
                        pid: Pid::from_raw(pid),
                        socket,
                        output,
                        cpu: None,
                    },
                );
            } else {
                refused = true;
                let _ = std::fs::remove_file(&w.socket);
            }
        })
    });
    // Workers asked for and not started: their sockets go.
    for w in waiting.into_iter().flatten() {
        let _ = std::fs::remove_file(&w.socket);
    }
    answered.map(|()| if refused { Forks::Refused } else { Forks::All })
}

/// How the fork requests the parent answered went.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Forks {
    All,
    /// The system refused some forks (the parent said so on its output).
    Refused,
}

/// Why a parent's fork was refused, for the operator.
pub(crate) fn fork_refused() -> SpawnError {
    SpawnError::PhpParent {
        reason: "the PHP parent could not fork a worker: too many processes for the pool's user \
                 (`rlimit_nproc`: the parent and its spare middle process count too) or too \
                 little memory; its own message is above"
            .to_string(),
        missing: false,
    }
}

/// What the master makes for a worker before the parent forks it. The listener and the pipe's
/// write end go to the worker; the master closes its copies once they are sent.
pub(crate) struct Prepared {
    id: WorkerId,
    listener: UnixListener,
    socket: std::path::PathBuf,
    write_end: OwnedFd,
    output: WorkerOutput,
}

/// What the master keeps of a worker asked for until its pid comes.
struct Waiting {
    socket: std::path::PathBuf,
    output: WorkerOutput,
}

fn prepare(pool: &PoolConfig, id: WorkerId, runtime: &RuntimeDir) -> Result<Prepared, SpawnError> {
    let (listener, socket) = runtime
        .bind_worker_socket(&pool.name, id)
        .map_err(|source| SpawnError::Socket {
            path: runtime.path().to_path_buf(),
            source,
        })?;
    let fail = |source: io::Error| {
        let _ = std::fs::remove_file(&socket);
        SpawnError::Exec {
            program: pool.command[0].clone(),
            source,
        }
    };
    let (read_end, write_end) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| fail(e.into()))?;
    let output = WorkerOutput::new(read_end).map_err(fail)?;
    Ok(Prepared {
        id,
        listener,
        socket,
        write_end,
        output,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(ended: Ended) -> (String, bool) {
        match explain(ended) {
            SpawnError::PhpParent { reason, missing } => (reason, missing),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn a_missing_engine_names_the_package() {
        let (text, missing) = reason(Ended::Exited(127));
        assert!(text.contains("apt-get install php8.2-cgi"), "{text}");
        assert!(missing);
        let (text, missing) = reason(Ended::Exited(wire::EXIT_NO_PHP));
        assert!(text.contains("php8.2-dev"), "{text}");
        assert!(missing);
        let (text, missing) = reason(Ended::Exited(wire::EXIT_PHP_STARTUP));
        assert!(text.contains("php.ini"), "{text}");
        assert!(!missing);
        let (text, _) = reason(Ended::Unresponsive);
        assert!(text.contains("did not start PHP"), "{text}");
    }
}
