//! Scenario 9c: a cold burst on a Python app. 32, then 64, concurrent requests for the Flask
//! app's `/slow?ms=200` arrive at once on a pool sized on demand, at most 4 × 8 threads:
//! paddock's threaded pool with no process running (`sizing = "ondemand"`, uWSGI workers), the
//! same pool keeping one process while idle (`sizing = "dynamic"`, `start_workers = 1`: the
//! idle footprint of uWSGI's minimum), and nginx + uWSGI's "cheaper" mode (one process while
//! idle, its minimum). A fresh server for every burst, so each one starts cold, with the idle
//! process of the stacks that keep one answering a request first (its app loaded). Both
//! paddock pools run again with `readiness = "notify"`: a uWSGI process gets requests only once
//! it has said `READY=1`, and at most one process per core loads at once; and both with
//! paddock's own WSGI worker (`paddock-wsgi`, which says `READY=1` once the app is imported).
//! gunicorn has no on-demand sizing.

use std::time::Duration;

use harness::wsgi::WsgiServer;

use crate::report::{ms, Table};
use crate::servers::wsgi::{self, PoolSizing, THREADS};
use crate::servers::{Server, Workers};
use crate::stats::median;
use crate::Bench;

use super::slow::burst_of;

const SLEEP_MS: u32 = 200;
const MAX_PROCESSES: u32 = 4;

const PADDOCK: &str = "paddock ondemand (uWSGI workers)";
const PADDOCK_NOTIFY: &str = "paddock ondemand, readiness = notify";
const PADDOCK_ONE_IDLE: &str = "paddock, one process while idle (uWSGI workers)";
const PADDOCK_ONE_IDLE_NOTIFY: &str = "paddock, one process while idle, readiness = notify";
const WSGI_NOTIFY: &str = "paddock ondemand, paddock-wsgi, readiness = notify";
const WSGI_ONE_IDLE_NOTIFY: &str =
    "paddock, one process while idle, paddock-wsgi, readiness = notify";
const UWSGI: &str = "nginx + uWSGI cheaper";
const SERVERS: [&str; 7] = [
    PADDOCK,
    PADDOCK_NOTIFY,
    PADDOCK_ONE_IDLE,
    PADDOCK_ONE_IDLE_NOTIFY,
    WSGI_NOTIFY,
    WSGI_ONE_IDLE_NOTIFY,
    UWSGI,
];
const NOTIFY: &str = "readiness = \"notify\"";

fn start(bench: &Bench, name: &str) -> Server {
    let paddock = |sizing, extra| {
        wsgi::paddock_pool(&bench.shared, name, WsgiServer::UwsgiNative, sizing, extra)
    };
    let own_worker =
        |sizing| wsgi::paddock_pool(&bench.shared, name, WsgiServer::Paddock, sizing, NOTIFY);
    let ondemand = PoolSizing::Ondemand { max: MAX_PROCESSES };
    let one_idle = PoolSizing::OneIdle { max: MAX_PROCESSES };
    let server = match name {
        PADDOCK => return paddock(ondemand, ""),
        PADDOCK_NOTIFY => return paddock(ondemand, NOTIFY),
        PADDOCK_ONE_IDLE => paddock(one_idle, ""),
        PADDOCK_ONE_IDLE_NOTIFY => paddock(one_idle, NOTIFY),
        WSGI_NOTIFY => return own_worker(ondemand),
        WSGI_ONE_IDLE_NOTIFY => own_worker(one_idle),
        _ => wsgi::nginx_uwsgi_cheaper(name, MAX_PROCESSES),
    };
    // The idle process has its app loaded and has answered once, as after any earlier traffic.
    harness::wait::wait_until(&format!("{name}: its idle process to answer"), || {
        harness::http_get(server.http, "/api/items/1")
            .is_some_and(|r| r.starts_with("HTTP/1.1 200"))
    });
    server
}

#[derive(Debug, Default)]
struct Runs {
    first: Vec<f64>,
    last: Vec<f64>,
    all_workers: Vec<f64>,
    max_workers: Vec<f64>,
    errors: usize,
    never: usize,
}

