//! paddock in place of nginx's `uwsgi_pass`: a uWSGI server already running with its own master
//! and socket, reached as an `external` pool over the uwsgi protocol, so that a site moves from
//! nginx + uWSGI to paddock without touching its application server.

use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};

use harness::peers::{self, Process};
use harness::wsgi::{apps_dir, python_has, WsgiServer};
use harness::{children_of, listeners_h2c, Paddock};

use crate::support::{curl_ok, json};

#[test]
fn an_external_uwsgi_server_is_reached_over_the_uwsgi_protocol() {
    if !python_has(&["flask"], "python3-flask") || !WsgiServer::Uwsgi.available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("uwsgi.sock");
    let log = dir.path().join("uwsgi.log");
    let mut uwsgi = Process::spawn(
        "uwsgi",
        Command::new("/usr/bin/uwsgi")
            .args(["--plugin", "python3", "--master", "--processes", "2"])
            .args(["--threads", "4", "--module", "app:app", "--need-app"])
            .args(["--die-on-term", "--disable-logging", "--socket"])
            .arg(&socket)
            .current_dir(apps_dir().join("flask_app"))
            .env("ORDER_LOG", dir.path().join("orders.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap()),
    );
    let uwsgi_log = || std::fs::read_to_string(&log).unwrap_or_default();
    peers::wait_until(
        &mut uwsgi,
        || UnixStream::connect(&socket).is_ok(),
        uwsgi_log,
    );
    let config = format!(
        r#"{listeners}
[sites.app]
root = "{root}"

[sites.app.mounts.app]
prefix = "/"
pool = "uwsgi"

[pools.uwsgi]
mode = "external"
socket = "{socket}"
connections = 8
protocol = "uwsgi"
"#,
        listeners = listeners_h2c(),
        root = dir.path().display(),
        socket = socket.display(),
    );
    let paddock = Paddock::start_with(&config, true);
    let workers: Vec<u64> = harness::wait::wait_for("uWSGI's two workers", || {
        Some(children_of(uwsgi.pid()))
            .filter(|children| children.len() == 2)
            .map(|children| children.iter().map(|&(pid, _)| u64::from(pid)).collect())
    });
    for option in ["--http1.1", "--http2-prior-knowledge"] {
        let item = json(&curl_ok(&paddock, &[option, &paddock.url("/api/items/42")]));
        assert_eq!(item["name"], "item 42", "{option}");
        let pid = item["pid"].as_u64().unwrap();
        assert!(
            workers.contains(&pid),
            "{option}: answered by {pid}, not one of uWSGI's workers {workers:?}"
        );
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
            uwsgi_log()
        );
    }
    // paddock started no worker of its own for the pool.
    assert!(paddock.worker_pids("uwsgi").is_empty());
}
