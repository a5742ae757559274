//! Scenario 8 (issue 14): paddock's own PHP worker (`builtin = "php"`, forked from a warm parent)
//! against paddock with php-cgi, nginx + php-fpm and Apache prefork + mod_php, in the same run:
//! - hello.php and heavy.php, 32 connections, 4 workers (Apache: its 48 processes);
//! - memory: PSS per PHP worker after that load (`/proc/PID/smaps_rollup`), the parent's included
//!   for builtin and php-fpm (their workers share it);
//! - spawn: a cold burst of 32 × 200 ms on an ondemand pool (max 64), builtin vs php-cgi.

use std::time::Duration;

use crate::load::Client;
use crate::report::{ms, ratio, Table};
use crate::servers::apache::{self, Mpm};
use crate::servers::php::{php_fpm, Pm};
use crate::servers::{nginx, paddock, Server, Shared};
use crate::stats::median;
use crate::Bench;

use super::php::{CONNECTIONS, PREFORK_PROCESSES, WORKERS};
use super::slow::burst;

pub(super) const BUILTIN: &str = "paddock builtin php";
pub(super) const CGI: &str = "paddock php-cgi";
pub(super) const FPM: &str = "nginx + php-fpm";
const PREFORK: &str = "Apache prefork + mod_php";
const BURST: usize = 32;
const SLEEP_MS: u32 = 200;

pub(super) fn start(shared: &Shared, name: &str, sizing: paddock::Sizing) -> Server {
    match name {
        BUILTIN => paddock::start_builtin(shared, name, sizing),
        CGI => paddock::start(shared, name, sizing),
        FPM => nginx::start(shared, name, |d| Some(php_fpm(d, Pm::Static(WORKERS)))),
        PREFORK => apache::start(
            shared,
            name,
            Mpm::PreforkModPhp {
                processes: PREFORK_PROCESSES,
            },
            |_| None,
        ),
        other => unreachable!("no server {other}"),
    }
}

/// Proportional set size of `pid` in KiB (shared pages split among their users).
fn pss_kib(pid: u32) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    rollup
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// PSS of the server's PHP workers, plus their PHP parent's when they have one (builtin's
/// `paddock-php`, php-fpm's master), divided by the number of workers, in MiB: what each worker
/// costs, its share of the parent included.
pub(super) fn pss_per_worker_mib(server: &Server) -> f64 {
    let Some(workers) = &server.workers else {
        return f64::NAN;
    };
    let pids = workers.pids();
    let parents: Vec<u32> = match server.name.as_str() {
        BUILTIN => crate::procs::children_named(workers.parent, "paddock-php"),
        FPM => vec![workers.parent],
        _ => Vec::new(),
    };
    // For finding where a difference lies (docs/benchmarks.md, "BENCH_SMAPS_DIR").
    if let Ok(dir) = std::env::var("BENCH_SMAPS_DIR") {
        for p in pids.iter().chain(&parents) {
            let _ = std::fs::copy(
                format!("/proc/{p}/smaps"),
                format!("{dir}/{}-{p}.smaps", server.name.replace(' ', "_")),
            );
        }
    }
    let total: u64 = pids
        .iter()
        .chain(&parents)
        .filter_map(|&p| pss_kib(p))
        .sum();
    if pids.is_empty() {
        return f64::NAN;
    }
    total as f64 / pids.len() as f64 / 1024.0
}

fn throughput(
    bench: &mut Bench,
    table: &mut Table,
    json: &mut serde_json::Map<String, serde_json::Value>,
) {
    let names = [BUILTIN, CGI, FPM, PREFORK];
    let servers: Vec<Server> = names
        .iter()
        .map(|n| start(&bench.shared, n, paddock::Sizing::Static(WORKERS)))
        .collect();
    for page in ["hello.php", "heavy.php"] {
        let loads: Vec<_> = servers
            .iter()
            .map(|s| {
                let label = format!("{}-{page}", s.name);
                (
                    label,
                    bench.load(s.url(&format!("/{page}")), CONNECTIONS, Client::Wrk),
                )
            })
            .collect();
        let summaries = super::interleaved(bench, "builtin", &loads);
        let base = summaries[0].rps();
        for (server, summary) in servers.iter().zip(&summaries) {
            let pss = pss_per_worker_mib(server);
            let mut cells = vec![page.to_string(), server.name.clone()];
            cells.extend(summary.cells());
            cells.push(if server.name == BUILTIN {
                String::new()
            } else {
                ratio(base, summary.rps())
            });
            cells.push(format!("{pss:.1}"));
            table.row(cells);
            json.insert(
                format!("{page}/{}", server.name),
                serde_json::json!({ "load": summary.to_json(), "pss_per_worker_mib": pss }),
            );
        }
    }
}

