//! The Flask test app (`tests/apps/flask_app`) served four ways, each with P processes × T
//! threads: paddock's threaded pool (an application mount at `/`) running uWSGI on fd 0
//! (speaking HTTP/1.1 on kept connections, or its own uwsgi protocol), nginx in front of gunicorn's gthread workers
//! (HTTP over a Unix socket, upstream keep-alive), and nginx in front of uWSGI's threads (the
//! uwsgi protocol over a Unix socket). All of them import Debian's Flask through Debian's `/usr/bin/python3`.

use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use harness::peers::{Nginx, NginxSettings, Process};
use harness::wsgi::WsgiServer;

use super::{loopback_port, server_dir, wait_for, Server, Shared, Workers};

/// Processes of every stack (gunicorn `--workers`, uWSGI `--processes`, paddock `workers`).
pub(crate) const PROCESSES: u32 = 2;
/// Threads per process (gunicorn and uWSGI `--threads`, paddock `threads`).
pub(crate) const THREADS: u32 = 8;

fn app_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("apps/flask_app")
}

/// How long a Python stack may take to import Flask and come up on a loaded machine.
const START_LIMIT: Duration = Duration::from_secs(60);

/// How paddock's threaded pool is sized.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PoolSizing {
    /// PROCESSES processes, all the time.
    Static,
    /// No process until a request comes, at most this many.
    Ondemand { max: u32 },
    /// One process kept while idle (uWSGI cheaper's minimum), more at once as requests queue,
    /// at most `max`: `sizing = "dynamic"` with one worker at the start.
    OneIdle { max: u32 },
}

/// paddock: the app mounted at `/`, a static threaded pool of PROCESSES × THREADS.
pub(crate) fn paddock(shared: &Shared, name: &str, server: WsgiServer) -> Server {
    paddock_sized(shared, name, server, PoolSizing::Static)
}

/// [`paddock`] with the pool sized as `sizing` says.
pub(crate) fn paddock_sized(
    shared: &Shared,
    name: &str,
    server: WsgiServer,
    sizing: PoolSizing,
) -> Server {
    paddock_pool(shared, name, server, sizing, "")
}

/// [`paddock_sized`] with `extra` lines in the pool's section (e.g. `readiness = "notify"`).
pub(crate) fn paddock_pool(
    shared: &Shared,
    name: &str,
    server: WsgiServer,
    sizing: PoolSizing,
    extra: &str,
) -> Server {
    paddock_configured(shared, name, server, sizing, "", extra)
}

/// paddock's own worker with every process of the stack on a CPU of its own: the front end's
/// event loops (`frontend_runtime = "per-core-pinned"`) and the pool's processes
/// (`cpu_affinity = "spread"`), one of each a core.
pub(crate) fn paddock_pinned(shared: &Shared, name: &str) -> Server {
    paddock_configured(
        shared,
        name,
        WsgiServer::Paddock,
        PoolSizing::Static,
        "frontend_runtime = \"per-core-pinned\"",
        "cpu_affinity = \"spread\"",
    )
}

