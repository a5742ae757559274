//! Faults end to end: killed workers, hung workers, crash loops, and recycling under load; the
//! ones that apply run with php-cgi and with paddock's own PHP worker (`builtin = "php"`).

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::client::{load, load_bounded, Connection};
use harness::php_builtin::{php_builtin_site, require_libphp};
use harness::{
    children_of, php_site, process_alive, require_php_cgi, test_site, Paddock, PATIENCE,
};

/// What runs PHP in a test's pool.
#[derive(Debug, Clone, Copy)]
enum Php {
    Cgi,
    Builtin,
}

impl Php {
    /// The test site on this handler; `None` (the test is skipped, with the reason printed) when
    /// the handler is not installed.
    fn site(self, workers: u32, extra: &str) -> Option<String> {
        match self {
            Php::Cgi => {
                require_php_cgi();
                Some(php_site(&test_site(), workers, extra))
            }
            Php::Builtin => {
                require_libphp().then(|| php_builtin_site(&test_site(), workers, extra))
            }
        }
    }

    /// The process name of the pool's workers.
    fn worker(self) -> &'static str {
        match self {
            Php::Cgi => "php-cgi",
            Php::Builtin => "php-worker",
        }
    }
}

#[test]
fn killing_a_worker_every_100ms_loses_no_idempotent_request_and_runs_no_post_twice() {
    chaos(Php::Cgi);
}

#[test]
fn killing_a_builtin_php_worker_every_100ms_loses_no_idempotent_request_and_runs_no_post_twice() {
    chaos(Php::Builtin);
}

/// Requests answered between two kills, at least (see `chaos`).
const KILL_EVERY_ANSWERS: usize = 20;

fn chaos(php: Php) {
    let dir = tempfile::tempdir().unwrap();
    let nonces = dir.path().join("nonces.log");
    let Some(config) = php.site(
        4,
        &format!("env = {{ NONCE_LOG = \"{}\" }}", nonces.display()),
    ) else {
        return;
    };
    let paddock = Paddock::start(&config);
    let master = paddock.pid();
    let worker_name = php.worker();

    // Requests answered so far: the killer waits for some between kills. On a quiet machine
    // hundreds are answered in 100 ms, so this is a kill every 100 ms; on a starved one a single
    // attempt can outlast several kills, and kills paced by the clock alone would fail a
    // request on four workers in a row (seen beside a CPU hog), which no retry bound survives.
    let answered = Arc::new(AtomicUsize::new(0));
    let progress = answered.clone();
    let killer = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut kills = 0;
        // The victim is always the oldest worker, so every worker is killed in turn and each
        // lives through as many kills as there are workers. Victims picked at random killed the
        // newest worker as often as any other; a retried request goes to a freshly started
        // worker, which on a starved machine takes long to start and answer, so one GET had all
        // four of its attempts killed by random picks (beside a CPU hog and a build), and no
        // retry bound survives every attempt being killed.
        while Instant::now() < deadline {
            let seen = progress.load(Ordering::Relaxed);
            let oldest = children_of(master)
                .into_iter()
                .find(|(_, name)| name == worker_name);
            if let Some((pid, _)) = oldest {
                harness::signal(pid, "KILL");
                kills += 1;
            }
            std::thread::sleep(Duration::from_millis(100));
            while progress.load(Ordering::Relaxed) < seen + KILL_EVERY_ANSWERS
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        kills
    });
    // 90 clients GET, 10 clients POST unique nonces, for 20 s.
    let report = load(
        paddock.http,
        100,
        Duration::from_secs(20),
        |client, n| {
            if client < 90 {
                ("GET".into(), "/sleep.php?ms=2".into(), Vec::new())
            } else {
                let body = format!("nonce={client}-{n}");
                ("POST".into(), "/nonce.php".into(), body.into_bytes())
            }
        },
        move |r| {
            answered.fetch_add(1, Ordering::Relaxed);
            r.status == 200 || r.status == 502
        },
    );
    let kills = killer.join().unwrap();
    // Nominally 200 (one per 100 ms); far fewer when the machine is busy, since listing workers
    // takes time there. What matters is that many kills landed during the load.
    assert!(kills >= 20, "only {kills} kills");
    assert!(
        report.failures.is_empty(),
        "{} failures, e.g. {:?}",
        report.failures.len(),
        &report.failures[..report.failures.len().min(5)]
    );
    // GETs never fail: load() counted 502s as accepted above only for POSTs' sake, so check the
    // log for 502s on GET.
    let log = paddock.log();
    let get_502: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("method=GET") && l.contains("status=502"))
        .collect();
    // On failure, what happened to those requests: every line of theirs.
    let story: Vec<&str> = get_502
        .iter()
        .filter_map(|l| l.split("request_id=").nth(1)?.split_whitespace().next())
        .flat_map(|id| log.lines().filter(move |l| l.contains(id)))
        .collect();
    assert!(
        get_502.is_empty(),
        "an idempotent request failed:\n{}",
        story.join("\n")
    );
    let recorded = std::fs::read_to_string(&nonces).unwrap_or_default();
    let mut seen = HashSet::new();
    for nonce in recorded.lines() {
        assert!(seen.insert(nonce), "POST {nonce} ran twice");
    }
    assert!(
        seen.len() > 50,
        "POSTs were served ({} recorded)",
        seen.len()
    );

    // The pool is back to size and nothing is left as a zombie.
    paddock.wait_until("the pool back to 4 workers", PATIENCE, || {
        paddock.worker_pids(worker_name).len() == 4 && paddock.pool_workers("php") == 4
    });
    let zombies: Vec<_> = children_of(master)
        .into_iter()
        .filter(|(pid, _)| !process_alive(*pid))
        .collect();
    assert!(zombies.is_empty(), "zombies: {zombies:?}");
    println!("{} requests served, {kills} workers killed", report.ok);
}

