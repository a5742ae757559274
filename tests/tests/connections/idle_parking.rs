//! Idle HTTP/1.1 connections are parked outside hyper between requests (frontend/src/conn/parking.rs).
//! Whatever a client does around those pauses (pipelining, a head split across a pause, bodies,
//! TLS) must be served on the same connection exactly as without parking, and the keep-alive
//! timeout and a graceful stop must still apply to parked connections.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::raw::RawConn;
use harness::{php_site, test_site, Paddock, LISTENERS, PATIENCE};

const PAUSE: Duration = Duration::from_millis(300);
/// Longer than the front end's deep-park delay (1 s), so the socket goes to sleep.
const DEEP_PAUSE: Duration = Duration::from_millis(2500);

fn start(extra: &str) -> Paddock {
    Paddock::start(&format!("{extra}\n{}", php_site(&test_site(), 1, "")))
}

fn answered(conn: &mut RawConn, what: &str) -> String {
    let response = conn
        .read_response()
        .unwrap_or_else(|| panic!("{what}: the connection closed instead of answering"));
    assert_eq!(response.status, 200, "{what}: {}", response.text());
    response.text()
}

#[test]
fn requests_around_idle_pauses_are_served_on_the_same_connection() {
    let paddock = start("");
    let mut conn = RawConn::connect(paddock.http);
    conn.get("/static/hello.txt").unwrap();
    answered(&mut conn, "first request");
    std::thread::sleep(PAUSE);

    conn.get("/echo.php?after=pause").unwrap();
    assert!(answered(&mut conn, "PHP after a pause").contains("pause"));
    std::thread::sleep(PAUSE);

    // Two requests in one write: the second waits in hyper's buffer while the first is served.
    conn.send(
        b"GET /echo.php?n=1 HTTP/1.1\r\nHost: localhost\r\n\r\n\
          GET /echo.php?n=2 HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .unwrap();
    assert!(answered(&mut conn, "pipelined 1").contains("\"n\":\"1\""));
    assert!(answered(&mut conn, "pipelined 2").contains("\"n\":\"2\""));
    std::thread::sleep(PAUSE);

    // A head split by a pause, even inside its final CRLF CRLF.
    split_head_then_post(&mut conn, b"\r", b"\n", PAUSE);
    std::thread::sleep(PAUSE);
    // After the body, a request without one.
    conn.get("/static/hello.txt").unwrap();
    answered(&mut conn, "GET after POST");
    std::thread::sleep(PAUSE);
    conn.get("/static/hello.txt").unwrap();
    answered(&mut conn, "GET after GET");
}

/// Past a second of idleness a parked connection's socket sleeps outside tokio, in its
/// listener's epoll set (frontend/src/conn/client_socket.rs). It must come back for the next
/// request, whole or split across a pause, and for a body.
#[test]
fn connections_idle_long_enough_to_sleep_come_back() {
    let paddock = start("");
    let mut conn = RawConn::connect(paddock.http);
    conn.get("/static/hello.txt").unwrap();
    answered(&mut conn, "first request");
    std::thread::sleep(DEEP_PAUSE);
    conn.get("/echo.php?after=sleep").unwrap();
    assert!(answered(&mut conn, "after a sleep").contains("sleep"));
    std::thread::sleep(DEEP_PAUSE);
    split_head_then_post(&mut conn, b"", b"\r\n", DEEP_PAUSE);
}

/// A head whose last bytes (`end`) come after `pause` (the rest of the final CRLF CRLF being
/// `start`), then, after the same pause, a POST with a form body; both must be answered.
fn split_head_then_post(conn: &mut RawConn, start: &[u8], end: &[u8], pause: Duration) {
    let mut head = b"GET /echo.php?split=yes HTTP/1.1\r\nHost: localhost\r\n".to_vec();
    head.extend_from_slice(start);
    conn.send(&head).unwrap();
    std::thread::sleep(pause);
    conn.send(end).unwrap();
    assert!(answered(conn, "split head").contains("split"));
    std::thread::sleep(pause);
    let body = "name=Ada";
    conn.send(
        format!(
            "POST /echo.php HTTP/1.1\r\nHost: localhost\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    assert!(answered(conn, "POST after a pause").contains("Ada"));
}

/// One TLS session (openssl s_client, HTTP/1.1 by ALPN), three requests with pauses between.
#[test]
fn tls_connections_park_and_come_back() {
    let paddock = start("");
    let mut client = Command::new("openssl")
        .args([
            "s_client",
            "-quiet",
            "-alpn",
            "http/1.1",
            "-servername",
            "localhost",
        ])
        .arg("-connect")
        .arg(paddock.https.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client");
    let mut stdin = client.stdin.take().unwrap();
    let mut stdout = client.stdout.take().unwrap();
    let expected = std::fs::read_to_string(test_site().join("static/hello.txt")).unwrap();
    let mut received = Vec::new();
    for round in 1..=3 {
        stdin
            .write_all(b"GET /static/hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        stdin.flush().unwrap();
        // Read until this round's body is complete (each answer ends with the file).
        let deadline = Instant::now() + PATIENCE;
        while String::from_utf8_lossy(&received)
            .matches(&expected)
            .count()
            < round
        {
            assert!(Instant::now() < deadline, "round {round}: no answer");
            let mut chunk = [0u8; 4096];
            let n = stdout.read(&mut chunk).unwrap();
            assert!(n > 0, "round {round}: the TLS connection closed");
            received.extend_from_slice(&chunk[..n]);
        }
        std::thread::sleep(PAUSE);
    }
    let text = String::from_utf8_lossy(&received);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 3, "{text}");
    drop(stdin);
    let _ = client.kill();
    let _ = client.wait();
}

#[test]
fn the_keepalive_timeout_closes_parked_connections() {
    let paddock = start("[timeouts]\nkeepalive = \"3s\"\n");
    let mut conn = RawConn::connect(paddock.http);
    conn.get("/static/hello.txt").unwrap();
    answered(&mut conn, "first request");
    // Well inside the timeout (a tenth of it) the parked connection still serves.
    std::thread::sleep(PAUSE);
    conn.get("/static/hello.txt").unwrap();
    answered(&mut conn, "inside the timeout");
    let idle_from = Instant::now();
    assert!(conn.closed_within(PATIENCE));
    assert!(
        idle_from.elapsed() >= Duration::from_millis(2900),
        "closed after {:?}, before the keep-alive timeout",
        idle_from.elapsed()
    );
}

#[test]
fn a_graceful_stop_closes_parked_connections_promptly() {
    // A shutdown timeout far beyond the bound below: a stop that waited for the parked
    // connections could not pass for a prompt one on a slow machine.
    let mut paddock = Paddock::start_with(
        &format!(
            "shutdown_timeout = \"300s\"\n{LISTENERS}\n{}",
            php_site(&test_site(), 1, "")
        ),
        true,
    );
    let mut parked: Vec<RawConn> = (0..20)
        .map(|_| {
            let mut conn = RawConn::connect(paddock.http);
            conn.get("/static/hello.txt").unwrap();
            answered(&mut conn, "before the stop");
            conn
        })
        .collect();
    let stopping = Instant::now();
    let status = paddock.stop();
    assert!(status.success(), "{status}");
    // The drain linger is one second; the shutdown timeout five minutes.
    assert!(
        stopping.elapsed() < Duration::from_secs(60),
        "{:?}",
        stopping.elapsed()
    );
    for conn in &mut parked {
        assert!(conn.closed_within(PATIENCE));
    }
}

/// A stop began while the connection was parked; the client's next request, sent inside the drain
/// linger, wakes it: it must be answered (with `Connection: close`), not dropped unread.
#[test]
fn a_request_waking_a_parked_connection_during_a_stop_is_answered() {
    let mut paddock = start("");
    let mut conn = RawConn::connect(paddock.http);
    conn.get("/static/hello.txt").unwrap();
    answered(&mut conn, "before the stop");
    std::thread::sleep(PAUSE);
    harness::signal(paddock.pid(), "TERM");
    // Inside the drain linger (one second from this line).
    paddock.wait_for_log("stopping: no new connections");
    conn.get("/echo.php?during=stop").unwrap();
    let response = conn
        .read_response()
        .expect("the request sent during the drain linger was dropped");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("connection"), Some("close"));
    assert!(paddock.stop().success());
}
