//! Scenario 6: the cost of failing workers. The PHP hello load of scenario 2 while one worker,
//! picked at random, is killed with SIGKILL every 100 ms: throughput and failed requests against
//! the same load undisturbed. paddock vs nginx + php-fpm (pm static 4, which respawns).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::load::Client;
use crate::procs;
use crate::report::{Summary, Table};
use crate::servers::Workers;
use crate::Bench;

use super::php::{self, CONNECTIONS, NGINX_FPM, PADDOCK};
use super::Rng;

const INTERVAL: Duration = Duration::from_millis(100);

/// Kills a random worker every [`INTERVAL`] until dropped.
struct Killer {
    stop: Arc<AtomicBool>,
    kills: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Killer {
    fn start(workers: Workers) -> Killer {
        let stop = Arc::new(AtomicBool::new(false));
        let kills = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, kills) = (stop.clone(), kills.clone());
            std::thread::spawn(move || {
                let mut rng = Rng::seeded();
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(INTERVAL);
                    let pids = workers.pids();
                    if !pids.is_empty() && procs::kill_pid(pids[rng.below(pids.len())]) {
                        kills.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        };
        Killer {
            stop,
            kills,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.kills.load(Ordering::Relaxed)
    }
}

pub(crate) fn run(bench: &mut Bench) {
    let mut table = Table::new(
        "Scenario 6: PHP hello, 32 connections, one worker killed every 100 ms",
        &[
            "server",
            "workers killed",
            "req/s",
            "spread",
            "p50 ms",
            "p99 ms",
            "failed requests",
            "% of undisturbed req/s",
        ],
    );
    let mut json = serde_json::Map::new();
    for name in [PADDOCK, NGINX_FPM] {
        let server = php::start(&bench.shared, name);
        let load = bench.load(server.url("/hello.php"), CONNECTIONS, Client::Wrk);
        bench.warm_up("kills", name, &load);
        let workers = server.workers.clone().expect("workers");
        let (mut calm, mut killed, mut kills) = (Summary::default(), Summary::default(), 0);
        for run in 0..bench.runs {
            calm.push(bench.run_load("kills", &format!("{name}-calm-run{}", run + 1), &load));
            let killer = Killer::start(workers.clone());
            killed.push(bench.run_load("kills", &format!("{name}-kills-run{}", run + 1), &load));
            kills += killer.finish();
            // Let the pool refill before the next undisturbed run.
            std::thread::sleep(Duration::from_secs(1));
        }
        for (phase, summary, killed_count) in [("none", &calm, 0), ("every 100 ms", &killed, kills)]
        {
            let mut cells = vec![
                name.to_string(),
                if killed_count > 0 {
                    format!("{phase} ({killed_count} in all)")
                } else {
                    phase.to_string()
                },
            ];
            cells.extend(summary.cells());
            cells.push(format!("{:.0} %", summary.rps() / calm.rps() * 100.0));
            table.row(cells);
        }
        json.insert(
            name.to_string(),
            serde_json::json!({
                "undisturbed": calm.to_json(), "with_kills": killed.to_json(), "kills": kills,
            }),
        );
    }
    table.note(
        "Undisturbed and killing runs alternate. Failed requests: non-2xx answers and socket \
         errors reported by wrk (all requests are idempotent GETs).",
    );
    bench.report.table(&table);
    bench.report.record("kills", json.into());
}
