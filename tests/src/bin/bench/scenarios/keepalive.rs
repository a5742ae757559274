//! Scenario 3, the keep-alive problem: the PHP hello load of scenario 2 alone, then with 200 and
//! with 10,000 idle keep-alive connections plus 1,000 clients stalled halfway through their
//! request head. Throughput and p99 against the undisturbed load, per server.

use std::time::Duration;

use crate::holder::{HoldSpec, Holder};
use crate::load::Client;
use crate::report::{ms, rps, Summary, Table};
use crate::Bench;

use super::php::{self, APACHE_EVENT, APACHE_PREFORK, CONNECTIONS, NGINX_FPM, PADDOCK};

const STALLED: usize = 1000;

pub(crate) fn run(bench: &mut Bench) {
    let phases: [(&str, usize, usize); 4] = [
        ("undisturbed", 0, 0),
        ("200 idle", 200, 0),
        ("200 idle + 1,000 stalled", 200, STALLED),
        ("10,000 idle + 1,000 stalled", 10_000, STALLED),
    ];
    let mut table = Table::new(
        "Scenario 3: PHP hello, 32 connections, with idle keep-alive and stalled clients",
        &[
            "server",
            "PHP workers",
            "clients held",
            "req/s",
            "spread",
            "p50 ms",
            "p99 ms",
            "errors",
            "% of undisturbed req/s",
            "p99 / undisturbed",
            "held connections",
        ],
    );
    let mut json = serde_json::Map::new();
    let settle = if bench.quick { 20 } else { 40 };
    for name in [PADDOCK, NGINX_FPM, APACHE_PREFORK, APACHE_EVENT] {
        let server = php::start(&bench.shared, name);
        let load = bench.load(server.url("/hello.php"), CONNECTIONS, Client::Wrk);
        bench.warm_up("keepalive", name, &load);
        let mut undisturbed = Summary::default();
        for (phase, idle, stalled) in phases {
            let holder = (idle + stalled > 0).then(|| {
                Holder::start(HoldSpec {
                    addr: server.http,
                    tls: None,
                    idle,
                    idle_path: "/static-1k.txt".into(),
                    stalled,
                    stall_path: "/hello.php".into(),
                })
            });
            let held_before = holder
                .as_ref()
                .map(|h| h.wait_established(Duration::from_secs(settle)));
            let mut summary = Summary::default();
            for run in 0..bench.runs {
                let label = format!("{name}-{idle}idle-{stalled}stalled-run{}", run + 1);
                summary.push(bench.run_load("keepalive", &label, &load));
            }
            let held_after = holder.as_ref().map(|h| h.state());
            if let Some(holder) = holder {
                holder.stop();
                std::thread::sleep(Duration::from_secs(1));
            }
            if idle + stalled == 0 {
                undisturbed = summary.clone();
            }
            let held = match (held_before, held_after) {
                (Some(before), Some(after)) => format!(
                    "start {}/{}, end {}/{}, closed by server {}/{}",
                    before.idle_open,
                    before.stalled_open,
                    after.idle_open,
                    after.stalled_open,
                    after.idle_closed_by_server,
                    after.stalled_closed_by_server
                ),
                _ => String::new(),
            };
            let mut cells = vec![
                name.to_string(),
                php::workers_label(name),
                phase.to_string(),
            ];
            cells.extend(summary.cells());
            let base = undisturbed.rps();
            cells.push(if base > 0.0 {
                format!("{:.0} %", summary.rps() / base * 100.0)
            } else {
                "–".into()
            });
            cells.push(if undisturbed.p99() > 0.0 && summary.p99().is_finite() {
                format!("{:.2}×", summary.p99() / undisturbed.p99())
            } else {
                "–".into()
            });
            cells.push(held);
            table.row(cells);
            json.insert(
                format!("{name}/{phase}"),
                serde_json::json!({
                    "load": summary.to_json(),
                    "held_at_start": held_before.map(|s| s.to_json()),
                    "held_at_end": held_after.map(|s| s.to_json()),
                }),
            );
            eprintln!(
                "bench: keepalive {name} {phase}: {} req/s, p99 {} ms",
                rps(summary.rps()),
                ms(summary.p99())
            );
        }
        drop(server);
    }
    table.note(
        "Idle clients: one GET of the static file, then silence. Stalled clients: half a request \
         head for /hello.php, then silence. Either kind is reopened 1 s after the server closes \
         it. Last column: idle/stalled connections open when the load started and when it ended, \
         and how many the server closed meanwhile. The load's p50/p99 cover answered requests \
         only (wrk); a request unanswered for 5 s counts as an error. Keep-alive timeouts: nginx \
         75 s, Apache 5 s with mod_reqtimeout on (as Debian ships it), paddock's defaults.",
    );
    bench.report.table(&table);
    bench.report.record("keepalive", json.into());
}
