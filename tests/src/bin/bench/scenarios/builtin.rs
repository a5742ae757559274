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

/// PSS per PHP worker in MiB, its share of the PHP parent included (builtin's `paddock-php`,
/// php-fpm's master): what each worker costs.
#[derive(Debug, Clone, Copy)]
pub(super) struct PssPerWorker {
    /// All workers' and the parent's PSS over the number of workers.
    pub(super) mean_mib: f64,
    /// The median worker's PSS plus the parent's share. A real application does one-off work
    /// in whichever worker it happens to land on (MediaWiki regenerating an expired cache
    /// entry loaded ICU's data and compiled scripts no other worker ran, about 1.5–4 MiB of
    /// that worker's own), which moves the mean of 4 workers by up to 1 MiB from run to run;
    /// the median worker is what a worker typically costs.
    pub(super) median_mib: f64,
}

impl PssPerWorker {
    pub(super) fn cells(self) -> String {
        format!("{:.2} ({:.2})", self.mean_mib, self.median_mib)
    }
}

pub(super) fn pss_per_worker(server: &Server) -> PssPerWorker {
    let none = PssPerWorker {
        mean_mib: f64::NAN,
        median_mib: f64::NAN,
    };
    let Some(workers) = &server.workers else {
        return none;
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
    let worker_kib: Vec<f64> = pids
        .iter()
        .filter_map(|&p| pss_kib(p))
        .map(|k| k as f64)
        .collect();
    if worker_kib.is_empty() {
        return none;
    }
    let parent_kib: f64 = parents.iter().filter_map(|&p| pss_kib(p)).sum::<u64>() as f64;
    let n = worker_kib.len() as f64;
    let parent_share = parent_kib / n;
    PssPerWorker {
        mean_mib: (worker_kib.iter().sum::<f64>() / n + parent_share) / 1024.0,
        median_mib: (median(&worker_kib) + parent_share) / 1024.0,
    }
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
                let load = bench.load(s.url(&format!("/{page}")), CONNECTIONS, Client::Wrk);
                (label, load.measuring_cpu_of(s))
            })
            .collect();
        let summaries = super::interleaved(bench, "builtin", &loads);
        let base = summaries[0].rps();
        for (server, summary) in servers.iter().zip(&summaries) {
            let pss = pss_per_worker(server);
            let mut cells = vec![page.to_string(), server.name.clone()];
            cells.extend(summary.cells());
            cells.push(if server.name == BUILTIN {
                String::new()
            } else {
                ratio(base, summary.rps())
            });
            cells.push(summary.cpu_cell());
            cells.push(pss.cells());
            table.row(cells);
            json.insert(
                format!("{page}/{}", server.name),
                serde_json::json!({
                    "load": summary.to_json(),
                    "pss_per_worker_mib": pss.mean_mib,
                    "pss_median_worker_mib": pss.median_mib,
                }),
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

/// Whether paddock-php's library was built next to paddock; says so when not.
pub(super) fn have_builtin(bench: &Bench) -> bool {
    let built = bench
        .shared
        .paddock_bin
        .with_file_name("libpaddock_php.so")
        .exists();
    if !built {
        eprintln!(
            "bench: builtin: skipped, no libpaddock_php.so next to paddock (apt-get install \
             php8.2-dev php8.2-cgi; tests/bench/run.sh builds it)"
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
            "CPU µs a request",
            "PSS per PHP worker MiB: mean (median worker)",
        ],
    );
    throughput(bench, &mut table, &mut json);
    table.note(
        "4 workers each (Apache: 48 processes); the same site and scripts; Debian's php.ini per \
         SAPI (OPcache on). PSS per worker is measured right after the load and includes, for \
         builtin and php-fpm, an equal share of the PHP parent (paddock-php, the php-fpm master). \
         CPU: user + system time of every process of the stack (front end and PHP) during a \
         run, per answered request.",
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
