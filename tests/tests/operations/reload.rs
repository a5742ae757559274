//! Configuration reload (SIGHUP) under load: nothing is dropped, old workers go, resources return
//! to baseline; and bad reloads keep the running configuration.

use std::process::Command;
use std::time::Duration;

use harness::client::{get_in_background, mixed_load, Connection};
use harness::observe::{scrape, value};
use harness::{
    listeners_with_certificate, open_fds as fd_count, require_php_cgi, test_site, Hold, Paddock,
    PATIENCE,
};

fn config(php_workers: u32, with_cgi: bool) -> String {
    let cgi = if with_cgi {
        "[sites.test.routes.cgi]\nprefix = \"/cgi-bin/\"\npool = \"cgi\"\n\n[pools.cgi]\nmode = \"threaded\"\nbuiltin = \"cgi\"\nthreads = 2\nworkers = 1\n"
    } else {
        ""
    };
    // h2load does not retry the streams a GOAWAY turns away, so the per-connection request limit
    // (which ends HTTP/2 connections with one) is raised out of the way of this 30 s load.
    format!(
        "[limits]\nmax_requests_per_connection = 1000000\n\n[sites.test]\nroot = \"{}\"\nindex = [\"index.php\"]\n\n[sites.test.scripts]\npool = \"php\"\nfront_controller = \"/index.php\"\n\n[pools.php]\nmode = \"prefork\"\ncommand = [\"php-cgi\"]\nworkers = {php_workers}\n{cgi}",
        test_site().display()
    )
}

#[test]
fn fifteen_reloads_under_https_load_drop_nothing() {
    require_php_cgi();
    let paddock = Paddock::start(&config(2, false));
    let master = paddock.pid();
    let frontend = paddock.frontend_pid();
    // Warm every worker connection so the baseline includes them.
    for _ in 0..4 {
        Connection::open(paddock.http)
            .unwrap()
            .request("GET", "/sleep.php?ms=1", &[], b"")
            .unwrap();
    }
    let baseline = (
        paddock.children().len(),
        fd_count(master),
        fd_count(frontend),
    );

    // A long request, on a worker before the first reload and held there until after the third,
    // must complete.
    let addr = paddock.http;
    let hold = Hold::new();
    let long = get_in_background(addr, &hold.path());
    paddock.wait_for_request("php", "/hold.php");

    // HTTPS load (HTTP/2, h2load) and plain keep-alive load, on static and PHP routes, for 30 s.
    let https = paddock.https.port();
    let h2load = std::thread::spawn(move || {
        Command::new("h2load")
            .args(["-D", "30", "-c", "4", "-m", "2"])
            .arg(format!("https://localhost:{https}/static/hello.txt"))
            .arg(format!("https://localhost:{https}/sleep.php?ms=1"))
            .output()
            .expect("h2load (apt-get install nghttp2-client)")
    });
    let plain = std::thread::spawn(move || mixed_load(addr, 4, Duration::from_secs(30)));
    for i in 0..15 {
        std::thread::sleep(Duration::from_millis(1800));
        if i % 2 == 0 {
            paddock.reload(&config(3, true));
        } else {
            paddock.reload(&config(2, false));
        }
        if i == 2 {
            paddock.wait_until("the third reload", PATIENCE, || {
                paddock.log().matches("configuration reloaded").count() == 3
            });
            hold.release();
        }
    }
    let h2 = h2load.join().unwrap();
    let report = plain.join().unwrap();
    let long = long.join().unwrap().unwrap();

    let h2_out = String::from_utf8_lossy(&h2.stdout);
    let summary = h2_out
        .lines()
        .find(|l| l.starts_with("requests:"))
        .unwrap_or("");
    let codes = h2_out
        .lines()
        .find(|l| l.starts_with("status codes:"))
        .unwrap_or("");
    assert!(summary.contains(" 0 failed, 0 errored"), "h2load: {h2_out}");
    assert!(codes.contains(" 0 4xx, 0 5xx"), "h2load: {h2_out}");
    assert!(
        report.failures.is_empty(),
        "{:?}",
        &report.failures[..report.failures.len().min(5)]
    );
    assert!(report.ok > 100, "plain requests served: {}", report.ok);
    assert_eq!(long.status, 200, "the long request survived three reloads");
    assert!(long.text().starts_with("released"));
    paddock.wait_until("the 15th reload", PATIENCE, || {
        paddock.log().matches("configuration reloaded").count() >= 15
    });
    let log = paddock.log();
    assert_eq!(log.matches("configuration reloaded").count(), 15, "{log}");
    assert!(!log.contains("configuration reload failed"));

    // The last reload (the 15th) set php to 3 workers plus the CGI pool: the CGI route works.
    let cgi = Connection::open(paddock.http)
        .unwrap()
        .request("GET", "/cgi-bin/env.sh", &[], b"")
        .unwrap();
    assert_eq!(cgi.status, 200);
    // Back to the first configuration: the same processes and descriptors as before.
    paddock.reload(&config(2, false));
    paddock.wait_until("old workers to be gone", PATIENCE, || {
        paddock.worker_pids("php-cgi").len() == 2 && paddock.children().len() == baseline.0
    });
    for _ in 0..4 {
        Connection::open(paddock.http)
            .unwrap()
            .request("GET", "/sleep.php?ms=1", &[], b"")
            .unwrap();
    }
    let after = (
        paddock.children().len(),
        fd_count(master),
        fd_count(frontend),
    );
    println!("baseline (processes, master fds, front-end fds) {baseline:?}, after {after:?}; h2load: {summary}; plain: {} ok", report.ok);
    assert_eq!(after.0, baseline.0);
    assert!(
        after.1 <= baseline.1 + 2,
        "master fds {baseline:?} -> {after:?}"
    );
    assert!(
        after.2 <= baseline.2 + 4,
        "front-end fds {baseline:?} -> {after:?}"
    );
}

