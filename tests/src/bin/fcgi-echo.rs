//! A FastCGI application for the peer tests: answers every request with a JSON dump of what it
//! received (params, role, stdin length and SHA-1), so a test can assert what a real web server
//! (nginx, cgi-fcgi, paddock) sent.
//!
//! Started like any FastCGI application, with its listening Unix socket as fd 0.
//! `--threads N` serves N connections at once (default 1). A query string containing `stderr=1`
//! also writes one line to FCGI_STDERR, which web servers log; `sleep_ms=N` answers after N ms.
//!
//! For the readiness tests it can play an application that loads slowly and says when it is
//! ready (systemd's notify protocol, as uWSGI speaks it): `--ready-after MS` sends `READY=1` to
//! `$NOTIFY_SOCKET` MS milliseconds after it starts, `--ready-when PATH` once PATH exists; until
//! then it answers every request with a 503 "not ready", which a server waiting for readiness
//! must never let a client see. `--ready-log PATH` appends `start PID MS` and `ready PID MS`
//! lines (milliseconds of the Unix clock) so a test can see which workers started at once.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use protocol::responder::{Request, Responder, Response};
use serde_json::{json, Map, Value};

/// False until this worker has said it is ready (always true without a readiness option).
static READY: AtomicBool = AtomicBool::new(true);

/// When the worker says it is ready.
enum ReadyOn {
    /// As it starts (no notify message).
    Start,
    After(Duration),
    FileExists(PathBuf),
}

struct Options {
    threads: usize,
    ready_on: ReadyOn,
    ready_log: Option<PathBuf>,
}

fn main() {
    let options = options();
    log_event(&options.ready_log, "start");
    if !matches!(options.ready_on, ReadyOn::Start) {
        READY.store(false, Ordering::SeqCst);
        std::thread::spawn(move || {
            match &options.ready_on {
                ReadyOn::Start => {}
                ReadyOn::After(delay) => std::thread::sleep(*delay),
                ReadyOn::FileExists(path) => {
                    while !path.exists() {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
            log_event(&options.ready_log, "ready");
            READY.store(true, Ordering::SeqCst);
            notify_ready();
        });
    }
    let responder = match Responder::from_listen_fd() {
        Ok(responder) => responder.threads(options.threads),
        Err(e) => {
            eprintln!("fcgi-echo: {e}");
            std::process::exit(2);
        }
    };
    let responder = responder.on_connection_error(|e| eprintln!("fcgi-echo: {e}"));
    if let Err(e) = responder.serve(answer) {
        eprintln!("fcgi-echo: {e}");
        std::process::exit(1);
    }
}

fn answer(request: &Request, response: &mut Response<'_>) -> u32 {
    if !READY.load(Ordering::SeqCst) {
        let written = write!(
            response,
            "Status: 503 Not Ready\r\nContent-Type: text/plain\r\n\r\nnot ready yet\n"
        );
        return u32::from(written.is_err());
    }
    let query = request.param("QUERY_STRING").unwrap_or_default();
    if let Some(ms) = query_value(query, "sleep_ms").and_then(|v| v.parse().ok()) {
        std::thread::sleep(Duration::from_millis(ms));
    }
    let params: Map<String, Value> = request
        .params()
        .map(|(name, value)| {
            (
                String::from_utf8_lossy(name).into_owned(),
                Value::String(String::from_utf8_lossy(value).into_owned()),
            )
        })
        .collect();
    let body = json!({
        "role": format!("{:?}", request.role()),
        "keep_conn": request.keep_conn(),
        "nth_on_connection": request.nth_on_connection(),
        "params": params,
        "stdin_len": request.stdin().len(),
        "stdin_sha1": sha1_smol::Sha1::from(request.stdin()).digest().to_string(),
        "pid": std::process::id(),
    });
    if query_value(query, "stderr") == Some("1") {
        // A peer that closed early is the test's failure to report, not ours.
        let _ = response.stderr(b"fcgi-echo: stderr line on request\n");
    }
    let written = write!(
        response,
        "Content-Type: application/json\r\nX-Fcgi-Echo: 1\r\n\r\n{body}"
    );
    u32::from(written.is_err())
}

fn query_value<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

/// Sends `READY=1` to `$NOTIFY_SOCKET` (a path, or `@name` for an abstract socket).
fn notify_ready() {
    match protocol::responder::notify(b"STATUS=loaded\nREADY=1\n") {
        Ok(true) => {}
        Ok(false) => eprintln!("fcgi-echo: ready, but NOTIFY_SOCKET is not set"),
        Err(e) => eprintln!("fcgi-echo: cannot notify $NOTIFY_SOCKET: {e}"),
    }
}

fn log_event(log: &Option<PathBuf>, event: &str) {
    let Some(path) = log else {
        return;
    };
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let line = format!("{event} {} {ms}\n", std::process::id());
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(line.as_bytes()));
    if let Err(e) = appended {
        eprintln!("fcgi-echo: cannot write {}: {e}", path.display());
    }
}

fn options() -> Options {
    let mut options = Options {
        threads: 1,
        ready_on: ReadyOn::Start,
        ready_log: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let [flag, value] = pair else { usage() };
        match flag.as_str() {
            "--threads" => options.threads = value.parse().unwrap_or_else(|_| usage()),
            "--ready-after" => {
                let ms = value.parse().unwrap_or_else(|_| usage());
                options.ready_on = ReadyOn::After(Duration::from_millis(ms));
            }
            "--ready-when" => options.ready_on = ReadyOn::FileExists(value.into()),
            "--ready-log" => options.ready_log = Some(value.into()),
            _ => usage(),
        }
    }
    options
}

fn usage() -> ! {
    eprintln!(
        "usage: fcgi-echo [--threads N] [--ready-after MS | --ready-when PATH] \
         [--ready-log PATH]  (listening socket on fd 0)"
    );
    std::process::exit(2);
}
