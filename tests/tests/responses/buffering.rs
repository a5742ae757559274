//! Worker responses are buffered (memory, then a temp file) so that a slow reader never holds a
//! worker; routes can opt out and stream; a failure mid-stream leaves the response visibly
//! incomplete on HTTP/1.1 and HTTP/2.

use std::io::Read;
use std::time::Duration;

use harness::client::Connection;
use harness::hostile::count_log_lines;
use harness::observe::{scrape, status, value};
use harness::raw::RawConn;
use harness::{php_site, require_php_cgi, test_site, wait_until, Paddock, PATIENCE};

/// The FastCGI application that misbehaves on request (`tests/src/bin/fcgi-hostile.rs`).
const HOSTILE_APP: &str = env!("CARGO_BIN_EXE_fcgi-hostile");

fn idle_slots(paddock: &Paddock) -> u64 {
    paddock.status()["pools"][0]["idle_slots"].as_u64().unwrap()
}

/// Reads the head of a response on `conn` without reading the body; returns Content-Length.
fn read_head(conn: &mut RawConn) -> (u16, Option<u64>, Vec<u8>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    let stream = conn.stream();
    let mut stream = stream;
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "closed in the head");
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let length = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap());
    (status, length, head)
}

#[test]
fn slow_reader_of_a_large_php_response_does_not_hold_the_worker() {
    require_php_cgi();
    // 32 MiB from PHP, 1 MiB kept in memory: the rest goes through a temporary file.
    let paddock = Paddock::start(&php_site(&test_site(), 1, ""));
    let mut conn = RawConn::connect(paddock.http);
    conn.get("/big.php?kb=32768").unwrap();
    let (status, length, _) = read_head(&mut conn);
    assert_eq!(status, 200);
    assert_eq!(
        length,
        Some(32 << 20),
        "a buffered response has a known length"
    );
    // The client has read nothing of the body, yet the only worker is idle again...
    wait_until("worker idle while the client reads", || {
        idle_slots(&paddock) == 1
    });
    // ...and serves someone else meanwhile.
    let other = paddock.curl(&[&paddock.url("/sleep.php?ms=0")]);
    assert!(String::from_utf8_lossy(&other.stdout).starts_with("slept 0 ms"));
    // The slow client then gets every byte, at its own pace.
    let mut body = Vec::new();
    let mut piece = vec![0u8; 256 * 1024];
    let stream = conn.stream();
    let mut stream = stream;
    while body.len() < 32 << 20 {
        let n = stream.read(&mut piece).unwrap();
        assert!(n > 0, "closed after {} bytes", body.len());
        body.extend_from_slice(&piece[..n]);
        if body.len() < 1 << 20 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert_eq!(body.len(), 32 << 20);
    assert_eq!(&body[..16], b"0123456789abcdef");
    assert!(
        body.chunks(1024).all(|c| c == &body[..1024]),
        "content intact"
    );
}

#[test]
fn response_over_the_maximum_is_a_502() {
    require_php_cgi();
    let paddock = Paddock::start(&php_site(
        &test_site(),
        1,
        "[limits]\nmax_response = \"2MiB\"\nresponse_memory = \"64KiB\"\n",
    ));
    let output = paddock.curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &paddock.url("/big.php?kb=4096"),
    ]);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "502");
    // Just under the limit is fine.
    let output = paddock.curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{size_download}",
        &paddock.url("/big.php?kb=1024"),
    ]);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "200 1048576");
}

fn streaming_site(extra: &str) -> Paddock {
    require_php_cgi();
    let scripts = format!("{}\n", php_site(&test_site(), 1, extra)).replace(
        "front_controller = \"/index.php\"",
        "front_controller = \"/index.php\"\nunbuffered = [\"/stream.php\"]",
    );
    Paddock::start(&scripts)
}

#[test]
fn unbuffered_route_streams_as_the_worker_writes() {
    let paddock = streaming_site("");
    let mut conn = RawConn::connect(paddock.http);
    conn.get("/stream.php?chunks=3&ms=300").unwrap();
    let (status, length, head) = read_head(&mut conn);
    assert_eq!(status, 200);
    assert_eq!(length, None, "{}", String::from_utf8_lossy(&head));
    // The first chunk arrives while the worker is still busy with the rest.
    let mut first = [0u8; 64];
    let n = conn.stream().read(&mut first).unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).contains("chunk 1"));
    assert_eq!(idle_slots(&paddock), 0, "streaming holds the worker");
    let response = paddock.curl(&[&paddock.url("/stream.php?chunks=2")]);
    assert_eq!(
        String::from_utf8_lossy(&response.stdout),
        "chunk 1\nchunk 2\ndone\n"
    );
}

