//! `/metrics` on a live paddock: valid exposition (promtool), every family documented, bounded
//! labels, and counters that move exactly as the traffic and the faults say.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use harness::observe::{families, require_program, sample, scrape, status, value, wait_for};
use harness::{curl_code, php_site, require_php_cgi, test_site, Hold, Paddock, PATIENCE};

const WAIT: Duration = PATIENCE;

fn start(workers: u32, extra_pool: &str) -> Paddock {
    require_php_cgi();
    Paddock::start(&php_site(&test_site(), workers, extra_pool))
}

#[test]
fn a_live_scrape_passes_promtool_and_every_family_is_documented() {
    require_program("promtool", "prometheus");
    let paddock = start(2, "");
    // Some traffic of every kind, with unique paths that must never become label values.
    assert_eq!(
        paddock.curl_status(&[&paddock.url("/sleep.php?ms=1&secret=unique-q")]),
        200
    );
    assert_eq!(
        paddock.curl_status(&["--http2", &paddock.https_url("/echo.php")]),
        200
    );
    assert_eq!(
        paddock.curl_status(&[&paddock.url("/static/hello.txt")]),
        200
    );
    assert_ne!(
        paddock.curl_status(&[&paddock.url("/.unique-hidden/x.css")]),
        0
    );
    assert_eq!(
        paddock.curl_status(&["-X", "PROPFIND", &paddock.url("/unique-dav")]),
        200
    );

    let text = scrape(paddock.admin);
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = promtool.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics:\n{}{}\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    assert!(
        !text.contains("unique"),
        "a URL became a label value:\n{text}"
    );
    assert!(
        !text.contains("PROPFIND"),
        "an arbitrary method became a label value"
    );
    assert_eq!(
        value(&text, "paddock_requests_total", &[("method", "other")]),
        1.0
    );

    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/metrics.md"))
        .expect("docs/metrics.md");
    let families = families(&text);
    assert!(families.len() >= 30, "only {} families", families.len());
    for family in &families {
        assert!(
            docs.contains(&format!("`{family}`")),
            "{family} is not documented in docs/metrics.md"
        );
    }
}

