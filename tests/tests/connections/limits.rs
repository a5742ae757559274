//! Every client-facing limit and timeout, provoked on purpose: each test checks the status code
//! paddock answers or that it closes the connection.

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use harness::hostile::frontend_pid;
use harness::raw::RawConn;
use harness::{open_fds, php_site, require_php_cgi, test_site, wait_until, Paddock, PATIENCE};

fn start(extra: &str) -> Paddock {
    require_php_cgi();
    Paddock::start(&php_site(&test_site(), 1, extra))
}

#[test]
fn request_head_deadline_is_absolute() {
    let paddock = start("[timeouts]\nrequest_header = \"1s\"\nkeepalive = \"30s\"\n");
    // Trickle a request head one byte every 100 ms: each byte is progress, but the deadline
    // counts from the first one.
    let mut conn = RawConn::connect(paddock.http);
    let started = Instant::now();
    let mut closed = false;
    for byte in
        b"GET /static/hello.txt HTTP/1.1\r\nHost: localhost\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaa"
    {
        if conn.send(&[*byte]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if started.elapsed() > Duration::from_secs(6) {
            break;
        }
    }
    assert!(
        closed || conn.closed_within(PATIENCE),
        "a trickled head must be cut off"
    );
    paddock.wait_for_log("request head not received in time");

    // A connection that says nothing at all gets the same deadline.
    let mut silent = RawConn::connect(paddock.http);
    assert!(silent.closed_within(PATIENCE));
}

#[test]
fn keep_alive_idle_timeout_is_separate_from_the_head_deadline() {
    // The idle pause below is twice the head deadline and 3 s short of the keep-alive timeout,
    // a margin no scheduling delay reaches.
    let paddock = start("[timeouts]\nrequest_header = \"1s\"\nkeepalive = \"5s\"\n");
    let mut conn = RawConn::connect(paddock.http);
    conn.get("/static/hello.txt").unwrap();
    assert_eq!(conn.read_response().unwrap().status, 200);
    // Idle for longer than the head deadline: still open, because idle time is keep-alive time.
    std::thread::sleep(Duration::from_secs(2));
    conn.get("/static/hello.txt").unwrap();
    assert_eq!(conn.read_response().unwrap().status, 200);
    // Then idle past the keep-alive timeout: closed.
    assert!(!conn.closed_within(Duration::from_millis(1500)));
    assert!(conn.closed_within(PATIENCE));
    paddock.wait_for_log("keep-alive idle timeout");
}

#[test]
fn tls_handshake_timeout_closes_silent_clients() {
    let paddock = start("[timeouts]\ntls_handshake = \"1s\"\n");
    let mut conn = RawConn::connect(paddock.https);
    assert!(conn.closed_within(PATIENCE));
    paddock.wait_for_log("TLS handshake timed out");
}

#[test]
fn slow_request_body_gets_408_and_a_close() {
    let paddock =
        start("[timeouts]\nrequest_body = \"1s\"\n[limits]\nrequest_body_min_rate = \"1KiB\"\n");
    let mut conn = RawConn::connect(paddock.http);
    conn.send(b"POST /echo.php HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\nname=")
        .unwrap();
    let response = conn.read_response().expect("a 408 response");
    assert_eq!(response.status, 408);
    assert_eq!(response.header("connection"), Some("close"));
    assert!(conn.closed_within(PATIENCE));
    // The slow body never reached the worker.
    let status = paddock.status();
    assert_eq!(status["pools"][0]["idle_slots"], 1, "{status}");
}

#[test]
fn connection_closes_after_max_requests() {
    let paddock = start("[limits]\nmax_requests_per_connection = 3\n");
    let mut conn = RawConn::connect(paddock.http);
    for n in 1..=3 {
        conn.get("/static/hello.txt").unwrap();
        let response = conn.read_response().unwrap();
        assert_eq!(response.status, 200);
        let close = response.header("connection") == Some("close");
        assert_eq!(close, n == 3, "request {n}");
    }
    assert!(conn.closed_within(PATIENCE));
}

#[test]
fn long_target_gets_414_and_large_or_many_headers_431() {
    let paddock =
        start("[limits]\nmax_uri = \"2KiB\"\nmax_header_size = \"16KiB\"\nmax_headers = 50\n");
    let long_path = format!("/static/hello.txt?{}", "a".repeat(3000));
    let mut conn = RawConn::connect(paddock.http);
    conn.get(&long_path).unwrap();
    assert_eq!(conn.read_response().unwrap().status, 414);

    let mut conn = RawConn::connect(paddock.http);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "b".repeat(20_000)
    );
    let _ = conn.send(big.as_bytes());
    assert_eq!(conn.read_response().unwrap().status, 431);

    let mut conn = RawConn::connect(paddock.http);
    let mut many = String::from("GET / HTTP/1.1\r\nHost: localhost\r\n");
    for i in 0..60 {
        many.push_str(&format!("X-H{i}: {i}\r\n"));
    }
    many.push_str("\r\n");
    conn.send(many.as_bytes()).unwrap();
    assert_eq!(conn.read_response().unwrap().status, 431);
}

