//! What `protocol = "http"` adds to a pool: each slot's connection to its uWSGI thread carries
//! request after request; one that the worker closed while it sat idle is never used again (no
//! request fails for it, not even a POST); and one whose client went away midway is given up
//! only once uWSGI has answered, so the late answer reaches nobody.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use harness::wsgi::{WsgiServer, HTTP_IDLE_SECONDS};

use crate::support::{
    curl_ok, flask_site_edited, flask_site_on, json, worker_pids, THREADS, WORKERS,
};

/// How long a test waits for what the front end does on its own (generous: loaded machines).
const PATIENCE: Duration = Duration::from_secs(60);

/// The sockets the workers hold, but their listening socket (fd 0): the connections from
/// paddock's slots, and any uWSGI keeps for itself.
fn worker_sockets(pids: &[u64]) -> BTreeSet<String> {
    let mut sockets = BTreeSet::new();
    for pid in pids {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if fd.file_name() == "0" {
                continue;
            }
            if let Ok(target) = std::fs::read_link(fd.path()) {
                let target = target.to_string_lossy().into_owned();
                if target.starts_with("socket:") {
                    sockets.insert(format!("{pid}:{target}"));
                }
            }
        }
    }
    sockets
}

fn two_workers(paddock: &harness::Paddock) -> Vec<u64> {
    harness::wait::wait_for("both workers on /status", || {
        Some(worker_pids(paddock)).filter(|pids| pids.len() == 2)
    })
}

/// Sequential requests reuse the connections opened by the first ones: the workers hold the
/// same sockets after 30 more requests, and more than before the first (over uwsgi, which opens
/// one a request, they would hold none beyond their own).
#[test]
fn a_slots_connection_carries_request_after_request() {
    let Some(site) = flask_site_on(WsgiServer::UwsgiHttp, "") else {
        return;
    };
    let paddock = &site.paddock;
    let pids = two_workers(paddock);
    let before = worker_sockets(&pids);
    let get = |n: u32| {
        let item = json(&curl_ok(
            paddock,
            &[&paddock.url(&format!("/api/items/{n}"))],
        ));
        assert_eq!(item["id"], n);
    };
    (0..5).for_each(get);
    let kept = worker_sockets(&pids);
    assert!(
        kept.len() > before.len(),
        "no connection kept: {before:?} then {kept:?}"
    );
    (5..35).for_each(get);
    assert_eq!(worker_sockets(&pids), kept, "a connection was opened again");
}

/// uWSGI closes a connection that sat idle past its `--socket-timeout` (here 1 s): the next GET
/// and POST go on a new connection, answered, and the POST runs once.
#[test]
fn a_connection_the_worker_closed_while_idle_is_not_used_again() {
    let short_idle = |config: String| {
        let long = format!("\"--socket-timeout\", \"{HTTP_IDLE_SECONDS}\"");
        assert!(config.contains(&long), "{config}");
        config.replace(&long, "\"--socket-timeout\", \"1\"")
    };
    let Some(site) = flask_site_edited(WsgiServer::UwsgiHttp, "/", "", short_idle) else {
        return;
    };
    let paddock = &site.paddock;
    let pids = two_workers(paddock);
    let before = worker_sockets(&pids);
    for round in 0..2 {
        let item = json(&curl_ok(paddock, &[&paddock.url("/api/items/1")]));
        assert_eq!(item["id"], 1, "round {round}");
        harness::wait::wait_for("uWSGI to close the idle connection", || {
            (worker_sockets(&pids) == before).then_some(())
        });
        let item = json(&curl_ok(paddock, &[&paddock.url("/api/items/2")]));
        assert_eq!(item["id"], 2, "round {round}");
        harness::wait::wait_for("uWSGI to close the idle connection", || {
            (worker_sockets(&pids) == before).then_some(())
        });
        let id = format!("idle-{round}");
        let status = curl_ok(
            paddock,
            &[
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-d",
                &format!("id={id}"),
                &paddock.url("/api/orders"),
            ],
        );
        assert_eq!(status, "200", "round {round}: {}", paddock.log());
    }
    let orders = std::fs::read_to_string(&site.order_log).unwrap();
    for round in 0..2 {
        let runs = orders
            .lines()
            .filter(|l| l.starts_with(&format!("idle-{round} ")))
            .count();
        assert_eq!(runs, 1, "{orders}");
    }
}

/// Every slot's client goes away while uWSGI runs its request: the slots stay taken until uWSGI
/// has answered (paddock shuts its side so that uWSGI closes the connection after the answer),
/// requests sent meanwhile wait in paddock's queue, and each then gets its own answer, not one
/// of the abandoned ones left on a kept connection.
#[test]
fn answers_to_abandoned_requests_never_reach_the_next_clients() {
    let Some(site) = flask_site_on(WsgiServer::UwsgiHttp, "") else {
        return;
    };
    let paddock = &site.paddock;
    let slots = (WORKERS * THREADS) as usize;
    let release = site.scratch.path().join("release");
    let held = paddock.url(&format!("/slow?until={}", release.display()));
    let mut clients: Vec<_> = (0..slots)
        .map(|_| {
            paddock
                .curl_command(&[&held])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    paddock.wait_pool("flask", "every slot held", |p| p["busy_slots"] == slots);
    for client in &mut clients {
        client.kill().unwrap();
        client.wait().unwrap();
    }
    paddock.wait_until("the front end to see every client go", PATIENCE, || {
        paddock
            .log()
            .matches("a client went away during its request")
            .count()
            == slots
    });
    let next: Vec<_> = (0..slots)
        .map(|n| {
            let url = paddock.url(&format!("/api/whoami?tag=next-{n}"));
            let mut curl = paddock.curl_command(&[&url]);
            std::thread::spawn(move || curl.output().unwrap())
        })
        .collect();
    let pool = paddock.wait_pool("flask", "the next requests queued", |p| {
        p["waiting"] == slots
    });
    assert_eq!(pool["busy_slots"], slots, "{pool}");
    std::fs::write(&release, b"").unwrap();
    for (n, answer) in next.into_iter().enumerate() {
        let output = answer.join().unwrap();
        let seen = json(&String::from_utf8_lossy(&output.stdout));
        assert_eq!(seen["tag"], format!("next-{n}"), "{seen}");
    }
    paddock.wait_pool("flask", "every slot idle again", |p| {
        p["idle_slots"] == slots
    });
}
