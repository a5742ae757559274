//! A deliberately non-thread-safe FastCGI application, to show what happens when such code runs in
//! a threaded pool: each request stores a fresh token in a process-global, sleeps, and reports
//! whether another request replaced the token meanwhile (`corrupted=1`). Served one request at a
//! time (prefork, `--threads 1`) it always answers `corrupted=0`; with `--threads N` and concurrent
//! requests it answers `corrupted=1` for the overlapped ones.
//!
//! Started like any FastCGI application, with its listening Unix socket as fd 0.
//! Options: `--threads N` (default 1), `--sleep-ms MS` (default 20).
#![forbid(unsafe_code)]

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use protocol::responder::{Request, Responder, Response};

/// The "current request" the way legacy code keeps it: one global for the whole process.
static CURRENT_REQUEST: AtomicU64 = AtomicU64::new(0);
/// Hands out distinct tokens, so two requests never store the same one.
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

fn main() {
    let options = Options::parse();
    let responder = match Responder::from_listen_fd() {
        Ok(responder) => responder.threads(options.threads),
        Err(e) => {
            eprintln!("fcgi-unsafe: {e}");
            std::process::exit(2);
        }
    };
    let sleep = Duration::from_millis(options.sleep_ms);
    let handler = move |_: &Request, response: &mut Response<'_>| {
        let token = NEXT_TOKEN.fetch_add(1, Ordering::SeqCst);
        CURRENT_REQUEST.store(token, Ordering::SeqCst);
        std::thread::sleep(sleep);
        let corrupted = CURRENT_REQUEST.load(Ordering::SeqCst) != token;
        let written = write!(
            response,
            "Content-Type: text/plain\r\nX-Pid: {}\r\n\r\ncorrupted={}\n",
            std::process::id(),
            u8::from(corrupted)
        );
        u32::from(written.is_err())
    };
    if let Err(e) = responder.serve(handler) {
        eprintln!("fcgi-unsafe: {e}");
        std::process::exit(1);
    }
}

struct Options {
    threads: usize,
    sleep_ms: u64,
}

impl Options {
    fn parse() -> Self {
        let mut options = Options {
            threads: 1,
            sleep_ms: 20,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let value = args.next().unwrap_or_else(|| usage());
            match flag.as_str() {
                "--threads" => options.threads = value.parse().unwrap_or_else(|_| usage()),
                "--sleep-ms" => options.sleep_ms = value.parse().unwrap_or_else(|_| usage()),
                _ => usage(),
            }
        }
        options
    }
}

fn usage() -> ! {
    eprintln!("usage: fcgi-unsafe [--threads N] [--sleep-ms MS]  (listening socket on fd 0)");
    std::process::exit(2);
}