#[test]
fn request_and_connection_metrics_follow_the_traffic() {
    let paddock = start(2, "");
    let before = scrape(paddock.admin);
    let requests = |text: &str, pool: &str, class: &str, method: &str| {
        value(
            text,
            "paddock_requests_total",
            &[("pool", pool), ("status_class", class), ("method", method)],
        )
    };
    for _ in 0..5 {
        assert_eq!(paddock.curl_status(&[&paddock.url("/sleep.php?ms=1")]), 200);
    }
    assert_eq!(
        paddock.curl_status(&["-d", "a=1", &paddock.url("/echo.php")]),
        200
    );
    assert_eq!(
        paddock.curl_status(&[&paddock.url("/static/hello.txt")]),
        200
    );
    assert_eq!(
        paddock.curl_status(&[&paddock.url("/headers.php?case=status")]),
        403
    );
    assert_eq!(
        paddock.curl_status(&["--http2", &paddock.https_url("/sleep.php")]),
        200
    );

    let after = scrape(paddock.admin);
    let delta = |pool, class, method| {
        requests(&after, pool, class, method) - requests(&before, pool, class, method)
    };
    assert_eq!(delta("php", "2xx", "GET"), 6.0);
    assert_eq!(delta("php", "2xx", "POST"), 1.0);
    assert_eq!(delta("php", "4xx", "GET"), 1.0);
    assert_eq!(delta("-", "2xx", "GET"), 1.0, "the static file has no pool");
    let php = [("pool", "php")];
    let count = |text: &str, name: &str| value(text, name, &php);
    for histogram in [
        "paddock_request_duration_seconds_count",
        "paddock_queue_wait_seconds_count",
        "paddock_worker_duration_seconds_count",
    ] {
        assert_eq!(
            count(&after, histogram) - count(&before, histogram),
            8.0,
            "{histogram}"
        );
    }
    let https = [("listener", "https")];
    assert_eq!(
        value(
            &after,
            "paddock_tls_handshakes_total",
            &[("listener", "https"), ("version", "tls1.3")]
        ),
        1.0
    );
    assert!(value(&after, "paddock_received_bytes_total", &https) > 0.0);
    assert!(
        value(&after, "paddock_sent_bytes_total", &[("listener", "http")])
            > value(&before, "paddock_sent_bytes_total", &[("listener", "http")]) + 5.0 * 20.0
    );
    assert_eq!(value(&after, "paddock_pool_slots", &php), 2.0);
    assert_eq!(value(&after, "paddock_pool_busy_slots", &php), 0.0);

    // A failed TLS handshake.
    let mut plain = TcpStream::connect(paddock.https).unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let _ = plain.read(&mut [0; 64]);
    wait_for(WAIT, "a TLS failure", || {
        let text = scrape(paddock.admin);
        let failures = [("listener", "https"), ("reason", "error")];
        (value(&text, "paddock_tls_handshake_failures_total", &failures) == 1.0).then_some(())
    });

    // One keep-alive connection: open and idle as HTTP/1 between requests, gone once closed.
    let http_conns =
        |text: &str, name: &str| value(text, name, &[("listener", "http"), ("protocol", "http1")]);
    let mut keep = TcpStream::connect(paddock.http).unwrap();
    keep.set_read_timeout(Some(PATIENCE)).unwrap();
    keep.write_all(b"GET /static/hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut buf = [0; 4096];
    assert!(keep.read(&mut buf).unwrap() > 0);
    wait_for(WAIT, "one open idle HTTP/1 connection", || {
        let text = scrape(paddock.admin);
        (http_conns(&text, "paddock_connections_open") == 1.0
            && http_conns(&text, "paddock_connections_idle") == 1.0)
            .then_some(())
    });
    drop(keep);
    wait_for(WAIT, "the connection to close", || {
        let text = scrape(paddock.admin);
        (http_conns(&text, "paddock_connections_open") == 0.0
            && http_conns(&text, "paddock_connections_idle") == 0.0)
            .then_some(())
    });
}

/// The pid of one live worker of pool `php`, from the status JSON.
fn a_worker_pid(paddock: &Paddock) -> u64 {
    let status = status(paddock.admin);
    status["pools"][0]["processes"][0]["pid"]
        .as_u64()
        .expect("a worker pid")
}

#[test]
fn a_killed_worker_moves_the_crash_counter() {
    let paddock = start(2, "");
    let exits = |text: &str, reason: &str| {
        value(
            text,
            "paddock_worker_exits_total",
            &[("pool", "php"), ("reason", reason)],
        )
    };
    let before = scrape(paddock.admin);
    assert_eq!(exits(&before, "crash"), 0.0);
    let spawns_before = value(&before, "paddock_worker_spawns_total", &[("pool", "php")]);
    let pid = a_worker_pid(&paddock);
    harness::signal(pid as u32, "KILL");

    let after = wait_for(
        WAIT,
        "the crash to be counted and the worker replaced",
        || {
            let text = scrape(paddock.admin);
            let spawned = value(&text, "paddock_worker_spawns_total", &[("pool", "php")]);
            (exits(&text, "crash") == 1.0 && spawned == spawns_before + 1.0).then_some(text)
        },
    );
    assert_eq!(exits(&after, "timeout_kill"), 0.0);
    let status = status(paddock.admin);
    let exit = &status["pools"][0]["recent_exits"][0];
    assert_eq!(exit["pid"].as_u64(), Some(pid), "{status:#}");
    assert_eq!(exit["reason"], "crash");
    assert_eq!(status["pools"][0]["last_exit_reason"], "crash");
}

#[test]
fn a_request_timeout_moves_the_timeout_counter() {
    let paddock = start(1, "request_timeout = \"1s\"");
    let php = [("pool", "php")];
    let before = scrape(paddock.admin);
    assert_eq!(value(&before, "paddock_request_timeouts_total", &php), 0.0);
    assert_eq!(
        paddock.curl_status(&[&paddock.url("/sleep.php?ms=3000")]),
        504
    );
    let after = wait_for(WAIT, "the timeout kill to be counted", || {
        let text = scrape(paddock.admin);
        let killed = [("pool", "php"), ("reason", "timeout_kill")];
        (value(&text, "paddock_worker_exits_total", &killed) == 1.0).then_some(text)
    });
    assert_eq!(value(&after, "paddock_request_timeouts_total", &php), 1.0);
    let crashes = [("pool", "php"), ("reason", "crash")];
    assert_eq!(value(&after, "paddock_worker_exits_total", &crashes), 0.0);
    let gateway_timeouts = [("pool", "php"), ("status_class", "5xx")];
    assert_eq!(
        value(&after, "paddock_requests_total", &gateway_timeouts),
        1.0
    );
}

#[test]
fn a_full_queue_a_queue_timeout_and_a_vanished_client_move_the_rejection_counters() {
    // The queue timeout is many times what the full-queue refusal below takes on a loaded
    // machine, so that the waiter is still queued when it comes.
    let paddock = start(1, "queue_max = 1\nqueue_timeout = \"5s\"");
    let rejections = |reason: &str| {
        let text = scrape(paddock.admin);
        value(
            &text,
            "paddock_queue_rejections_total",
            &[("pool", "php"), ("reason", reason)],
        )
    };
    let queue_depth = || {
        let text = scrape(paddock.admin);
        sample(&text, "paddock_queue_depth", &[("pool", "php")]).expect("queue depth series")
    };
    // Hold the only worker for everything below.
    let hold = Hold::new();
    let holder = {
        let url = paddock.url(&hold.path());
        thread::spawn(move || curl_code(&url))
    };
    wait_for(WAIT, "the worker to be busy", || {
        let text = scrape(paddock.admin);
        (value(&text, "paddock_pool_busy_slots", &[("pool", "php")]) == 1.0).then_some(())
    });
    // One request waits (and will time out after 5 s); while it waits, another finds the queue full.
    let waiter = {
        let url = paddock.url("/sleep.php?ms=1");
        thread::spawn(move || curl_code(&url))
    };
    wait_for(WAIT, "one request in the queue", || {
        (queue_depth() == 1.0).then_some(())
    });
    assert_eq!(paddock.curl_status(&[&paddock.url("/sleep.php?ms=1")]), 503);
    assert_eq!(rejections("full"), 1.0);
    assert_eq!(waiter.join().unwrap(), 503);
    assert_eq!(rejections("timeout"), 1.0);
    // A client that gives up while queued.
    let mut gone = paddock
        .curl_command(&[&paddock.url("/sleep.php?ms=1")])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(WAIT, "one request in the queue", || {
        (queue_depth() == 1.0).then_some(())
    });
    gone.kill().unwrap();
    gone.wait().unwrap();
    wait_for(WAIT, "the vanished client to be counted", || {
        (rejections("client_gone") == 1.0).then_some(())
    });
    assert_eq!(queue_depth(), 0.0);
    hold.release();
    assert_eq!(holder.join().unwrap(), 200);
    let text = scrape(paddock.admin);
    let waited = value(
        &text,
        "paddock_queue_wait_seconds_count",
        &[("pool", "php")],
    );
    assert_eq!(
        waited, 4.0,
        "every admission attempt is timed, rejected ones included"
    );
}
