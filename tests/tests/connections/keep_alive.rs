//! The reason paddock exists: idle keep-alive connections and slow clients hold no worker.
//!
//! With Apache prefork, each of these connections would pin a process; here a pool of exactly one
//! php-cgi worker keeps serving while 200 keep-alive connections sit idle and a client stalls
//! halfway through its request headers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use harness::{php_site, require_php_cgi, test_site, Paddock, PATIENCE};

/// Sends one request on `stream` and reads exactly one response (Content-Length framed).
fn round_trip(stream: &mut TcpStream, path: &str) -> (u16, String) {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn idle_and_stalled_clients_do_not_delay_php_with_one_worker() {
    require_php_cgi();
    // Deadlines for the stalled clients far longer than any request takes on a loaded machine:
    // a request that waited for them would take a minute.
    let paddock = Paddock::start(&format!(
        "{}\n[timeouts]\nrequest_header = \"60s\"\nrequest_body = \"60s\"\n",
        php_site(&test_site(), 1, "")
    ));

    // 200 keep-alive connections, each having been served a PHP request by the single worker,
    // now idle.
    let mut idle: Vec<TcpStream> = (0..200)
        .map(|i| {
            let mut stream = TcpStream::connect(paddock.http).unwrap();
            stream.set_read_timeout(Some(PATIENCE)).unwrap();
            let path = if i % 2 == 0 {
                "/sleep.php?ms=0"
            } else {
                "/static/hello.txt"
            };
            let (status, _) = round_trip(&mut stream, path);
            assert_eq!(status, 200);
            stream
        })
        .collect();

    // A client that sends half of its request headers and stalls.
    let mut stalled = TcpStream::connect(paddock.http).unwrap();
    stalled
        .write_all(b"POST /echo.php HTTP/1.1\r\nHost: localhost\r\nContent-Le")
        .unwrap();
    // And one that sends headers promising a body, then stalls mid-body.
    let mut slow_body = TcpStream::connect(paddock.http).unwrap();
    slow_body
        .write_all(
            b"POST /echo.php HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\nname=",
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));

    // Another client's PHP request completes normally while all of them are still open.
    let started = Instant::now();
    let output = paddock.curl(&["--max-time", "50", &paddock.url("/sleep.php?ms=50")]);
    let elapsed = started.elapsed();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("slept 50 ms"));
    // It only has to show that nothing waited for the idle or stalled clients, whose deadlines
    // are 60 s: a third of that is a margin no loaded machine eats into.
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");

    // The idle connections are still open and usable, and the stalled ones were never dispatched.
    for stream in idle.iter_mut().step_by(20) {
        let (status, body) = round_trip(stream, "/sleep.php?ms=0");
        assert_eq!(status, 200);
        assert!(body.starts_with("slept 0 ms"));
    }
    let status: serde_json::Value = serde_json::from_str(
        harness::http_get(paddock.admin, "/status?json")
            .unwrap()
            .split("\r\n\r\n")
            .nth(1)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(status["pools"][0]["workers"], 1);
    assert_eq!(
        status["pools"][0]["idle_slots"], 1,
        "the stalled clients hold no worker"
    );
    drop(stalled);
    drop(slow_body);
}
