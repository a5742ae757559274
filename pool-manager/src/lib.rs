//! The paddock master (pool manager) and the command-line entry points.
//!
//! The master parses the config, binds the public listeners, execs the front end (this same binary
//! with the `frontend` subcommand) and keeps the worker pools, all from one thread with no async
//! runtime, so that fork+exec is always safe.
//!
//! # Layout
//! - [`cgi_runner`] — the built-in CGI/1.1 handler (an fcgiwrap equivalent) for threaded pools.
//! - [`command_client`] — `paddock status|reload|stop` on the command line.
//! - [`config`] — TOML schema, validation, file/line/key errors, the embedded default.
//! - [`master`] — the event loop: signals, control channel, reaping, timers.
//! - [`htaccess_report`] — what `paddock check` says about each site's `.htaccess` files.
//! - `policy` — the sizing policy: a pure function from a pool snapshot to actions.
//! - `pool` — per-pool supervision state and crash-loop backoff.
//! - `children` — building the front-end and worker commands.
//! - `cpu_affinity` — the CPU a worker of a `cpu_affinity = "spread"` pool is pinned to.
//! - `php_parent` — the warm PHP parent of a `builtin = "php"` pool, which forks its workers.
//! - `spawn` — fork+exec with descriptor placement (the only `unsafe` module).
//! - `sd_notify` — systemd readiness notification.
//! - `sockets` — listeners, the private runtime directory and worker sockets.
//! - `control` — the master's end of the control channel.
//! - `worker_output` — worker stdout/stderr into the log.

pub mod cgi_runner;
pub mod command_client;
pub mod config;
pub mod htaccess_report;
pub mod master;

mod children;
mod control;
mod cpu_affinity;
mod php_parent;
mod policy;
mod pool;
mod sd_notify;
mod sockets;
mod spawn;
mod worker_output;

pub use master::serve;

/// Sets up logging to standard error at `level` (overridden by `RUST_LOG` when set).
pub fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
