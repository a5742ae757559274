//! A request whose client goes away while it waits in the pool's queue never reaches a worker,
//! and one whose client goes away while its worker runs it leaves nothing behind for the next
//! request, over HTTP/1.1 and HTTP/2.

use std::process::Stdio;
use std::thread;

use harness::{php_site, require_php_cgi, running, test_site, Hold, Paddock, PATIENCE};

#[test]
fn queued_request_abandoned_by_its_client_never_runs() {
    require_php_cgi();
    let paddock = Paddock::start(&php_site(&test_site(), 1, ""));
    let dir = tempfile::tempdir().unwrap();
    for (name, version) in [("h1", "--http1.1"), ("h2", "--http2")] {
        // Occupy the only worker until this test lets it go.
        let hold = Hold::new();
        let mut busy = paddock.curl_command(&[&paddock.https_url(&hold.path())]);
        let busy = thread::spawn(move || busy.output().unwrap());
        paddock.wait_pool("php", "the held worker", |p| p["busy_slots"] == 1);
        // This one queues behind it, and its client gives up after 1 s.
        let mark = dir.path().join(format!("{name}.mark"));
        let url = paddock.https_url(&format!("/mark.php?file={}", mark.display()));
        let gave_up = paddock.curl(&[version, "--max-time", "1", &url]);
        assert_eq!(
            gave_up.status.code(),
            Some(28),
            "curl timed out: {gave_up:?}"
        );
        // The queue lets it go before the worker is free again.
        paddock.wait_pool("php", "the abandoned request to leave the queue", |p| {
            p["waiting"] == 0
        });
        hold.release();
        busy.join().unwrap();
        // The worker is free again (and idle: nothing else was queued); the abandoned request
        // must not have run on it.
        paddock.wait_pool("php", "the worker back to idle", |p| p["idle_slots"] == 1);
        assert!(
            !mark.exists(),
            "{name}: the abandoned request reached a worker"
        );
        // The same request from a patient client does run.
        let ran = paddock.curl(&[version, &url]);
        assert_eq!(String::from_utf8_lossy(&ran.stdout), "marked\n");
        assert!(mark.exists());
    }
}

#[test]
fn answer_to_an_abandoned_request_never_reaches_the_next_client() {
    require_php_cgi();
    let paddock = Paddock::start(&php_site(&test_site(), 1, ""));
    for (name, version) in [("h1", "--http1.1"), ("h2", "--http2")] {
        // The client gives up while the only worker runs its script: the worker still answers
        // it, later, on the connection the front end had sent it on.
        let hold = abandon_held_request(&paddock, &[version]);
        // The next request (on the same worker) must get its own answer, not the abandoned one,
        // whether it queues behind the abandoned script or is sent to the worker while the
        // script still runs there; the script ends (as a sleep would) once it is one or the other.
        let mut next =
            paddock.curl_command(&[version, &paddock.https_url(&format!("/echo.php?{name}"))]);
        let next = thread::spawn(move || next.output().unwrap());
        paddock.wait_until(
            "the next request queued or sent to the worker",
            PATIENCE,
            || {
                let pool = paddock.pool_status("php");
                next.is_finished() || pool["waiting"] == 1 || running(&pool, "/echo.php")
            },
        );
        hold.release();
        assert_eq!(echoed_query(name, &next.join().unwrap()), name);
    }
}

/// Starts a request (curl with `args`) that holds the pool's only worker, waits until it does,
/// then kills its client. The worker goes on running the script until the hold is released.
fn abandon_held_request(paddock: &Paddock, args: &[&str]) -> Hold {
    let hold = Hold::new();
    let url = paddock.https_url(&hold.path());
    let mut gave_up = paddock
        .curl_command(&[args, &[url.as_str()]].concat())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    paddock.wait_pool("php", "the held worker", |p| p["busy_slots"] == 1);
    gave_up.kill().unwrap();
    gave_up.wait().unwrap();
    hold
}

/// The QUERY_STRING echo.php saw, from curl's output of it (`name` labels a panic).
fn echoed_query(name: &str, output: &std::process::Output) -> serde_json::Value {
    let body = String::from_utf8_lossy(&output.stdout);
    let seen: serde_json::Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("{name}: not echo.php's answer ({e}): {body}"));
    seen["server"]["QUERY_STRING"].clone()
}

/// How many times the front end has logged that a client left a request its worker runs.
fn abandoned_count(paddock: &Paddock) -> usize {
    paddock
        .log()
        .matches("a client went away during its request")
        .count()
}

#[test]
fn a_worker_still_running_an_abandoned_request_takes_no_other_until_it_is_done() {
    require_php_cgi();
    let paddock = Paddock::start(&php_site(&test_site(), 1, ""));
    for (round, (name, version)) in [("h1", "--http1.1"), ("h2", "--http2")]
        .into_iter()
        .enumerate()
    {
        let hold = abandon_held_request(&paddock, &[version]);
        paddock.wait_until("the front end to see the client go", PATIENCE, || {
            abandoned_count(&paddock) == round + 1
        });
        // php-cgi is still running the script: the slot stays taken, so the next request
        // waits in the front end's queue (visible, timed, counted) rather than unseen in the
        // worker's socket backlog.
        let mut next =
            paddock.curl_command(&[version, &paddock.https_url(&format!("/echo.php?{name}"))]);
        let next = thread::spawn(move || next.output().unwrap());
        let pool = paddock.wait_pool("php", "the next request queued", |p| p["waiting"] == 1);
        assert_eq!(pool["busy_slots"], 1, "{name}: {pool}");
        assert!(!running(&pool, "/echo.php"), "{name}: {pool}");
        hold.release();
        assert_eq!(echoed_query(name, &next.join().unwrap()), name);
        paddock.wait_pool("php", "the worker idle again", |p| p["idle_slots"] == 1);
    }
}

#[test]
fn a_worker_stuck_in_an_abandoned_request_is_killed_at_its_deadline() {
    require_php_cgi();
    let paddock = Paddock::start(&php_site(&test_site(), 1, "request_timeout = \"2s\""));
    let before = paddock.wait_pool("php", "one worker", |p| p["idle_slots"] == 1);
    let pid = before["processes"][0]["pid"].clone();
    let _held_to_the_end = abandon_held_request(&paddock, &[]);
    // Never released: at the request's deadline the worker is replaced, and serves again.
    paddock.wait_for_log("ran past its deadline; killing the worker");
    paddock.wait_pool("php", "a new worker, idle", |p| {
        p["idle_slots"] == 1 && p["processes"][0]["pid"] != pid
    });
    let ran = paddock.curl(&[&paddock.https_url("/echo.php?after")]);
    assert!(String::from_utf8_lossy(&ran.stdout).contains("after"));
}