#[test]
fn bad_reloads_keep_the_running_configuration() {
    require_php_cgi();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = harness::self_signed_certificate(dir.path(), "site");
    let listeners = listeners_with_certificate(&cert, &key);
    let good = format!("{listeners}{}", config(1, false));
    let paddock = Paddock::start_with(&good, true);
    let fingerprint = || {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "openssl s_client -connect 127.0.0.1:{} -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256",
                paddock.https.port()
            ))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let before = fingerprint();
    assert!(before.contains("Fingerprint"), "{before}");
    let config_path = paddock.dir.path().join("paddock.toml");
    let original = std::fs::read_to_string(&config_path).unwrap();

    let attempts = [
        (
            "a syntax error",
            original.replace("[pools.php]", "[pools.php"),
        ),
        (
            "an unknown key",
            original.replace("workers = 1", "workers = 1\nwrokers = 2"),
        ),
    ];
    for (n, (what, text)) in attempts.iter().enumerate() {
        std::fs::write(&config_path, text).unwrap();
        harness::signal(paddock.pid(), "HUP");
        paddock.wait_until(what, PATIENCE, || {
            paddock.log().matches("configuration reload failed").count() == n + 1
        });
    }
    let log = paddock.log();
    assert!(
        log.contains("paddock.toml:"),
        "the error names the file and line: {log}"
    );
    assert!(log.contains("pools.php.wrokers"), "the error names the key");

    // A certificate that no longer loads: the reload fails, the old certificate stays.
    std::fs::write(&config_path, &original).unwrap();
    let good_cert = std::fs::read(&cert).unwrap();
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    harness::signal(paddock.pid(), "HUP");
    paddock.wait_until("the bad certificate reload", PATIENCE, || {
        paddock.log().matches("configuration reload failed").count() == 3
    });
    assert_eq!(fingerprint(), before, "the old certificate is still served");
    let response = Connection::open(paddock.http)
        .unwrap()
        .request("GET", "/sleep.php?ms=1", &[], b"")
        .unwrap();
    assert_eq!(response.status, 200, "the old configuration keeps serving");
    let metrics = scrape(paddock.admin);
    assert_eq!(
        value(
            &metrics,
            "paddock_config_reloads_total",
            &[("result", "failure")]
        ),
        3.0
    );
    assert_eq!(
        value(&metrics, "paddock_config_last_reload_successful", &[]),
        0.0
    );

    // A good reload afterwards succeeds and is counted.
    std::fs::write(&cert, good_cert).unwrap();
    harness::signal(paddock.pid(), "HUP");
    paddock.wait_until("a good reload", PATIENCE, || {
        paddock.log().contains("configuration reloaded")
    });
    paddock.wait_until("the success to be counted", PATIENCE, || {
        value(
            &scrape(paddock.admin),
            "paddock_config_reloads_total",
            &[("result", "success")],
        ) == 1.0
    });
}
