//! Scenario 1b: large static files (1 MiB and 100 MiB) over HTTP/1.1, plain and TLS, paddock vs
//! nginx (sendfile on), with each server's memory before and after, to show that serving them
//! keeps memory flat (issue 15). Few connections: each moves a lot of bytes, and the client
//! (wrk, one thread) is then the other half of the machine.

use std::path::Path;

use crate::load::Client;
use crate::report::Table;
use crate::servers::{nginx, paddock, Shared};
use crate::Bench;

const FILES: [(&str, usize, u32); 2] = [("/1m.txt", 1 << 20, 8), ("/100m.txt", 100 << 20, 4)];

/// The files, text (the bench's answer check reads the body as text).
fn write_files(root: &Path) {
    let line = b"paddock large static file benchmark, one line of sixty-four\n\n\n";
    for (path, size, _) in FILES {
        let body: Vec<u8> = line.iter().copied().cycle().take(size).collect();
        std::fs::write(root.join(path.trim_start_matches('/')), body).expect("write a large file");
    }
}

pub(crate) fn run(bench: &mut Bench) {
    let root = tempfile::tempdir().expect("temp dir");
    write_files(root.path());
    let shared = Shared {
        site: root.path().to_path_buf(),
        certs: bench.shared.certs.clone(),
        paddock_bin: bench.shared.paddock_bin.clone(),
    };
    let servers = [
        paddock::start_site(
            &shared,
            "paddock",
            paddock::Sizing::Static(1),
            root.path(),
            "",
        ),
        nginx::start(&shared, "nginx", |_| None),
    ];
    let before: Vec<u64> = servers.iter().map(|s| s.rss_kib()).collect();
    let columns = [
        &["file", "protocol", "connections", "server"][..],
        &super::LOAD_COLUMNS,
        &["MiB/s", "paddock / nginx"],
    ]
    .concat();
    let mut table = Table::new("Scenario 1b: large static files, HTTP/1.1", &columns);
    let mut json = serde_json::Map::new();
    for (path, size, connections) in FILES {
        for (key, protocol) in [("plain", "HTTP/1.1"), ("tls", "HTTP/1.1 + TLS")] {
            let loads: Vec<_> = servers
                .iter()
                .map(|s| {
                    let url = super::url_for(s, key, path);
                    let label = format!("{}-{key}-{}", s.name, path.trim_start_matches('/'));
                    (label, bench.load(url, connections, Client::Wrk))
                })
                .collect();
            let summaries = super::interleaved(bench, "large", &loads);
            let paddock_rps = summaries[0].rps();
            for (server, summary) in servers.iter().zip(&summaries) {
                let mut cells = vec![
                    path.trim_start_matches('/').to_string(),
                    protocol.to_string(),
                    connections.to_string(),
                    server.name.clone(),
                ];
                cells.extend(summary.cells());
                let mib_per_s = summary.rps() * size as f64 / f64::from(1 << 20);
                cells.push(format!("{mib_per_s:.0}"));
                cells.push(super::ratio_cell(server, paddock_rps, summary));
                table.row(cells);
                json.insert(format!("{path}/{key}/{}", server.name), summary.to_json());
            }
        }
    }
    let after: Vec<u64> = servers.iter().map(|s| s.rss_kib()).collect();
    table.note(format!(
        "Resident memory of each whole server (every process) before the loads and after them: \
         paddock {} → {} KiB (front end, master and its one idle php-cgi worker), nginx {} → {} KiB \
         (master and workers). nginx: sendfile on, tcp_nopush on. paddock: files above the \
         in-memory cache's limit go out with sendfile(2), corked, on plain HTTP/1.1, and are \
         read in 256 KiB chunks on tokio's blocking pool under TLS.",
        before[0], after[0], before[1], after[1]
    ));
    bench.report.table(&table);
    let memory = serde_json::json!({
        "paddock_rss_kib": [before[0], after[0]],
        "nginx_rss_kib": [before[1], after[1]],
    });
    json.insert("memory".into(), memory);
    bench.report.record("large", json.into());
}
