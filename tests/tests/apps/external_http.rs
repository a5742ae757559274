//! paddock in place of nginx's `proxy_pass` with upstream `keepalive`: Debian's gunicorn
//! (gthread workers, its own master, a Unix socket) reached as an `external` pool over HTTP/1.1.
//! gunicorn frames a streamed answer in chunks, which paddock decodes on the way.

use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};

use harness::peers::{self, Process};
use harness::wsgi::{apps_dir, python_has};
use harness::{children_of, listeners_h2c, Paddock};

use crate::support::{curl_ok, json};

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
    let mut gunicorn = Process::spawn(
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
            .current_dir(apps_dir().join("flask_app"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap()),
    );
    let gunicorn_log = || std::fs::read_to_string(&log).unwrap_or_default();
    peers::wait_until(
        &mut gunicorn,
        || UnixStream::connect(&socket).is_ok(),
        gunicorn_log,
    );
    let config = format!(
        r#"{listeners}
[sites.app]
root = "{root}"

[sites.app.mounts.app]
prefix = "/"
pool = "gunicorn"
unbuffered = ["/stream"]

[pools.gunicorn]
mode = "external"
socket = "{socket}"
connections = 8
protocol = "http"
"#,
        listeners = listeners_h2c(),
        root = dir.path().display(),
        socket = socket.display(),
    );
    let paddock = Paddock::start_with(&config, true);
    let workers: Vec<u64> = harness::wait::wait_for("gunicorn's two workers", || {
        Some(children_of(gunicorn.pid()))
            .filter(|children| children.len() == 2)
            .map(|children| children.iter().map(|&(pid, _)| u64::from(pid)).collect())
    });
    for option in ["--http1.1", "--http2-prior-knowledge"] {
        let item = json(&curl_ok(&paddock, &[option, &paddock.url("/api/items/42")]));
        assert_eq!(item["name"], "item 42", "{option}");
        let pid = item["pid"].as_u64().unwrap();
        assert!(
            workers.contains(&pid),
            "{option}: answered by {pid}, not one of gunicorn's workers {workers:?}"
        );
        let client = json(&curl_ok(&paddock, &[option, &paddock.url("/api/client")]));
        assert_eq!(client["remote_addr"], "127.0.0.1", "{option}: {client}");
        assert_eq!(client["scheme"], "http", "{option}: {client}");
        let thanks = curl_ok(
            &paddock,
            &[
                option,
                "--data-urlencode",
                "name=Ana & <Bo>",
                "-d",
                "colour=red",
                &paddock.url("/form"),
            ],
        );
        assert!(
            thanks.contains("Thanks, Ana &amp; &lt;Bo&gt;!"),
            "{option}: {thanks}\n{}",
            gunicorn_log()
        );
        // gunicorn sends a generator's output in chunks: decoded, whole, in order.
        let streamed = curl_ok(&paddock, &[option, &paddock.url("/stream?chunks=4")]);
        let expected: String = (0..4).map(|i| format!("chunk {i} of 4\n")).collect();
        assert_eq!(streamed, expected, "{option}");
    }
    // paddock started no worker of its own for the pool.
    assert!(paddock.worker_pids("gunicorn").is_empty());
}
