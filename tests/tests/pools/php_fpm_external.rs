//! paddock as a FastCGI client of a server it does not start: php-fpm (Debian package) configured
//! as an `external` pool.

use harness::observe::{scrape, value};
use harness::peers::PhpFpm;
use harness::{children_of, test_site, Hold, Paddock};
use serde_json::Value;

/// paddock in front of `fpm` as an external pool of 4 connections, with `extra` pool settings.
fn paddock_in_front_of(fpm: &PhpFpm, extra: &str) -> Paddock {
    Paddock::start(&format!(
        r#"
[sites.test]
root = "{root}"
index = ["index.php"]

[sites.test.scripts]
pool = "fpm"
front_controller = "/index.php"

[pools.fpm]
mode = "external"
socket = "{socket}"
connections = 4
{extra}
"#,
        root = test_site().display(),
        socket = fpm.socket.display(),
    ))
}

fn json(paddock: &Paddock, args: &[&str]) -> Value {
    let output = paddock.curl(args);
    assert!(output.status.success(), "curl: {output:?}");
    let body = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&body).unwrap_or_else(|e| {
        panic!("not JSON ({e}): {body}\n{}", paddock.log());
    })
}

#[test]
fn php_pages_are_served_by_an_external_php_fpm() {
    let dir = tempfile::tempdir().unwrap();
    let fpm = PhpFpm::start(dir.path(), 2, "");
    let paddock = paddock_in_front_of(&fpm, "");
    let fpm_children: Vec<u32> = children_of(fpm.pid())
        .into_iter()
        .map(|(pid, _)| pid)
        .collect();
    assert_eq!(fpm_children.len(), 2, "pm static 2: {fpm_children:?}");

    let seen = json(&paddock, &[&paddock.url("/echo.php/extra?x=1&y=%C3%A9")]);
    assert_eq!(seen["get"]["x"], "1");
    assert_eq!(seen["get"]["y"], "é");
    assert_eq!(seen["server"]["PATH_INFO"], "/extra");
    assert_eq!(seen["server"]["SCRIPT_NAME"], "/echo.php");
    assert_eq!(
        seen["server"]["REQUEST_URI"],
        "/echo.php/extra?x=1&y=%C3%A9"
    );
    assert!(
        fpm_children.contains(&(seen["pid"].as_u64().unwrap() as u32)),
        "answered by a php-fpm child: {} not in {fpm_children:?}",
        seen["pid"]
    );
    // Not one of paddock's own children: paddock starts no worker for an external pool.
    assert!(paddock.worker_pids("php-cgi").is_empty());

    let seen = json(
        &paddock,
        &[
            "-d",
            "name=paddock&list[]=a&list[]=b",
            &paddock.https_url("/echo.php"),
        ],
    );
    assert_eq!(seen["post"]["name"], "paddock");
    assert_eq!(seen["post"]["list"], serde_json::json!(["a", "b"]));
    assert_eq!(seen["server"]["HTTPS"], "on");
    assert_eq!(seen["server"]["REQUEST_METHOD"], "POST");

    // The front controller route works through the external pool too.
    let output = paddock.curl(&["-i", &paddock.url("/no/such/page")]);
    let raw = String::from_utf8_lossy(&output.stdout);
    let (status, _, body) = harness::split_response(&raw);
    assert_eq!(
        status,
        200,
        "{raw}\ncurl: {output:?}\n{}\nphp-fpm: {}",
        paddock.log(),
        fpm.log()
    );
    assert_eq!(body, "front controller: /no/such/page\n");
}