#[test]
fn a_hung_worker_gets_504_and_is_replaced() {
    require_php_cgi();
    let paddock = Paddock::start(&php_site(&test_site(), 1, "request_timeout = \"1s\""));
    let before = paddock.worker_pids("php-cgi");
    // A 504 (not the script's 200 after 20 s) is the request timeout's.
    let response = Connection::open(paddock.http)
        .unwrap()
        .request("GET", "/sleep.php?ms=20000", &[], b"")
        .unwrap();
    assert_eq!(response.status, 504);
    paddock.wait_until("the hung worker to be replaced", PATIENCE, || {
        let now = paddock.worker_pids("php-cgi");
        now.len() == 1 && now != before
    });
    assert!(!process_alive(before[0]), "the hung worker was killed");
    let response = Connection::open(paddock.http)
        .unwrap()
        .request("GET", "/sleep.php?ms=1", &[], b"")
        .unwrap();
    assert_eq!(response.status, 200);
}

#[test]
fn a_stopped_worker_is_detected_by_the_deadline() {
    stopped_worker(Php::Cgi);
}

/// A stopped builtin worker cannot raise PHP's own timeout: the front end's deadline (2 s later)
/// answers and has it killed, as for php-cgi.
#[test]
fn a_stopped_builtin_php_worker_is_detected_by_the_deadline() {
    stopped_worker(Php::Builtin);
}

fn stopped_worker(php: Php) {
    let Some(config) = php.site(1, "request_timeout = \"1s\"") else {
        return;
    };
    let paddock = Paddock::start(&config);
    let name = php.worker();
    let worker = paddock.worker_pids(name)[0];
    harness::signal(worker, "STOP");
    let response = Connection::open(paddock.http)
        .unwrap()
        .request("GET", "/sleep.php?ms=0", &[], b"")
        .unwrap();
    assert_eq!(response.status, 504);
    paddock.wait_until("the stopped worker to be replaced", PATIENCE, || {
        !process_alive(worker) && paddock.worker_pids(name).len() == 1
    });
}

