//! Scenario 2: PHP hello world and a heavier page (about 10 KiB of HTML and 1 ms of computation),
//! 32 connections: paddock with 4 prefork php-cgi workers vs nginx + php-fpm (pm static 4),
//! nginx + php-cgi (4 children), Apache prefork + mod_php and Apache event + php-fpm (static 4).

use crate::load::Client;
use crate::report::{ratio, Table};
use crate::servers::apache::{self, Mpm};
use crate::servers::php::{php_cgi_children, php_fpm, Pm};
use crate::servers::{nginx, paddock, Server, Shared};
use crate::Bench;

pub(crate) const CONNECTIONS: u32 = 32;
pub(crate) const WORKERS: u32 = 4;
/// Apache prefork needs one process per connection: the load's 32 plus 16 spare.
pub(crate) const PREFORK_PROCESSES: u32 = 48;

pub(crate) const PADDOCK: &str = "paddock";
pub(crate) const NGINX_FPM: &str = "nginx + php-fpm";
pub(crate) const NGINX_CGI: &str = "nginx + php-cgi";
pub(crate) const APACHE_PREFORK: &str = "Apache prefork + mod_php";
pub(crate) const APACHE_EVENT: &str = "Apache event + php-fpm";

/// Starts one of the PHP servers by name.
pub(crate) fn start(shared: &Shared, name: &str) -> Server {
    match name {
        PADDOCK => paddock::start(shared, name, paddock::Sizing::Static(WORKERS)),
        NGINX_FPM => nginx::start(shared, name, |d| Some(php_fpm(d, Pm::Static(WORKERS)))),
        NGINX_CGI => nginx::start(shared, name, |d| Some(php_cgi_children(d, WORKERS))),
        APACHE_PREFORK => apache::start(
            shared,
            name,
            Mpm::PreforkModPhp {
                processes: PREFORK_PROCESSES,
            },
            |_| None,
        ),
        APACHE_EVENT => apache::start(shared, name, Mpm::EventFpm, |d| {
            Some(php_fpm(d, Pm::Static(WORKERS)))
        }),
        other => unreachable!("no server {other}"),
    }
}

pub(crate) fn workers_label(name: &str) -> String {
    if name == APACHE_PREFORK {
        format!("{PREFORK_PROCESSES} processes")
    } else {
        format!("{WORKERS} workers")
    }
}

pub(crate) fn run(bench: &mut Bench) {
    let names = [PADDOCK, NGINX_FPM, NGINX_CGI, APACHE_PREFORK, APACHE_EVENT];
    let servers: Vec<Server> = names.iter().map(|n| start(&bench.shared, n)).collect();
    let mut table = Table::new(
        "Scenario 2: PHP, 32 connections",
        &[
            "page",
            "server",
            "PHP workers",
            "req/s",
            "spread",
            "p50 ms",
            "p99 ms",
            "errors",
            "paddock / peer req/s",
            "paddock / peer p99",
        ],
    );
    let mut json = serde_json::Map::new();
    for page in ["hello.php", "heavy.php"] {
        let loads: Vec<_> = servers
            .iter()
            .map(|s| {
                let label = format!("{}-{page}", s.name);
                (
                    label,
                    bench.load(s.url(&format!("/{page}")), CONNECTIONS, Client::Wrk),
                )
            })
            .collect();
        let summaries = super::interleaved(bench, "php", &loads);
        let (paddock_rps, paddock_p99) = (summaries[0].rps(), summaries[0].p99());
        for (server, summary) in servers.iter().zip(&summaries) {
            let mut cells = vec![
                page.to_string(),
                server.name.clone(),
                workers_label(&server.name),
            ];
            cells.extend(summary.cells());
            if server.name == PADDOCK {
                cells.extend([String::new(), String::new()]);
            } else {
                cells.push(ratio(paddock_rps, summary.rps()));
                // Lower is better for latency: paddock's p99 as a multiple of the peer's.
                cells.push(ratio(paddock_p99, summary.p99()));
            }
            table.row(cells);
            json.insert(format!("{page}/{}", server.name), summary.to_json());
        }
    }
    table.note(
        "Same document root and scripts for all; Debian's php.ini per SAPI (opcache on); \
         no recycling (PHP_FCGI_MAX_REQUESTS=0, pm.max_requests=0, MaxConnectionsPerChild 0); \
         access logs off; nginx and Apache with their default FastCGI wiring (a new backend \
         connection per request). A paddock / peer p99 below 1 means paddock's p99 is lower.",
    );
    bench.report.table(&table);
    bench.report.record("php", json.into());
}
