//! Scenario 4 (and issue 5's benchmark): memory per idle keep-alive connection, plain and TLS,
//! 10,000 connections, paddock vs nginx, and the throughput of a static load served meanwhile.
//! Memory is the resident size summed over every process of the server, read from /proc before
//! and after the connections opened (kernel socket buffers are not in it, for either server).

use std::time::Duration;

use crate::holder::{HoldSpec, Holder};
use crate::load::Client;
use crate::report::{ratio, rps, Summary, Table};
use crate::servers::{nginx, paddock, Server};
use crate::Bench;

const IDLE: usize = 10_000;
const PATH: &str = "/static-1k.txt";
const CONNECTIONS: u32 = 64;

struct Outcome {
    /// KiB per connection that only connected (and finished the TLS handshake), on a fresh server.
    connect_only_kib: f64,
    rss_before_kib: u64,
    rss_idle_kib: u64,
    held: usize,
    without: Summary,
    with: Summary,
}

impl Outcome {
    fn per_connection_kib(&self) -> f64 {
        if self.held == 0 {
            return f64::NAN;
        }
        (self.rss_idle_kib as f64 - self.rss_before_kib as f64) / self.held as f64
    }
}

fn hold_spec(bench: &Bench, server: &Server, tls: bool, path: &str) -> HoldSpec {
    HoldSpec {
        addr: if tls {
            server.https.expect("TLS listener")
        } else {
            server.http
        },
        tls: tls.then(|| bench.shared.certs.client_config()),
        idle: IDLE,
        idle_path: path.into(),
        stalled: 0,
        stall_path: String::new(),
    }
}

fn start(bench: &Bench, name: &str) -> Server {
    if name == "paddock" {
        paddock::start(&bench.shared, name, paddock::Sizing::Static(1))
    } else {
        nginx::start(&bench.shared, name, |_| None)
    }
}

/// Memory per connection that connected (and shook hands) but sent no request yet, measured on a
/// server of its own so that memory freed here cannot flatter the main measurement.
fn connect_only(bench: &Bench, name: &str, tls: bool) -> f64 {
    let server = start(bench, name);
    std::thread::sleep(Duration::from_secs(1));
    let before = server.rss_kib();
    let holder = Holder::start(hold_spec(bench, &server, tls, ""));
    let held = holder.wait_established(Duration::from_secs(90));
    std::thread::sleep(Duration::from_secs(2));
    let after = server.rss_kib();
    let open = holder.state().idle_open;
    eprintln!(
        "bench: memory {name} connect-only tls={tls}: {}; RSS {before} → {after} KiB",
        held.describe()
    );
    holder.stop();
    if open == 0 {
        return f64::NAN;
    }
    (after as f64 - before as f64) / open as f64
}

fn measure(bench: &Bench, name: &str, tls: bool) -> Outcome {
    let connect_only_kib = connect_only(bench, name, tls);
    let server = start(bench, name);
    let server = &server;
    let protocol = if tls { "tls" } else { "plain" };
    let url = if tls {
        server.https_url(PATH)
    } else {
        server.url(PATH)
    };
    let load = bench.load(url, CONNECTIONS, Client::Wrk);
    let label = format!("{}-{protocol}", server.name);
    bench.warm_up("memory", &label, &load);
    let mut without = Summary::default();
    for run in 0..bench.runs {
        without.push(bench.run_load("memory", &format!("{label}-run{}", run + 1), &load));
    }
    std::thread::sleep(Duration::from_secs(1));
    let rss_before_kib = server.rss_kib();
    let holder = Holder::start(hold_spec(bench, server, tls, PATH));
    let held = holder.wait_established(Duration::from_secs(90));
    std::thread::sleep(Duration::from_secs(2));
    let rss_idle_kib = server.rss_kib();
    let held_count = holder.state().idle_open;
    eprintln!(
        "bench: memory {label}: {} ; RSS {rss_before_kib} → {rss_idle_kib} KiB",
        held.describe()
    );
    let mut with = Summary::default();
    for run in 0..bench.runs {
        let run_label = format!("{label}-with-idle-run{}", run + 1);
        with.push(bench.run_load("memory", &run_label, &load));
    }
    holder.stop();
    Outcome {
        connect_only_kib,
        rss_before_kib,
        rss_idle_kib,
        held: held_count,
        without,
        with,
    }
}

pub(crate) fn run(bench: &mut Bench) {
    let mut table = Table::new(
        "Scenario 4: memory per idle keep-alive connection (10,000), static load meanwhile",
        &[
            "protocol",
            "server",
            "idle held",
            "RSS before MiB",
            "RSS with idle MiB",
            "KiB per idle conn",
            "KiB per conn before any request",
            "load req/s alone",
            "load req/s with idle",
            "p99 ms with idle",
            "errors",
            "paddock / nginx (with idle)",
        ],
    );
    let mut json = serde_json::Map::new();
    for tls in [false, true] {
        let protocol = if tls { "HTTP/1.1 + TLS" } else { "HTTP/1.1" };
        let mut outcomes = Vec::new();
        for name in ["paddock", "nginx"] {
            outcomes.push((name, measure(bench, name, tls)));
        }
        let paddock_with = outcomes[0].1.with.rps();
        for (name, o) in &outcomes {
            table.row(vec![
                protocol.into(),
                name.to_string(),
                o.held.to_string(),
                format!("{:.1}", o.rss_before_kib as f64 / 1024.0),
                format!("{:.1}", o.rss_idle_kib as f64 / 1024.0),
                format!("{:.2}", o.per_connection_kib()),
                format!("{:.2}", o.connect_only_kib),
                rps(o.without.rps()),
                rps(o.with.rps()),
                crate::report::ms(o.with.p99()),
                (o.without.errors() + o.with.errors()).to_string(),
                if *name == "paddock" {
                    String::new()
                } else {
                    ratio(paddock_with, o.with.rps())
                },
            ]);
            json.insert(
                format!("{}/{name}", if tls { "tls" } else { "plain" }),
                serde_json::json!({
                    "idle_held": o.held,
                    "rss_before_kib": o.rss_before_kib,
                    "rss_idle_kib": o.rss_idle_kib,
                    "kib_per_idle_connection": o.per_connection_kib(),
                    "kib_per_connection_before_any_request": o.connect_only_kib,
                    "load_alone": o.without.to_json(),
                    "load_with_idle": o.with.to_json(),
                }),
            );
        }
    }
    table.note(
        "Each idle connection made one request for the 1 KiB file and then stayed silent. \
         RSS is summed over all processes of the server (paddock: master, front end and one \
         php-cgi; nginx: master and 2 workers), read after the load without idle connections \
         and again 2 s after all 10,000 were open. \"Before any request\": the same with \
         connections that only connected (TLS: completed the handshake), on a fresh server. \
         Load: wrk, 64 connections, same protocol.",
    );
    bench.report.table(&table);
    bench.report.record("memory", json.into());
}
