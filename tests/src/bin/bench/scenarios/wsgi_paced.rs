//! Scenario 9a: the Flask JSON API at one fixed rate for every stack, between the first part
//! and the storm (`wsgi_storm`), on the same running stacks.
//!
//! The first part lets each stack answer as fast as it can (wrk keeps its 32 connections busy),
//! so a stack that answers more requests a second is also run closer to its limit, and its p99
//! grows with its lead. paddock's moves from run to run there: wrk's connections land on one of
//! the front end's two event loops or on both, which lowers the tail or raises the throughput
//! (docs/benchmarks.md, "Why paddock's JSON p99 moves"). Here every stack gets the same offered
//! load, 80 % of the lowest top speed the first part measured among the stacks compared, so that
//! each keeps up and the latency is each stack's own.

use crate::load::Client;
use crate::report::{ratio, rps, Table};
use crate::servers::Server;
use crate::Bench;

use super::LOAD_COLUMNS;

const CONNECTIONS: u32 = 32;
const PATH: &str = "/api/items/7";
/// The offered load, as a share of the slowest compared stack's closed-loop top speed.
const SHARE_OF_SLOWEST: f64 = 0.8;

/// Runs the paced load on each of `servers` (the first is paddock), `slowest_rps` being the
/// lowest req/s the closed-loop runs measured among them.
pub(crate) fn run(bench: &mut Bench, servers: &[&Server], slowest_rps: f64) {
    let per_connection = ((slowest_rps * SHARE_OF_SLOWEST) / f64::from(CONNECTIONS)).floor();
    let per_connection = (per_connection as u32).max(1);
    let offered = rps(f64::from(per_connection * CONNECTIONS));
    let mut headers = vec!["server", "offered req/s"];
    headers.extend(LOAD_COLUMNS);
    headers.extend(["CPU µs a request", "paddock / this p99"]);
    let mut table = Table::new(
        &format!(
            "Scenario 9a: Flask JSON API, {CONNECTIONS} connections paced to {offered} req/s together"
        ),
        &headers,
    );
    let loads: Vec<_> = servers
        .iter()
        .map(|server| {
            let label = format!("{}-paced", super::wsgi::tag(&server.name));
            let load = bench.load(
                server.url(PATH),
                CONNECTIONS,
                Client::H1Paced { per_connection },
            );
            (label, load.measuring_cpu_of(server))
        })
        .collect();
    let summaries = super::interleaved(bench, "wsgi", &loads);
    let paddock_p99 = summaries[0].p99();
    let mut json = serde_json::Map::new();
    for (k, (server, summary)) in servers.iter().zip(&summaries).enumerate() {
        let mut cells = vec![server.name.clone(), offered.clone()];
        cells.extend(summary.cells());
        cells.push(summary.cpu_cell());
        cells.push(if k == 0 {
            String::new()
        } else {
            ratio(paddock_p99, summary.p99())
        });
        table.row(cells);
        json.insert(server.name.clone(), summary.to_json());
    }
    table.note(format!(
        "h2load --h1 -c {CONNECTIONS} -m 1 --rps {per_connection}: each connection sends \
         {per_connection} requests a second, one at a time, whatever the answers' speed; \
         {:.0} % of {} req/s, the lowest median top speed of these stacks in \
         the first part. The connections keep their own pace and are opened together, so the \
         requests arrive in bursts of up to {CONNECTIONS}: the p99 is about how long the last \
         of a burst waits. Same stacks, still running, as in the first part. A paddock / this \
         p99 below 1 means paddock's p99 is lower.",
        SHARE_OF_SLOWEST * 100.0,
        rps(slowest_rps)
    ));
    bench.report.table(&table);
    bench.report.record("wsgi_paced", json.into());
}
