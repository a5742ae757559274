//! A request whose client goes away while it waits in the pool's queue never reaches a worker,
//! over HTTP/1.1 and HTTP/2.

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
