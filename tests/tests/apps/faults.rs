//! Faults in a threaded pool running the Flask app (2 processes × 8 threads):
//! - a thread that hangs past `request_timeout`: its client gets 504; its process takes no new
//!   request, finishes the requests it has (none fails for its neighbour's hang), and is then
//!   killed and replaced;
//! - a process SIGKILLed with requests in flight: its GETs are retried on another process and
//!   answered, its POSTs get 502 and never run twice; and under a steady load, killing processes
//!   costs no GET (both also with uWSGI over the uwsgi protocol, where the end of a connection
//!   is the end of an answer);
//! - recycling by `max_requests` under load costs no request.

use std::collections::HashMap;
use std::time::Duration;

use harness::client::{get_in_background, load_bounded, Connection};
use harness::observe::{scrape, value};
use harness::wsgi::WsgiServer;
use harness::{process_alive, signal, wait_until};

use crate::support::{
    answered_ok, flask_site_on, json, worker_pids, NO_SEND_AHEAD, SEND_AHEAD, SEND_AHEAD_BELOW,
    THREADS, WORKERS,
};

/// The pid of the process whose current requests include one for `path`.
fn pid_running(pool: &serde_json::Value, path: &str) -> Option<u64> {
    pool["processes"].as_array()?.iter().find_map(|p| {
        let current = p["current"].as_array()?;
        current
            .iter()
            .any(|r| r["path"] == path)
            .then(|| p["pid"].as_u64())
            .flatten()
    })
}

const REQUEST_TIMEOUT_SECS: f64 = 8.0;

#[test]
fn a_hung_thread_retires_its_process_without_failing_its_neighbours() {
    hung_thread(WsgiServer::Flup);
}

/// The same over HTTP: the hung request's kept connection is given up with it, and the
/// neighbours' connections carry on.
#[test]
fn a_hung_thread_over_http_retires_its_process_without_failing_its_neighbours() {
    hung_thread(WsgiServer::UwsgiHttp);
}

/// The same with granian's workers, which end a retired process's hung thread only with the
/// process (SIGTERM, then SIGKILL after the grace period).
#[test]
fn a_hung_thread_in_granian_retires_its_process_without_failing_its_neighbours() {
    hung_thread(WsgiServer::Granian);
}

/// The same with paddock's WSGI worker.
#[test]
fn a_hung_thread_in_paddocks_wsgi_worker_retires_its_process_without_failing_its_neighbours() {
    hung_thread(WsgiServer::Paddock);
}