#[test]
fn a_crash_looping_pool_backs_off_answers_503_and_recovers() {
    require_php_cgi();
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("healthy");
    // The handler fails at start until the flag file exists, like php-cgi with a broken ini file.
    let config = format!(
        r#"
[sites.test]
root = "{root}"

[sites.test.scripts]
pool = "php"

[pools.php]
mode = "prefork"
command = ["sh", "-c", "test -f {flag} && exec php-cgi; echo 'broken handler' >&2; exit 3"]
workers = 2
queue_timeout = "20s"
"#,
        root = test_site().display(),
        flag = flag.display()
    );
    let started = Instant::now();
    let paddock = Paddock::start_with(&format!("{}\n{config}", harness::LISTENERS), false);
    paddock.wait_pool("php", "the pool reported failing", |p| {
        !p["failing"].is_null()
    });
    paddock.wait_until("a few spawn attempts", PATIENCE, || {
        paddock.log().matches("worker started").count() >= 3
    });
    let spawned = paddock.log().matches("worker started").count();
    let seconds = started.elapsed().as_secs_f64();
    // Not a fork storm: without back-off the two workers would be restarted at once, hundreds of
    // times a second. With it (doubling from 100 ms, unit-tested in pool.rs) a quiet machine
    // makes about 2 × log2(t / 100 ms) spawns in t seconds; a starved one can make more, because
    // the master, waiting for a core, reaps a worker a second or more after it started and counts
    // it as healthy, which restarts the doubling. So the bound is an average of at least 200 ms
    // between spawns of each worker.
    let most = ((2.0 * seconds / 0.2) as usize).max(25);
    assert!(spawned <= most, "{spawned} spawns in {seconds:.1} s");
    // The 503 says why (a queue timeout, after 20 s, would not). While a restart attempt's
    // workers are up (between their spawn and the master reaping them, long on a starved
    // machine) a request goes to them and fails with them: 502, an honest answer. Any other
    // status fails the test; the 503 must come once the attempt is over.
    let response = harness::wait::wait_for("a 503 from the failing pool", || {
        // No answer within the client's 30 s happened once beside two busy loops (2026-12-05):
        // the log says where the request waited.
        let response = Connection::open(paddock.http)
            .unwrap()
            .request("GET", "/echo.php", &[], b"")
            .unwrap_or_else(|e| panic!("no answer: {e}\n{}", paddock.log()));
        match response.status {
            503 => Some(response),
            502 => None,
            other => panic!("{other}: {}\n{}", response.text(), paddock.log()),
        }
    });
    assert!(
        response.text().contains("exit right after starting"),
        "{}",
        response.text()
    );
    assert!(response.header("retry-after").is_some());
    // Worker stderr is logged.
    paddock.wait_for_log("broken handler");

    std::fs::write(&flag, "").unwrap();
    paddock.wait_until("the pool to recover", PATIENCE, || {
        paddock.pool_workers("php") == 2 && paddock.log().contains("pool recovered")
    });
    let response = Connection::open(paddock.http)
        .unwrap()
        .request("GET", "/echo.php", &[], b"")
        .unwrap();
    assert_eq!(response.status, 200);
}

#[test]
fn missing_program_answers_503_naming_it() {
    let config = format!(
        "{}\n[sites.test]\nroot = \"{}\"\n[sites.test.scripts]\npool = \"php\"\n[pools.php]\nmode = \"prefork\"\ncommand = [\"php-cgi-not-installed\"]\nworkers = 1\n",
        harness::LISTENERS,
        test_site().display()
    );
    let paddock = Paddock::start_with(&config, false);
    paddock.wait_until("the pool to be marked failing", PATIENCE, || {
        paddock.log().contains("was not found")
    });
    let response = Connection::open(paddock.http)
        .unwrap()
        .request("GET", "/echo.php", &[], b"")
        .unwrap();
    assert_eq!(response.status, 503);
    assert!(
        response.text().contains("php-cgi-not-installed"),
        "{}",
        response.text()
    );
    // The log says how to install it.
    paddock.wait_for_log("apt-get install php-cgi");
    // Static files are still served.
    let response = Connection::open(paddock.http)
        .unwrap()
        .request("GET", "/static/hello.txt", &[], b"")
        .unwrap();
    assert_eq!(response.status, 200);
}

/// Recycling load: 8 clients, each sending `per_client` requests (GET and POST), for at most
/// `duration`; every request must be answered.
fn recycling_under_load(
    extra: &str,
    per_client: u64,
    duration: Duration,
) -> (Paddock, HashSet<String>, u64) {
    recycling_under_load_with(Php::Cgi, extra, per_client, duration).expect("php-cgi is required")
}

fn recycling_under_load_with(
    php: Php,
    extra: &str,
    per_client: u64,
    duration: Duration,
) -> Option<(Paddock, HashSet<String>, u64)> {
    let paddock = Paddock::start(&php.site(2, extra)?);
    let pids = std::sync::Arc::new(std::sync::Mutex::new(HashSet::new()));
    let seen = pids.clone();
    let report = load_bounded(
        paddock.http,
        8,
        duration,
        per_client,
        |client, n| {
            if client % 2 == 0 {
                ("GET".into(), "/sleep.php?ms=1".into(), Vec::new())
            } else {
                (
                    "POST".into(),
                    "/echo.php".into(),
                    format!("n={n}").into_bytes(),
                )
            }
        },
        move |r| {
            if r.status != 200 {
                return false;
            }
            // sleep.php says "… in pid N"; echo.php answers JSON with a "pid" field.
            let text = r.text();
            let pid = match text.strip_prefix("slept ") {
                Some(rest) => rest.rsplit("pid ").next().map(|p| p.trim().to_string()),
                None => serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .map(|json| json["pid"].to_string()),
            };
            seen.lock().unwrap().extend(pid);
            true
        },
    );
    assert!(
        report.failures.is_empty(),
        "{:?}",
        &report.failures[..report.failures.len().min(5)]
    );
    if per_client != u64::MAX {
        assert_eq!(report.ok, 8 * per_client, "every request answered");
    }
    let pids = pids.lock().unwrap().clone();
    Some((paddock, pids, report.ok))
}

