//! paddock's FastCGI responder library (through the `fcgi-echo` and `fcgi-unsafe` test
//! applications) against FastCGI clients nobody here wrote: libfcgi's `cgi-fcgi` and nginx.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use harness::peers::{require_program, FcgiApp, Nginx};
use serde_json::Value;

fn fcgi_echo() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_fcgi-echo"))
}

fn sha1_hex(bytes: &[u8]) -> String {
    sha1_smol::Sha1::from(bytes).digest().to_string()
}

/// Runs `cgi-fcgi -bind -connect SOCKET` with exactly `env` as its environment (which it sends
/// as PARAMS) and `stdin` as the request body.
fn cgi_fcgi(socket: &Path, env: &[(&str, &str)], stdin: &[u8]) -> Output {
    let program = require_program("cgi-fcgi", "libfcgi-bin");
    let mut child = Command::new(program)
        .args(["-bind", "-connect"])
        .arg(socket)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cgi-fcgi");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().expect("cgi-fcgi output")
}

/// Splits a CGI response into its head and its JSON body.
fn cgi_json(stdout: &[u8]) -> (String, Value) {
    let text = String::from_utf8_lossy(stdout);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no CGI head in {text:?}"));
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (head.to_string(), json)
}

#[test]
fn cgi_fcgi_sends_its_environment_and_body_to_fcgi_echo() {
    let dir = tempfile::tempdir().unwrap();
    let app = FcgiApp::start(fcgi_echo(), &[], &dir.path().join("echo.sock"));
    let body: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let length = body.len().to_string();
    let env = [
        ("REQUEST_METHOD", "POST"),
        ("CONTENT_LENGTH", length.as_str()),
        ("CONTENT_TYPE", "application/octet-stream"),
        ("QUERY_STRING", "a=1&b=%20"),
        ("SCRIPT_NAME", "/echo"),
        ("HTTP_X_LONG", &"x".repeat(5000)),
    ];
    let output = cgi_fcgi(&app.socket, &env, &body);
    assert!(output.status.success(), "{output:?}");
    let (head, seen) = cgi_json(&output.stdout);
    assert!(head.contains("Content-Type: application/json"), "{head}");
    for (name, value) in env {
        assert_eq!(seen["params"][name], value, "param {name}");
    }
    assert_eq!(seen["stdin_len"], body.len());
    assert_eq!(seen["stdin_sha1"], sha1_hex(&body));
    assert_eq!(seen["role"], "Responder");
    assert_eq!(seen["keep_conn"], false);
    assert_eq!(seen["pid"], app.pid());

    // FCGI_STDERR comes out on cgi-fcgi's stderr, and the app serves the next connection.
    let output = cgi_fcgi(
        &app.socket,
        &[("REQUEST_METHOD", "GET"), ("QUERY_STRING", "stderr=1")],
        b"",
    );
    assert!(output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("fcgi-echo: stderr line on request"),
        "{output:?}"
    );
    assert_eq!(cgi_json(&output.stdout).1["stdin_len"], 0);
}

/// nginx serving everything from fcgi-echo: `/` on a connection per request, `/keep/` on
/// persistent connections (FCGI_KEEP_CONN).
fn nginx_in_front_of(dir: &Path, socket: &Path) -> Nginx {
    let socket = socket.display();
    let body = format!(
        r#"
  upstream echo_keep {{ server unix:{socket}; keepalive 1; }}
  server {{
    listen {{listen}};
    client_max_body_size 10m;
    location / {{
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME /srv$fastcgi_script_name;
      fastcgi_pass unix:{socket};
    }}
    location /keep/ {{
      include /etc/nginx/fastcgi_params;
      fastcgi_keep_conn on;
      fastcgi_pass echo_keep;
    }}
  }}"#
    );
    Nginx::start(dir, IpAddr::V4(Ipv4Addr::LOCALHOST), &body)
}

fn curl(args: &[&str]) -> String {
    let output = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "30"])
        .args(args)
        .output()
        .expect("run curl");
    assert!(output.status.success(), "curl {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn response_json(raw: &str) -> (u16, String, Value) {
    let (status, head, body) = harness::split_response(raw);
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {raw}"));
    (status, head, json)
}

