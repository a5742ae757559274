//! Threaded pools: why prefork exists (a non-thread-safe application corrupts its state when run
//! threaded, never when prefork), and the built-in CGI runner serving shell, Perl and Python
//! scripts with several requests per process, next to a PHP pool on the same site.

use std::time::Duration;

use harness::client::{load_bounded, Connection};
use harness::{require_php_cgi, test_site, Paddock, PATIENCE};

fn unsafe_app_site(mode: &str) -> (tempfile::TempDir, String) {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("app.fcgi"), "").unwrap();
    let app = env!("CARGO_BIN_EXE_fcgi-unsafe");
    let pool = match mode {
        "prefork" => format!("mode = \"prefork\"\ncommand = [\"{app}\", \"--threads\", \"1\"]\nworkers = 8"),
        _ => format!("mode = \"threaded\"\nthreads = 8\ncommand = [\"{app}\", \"--threads\", \"8\"]\nworkers = 1"),
    };
    let config = format!(
        "[sites.app]\nroot = \"{}\"\n[sites.app.scripts]\npool = \"app\"\nextensions = [\"fcgi\"]\nfront_controller = \"/app.fcgi\"\n[pools.app]\n{pool}\n",
        root.path().display()
    );
    (root, config)
}

/// Runs 64 concurrent clients against the non-thread-safe app; returns (answers, corrupted).
fn hammer_unsafe_app(mode: &str) -> (u64, u64) {
    let (_root, config) = unsafe_app_site(mode);
    let paddock = Paddock::start(&config);
    let corrupted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = corrupted.clone();
    // 64 concurrent clients, 4 requests each: a fixed amount of work, however busy the machine.
    let report = load_bounded(
        paddock.http,
        64,
        Duration::from_secs(60),
        4,
        |_, _| ("GET".into(), "/anything".into(), Vec::new()),
        move |r| {
            if r.text().contains("corrupted=1") {
                seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            r.status == 200
        },
    );
    assert!(
        report.failures.is_empty(),
        "{:?}",
        &report.failures[..report.failures.len().min(3)]
    );
    (
        report.ok,
        corrupted.load(std::sync::atomic::Ordering::Relaxed),
    )
}

#[test]
fn non_thread_safe_code_is_safe_in_prefork_and_corrupts_when_threaded() {
    let (answers, corrupted) = hammer_unsafe_app("prefork");
    assert_eq!(answers, 256, "prefork answered everything");
    assert_eq!(
        corrupted, 0,
        "prefork: one request per process, so no request sees another's state"
    );
    let (answers, corrupted) = hammer_unsafe_app("threaded");
    assert_eq!(answers, 256, "threaded answered everything");
    assert!(
        corrupted > 0,
        "threaded: concurrent requests share the global (so this test can fail)"
    );
}

fn cgi_and_php_site(script_timeout: &str) -> String {
    format!(
        r#"
[sites.test]
root = "{root}"
index = ["index.php"]

[sites.test.scripts]
pool = "php"

[sites.test.routes.cgi]
prefix = "/cgi-bin/"
pool = "cgi"

[pools.php]
mode = "prefork"
command = ["php-cgi"]
workers = 1

[pools.cgi]
mode = "threaded"
builtin = "cgi"
threads = 4
workers = 1
script_timeout = "{script_timeout}"
"#,
        root = test_site().display()
    )
}

#[test]
fn cgi_runner_serves_shell_perl_and_python_next_to_php() {
    require_php_cgi();
    let paddock = Paddock::start(&cgi_and_php_site("10s"));
    let mut conn = Connection::open(paddock.http).unwrap();

    let response = conn
        .request("POST", "/cgi-bin/env.sh/more?x=1", &[], b"posted-bytes")
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.text(),
        "method=POST query=x=1 script=/cgi-bin/env.sh path_info=/more length=12\nbody=posted-bytes"
    );
    let response = conn
        .request("POST", "/cgi-bin/hello.py", &[], b"name=Ada")
        .unwrap();
    assert_eq!(response.status, 201);
    assert_eq!(response.text(), "hello Ada from python\n");
    let response = conn.request("GET", "/cgi-bin/noexec.sh", &[], b"").unwrap();
    assert_eq!(response.status, 403);
    let response = conn
        .request("GET", "/cgi-bin/missing.sh", &[], b"")
        .unwrap();
    assert_eq!(response.status, 404);
    // PHP on the same site goes to the php pool.
    let response = conn.request("GET", "/sleep.php?ms=1", &[], b"").unwrap();
    assert_eq!(response.status, 200);
    assert!(response.text().starts_with("slept 1 ms"));
    // Script stderr reaches the log (which the harness reads through a pipe: awaited).
    paddock.wait_for_log("env.sh ran");

    // Four slow Perl requests run at once in the single runner process. Each runs 3 s, so that
    // they overlap even when a loaded machine is slow to start the four client threads.
    let addr = paddock.http;
    let runs: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                Connection::open(addr)
                    .unwrap()
                    .request("GET", "/cgi-bin/slow.pl?ms=3000", &[], b"")
                    .unwrap()
            })
        })
        .collect();
    let answers: Vec<_> = runs.into_iter().map(|r| r.join().unwrap()).collect();
    let pids: std::collections::HashSet<_> = answers
        .iter()
        .map(|r| r.header("x-runner-pid").unwrap().to_string())
        .collect();
    assert_eq!(pids.len(), 1, "one threaded worker served all four");
    let windows: Vec<(f64, f64)> = answers
        .iter()
        .map(|r| {
            let text = r.text();
            let value = |key: &str| -> f64 {
                text.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(key))
                    .unwrap()
                    .parse()
                    .unwrap()
            };
            (value("start="), value("end="))
        })
        .collect();
    let latest_start = windows.iter().map(|w| w.0).fold(f64::MIN, f64::max);
    let earliest_end = windows.iter().map(|w| w.1).fold(f64::MAX, f64::min);
    assert!(
        latest_start < earliest_end,
        "the four scripts overlapped in time: {windows:?}"
    );
}

#[test]
fn cgi_runner_kills_a_script_past_its_timeout() {
    require_php_cgi();
    let paddock = Paddock::start(&cgi_and_php_site("500ms"));
    // A 504 (not the script's 200 after 20 s) and the kill in the log are the timeout's.
    let response = Connection::open(paddock.http)
        .unwrap()
        .request("GET", "/cgi-bin/slow.pl?ms=20000", &[], b"")
        .unwrap();
    assert_eq!(response.status, 504, "{}", response.text());
    paddock.wait_until("the kill to be logged", PATIENCE, || {
        paddock.log().contains("killed after")
    });
    // The runner itself keeps serving.
    let response = Connection::open(paddock.http)
        .unwrap()
        .request("GET", "/cgi-bin/env.sh", &[], b"")
        .unwrap();
    assert_eq!(response.status, 200);
}

#[test]
fn a_cgi_local_redirect_is_served_internally_as_a_get() {
    require_php_cgi();
    let paddock = Paddock::start(&cgi_and_php_site("10s"));
    let mut conn = Connection::open(paddock.http).unwrap();
    let response = conn
        .request("POST", "/cgi-bin/moved.sh", &[], b"dropped-body")
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.text(),
        "method=GET query=from=moved script=/cgi-bin/env.sh path_info=/redirected length=\nbody="
    );
}