#[test]
fn recycling_after_max_requests_loses_nothing() {
    // A number of requests, not a time: a busy machine makes the test slower, not weaker.
    let (paddock, pids, _) = recycling_under_load(
        "max_requests = 20\nmax_requests_jitter = 5",
        40,
        Duration::from_secs(90),
    );
    assert!(
        pids.len() >= 5,
        "workers were recycled: {} pids",
        pids.len()
    );
    paddock.wait_until("a worker stopped for max_requests", PATIENCE, || {
        paddock
            .log()
            .lines()
            .any(|l| l.contains("worker stopped") && l.contains("max_requests"))
    });
}

/// Recycled builtin workers are forked again from the warm parent.
#[test]
fn recycling_builtin_php_workers_after_max_requests_loses_nothing() {
    let Some((paddock, pids, _)) = recycling_under_load_with(
        Php::Builtin,
        "max_requests = 20\nmax_requests_jitter = 5",
        40,
        Duration::from_secs(90),
    ) else {
        return;
    };
    assert!(
        pids.len() >= 5,
        "workers were recycled: {} pids",
        pids.len()
    );
    assert!(
        !paddock.log().contains("worker exited unexpectedly"),
        "{}",
        paddock.log()
    );
}

#[test]
fn php_cgi_exiting_on_its_own_loses_nothing() {
    let (paddock, pids, _) = recycling_under_load(
        "env = { PHP_FCGI_MAX_REQUESTS = \"10\" }",
        40,
        Duration::from_secs(90),
    );
    assert!(
        pids.len() >= 5,
        "workers were recycled: {} pids",
        pids.len()
    );
    assert!(
        !paddock.log().contains("worker exited unexpectedly"),
        "{}",
        paddock.log()
    );
}

#[test]
fn recycling_on_memory_limit_loses_nothing() {
    // Every php-cgi uses more than 1 MiB: each is retired about once a second.
    // Memory is sampled once a second, so this one needs load for a few seconds.
    let (paddock, _, served) =
        recycling_under_load("max_rss = \"1MiB\"", u64::MAX, Duration::from_secs(4));
    assert!(served > 20, "served {served}");
    // Every php-cgi is over the limit, so the next sample retires one, load or not.
    paddock.wait_until("a worker retired for its memory", PATIENCE, || {
        paddock
            .log()
            .lines()
            .any(|l| l.contains("retiring worker") && l.contains("memory"))
    });
}

/// `builtin = "php"` where PHP's engine cannot run: php-cgi is not installed, the pool's
/// `php_engine` is a program without PHP's engine (the dynamic loader refuses paddock-php's
/// library, status 127), or paddock-php's library was not built next to `paddock`. The pool
/// fails with what to install or build, as a missing php-cgi does. Runs anywhere (a copy of
/// `paddock` alone in a directory has no library next to it).
#[test]
fn builtin_php_without_its_engine_answers_503_naming_the_package() {
    let with_library = harness::php_builtin::paddock_php_library().exists();
    let cases = [
        (
            "php_engine = \"/nonexistent/php-cgi8.2\"",
            true,
            "apt-get install php8.2-cgi",
        ),
        (
            "php_engine = \"/bin/true\"",
            true,
            "apt-get install php8.2-cgi",
        ),
        ("", false, "cargo build --release -p paddock-php"),
    ];
    for (engine, needs_library, hint) in cases {
        if needs_library && !with_library {
            eprintln!("case {engine:?} skipped: paddock-php's library is not built here");
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let binary = if needs_library {
            harness::paddock_bin()
        } else {
            let copy = dir.path().join("paddock");
            std::fs::copy(harness::paddock_bin(), &copy).unwrap();
            copy
        };
        let config = format!(
            "{}\n[sites.test]\nroot = \"{}\"\n[sites.test.scripts]\npool = \"php\"\n[pools.php]\nmode = \"prefork\"\nbuiltin = \"php\"\nworkers = 1\n{engine}\n",
            harness::LISTENERS,
            test_site().display()
        );
        let paddock = Paddock::start_binary(&binary, &config, false);
        paddock.wait_for_log(hint);
        let response = Connection::open(paddock.http)
            .unwrap()
            .request("GET", "/echo.php", &[], b"")
            .unwrap();
        assert_eq!(response.status, 503);
        assert!(response.text().contains(hint), "{}", response.text());
    }
}
