//! The per-pool FIFO queue: bounded length and wait (503 + Retry-After), and a client that leaves
//! while queued never reaches a worker.

use std::io::Write;
use std::time::{Duration, Instant};

use harness::client::Connection;
use harness::{php_site, require_php_cgi, test_site, Paddock};

fn occupy(paddock: &Paddock, ms: u64) -> std::thread::JoinHandle<u16> {
    let addr = paddock.http;
    let handle = std::thread::spawn(move || {
        Connection::open(addr)
            .unwrap()
            .request("GET", &format!("/sleep.php?ms={ms}"), &[], b"")
            .unwrap()
            .status
    });
    std::thread::sleep(Duration::from_millis(200));
    handle
}

#[test]
fn queue_timeout_and_full_queue_answer_503_with_retry_after() {
    require_php_cgi();
    let paddock = Paddock::start(&php_site(
        &test_site(),
        1,
        "queue_timeout = \"2s\"\nqueue_max = 1",
    ));
    let busy = occupy(&paddock, 5000);

    // One request may wait: it times out after 2 s.
    let addr = paddock.http;
    let waiter = std::thread::spawn(move || {
        let started = Instant::now();
        let response = Connection::open(addr)
            .unwrap()
            .request("GET", "/sleep.php?ms=0", &[], b"")
            .unwrap();
        (response, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    // A second one finds the queue full and is refused at once (well before the 2 s wait).
    let started = Instant::now();
    let full = Connection::open(paddock.http)
        .unwrap()
        .request("GET", "/sleep.php?ms=0", &[], b"")
        .unwrap();
    assert_eq!(full.status, 503);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "refused without waiting"
    );
    assert!(full.header("retry-after").is_some());

    let (timed_out, waited) = waiter.join().unwrap();
    assert_eq!(timed_out.status, 503);
    assert!(timed_out.header("retry-after").is_some());
    assert!(waited >= Duration::from_millis(1900), "waited {waited:?}");
    assert_eq!(busy.join().unwrap(), 200);
}

#[test]
fn a_client_that_leaves_the_queue_never_reaches_a_worker() {
    require_php_cgi();
    let dir = tempfile::tempdir().unwrap();
    let nonces = dir.path().join("nonces.log");
    let paddock = Paddock::start(&php_site(
        &test_site(),
        1,
        &format!("env = {{ NONCE_LOG = \"{}\" }}", nonces.display()),
    ));
    let busy = occupy(&paddock, 1500);
    // Queue a POST behind the busy worker, then hang up.
    let mut leaver = std::net::TcpStream::connect(paddock.http).unwrap();
    let body = "nonce=left-the-queue";
    write!(
        leaver,
        "POST /nonce.php HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(leaver);
    assert_eq!(busy.join().unwrap(), 200);
    // Give the worker every chance to (wrongly) run it.
    std::thread::sleep(Duration::from_millis(500));
    let stored = Connection::open(paddock.http)
        .unwrap()
        .request("POST", "/nonce.php", &[], b"nonce=after")
        .unwrap();
    assert_eq!(stored.status, 200);
    let recorded = std::fs::read_to_string(&nonces).unwrap();
    assert_eq!(
        recorded, "after\n",
        "the abandoned request reached the worker"
    );
}
