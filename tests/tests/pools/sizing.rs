//! Pool sizing end to end: ondemand and dynamic pools grow under pressure, stay within their
//! bounds, and shrink when idle. Eventual states with generous limits; speed is for benchmarks.

use std::time::Duration;

use std::thread::JoinHandle;

use harness::client::{get_in_background, Connection};
use harness::{php_site, require_php_cgi, test_site, Hold, Paddock, PATIENCE};

/// `clients` requests held by `hold`, each on its own connection; join for the statuses.
fn held_requests(paddock: &Paddock, clients: usize, hold: &Hold) -> Vec<JoinHandle<u16>> {
    (0..clients)
        .map(|_| {
            let request = get_in_background(paddock.http, &hold.path());
            std::thread::spawn(move || request.join().unwrap().map_or(0, |r| r.status))
        })
        .collect()
}

#[test]
fn ondemand_pool_starts_empty_grows_under_burst_and_retires_idle_workers() {
    require_php_cgi();
    let paddock = Paddock::start(&php_site(&test_site(), 0, "").replace(
        "workers = 0",
        "sizing = \"ondemand\"\nmax_workers = 6\nidle_timeout = \"2s\"",
    ));
    assert_eq!(
        paddock.pool_workers("php"),
        0,
        "ondemand starts with no worker"
    );
    assert!(paddock.worker_pids("php-cgi").is_empty());

    // 12 clients held on their workers: the pool must grow to 6, and never beyond.
    let hold = Hold::new();
    let clients = held_requests(&paddock, 12, &hold);
    let mut peak = 0;
    paddock.wait_pool(
        "php",
        "the pool grown to 6 with 6 requests waiting",
        |pool| {
            peak = peak.max(pool["workers"].as_u64().unwrap_or(0));
            pool["busy_slots"] == 6 && pool["waiting"] == 6
        },
    );
    assert_eq!(peak, 6, "peak workers {peak}");
    assert!(paddock.worker_pids("php-cgi").len() <= 6);
    hold.release();
    let statuses: Vec<u16> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!(paddock.worker_pids("php-cgi").len() <= 6);

    // Idle: workers retire one per second after 2 s of idleness, down to zero.
    paddock.wait_until("idle workers to retire", PATIENCE, || {
        paddock.pool_workers("php") == 0
    });
    paddock.wait_until("worker processes to exit", PATIENCE, || {
        paddock.worker_pids("php-cgi").is_empty()
    });
    let log = paddock.log();
    assert!(
        log.lines()
            .any(|l| l.contains("retiring worker") && l.contains("idle")),
        "retirements are logged with their reason"
    );

    // And it comes back on the next request.
    let response = Connection::open(paddock.http)
        .unwrap()
        .request("GET", "/sleep.php?ms=0", &[], b"")
        .unwrap();
    assert_eq!(response.status, 200);
}

#[test]
fn dynamic_pool_keeps_spares_grows_to_max_and_shrinks_back() {
    require_php_cgi();
    let paddock = Paddock::start(&php_site(&test_site(), 0, "").replace(
        "workers = 0",
        "sizing = \"dynamic\"\nstart_workers = 2\nmin_spare = 1\nmax_spare = 2\nmax_workers = 5",
    ));
    assert_eq!(paddock.pool_workers("php"), 2, "start_workers");

    // 10 clients held on their workers: the pool grows to max_workers.
    let hold = Hold::new();
    let clients = held_requests(&paddock, 10, &hold);
    paddock.wait_pool("php", "the pool grown to max_workers", |pool| {
        pool["workers"] == 5 && pool["busy_slots"] == 5
    });
    hold.release();
    for client in clients {
        assert_eq!(client.join().unwrap(), 200);
    }
    assert_eq!(
        paddock.pool_workers("php"),
        5,
        "grew to max_workers under pressure"
    );
    paddock.wait_for_log("pool reached its maximum number of workers");

    // Idle with 5 workers = 5 spare slots > max_spare 2: shrink one per second to 2 spares.
    paddock.wait_until("spares to shrink to max_spare", PATIENCE, || {
        paddock.pool_workers("php") == 2
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        paddock.pool_workers("php"),
        2,
        "never below min_spare, never above max_spare"
    );
}

#[test]
fn static_pool_replaces_a_killed_worker() {
    require_php_cgi();
    let paddock = Paddock::start(&php_site(&test_site(), 3, ""));
    let before = paddock.worker_pids("php-cgi");
    assert_eq!(before.len(), 3);
    harness::signal(before[0], "KILL");
    // The replacement is a process first and a worker the front end counts a moment later
    // (its WorkerUp), so both are awaited.
    paddock.wait_until("a replacement worker", PATIENCE, || {
        let now = paddock.worker_pids("php-cgi");
        now.len() == 3 && !now.contains(&before[0]) && paddock.pool_workers("php") == 3
    });
}

#[test]
fn a_worker_at_max_requests_has_its_successor_started_while_its_last_request_runs() {
    require_php_cgi();
    // One worker that serves one request: its first request is its last.
    let paddock = Paddock::start(&php_site(&test_site(), 1, "max_requests = 1"));
    let first = paddock.worker_pids("php-cgi");
    assert_eq!(first.len(), 1);
    let hold = Hold::new();
    let held = held_requests(&paddock, 1, &hold);
    // The successor starts while the last request runs, not after the worker's exit.
    let successor = harness::wait_for("a successor beside the held request", || {
        paddock
            .worker_pids("php-cgi")
            .into_iter()
            .find(|pid| !first.contains(pid))
    });
    assert!(
        first.iter().all(|&pid| harness::process_alive(pid)),
        "the retiring worker still runs its last request"
    );
    // ... and serves the next request meanwhile: a pool of one is never a pool of none.
    let marks = tempfile::tempdir().unwrap();
    let mark = marks.path().join("next.mark");
    let output = paddock.curl(&[
        "-s",
        &paddock.url(&format!("/mark.php?file={}", mark.display())),
    ]);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "marked\n");
    assert_eq!(
        std::fs::read_to_string(&mark).unwrap(),
        successor.to_string()
    );
    assert!(
        !held[0].is_finished(),
        "the held request was answered early"
    );
    hold.release();
    for request in held {
        assert_eq!(request.join().unwrap(), 200);
    }
    paddock.wait_until("the retired worker stopped", PATIENCE, || {
        !harness::process_alive(first[0])
    });
}
