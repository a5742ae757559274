//! `paddock-wsgi MODULE[:CALLABLE]`: paddock's own WSGI worker, for threaded pools.
//!
//! One process of a threaded pool: it embeds CPython, imports the application once, and serves
//! FastCGI on the listening socket paddock passes as fd 0 with `PADDOCK_THREADS` threads. The
//! front end keeps a connection per slot (and more for requests sent ahead with `send_ahead`);
//! whichever thread is free takes the next request of whichever connection has one, so a thread
//! that finds a request already waiting goes on without sleeping. One `recv` and one `write` a
//! request, no hand-over between threads. The request's CGI variables become the WSGI environ as
//! they are (the client's address, the scheme and the mount's prefix need no `X-Forwarded-*` and
//! no `ProxyFix`).
//!
//! A thread holds Python's GIL only while the application runs: reading the next request and
//! writing the answer happen with it released.
//!
//! # Layout
//! - `app.rs` — importing the application;
//! - `connections.rs` — the process's connections in one epoll set, shared by the threads;
//! - `serve.rs` — the threads, and a request from read to answer;
//! - `environ.rs` — the WSGI environ made from the CGI variables;
//! - `start_response.rs` — the `start_response` callable and the head it records;
//! - `answer.rs` — the answer as FastCGI records: one write when the length is known;

mod answer;
mod app;
mod connections;
mod environ;
mod serve;
mod start_response;
mod turns;

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
    if target == "--version" || target == "-V" {
        println!("{}", version());
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
    coerce_c_locale();
    Python::initialize();
    let app = match Python::attach(|py| app::load(py, &target)) {
        Ok(app) => app,
        Err(message) => {
            eprintln!("paddock-wsgi: cannot load `{target}`: {message}");
            return ExitCode::FAILURE;
        }
    };
    // `READY=1` for pools with `readiness = "notify"`: requests only once the app is imported.
    if let Err(e) = protocol::responder::notify(b"READY=1\n") {
        eprintln!("paddock-wsgi: READY=1 to NOTIFY_SOCKET failed: {e}");
    }
    serve::run(listener, &app, threads)
}

/// `paddock-wsgi 0.1.0 (Python 3.11.2, libpython linked static)`: which interpreter runs the
/// applications, and whether it is the static library linked in (`build.rs`) or the shared one.
fn version() -> String {
    Python::initialize();
    let python = Python::attach(|py| py.version().split_whitespace().next().map(str::to_owned));
    format!(
        "paddock-wsgi {} (Python {}, libpython linked {})",
        env!("CARGO_PKG_VERSION"),
        python.unwrap_or_default(),
        env!("PADDOCK_WSGI_LIBPYTHON_LINKED"),
    )
}

/// Python's own `main` moves a process started under the C locale to C.UTF-8 (PEP 538); an
/// embedded interpreter does not, and would then read file names and write stderr as ASCII.
/// The same move here: `LC_CTYPE=C.UTF-8` when neither `LC_ALL` nor a locale other than C or
/// POSIX is set (the pool's `env` can set one).
fn coerce_c_locale() {
    let set = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    if set("LC_ALL").is_some() {
        return;
    }
    let ctype = set("LC_CTYPE").or_else(|| set("LANG")).unwrap_or_default();
    if ctype.is_empty() || ctype == "C" || ctype == "POSIX" {
        // Called in `main` before Python starts and before any other thread exists:
        // nothing reads the environment at the same time.
        #[allow(clippy::disallowed_methods)]
        std::env::set_var("LC_CTYPE", "C.UTF-8");
    }
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
