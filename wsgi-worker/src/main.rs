//! `paddock-wsgi MODULE[:CALLABLE]`: paddock's own WSGI worker, for threaded pools.
//!
//! One process of a threaded pool: it embeds CPython, imports the application once, and serves
//! FastCGI on the listening socket paddock passes as fd 0 with `PADDOCK_THREADS` threads, each
//! taking one connection at a time and answering its requests one after another. paddock keeps
//! one connection per slot, so each thread keeps one connection for life and reads its next
//! request straight off it: no accept, no hand-over between threads, one `recv` and one `write` a
//! request. The request's CGI variables become the WSGI environ as they are (the client's
//! address, the scheme and the mount's prefix need no `X-Forwarded-*` and no `ProxyFix`).
//!
//! A thread holds Python's GIL only while the application runs: reading the next request and
//! writing the answer happen with it released.
//!
//! # Layout
//! - `app.rs` — importing the application;
//! - `serve.rs` — the threads, their connections, and a request from read to answer;
//! - `environ.rs` — the WSGI environ made from the CGI variables;
//! - `start_response.rs` — the `start_response` callable and the head it records;
//! - `answer.rs` — the answer as FastCGI records: one write when the length is known;
//! - `notify.rs` — `READY=1` for pools with `readiness = "notify"`.

mod answer;
mod app;
mod environ;
mod notify;
mod serve;
mod start_response;

use std::process::ExitCode;

use pyo3::Python;

const USAGE: &str = "usage: paddock-wsgi MODULE[:CALLABLE]  (CALLABLE defaults to `application`; \
                     run by a paddock threaded pool, which passes the listening socket as fd 0 \
                     and the thread count as PADDOCK_THREADS)";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(target), None) = (args.next(), args.next()) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    if target == "--help" || target == "-h" {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let threads = match threads_from_env() {
        Ok(threads) => threads,
        Err(message) => {
            eprintln!("paddock-wsgi: {message}");
            return ExitCode::from(2);
        }
    };
    let listener = match protocol::responder::listen_fd() {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("paddock-wsgi: {e} (it is started by a paddock pool, which passes one)");
            return ExitCode::from(2);
        }
    };
    Python::initialize();
    let app = match Python::attach(|py| app::load(py, &target)) {
        Ok(app) => app,
        Err(message) => {
            eprintln!("paddock-wsgi: cannot load `{target}`: {message}");
            return ExitCode::FAILURE;
        }
    };
    notify::ready();
    serve::run(listener, &app, threads)
}

/// `PADDOCK_THREADS`, which paddock sets for every worker (the pool's `threads`); 1 without it.
fn threads_from_env() -> Result<usize, String> {
    match std::env::var("PADDOCK_THREADS") {
        Err(_) => Ok(1),
        Ok(value) => match value.parse::<usize>() {
            Ok(threads @ 1..=1024) => Ok(threads),
            _ => Err(format!("PADDOCK_THREADS={value:?}: expected 1 to 1024")),
        },
    }
}
