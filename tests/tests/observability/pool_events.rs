//! Metrics that come from the master's events, end to end: worker memory, configuration
//! reloads (counters survive them), and a pool at its maximum size.

use std::process::Command;
use std::thread;
use std::time::Duration;

use harness::observe::{sample, scrape, status, value, wait_for};
use harness::{curl_code, php_site, require_php_cgi, test_site, Hold, Paddock, PATIENCE};

const WAIT: Duration = PATIENCE;

/// Resident memory of `pid` from /proc (pages × page size).
fn rss_of(pid: u64) -> f64 {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).expect("a live process");
    let pages: f64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    let page_size = Command::new("getconf")
        .arg("PAGESIZE")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(4096.0);
    pages * page_size
}

#[test]
fn worker_memory_measured_by_the_master_reaches_metrics_and_the_status_page() {
    require_php_cgi();
    let paddock = Paddock::start(&php_site(&test_site(), 2, ""));
    let php = [("pool", "php")];
    let text = wait_for(WAIT, "worker memory in the metrics", || {
        let text = scrape(paddock.admin);
        (value(&text, "paddock_pool_rss_bytes", &php) > 0.0).then_some(text)
    });
    let total = value(&text, "paddock_pool_rss_bytes", &php);
    let largest = value(&text, "paddock_worker_rss_max_bytes", &php);
    assert!(
        largest > 1e6,
        "a php-cgi process uses more than 1 MB ({largest})"
    );
    assert!(
        total >= largest && total <= 2.0 * largest,
        "{total} vs {largest}"
    );

    let status = wait_for(WAIT, "memory of both workers on the status page", || {
        let status = status(paddock.admin);
        let processes = status["pools"][0]["processes"].as_array().unwrap().clone();
        processes
            .iter()
            .all(|p| p["rss_bytes"].is_u64())
            .then_some(processes)
    });
    for process in status {
        let reported = process["rss_bytes"].as_f64().unwrap();
        let actual = rss_of(process["pid"].as_u64().unwrap());
        // Measured at different moments: close, not equal.
        assert!(
            (reported - actual).abs() < 0.5 * actual,
            "pid {}: reported {reported}, /proc says {actual}",
            process["pid"]
        );
    }
}

#[test]
fn reloads_are_counted_and_counters_survive_them() {
    require_php_cgi();
    let paddock = Paddock::start(&php_site(&test_site(), 1, ""));
    let config = paddock.dir.path().join("paddock.toml");
    let good = std::fs::read_to_string(&config).unwrap();
    for _ in 0..3 {
        assert!(paddock.curl(&[&paddock.url("/sleep.php")]).status.success());
    }
    let requests = |text: &str| value(text, "paddock_requests_total", &[("pool", "php")]);
    let reloads =
        |text: &str, result| value(text, "paddock_config_reloads_total", &[("result", result)]);
    let before = scrape(paddock.admin);
    assert_eq!(requests(&before), 3.0);
    assert_eq!(reloads(&before, "success"), 0.0);
    assert_eq!(reloads(&before, "failure"), 0.0);
    assert_eq!(
        value(&before, "paddock_config_last_reload_successful", &[]),
        1.0
    );

    // A broken file: the reload fails, paddock keeps serving with the old configuration.
    std::fs::write(&config, format!("{good}\n[pools.php]\nbroken = true\n")).unwrap();
    harness::signal(paddock.pid(), "HUP");
    let failed = wait_for(WAIT, "the failed reload to be counted", || {
        let text = scrape(paddock.admin);
        (reloads(&text, "failure") == 1.0).then_some(text)
    });
    assert_eq!(
        value(&failed, "paddock_config_last_reload_successful", &[]),
        0.0
    );
    assert_eq!(reloads(&failed, "success"), 0.0);

    // The good file again: the reload succeeds; nothing went backwards.
    std::fs::write(&config, &good).unwrap();
    harness::signal(paddock.pid(), "HUP");
    let reloaded = wait_for(WAIT, "the successful reload to be counted", || {
        let text = scrape(paddock.admin);
        (reloads(&text, "success") == 1.0).then_some(text)
    });
    assert_eq!(
        value(&reloaded, "paddock_config_last_reload_successful", &[]),
        1.0
    );
    assert_eq!(reloads(&reloaded, "failure"), 1.0);
    assert!(paddock.curl(&[&paddock.url("/sleep.php")]).status.success());
    let after = scrape(paddock.admin);
    assert_eq!(requests(&after), 4.0, "request counters survive reloads");
    let started = |text: &str| sample(text, "paddock_start_time_seconds", &[]).unwrap();
    assert_eq!(
        started(&after),
        started(&before),
        "the same front-end process"
    );
}

#[test]
fn a_pool_at_its_maximum_with_requests_waiting_is_reported() {
    require_php_cgi();
    let paddock = Paddock::start(&php_site(&test_site(), 0, "").replace(
        "workers = 0",
        "sizing = \"ondemand\"\nmax_workers = 1\nidle_timeout = \"10s\"",
    ));
    let reached = [("pool", "php")];
    assert_eq!(
        value(
            &scrape(paddock.admin),
            "paddock_pool_max_workers_reached_total",
            &reached
        ),
        0.0
    );
    // Three held requests for a pool of at most one worker: two wait while it is full.
    let hold = Hold::new();
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let url = paddock.url(&hold.path());
            thread::spawn(move || curl_code(&url))
        })
        .collect();
    wait_for(WAIT, "the master to report the pool at its maximum", || {
        let text = scrape(paddock.admin);
        (value(&text, "paddock_pool_max_workers_reached_total", &reached) >= 1.0).then_some(())
    });
    hold.release();
    for client in clients {
        assert_eq!(client.join().unwrap(), 200);
    }
    let text = scrape(paddock.admin);
    assert_eq!(
        value(&text, "paddock_pool_workers", &[("pool", "php")]),
        1.0
    );
}