#[test]
fn oversized_body_gets_413_without_100_continue() {
    let paddock = start("[limits]\nmax_body = \"1KiB\"\nbody_memory = \"1KiB\"\n");
    let data = paddock.dir.path().join("body.bin");
    std::fs::write(&data, vec![b'x'; 8192]).unwrap();
    let output = paddock.curl(&[
        "-v",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        "Expect: 100-continue",
        "--data-binary",
        &format!("@{}", data.display()),
        &paddock.url("/echo.php"),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "413", "{stderr}");
    assert!(stderr.contains("Expect: 100-continue"), "{stderr}");
    assert!(!stderr.contains("< HTTP/1.1 100"), "{stderr}");
}

#[test]
fn over_the_overall_limit_new_connections_wait() {
    let paddock = start("[limits]\nmax_connections = 2\n");
    // Two connections paddock has accepted (each answered once).
    let mut first = served_connection(&paddock);
    let _second = served_connection(&paddock);
    let mut third = RawConn::connect(paddock.http);
    third.get("/static/hello.txt").unwrap();
    third
        .stream()
        .set_read_timeout(Some(Duration::from_millis(800)))
        .unwrap();
    assert!(
        !third.closed_within(Duration::from_millis(800)),
        "must wait, not fail"
    );
    // The connections already open are served meanwhile.
    first.get("/static/hello.txt").unwrap();
    assert_eq!(first.read_response().unwrap().status, 200);
    drop(first);
    third.stream().set_read_timeout(Some(PATIENCE)).unwrap();
    assert_eq!(third.read_response().unwrap().status, 200);
}

#[test]
fn over_the_per_address_limit_connections_are_closed() {
    let paddock = start("[limits]\nmax_connections_per_ip = 2\n");
    // Two connections paddock has accepted (each answered once).
    let mut first = served_connection(&paddock);
    let _second = served_connection(&paddock);
    let mut third = RawConn::connect(paddock.http);
    assert!(third.closed_within(PATIENCE));
    first.get("/static/hello.txt").unwrap();
    assert_eq!(first.read_response().unwrap().status, 200);
    drop(first);
    // Once paddock has seen the close, a new connection from the address is served.
    wait_until("a connection served after one closed", || {
        let mut fourth = RawConn::connect(paddock.http);
        fourth.get("/static/hello.txt").is_ok()
            && fourth.read_response().is_some_and(|r| r.status == 200)
    });
}

#[test]
fn slow_reader_is_cut_off_by_the_send_timeout() {
    let root = tempfile::tempdir().unwrap();
    let big = std::fs::File::create(root.path().join("big.bin")).unwrap();
    big.set_len(64 << 20).unwrap();
    let paddock = Paddock::start(&format!(
        "[sites.files]\nroot = \"{}\"\n[timeouts]\nsend = \"1s\"\n",
        root.path().display()
    ));
    let mut stream = TcpStream::connect(paddock.http).unwrap();
    stream
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    // Do not read: the socket buffers fill and paddock's writes block.
    paddock.wait_for_log("client stopped reading");
    // Reading now yields what was buffered, then the close, well short of 64 MiB.
    let mut received = Vec::new();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let end = std::io::Read::read_to_end(&mut stream, &mut received);
    assert!(end.is_ok(), "expected a close, got {end:?}");
    assert!(received.len() < 64 << 20, "got {} bytes", received.len());
}

#[test]
fn send_timeout_leaves_finished_responses_alone() {
    // Bodiless answers (HEAD, 304) and finished ones must not count as "the client stopped
    // reading" while the connection idles between requests.
    let paddock = start("[timeouts]\nsend = \"1s\"\nkeepalive = \"10s\"\n");
    let mut conn = RawConn::connect(paddock.http);
    conn.send(b"HEAD /static/hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let head = conn.read_head_response();
    assert_eq!(head.map(|r| r.status), Some(200));
    conn.send(b"GET /static/hello.txt HTTP/1.1\r\nHost: localhost\r\nIf-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\n\r\n")
        .unwrap();
    assert_eq!(conn.read_response().unwrap().status, 304);
    conn.get("/sleep.php?ms=0").unwrap();
    assert_eq!(conn.read_response().unwrap().status, 200);
    assert!(!conn.closed_within(Duration::from_secs(3)));
    conn.get("/static/hello.txt").unwrap();
    assert_eq!(conn.read_response().unwrap().status, 200);
}

#[test]
fn accept_errors_back_off_and_open_connections_keep_working() {
    require_php_cgi();
    let paddock = start("");
    let frontend = frontend_pid(&paddock);
    let mut kept = RawConn::connect(paddock.http);
    kept.get("/sleep.php?ms=0").unwrap();
    assert_eq!(kept.read_response().unwrap().status, 200);

    let open_fds = open_fds(frontend);
    let original = soft_nofile(frontend);
    // Lower only the soft limit (raising a hard limit back needs CAP_SYS_RESOURCE).
    let status = Command::new("prlimit")
        .args([
            "--pid",
            &frontend.to_string(),
            &format!("--nofile={}:", open_fds + 4),
        ])
        .status()
        .expect("prlimit (util-linux)");
    assert!(status.success());
    // More connections than descriptors left: the kernel completes them, accept() gets EMFILE.
    let flooded_at = Instant::now();
    let extra: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(paddock.http).unwrap())
        .collect();
    paddock.wait_for_log("accept failed; backing off");
    // The connection paddock already had keeps being served (a PHP request: its worker
    // connection is already open, while opening a static file would need a descriptor).
    kept.get("/sleep.php?ms=0").unwrap();
    assert_eq!(kept.read_response().unwrap().status, 200);
    // The log is not flooded: the loop sleeps between failures. Count over (at least) one whole
    // second, not since the first failure, which may be only milliseconds ago; a loaded machine
    // stretches the window, so the bound is a rate.
    let before = paddock.log().matches("accept failed").count();
    let window = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let failures = paddock.log().matches("accept failed").count() - before;
    let seconds = window.elapsed().as_secs_f64();
    assert!(
        (failures as f64) < 50.0 * seconds,
        "{failures} accept failures in {seconds:.1} s: spinning"
    );
    assert!(flooded_at.elapsed() >= Duration::from_secs(1));
    drop(extra);
    let status = Command::new("prlimit")
        .args([
            "--pid",
            &frontend.to_string(),
            &format!("--nofile={original}:"),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let mut later = RawConn::connect(paddock.http);
    later.get("/static/hello.txt").unwrap();
    assert_eq!(later.read_response().unwrap().status, 200);
}

/// A connection that paddock has accepted: it has answered one request on it.
fn served_connection(paddock: &Paddock) -> RawConn {
    let mut conn = RawConn::connect(paddock.http);
    conn.get("/static/hello.txt").unwrap();
    assert_eq!(conn.read_response().unwrap().status, 200);
    conn
}

/// The soft RLIMIT_NOFILE of a process.
fn soft_nofile(pid: u32) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    line.split_whitespace().nth(3).unwrap().to_string()
}
