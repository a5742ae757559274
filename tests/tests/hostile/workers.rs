//! Hostile workers: `fcgi-hostile` (tests/src/bin) misbehaves in the way each request asks for.
//! For each misbehaviour: the client gets a 502 (or the correct answer, where the misbehaviour
//! is harmless), nothing the worker tried to inject reaches the client, the front end's memory
//! stays bounded, worker stderr reaches the log rate-limited, a broken worker is replaced, and the
//! counters in docs/metrics.md move.

use std::time::{Duration, Instant};

use harness::client::{Connection, Response};
use harness::hostile::{count_log_lines, frontend_pid, peak_rss_kib, rss_kib};
use harness::observe::{scrape, value};
use harness::{process_alive, test_site, Paddock, PATIENCE};

const APP: &str = env!("CARGO_BIN_EXE_fcgi-hostile");
const WORKERS: usize = 2;
/// `limits.max_response` here: an endless body is cut off at this size.
const MAX_RESPONSE_MIB: u64 = 8;

/// The pools' `request_timeout` unless a test needs another.
const REQUEST_TIMEOUT: &str = "3s";
/// For requests that are slow by design (a flood, a fork bomb): what those tests check is not the
/// deadline, so on a loaded machine the request must not race it.
const GENEROUS_TIMEOUT: &str = "60s";

fn config(workers: usize, args: &str, extra_pool: &str) -> String {
    config_with_timeout(workers, args, extra_pool, REQUEST_TIMEOUT)
}

fn config_with_timeout(workers: usize, args: &str, extra_pool: &str, timeout: &str) -> String {
    format!(
        r#"
[limits]
max_response = "{MAX_RESPONSE_MIB}MiB"

[sites.test]
root = "{root}"

[sites.test.scripts]
pool = "hostile"
front_controller = "/index.php"

[pools.hostile]
mode = "prefork"
command = ["{APP}"{args}]
workers = {workers}
request_timeout = "{timeout}"
{extra_pool}
"#,
        root = test_site().display()
    )
}

fn start() -> Paddock {
    Paddock::start(&config(WORKERS, "", ""))
}

fn app_pids(paddock: &Paddock) -> Vec<u32> {
    let mut pids = paddock.worker_pids("fcgi-hostile");
    pids.sort();
    pids
}

/// Counters from docs/metrics.md that a misbehaving worker moves.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Counters {
    responses_5xx: f64,
    crash_exits: f64,
    spawns: f64,
}

fn counters(paddock: &Paddock) -> Counters {
    let text = scrape(paddock.admin);
    Counters {
        responses_5xx: value(
            &text,
            "paddock_requests_total",
            &[("pool", "hostile"), ("status_class", "5xx")],
        ),
        crash_exits: value(
            &text,
            "paddock_worker_exits_total",
            &[("pool", "hostile"), ("reason", "crash")],
        ),
        spawns: value(&text, "paddock_worker_spawns_total", &[("pool", "hostile")]),
    }
}

/// Nothing the worker meant to slip through is in the response.
fn assert_clean(what: &str, response: &Response) {
    let text = response.text();
    assert!(!text.contains("INJECTED"), "{what}: body {text:?}");
    for (name, value) in &response.headers {
        assert!(
            !name.eq_ignore_ascii_case("x-injected")
                && !value.contains("INJECTED")
                && !name.contains("INJECTED"),
            "{what}: header {name}: {value}"
        );
    }
}

/// Waits until the worker `pid` is gone and the pool is back to `WORKERS` live workers.
fn wait_replaced(paddock: &Paddock, what: &str, pid: u32) {
    paddock.wait_until(&format!("{what}: worker {pid} replaced"), PATIENCE, || {
        let pids = app_pids(paddock);
        !process_alive(pid) && !pids.contains(&pid) && pids.len() == WORKERS
    });
}

/// The pid in an `ok pid=N` style answer.
fn pid_in(text: &str) -> Option<u32> {
    text.split("pid=").nth(1)?.trim().parse().ok()
}

