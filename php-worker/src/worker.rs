//! A worker's life after the fork: take its descriptors, wait to be the master's child, serve.
//!
//! The master hands each worker its own listening socket, as it does for php-cgi; the worker
//! serves the front end's kept connections to it one request at a time (prefork), the request
//! sent first first (`connections`).

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use nix::unistd::Pid;

use crate::args::{Args, DEFAULT_SLOWLOG_DEPTH};
use crate::connections::{Connection, Connections};
use crate::exchange::{self, Exchange};
use crate::ffi;
use crate::request::PhpRequest;
use crate::slowlog::SlowLog;

/// A worker's process name (the parent keeps `paddock-php`).
const WORKER_NAME: &std::ffi::CStr = c"php-worker";
/// How long a new worker waits to be re-parented to the master before giving up.
const REPARENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves until the master stops this worker; never returns. `args` gives the pool's
/// request_timeout (PHP's own timeout error ends a longer request) and slow-request log.
pub(crate) fn run(
    listener: OwnedFd,
    output: OwnedFd,
    control: OwnedFd,
    master: Pid,
    args: &Args,
) -> ! {
    // The parent's control socket is not the worker's business.
    drop(control);
    // PHP's stray writes and the worker's own messages go to the master's log, under this
    // worker's pid.
    if nix::unistd::dup2_stdout(&output).is_err() || nix::unistd::dup2_stderr(&output).is_err() {
        std::process::exit(1);
    }
    drop(output);
    if let Err(why) = crate::fork::become_masters_child(master, REPARENT_TIMEOUT) {
        eprintln!("paddock-php worker: {why}");
        std::process::exit(1);
    }
    // `top` and /proc/PID/comm tell workers from their parent (`paddock-php`).
    let _ = nix::sys::prctl::set_name(WORKER_NAME);
    // The scripts other workers compiled, mapped now rather than a page fault at a time in the
    // first request (a recycled worker's first request is otherwise the slowest it serves).
    crate::premap::map_shared_memory();
    let listener = UnixListener::from(listener);
    let timeout = args.request_timeout.unwrap_or_default();
    let slowlog = args.slowlog_timeout.and_then(|after| {
        let depth = args.slowlog_depth.unwrap_or(DEFAULT_SLOWLOG_DEPTH);
        SlowLog::start(after, depth)
            .map_err(|e| eprintln!("paddock-php worker: no slow-request log: {e}"))
            .ok()
    });
    let mut connections = Connections::default();
    loop {
        let connection = match connections.next_ready(&listener) {
            Ok(connection) => connection,
            Err(e) => {
                eprintln!("paddock-php worker: waiting for requests failed: {e}");
                std::process::exit(1);
            }
        };
        if let Some(kept) = serve_request(connection, timeout, slowlog.as_ref()) {
            connections.put_back(kept);
        }
    }
}

/// Serves the request whose bytes have begun to arrive on `connection`; the connection back if the
/// front end keeps it for more.
fn serve_request(
    connection: Connection,
    timeout: Duration,
    slowlog: Option<&SlowLog>,
) -> Option<Connection> {
    let Connection {
        mut stream,
        mut reader,
    } = connection;
    let incoming = match reader.next_request(&mut stream) {
        Ok(Some(incoming)) => incoming,
        Ok(None) => return None,
        Err(e) => {
            eprintln!("paddock-php worker: bad FastCGI connection: {e}");
            return None;
        }
    };
    let Some(mut request) = PhpRequest::from_params(&incoming.params) else {
        eprintln!("paddock-php worker: malformed PARAMS; closing the connection");
        return None;
    };
    let started = Instant::now();
    exchange::begin(Exchange::new(stream, incoming.id, incoming.stdin));
    let view = request.c_view();
    if let Some(slowlog) = slowlog {
        slowlog.begin();
    }
    let ran = ffi::run_request(&view, timeout);
    if let Some(slowlog) = slowlog {
        slowlog.end();
    }
    let exchange = exchange::take().expect("the exchange begun above");
    if !ran {
        eprintln!(
            "paddock-php worker: PHP could not start a request ({:?})",
            started.elapsed()
        );
    }
    let stream = exchange.end()?;
    incoming.keep_conn.then_some(Connection { stream, reader })
}
