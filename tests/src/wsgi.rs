//! Python WSGI applications for the end-to-end tests (`tests/apps`): Debian's python3-flask and
//! python3-django, served by flup (`deploy/examples/wsgi/fcgi_serve.py`) in a paddock threaded pool.
//!
//! flup is not packaged in Debian 12, so the set-up installs the pinned [`FLUP_VERSION`] from
//! the Python package registry into a virtual environment under the target directory, once, and
//! reuses it. The environment is created with `--system-site-packages` from Debian's
//! `/usr/bin/python3` (never another python3 that PATH may find first), so Debian's Flask and
//! Django are the ones imported.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The flup release the tests and the benchmark use.
pub const FLUP_VERSION: &str = "1.0.3";

/// The granian release `deploy/examples/wsgi/granian_serve.py` is written for (it replaces two
/// private steps of granian's server class, so the version is pinned).
pub const GRANIAN_VERSION: &str = "2.8.7";

/// Debian's Python, whose dist-packages hold python3-flask and python3-django.
pub const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// `tests/apps`: the applications and the FastCGI entry point.
pub fn apps_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("apps")
}

/// Whether Debian's Python can import every module of `modules`. When it cannot, prints why the
/// calling test does nothing, naming the package to install (CI installs them: scripts/test.sh).
pub fn python_has(modules: &[&str], package: &str) -> bool {
    let imports = modules.join(", ");
    let found = Command::new(SYSTEM_PYTHON)
        .args(["-c", &format!("import {imports}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!(
            "SKIPPED: {SYSTEM_PYTHON} cannot import {imports}: apt-get install {package} python3-venv (scripts/test.sh does it)"
        );
    }
    found
}

/// The Python of the virtual environment holding flup, created on first use and kept under the
/// target directory for later runs. Panics when it cannot be made (no network to the registry).
pub fn flup_python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| registry_venv("flup", FLUP_VERSION))
        .clone()
}

/// The Python of the virtual environment holding granian, made like [`flup_python`]'s.
pub fn granian_python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| registry_venv("granian", GRANIAN_VERSION))
        .clone()
}

/// The Python of a virtual environment (Debian's Python, with its packages) holding `package`
/// at `version` from the Python package registry, made once under the target directory
/// (`target/wsgi-venv/<package>-<version>`) and reused by later runs. Panics when it cannot be
/// made (no network to the registry).
pub fn registry_venv(package: &str, version: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> (a test) or target/<profile>/<bin> (the benchmark) →
    // target/wsgi-venv/<package>-<version>
    let mut profile = exe.parent().expect("the executable's directory");
    if profile.ends_with("deps") {
        profile = profile.parent().expect("target/<profile>");
    }
    let target = profile.parent().expect("the target directory");
    let venv = target
        .join("wsgi-venv")
        .join(format!("{package}-{version}"));
    let python = venv.join("bin/python3");
    if venv.join(".complete").exists() {
        return python;
    }
    // Built aside and renamed into place, so that test binaries running at once never see (or
    // use) a half-made environment.
    let building = target
        .join("wsgi-venv")
        .join(format!(".building-{package}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    std::fs::create_dir_all(&building).expect("create the venv directory");
    // Without pip of its own: Debian's pip (python3-pip), seen through the system site packages,
    // installs into the environment. Bootstrapping a private pip (ensurepip) is one more step
    // that can fail (it did on a CI machine) and buys nothing here.
    run(Command::new(SYSTEM_PYTHON)
        .args(["-m", "venv", "--system-site-packages", "--without-pip"])
        .arg(&building));
    run(Command::new(building.join("bin/python3")).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        &format!("{package}=={version}"),
    ]));
    std::fs::write(building.join(".complete"), version).expect("mark the venv complete");
    if std::fs::rename(&building, &venv).is_err() {
        // Another test binary finished first: use its environment.
        let _ = std::fs::remove_dir_all(&building);
    }
    assert!(
        venv.join(".complete").exists(),
        "no {package} venv at {}",
        venv.display()
    );
    python
}

fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e} (apt-get install python3-venv python3-pip)"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// How long uWSGI keeps an idle HTTP connection ([`WsgiServer::UwsgiHttp`]'s
/// `--socket-timeout`): an hour, as docs/wsgi-apps.md advises, so that paddock, not the worker,
/// decides when a slot's connection ends.
pub const HTTP_IDLE_SECONDS: u32 = 3600;

/// The FastCGI server a threaded pool's workers run the WSGI app in, on the socket paddock hands
/// them as fd 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsgiServer {
    /// deploy/examples/wsgi/fcgi_serve.py: flup's WSGIServer, from the venv [`flup_python`] makes.
    Flup,
    /// Debian's uWSGI (`uwsgi` + `uwsgi-plugin-python3`) with `--protocol fastcgi`: one process of
    /// `threads` threads per worker, no uWSGI master (paddock is the master).
    Uwsgi,
    /// The same uWSGI speaking its own protocol, uwsgi, to a pool with `protocol = "uwsgi"`.
    UwsgiNative,
    /// The same uWSGI speaking HTTP/1.1 (`--protocol http11`) to a pool with
    /// `protocol = "http"`, on connections kept from request to request. The application must
    /// take what it knows of the client from `X-Forwarded-*` headers ([`Self::speaks_http`]).
    UwsgiHttp,
    /// deploy/examples/wsgi/granian_serve.py: granian (from the venv [`granian_python`] makes)
    /// speaking HTTP/1.1 to a pool with `protocol = "http"`, connections kept like
    /// [`Self::UwsgiHttp`]'s.
    Granian,
    /// paddock's own WSGI worker (`paddock-wsgi`, the wsgi-worker crate): CPython embedded in a
    /// threaded FastCGI worker, the CGI variables as the environ; run as `builtin = "wsgi"`
    /// (requests sent ahead, `readiness = "notify"`).
    Paddock,
    /// paddock-wsgi named by a pool's `command`, as any FastCGI program (send_ahead off,
    /// readiness on listen, unless the pool says otherwise).
    PaddockCommand,
}

