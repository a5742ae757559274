//! `send_ahead` on `builtin = "php"` pools: a request that finds every worker busy is sent on a
//! worker's second connection and waits there; a request sent ahead of one that times out, or
//! to a worker that is killed, is still answered.

use harness::observe::{sample, scrape};
use harness::php_builtin::{php_builtin_site, require_libphp};
use harness::{signal, test_site, Hold, Paddock};

/// The body of a GET of `hold.php` or `sleep.php`: ends with the pid of the worker that ran it.
fn pid_in(answer: &str) -> Option<u32> {
    answer.split_whitespace().last()?.parse().ok()
}

/// A pool of one worker whose places ahead are given out whatever the requests' length (the
/// default bound, 500 µs on average, depends on the machine's speed), once one request has been
/// answered.
fn one_worker_sending_ahead(extra: &str) -> Paddock {
    let paddock = Paddock::start(&php_builtin_site(
        &test_site(),
        1,
        &format!("send_ahead_below = \"1h\"\n{extra}"),
    ));
    assert_eq!(get(&paddock, "/sleep.php?ms=0").0, 200, "{}", paddock.log());
    paddock
}

/// With the pool's one worker held, a request waits in the pool's queue (not ahead), and both
/// are answered once the held one is released.
fn a_request_behind_a_held_one_waits_in_the_queue(paddock: &Paddock) {
    let hold = Hold::new();
    std::thread::scope(|scope| {
        let running = scope.spawn(|| get(paddock, &hold.path()));
        paddock.wait_pool("php", "the held request running", |p| {
            p["busy_slots"].as_u64() == Some(1)
        });
        let queued = scope.spawn(|| get(paddock, "/sleep.php?ms=0"));
        let pool = paddock.wait_pool("php", "a request in the queue", |p| {
            p["waiting"].as_u64() == Some(1)
        });
        assert_eq!(pool["sent_ahead"], 0, "{pool}");
        hold.release();
        assert_eq!(running.join().unwrap().0, 200);
        assert_eq!(queued.join().unwrap().0, 200);
    });
}

fn get(paddock: &Paddock, path: &str) -> (u16, String) {
    let output = paddock.curl(&["-s", "-w", "\n%{http_code}", &paddock.url(path)]);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), body.to_string())
}

/// One worker, held: the next two requests are sent ahead to it (counted as waiting, not
/// running) and run there, in the order sent, once the held one has been answered; the one after
/// waits in the pool's queue. (With one worker, every request runs on it.)
#[test]
fn requests_go_ahead_to_a_busy_worker_and_run_after_the_one_there_in_order() {
    if !require_libphp() {
        return;
    }
    let marks = tempfile::tempdir().unwrap();
    let log = marks.path().join("marks.log");
    let paddock =
        one_worker_sending_ahead(&format!("env = {{ MARK_LOG = \"{}\" }}", log.display()));
    let hold = Hold::new();
    std::thread::scope(|scope| {
        let running = scope.spawn(|| get(&paddock, &hold.path()));
        paddock.wait_pool("php", "the held request running", |p| {
            p["busy_slots"].as_u64() == Some(1)
        });
        let first = scope.spawn(|| {
            let output = paddock.curl(&["-s", "-d", "a=1", &paddock.url("/marklog.php?m=first")]);
            String::from_utf8_lossy(&output.stdout).into_owned()
        });
        paddock.wait_pool("php", "a request sent ahead", |p| {
            p["sent_ahead"].as_u64() == Some(1)
        });
        let second = scope.spawn(|| get(&paddock, "/marklog.php?m=second"));
        paddock.wait_pool("php", "a second request sent ahead", |p| {
            p["sent_ahead"].as_u64() == Some(2)
        });
        let queued = scope.spawn(|| get(&paddock, "/marklog.php?m=queued"));
        let pool = paddock.wait_pool("php", "a request in the queue", |p| {
            p["waiting"].as_u64() == Some(1)
        });
        assert_eq!(pool["sent_ahead"], 2, "two places ahead per worker: {pool}");
        assert_eq!(
            pool["busy_slots"], 1,
            "the requests sent ahead are not running: {pool}"
        );
        let metrics = scrape(paddock.admin);
        assert_eq!(
            sample(&metrics, "paddock_pool_sent_ahead", &[("pool", "php")]),
            Some(2.0),
            "{metrics}"
        );
        hold.release();
        let (status, held) = running.join().unwrap();
        assert_eq!(status, 200, "{held}\n{}", paddock.log());
        assert_eq!(first.join().unwrap(), "marked first\n", "{}", paddock.log());
        assert_eq!(second.join().unwrap().0, 200, "{}", paddock.log());
        assert_eq!(queued.join().unwrap().0, 200, "{}", paddock.log());
    });
    let pool = paddock.pool_status("php");
    assert_eq!(pool["sent_ahead"], 0, "{pool}");
    // Each request marks the log as it runs: the two sent ahead ran in the order sent (the worker
    // found both waiting when the held one ended), then the one from the queue. The POST's body
    // reached it whole.
    let marks = std::fs::read_to_string(&log).unwrap();
    let order: Vec<&str> = marks.lines().filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(
        order,
        ["first", "second", "queued"],
        "{marks}\n{}",
        paddock.log()
    );
    assert!(marks.starts_with("first POST 3 "), "{marks}");
}

