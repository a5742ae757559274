//! Scenario 9, second part: the Flask JSON load of the first part alone, then while 200 idle
//! keep-alive clients and 1,000 clients stalled halfway through their request head are held
//! (scenario 3's holder), for paddock's threaded pool, nginx + gunicorn, nginx + uWSGI, and
//! gunicorn gthread without a proxy in front (its threads then meet the slow clients).

use std::time::Duration;

use crate::holder::{HoldSpec, Holder};
use crate::load::Client;
use crate::report::{Summary, Table};
use crate::servers::Server;
use crate::Bench;

const CONNECTIONS: u32 = 32;
const IDLE: usize = 200;
const STALLED: usize = 1000;
const PATH: &str = "/api/items/7";

/// Runs both phases on each of `servers` (the first is paddock) and reports them.
pub(crate) fn run(bench: &mut Bench, servers: &[(&str, Server)]) {
    let mut table = Table::new(
        "Scenario 9b: Flask JSON API, 32 connections, alone and beside 200 idle + 1,000 stalled clients",
        &[
            "server",
            "clients held",
            "req/s",
            "spread",
            "p50 ms",
            "p99 ms",
            "errors",
            "% of undisturbed req/s",
            "held connections at start / end",
        ],
    );
    let mut json = serde_json::Map::new();
    let settle = Duration::from_secs(if bench.quick { 20 } else { 40 });
    for (tag, server) in servers {
        let load = bench.load(server.url(PATH), CONNECTIONS, Client::Wrk);
        let mut undisturbed = Summary::default();
        for (phase, idle, stalled) in [("none", 0, 0), ("200 idle + 1,000 stalled", IDLE, STALLED)]
        {
            let holder = (idle + stalled > 0).then(|| {
                Holder::start(HoldSpec {
                    addr: server.http,
                    tls: None,
                    idle,
                    idle_path: PATH.into(),
                    stalled,
                    stall_path: PATH.into(),
                })
            });
            let before = holder.as_ref().map(|h| h.wait_established(settle));
            let mut summary = Summary::default();
            for run in 0..bench.runs {
                let label = format!("{tag}-storm{}-run{}", idle + stalled, run + 1);
                summary.push(bench.run_load("wsgi", &label, &load));
            }
            let after = holder.as_ref().map(|h| h.state());
            if let Some(holder) = holder {
                holder.stop();
                std::thread::sleep(Duration::from_secs(1));
            }
            if idle + stalled == 0 {
                undisturbed = summary.clone();
            }
            let mut cells = vec![server.name.clone(), phase.to_string()];
            cells.extend(summary.cells());
            cells.push(if undisturbed.rps() > 0.0 {
                format!("{:.0} %", summary.rps() / undisturbed.rps() * 100.0)
            } else {
                "–".into()
            });
            cells.push(match (before, after) {
                (Some(b), Some(a)) => format!(
                    "{}/{} → {}/{} (idle/stalled)",
                    b.idle_open, b.stalled_open, a.idle_open, a.stalled_open
                ),
                _ => String::new(),
            });
            table.row(cells);
            json.insert(
                format!("{}/{phase}", server.name),
                serde_json::json!({
                    "load": summary.to_json(),
                    "held_at_start": before.map(|s| s.to_json()),
                    "held_at_end": after.map(|s| s.to_json()),
                }),
            );
        }
    }
    table.note(
        "Idle clients: one GET of the JSON endpoint, then silence; stalled clients: half a request \
         head for it, then silence; either is reopened 1 s after the server closes it. A request \
         unanswered for 5 s counts as an error (wrk). gunicorn alone: --worker-class gthread \
         --workers 2 --threads 8 on a TCP port, its default 2 s keep-alive.",
    );
    bench.report.table(&table);
    bench.report.record("wsgi-storm", json.into());
}
