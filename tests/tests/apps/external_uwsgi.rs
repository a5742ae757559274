//! paddock in place of nginx's `uwsgi_pass`: a uWSGI server already running with its own master
//! and socket, reached as an `external` pool over the uwsgi protocol, so that a site moves from
//! nginx + uWSGI to paddock without touching its application server.

use std::process::Command;

use harness::wsgi::{apps_dir, python_has, WsgiServer};

use crate::support::{assert_serves_the_app, external_site, start_listening};

#[test]
fn an_external_uwsgi_server_is_reached_over_the_uwsgi_protocol() {
    if !python_has(&["flask"], "python3-flask") || !WsgiServer::Uwsgi.available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("uwsgi.sock");
    let log = dir.path().join("uwsgi.log");
    let uwsgi = start_listening(
        "uwsgi",
        Command::new("/usr/bin/uwsgi")
            .args(["--plugin", "python3", "--master", "--processes", "2"])
            .args(["--threads", "4", "--module", "app:app", "--need-app"])
            .args(["--die-on-term", "--disable-logging", "--socket"])
            .arg(&socket)
            .current_dir(apps_dir().join("flask_app"))
            .env("ORDER_LOG", dir.path().join("orders.log")),
        &socket,
        &log,
    );
    let (paddock, workers) = external_site(&uwsgi, "uwsgi", &socket, "uwsgi", dir.path());
    for option in ["--http1.1", "--http2-prior-knowledge"] {
        assert_serves_the_app(&paddock, &workers, option, &log);
    }
    // paddock started no worker of its own for the pool.
    assert!(paddock.worker_pids("uwsgi").is_empty());
}