fn cold_burst(
    bench: &mut Bench,
    table: &mut Table,
    json: &mut serde_json::Map<String, serde_json::Value>,
) {
    let names = [BUILTIN, CGI];
    let mut last = [Vec::new(), Vec::new()];
    let mut errors = [0usize, 0];
    for run in 0..bench.runs {
        for k in 0..names.len() {
            let i = (k + run) % names.len();
            bench.check_interrupted();
            let server = start(
                &bench.shared,
                names[i],
                paddock::Sizing::Ondemand { max: 64 },
            );
            // An ondemand pool starts with no worker; builtin's parent starts with the first.
            std::thread::sleep(Duration::from_millis(500));
            let workers = server.workers.clone().expect("workers");
            let (requests, _, _) = burst(server.http, BURST, SLEEP_MS, &workers);
            drop(server);
            errors[i] += requests.iter().filter(|t| !t.ok).count();
            let done = requests.iter().filter(|t| t.ok).map(|t| t.done_ms);
            last[i].push(done.fold(0.0, f64::max));
        }
    }
    for (i, name) in names.iter().enumerate() {
        table.row(vec![
            format!("cold burst {BURST} × {SLEEP_MS} ms"),
            name.to_string(),
            format!("last answer {} ms", ms(median(&last[i]))),
            format!("{} errors", errors[i]),
        ]);
        json.insert(
            format!("burst/{name}"),
            serde_json::json!({ "last_ms": last[i], "errors": errors[i] }),
        );
    }
}

/// Whether paddock-php was built next to paddock; says so when not.
pub(super) fn have_builtin(bench: &Bench) -> bool {
    let built = bench
        .shared
        .paddock_bin
        .with_file_name("paddock-php")
        .exists();
    if !built {
        eprintln!(
            "bench: builtin: skipped, no paddock-php next to paddock (apt-get install \
             libphp8.2-embed php8.2-dev; tests/bench/run.sh builds it)"
        );
    }
    built
}

pub(crate) fn run(bench: &mut Bench) {
    if !have_builtin(bench) {
        return;
    }
    let mut json = serde_json::Map::new();
    let mut table = Table::new(
        "Scenario 8: builtin = \"php\" (warm parent) vs php-cgi, php-fpm and mod_php, 32 connections",
        &[
            "page",
            "server",
            "req/s",
            "spread",
            "p50 ms",
            "p99 ms",
            "errors",
            "builtin / peer req/s",
            "PSS per PHP worker MiB",
        ],
    );
    throughput(bench, &mut table, &mut json);
    table.note(
        "4 workers each (Apache: 48 processes); the same site and scripts; Debian's php.ini per \
         SAPI (OPcache on). PSS per worker is measured right after the load and includes, for \
         builtin and php-fpm, an equal share of the PHP parent (paddock-php, the php-fpm master).",
    );
    bench.report.table(&table);
    spawning(bench, &mut json);
    bench.report.record("builtin", json.into());
}

/// Only the cold burst (`bench builtin-burst`).
pub(crate) fn run_burst(bench: &mut Bench) {
    if !have_builtin(bench) {
        return;
    }
    let mut json = serde_json::Map::new();
    spawning(bench, &mut json);
    bench.report.record("builtin-burst", json.into());
}

fn spawning(bench: &mut Bench, json: &mut serde_json::Map<String, serde_json::Value>) {
    let mut spawn = Table::new(
        "Scenario 8: spawning from cold (ondemand, max 64)",
        &["burst", "server", "last answer", "errors"],
    );
    cold_burst(bench, &mut spawn, json);
    spawn.note(format!(
        "Medians of {} bursts per row, each on a fresh server; the ideal is {SLEEP_MS} ms plus one \
         worker start (issue 14's target: 300 ms).",
        bench.runs
    ));
    bench.report.table(&spawn);
}
