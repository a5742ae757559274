//! A FastCGI application for the peer tests: answers every request with a JSON dump of what it
//! received (params, role, stdin length and SHA-1), so a test can assert what a real web server
//! (nginx, cgi-fcgi, paddock) sent.
//!
//! Started like any FastCGI application, with its listening Unix socket as fd 0.
//! `--threads N` serves N connections at once (default 1). A query string containing `stderr=1`
//! also writes one line to FCGI_STDERR, which web servers log.
#![forbid(unsafe_code)]

use std::io::Write;

use protocol::responder::{Request, Responder, Response};
use serde_json::{json, Map, Value};

fn main() {
    let threads = threads_arg();
    let responder = match Responder::from_listen_fd() {
        Ok(responder) => responder.threads(threads),
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
    if request
        .param("QUERY_STRING")
        .is_some_and(|q| q.split('&').any(|pair| pair == "stderr=1"))
    {
        // A peer that closed early is the test's failure to report, not ours.
        let _ = response.stderr(b"fcgi-echo: stderr line on request\n");
    }
    let written = write!(
        response,
        "Content-Type: application/json\r\nX-Fcgi-Echo: 1\r\n\r\n{body}"
    );
    u32::from(written.is_err())
}

/// `--threads N`, default 1.
fn threads_arg() -> usize {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => 1,
        [flag, n] if flag == "--threads" => n.parse().unwrap_or_else(|_| usage()),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!("usage: fcgi-echo [--threads N]  (listening socket on fd 0)");
    std::process::exit(2);
}
