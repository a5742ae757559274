//! `readiness = "notify"`: workers that say when they are ready (`READY=1` on `$NOTIFY_SOCKET`,
//! as uWSGI does). The worker here is `fcgi-echo` playing a slow-loading application: it answers
//! 503 "not ready" until it has sent `READY=1`, so a request handed to it too early shows.

use std::path::Path;

use harness::client::{get_in_background, Connection};
use harness::{process_alive, Paddock, PATIENCE};

/// Starts paddock without waiting for `/readyz`, which (rightly) fails while a static pool has
/// no ready worker.
fn start_unready(config: &str) -> Paddock {
    Paddock::start_with(&format!("{}\n{config}", harness::LISTENERS), false)
}

/// The pid of the pool's first worker process, once it runs.
fn first_worker(paddock: &Paddock) -> u32 {
    harness::wait::wait_for("the first worker", || {
        paddock.worker_pids("fcgi-echo").first().copied()
    })
}

/// A site whose every URL goes to pool `app`, with `pool` as the pool's body.
fn echo_site(root: &Path, pool: &str) -> String {
    format!(
        "[sites.app]\nroot = \"{root}\"\n[sites.app.mounts.app]\nprefix = \"/\"\npool = \"app\"\n[pools.app]\n{pool}\n",
        root = root.display(),
    )
}

/// `command = [fcgi-echo, args…]` as TOML.
fn echo_command(args: &[&str]) -> String {
    let mut all = vec![env!("CARGO_BIN_EXE_fcgi-echo")];
    all.extend_from_slice(args);
    format!("command = {all:?}")
}

#[test]
fn requests_wait_in_the_front_end_until_a_worker_says_it_is_ready() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = dir.path().join("loaded");
    let pool = format!(
        "mode = \"threaded\"\nthreads = 2\nworkers = 1\nreadiness = \"notify\"\n{}",
        echo_command(&["--threads", "2", "--ready-when", loaded.to_str().unwrap()])
    );
    let paddock = start_unready(&echo_site(dir.path(), &pool));
    let request = get_in_background(paddock.http, "/hello");
    // The worker runs and /status shows it starting, with no slot: the request waits in the
    // front end's queue.
    let status = paddock.wait_pool("app", "the request queued and the worker loading", |p| {
        p["waiting"] == 1 && p["states"]["starting"] == 1 && p["total_slots"] == 0
    });
    let pids = paddock.worker_pids("fcgi-echo");
    assert_eq!(pids.len(), 1);
    assert_eq!(status["processes"][0]["pid"], pids[0], "{status}");
    assert_eq!(status["processes"][0]["state"], "starting", "{status}");
    let metrics = harness::http_get(paddock.admin, "/metrics").unwrap();
    assert!(
        metrics.contains("paddock_pool_workers{pool=\"app\",state=\"starting\"} 1"),
        "{metrics}"
    );
    std::fs::write(&loaded, "").unwrap();
    let response = request.join().unwrap().unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    paddock.wait_for_log("worker ready");
    let status = paddock.pool_status("app");
    assert_eq!(status["workers"], 1, "{status}");
    // The load's length is in the metrics: one observation, at least the time the test waited.
    let metrics = harness::http_get(paddock.admin, "/metrics").unwrap();
    assert!(
        metrics.contains("paddock_worker_start_seconds_count{pool=\"app\"} 1"),
        "{metrics}"
    );
}

#[test]
fn a_worker_that_never_says_it_is_ready_is_killed_and_the_pool_fails_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let never = dir.path().join("never");
    let pool = format!(
        "mode = \"prefork\"\nworkers = 1\nreadiness = \"notify\"\nstart_timeout = \"1s\"\n{}",
        echo_command(&["--ready-when", never.to_str().unwrap()])
    );
    let paddock = start_unready(&echo_site(dir.path(), &pool));
    let first = first_worker(&paddock);
    let status = paddock.wait_pool("app", "the pool failing", |p| !p["failing"].is_null());
    let failing = status["failing"].as_str().unwrap_or_default();
    assert!(failing.contains("READY=1"), "{status}");
    paddock.wait_until("the late worker killed", PATIENCE, || !process_alive(first));
    // The client is told why at once; the worker itself never saw the request.
    let response = Connection::open(paddock.http)
        .unwrap()
        .request("GET", "/hello", &[], b"")
        .unwrap();
    assert_eq!(response.status, 503, "{}", response.text());
    assert!(response.text().contains("READY=1"), "{}", response.text());
    assert!(!response.text().contains("not ready yet"));
    // Counted as a worker that crashed, though it never served.
    paddock.wait_until("the killed worker counted", PATIENCE, || {
        let metrics = harness::http_get(paddock.admin, "/metrics").unwrap_or_default();
        metric_value(
            &metrics,
            "paddock_worker_exits_total{pool=\"app\",reason=\"crash\"}",
        )
        .is_some_and(|exits| exits >= 1.0)
    });
}