#[test]
fn nginx_fastcgi_pass_reaches_fcgi_echo() {
    let dir = tempfile::tempdir().unwrap();
    let app = FcgiApp::start(
        fcgi_echo(),
        &["--threads", "2"],
        &dir.path().join("echo.sock"),
    );
    let nginx = nginx_in_front_of(dir.path(), &app.socket);

    let raw = curl(&[
        "-H",
        "X-Custom: one",
        "-H",
        "Cookie: a=1",
        &nginx.url("/some/path?q=1&q=2&empty="),
    ]);
    let (status, head, seen) = response_json(&raw);
    assert_eq!(status, 200, "{raw}");
    assert!(head.contains("X-Fcgi-Echo: 1"), "{head}");
    let params = &seen["params"];
    assert_eq!(params["REQUEST_METHOD"], "GET");
    assert_eq!(params["REQUEST_URI"], "/some/path?q=1&q=2&empty=");
    assert_eq!(params["QUERY_STRING"], "q=1&q=2&empty=");
    assert_eq!(params["SCRIPT_FILENAME"], "/srv/some/path");
    assert_eq!(params["HTTP_X_CUSTOM"], "one");
    assert_eq!(params["HTTP_COOKIE"], "a=1");
    assert_eq!(params["SERVER_PORT"], nginx.addr.port().to_string());
    assert_eq!(params["REMOTE_ADDR"], "127.0.0.1");
    assert_eq!(seen["keep_conn"], false);

    // A body bigger than nginx's buffers arrives intact over many STDIN records.
    let body_path = dir.path().join("body.bin");
    let body: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 256) as u8).collect();
    std::fs::write(&body_path, &body).unwrap();
    let raw = curl(&[
        "--data-binary",
        &format!("@{}", body_path.display()),
        "-H",
        "Content-Type: application/octet-stream",
        &nginx.url("/upload"),
    ]);
    let (status, _, seen) = response_json(&raw);
    assert_eq!(status, 200, "{raw}");
    assert_eq!(seen["params"]["CONTENT_LENGTH"], body.len().to_string());
    assert_eq!(seen["stdin_len"], body.len());
    assert_eq!(seen["stdin_sha1"], sha1_hex(&body));

    // FCGI_STDERR is logged by nginx.
    let raw = curl(&[&nginx.url("/log?stderr=1")]);
    assert_eq!(response_json(&raw).0, 200, "{raw}");
    assert!(
        nginx
            .error_log()
            .contains("FastCGI sent in stderr: \"fcgi-echo: stderr line on request"),
        "{}",
        nginx.error_log()
    );
}

#[test]
fn nginx_keepalive_upstream_reuses_connections_with_keep_conn() {
    let dir = tempfile::tempdir().unwrap();
    // Two acceptor threads: nginx's cached connection holds one (a connection is served by one
    // thread until it closes, which is why FCGI_MAX_CONNS equals the thread count), the
    // connection-per-request location gets the other.
    let app = FcgiApp::start(
        fcgi_echo(),
        &["--threads", "2"],
        &dir.path().join("echo.sock"),
    );
    let nginx = nginx_in_front_of(dir.path(), &app.socket);
    for i in 1..=5 {
        let raw = curl(&[&nginx.url(&format!("/keep/{i}"))]);
        let (status, _, seen) = response_json(&raw);
        assert_eq!(status, 200, "{raw}");
        assert_eq!(seen["keep_conn"], true);
        assert_eq!(seen["params"]["REQUEST_URI"], format!("/keep/{i}"));
        // The same connection carried every request: the responder kept it open.
        assert_eq!(seen["nth_on_connection"], i, "{raw}");
    }
    for _ in 0..2 {
        let (status, _, seen) = response_json(&curl(&[&nginx.url("/plain")]));
        assert_eq!(status, 200);
        assert_eq!(seen["keep_conn"], false);
        assert_eq!(seen["nth_on_connection"], 1);
    }
}

/// Runs `count` requests at once through cgi-fcgi against `fcgi-unsafe`, returning each body.
fn concurrent_unsafe_requests(threads: &str, count: usize) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let program = PathBuf::from(env!("CARGO_BIN_EXE_fcgi-unsafe"));
    let app = FcgiApp::start(
        &program,
        &["--threads", threads, "--sleep-ms", "300"],
        &dir.path().join("unsafe.sock"),
    );
    let handles: Vec<_> = (0..count)
        .map(|_| {
            let socket = app.socket.clone();
            std::thread::spawn(move || {
                let output = cgi_fcgi(&socket, &[("REQUEST_METHOD", "GET")], b"");
                assert!(output.status.success(), "{output:?}");
                let text = String::from_utf8_lossy(&output.stdout).into_owned();
                text.split_once("\r\n\r\n").unwrap().1.trim().to_string()
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn fcgi_unsafe_is_corrupted_only_when_requests_share_a_process() {
    // One thread: requests queue and run one at a time, so the global is never overwritten.
    let serial = concurrent_unsafe_requests("1", 3);
    assert_eq!(serial, ["corrupted=0"; 3]);
    // Four threads, four simultaneous 300 ms requests: they overlap, and all but the last to
    // store its token find it overwritten.
    let threaded = concurrent_unsafe_requests("4", 4);
    assert!(
        threaded.iter().any(|body| body == "corrupted=1"),
        "{threaded:?}"
    );
    assert!(threaded
        .iter()
        .all(|body| body == "corrupted=0" || body == "corrupted=1"));
}
