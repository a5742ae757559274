//! Scenario 8b (issue 14): a real application, MediaWiki (Debian's package, installed on SQLite
//! by its own installer), on paddock's own PHP worker against paddock with php-cgi and nginx +
//! php-fpm, in the same run:
//! - its main page, 8 connections, 4 workers each: req/s, p99, and PSS per PHP worker after the
//!   load (the parent's share included for builtin and php-fpm, as in scenario 8);
//! - a recycled worker's first request: one worker retired every 10 requests (`max_requests`),
//!   requests sent one at a time; each new worker's first request against the others (issue
//!   14: within 1.2× of a warm request). php-cgi starts every process with an empty OPcache;
//!   builtin workers share their parent's.

use std::time::{Duration, Instant};

use harness::client::Connection;

use crate::load::Client;
use crate::report::{ms, ratio, Table};
use crate::servers::paddock::{self, Handler, Sizing};
use crate::servers::{Server, Shared};
use crate::stats::median;
use crate::Bench;

use super::builtin::{have_builtin, pss_per_worker, BUILTIN, CGI, FPM};
use super::php::WORKERS;
use super::LOAD_COLUMNS;

/// The wiki's main page, by its script's name (nginx reads no `.htaccess`, so no short URL).
const PAGE: &str = "/w/index.php?title=Main_Page";
const CONNECTIONS: u32 = 8;
/// Requests per worker before it retires, in the recycling part.
const RECYCLE_EVERY: usize = 10;
/// Workers whose first request is timed, per server.
const RECYCLES: usize = 8;
/// A run of the page lasts this many times the bench's run duration (30 s by default): at about
/// 40 requests a second a 10 s run's p99 rests on its 4 slowest requests, and MediaWiki's own
/// occasional heavy requests (0.25–1 s of work, docs/benchmarks.md) moved one run's p99 by tens
/// of ms wherever they fell.
const RUN_STRETCH: u32 = 3;
/// Requests that prime a new wiki before the measured servers start (see [`prime`]).
const PRIMING_REQUESTS: usize = 3;

fn throughput(bench: &mut Bench, shared: &Shared) -> Table {
    let mut columns = vec!["server"];
    columns.extend(LOAD_COLUMNS);
    columns.extend([
        "builtin / peer req/s",
        "CPU µs a request",
        "PSS per PHP worker MiB: mean (median worker)",
    ]);
    let mut table = Table::new(
        "Scenario 8b: MediaWiki's main page, builtin php vs php-cgi and php-fpm, 8 connections",
        &columns,
    );
    let servers: Vec<Server> = [BUILTIN, CGI, FPM]
        .iter()
        .map(|name| super::builtin::start(shared, name, Sizing::Static(WORKERS)))
        .collect();
    let loads: Vec<_> = servers
        .iter()
        .map(|s| {
            let mut load = bench.load(s.url(PAGE), CONNECTIONS, Client::Wrk);
            load.duration *= RUN_STRETCH;
            (s.name.clone(), load.measuring_cpu_of(s))
        })
        .collect();
    let summaries = super::interleaved(bench, "builtin-app", &loads);
    let base = summaries[0].rps();
    for (server, summary) in servers.iter().zip(&summaries) {
        let mut cells = vec![server.name.clone()];
        cells.extend(summary.cells());
        cells.push(if server.name == BUILTIN {
            String::new()
        } else {
            ratio(base, summary.rps())
        });
        cells.push(summary.cpu_cell());
        cells.push(pss_per_worker(server).cells());
        table.row(cells);
    }
    table.note(
        "4 workers each, the same wiki directory and SQLite database; Debian's php.ini per SAPI \
         (OPcache on). PSS right after the load. CPU: user + system time of every process of the \
         stack (front end and PHP) during a run, per answered request.",
    );
    table
}