/// [`paddock_pool`] with `server_extra` lines in the `[server]` section as well.
fn paddock_configured(
    shared: &Shared,
    name: &str,
    server: WsgiServer,
    sizing: PoolSizing,
    server_extra: &str,
    extra: &str,
) -> Server {
    let (sizing_toml, expected) = match sizing {
        PoolSizing::Static => (format!("workers = {PROCESSES}"), PROCESSES as usize),
        PoolSizing::Ondemand { max } => (
            format!("sizing = \"ondemand\"\nmax_workers = {max}\nidle_timeout = \"60s\""),
            0,
        ),
        PoolSizing::OneIdle { max } => (
            format!("sizing = \"dynamic\"\nmax_workers = {max}\nstart_workers = 1"),
            1,
        ),
    };
    let dir = server_dir("paddock-wsgi");
    let d = dir.path();
    let root = d.join("public");
    std::fs::create_dir(&root).expect("the site's root");
    let (http, admin) = (loopback_port(), loopback_port());
    let config = format!(
        r#"[server]
runtime_dir = "{run}"
log_level = "info"
shutdown_timeout = "2s"
{server_extra}

[listeners.http]
kind = "http"
address = "{http}"

[listeners.admin]
kind = "admin"
address = "{admin}"

[limits]
max_requests_per_connection = 1000000

[sites.bench]
root = "{root}"

[sites.bench.mounts.app]
prefix = "/"
pool = "flask"

[pools.flask]
mode = "threaded"
{sizing_toml}
threads = {THREADS}
{program}
working_directory = "{app}"
env = {{ PYTHONDONTWRITEBYTECODE = "1" }}
{extra}
"#,
        run = d.join("run").display(),
        root = root.display(),
        program = server.program("app:app", THREADS),
        app = app_dir().display(),
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
    wait_for("paddock ready", START_LIMIT, &log, || {
        harness::http_get(admin, "/readyz").is_some_and(|r| r.starts_with("HTTP/1.1 200"))
    });
    let workers = Workers {
        parent: pid,
        comm: server.process_name().into(),
    };
    wait_for("paddock's workers", START_LIMIT, &log, || {
        workers.pids().len() >= expected
    });
    Server {
        name: name.to_string(),
        http,
        https: None,
        roots: vec![pid],
        workers: Some(workers),
        guards: vec![Box::new(process)],
        dir: Some(dir),
    }
}

/// A Python application server started on a Unix socket, and the nginx location that reaches it.
struct Backend {
    process: Process,
    location: String,
    upstream: String,
}

/// How many idle connections to a backend each nginx worker keeps (upstream `keepalive`), as a
/// tuned site proxying an HTTP app server that multiplexes its connections (gunicorn's gthread
/// poller, granian) keeps them.
const NGINX_KEEPALIVE: usize = 32;

/// A backend nginx reaches with `proxy_pass` over HTTP/1.1 on its Unix `socket`, each nginx worker
/// keeping up to `keepalive` idle connections to it.
fn proxied(process: Process, upstream: &str, socket: &Path, keepalive: usize) -> Backend {
    Backend {
        process,
        upstream: format!(
            "upstream {upstream} {{ server unix:{}; keepalive {keepalive}; }}",
            socket.display()
        ),
        location: format!(
            "proxy_pass http://{upstream};\n      proxy_http_version 1.1;\n      \
             proxy_set_header Connection \"\";\n      proxy_set_header Host $host;"
        ),
    }
}

/// nginx (worker_processes auto, as in the other scenarios) in front of a backend.
fn behind_nginx(name: &str, dir: tempfile::TempDir, backend: Backend) -> Server {
    behind_nginx_with(name, dir, backend, "")
}

/// [`behind_nginx`] with `main_extra` lines in nginx's main context.
fn behind_nginx_with(
    name: &str,
    dir: tempfile::TempDir,
    backend: Backend,
    main_extra: &str,
) -> Server {
    let body = format!(
        r#"  access_log off;
  keepalive_timeout 75s;
  keepalive_requests 1000000;
  {upstream}
  server {{
    listen {{listen}} backlog=4096;
    server_name localhost;
    location / {{
      {location}
    }}
  }}"#,
        upstream = backend.upstream,
        location = backend.location,
    );
    let settings = NginxSettings {
        worker_processes: "auto".into(),
        worker_connections: 20000,
        main_extra: format!("worker_rlimit_nofile 65536;\n{main_extra}"),
    };
    let nginx = Nginx::start_with(
        dir.path(),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        &settings,
        &body,
    );
    let root = backend.process.pid();
    Server {
        name: name.to_string(),
        http: nginx.addr,
        https: None,
        roots: vec![nginx.pid(), root],
        workers: None,
        guards: vec![Box::new(nginx), Box::new(backend.process)],
        dir: Some(dir),
    }
}

/// Starts `command` (its output into `log`), waits until its Unix socket accepts and it has its
/// PROCESSES worker processes.
fn start_backend(what: &'static str, command: &mut Command, socket: &Path, log: &Path) -> Process {
    start_backend_until(what, command, log, PROCESSES as usize, || {
        UnixStream::connect(socket).is_ok()
    })
}

/// [`start_backend`] with another test of readiness and the number of worker processes to wait
/// for.
fn start_backend_until(
    what: &'static str,
    command: &mut Command,
    log: &Path,
    processes: usize,
    ready: impl FnMut() -> bool,
) -> Process {
    let stderr = std::fs::File::create(log).expect("backend log");
    let process = Process::spawn(
        what,
        command
            .current_dir(app_dir())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr),
    );
    wait_for(what, START_LIMIT, log, ready);
    let pid = process.pid();
    wait_for("its worker processes", START_LIMIT, log, || {
        crate::procs::tree(pid).len() > processes
    });
    process
}

