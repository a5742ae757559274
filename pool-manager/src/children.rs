//! Building and starting the master's children: the front end and pool workers.

use std::io;
use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::unistd::Pid;
use protocol::control::{WorkerId, CONTROL_FD, FIRST_LISTENER_FD};

use crate::config::{PoolConfig, Scheduling};
use crate::sockets::RuntimeDir;
use crate::spawn::{spawn, Confinement, Inherit, Limit};
use crate::worker_output::WorkerOutput;

/// Starts `paddock frontend` (this same binary) with the control channel at [`CONTROL_FD`] and the
/// listeners from [`FIRST_LISTENER_FD`] on.
pub(crate) fn spawn_frontend(
    exe: &Path,
    log_level: &str,
    runtime: frontend::RuntimeLayout,
    control: &UnixStream,
    listeners: &[TcpListener],
) -> io::Result<Pid> {
    let mut inherit = vec![Inherit::new(control, CONTROL_FD)?];
    for (i, listener) in listeners.iter().enumerate() {
        inherit.push(Inherit::new(listener, FIRST_LISTENER_FD + i as i32)?);
    }
    let mut command = Command::new(exe);
    command
        .arg("frontend")
        .arg("--log-level")
        .arg(log_level)
        .arg("--runtime")
        .arg(runtime.name())
        .env_remove(crate::sd_notify::NOTIFY_SOCKET)
        .stdin(Stdio::null())
        // Its own process group: a Ctrl-C on the terminal reaches only the master, which then
        // stops the front end in order instead of every process dying at once.
        .process_group(0);
    let child = spawn(
        &mut command,
        inherit,
        Confinement::default(),
        Some(libc::SIGTERM),
    )?;
    Ok(Pid::from_raw(child.id() as i32))
}

/// A started worker process.
#[derive(Debug)]
pub(crate) struct SpawnedWorker {
    pub pid: Pid,
    pub socket: PathBuf,
    pub output: WorkerOutput,
    /// The CPU it is pinned to (`cpu_affinity = "spread"`).
    pub cpu: Option<usize>,
}

/// Why a worker could not be started, worded for the operator.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SpawnError {
    #[error("cannot create the worker socket {path}: {source}")]
    Socket { path: PathBuf, source: io::Error },
    #[error("command `{program}` was not found{hint}")]
    CommandNotFound { program: String, hint: String },
    #[error("cannot start `{program}`: {source}")]
    Exec { program: String, source: io::Error },
    #[error("pool `{pool}` sets a user or group, which needs paddock to be started as root")]
    NotRoot { pool: String },
    /// The warm PHP parent of a `builtin = "php"` pool could not fork a worker.
    #[error("{reason}")]
    PhpParent {
        reason: String,
        /// PHP itself is missing (not installed, or paddock-php built without it): retrying
        /// soon is pointless.
        missing: bool,
    },
}

/// Starts one worker of `pool` with its own listening socket as descriptor 0, the FastCGI
/// convention (`FCGI_LISTENSOCK_FILENO`) that php-cgi and every libfcgi program follow, and
/// `NOTIFY_SOCKET` set to `notify_socket` when the pool waits for its workers to be ready, and
/// pinned to `cpu` if one is given.
pub(crate) fn spawn_worker(
    pool: &PoolConfig,
    id: WorkerId,
    runtime: &RuntimeDir,
    notify_socket: Option<&str>,
    cpu: Option<usize>,
) -> Result<SpawnedWorker, SpawnError> {
    let (listener, socket) = runtime
        .bind_worker_socket(&pool.name, id)
        .map_err(|source| SpawnError::Socket {
            path: runtime.path().to_path_buf(),
            source,
        })?;
    let program = &pool.command[0];
    let exec_error = |source: io::Error| SpawnError::Exec {
        program: program.clone(),
        source,
    };
    let (read_end, write_end) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| exec_error(e.into()))?;
    let write_end_copy = write_end.try_clone().map_err(exec_error)?;
    let mut command = pool_command(pool).inspect_err(|_| {
        let _ = std::fs::remove_file(&socket);
    })?;
    if let Some(address) = notify_socket {
        command.env(crate::sd_notify::NOTIFY_SOCKET, address);
    }
    command
        .stdin(Stdio::from(OwnedFd::from(listener)))
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::from(write_end_copy));
    let child = spawn(
        &mut command,
        Vec::new(),
        Confinement {
            cpu,
            ..confinement(pool)
        },
        Some(libc::SIGTERM),
    )
    .map_err(|source| {
        let _ = std::fs::remove_file(&socket);
        start_error(program, source)
    })?;
    // Drop our copies of the worker's descriptors (they moved into `command`).
    drop(command);
    Ok(SpawnedWorker {
        pid: Pid::from_raw(child.id() as i32),
        socket,
        output: WorkerOutput::new(read_end).map_err(exec_error)?,
        cpu,
    })
}

