//! uWSGI (and granian, through deploy/examples/wsgi/granian_serve.py) saying when the Flask app
//! is loaded (`readiness = "notify"`): started by paddock with `NOTIFY_SOCKET`, each worker
//! process sends `READY=1` once it has imported the app, and only then does the front end hand
//! it requests.

use harness::wsgi::WsgiServer;

use crate::support::{curl_ok, flask_site_on, json, worker_pids, WORKERS};

#[test]
fn uwsgi_workers_are_announced_once_flask_is_loaded() {
    announced_once_loaded(WsgiServer::UwsgiHttp);
}

#[test]
fn granian_workers_are_announced_once_flask_is_loaded() {
    announced_once_loaded(WsgiServer::Granian);
}

fn announced_once_loaded(server: WsgiServer) {
    let Some(site) = flask_site_on(server, "readiness = \"notify\"\nstart_timeout = \"60s\"")
    else {
        return;
    };
    let paddock = &site.paddock;
    // Each worker on /status is matched by the master's `worker ready` line for its pid: the
    // READY=1 the worker sent from that process once Flask was imported.
    let ready_line = |pid: &u64| {
        paddock
            .log()
            .lines()
            .any(|line| line.contains("worker ready") && line.contains(&format!("pid={pid} ")))
    };
    harness::wait::wait_for("both workers on /status, each said ready", || {
        Some(worker_pids(paddock))
            .filter(|pids| pids.len() == WORKERS as usize && pids.iter().all(ready_line))
    });
    let item = json(&curl_ok(paddock, &[&paddock.url("/api/items/3")]));
    assert_eq!(item["id"], 3, "{item}");
}
