//! Pool sizing end to end: ondemand and dynamic pools grow under pressure, stay within their
//! bounds, and shrink when idle. Eventual states with generous limits; speed is for benchmarks.

use std::time::Duration;

use harness::client::load;
use harness::{php_site, require_php_cgi, test_site, Paddock};

fn slow_requests(
    paddock: &Paddock,
    clients: usize,
    ms: u64,
    duration: Duration,
) -> harness::client::LoadReport {
    let path = format!("/sleep.php?ms={ms}");
    load(
        paddock.http,
        clients,
        duration,
        move |_, _| ("GET".into(), path.clone(), Vec::new()),
        |r| r.status == 200,
    )
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

    // 12 clients with 300 ms requests: the pool must grow, and never beyond 6.
    let sampler = {
        let admin = paddock.admin;
        std::thread::spawn(move || {
            let mut peak = 0;
            for _ in 0..40 {
                if let Some(raw) = harness::http_get(admin, "/status?json") {
                    let body = raw
                        .split_once("\r\n\r\n")
                        .map_or("", |(_, b)| b)
                        .to_string();
                    let status: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                    peak = peak.max(status["pools"][0]["workers"].as_u64().unwrap_or(0));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            peak
        })
    };
    let report = slow_requests(&paddock, 12, 300, Duration::from_secs(2));
    let peak = sampler.join().unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(report.ok >= 12, "served {}", report.ok);
    assert!((4..=6).contains(&peak), "peak workers {peak}");
    assert!(paddock.worker_pids("php-cgi").len() <= 6);

    // Idle: workers retire one per second after 2 s of idleness, down to zero.
    paddock.wait_until("idle workers to retire", Duration::from_secs(20), || {
        paddock.pool_workers("php") == 0
    });
    paddock.wait_until("worker processes to exit", Duration::from_secs(10), || {
        paddock.worker_pids("php-cgi").is_empty()
    });
    let log = paddock.log();
    assert!(
        log.lines()
            .any(|l| l.contains("retiring worker") && l.contains("idle")),
        "retirements are logged with their reason"
    );

    // And it comes back on the next request.
    let report = slow_requests(&paddock, 1, 0, Duration::from_millis(300));
    assert!(
        report.failures.is_empty() && report.ok > 0,
        "{:?}",
        report.failures
    );
}

#[test]
fn dynamic_pool_keeps_spares_grows_to_max_and_shrinks_back() {
    require_php_cgi();
    let paddock = Paddock::start(&php_site(&test_site(), 0, "").replace(
        "workers = 0",
        "sizing = \"dynamic\"\nstart_workers = 2\nmin_spare = 1\nmax_spare = 2\nmax_workers = 5",
    ));
    assert_eq!(paddock.pool_workers("php"), 2, "start_workers");

    let report = slow_requests(&paddock, 10, 200, Duration::from_secs(2));
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(
        paddock.pool_workers("php"),
        5,
        "grew to max_workers under pressure"
    );
    assert!(paddock
        .log()
        .contains("pool reached its maximum number of workers"));

    // Idle with 5 workers = 5 spare slots > max_spare 2: shrink one per second to 2 spares.
    paddock.wait_until(
        "spares to shrink to max_spare",
        Duration::from_secs(20),
        || paddock.pool_workers("php") == 2,
    );
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
    paddock.wait_until("a replacement worker", Duration::from_secs(10), || {
        let now = paddock.worker_pids("php-cgi");
        now.len() == 3 && !now.contains(&before[0])
    });
    assert_eq!(paddock.pool_workers("php"), 3);
}