/// Sends `mode` on a fresh keep-alive connection, then a correct request on the same connection;
/// returns the first response and the pid that answered the second.
fn provoke(paddock: &Paddock, mode: &str) -> (Response, u32) {
    let mut conn = Connection::open(paddock.http).unwrap();
    let response = conn
        .request("GET", &format!("/index.php?mode={mode}"), &[], b"")
        .unwrap_or_else(|e| panic!("{mode}: {e}"));
    assert_clean(mode, &response);
    let after = conn
        .request("GET", "/index.php?mode=ok", &[], b"")
        .unwrap_or_else(|e| panic!("{mode}: the next request on the connection: {e}"));
    assert_eq!(after.status, 200, "{mode}: next request: {}", after.text());
    assert_clean(mode, &after);
    let pid = pid_in(&after.text()).unwrap_or_else(|| panic!("{mode}: {}", after.text()));
    (response, pid)
}

/// The worker breaks the protocol: 502, nothing leaks, it is killed and replaced, the 5xx and
/// crash counters move.
#[test]
fn protocol_breaking_workers_get_502_and_are_replaced() {
    let paddock = start();
    let frontend = frontend_pid(&paddock);
    let rss_before = rss_kib(frontend);
    for mode in [
        "garbage",
        "version",
        "request-id",
        "endless-headers",
        "endless-body",
        "no-end",
    ] {
        let before = counters(&paddock);
        let pids_before = app_pids(&paddock);
        let started = Instant::now();
        let (response, _) = provoke(&paddock, mode);
        assert_eq!(response.status, 502, "{mode}: {}", response.text());
        // The broken worker is the one of the two that is no longer there.
        paddock.wait_until(&format!("{mode}: a worker replaced"), PATIENCE, || {
            let now = app_pids(&paddock);
            now.len() == WORKERS && pids_before.iter().any(|p| !now.contains(p))
        });
        let gone: Vec<u32> = pids_before
            .iter()
            .copied()
            .filter(|p| !app_pids(&paddock).contains(p))
            .collect();
        for pid in gone {
            wait_replaced(&paddock, mode, pid);
        }
        paddock.wait_until(
            &format!("{mode}: the crash and the new worker counted"),
            PATIENCE,
            || {
                let after = counters(&paddock);
                after.responses_5xx > before.responses_5xx
                    && after.crash_exits > before.crash_exits
                    && after.spawns > before.spawns
            },
        );
        eprintln!("{mode}: 502 and replaced in {:?}", started.elapsed());
        if mode == "endless-headers" {
            // Cut at the head limit, not the response limit.
            paddock.wait_for_log("no end of its CGI header block");
        }
    }
    let peak = peak_rss_kib(frontend);
    eprintln!(
        "front end RSS {} KiB before, {} KiB after, peak {peak} KiB",
        rss_before,
        rss_kib(frontend)
    );
    // An endless body is cut at max_response (buffered once, in memory for now); endless headers
    // at 64 KiB. Nothing else may pile up.
    assert!(
        peak < rss_before + 3 * MAX_RESPONSE_MIB * 1024 + 32 * 1024,
        "front end peak RSS {peak} KiB (started at {rss_before} KiB)"
    );
}

/// Misbehaviour in the CGI head: 502 from paddock, nothing injected reaches the client, and the
/// worker (which kept to the protocol) keeps serving.
#[test]
fn bad_status_and_header_injection_get_502_and_nothing_leaks() {
    let paddock = start();
    let pids = app_pids(&paddock);
    for variant in 0..8 {
        let (response, _) = provoke(&paddock, &format!("bad-status&n={variant}"));
        assert_eq!(
            response.status,
            502,
            "bad-status {variant}: {}",
            response.text()
        );
    }
    for variant in 0..7 {
        let (response, _) = provoke(&paddock, &format!("header-injection&n={variant}"));
        assert_eq!(
            response.status,
            502,
            "header-injection {variant}: {}",
            response.text()
        );
    }
    assert_eq!(app_pids(&paddock), pids, "no worker was replaced");
}

/// Harmless or recoverable: maximum padding is legal; bytes after END_REQUEST end the
/// connection, not the answer; a Content-Length that does not match the body is a 502 (passed on,
/// it would truncate silently, or split the body into a second response).
#[test]
fn padding_extra_records_and_lying_lengths_never_reach_the_client() {
    let paddock = start();
    let pids = app_pids(&paddock);
    let (response, _) = provoke(&paddock, "padding");
    assert_eq!(response.status, 200);
    assert!(
        response.text().starts_with("padded pid="),
        "{}",
        response.text()
    );

    let (response, _) = provoke(&paddock, "after-end");
    assert_eq!(response.status, 200);
    assert!(
        response.text().starts_with("after-end pid="),
        "{}",
        response.text()
    );

    for variant in 0..2 {
        let mode = format!("lying-length&n={variant}");
        let (response, _) = provoke(&paddock, &mode);
        assert_eq!(response.status, 502, "{mode}: {}", response.text());
    }
    assert_eq!(app_pids(&paddock), pids, "no worker was replaced");
}

