//! paddock in place of nginx's `proxy_pass` with upstream `keepalive`: Debian's gunicorn
//! (gthread workers, its own master, a Unix socket) reached as an `external` pool over HTTP/1.1.
//! gunicorn frames a streamed answer in chunks, which paddock decodes on the way.

use std::process::Command;

use harness::wsgi::{apps_dir, python_has};

use crate::support::{assert_serves_the_app, curl_ok, external_site, json, start_listening};

#[test]
fn an_external_gunicorn_is_reached_over_http() {
    if !python_has(&["flask"], "python3-flask") {
        return;
    }
    if !std::path::Path::new("/usr/bin/gunicorn").exists() {
        eprintln!("SKIPPED: needs Debian's gunicorn (scripts/test.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("gunicorn.sock");
    let log = dir.path().join("gunicorn.log");
    let gunicorn = start_listening(
        "gunicorn",
        Command::new("/usr/bin/gunicorn")
            .args([
                "--worker-class",
                "gthread",
                "--workers",
                "2",
                "--threads",
                "4",
            ])
            .arg("--bind")
            .arg(format!("unix:{}", socket.display()))
            // The app trusts paddock's X-Forwarded-* headers through werkzeug's ProxyFix.
            .arg("behind_proxy:app")
            .current_dir(apps_dir().join("flask_app")),
        &socket,
        &log,
    );
    let (paddock, workers) = external_site(&gunicorn, "gunicorn", &socket, "http", dir.path());
    for option in ["--http1.1", "--http2-prior-knowledge"] {
        assert_serves_the_app(&paddock, &workers, option, &log);
        let client = json(&curl_ok(&paddock, &[option, &paddock.url("/api/client")]));
        assert_eq!(client["remote_addr"], "127.0.0.1", "{option}: {client}");
        assert_eq!(client["scheme"], "http", "{option}: {client}");
        // gunicorn sends a generator's output in chunks: decoded, whole, in order.
        let streamed = curl_ok(&paddock, &[option, &paddock.url("/stream?chunks=4")]);
        let expected: String = (0..4).map(|i| format!("chunk {i} of 4\n")).collect();
        assert_eq!(streamed, expected, "{option}");
    }
    // paddock started no worker of its own for the pool.
    assert!(paddock.worker_pids("gunicorn").is_empty());
}