fn hung_thread(server: WsgiServer) {
    let timeout = format!("request_timeout = \"{REQUEST_TIMEOUT_SECS}s\"");
    let Some(site) = flask_site_on(server, &timeout) else {
        return;
    };
    let paddock = &site.paddock;
    let never = site.scratch.path().join("never");
    let release = site.scratch.path().join("release");
    let hang = get_in_background(paddock.http, &format!("/hang?until={}", never.display()));
    // The other requests start once the hang has used half its time (as /status shows it), so
    // that they are still well within their own deadline when the hang reaches its own.
    let pool = paddock.wait_pool("flask", "the hang half-way to its deadline", |p| {
        p["processes"].as_array().is_some_and(|ps| {
            ps.iter()
                .flat_map(|w| w["current"].as_array().into_iter().flatten())
                .any(|r| {
                    r["path"] == "/hang"
                        && r["age_seconds"].as_f64() >= Some(REQUEST_TIMEOUT_SECS / 2.0)
                })
        })
    });
    let hung_pid = pid_running(&pool, "/hang").unwrap();
    let neighbours_total = (WORKERS * THREADS) as usize - 1;
    let path = format!("/slow?until={}", release.display());
    let neighbours: Vec<_> = (0..neighbours_total)
        .map(|_| get_in_background(paddock.http, &path))
        .collect();
    let pool = paddock.wait_pool("flask", "every slot busy", |p| {
        p["busy_slots"] == neighbours_total + 1
    });
    let on_hung: u64 = pool["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["pid"] == hung_pid)
        .map(|p| p["busy_slots"].as_u64().unwrap())
        .sum();
    assert_eq!(on_hung, THREADS as u64, "the hung process is full: {pool}");

    let timed_out = hang.join().unwrap().expect("an answer to the hung request");
    assert_eq!(timed_out.status, 504, "{}", timed_out.text());
    // Its process is retiring, not killed: seven requests of its own still run there.
    assert!(process_alive(hung_pid as u32));
    let pool = paddock.pool_status("flask");
    assert_eq!(pool["states"]["retiring"], 1, "{pool}");

    std::fs::write(&release, b"").unwrap();
    let mut served_by_hung = 0;
    for neighbour in neighbours {
        let response = answered_ok(paddock, neighbour);
        if json(&response.text())["pid"] == hung_pid {
            served_by_hung += 1;
        }
    }
    assert_eq!(
        served_by_hung,
        THREADS - 1,
        "the hung process's other requests were answered"
    );

    // Then it is killed (the hung thread cannot end alone) and replaced.
    wait_until("the hung process killed", || {
        !process_alive(hung_pid as u32)
    });
    paddock.wait_for_log("killing worker at the front end's request");
    paddock.wait_pool("flask", "a replacement", |p| {
        p["workers"] == WORKERS && pid_list(p).iter().all(|&pid| pid != hung_pid)
    });
    let metrics = scrape(paddock.admin);
    assert_eq!(
        value(
            &metrics,
            "paddock_worker_exits_total",
            &[("pool", "flask"), ("reason", "timeout_kill")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &metrics,
            "paddock_request_timeouts_total",
            &[("pool", "flask")]
        ),
        1.0
    );
    let after = paddock.curl_status(&[&paddock.url("/api/items/1")]);
    assert_eq!(after, 200);
}

fn pid_list(pool: &serde_json::Value) -> Vec<u64> {
    pool["processes"]
        .as_array()
        .map(|p| p.iter().filter_map(|w| w["pid"].as_u64()).collect())
        .unwrap_or_default()
}

/// Every slot held (GETs and POSTs, the POSTs already recorded by the app); the process running
/// the most POSTs is SIGKILLed. Its GETs go to another process (the replacement) and are
/// answered; its POSTs get 502, and the order log shows each order exactly once.
#[test]
fn a_killed_process_costs_no_get_and_runs_no_post_twice() {
    killed_process_with_posts(WsgiServer::Flup);
}

/// The same with uWSGI over the uwsgi protocol, where a connection's end is the answer's end.
#[test]
fn a_killed_uwsgi_process_costs_no_get_and_runs_no_post_twice() {
    killed_process_with_posts(WsgiServer::UwsgiNative);
}

/// The same over HTTP, where every slot's connection is kept from one request to the next.
#[test]
fn a_killed_http_worker_costs_no_get_and_runs_no_post_twice() {
    killed_process_with_posts(WsgiServer::UwsgiHttp);
}

#[test]
fn a_killed_granian_worker_costs_no_get_and_runs_no_post_twice() {
    killed_process_with_posts(WsgiServer::Granian);
}

#[test]
fn a_killed_paddock_wsgi_worker_costs_no_get_and_runs_no_post_twice() {
    killed_process_with_posts(WsgiServer::Paddock);
}

fn killed_process_with_posts(server: WsgiServer) {
    let Some(site) = flask_site_on(server, "") else {
        return;
    };
    let paddock = &site.paddock;
    let release = site.scratch.path().join("release");
    const POSTS: usize = 4;
    let gets = (WORKERS * THREADS) as usize - POSTS;
    let get_path = format!("/slow?until={}", release.display());
    let held_gets: Vec<_> = (0..gets)
        .map(|_| get_in_background(paddock.http, &get_path))
        .collect();
    let held_posts: Vec<_> = (0..POSTS)
        .map(|i| {
            let addr = paddock.http;
            let path = format!("/api/orders?until={}", release.display());
            std::thread::spawn(move || {
                let body = format!("id=order-{i}");
                let headers = [("Content-Type", "application/x-www-form-urlencoded")];
                Connection::open(addr)?.request("POST", &path, &headers, body.as_bytes())
            })
        })
        .collect();
    let pool = paddock.wait_pool("flask", "every slot busy", |p| {
        p["busy_slots"] == gets + POSTS
    });
    wait_until("every order recorded", || {
        std::fs::read_to_string(&site.order_log).is_ok_and(|log| log.lines().count() == POSTS)
    });
    // The process running the most POSTs.
    let (victim, posts_on_victim) = pool["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let posts = p["current"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["method"] == "POST")
                .count();
            (p["pid"].as_u64().unwrap(), posts)
        })
        .max_by_key(|&(_, posts)| posts)
        .unwrap();
    let retries_before = value(
        &scrape(paddock.admin),
        "paddock_worker_retries_total",
        &[("pool", "flask")],
    );
    signal(victim as u32, "KILL");
    // Its GETs wait for the replacement (the other process's slots are all held) and run there.
    paddock.wait_pool("flask", "the replacement running the retried GETs", |p| {
        p["workers"] == WORKERS
            && !pid_list(p).contains(&victim)
            && p["busy_slots"] == gets + POSTS - posts_on_victim
    });
    std::fs::write(&release, b"").unwrap();
    for get in held_gets {
        let response = answered_ok(paddock, get);
        assert_ne!(json(&response.text())["pid"], victim);
    }
    let mut failed_posts = 0;
    for post in held_posts {
        let response = post.join().unwrap().expect("an answer");
        match response.status {
            200 => {}
            502 => failed_posts += 1,
            other => panic!("POST answered {other}: {}", response.text()),
        }
    }
    assert_eq!(
        failed_posts, posts_on_victim,
        "the killed process's POSTs get 502"
    );
    let log = std::fs::read_to_string(&site.order_log).unwrap();
    let mut runs: HashMap<&str, usize> = HashMap::new();
    for line in log.lines() {
        *runs.entry(line.split(' ').next().unwrap()).or_default() += 1;
    }
    assert_eq!(runs.len(), POSTS, "{log}");
    assert!(runs.values().all(|&n| n == 1), "a POST ran twice: {log}");
    let retries_after = value(
        &scrape(paddock.admin),
        "paddock_worker_retries_total",
        &[("pool", "flask")],
    );
    assert!(
        retries_after - retries_before >= (THREADS as usize - posts_on_victim) as f64,
        "the killed process's GETs were retried ({retries_before} → {retries_after})"
    );
}

/// A steady GET load on both processes while one process after the other is SIGKILLed (each
/// time once its successor has settled): not one GET fails.
#[test]
fn processes_killed_under_load_cost_no_get() {
    killed_under_load(WsgiServer::Flup, "");
}

/// The same with uWSGI over the uwsgi protocol: every answer is also checked whole (a cut one
/// would end where the killed process's connection ended).
#[test]
fn uwsgi_processes_killed_under_load_cost_no_get() {
    killed_under_load(WsgiServer::UwsgiNative, "");
}

/// The same over HTTP: the killed process's kept connections are not trusted again, and every
/// answer is checked whole.
#[test]
fn http_workers_killed_under_load_cost_no_get() {
    killed_under_load(WsgiServer::UwsgiHttp, "");
}

/// The same with granian, sending requests ahead (as deploy/examples/flask-granian.toml): a
/// killed process takes the requests waiting in it with its running ones, and they are retried
/// as those are.
#[test]
fn granian_workers_killed_under_load_cost_no_get() {
    killed_under_load(WsgiServer::Granian, SEND_AHEAD);
}

/// The same with paddock's WSGI worker without requests sent ahead: every answer checked whole
/// (one whose END_REQUEST went out with its last byte must not be cut by the kill that follows).
#[test]
fn paddock_wsgi_workers_killed_under_load_cost_no_get() {
    killed_under_load(WsgiServer::Paddock, NO_SEND_AHEAD);
}

/// The same with requests sent ahead to paddock-wsgi's busy threads (builtin = "wsgi"'s
/// default).
#[test]
fn paddock_wsgi_workers_sent_requests_ahead_killed_under_load_cost_no_get() {
    killed_under_load(WsgiServer::Paddock, SEND_AHEAD_BELOW);
}

fn killed_under_load(server: WsgiServer, extra_pool: &str) {
    let Some(site) = flask_site_on(server, extra_pool) else {
        return;
    };
    let paddock = &site.paddock;
    let addr = paddock.http;
    const CLIENTS: usize = 16;
    const PER_CLIENT: u64 = 500;
    let load = std::thread::spawn(move || {
        load_bounded(
            addr,
            CLIENTS,
            Duration::from_secs(300),
            PER_CLIENT,
            |client, n| {
                let item = client as u64 * 1000 + n;
                ("GET".into(), format!("/api/items/{item}"), Vec::new())
            },
            |r| {
                r.status == 200
                    && serde_json::from_str::<serde_json::Value>(&r.text())
                        .is_ok_and(|item| item["name"].as_str().is_some())
            },
        )
    });
    // Kill a process that is serving and has lived past the 1 s in which a death counts towards
    // the crash-loop backoff (docs/worker-lifecycle.md), while the load lasts.
    let serving = |p: &serde_json::Value| {
        p["busy_slots"].as_u64() > Some(0) && p["age_seconds"].as_f64() > Some(1.5)
    };
    let mut kills = 0;
    while kills < 3 {
        let pool = paddock.wait_pool("flask", "a settled process serving the load", |p| {
            load.is_finished()
                || (p["workers"] == WORKERS
                    && p["processes"]
                        .as_array()
                        .is_some_and(|ps| ps.iter().any(serving)))
        });
        if load.is_finished() {
            break;
        }
        let victim = pool["processes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| serving(p))
            .and_then(|p| p["pid"].as_u64())
            .unwrap();
        signal(victim as u32, "KILL");
        kills += 1;
        paddock.wait_pool("flask", "the killed process replaced", |p| {
            p["workers"] == WORKERS && !pid_list(p).contains(&victim)
        });
    }
    let report = load.join().unwrap();
    assert!(
        report.failures.is_empty(),
        "{} failed GETs, first: {:?}\n{}",
        report.failures.len(),
        &report.failures[..report.failures.len().min(3)],
        paddock.log()
    );
    assert_eq!(report.ok, CLIENTS as u64 * PER_CLIENT);
    assert!(
        kills >= 2,
        "the load ended after {kills} kills: make it longer"
    );
    let crashes = value(
        &scrape(paddock.admin),
        "paddock_worker_exits_total",
        &[("pool", "flask"), ("reason", "crash")],
    );
    assert_eq!(crashes, kills as f64);
}

/// `max_requests = 40` under a load of 1 600 GETs: processes retire and are replaced many times
/// over, and not one request fails.
#[test]
fn recycling_by_max_requests_under_load_costs_no_request() {
    recycling_under_load(WsgiServer::Flup, "");
}

/// The same over HTTP, where each retiring process takes its slots' kept connections with it.
#[test]
fn recycling_over_http_under_load_costs_no_request() {
    recycling_under_load(WsgiServer::UwsgiHttp, "");
}

/// The same with granian, which finishes its kept connections' last answers before it exits,
/// sending requests ahead: a retiring process's waiting requests are answered before it goes.
#[test]
fn recycling_granian_workers_under_load_costs_no_request() {
    recycling_under_load(WsgiServer::Granian, SEND_AHEAD);
}

/// The same with paddock's WSGI worker, without requests sent ahead.
#[test]
fn recycling_paddock_wsgi_workers_under_load_costs_no_request() {
    recycling_under_load(WsgiServer::Paddock, NO_SEND_AHEAD);
}

/// The same with requests sent ahead (builtin = "wsgi"'s default): a retiring process answers
/// those waiting in it first.
#[test]
fn recycling_paddock_wsgi_workers_sent_requests_ahead_under_load_costs_no_request() {
    recycling_under_load(WsgiServer::Paddock, SEND_AHEAD_BELOW);
}

fn recycling_under_load(server: WsgiServer, extra_pool: &str) {
    let recycled = format!("max_requests = 40\nmax_requests_jitter = 10\n{extra_pool}");
    let Some(site) = flask_site_on(server, &recycled) else {
        return;
    };
    let paddock = &site.paddock;
    let first = worker_pids(paddock);
    let report = load_bounded(
        paddock.http,
        16,
        Duration::from_secs(180),
        100,
        |client, n| {
            (
                "GET".into(),
                format!("/api/items/{}", client as u64 * 1000 + n),
                Vec::new(),
            )
        },
        |r| r.status == 200,
    );
    assert!(
        report.failures.is_empty(),
        "{} failed, first: {:?}\n{}",
        report.failures.len(),
        &report.failures[..report.failures.len().min(3)],
        paddock.log()
    );
    assert_eq!(report.ok, 1600);
    let recycled = value(
        &scrape(paddock.admin),
        "paddock_worker_exits_total",
        &[("pool", "flask"), ("reason", "max_requests")],
    );
    // 1 600 requests at most 50 per process: at least 30 retirements once all are reaped.
    assert!(recycled >= 10.0, "{recycled} processes recycled");
    assert!(worker_pids(paddock).iter().all(|pid| !first.contains(pid)));
}
