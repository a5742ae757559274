//! The per-pool FIFO queue: bounded length and wait (503 + Retry-After), and a client that leaves
//! while queued never reaches a worker.

use std::io::Write;
use std::time::{Duration, Instant};

use harness::client::{get_in_background, Connection, Response};
use harness::observe::{scrape, value};
use harness::{php_site, require_php_cgi, test_site, Hold, Paddock};

/// Occupies the pool's only worker until `hold` is released; returns once the worker is busy.
fn occupy(paddock: &Paddock, hold: &Hold) -> std::thread::JoinHandle<std::io::Result<Response>> {
    let handle = get_in_background(paddock.http, &hold.path());
    paddock.wait_pool("php", "the held worker", |p| p["busy_slots"] == 1);
    handle
}

#[test]
fn queue_timeout_and_full_queue_answer_503_with_retry_after() {
    require_php_cgi();
    let paddock = Paddock::start(&php_site(
        &test_site(),
        1,
        "queue_timeout = \"5s\"\nqueue_max = 1",
    ));
    let hold = Hold::new();
    let busy = occupy(&paddock, &hold);

    // One request may wait: it times out after 5 s.
    let addr = paddock.http;
    let waiter = std::thread::spawn(move || {
        let started = Instant::now();
        let response = Connection::open(addr)
            .unwrap()
            .request("GET", "/sleep.php?ms=0", &[], b"")
            .unwrap();
        (response, started.elapsed())
    });
    paddock.wait_pool("php", "one request in the queue", |p| p["waiting"] == 1);
    // A second one finds the queue full and is refused at once, not after a wait: the refusal
    // is counted as "full", and the first one is still waiting (its timeout is 5 s, many times
    // what a refusal takes on a loaded machine).
    let full = Connection::open(paddock.http)
        .unwrap()
        .request("GET", "/sleep.php?ms=0", &[], b"")
        .unwrap();
    assert_eq!(full.status, 503);
    assert!(full.header("retry-after").is_some());
    assert_eq!(
        value(
            &scrape(paddock.admin),
            "paddock_queue_rejections_total",
            &[("pool", "php"), ("reason", "full")]
        ),
        1.0
    );
    assert_eq!(
        paddock.pool_status("php")["waiting"],
        1,
        "the first one still waits"
    );

    let (timed_out, waited) = waiter.join().unwrap();
    assert_eq!(timed_out.status, 503);
    assert!(timed_out.header("retry-after").is_some());
    assert!(waited >= Duration::from_millis(4900), "waited {waited:?}");
    hold.release();
    assert_eq!(busy.join().unwrap().unwrap().status, 200);
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
    let hold = Hold::new();
    let busy = occupy(&paddock, &hold);
    // Queue a POST behind the busy worker, then hang up.
    let mut leaver = std::net::TcpStream::connect(paddock.http).unwrap();
    let body = "nonce=left-the-queue";
    write!(
        leaver,
        "POST /nonce.php HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    paddock.wait_pool("php", "the POST in the queue", |p| p["waiting"] == 1);
    drop(leaver);
    paddock.wait_pool("php", "the POST out of the queue", |p| p["waiting"] == 0);
    hold.release();
    assert_eq!(busy.join().unwrap().unwrap().status, 200);
    // The one worker serves in order: had the abandoned POST been sent to it, it would have run
    // before this one.
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
