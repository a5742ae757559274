//! paddock with a prefork php-cgi (or `builtin = "php"`) pool, plain and TLS listeners (the shared certificate) and an
//! admin listener; info-level log (no per-request lines) into its temp dir.

use std::process::{Command, Stdio};
use std::time::Duration;

use harness::peers::Process;

use super::{loopback_port, server_dir, wait_for, Server, Shared, Workers};

/// The pool's sizing.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Sizing {
    Static(u32),
    Ondemand {
        max: u32,
    },
    Dynamic {
        max: u32,
        start: u32,
        min_spare: u32,
        max_spare: u32,
    },
}

impl Sizing {
    fn toml(self) -> String {
        match self {
            Sizing::Static(n) => format!("sizing = \"static\"\nworkers = {n}\n"),
            Sizing::Ondemand { max } => format!("sizing = \"ondemand\"\nmax_workers = {max}\n"),
            Sizing::Dynamic {
                max,
                start,
                min_spare,
                max_spare,
            } => format!(
                "sizing = \"dynamic\"\nmax_workers = {max}\nstart_workers = {start}\n\
                 min_spare = {min_spare}\nmax_spare = {max_spare}\n"
            ),
        }
    }

    /// Workers expected right after start.
    fn initial(self) -> u32 {
        match self {
            Sizing::Static(n) => n,
            Sizing::Ondemand { .. } => 0,
            Sizing::Dynamic { start, .. } => start,
        }
    }
}

/// What runs PHP in the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handler {
    PhpCgi,
    /// paddock's own worker, forked from a warm parent (paddock-php's library next to `paddock`).
    Builtin,
}

impl Handler {
    fn toml(self) -> &'static str {
        match self {
            Handler::PhpCgi => "command = [\"php-cgi\"]",
            Handler::Builtin => "builtin = \"php\"",
        }
    }

    /// The command name of the pool's workers.
    fn comm(self) -> &'static str {
        match self {
            Handler::PhpCgi => "php-cgi",
            Handler::Builtin => "php-worker",
        }
    }
}

pub(crate) fn start(shared: &Shared, name: &str, sizing: Sizing) -> Server {
    start_site(shared, name, sizing, &shared.site, "")
}

/// [`start`] with a `builtin = "php"` pool.
pub(crate) fn start_builtin(shared: &Shared, name: &str, sizing: Sizing) -> Server {
    start_app(shared, name, sizing, Handler::Builtin, "")
}

/// [`start`] with `handler`'s pool and more `[pools.php]` keys (`max_requests = 10`).
pub(crate) fn start_app(
    shared: &Shared,
    name: &str,
    sizing: Sizing,
    handler: Handler,
    pool_extra: &str,
) -> Server {
    start_with(shared, name, sizing, &shared.site, "", handler, pool_extra)
}

/// [`start`] over another document root, with more `[sites.bench]` keys and tables.
pub(crate) fn start_site(
    shared: &Shared,
    name: &str,
    sizing: Sizing,
    site: &std::path::Path,
    site_extra: &str,
) -> Server {
    start_with(shared, name, sizing, site, site_extra, Handler::PhpCgi, "")
}

fn start_with(
    shared: &Shared,
    name: &str,
    sizing: Sizing,
    site: &std::path::Path,
    site_extra: &str,
    handler: Handler,
    pool_extra: &str,
) -> Server {
    let dir = server_dir("paddock");
    let d = dir.path();
    let (http, https, admin) = (loopback_port(), loopback_port(), loopback_port());
    let config = format!(
        r#"[server]
runtime_dir = "{run}"
log_level = "info"
shutdown_timeout = "2s"

[listeners.http]
kind = "http"
address = "{http}"

[listeners.https]
kind = "https"
address = "{https}"
certificate = "{cert}"
key = "{key}"

[listeners.admin]
kind = "admin"
address = "{admin}"

# As nginx's keepalive_requests in this benchmark: h2load does not reconnect after a GOAWAY.
[limits]
max_requests_per_connection = 1000000

[sites.bench]
root = "{site}"
index = ["index.php", "index.html"]
{site_extra}

[sites.bench.scripts]
pool = "php"

[pools.php]
mode = "prefork"
{handler}
{sizing}{pool_extra}"#,
        run = d.join("run").display(),
        cert = shared.certs.certificate.display(),
        key = shared.certs.key.display(),
        site = site.display(),
        sizing = sizing.toml(),
        handler = handler.toml(),
    );
    let config_path = d.join("paddock.toml");
    std::fs::write(&config_path, config).expect("write paddock.toml");
    let log = d.join("paddock.log");
    let stderr = std::fs::File::create(&log).expect("paddock.log");
    let process = Process::spawn(
        "paddock",
        Command::new(&shared.paddock_bin)
            .args(["serve", "--config"])
            .arg(&config_path)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr),
    );
    let pid = process.pid();
    let limit = Duration::from_secs(20);
    wait_for("paddock ready", limit, &log, || {
        harness::http_get(admin, "/readyz").is_some_and(|r| r.starts_with("HTTP/1.1 200"))
    });
    let workers = Workers {
        parent: pid,
        comm: handler.comm().into(),
    };
    let expected = sizing.initial() as usize;
    wait_for("paddock's workers", limit, &log, || {
        workers.pids().len() >= expected
    });
    Server {
        name: name.to_string(),
        http,
        https: Some(https),
        roots: vec![pid],
        workers: Some(workers),
        guards: vec![Box::new(process)],
        dir: Some(dir),
    }
}
