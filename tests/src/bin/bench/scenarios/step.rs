//! Issue 4's step load: one client sends 100 ms requests back to back, then 63 more join at
//! once (64 concurrent). Against ondemand and dynamic pools with max 64: how long until 64
//! workers are busy, and how many requests are served in the first seconds after the step?
//! paddock vs php-fpm (behind nginx) with the same sizing, each started fresh per run.

use std::net::SocketAddr;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use harness::client::Connection;

use crate::report::{ms, Table};
use crate::servers::php::{php_fpm, Pm};
use crate::servers::{nginx, paddock, Server, Shared};
use crate::stats::{median, quantile};
use crate::Bench;

use super::slow::{concurrency, now_us, timed_request, Timed, WorkerWatch};

const SLEEP_MS: u32 = 100;
const CLIENTS: usize = 64;
const BEFORE_STEP: Duration = Duration::from_secs(2);

/// (label, paddock sizing or php-fpm pm).
const SERVERS: [&str; 4] = [
    "paddock ondemand",
    "paddock dynamic",
    "nginx + php-fpm ondemand",
    "nginx + php-fpm dynamic",
];

/// Debian's default dynamic pool (start 2, spare 1–3), with max raised to 64.
const DYNAMIC: (u32, u32, u32) = (2, 1, 3);

fn start(shared: &Shared, name: &str) -> Server {
    let (start, min_spare, max_spare) = DYNAMIC;
    let max = CLIENTS as u32;
    match name {
        "paddock ondemand" => paddock::start(shared, name, paddock::Sizing::Ondemand { max }),
        "paddock dynamic" => paddock::start(
            shared,
            name,
            paddock::Sizing::Dynamic {
                max,
                start,
                min_spare,
                max_spare,
            },
        ),
        "nginx + php-fpm ondemand" => {
            nginx::start(shared, name, |d| Some(php_fpm(d, Pm::Ondemand { max })))
        }
        _ => nginx::start(shared, name, |d| {
            Some(php_fpm(
                d,
                Pm::Dynamic {
                    max,
                    start,
                    min_spare,
                    max_spare,
                },
            ))
        }),
    }
}

/// Client `index` loops from its start time until `end`; client 0 starts before the step.
fn client(
    addr: SocketAddr,
    index: usize,
    zero_us: f64,
    end: Instant,
    go: Arc<Barrier>,
) -> Vec<Timed> {
    let mut done = Vec::new();
    if index > 0 {
        go.wait();
    }
    let Ok(mut conn) = Connection::open(addr) else {
        return done;
    };
    while Instant::now() < end {
        let timed = timed_request(&mut conn, SLEEP_MS, zero_us);
        let failed = !timed.ok;
        done.push(timed);
        if failed {
            match Connection::open(addr) {
                Ok(c) => conn = c,
                Err(_) => break,
            }
        }
    }
    done
}

struct Outcome {
    busy_ms: Option<f64>,
    workers_ms: Option<f64>,
    first_1s: usize,
    first_3s: usize,
    p99_ms: f64,
    errors: usize,
}

fn step_once(server: &Server, after_step: Duration) -> Outcome {
    let zero_us = now_us() + BEFORE_STEP.as_micros() as f64;
    let step_at = Instant::now() + BEFORE_STEP;
    let end = step_at + after_step;
    let go = Arc::new(Barrier::new(CLIENTS));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let go = go.clone();
            let addr = server.http;
            std::thread::spawn(move || client(addr, i, zero_us, end, go))
        })
        .collect();
    let workers = server.workers.clone().expect("workers");
    let watch = WorkerWatch::start(workers, CLIENTS, zero_us, BEFORE_STEP + after_step);
    std::thread::sleep(step_at.saturating_duration_since(Instant::now()));
    go.wait();
    let requests: Vec<Timed> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("step client"))
        .collect();
    let (workers_ms, _) = watch.finish();
    let (busy_ms, _) = concurrency(&requests, CLIENTS, 0.0);
    let served = |until_ms: f64| {
        requests
            .iter()
            .filter(|r| r.ok && r.done_ms >= 0.0 && r.done_ms < until_ms)
            .count()
    };
    let mut latencies: Vec<f64> = requests
        .iter()
        .filter(|r| r.ok && r.sent_ms >= 0.0)
        .map(|r| r.done_ms - r.sent_ms)
        .collect();
    Outcome {
        busy_ms,
        workers_ms,
        first_1s: served(1000.0),
        first_3s: served(3000.0),
        p99_ms: quantile(&mut latencies, 0.99),
        errors: requests.iter().filter(|r| !r.ok).count(),
    }
}

pub(crate) fn run(bench: &mut Bench) {
    let after_step = if bench.quick {
        Duration::from_secs(3)
    } else {
        Duration::from_secs(5)
    };
    let mut table = Table::new(
        "Step load: 1 → 64 concurrent 100 ms requests, pools with max 64",
        &[
            "server",
            "64 scripts running at once ms",
            "64 workers exist ms",
            "served in 1st s (ideal 640)",
            "served in first 3 s (ideal 1,920)",
            "p99 ms",
            "errors",
        ],
    );
    let mut json = serde_json::Map::new();
    let mut outcomes: Vec<Vec<Outcome>> = SERVERS.iter().map(|_| Vec::new()).collect();
    for run in 0..bench.runs {
        for k in 0..SERVERS.len() {
            let i = (k + run) % SERVERS.len();
            bench.check_interrupted();
            let server = start(&bench.shared, SERVERS[i]);
            std::thread::sleep(Duration::from_millis(500));
            let o = step_once(&server, after_step);
            eprintln!(
                "bench: step {} run {}: 64 busy after {:?} ms, {} served in 1 s, {} errors",
                SERVERS[i],
                run + 1,
                o.busy_ms.map(f64::round),
                o.first_1s,
                o.errors
            );
            outcomes[i].push(o);
        }
    }
    for (name, runs) in SERVERS.iter().zip(&outcomes) {
        let reached = |f: fn(&Outcome) -> Option<f64>| {
            let values: Vec<f64> = runs.iter().filter_map(f).collect();
            let missing = runs.len() - values.len();
            let text = ms(median(&values));
            if missing > 0 {
                format!("{text} (not reached in {missing} runs)")
            } else {
                text
            }
        };
        let med = |f: fn(&Outcome) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
        table.row(vec![
            name.to_string(),
            reached(|o| o.busy_ms),
            reached(|o| o.workers_ms),
            format!("{:.0}", med(|o| o.first_1s as f64)),
            format!("{:.0}", med(|o| o.first_3s as f64)),
            ms(med(|o| o.p99_ms)),
            runs.iter().map(|o| o.errors).sum::<usize>().to_string(),
        ]);
        json.insert(
            name.to_string(),
            serde_json::json!(runs
                .iter()
                .map(|o| serde_json::json!({
                    "busy_64_ms": o.busy_ms, "workers_64_ms": o.workers_ms,
                    "served_first_1s": o.first_1s, "served_first_3s": o.first_3s,
                    "p99_ms": o.p99_ms, "errors": o.errors,
                }))
                .collect::<Vec<_>>()),
        );
    }
    let (start, min_spare, max_spare) = DYNAMIC;
    table.note(format!(
        "Medians of {} runs, each on a fresh server; times from the step. One client ran alone \
         for {} s before it. Dynamic pools: start {start}, min spare {min_spare}, max spare \
         {max_spare} (Debian's php-fpm defaults, max raised to 64). p99: latency of the requests \
         sent after the step.",
        bench.runs,
        BEFORE_STEP.as_secs()
    ));
    bench.report.table(&table);
    bench.report.record("step", json.into());
}
