//! Scenario 1: a static 1 KiB file over HTTP/1.1, HTTP/1.1 over TLS and HTTP/2 over TLS,
//! 64 connections, paddock vs nginx (same certificate, same file).

use std::process::Command;
use std::time::Duration;

use crate::load::{run_bounded, Client};
use crate::report::Table;
use crate::servers::{nginx, paddock, Server};
use crate::Bench;

const PATH: &str = "/static-1k.txt";
const CONNECTIONS: u32 = 64;

/// The TLS version and cipher a server negotiates with OpenSSL's client.
fn negotiated(server: &Server) -> String {
    let addr = server.https.expect("TLS listener").to_string();
    let out = run_bounded(
        Command::new("openssl").args(["s_client", "-brief", "-connect", &addr]),
        Duration::from_secs(10),
    );
    let pick = |key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    format!("{} {}", pick("Protocol version:"), pick("Ciphersuite:"))
}

pub(crate) fn run(bench: &mut Bench) {
    let servers = [
        paddock::start(&bench.shared, "paddock", paddock::Sizing::Static(4)),
        nginx::start(&bench.shared, "nginx", |_| None),
    ];
    let variants = [
        ("plain", "HTTP/1.1", Client::Wrk),
        ("tls", "HTTP/1.1 + TLS", Client::Wrk),
        ("h2", "HTTP/2 + TLS", Client::H2load),
    ];
    let columns = [
        &["protocol", "server"][..],
        &super::LOAD_COLUMNS,
        &["paddock / nginx"],
    ]
    .concat();
    let mut table = Table::new("Scenario 1: static 1 KiB file, 64 connections", &columns);
    let mut json = serde_json::Map::new();
    for (key, protocol, client) in variants {
        let loads: Vec<_> = servers
            .iter()
            .map(|s| {
                let url = super::url_for(s, key, PATH);
                (
                    format!("{}-{key}", s.name),
                    bench.load(url, CONNECTIONS, client),
                )
            })
            .collect();
        let summaries = super::interleaved(bench, "static", &loads);
        let paddock_rps = summaries[0].rps();
        for (server, summary) in servers.iter().zip(&summaries) {
            let mut cells = vec![protocol.to_string(), server.name.clone()];
            cells.extend(summary.cells());
            cells.push(super::ratio_cell(server, paddock_rps, summary));
            table.row(cells);
            json.insert(format!("{key}/{}", server.name), summary.to_json());
        }
    }
    table.note(format!(
        "TLS negotiated with openssl s_client: paddock {}; nginx {}. Same ECDSA P-256 certificate. \
         nginx: worker_processes auto, sendfile on, access_log off. paddock: default tokio runtime \
         (one thread per core).",
        negotiated(&servers[0]),
        negotiated(&servers[1])
    ));
    bench.report.table(&table);
    bench.report.record("static", json.into());
}
