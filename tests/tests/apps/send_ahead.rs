//! `send_ahead` on a threaded pool of granian workers, and of paddock's own WSGI worker: once
//! every thread is busy, requests are sent to the workers at once and wait in the worker for a
//! thread, counted as waiting, not
//! running; when the threads free up every one of them is answered, and the next request,
//! which found every place taken, comes from the pool's queue. (Faults with requests sent ahead:
//! `faults`, the granian tests.)

use harness::client::get_in_background;
use harness::wait::wait_until;
use harness::wsgi::WsgiServer;

use crate::support::{answered_ok, flask_site_on, json, SEND_AHEAD, THREADS, WORKERS};

#[test]
fn requests_wait_in_busy_granian_workers_for_a_thread_and_are_all_answered() {
    sent_ahead(WsgiServer::Granian);
}

/// paddock-wsgi's threads take the next request of any connection, so one sent ahead on a
/// connection of its own is taken by the first thread that frees up.
#[test]
fn requests_wait_in_busy_paddock_wsgi_workers_for_a_thread_and_are_all_answered() {
    sent_ahead(WsgiServer::Paddock);
}

fn sent_ahead(server: WsgiServer) {
    let Some(site) = flask_site_on(server, SEND_AHEAD) else {
        return;
    };
    let paddock = &site.paddock;
    // Every process up first: with readiness = "notify" (builtin = "wsgi") a process counts
    // once it has imported the app, which a loaded machine may take seconds to do for one.
    let threads = (WORKERS * THREADS) as usize;
    paddock.wait_pool("flask", "every process ready", |p| {
        p["idle_slots"] == threads
    });
    // A process's places ahead come out once it has ended a request with a thread free: two
    // requests at once, one on each process (the one with fewer in flight takes the next).
    let warmed = site.scratch.path().join("warmed");
    let warm_path = format!("/slow?until={}", warmed.display());
    let warm: Vec<_> = (0..WORKERS)
        .map(|_| get_in_background(paddock.http, &warm_path))
        .collect();
    paddock.wait_pool("flask", "a request on each process", |p| {
        p["busy_slots"] == WORKERS
    });
    std::fs::write(&warmed, b"").unwrap();
    let pids: std::collections::HashSet<_> = warm
        .into_iter()
        .map(|request| json(&answered_ok(paddock, request).text())["pid"].clone())
        .collect();
    assert_eq!(pids.len(), WORKERS as usize, "one on each process");
    let release = site.scratch.path().join("release");
    let running = site.scratch.path().join("running");
    std::fs::create_dir(&running).unwrap();
    let held_path = format!(
        "/slow?until={}&started={}",
        release.display(),
        running.display()
    );
    let held: Vec<_> = (0..threads)
        .map(|_| get_in_background(paddock.http, &held_path))
        .collect();
    // Every thread running one, as the app sees it: the front end counts a request busy once it
    // has handed it to a process, and one sent ahead that reached a process first would take
    // the thread instead (paddock-wsgi's threads take the next request of any connection).
    wait_until("a held request on every thread", || {
        std::fs::read_dir(&running).unwrap().count() == threads
    });
    paddock.wait_pool("flask", "every thread busy", |p| p["busy_slots"] == threads);
    let ahead: Vec<_> = (0..threads)
        .map(|item| get_in_background(paddock.http, &format!("/api/items/{item}")))
        .collect();
    let pool = paddock.wait_pool("flask", "a request ahead of each thread", |p| {
        p["sent_ahead"] == threads
    });
    assert_eq!(
        pool["busy_slots"], threads,
        "requests sent ahead do not run yet: {pool}"
    );
    for process in pool["processes"].as_array().unwrap() {
        assert_eq!(
            process["busy_slots"], THREADS,
            "each process runs as many as its threads: {pool}"
        );
    }
    let queued = get_in_background(paddock.http, "/api/items/999");
    paddock.wait_pool("flask", "the next request in the pool's queue", |p| {
        p["waiting"] == 1 && p["sent_ahead"] == threads
    });

    std::fs::write(&release, b"").unwrap();
    for request in held {
        answered_ok(paddock, request);
    }
    for (item, request) in ahead.into_iter().enumerate() {
        let response = answered_ok(paddock, request);
        assert_eq!(json(&response.text())["id"], item, "its own answer");
    }
    answered_ok(paddock, queued);
    let pool = paddock.pool_status("flask");
    assert_eq!(
        (pool["sent_ahead"].as_u64(), pool["busy_slots"].as_u64()),
        (Some(0), Some(0)),
        "{pool}"
    );
}
