//! Loading and validating the configuration.
//!
//! Two steps, as in sozu and pingora: serde parses the TOML into the raw schema of [`raw`] (unknown
//! keys are errors), then [`validate`] checks what serde cannot (references between sections, files
//! that must exist, ranges) and produces the [`Config`] the rest of paddock uses. Every error names
//! the file, the line and the dotted key, so `paddock check` output can be acted on directly.
//!
//! The validators are split by section (`validate` for the whole file, listeners and sites,
//! `pool`, `limits`, `rules`); the errors they return are in `error` and the file-system checks
//! they share in `paths`, so no validator imports another's helpers.

mod acme;
mod error;
mod limits;
mod locate;
mod mounts;
mod paths;
mod php;
pub(crate) use php::{PHP_LIBRARY, PHP_PROGRAM};
mod wsgi;
pub(crate) use wsgi::WSGI_PROGRAM;
mod pool;
mod raw;
mod raw_rules;
mod readiness;
mod rules;
mod sendfile;
pub mod units;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use protocol::control::{FrontendSpec, WorkerProtocol};

pub use self::error::ConfigError;

/// The configuration used when `paddock serve` is given no `--config`.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.toml");

/// Where relative paths in the embedded default are resolved: the repository root, so that
/// `cargo run --release` serves `deploy/demo/` from any working directory.
pub const EMBEDDED_BASE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// A fully validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the config came from, for log messages.
    pub origin: String,
    /// The file to read again on reload; `None` for the embedded default.
    pub path: Option<PathBuf>,
    pub runtime_dir: Option<PathBuf>,
    /// Where `paddock status|reload|stop` reach the running master: the configured path, else
    /// `<runtime_dir>/control.sock` when a runtime directory is configured.
    pub control_socket: Option<PathBuf>,
    pub log_level: String,
    /// How the front end's event loops use the cores (read when the front end starts).
    pub frontend_runtime: frontend::RuntimeLayout,
    pub shutdown_timeout: Duration,
    /// The part the front end needs; listeners are in bind order.
    pub frontend: FrontendSpec,
    pub pools: Vec<PoolConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    /// One request at a time per process, for handlers that are not thread-safe.
    Prefork,
    /// Several concurrent requests (threads) per process.
    Threaded,
    /// A FastCGI server paddock does not start (e.g. an existing php-fpm): only its socket.
    External,
}

/// When a started worker is handed requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// As soon as it is started: its socket is bound (and listening) before the program runs,
    /// so requests wait in the socket's backlog while the program loads.
    Listening,
    /// Once the worker sends `READY=1` to `$NOTIFY_SOCKET` (systemd's notify protocol, which
    /// uWSGI and gunicorn speak): requests wait in the front end's queue, where any ready worker
    /// can take them, instead of behind a program still loading its application.
    Notify {
        /// A worker not ready by then is killed and counted as a failed start.
        start_timeout: Duration,
        /// Workers starting (not ready yet) at once, so that a burst does not start more
        /// CPU-bound application loads than there are cores to run them.
        max_starting: u32,
    },
}

/// How many workers a pool keeps. Spare counts are in slots (requests that could start now), so
/// a threaded pool with 8 threads per worker and `min_spare = 8` keeps one idle worker's worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sizing {
    /// Exactly `workers` processes (php-fpm `pm = static`).
    Static { workers: u32 },
    /// Between the spare bounds, up to `max` processes (php-fpm `pm = dynamic`, Apache's MPMs).
    Dynamic {
        start: u32,
        min_spare: u32,
        max_spare: u32,
        max: u32,
    },
    /// None until requests arrive; idle workers retire after `idle_timeout` (php-fpm `ondemand`).
    OnDemand { max: u32, idle_timeout: Duration },
}

impl Sizing {
    /// The most workers the pool may run.
    pub fn max_workers(&self) -> u32 {
        match *self {
            Sizing::Static { workers } => workers,
            Sizing::Dynamic { max, .. } | Sizing::OnDemand { max, .. } => max,
        }
    }
}

/// When a worker is replaced although it works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Recycle {
    /// Requests after which a worker retires (0 = never), plus up to `jitter` more, chosen per
    /// worker so that a pool started at once does not restart at once.
    pub max_requests: u64,
    pub jitter: u64,
    /// Resident memory above which a worker retires.
    pub max_rss: Option<u64>,
    /// Age after which a worker retires.
    pub max_lifetime: Option<Duration>,
}