/// An external server that is down is not paddock's worker to give up on: a request that finds
/// its socket missing gets 502 after trying again (counted as retries), and once the server is
/// up the pool serves at once. Checked on a streamed route, whose path once marked the external
/// pool's only entry dead (every later request then waited out the queue timeout for a 503).
#[test]
fn an_external_server_that_is_down_is_retried_and_used_again_once_up() {
    let dir = tempfile::tempdir().unwrap();
    // Where PhpFpm::start will listen; nothing there yet.
    let socket = dir.path().join("php-fpm.sock");
    let paddock = Paddock::start(&format!(
        r#"
[sites.test]
root = "{root}"
index = ["index.php"]

[sites.test.scripts]
pool = "fpm"
front_controller = "/index.php"
unbuffered = ["/stream.php"]

[pools.fpm]
mode = "external"
socket = "{socket}"
connections = 2
"#,
        root = test_site().display(),
        socket = socket.display(),
    ));
    let output = paddock.curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &paddock.url("/stream.php?chunks=1"),
    ]);
    let code = String::from_utf8_lossy(&output.stdout).into_owned();
    let metrics = scrape(paddock.admin);
    let unreachable = [("pool", "fpm"), ("reason", "unreachable")];
    let retries = value(&metrics, "paddock_worker_retries_total", &unreachable);
    let admissions = value(
        &metrics,
        "paddock_queue_wait_seconds_count",
        &[("pool", "fpm")],
    );
    assert!(
        code == "502" && retries > 0.0 && admissions > 0.0,
        "status {code} (want 502), unreachable retries {retries}, queue admissions {admissions} \
         (want both counted); {output:?}"
    );

    let _fpm = PhpFpm::start(dir.path(), 1, "");
    let output = paddock.curl(&[&paddock.url("/stream.php?chunks=2")]);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "chunk 1\nchunk 2\ndone\n",
        "{output:?}\n{}",
        paddock.log()
    );
}

/// paddock with `connections = 4` in front of a php-fpm `pm = static` of 2, plus `extra` pool
/// settings: 4 requests are sent at once and held in the application; once all 4 hold a slot
/// (two of them running in php-fpm's children, two waiting in its backlog), they are released.
/// Returns their statuses and the logs.
fn four_at_once_to_two_children(dir: &std::path::Path, extra: &str) -> (Vec<u16>, String) {
    let fpm = PhpFpm::start(dir, 2, "");
    let paddock = paddock_in_front_of(&fpm, extra);
    let hold = Hold::new();
    let url = paddock.url(&hold.path());
    let codes = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| paddock.curl_status(&[&url])))
            .collect();
        paddock.wait_pool("fpm", "all 4 requests on a connection", |pool| {
            pool["idle_slots"].as_u64() == Some(0)
        });
        hold.release();
        clients
            .into_iter()
            .map(|client| client.join().unwrap())
            .collect()
    });
    (codes, format!("{}\nphp-fpm: {}", paddock.log(), fpm.log()))
}

/// More connections than the external server has processes (paddock's default of 4 against a
/// php-fpm `pm = static` of 2): requests that arrive together are all answered. By default an
/// external pool keeps no connection, so a php-fpm child is free again after each request.
#[test]
fn more_connections_than_php_fpm_children_lose_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let (codes, logs) = four_at_once_to_two_children(dir.path(), "");
    assert_eq!(codes, [200; 4], "{logs}");
}

/// Why kept connections are not the default for external pools: php-fpm serves a kept
/// connection with one child until paddock closes it, so with both children held by idle kept
/// connections the other requests wait in php-fpm's backlog until their deadline. (10 s: the
/// two that run must finish inside it however slowly a loaded machine starts the four clients.)
#[test]
fn kept_connections_to_fewer_php_fpm_children_leave_requests_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let (codes, logs) = four_at_once_to_two_children(
        dir.path(),
        "keep_connections = true\nrequest_timeout = \"10s\"",
    );
    assert_eq!(
        codes.iter().filter(|&&c| c == 200).count(),
        2,
        "{codes:?}\n{logs}"
    );
    assert_eq!(
        codes.iter().filter(|&&c| c == 504).count(),
        2,
        "{codes:?}\n{logs}"
    );
}
