//! `paddock`: parses the command line and hands over to the libraries.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
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
        Command::Frontend { log_level } => {
            pool_manager::init_logging(&log_level);
            match frontend::run_inherited() {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("front end failed: {e:#}");
                    ExitCode::FAILURE
                }
            }
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