/// The pool's program with its isolation applied: cleared environment plus the pool's, working
/// directory, user and group, its own process group (so that stopping a worker also ends
/// whatever it started, e.g. CGI scripts). The caller sets the standard descriptors.
pub(crate) fn pool_command(pool: &PoolConfig) -> Result<Command, SpawnError> {
    pool_command_of(pool, Command::new(&pool.command[0]))
}

/// [`pool_command`] for a `command` whose program the caller chose (see
/// `php_parent::parent_command`).
pub(crate) fn pool_command_of(
    pool: &PoolConfig,
    mut command: Command,
) -> Result<Command, SpawnError> {
    command
        .args(&pool.command[1..])
        .env_clear()
        .envs(&pool.env)
        .process_group(0);
    if let Some(dir) = &pool.working_directory {
        command.current_dir(dir);
    }
    if pool.user.is_some() || pool.group.is_some() {
        if !nix::unistd::geteuid().is_root() {
            return Err(SpawnError::NotRoot {
                pool: pool.name.clone(),
            });
        }
        if let Some(gid) = pool.group {
            command.gid(gid);
        }
        if let Some(uid) = pool.user {
            command.uid(uid);
        }
    }
    Ok(command)
}

/// A failed start of `program`, with an install hint when it is missing.
pub(crate) fn start_error(program: &str, source: io::Error) -> SpawnError {
    if source.kind() == io::ErrorKind::NotFound {
        SpawnError::CommandNotFound {
            program: program.to_string(),
            hint: install_hint(program),
        }
    } else {
        SpawnError::Exec {
            program: program.to_string(),
            source,
        }
    }
}

/// A pool's processes' resource limits and scheduling policy.
pub(crate) fn confinement(pool: &PoolConfig) -> Confinement {
    let r = &pool.rlimits;
    let limits = [
        (libc::RLIMIT_NOFILE, r.nofile),
        (libc::RLIMIT_NPROC, r.nproc),
        (libc::RLIMIT_CORE, r.core),
    ]
    .into_iter()
    .filter_map(|(resource, value)| value.map(|value| Limit { resource, value }))
    .collect();
    Confinement {
        limits,
        batch_scheduling: pool.scheduling == Scheduling::Batch,
        cpu: None,
    }
}

fn install_hint(program: &str) -> String {
    match Path::new(program).file_name().and_then(|f| f.to_str()) {
        Some(name) if name.starts_with("php-cgi") => {
            "; install it with `apt-get install php-cgi` (Debian/Ubuntu) or set pools.<name>.command"
                .into()
        }
        Some(crate::config::PHP_LIBRARY) => {
            " next to paddock; build it with `cargo build --release -p paddock-php` (needs \
             `apt-get install php8.2-dev`)"
                .into()
        }
        Some(crate::config::WSGI_PROGRAM) => {
            " next to paddock; build it with `cargo build --release -p paddock-wsgi` (needs \
             `apt-get install libpython3.11-dev`)"
                .into()
        }
        _ => " in PATH".into(),
    }
}