/// 100 MiB on FCGI_STDERR: the request is answered, the flood is read at full speed, and the log
/// gets a bounded number of its lines plus one line saying how much was left out.
#[test]
fn a_100_mib_stderr_flood_is_rate_limited_in_the_log() {
    let paddock = Paddock::start(&config_with_timeout(WORKERS, "", "", GENEROUS_TIMEOUT));
    let frontend = frontend_pid(&paddock);
    let rss_before = rss_kib(frontend);
    let started = Instant::now();
    let mut conn = Connection::open(paddock.http).unwrap();
    let response = conn
        .request("GET", "/index.php?mode=stderr-flood&n=100", &[], b"")
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(
        response.text().starts_with("flooded"),
        "{}",
        response.text()
    );
    let took = started.elapsed();
    paddock.wait_until("the rate-limit summary", PATIENCE, || {
        count_log_lines(&paddock, "worker stderr rate-limited") > 0
    });
    let logged = count_log_lines(&paddock, "stderr flood line");
    let lines_sent: u64 = response
        .text()
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    let peak = peak_rss_kib(frontend);
    eprintln!(
        "stderr flood: {lines_sent} lines sent in {took:?}, {logged} logged; front end RSS \
         {rss_before} KiB before, peak {peak} KiB"
    );
    // The budget: a burst of 256 KiB plus 64 KiB/s for as long as the flood ran (longer on a
    // loaded machine), lines of about 38 bytes (30 taken, to be safe), so a small share of the
    // lines sent.
    let budget_lines = (256.0 * 1024.0 + 64.0 * 1024.0 * took.as_secs_f64()) / 30.0;
    assert!(
        logged > 0 && (logged as f64) < budget_lines + 100.0 && (logged as u64) < lines_sent / 4,
        "{logged} of {lines_sent} lines logged in {took:?} (budget {budget_lines:.0})"
    );
    assert!(peak < rss_before + 32 * 1024, "peak RSS {peak} KiB");
    // The same worker goes on serving.
    let next = conn.request("GET", "/index.php?mode=ok", &[], b"").unwrap();
    assert_eq!(next.status, 200);
}

/// 20 MiB on the worker's own stderr (fd 2, a pipe the master reads): logged rate-limited too.
#[test]
fn a_flood_on_the_workers_own_stderr_is_rate_limited_in_the_log() {
    let paddock = Paddock::start(&config_with_timeout(WORKERS, "", "", GENEROUS_TIMEOUT));
    let response = Connection::open(paddock.http)
        .unwrap()
        .request("GET", "/index.php?mode=fd2-flood&n=20", &[], b"")
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    paddock.wait_until("the rate-limit summary", PATIENCE, || {
        count_log_lines(&paddock, "worker output rate-limited") > 0
    });
    let logged = count_log_lines(&paddock, "fd2 flood line");
    eprintln!("fd 2 flood: {logged} lines logged of {}", response.text());
    assert!(logged > 0 && logged < 20_000, "{logged} lines logged");
}

/// A worker that exits in the middle of a request: GET is retried on the other worker, POST gets
/// 502 (it must not run twice); the dead worker is replaced and counted as a crash.
#[test]
fn a_worker_exiting_mid_request_is_replaced() {
    let paddock = start();
    let before = counters(&paddock);
    let response = Connection::open(paddock.http)
        .unwrap()
        .request("POST", "/index.php?mode=exit", &[], b"x=1")
        .unwrap();
    assert_eq!(response.status, 502);
    paddock.wait_until("a crash counted", PATIENCE, || {
        let after = counters(&paddock);
        after.crash_exits > before.crash_exits && app_pids(&paddock).len() == WORKERS
    });
}