impl WsgiServer {
    /// The lines of a pool's section that say what its workers run: `builtin = "wsgi"` with
    /// its `wsgi_app`, or the `command` of [`Self::command`].
    pub fn program(self, target: &str, threads: u32) -> String {
        match self {
            WsgiServer::Paddock => format!("builtin = \"wsgi\"\nwsgi_app = \"{target}\""),
            _ => format!("command = {}", self.command(target, threads)),
        }
    }

    /// The pool's `command` for `module:attribute` with `threads` threads, as a TOML array (and
    /// the `protocol` line after it when the workers speak anything but FastCGI).
    pub fn command(self, target: &str, threads: u32) -> String {
        match self {
            WsgiServer::Flup => format!(
                "[\"{python}\", \"{serve}\", \"{target}\"]",
                python = flup_python().display(),
                serve = crate::deploy("examples/wsgi/fcgi_serve.py").display(),
            ),
            WsgiServer::Uwsgi => format!(
                "[\"/usr/bin/uwsgi\", \"--plugin\", \"python3\", \"--protocol\", \"fastcgi\", \
                 \"--threads\", \"{threads}\", \"--module\", \"{target}\", \"--need-app\", \
                 \"--die-on-term\", \"--disable-logging\"]"
            ),
            WsgiServer::UwsgiNative => format!(
                "[\"/usr/bin/uwsgi\", \"--plugin\", \"python3\", \
                 \"--threads\", \"{threads}\", \"--module\", \"{target}\", \"--need-app\", \
                 \"--die-on-term\", \"--disable-logging\"]\nprotocol = \"uwsgi\""
            ),
            WsgiServer::UwsgiHttp => format!(
                "[\"/usr/bin/uwsgi\", \"--plugin\", \"python3\", \"--protocol\", \"http11\", \
                 \"--socket-timeout\", \"{HTTP_IDLE_SECONDS}\", \
                 \"--threads\", \"{threads}\", \"--module\", \"{target}\", \"--need-app\", \
                 \"--die-on-term\", \"--disable-logging\"]\nprotocol = \"http\""
            ),
            WsgiServer::Granian => format!(
                "[\"{python}\", \"{serve}\", \"{target}\"]\nprotocol = \"http\"",
                python = granian_python().display(),
                serve = crate::deploy("examples/wsgi/granian_serve.py").display(),
            ),
            WsgiServer::Paddock | WsgiServer::PaddockCommand => format!(
                "[\"{worker}\", \"{target}\"]",
                worker = wsgi_worker_bin().display()
            ),
        }
    }

    /// The name (`/proc/PID/comm`) of the worker processes this server runs as.
    pub fn process_name(self) -> &'static str {
        match self {
            WsgiServer::Flup | WsgiServer::Granian => "python3",
            WsgiServer::Uwsgi | WsgiServer::UwsgiNative | WsgiServer::UwsgiHttp => "uwsgi",
            WsgiServer::Paddock | WsgiServer::PaddockCommand => "paddock-wsgi",
        }
    }

    /// Whether the workers get the request over HTTP, as an application behind a reverse proxy
    /// does (so it needs a proxy-aware entry point, e.g. werkzeug's `ProxyFix`).
    pub fn speaks_http(self) -> bool {
        matches!(self, WsgiServer::UwsgiHttp | WsgiServer::Granian)
    }

    /// Whether the server can run here; if not, says which packages are missing (the caller's
    /// test then does nothing).
    pub fn available(self) -> bool {
        match self {
            WsgiServer::Flup | WsgiServer::Granian => true,
            // Built with the workspace (the README's test command builds it): never skipped.
            WsgiServer::Paddock | WsgiServer::PaddockCommand => wsgi_worker_bin().exists(),
            WsgiServer::Uwsgi | WsgiServer::UwsgiNative | WsgiServer::UwsgiHttp => {
                let ok = Path::new("/usr/bin/uwsgi").exists()
                    && Path::new("/usr/lib/uwsgi/plugins/python3_plugin.so").exists();
                if !ok {
                    eprintln!("skipped: needs Debian's uwsgi and uwsgi-plugin-python3");
                }
                ok
            }
        }
    }
}

/// paddock's WSGI worker: `$PADDOCK_WSGI_BIN`, or the `paddock-wsgi` that `cargo build
/// --workspace` built (it needs libpython3.11-dev; the README's test command installs it).
pub fn wsgi_worker_bin() -> PathBuf {
    crate::built_binary("paddock-wsgi", "PADDOCK_WSGI_BIN")
}

/// The `[pools.NAME]` body of a threaded pool running `module:attribute` from `app_dir` with
/// flup: `workers` processes of `threads` threads, plus `extra` lines.
pub fn threaded_pool(
    app_dir: &Path,
    target: &str,
    workers: u32,
    threads: u32,
    extra: &str,
) -> String {
    threaded_pool_on(WsgiServer::Flup, app_dir, target, workers, threads, extra)
}

/// [`threaded_pool`] with the FastCGI server of the caller's choice.
pub fn threaded_pool_on(
    server: WsgiServer,
    app_dir: &Path,
    target: &str,
    workers: u32,
    threads: u32,
    extra: &str,
) -> String {
    format!(
        "mode = \"threaded\"\nworkers = {workers}\nthreads = {threads}\n{program}\nworking_directory = \"{dir}\"\n{extra}\n",
        program = server.program(target, threads),
        dir = app_dir.display(),
    )
}
