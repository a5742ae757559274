//! uWSGI saying when the Flask app is loaded (`readiness = "notify"`): started by paddock with
//! `NOTIFY_SOCKET`, each uWSGI process sends `READY=1` once it has imported the app, and only
//! then does the front end hand it requests.

use harness::wsgi::WsgiServer;

use crate::support::{curl_ok, flask_site_on, json, worker_pids, WORKERS};

#[test]
fn uwsgi_workers_are_announced_once_flask_is_loaded() {
    let Some(site) = flask_site_on(
        WsgiServer::UwsgiHttp,
        "readiness = \"notify\"\nstart_timeout = \"60s\"",
    ) else {
        return;
    };
    let paddock = &site.paddock;
    let pids = harness::wait::wait_for("both workers on /status", || {
        Some(worker_pids(paddock)).filter(|pids| pids.len() == WORKERS as usize)
    });
    // Each worker the front end knows is one whose READY=1 the master matched to it.
    let log = paddock.log();
    for pid in &pids {
        assert!(
            log.lines()
                .any(|line| line.contains("worker ready") && line.contains(&format!("pid={pid} "))),
            "no `worker ready` for {pid}:\n{log}"
        );
    }
    let item = json(&curl_ok(paddock, &[&paddock.url("/api/items/3")]));
    assert_eq!(item["id"], 3, "{item}");
}