pub(crate) fn run(bench: &mut Bench) {
    let mut table = Table::new(
        "Scenario 9c: cold burst of 200 ms Flask requests on a pool sized on demand (at most 4 × 8)",
        &[
            "burst",
            "server",
            "first answer ms",
            "last answer ms",
            "4 processes exist ms",
            "most processes",
            "errors",
        ],
    );
    let mut json = serde_json::Map::new();
    let path = format!("/slow?ms={SLEEP_MS}");
    for n in [32usize, 64] {
        let mut results: [Runs; SERVERS.len()] = Default::default();
        for run in 0..bench.runs {
            for k in 0..SERVERS.len() {
                let i = (k + run) % SERVERS.len();
                let name = SERVERS[i];
                bench.check_interrupted();
                let server = start(bench, name);
                // Let the server settle (no process yet, or the one idle).
                std::thread::sleep(Duration::from_millis(500));
                let workers = server.workers.clone().unwrap_or_else(|| Workers {
                    parent: server.roots[1],
                    comm: "uwsgi".into(),
                });
                let (requests, all_workers, max_workers) =
                    burst_of(server.http, n, &path, &workers, MAX_PROCESSES as usize);
                drop(server);
                let r = &mut results[i];
                let done: Vec<f64> = requests
                    .iter()
                    .filter(|t| t.ok)
                    .map(|t| t.done_ms)
                    .collect();
                r.errors += requests.iter().filter(|t| !t.ok).count();
                r.first
                    .push(done.iter().copied().fold(f64::INFINITY, f64::min));
                r.last.push(done.iter().copied().fold(0.0, f64::max));
                match all_workers {
                    Some(t) => r.all_workers.push(t),
                    None => r.never += 1,
                }
                r.max_workers.push(max_workers as f64);
                eprintln!(
                    "bench: wsgi burst {n} {name} run {}: last answer {} ms, {} processes {:?} ms, \
                     {} errors",
                    run + 1,
                    ms(*r.last.last().unwrap_or(&f64::NAN)),
                    MAX_PROCESSES,
                    all_workers.map(|t| t.round()),
                    requests.iter().filter(|t| !t.ok).count()
                );
            }
        }
        for (i, name) in SERVERS.iter().enumerate() {
            let r = &results[i];
            let reached = if r.never > 0 {
                format!(
                    "{} (not reached in {} runs)",
                    ms(median(&r.all_workers)),
                    r.never
                )
            } else {
                ms(median(&r.all_workers))
            };
            table.row(vec![
                format!("{n} × {SLEEP_MS} ms"),
                name.to_string(),
                ms(median(&r.first)),
                ms(median(&r.last)),
                reached,
                format!("{:.0}", median(&r.max_workers)),
                r.errors.to_string(),
            ]);
            json.insert(
                format!("{n}/{name}"),
                serde_json::json!({
                    "first_ms": r.first, "last_ms": r.last, "all_workers_ms": r.all_workers,
                    "max_workers": r.max_workers, "errors": r.errors,
                }),
            );
        }
    }
    table.note(format!(
        "Each process has {THREADS} threads, so 32 requests fill 4 processes at once and 64 \
         need two rounds. paddock ondemand starts with no process and spawns as requests queue; paddock \
         with one idle process is sizing = \"dynamic\", start_workers = 1 (min_spare one \
         process's threads), spawning as requests queue; uWSGI keeps its minimum of one \
         (--cheaper 1) and spawns the rest with --cheaper-algo spare --cheaper-step 4 \
         --cheaper-overload 1 (checked once a second). The idle process of the stacks that keep \
         one answered a request before the burst. With readiness = \"notify\" a process gets \
         requests only once uWSGI (or paddock-wsgi) has sent READY=1 (its app imported), and at most \
         one per core loads at once (max_starting's default). A process is counted once it exists (for Python the \
         app import follows)."
    ));
    bench.report.table(&table);
    bench.report.record("wsgi-burst", json.into());
}
