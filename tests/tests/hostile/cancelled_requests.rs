//! A request whose client goes away while it waits in the pool's queue never reaches a worker,
//! and one whose client goes away while its worker runs it leaves nothing behind for the next
//! request, over HTTP/1.1 and HTTP/2.

use std::thread;
use std::time::Duration;

use harness::{php_site, require_php_cgi, test_site, Paddock};

#[test]
fn queued_request_abandoned_by_its_client_never_runs() {
    require_php_cgi();
    let paddock = Paddock::start(&php_site(&test_site(), 1, ""));
    let dir = tempfile::tempdir().unwrap();
    for (name, version) in [("h1", "--http1.1"), ("h2", "--http2")] {
        // Occupy the only worker.
        let busy_url = paddock.https_url("/sleep.php?ms=2500");
        let busy = {
            let args = vec!["-k".to_string(), busy_url];
            let paddock_curl = harness_curl(&paddock);
            thread::spawn(move || paddock_curl(&args))
        };
        thread::sleep(Duration::from_millis(400));
        // This one queues behind it, and its client gives up after 1 s.
        let mark = dir.path().join(format!("{name}.mark"));
        let url = paddock.https_url(&format!("/mark.php?file={}", mark.display()));
        let gave_up = paddock.curl(&[version, "--max-time", "1", &url]);
        assert_eq!(
            gave_up.status.code(),
            Some(28),
            "curl timed out: {gave_up:?}"
        );
        busy.join().unwrap();
        // The worker is free again; the abandoned request must not have run on it.
        thread::sleep(Duration::from_millis(500));
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
        let gave_up = paddock.curl(&[
            version,
            "--max-time",
            "0.5",
            &paddock.https_url("/sleep.php?ms=1500"),
        ]);
        assert_eq!(gave_up.status.code(), Some(28), "{name}: {gave_up:?}");
        // The next request (on the same worker) must get its own answer, not that one.
        let next = paddock.curl(&[version, &paddock.https_url(&format!("/echo.php?{name}"))]);
        let body = String::from_utf8_lossy(&next.stdout);
        let seen: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{name}: not echo.php's answer ({e}): {body}"));
        assert_eq!(seen["server"]["QUERY_STRING"], name);
    }
}

/// A curl runner that can move into a thread.
fn harness_curl(paddock: &Paddock) -> impl Fn(&[String]) -> std::process::Output + Send + 'static {
    let port = paddock.https.port();
    move |args: &[String]| {
        std::process::Command::new("curl")
            .args(["-sS", "-k", "--max-time", "30", "--resolve"])
            .arg(format!("localhost:{port}:127.0.0.1"))
            .args(args)
            .output()
            .unwrap()
    }
}