/// The value of the series `series` (name and labels as `/metrics` writes them).
fn metric_value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

/// The `start PID MS` and `ready PID MS` lines of `--ready-log`, as (start, ready) per worker in
/// order of start; a worker that never became ready has `u128::MAX`.
fn start_intervals(log: &str) -> Vec<(u128, u128)> {
    let mut workers: Vec<(String, u128, u128)> = Vec::new();
    for line in log.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [event, pid, ms] = fields[..] else {
            panic!("bad log line {line:?}");
        };
        let ms: u128 = ms.parse().unwrap();
        match event {
            "start" => workers.push((pid.to_string(), ms, u128::MAX)),
            "ready" => {
                let worker = workers.iter_mut().find(|w| w.0 == pid).expect("started");
                worker.2 = ms;
            }
            _ => panic!("bad log line {line:?}"),
        }
    }
    workers.sort_by_key(|w| w.1);
    workers.into_iter().map(|w| (w.1, w.2)).collect()
}

#[test]
fn no_more_than_max_starting_workers_load_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ready.log");
    let pool = format!(
        "mode = \"prefork\"\nsizing = \"ondemand\"\nmax_workers = 3\nreadiness = \"notify\"\nmax_starting = 1\n{}",
        echo_command(&["--ready-after", "300", "--ready-log", log.to_str().unwrap()])
    );
    let paddock = Paddock::start(&echo_site(dir.path(), &pool));
    // Three requests long enough that each needs its own worker: without the limit, three
    // workers would load at once.
    let requests: Vec<_> = (0..3)
        .map(|_| get_in_background(paddock.http, "/slow?sleep_ms=1500"))
        .collect();
    for request in requests {
        let response = request.join().unwrap().unwrap();
        assert_eq!(response.status, 200, "{}", response.text());
    }
    let intervals = start_intervals(&std::fs::read_to_string(&log).unwrap());
    assert!(intervals.len() >= 2, "the pool grew: {intervals:?}");
    for pair in intervals.windows(2) {
        assert!(
            pair[1].0 >= pair[0].1,
            "a worker started while another was loading: {intervals:?}\n{}",
            paddock.log()
        );
    }
}

#[test]
fn a_reload_stops_a_worker_still_loading_and_its_successor_serves() {
    let dir = tempfile::tempdir().unwrap();
    let never = dir.path().join("never");
    // A start_timeout far beyond the test's patience: only the reload may stop the first worker.
    let pool = |args: &[&str]| {
        format!(
            "mode = \"prefork\"\nworkers = 1\nreadiness = \"notify\"\nstart_timeout = \"600s\"\n{}",
            echo_command(args)
        )
    };
    let loading = pool(&["--ready-when", never.to_str().unwrap()]);
    let paddock = start_unready(&echo_site(dir.path(), &loading));
    let first = first_worker(&paddock);
    // A new command: the pool's workers are replaced. The one still loading has no request to
    // finish, so it is stopped at once instead of being left to drain (which it never would).
    let loads_at_once = pool(&["--ready-after", "0"]);
    paddock.reload(&echo_site(dir.path(), &loads_at_once));
    paddock.wait_until("the loading worker stopped", PATIENCE, || {
        !process_alive(first)
    });
    let response = harness::wait::wait_for("an answer from the new worker", || {
        let response = Connection::open(paddock.http)
            .ok()?
            .request("GET", "/hello", &[], b"")
            .ok()?;
        (response.status == 200).then_some(response)
    });
    assert!(!response.text().contains(&format!("\"pid\":{first}")));
}