#[test]
fn without_send_ahead_a_get_waits_in_the_queue() {
    if !require_libphp() {
        return;
    }
    let paddock = Paddock::start(&php_builtin_site(
        &test_site(),
        1,
        "send_ahead = false\nsend_ahead_below = \"1h\"",
    ));
    assert_eq!(get(&paddock, "/sleep.php?ms=0").0, 200);
    a_request_behind_a_held_one_waits_in_the_queue(&paddock);
}

/// The request before it overruns `request_timeout` and ends with PHP's timeout error (504):
/// the GET sent ahead runs next on the same worker, with a deadline of its own from then on.
#[test]
fn a_get_sent_ahead_of_a_request_that_times_out_is_answered() {
    if !require_libphp() {
        return;
    }
    let paddock = one_worker_sending_ahead("request_timeout = \"2s\"");
    std::thread::scope(|scope| {
        let slow = scope.spawn(|| get(&paddock, "/sleep.php?ms=60000"));
        paddock.wait_pool("php", "the slow request running", |p| {
            p["busy_slots"].as_u64() == Some(1)
        });
        // Its own deadline starts when the slow one ends; it runs in no time then.
        let ahead = scope.spawn(|| get(&paddock, "/sleep.php?ms=1500"));
        paddock.wait_pool("php", "a GET sent ahead", |p| {
            p["sent_ahead"].as_u64() == Some(1)
        });
        assert_eq!(slow.join().unwrap().0, 504, "{}", paddock.log());
        let (status, body) = ahead.join().unwrap();
        assert_eq!(status, 200, "{body}\n{}", paddock.log());
    });
    let log = paddock.log();
    assert!(!log.contains("reason=timeout_kill"), "{log}");
}

/// The worker is killed while it runs one request and holds another sent ahead: both are GETs,
/// so both are retried on the worker that replaces it (nothing of either had been answered).
#[test]
fn gets_on_a_killed_worker_are_retried_on_its_successor() {
    if !require_libphp() {
        return;
    }
    let paddock = one_worker_sending_ahead("");
    let hold = Hold::new();
    let victim = paddock.worker_pids("php-worker")[0];
    std::thread::scope(|scope| {
        let running = scope.spawn(|| get(&paddock, &hold.path()));
        paddock.wait_pool("php", "the held request running", |p| {
            p["busy_slots"].as_u64() == Some(1)
        });
        let ahead = scope.spawn(|| get(&paddock, "/sleep.php?ms=0"));
        paddock.wait_pool("php", "a GET sent ahead", |p| {
            p["sent_ahead"].as_u64() == Some(1)
        });
        signal(victim, "KILL");
        hold.release();
        let (status, first) = running.join().unwrap();
        assert_eq!(status, 200, "{first}\n{}", paddock.log());
        let (status, second) = ahead.join().unwrap();
        assert_eq!(status, 200, "{second}\n{}", paddock.log());
        for answer in [&first, &second] {
            assert_ne!(pid_in(answer), Some(victim), "{answer}");
        }
    });
}

/// By default places ahead wait for short requests: after requests that each keep the worker
/// 200 ms, a request that finds the worker busy waits in the pool's queue.
#[test]
fn after_long_requests_a_request_waits_in_the_queue_by_default() {
    if !require_libphp() {
        return;
    }
    let paddock = Paddock::start(&php_builtin_site(&test_site(), 1, ""));
    for _ in 0..3 {
        assert_eq!(get(&paddock, "/sleep.php?ms=200").0, 200);
    }
    a_request_behind_a_held_one_waits_in_the_queue(&paddock);
}