/// Requests the page through a throwaway php-cgi server before any measured server starts.
///
/// A new wiki's first requests do one-time work whose results persist in its database and
/// files (its caches filled, ICU's data loaded to build them). Without this, the first server
/// measured paid for it: the builtin worker that served the wiki's first request ended the
/// load with about 2.5 MiB more ICU pages and 0.9 MiB more OPcache pages of its own than any
/// php-fpm child, which made builtin's PSS per worker look 7 % higher (docs/benchmarks.md,
/// scenario 8b).
fn prime(shared: &Shared) {
    let server = super::builtin::start(shared, CGI, Sizing::Static(1));
    for _ in 0..PRIMING_REQUESTS {
        if timed_get(&server).is_none() {
            eprintln!("bench: 8b: priming the wiki: a request failed");
        }
    }
}

/// One GET of the page on a new connection: its time in ms, or `None` when it failed.
fn timed_get(server: &Server) -> Option<f64> {
    let started = Instant::now();
    let response = Connection::open(server.http)
        .ok()?
        .request("GET", PAGE, &[], b"")
        .ok()?;
    (response.status == 200).then(|| started.elapsed().as_secs_f64() * 1000.0)
}

/// Waits until the server's only worker is another process than `previous`; its pid.
fn next_worker(server: &Server, previous: Option<u32>) -> Option<u32> {
    let workers = server.workers.as_ref()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let [pid] = workers.pids()[..] {
            if Some(pid) != previous {
                return Some(pid);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

/// First requests of new workers and the requests after them, in ms, and the failures.
fn recycled_first_requests(
    bench: &Bench,
    shared: &Shared,
    handler: Handler,
    name: &str,
) -> (Vec<f64>, Vec<f64>, usize) {
    let extra = format!("max_requests = {RECYCLE_EVERY}\n");
    let server = paddock::start_app(shared, name, Sizing::Static(1), handler, &extra);
    let (mut first, mut warm, mut failed) = (Vec::new(), Vec::new(), 0);
    let mut worker = None;
    // The first worker's life is the warm-up: it fills OPcache (the shared one, for builtin)
    // and MediaWiki's caches.
    for life in 0..=RECYCLES {
        bench.check_interrupted();
        worker = next_worker(&server, worker);
        if worker.is_none() {
            failed += 1;
            break;
        }
        for n in 0..RECYCLE_EVERY {
            match timed_get(&server) {
                Some(_) if life == 0 => {}
                Some(t) if n == 0 => first.push(t),
                Some(t) => warm.push(t),
                None => failed += 1,
            }
        }
    }
    (first, warm, failed)
}

fn recycling(bench: &mut Bench, shared: &Shared) -> Table {
    let mut table = Table::new(
        "Scenario 8b: a recycled worker's first request (MediaWiki's main page, one worker, max_requests = 10)",
        &["server", "first request ms", "later requests ms", "first / later", "failed"],
    );
    for (handler, name) in [(Handler::Builtin, BUILTIN), (Handler::PhpCgi, CGI)] {
        let (first, warm, failed) = recycled_first_requests(bench, shared, handler, name);
        let (first, warm) = (median(&first), median(&warm));
        table.row(vec![
            name.to_string(),
            ms(first),
            ms(warm),
            format!("{:.2}×", first / warm),
            failed.to_string(),
        ]);
    }
    table.note(format!(
        "Medians over {RECYCLES} new workers, requests one at a time on new connections, each \
         new worker's first request sent once its pid shows (so the fork or exec is not in it)."
    ));
    table
}

pub(crate) fn run(bench: &mut Bench) {
    if !have_builtin(bench) {
        return;
    }
    let work = tempfile::tempdir().expect("temp dir");
    let htdocs = work.path().join("htdocs");
    let w = harness::mediawiki::copy_package(&htdocs);
    // The wiki's own links name this address; every server here answers the page whatever it is.
    harness::mediawiki::run_installer(&w, &work.path().join("data"), "http://127.0.0.1");
    let shared = Shared {
        site: htdocs,
        certs: bench.shared.certs.clone(),
        paddock_bin: bench.shared.paddock_bin.clone(),
    };
    prime(&shared);
    let table = throughput(bench, &shared);
    bench.report.table(&table);
    let table = recycling(bench, &shared);
    bench.report.table(&table);
}
