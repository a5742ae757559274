//! Scenario 9: a Flask application (tests/apps/flask_app, Debian's Flask) with 2 processes × 8
//! threads, 32 connections: paddock's threaded pool (its workers running paddock's own WSGI
//! worker over FastCGI, granian over HTTP/1.1,
//! or uWSGI over HTTP/1.1 or the uwsgi protocol; HTTP connections kept) vs nginx + gunicorn
//! (gthread) and nginx + uWSGI (threads), with nginx in front of uWSGI's HTTP mode and of granian
//! as references. Two endpoints: a small JSON API answer and a rendered page that also
//! sets a session cookie. Memory is the resident set of every process of each stack (front end
//! and Python workers), read after the measured runs. Then the keep-alive storm (`wsgi_storm`)
//! and a cold burst on pools sized on demand (`wsgi_burst`); before them, the JSON API at one
//! fixed rate for paddock and uWSGI (`wsgi_paced`).

use harness::wsgi::WsgiServer;

use crate::load::Client;
use crate::report::{ratio, Table};
use crate::servers::wsgi::{self, PoolSizing, PROCESSES, THREADS};
use crate::servers::Server;
use crate::Bench;

const CONNECTIONS: u32 = 32;
/// The stack the ratios are taken against the peers for: paddock's fastest set-up, its own WSGI
/// worker as `builtin = "wsgi"` runs it (requests sent ahead), each worker process on a CPU of
/// its own, as deploy/examples/flask-paddock-wsgi.toml has it.
const PADDOCK_WSGI: &str = "paddock (threaded pool, builtin wsgi, cpu_affinity = spread)";
/// The same with the front end's event loops pinned as well.
const PADDOCK_WSGI_ALL_PINNED: &str =
    "paddock (threaded pool, builtin wsgi, cpu_affinity = spread, frontend_runtime = per-core-pinned)";
/// The same with the kernel placing the processes (`cpu_affinity`'s default).
const PADDOCK_WSGI_UNPINNED: &str = "paddock (threaded pool, builtin wsgi)";
const PADDOCK_WSGI_QUEUED: &str = "paddock (threaded pool, builtin wsgi, send_ahead = false)";
const PADDOCK: &str = "paddock (threaded pool, granian, HTTP/1.1 kept, send_ahead)";
const PADDOCK_UWSGI_HTTP: &str = "paddock (threaded pool, uWSGI, HTTP/1.1 kept)";
const PADDOCK_UWSGI: &str = "paddock (threaded pool, uWSGI, uwsgi protocol)";
const GUNICORN: &str = "nginx + gunicorn gthread";
const UWSGI: &str = "nginx + uWSGI";
/// nginx and uWSGI with their own pinning: `worker_cpu_affinity auto` and `--cpu-affinity 1`,
/// each worker of either on one CPU, round the CPUs.
const UWSGI_PINNED: &str = "nginx (worker_cpu_affinity auto) + uWSGI --cpu-affinity 1";
/// A reference, not a peer: nginx in front of uWSGI's HTTP mode, the wire paddock's HTTP pool uses.
const UWSGI_HTTP: &str = "nginx + uWSGI over HTTP/1.1 kept (reference)";
/// A reference, not a peer: nginx in front of granian as its command line runs it.
const GRANIAN: &str = "nginx + granian (reference)";
const GUNICORN_ALONE: &str = "gunicorn gthread alone";

/// The stacks compared at a fixed rate (`wsgi_paced`), paddock's first: the better peers of the
/// first part (gunicorn's top speed is half theirs, and would set the rate).
const PACED: [&str; 3] = [PADDOCK_WSGI, UWSGI, UWSGI_PINNED];

/// A file-name-safe tag for a server's raw outputs.
pub(crate) fn tag(server: &str) -> &'static str {
    match server {
        PADDOCK_WSGI => "paddock-wsgi",
        PADDOCK_WSGI_ALL_PINNED => "paddock-wsgi-all-pinned",
        PADDOCK_WSGI_UNPINNED => "paddock-wsgi-unpinned",
        PADDOCK_WSGI_QUEUED => "paddock-wsgi-queued",
        PADDOCK => "paddock",
        PADDOCK_UWSGI_HTTP => "paddock-uwsgi-http",
        PADDOCK_UWSGI => "paddock-uwsgi",
        GUNICORN => "gunicorn",
        UWSGI_HTTP => "uwsgi-http",
        GRANIAN => "granian",
        UWSGI_PINNED => "uwsgi-pinned",
        _ => "uwsgi",
    }
}