/// A worker that aborts after every 3 requests: clients never notice (GET retried; the crash
/// happens after the answer), the pool keeps its size, every crash is counted.
#[test]
fn a_worker_crashing_after_n_requests_costs_no_request() {
    let paddock = Paddock::start(&config(WORKERS, ", \"--crash-after\", \"3\"", ""));
    let before = counters(&paddock);
    let mut served = 0;
    // Spaced so that each worker lives longer than a second: quicker deaths are a crash loop,
    // which puts the pool in backoff (tested below) instead.
    for _ in 0..12 {
        let response = Connection::open(paddock.http)
            .unwrap()
            .request("GET", "/index.php?mode=ok", &[], b"")
            .unwrap();
        assert_eq!(response.status, 200, "{}", response.text());
        served += 1;
        std::thread::sleep(Duration::from_millis(450));
    }
    paddock.wait_until(
        "crashes counted and the pool back to size",
        PATIENCE,
        || {
            let after = counters(&paddock);
            after.crash_exits >= before.crash_exits + 3.0 && app_pids(&paddock).len() == WORKERS
        },
    );
    eprintln!(
        "{served} requests served, {} crashes",
        counters(&paddock).crash_exits - before.crash_exits
    );
}

/// A handler that exits before accepting anything: the pool enters the failing state (backoff,
/// no fork storm) and requests get a fast 503 instead of waiting.
#[test]
fn a_worker_exiting_at_start_puts_the_pool_in_backoff() {
    let paddock = Paddock::start_with(
        &format!(
            "{}\n{}",
            harness::LISTENERS,
            config(1, ", \"--exit-at-start\"", "")
        ),
        false,
    );
    paddock.wait_until("the pool failing", PATIENCE, || {
        value(
            &scrape(paddock.admin),
            "paddock_pool_failing",
            &[("pool", "hostile")],
        ) == 1.0
    });
    let spawns = value(
        &scrape(paddock.admin),
        "paddock_worker_spawns_total",
        &[("pool", "hostile")],
    );
    let window = Instant::now();
    // Answered at once, saying why (not after a queue timeout).
    let response = Connection::open(paddock.http)
        .unwrap()
        .request("GET", "/index.php?mode=ok", &[], b"")
        .unwrap();
    assert_eq!(response.status, 503);
    assert!(
        response.text().contains("exit right after starting"),
        "{}",
        response.text()
    );
    // A window of (at least) 2 s: the doubling back-off allows about 3 spawns in it, and one more
    // each time the window doubles, when a loaded machine stretches it.
    std::thread::sleep(Duration::from_secs(2));
    let later = value(
        &scrape(paddock.admin),
        "paddock_worker_spawns_total",
        &[("pool", "hostile")],
    );
    let seconds = window.elapsed().as_secs_f64();
    let most = 3.0 + (seconds / 2.0).log2().max(0.0).ceil();
    assert!(
        later - spawns <= most,
        "backoff: {spawns} → {later} spawns in {seconds:.1} s"
    );
}

/// A worker that starts children and hangs: the request times out (504), and the master kills the
/// worker's whole process group, children included.
#[test]
fn a_forking_worker_is_killed_with_its_children() {
    // The deadline must not come before the worker has started all its children.
    let paddock = Paddock::start(&config_with_timeout(1, "", "rlimit_nproc = 4096", "10s"));
    let pid = app_pids(&paddock)[0];
    let addr = paddock.http;
    let request = std::thread::spawn(move || {
        Connection::open(addr)
            .unwrap()
            .request("POST", "/index.php?mode=fork", &[], b"x=1")
            .unwrap()
    });
    let mut children_seen = 0;
    paddock.wait_until("the worker's children", PATIENCE, || {
        children_seen = harness::children_of(pid).len();
        children_seen >= 64
    });
    let response = request.join().unwrap();
    assert_eq!(response.status, 504, "{}", response.text());
    eprintln!("fork: the worker had {children_seen} children before its request timed out");
    wait_replaced_single(&paddock, pid);
    // Every process of the worker's group is gone.
    paddock.wait_until("the worker's children gone", PATIENCE, || {
        process_group_members(pid).is_empty()
    });
}

fn wait_replaced_single(paddock: &Paddock, pid: u32) {
    paddock.wait_until("the forking worker replaced", PATIENCE, || {
        !process_alive(pid) && app_pids(paddock).len() == 1
    });
}

/// Live processes whose process group is `pgid`.
fn process_group_members(pgid: u32) -> Vec<u32> {
    let output = std::process::Command::new("ps")
        .args(["-e", "-o", "pid=,pgid=,stat="])
        .output()
        .expect("ps");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let pid: u32 = fields.next()?.parse().ok()?;
            let group: u32 = fields.next()?.parse().ok()?;
            let stat = fields.next()?;
            (group == pgid && !stat.starts_with('Z')).then_some(pid)
        })
        .collect()
}
