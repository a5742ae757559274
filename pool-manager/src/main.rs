//! `paddock`: parses the command line and hands over to the libraries.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// jemalloc, not glibc's allocator: it keeps blocks of one size together without a header each
/// and hands back pages that a burst of connections left empty, where glibc keeps the freed
/// blocks between live ones for good (docs/benchmarks.md, row 25: 1.23 → 0.93 KiB per idle
/// connection).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, which it reads by this symbol's name before `main`: a background thread
/// returns freed pages to the system about a second after they empty, instead of at the next
/// allocation after ten seconds (an idle server allocates nothing, so it would keep them).
/// `_RJEM_MALLOC_CONF` in the environment still overrides these.
#[allow(unsafe_code)] // an exported symbol (jemalloc's weak `malloc_conf`), no unsafe operation
#[export_name = "_rjem_malloc_conf"]
static JEMALLOC_OPTIONS: &u8 = &b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0"[0];

#[derive(Debug, Parser)]
#[command(
    name = "paddock",
    version,
    about = "Async TLS front end with prefork and threaded FastCGI worker pools"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve (the default): start the master, the front end and the worker pools.
    Serve {
        /// Config file; without it paddock serves its embedded default (the demo site).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Validate a config file and exit: 0 when valid, 1 with file, line and key when not.
    Check {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Show the running paddock's pools and workers (JSON).
    Status(Target),
    /// Reload the running paddock's configuration; an invalid file keeps the running one.
    Reload(Target),
    /// Stop the running paddock gracefully (in-flight requests finish first).
    Stop {
        #[command(flatten)]
        target: Target,
        /// Do not wait for in-flight requests.
        #[arg(long)]
        fast: bool,
    },
    /// Internal: the built-in CGI runner, started by the master as a threaded worker.
    #[command(hide = true)]
    CgiRunner {
        #[arg(long, default_value_t = 8)]
        threads: usize,
        #[arg(long, default_value_t = 30_000)]
        timeout_ms: u64,
    },
    /// Internal: the front-end process, started by the master with inherited descriptors.
    #[command(hide = true)]
    Frontend {
        #[arg(long, default_value = "info")]
        log_level: String,
        /// `per-core`, `per-core-pinned` or `shared` (`server.frontend_runtime`).
        #[arg(long, default_value = "per-core")]
        runtime: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve { config: None }) {
        Command::Serve { config } => {
            let config = match load(config.as_deref()) {
                Ok(config) => config,
                Err(code) => return code,
            };
            pool_manager::init_logging(&config.log_level);
            match pool_manager::serve(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    eprintln!("paddock: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check { config } => match load(config.as_deref()) {
            Ok(config) => {
                println!("{}: configuration is valid", config.origin);
                for site in &config.frontend.sites {
                    for line in pool_manager::htaccess_report::report(site) {
                        println!("{line}");
                    }
                }
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Status(target) => command(target, "status"),
        Command::Reload(target) => command(target, "reload"),
        Command::Stop { target, fast } => command(target, if fast { "stop-fast" } else { "stop" }),
        Command::CgiRunner {
            threads,
            timeout_ms,
        } => match pool_manager::cgi_runner::run(
            threads,
            std::time::Duration::from_millis(timeout_ms),
        ) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("paddock cgi-runner: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Frontend { log_level, runtime } => {
            pool_manager::init_logging(&log_level);
            let Some(layout) = frontend::RuntimeLayout::parse(&runtime) else {
                eprintln!("paddock frontend: unknown --runtime {runtime:?}");
                return ExitCode::FAILURE;
            };
            match frontend::run_inherited(layout) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("front end failed: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Which running paddock a command talks to.
#[derive(Debug, clap::Args)]
struct Target {
    /// Its config file (the command socket is found from it).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Its command socket, directly.
    #[arg(long, conflicts_with = "config")]
    socket: Option<PathBuf>,
}

fn command(target: Target, command: &str) -> ExitCode {
    let socket = match target.socket {
        Some(socket) => socket,
        None => {
            let config = match load(target.config.as_deref()) {
                Ok(config) => config,
                Err(code) => return code,
            };
            match pool_manager::command_client::socket_of(&config) {
                Ok(socket) => socket,
                Err(e) => {
                    eprintln!("paddock: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    match pool_manager::command_client::send(&socket, command) {
        Ok(answer) => {
            println!("{answer}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("paddock: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: Option<&std::path::Path>) -> Result<pool_manager::config::Config, ExitCode> {
    let result = match path {
        Some(path) => pool_manager::config::load_file(path),
        None => pool_manager::config::load_embedded_default(),
    };
    result.map_err(|e| {
        eprintln!("paddock: invalid configuration: {e}");
        ExitCode::FAILURE
    })
}