/// nginx + gunicorn (`--worker-class gthread --workers P --threads T`), proxied over HTTP/1.1
/// with upstream keep-alive (as a tuned nginx + gunicorn site runs it).
pub(crate) fn nginx_gunicorn(name: &str) -> Server {
    let dir = server_dir("gunicorn");
    let socket = dir.path().join("gunicorn.sock");
    let process = start_backend(
        "gunicorn",
        Command::new("/usr/bin/gunicorn")
            .args(["--worker-class", "gthread"])
            .args(["--workers", &PROCESSES.to_string()])
            .args(["--threads", &THREADS.to_string()])
            .arg("--bind")
            .arg(format!("unix:{}", socket.display()))
            .args(["--log-level", "warning", "app:app"]),
        &socket,
        &dir.path().join("gunicorn.log"),
    );
    behind_nginx(
        name,
        dir,
        proxied(process, "gunicorn", &socket, NGINX_KEEPALIVE),
    )
}

/// nginx + granian run as its command line runs it (a supervisor forking P workers of T Python
/// threads, on a Unix socket it binds), proxied over HTTP/1.1 with upstream keep-alive: a
/// reference for paddock's granian workers, so that what is granian's and what is the front
/// end's shows apart.
pub(crate) fn nginx_granian(name: &str) -> Server {
    let dir = server_dir("granian");
    let socket = dir.path().join("granian.sock");
    let process = start_backend(
        "granian",
        Command::new(harness::wsgi::granian_python())
            .args([
                "-m",
                "granian",
                "--interface",
                "wsgi",
                "--http",
                "1",
                "--no-ws",
            ])
            .args(["--workers", &PROCESSES.to_string()])
            .args(["--blocking-threads", &THREADS.to_string()])
            // Its longest: a kept connection waits for its next request (as behind paddock).
            .args(["--http1-header-read-timeout", "60000"])
            .arg("--uds")
            .arg(&socket)
            .args(["--log-level", "warning", "app:app"]),
        &socket,
        &dir.path().join("granian.log"),
    );
    behind_nginx(
        name,
        dir,
        proxied(process, "granian", &socket, NGINX_KEEPALIVE),
    )
}

/// nginx + uWSGI (`--processes P --threads T`, its master process), over the uwsgi protocol.
pub(crate) fn nginx_uwsgi(name: &str) -> Server {
    uwsgi_behind_nginx(name, "uwsgi", Wire::Uwsgi, PROCESSES, PROCESSES, &[])
}

/// [`nginx_uwsgi`] with every process of the stack on a CPU of its own, the counterpart of
/// [`paddock_pinned`]: each uWSGI worker pinned to one CPU, round the CPUs (`--cpu-affinity
/// 1`), and each nginx worker too (`worker_cpu_affinity auto`).
pub(crate) fn nginx_uwsgi_pinned(name: &str) -> Server {
    let (dir, backend) = uwsgi_backend(
        "uwsgi-pinned",
        Wire::Uwsgi,
        PROCESSES,
        PROCESSES,
        &["--cpu-affinity", "1"],
    );
    behind_nginx_with(name, dir, backend, "worker_cpu_affinity auto;")
}

/// nginx + the same uWSGI speaking HTTP/1.1 on its socket (`--http11-socket`), proxied with
/// upstream keep-alive: what any front end gets from uWSGI over the wire paddock's HTTP pools
/// use, so that the part of a gap that is uWSGI's HTTP mode shows apart from the front end's.
pub(crate) fn nginx_uwsgi_http(name: &str) -> Server {
    uwsgi_behind_nginx(name, "uwsgi-http", Wire::Http, PROCESSES, PROCESSES, &[])
}