#[test]
fn failure_mid_stream_leaves_the_response_visibly_incomplete() {
    // The worker sends two chunks, then overruns its 1 s deadline and is killed.
    let paddock = streaming_site("request_timeout = \"1s\"\n");
    let url_path = "/stream.php?chunks=2&tail_ms=5000";
    let http1 = paddock.curl(&["--http1.1", &paddock.url(url_path)]);
    assert_eq!(
        http1.status.code(),
        Some(18),
        "curl: partial file; {http1:?}"
    );
    assert!(String::from_utf8_lossy(&http1.stdout).starts_with("chunk 1\nchunk 2\n"));
    wait_until("a replacement worker", || idle_slots(&paddock) == 1);
    let http2 = paddock.curl(&["--http2", &paddock.https_url(url_path)]);
    // curl 7.88: 92 = HTTP/2 stream not closed cleanly (RST_STREAM).
    assert_eq!(http2.status.code(), Some(92), "{http2:?}");
    assert!(String::from_utf8_lossy(&http2.stdout).starts_with("chunk 1\nchunk 2\n"));
}

/// Reads a chunked body on `conn` (after its head) up to its last chunk; returns the raw bytes.
fn read_chunked_to_end(conn: &mut RawConn) -> String {
    let mut raw = Vec::new();
    let mut piece = [0u8; 4096];
    let mut stream = conn.stream();
    while !raw.ends_with(b"0\r\n\r\n") {
        let n = stream.read(&mut piece).unwrap();
        assert!(n > 0, "closed before the last chunk: {raw:?}");
        raw.extend_from_slice(&piece[..n]);
    }
    String::from_utf8_lossy(&raw).into_owned()
}