/// How the kernel schedules a pool's processes (`scheduling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scheduling {
    /// `SCHED_BATCH`: a woken worker does not preempt the front end that handed it a request.
    #[default]
    Batch,
    /// `SCHED_OTHER`, the kernel's default for every process.
    Normal,
}

/// Which CPUs a pool's processes may run on (`cpu_affinity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CpuAffinity {
    /// Any CPU paddock itself may run on: the kernel places and moves them.
    #[default]
    None,
    /// Each worker process (all its threads) on one CPU of those paddock may run on, the pool's
    /// workers spread evenly over them: a process stays where its caches are warm.
    Spread,
}

/// Resource limits applied to each worker process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rlimits {
    pub nofile: Option<u64>,
    pub nproc: Option<u64>,
    pub core: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    pub name: String,
    pub mode: PoolMode,
    /// Program and arguments; the program is looked up in PATH when it has no slash. Empty for
    /// external pools.
    pub command: Vec<String>,
    /// `builtin = "php"` (see [`PoolConfig::builtin_php`]): paddock-php's library, loaded into
    /// `command`'s program (the engine's executable) when the parent starts.
    pub php_library: Option<PathBuf>,
    /// The socket of an external pool.
    pub external_socket: Option<PathBuf>,
    /// What the front end speaks to the workers (FastCGI unless `protocol = "uwsgi"`).
    pub protocol: WorkerProtocol,
    /// Whether a connection to a worker carries more than one request (see
    /// `PoolDispatchSpec::keep_connections`).
    pub keep_connections: bool,
    /// `send_ahead` (builtin PHP pools; see `PoolDispatchSpec::send_ahead`).
    pub send_ahead: bool,
    /// `send_ahead_below`, in µs.
    pub send_ahead_below_us: u64,
    /// Concurrent requests per worker: 1 for prefork.
    pub slots_per_worker: u32,
    pub sizing: Sizing,
    /// Most workers started per one-second tick by the ramp (queue pressure may start more).
    pub spawn_rate: u32,
    pub readiness: Readiness,
    pub recycle: Recycle,
    pub working_directory: Option<PathBuf>,
    /// The worker's complete environment (paddock starts workers from a cleared environment).
    pub env: BTreeMap<String, String>,
    /// Numeric user and group to run workers as (only when paddock runs as root).
    pub user: Option<u32>,
    pub group: Option<u32>,
    pub rlimits: Rlimits,
    pub scheduling: Scheduling,
    pub cpu_affinity: CpuAffinity,
}

impl PoolConfig {
    /// `builtin = "php"`: `command` starts the pool's warm PHP parent, which forks the workers.
    pub fn builtin_php(&self) -> bool {
        self.php_library.is_some()
    }
}

/// Loads and validates a config file.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        line: None,
        key: String::new(),
        message: format!("cannot read the config file: {e}"),
    })?;
    let base = path
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let mut config = load_str(&text, &file, &base)?;
    config.path = Some(path.to_path_buf());
    Ok(config)
}

/// Loads the configuration again from where `current` came from (for a reload).
pub fn reload(current: &Config) -> Result<Config, ConfigError> {
    match &current.path {
        Some(path) => load_file(path),
        None => load_embedded_default(),
    }
}

/// Loads and validates the embedded default configuration.
pub fn load_embedded_default() -> Result<Config, ConfigError> {
    load_str(
        EMBEDDED_DEFAULT,
        "<embedded default>",
        Path::new(EMBEDDED_BASE_DIR),
    )
}

/// Parses and validates config text; `file` names it in errors, `base` anchors relative paths.
pub fn load_str(text: &str, file: &str, base: &Path) -> Result<Config, ConfigError> {
    let raw: raw::RawConfig = toml::from_str(text).map_err(|e| {
        let (line, key) = locate::locate_span(text, e.span());
        ConfigError {
            file: file.to_string(),
            line,
            key,
            message: e.message().trim().to_string(),
        }
    })?;
    validate::validate(raw, base, file).map_err(|e| {
        let (line, key) = locate::locate_key(text, &e.path);
        ConfigError {
            file: file.to_string(),
            line,
            key,
            message: e.message,
        }
    })
}

#[cfg(test)]
mod acme_tests;
#[cfg(test)]
mod frontend_tests;
#[cfg(test)]
mod mount_tests;
#[cfg(test)]
mod readiness_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod wsgi_tests;