/// nginx + uWSGI sized on demand by its "cheaper" subsystem: one process while idle (its
/// minimum: uWSGI cannot go to none), up to `max`, spawned by the `busyness` algorithm's
/// default of one more per second of load, or at once with `--cheaper-algo spare` as here
/// (`--cheaper-step` processes whenever none is idle).
pub(crate) fn nginx_uwsgi_cheaper(name: &str, max: u32) -> Server {
    let max_text = max.to_string();
    let cheaper = [
        "--cheaper",
        "1",
        "--cheaper-initial",
        "1",
        "--cheaper-algo",
        "spare",
        "--cheaper-step",
        &max_text,
        "--cheaper-overload",
        "1",
    ];
    uwsgi_behind_nginx(name, "uwsgi-cheaper", Wire::Uwsgi, max, 1, &cheaper)
}

/// What nginx speaks to uWSGI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    /// `uwsgi_pass`: the uwsgi protocol, a connection a request.
    Uwsgi,
    /// `proxy_pass` over HTTP/1.1 with upstream keep-alive.
    Http,
}

/// uWSGI (its master, up to `processes` × THREADS, plus `extra` options) on a Unix socket,
/// behind nginx speaking `wire`; ready once the socket accepts and the `initial` processes it
/// starts with exist.
fn uwsgi_behind_nginx(
    name: &str,
    label: &str,
    wire: Wire,
    processes: u32,
    initial: u32,
    extra: &[&str],
) -> Server {
    let (dir, backend) = uwsgi_backend(label, wire, processes, initial, extra);
    behind_nginx(name, dir, backend)
}

/// The uWSGI of [`uwsgi_behind_nginx`], started, and the nginx location that reaches it.
fn uwsgi_backend(
    label: &str,
    wire: Wire,
    processes: u32,
    initial: u32,
    extra: &[&str],
) -> (tempfile::TempDir, Backend) {
    let dir = server_dir(label);
    let socket = dir.path().join("uwsgi.sock");
    let http = wire == Wire::Http;
    // Over HTTP, a kept connection waits in uWSGI for its next request, as behind paddock.
    let (socket_option, wire_options): (&str, &[&str]) = if http {
        ("--http11-socket", &["--socket-timeout", "3600"])
    } else {
        ("--socket", &[])
    };
    let process = start_backend_until(
        "uwsgi",
        Command::new("/usr/bin/uwsgi")
            .args(["--plugin", "python3", "--master", "--die-on-term"])
            .arg(socket_option)
            .arg(&socket)
            .args(wire_options)
            .args(["--processes", &processes.to_string()])
            .args(extra)
            .args(["--threads", &THREADS.to_string()])
            .args([
                "--module",
                "app:app",
                "--disable-logging",
                "--listen",
                "1024",
            ]),
        &dir.path().join("uwsgi.log"),
        initial as usize,
        || UnixStream::connect(&socket).is_ok(),
    );
    let backend = if http {
        // A kept connection holds a uWSGI thread until nginx closes it, so the idle
        // connections all of nginx's workers keep (one worker a core) must not outnumber the
        // threads: with more, a request on a new connection waited in uWSGI's backlog behind
        // idle ones for good (a whole run stopped that way on 2026-12-06).
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let keepalive = (processes * THREADS) as usize / cores;
        proxied(process, "uwsgi", &socket, keepalive.max(1))
    } else {
        Backend {
            process,
            upstream: String::new(),
            location: format!(
                "include /etc/nginx/uwsgi_params;\n      uwsgi_pass unix:{};",
                socket.display()
            ),
        }
    };
    (dir, backend)
}

/// gunicorn gthread on its own, on a loopback TCP port, as it is run without a proxy in front:
/// for the keep-alive storm, where its threads meet the slow clients themselves.
pub(crate) fn gunicorn_alone(name: &str) -> Server {
    let dir = server_dir("gunicorn-alone");
    let http = loopback_port();
    let process = start_backend_until(
        "gunicorn",
        Command::new("/usr/bin/gunicorn")
            .args(["--worker-class", "gthread"])
            .args(["--workers", &PROCESSES.to_string()])
            .args(["--threads", &THREADS.to_string()])
            .args(["--bind", &http.to_string()])
            .args(["--log-level", "warning", "app:app"]),
        &dir.path().join("gunicorn.log"),
        PROCESSES as usize,
        || super::accepts(http),
    );
    Server {
        name: name.to_string(),
        http,
        https: None,
        roots: vec![process.pid()],
        workers: None,
        guards: vec![Box::new(process)],
        dir: Some(dir),
    }
}