/// The busy worker of the first pool and the request it runs, once one shows.
fn running_request(paddock: &Paddock) -> (serde_json::Value, serde_json::Value) {
    let mut found = None;
    paddock.wait_until("a request on the status page", PATIENCE, || {
        let status = status(paddock.admin);
        found = status["pools"][0]["processes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| !p["current"].as_array().unwrap().is_empty())
            .map(|p| (p.clone(), p["current"][0].clone()));
        found.is_some()
    });
    found.unwrap()
}

/// A streamed request counts like a buffered one: it shows on the status page while it runs
/// (request id, method, path), the worker's served count and `paddock_worker_duration_seconds`
/// include it afterwards, and it went through the queue metrics.
#[test]
fn a_streamed_request_shows_on_the_status_page_and_in_the_metrics() {
    let paddock = streaming_site("");
    let release = paddock.dir.path().join("release");
    let mut conn = RawConn::connect(paddock.http);
    conn.get(&format!(
        "/stream.php?chunks=1&release={}",
        release.display()
    ))
    .unwrap();
    let (code, _, head) = read_head(&mut conn);
    assert_eq!(code, 200);
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let request_id = head
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id:"))
        .expect("x-request-id")
        .trim()
        .to_string();

    // The worker still runs it: the status page shows it on that worker.
    let (worker, current) = running_request(&paddock);
    assert_eq!(current["request_id"], request_id.as_str());
    assert_eq!(current["method"], "GET");
    assert_eq!(current["path"], "/stream.php");
    assert_eq!(worker["state"], "busy");
    let served_before = worker["requests_served"].as_u64().unwrap();

    std::fs::write(&release, b"").unwrap();
    let body = read_chunked_to_end(&mut conn);
    assert!(
        body.contains("chunk 1\n") && body.contains("done\n"),
        "{body:?}"
    );

    paddock.wait_until("the request counted as served", PATIENCE, || {
        let status = status(paddock.admin);
        let same = status["pools"][0]["processes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["pid"] == worker["pid"])
            .cloned()
            .expect("the same worker");
        same["requests_served"].as_u64() == Some(served_before + 1)
            && same["current"].as_array().unwrap().is_empty()
    });
    // The only script request so far.
    let metrics = scrape(paddock.admin);
    let php = [("pool", "php")];
    assert_eq!(
        value(&metrics, "paddock_worker_duration_seconds_count", &php),
        1.0
    );
    assert_eq!(
        value(&metrics, "paddock_queue_wait_seconds_count", &php),
        1.0
    );
    assert_eq!(value(&metrics, "paddock_requests_total", &php), 1.0);
}

/// A streamed request whose client goes away while it waits in the queue leaves the queue (counted
/// as `client_gone`) and never reaches a worker, as a buffered one does: its exchange runs in a
/// task of its own, which goes with the client until the response head exists.
#[test]
fn a_queued_streamed_request_abandoned_by_its_client_never_runs() {
    let paddock = streaming_site("");
    let release = paddock.dir.path().join("release");
    // Occupy the only worker until the test releases it.
    let mut holder = RawConn::connect(paddock.http);
    holder
        .get(&format!(
            "/stream.php?chunks=1&release={}",
            release.display()
        ))
        .unwrap();
    assert_eq!(read_head(&mut holder).0, 200);
    let (worker, _) = running_request(&paddock);
    let served_before = worker["requests_served"].as_u64().unwrap();
    // A second streamed request queues behind it; its client leaves.
    let mut abandoned = RawConn::connect(paddock.http);
    abandoned.get("/stream.php?chunks=1").unwrap();
    paddock.wait_until("the request in the queue", PATIENCE, || {
        status(paddock.admin)["pools"][0]["waiting"] == 1
    });
    drop(abandoned);
    paddock.wait_until("the queue left", PATIENCE, || {
        let metrics = scrape(paddock.admin);
        let gone = [("pool", "php"), ("reason", "client_gone")];
        value(&metrics, "paddock_queue_rejections_total", &gone) == 1.0
            && status(paddock.admin)["pools"][0]["waiting"] == 0
    });
    std::fs::write(&release, b"").unwrap();
    read_chunked_to_end(&mut holder);
    // One worker serves in FIFO order: had the abandoned request stayed, it would run before this.
    let next = paddock.curl(&[&paddock.url("/stream.php?chunks=1")]);
    assert_eq!(String::from_utf8_lossy(&next.stdout), "chunk 1\ndone\n");
    paddock.wait_until("both requests counted", PATIENCE, || {
        let status = status(paddock.admin);
        status["pools"][0]["processes"][0]["requests_served"].as_u64() >= Some(served_before + 2)
    });
    let status = status(paddock.admin);
    assert_eq!(
        status["pools"][0]["processes"][0]["requests_served"].as_u64(),
        Some(served_before + 2),
        "the abandoned request ran"
    );
}

/// A streamed reply's FCGI_STDERR goes through the same per-pool rate limit as a buffered one's:
/// a flood is logged up to the budget, then one line says how much was left out, with the pool,
/// the worker's pid and the request id.
#[test]
fn a_streamed_stderr_flood_is_rate_limited_in_the_log() {
    let paddock = Paddock::start(&format!(
        r#"
[sites.test]
root = "{root}"

[sites.test.scripts]
pool = "hostile"
front_controller = "/index.php"
unbuffered = ["/index.php"]

[pools.hostile]
mode = "prefork"
command = ["{HOSTILE_APP}"]
workers = 1
"#,
        root = test_site().display()
    ));
    let mut conn = Connection::open(paddock.http).unwrap();
    // 4 MiB of stderr lines: well past the 256 KiB burst.
    let response = conn
        .request("GET", "/index.php?mode=stderr-flood&n=4", &[], b"")
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(
        response.text().starts_with("flooded"),
        "{}",
        response.text()
    );
    let request_id = response
        .header("x-request-id")
        .expect("x-request-id")
        .to_string();
    paddock.wait_until("the rate-limit summary", PATIENCE, || {
        count_log_lines(&paddock, "worker stderr rate-limited") > 0
    });
    let log = paddock.log();
    let summary = log
        .lines()
        .find(|l| l.contains("worker stderr rate-limited"))
        .unwrap();
    assert!(summary.contains(r#"pool="hostile""#), "{summary}");
    assert!(
        summary.contains(&format!(r#"request_id="{request_id}""#)),
        "{summary}"
    );
    assert!(summary.contains("pid="), "{summary}");
    let lines_sent: usize = response
        .text()
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    let logged = count_log_lines(&paddock, "stderr flood line");
    assert!(
        logged > 0 && logged < lines_sent,
        "{logged} of {lines_sent} lines logged"
    );
}