pub(crate) fn run(bench: &mut Bench) {
    let servers: Vec<Server> = vec![
        // As deploy/examples/flask-paddock-wsgi.toml: paddock's own worker, FastCGI on kept
        // connections, requests sent ahead to busy processes, each process on a CPU of its own.
        wsgi::paddock_pool(
            &bench.shared,
            PADDOCK_WSGI,
            WsgiServer::Paddock,
            PoolSizing::Static,
            "cpu_affinity = \"spread\"",
        ),
        wsgi::paddock_pinned(&bench.shared, PADDOCK_WSGI_ALL_PINNED),
        wsgi::paddock(&bench.shared, PADDOCK_WSGI_UNPINNED, WsgiServer::Paddock),
        // The same with every request waiting in the front end's queue until a thread is free.
        wsgi::paddock_pool(
            &bench.shared,
            PADDOCK_WSGI_QUEUED,
            WsgiServer::Paddock,
            PoolSizing::Static,
            "send_ahead = false",
        ),
        // As deploy/examples/flask-granian.toml: granian queues requests beyond its threads.
        wsgi::paddock_pool(
            &bench.shared,
            PADDOCK,
            WsgiServer::Granian,
            PoolSizing::Static,
            "send_ahead = true",
        ),
        wsgi::paddock(&bench.shared, PADDOCK_UWSGI_HTTP, WsgiServer::UwsgiHttp),
        wsgi::paddock(&bench.shared, PADDOCK_UWSGI, WsgiServer::UwsgiNative),
        wsgi::nginx_gunicorn(GUNICORN),
        wsgi::nginx_uwsgi(UWSGI),
        wsgi::nginx_uwsgi_pinned(UWSGI_PINNED),
        wsgi::nginx_uwsgi_http(UWSGI_HTTP),
        wsgi::nginx_granian(GRANIAN),
    ];
    let mut table = Table::new(
        &format!("Scenario 9: Flask, {PROCESSES} processes × {THREADS} threads, {CONNECTIONS} connections"),
        &[
            "endpoint",
            "server",
            "req/s",
            "spread",
            "p50 ms",
            "p99 ms",
            "errors",
            "memory MiB",
            "CPU µs a request",
            "of which front end",
            "paddock (paddock-wsgi) / this req/s",
            "paddock (paddock-wsgi) / this p99",
        ],
    );
    let mut json = serde_json::Map::new();
    // The lowest JSON API top speed among the stacks the paced part compares.
    let mut slowest_paced = f64::INFINITY;
    for (endpoint, short, path) in [
        ("JSON API", "json", "/api/items/7"),
        ("page + session", "page", "/"),
    ] {
        let loads: Vec<_> = servers
            .iter()
            .map(|s| {
                let label = format!("{}-{short}", tag(&s.name));
                let load = bench.load(s.url(path), CONNECTIONS, Client::Wrk);
                (label, load.measuring_cpu_of(s))
            })
            .collect();
        let summaries = super::interleaved(bench, "wsgi", &loads);
        let (paddock_rps, paddock_p99) = (summaries[0].rps(), summaries[0].p99());
        if short == "json" {
            slowest_paced = servers
                .iter()
                .zip(&summaries)
                .filter(|(server, _)| PACED.contains(&server.name.as_str()))
                .map(|(_, summary)| summary.rps())
                .fold(f64::INFINITY, f64::min);
        }
        for (server, summary) in servers.iter().zip(&summaries) {
            let memory_mib = server.rss_kib() as f64 / 1024.0;
            let mut cells = vec![endpoint.to_string(), server.name.clone()];
            cells.extend(summary.cells());
            cells.push(format!("{memory_mib:.0}"));
            cells.push(summary.cpu_cell());
            cells.push(summary.front_cpu_cell());
            // uWSGI's HTTP reference is no peer, and its p99 says nothing (the note says why).
            if server.name == PADDOCK_WSGI || server.name == UWSGI_HTTP {
                cells.extend([String::new(), String::new()]);
            } else {
                cells.push(ratio(paddock_rps, summary.rps()));
                cells.push(ratio(paddock_p99, summary.p99()));
            }
            table.row(cells);
            let mut entry = summary.to_json();
            entry["memory_kib"] = server.rss_kib().into();
            json.insert(format!("{endpoint}/{}", server.name), entry);
        }
    }
    table.note(
        "The same app file and Debian's Flask for every stack. gunicorn: --worker-class gthread \
         --workers 2 --threads 8, nginx proxy_pass over a Unix socket with upstream keepalive. \
         uWSGI: --master --processes 2 --threads 8, nginx uwsgi_pass over a Unix socket. paddock: \
         an application mount at / to a static threaded pool of 2 × 8, each worker running \
         paddock-wsgi (builtin = \"wsgi\": paddock's own WSGI worker, Debian's CPython embedded, \
         8 threads starting requests in the order they arrived, FastCGI on connections kept one \
         a slot, the CGI variables as the environ, so without ProxyFix; up to 8 more requests a \
         process sent ahead to wait in it for a thread, or none with send_ahead = false), \
         granian 2.8.7 from the Python package registry (deploy/examples/wsgi/granian_serve.py: \
         one process of 8 Python threads on the inherited socket) or Debian's uWSGI (--threads \
         8, no master: paddock is the master), speaking HTTP/1.1 (uWSGI: --protocol http11 \
         --socket-timeout 3600) to a pool with protocol = \"http\", which keeps each slot's \
         connection, or the uwsgi protocol to a pool with protocol = \"uwsgi\", a connection a \
         request. paddock's first row pins each of its two workers to a CPU of its own \
         (cpu_affinity = \"spread\"), the second its two event loops as well \
         (frontend_runtime = \"per-core-pinned\"), the third nothing. nginx with \
         worker_cpu_affinity auto and uWSGI with --cpu-affinity 1 pin theirs the same way. No recycling, access logs off. A paddock / this p99 below 1 means paddock's p99 is lower. CPU: user + system time \
         of every process of the stack (front end, application server and its master) during \
         a run, per answered request; of which front end: the part of it spent by nginx or by \
         paddock's front-end process, the rest being the application server's. nginx + uWSGI \
         over HTTP/1.1 kept is a reference for CPU, not a peer: the same uWSGI behind nginx over kept HTTP/1.1 \
         (--http11-socket, proxy_pass with upstream keepalive of 8, so that the idle connections \
         of nginx's two workers never outnumber uWSGI's 16 threads, each of which a kept \
         connection holds), the wire paddock's HTTP pool uses; its p99 is not comparable, since \
         nginx still opens connections beyond its idle ones and a request on one waits in \
         uWSGI's backlog until a thread is free. nginx + granian is a \
         reference too: granian's command line (--workers 2 --blocking-threads 8, its \
         supervisor forking the two) behind nginx proxy_pass with upstream keepalive 32, so \
         that what is granian's and what is the front end's shows apart.",
    );
    bench.report.table(&table);
    bench.report.record("wsgi", json.into());

    // The JSON API again, every compared stack at the same offered load.
    let paced: Vec<&Server> = PACED
        .iter()
        .filter_map(|name| servers.iter().find(|server| server.name == *name))
        .collect();
    if slowest_paced.is_finite() && slowest_paced > 0.0 {
        super::wsgi_paced::run(bench, &paced, slowest_paced);
    }

    // The keep-alive storm, on the same running stacks plus gunicorn with no proxy in front;
    // not on the references, nor on the variants that differ from another stack only by
    // pinning.
    let mut stacks: Vec<(&str, Server)> = servers
        .into_iter()
        .map(|server| (tag(&server.name), server))
        .filter(|(tag, _)| {
            !matches!(
                *tag,
                "uwsgi-http"
                    | "granian"
                    | "paddock-wsgi-all-pinned"
                    | "paddock-wsgi-unpinned"
                    | "uwsgi-pinned"
            )
        })
        .collect();
    stacks.push(("gunicorn-alone", wsgi::gunicorn_alone(GUNICORN_ALONE)));
    super::wsgi_storm::run(bench, &stacks);
    drop(stacks);
    // The cold burst needs a fresh server for every run.
    super::wsgi_burst::run(bench);
}
