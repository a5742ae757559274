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

/// One worker, held: the next request is sent ahead to it (counted as waiting, not running) and
/// runs there once the held one has been answered; the one after waits in the pool's queue.
#[test]
fn a_request_goes_ahead_to_a_busy_worker_and_runs_after_the_one_there() {
    if !require_libphp() {
        return;
    }
    let paddock = one_worker_sending_ahead("");
    let hold = Hold::new();
    std::thread::scope(|scope| {
        let running = scope.spawn(|| get(&paddock, &hold.path()));
        paddock.wait_pool("php", "the held request running", |p| {
            p["busy_slots"].as_u64() == Some(1)
        });
        let ahead = scope.spawn(|| {
            let output = paddock.curl(&["-s", "-d", "a=1", &paddock.url("/echo.php")]);
            String::from_utf8_lossy(&output.stdout).into_owned()
        });
        paddock.wait_pool("php", "a request sent ahead", |p| {
            p["sent_ahead"].as_u64() == Some(1)
        });
        let queued = scope.spawn(|| get(&paddock, "/sleep.php?ms=0"));
        let pool = paddock.wait_pool("php", "a request in the queue", |p| {
            p["waiting"].as_u64() == Some(1)
        });
        assert_eq!(pool["sent_ahead"], 1, "one place ahead per worker: {pool}");
        assert_eq!(
            pool["busy_slots"], 1,
            "the request sent ahead is not running: {pool}"
        );
        let metrics = scrape(paddock.admin);
        assert_eq!(
            sample(&metrics, "paddock_pool_sent_ahead", &[("pool", "php")]),
            Some(1.0),
            "{metrics}"
        );
        hold.release();
        let (status, first) = running.join().unwrap();
        assert_eq!(status, 200, "{first}\n{}", paddock.log());
        let echo: serde_json::Value = serde_json::from_str(&ahead.join().unwrap())
            .unwrap_or_else(|e| panic!("echo.php's JSON ({e})\n{}", paddock.log()));
        assert_eq!(echo["post"]["a"], "1", "{echo}");
        assert_eq!(
            echo["pid"].as_u64().map(|p| p as u32),
            pid_in(&first),
            "the POST sent ahead ran on the same worker, after the held request"
        );
        assert_eq!(queued.join().unwrap().0, 200, "{}", paddock.log());
    });
    let pool = paddock.pool_status("php");
    assert_eq!(pool["sent_ahead"], 0, "{pool}");
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
