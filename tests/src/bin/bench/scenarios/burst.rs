//! Scenario 5: demand scaling from cold. 32, then 64, concurrent 200 ms requests arrive at once on
//! an ondemand pool with no worker running: when does the first and the last answer come, and
//! when are all the workers running? paddock (`sizing = "ondemand"`, max 64) vs nginx + php-fpm
//! (`pm = ondemand`, max_children 64). A fresh server for every burst, so each one starts cold.

use std::time::Duration;

use crate::report::{ms, Table};
use crate::servers::php::{php_fpm, Pm};
use crate::servers::{nginx, paddock, Server, Shared};
use crate::stats::median;
use crate::Bench;

use super::slow::{burst, concurrency};

const SLEEP_MS: u32 = 200;
const MAX_WORKERS: u32 = 64;
/// Issue 7's target: every request of a cold burst of 32 answered within this.
const TARGET_MS: f64 = 400.0;

const PADDOCK: &str = "paddock ondemand";
const FPM: &str = "nginx + php-fpm ondemand";

fn start(shared: &Shared, name: &str) -> Server {
    if name == PADDOCK {
        paddock::start(shared, name, paddock::Sizing::Ondemand { max: MAX_WORKERS })
    } else {
        nginx::start(shared, name, |d| {
            Some(php_fpm(d, Pm::Ondemand { max: MAX_WORKERS }))
        })
    }
}

#[derive(Debug, Default)]
struct Runs {
    first: Vec<f64>,
    last: Vec<f64>,
    all_workers: Vec<f64>,
    all_running: Vec<f64>,
    max_workers: Vec<f64>,
    errors: usize,
    never: usize,
}

fn cell(values: &[f64], never: usize) -> String {
    let text = ms(median(values));
    if never > 0 {
        format!("{text} (not reached in {never} runs)")
    } else {
        text
    }
}

pub(crate) fn run(bench: &mut Bench) {
    let mut table = Table::new(
        "Scenario 5: cold burst of 200 ms requests on an ondemand pool (max 64)",
        &[
            "burst",
            "server",
            "first answer ms",
            "last answer ms",
            "all N workers exist ms",
            "N scripts running at once ms",
            "most workers",
            "errors",
            "last answer ≤ 400 ms",
        ],
    );
    let mut json = serde_json::Map::new();
    for n in [32usize, 64] {
        let mut results = [Runs::default(), Runs::default()];
        for run in 0..bench.runs {
            for k in 0..2 {
                let i = (k + run) % 2;
                let name = [PADDOCK, FPM][i];
                bench.check_interrupted();
                let server = start(&bench.shared, name);
                // Let the server settle (ondemand: no worker yet).
                std::thread::sleep(Duration::from_millis(500));
                let workers = server.workers.clone().expect("workers");
                let (requests, all_workers, max_workers) =
                    burst(server.http, n, SLEEP_MS, &workers);
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
                let (running, _) = concurrency(&requests, n, 0.0);
                if let Some(t) = running {
                    r.all_running.push(t);
                }
                r.max_workers.push(max_workers as f64);
                eprintln!(
                    "bench: burst {n} {name} run {}: last answer {} ms, all workers {:?} ms, \
                     {} errors",
                    run + 1,
                    ms(*r.last.last().unwrap_or(&f64::NAN)),
                    all_workers.map(|t| t.round()),
                    requests.iter().filter(|t| !t.ok).count()
                );
            }
        }
        for (i, name) in [PADDOCK, FPM].iter().enumerate() {
            let r = &results[i];
            let last = median(&r.last);
            let not_running = bench.runs - r.all_running.len();
            table.row(vec![
                format!("{n} × {SLEEP_MS} ms"),
                name.to_string(),
                ms(median(&r.first)),
                ms(last),
                cell(&r.all_workers, r.never),
                cell(&r.all_running, not_running),
                format!("{:.0}", median(&r.max_workers)),
                r.errors.to_string(),
                if n == 32 {
                    if last <= TARGET_MS { "yes" } else { "no" }.to_string()
                } else {
                    String::new()
                },
            ]);
            json.insert(
                format!("{n}/{name}"),
                serde_json::json!({
                    "first_ms": r.first, "last_ms": r.last, "all_workers_ms": r.all_workers,
                    "all_running_ms": r.all_running, "max_workers": r.max_workers,
                    "errors": r.errors,
                }),
            );
        }
    }
    table.note(format!(
        "Medians of {} bursts per row, each on a freshly started server. Times from the instant \
         all requests were released (connections opened beforehand). \"Workers exist\": worker \
         processes counted in /proc every 5 ms; \"running at once\": from the start and end times \
         each script reported. The ideal last answer is {SLEEP_MS} ms plus one worker start.",
        bench.runs
    ));
    bench.report.table(&table);
    bench.report.record("burst", json.into());
}
