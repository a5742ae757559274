//! Harness for the end-to-end tests: starts the real `paddock` binary with a temporary config on
//! ephemeral loopback ports, and stops it by pid when the test ends.
//!
//! Listeners are configured on port 0; the harness learns the real ports from the master's
//! `listening` log lines and waits until the admin `/readyz` says every pool has workers.
//!
//! The tests are a handful of binaries, one per theme (`tests/tests/<theme>/main.rs` with one
//! module per file): `connections`, `hostile`, `http2`, `observability`, `operations`, `pools`,
//! `responses`, `site`, `legacy` (site rules, `.htaccess`, real applications), `apps` (Python
//! WSGI applications in threaded pools). Each binary links once; run one theme with
//! `cargo test -p paddock-tests --test hostile`, one module or test with a filter
//! (`cargo test -p paddock-tests --test pools queue::`).
//!
//! Tests wait on events, never on the clock: [`wait_until`], [`wait_for`],
//! [`Paddock::wait_pool`] (a `/status` field), [`Paddock::wait_for_log`], all bounded by
//! [`PATIENCE`], which only a failing test reaches; [`Hold`] keeps a worker busy until the test
//! lets it go, instead of a script that sleeps for a guessed time. A fixed bound is left only
//! where a test proves that something does *not* happen within a window (load cannot make it
//! happen), or where it is derived from paddock's own deadline or a window measured in the test.

pub mod client;
pub mod h3_client;
pub mod hostile;
pub mod mariadb;
pub mod mediawiki;
pub mod observe;
pub mod pebble;
pub mod peers;
pub mod php_builtin;
pub mod raw;
pub mod tls_client;
pub mod wait;
pub mod wsgi;

pub use wait::{wait_for, wait_until, Hold, PATIENCE};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a paddock instance may take to become ready.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The `paddock` binary under test: `$PADDOCK_BIN`, or the one `cargo build` put in the target
/// directory (see [`built_binary`]).
pub fn paddock_bin() -> PathBuf {
    built_binary("paddock", "PADDOCK_BIN")
}

/// A binary of the workspace: the path in `$env_var`, or `name` beside the running executable or
/// one directory up (a test runs from `target/debug/deps`, the bench from `target/release`).
pub fn built_binary(name: &str, env_var: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var) {
        return path.into();
    }
    let exe = std::env::current_exe().expect("the running executable's path");
    let beside = exe.parent().expect("its directory");
    let candidates = [
        beside.join(name),
        beside.parent().unwrap_or(beside).join(name),
    ];
    let found = candidates.iter().find(|path| path.exists());
    assert!(
        found.is_some(),
        "{name} not found beside {}: build it first (`cargo build --workspace`; the README's \
         test command does)",
        exe.display()
    );
    found.cloned().unwrap_or_default()
}

/// The document root with the test scripts (`tests/site`).
pub fn test_site() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("site")
}

/// A file or directory of the deployment assets in `deploy/`.
pub fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(path)
}

/// The demo site shipped in `deploy/demo`.
pub fn demo_site() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/demo")
}

/// Fails the test with a clear message when php-cgi is missing (CI installs it; a skipped test
/// would hide that).
pub fn require_php_cgi() {
    require_program("php-cgi", "php-cgi");
}

/// The absolute path of `name` (a name looked up in PATH and the sbin directories, which a
/// non-root PATH may lack, or a path); fails the test naming the Debian package to install when
/// it is missing (CI installs them; a skipped test would hide that).
pub fn require_program(name: &str, package: &str) -> PathBuf {
    peers::find_program(name).unwrap_or_else(|| {
        panic!("{name} is required: apt-get install {package} (scripts/test.sh does it)")
    })
}

/// Standard listeners (HTTP, HTTPS with a generated certificate, admin) on ephemeral ports.
pub const LISTENERS: &str = r#"
[listeners.http]
kind = "http"
address = "127.0.0.1:0"

[listeners.https]
kind = "https"
address = "127.0.0.1:0"

[listeners.admin]
kind = "admin"
address = "127.0.0.1:0"
"#;

/// [`LISTENERS`] with the plain HTTP listener also speaking HTTP/2 with prior knowledge (h2c).
pub fn listeners_h2c() -> String {
    LISTENERS.replace(
        "kind = \"http\"\naddress = \"127.0.0.1:0\"\n",
        "kind = \"http\"\naddress = \"127.0.0.1:0\"\nhttp2_prior_knowledge = true\n",
    )
}

/// [`LISTENERS`] with the HTTPS listener serving `cert` and `key` (PEM files) instead of a
/// generated certificate.
pub fn listeners_with_certificate(cert: &Path, key: &Path) -> String {
    LISTENERS.replace(
        "[listeners.https]\nkind = \"https\"\naddress = \"127.0.0.1:0\"\n",
        &format!(
            "[listeners.https]\nkind = \"https\"\naddress = \"127.0.0.1:0\"\ncertificate = \"{}\"\nkey = \"{}\"\n",
            cert.display(),
            key.display()
        ),
    )
}

/// A site over `root` whose `.php` files go to a prefork pool of `workers` php-cgi processes.
pub fn php_site(root: &Path, workers: u32, extra_pool: &str) -> String {
    format!(
        r#"
[sites.test]
root = "{root}"
index = ["index.php", "index.html"]

[sites.test.scripts]
pool = "php"
front_controller = "/index.php"

[pools.php]
mode = "prefork"
command = ["php-cgi"]
workers = {workers}
{extra_pool}
"#,
        root = root.display()
    )
}

/// A running paddock.
#[derive(Debug)]
pub struct Paddock {
    child: Child,
    pub dir: tempfile::TempDir,
    pub http: SocketAddr,
    pub https: SocketAddr,
    pub admin: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Paddock {
    /// Starts paddock with [`LISTENERS`] plus `config`, and waits until it is ready.
    pub fn start(config: &str) -> Paddock {
        Self::start_with(&format!("{LISTENERS}\n{config}"), true)
    }

    /// Starts paddock with exactly `config`; `wait_ready` waits for `/readyz` to answer 200.
    pub fn start_with(config: &str, wait_ready: bool) -> Paddock {
        Self::start_binary(&paddock_bin(), config, wait_ready)
    }

    /// Like [`Paddock::start_with`], running the binary at `binary`.
    pub fn start_binary(binary: &Path, config: &str, wait_ready: bool) -> Paddock {
        // World-traversable (not the default 0700), so that a front end or workers running as
        // another user (privilege tests) can reach the runtime directory inside it.
        let dir = tempfile::Builder::new()
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .tempdir()
            .expect("temp dir");
        let config_path = write_config(dir.path(), config);
        let mut command = Command::new(binary);
        command
            .args(["serve", "--config"])
            .arg(&config_path)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = spawn_fresh_binary(&mut command);
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var_os("PADDOCK_TEST_LOG").is_some() {
                    eprintln!("[paddock] {line}");
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut paddock = Paddock {
            child,
            dir,
            http: unspecified(),
            https: unspecified(),
            admin: unspecified(),
            log,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = paddock.child.try_wait().expect("try_wait") {
                panic!("paddock exited early ({status}):\n{}", paddock.log());
            }
            paddock.http = paddock.listener("http").unwrap_or_else(unspecified);
            paddock.https = paddock.listener("https").unwrap_or_else(unspecified);
            paddock.admin = paddock.listener("admin").unwrap_or_else(unspecified);
            let started = paddock.log().contains("front end ready");
            if started && (!wait_ready || paddock.is_ready()) {
                return paddock;
            }
            assert!(
                Instant::now() < deadline,
                "paddock did not become ready:\n{}",
                paddock.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Replaces the config file with [`LISTENERS`] plus `config` (as [`Paddock::start`] wrote it)
    /// and sends SIGHUP: a reload.
    pub fn reload(&self, config: &str) {
        write_config(self.dir.path(), &format!("{LISTENERS}\n{config}"));
        signal(self.child.id(), "HUP");
    }

    /// Everything paddock has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The address of listener `name`, once the master has logged it.
    pub fn listener(&self, name: &str) -> Option<SocketAddr> {
        let needle = format!("listening listener={name} address=");
        let log = self.log();
        let start = log.find(&needle)? + needle.len();
        log[start..].split_whitespace().next()?.parse().ok()
    }

    /// The address of listener `name` (panics when the master has not logged it: ready
    /// instances have logged every listener).
    pub fn address(&self, name: &str) -> SocketAddr {
        self.listener(name)
            .unwrap_or_else(|| panic!("listener {name} not logged:\n{}", self.log()))
    }

    fn is_ready(&self) -> bool {
        self.admin.port() != 0
            && http_get(self.admin, "/readyz").is_some_and(|r| r.starts_with("HTTP/1.1 200"))
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    pub fn https_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.https.port())
    }

    /// Runs curl with `args`, resolving `localhost` to this instance for HTTPS, insecure (the
    /// certificate is the generated self-signed one).
    pub fn curl(&self, args: &[&str]) -> Output {
        self.curl_command(args)
            .output()
            .expect("run curl (apt-get install curl)")
    }

    /// The HTTP status of curl with `args` (0 when curl gets none).
    pub fn curl_status(&self, args: &[&str]) -> u16 {
        let mut all = vec!["-o", "/dev/null", "-w", "%{http_code}"];
        all.extend_from_slice(args);
        String::from_utf8_lossy(&self.curl(&all).stdout)
            .parse()
            .unwrap_or(0)
    }

    /// The command [`Paddock::curl`] runs, to spawn it or to run it in another thread.
    pub fn curl_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("curl");
        command
            .args(["-sS", "-k", "--max-time", "30"])
            .arg("--resolve")
            .arg(format!("localhost:{}:127.0.0.1", self.https.port()))
            .args(args);
        command
    }

    /// The admin `/status` JSON.
    pub fn status(&self) -> serde_json::Value {
        let raw = http_get(self.admin, "/status?json").expect("admin /status");
        let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        serde_json::from_str(body).unwrap_or_else(|e| panic!("status JSON ({e}): {raw}"))
    }

    /// The number of workers the front end knows in pool `pool`.
    pub fn pool_workers(&self, pool: &str) -> u64 {
        let status = self.status();
        status["pools"]
            .as_array()
            .and_then(|pools| pools.iter().find(|p| p["name"] == pool))
            .and_then(|p| p["workers"].as_u64())
            .unwrap_or_else(|| panic!("no pool {pool} in {status}"))
    }

    /// Child processes of the master (pid, command name): the front end and the workers.
    pub fn children(&self) -> Vec<(u32, String)> {
        children_of(self.child.id())
    }

    /// The pid of the front end (the master's `paddock frontend` child).
    pub fn frontend_pid(&self) -> u32 {
        let output = Command::new("ps")
            .args(["-o", "pid=,args=", "--ppid"])
            .arg(self.pid().to_string())
            .output()
            .expect("ps (apt-get install procps)");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .find(|line| line.contains("frontend"))
            .and_then(|line| line.split_whitespace().next()?.parse().ok())
            .expect("a `paddock frontend` child of the master")
    }

    /// Pids of the master's children running `command` (e.g. "php-cgi").
    pub fn worker_pids(&self, command: &str) -> Vec<u32> {
        self.children()
            .into_iter()
            .filter(|(_, name)| name == command)
            .map(|(pid, _)| pid)
            .collect()
    }

    /// The `/status` JSON of pool `pool` (`busy_slots`, `idle_slots`, `waiting`, `workers`, …).
    pub fn pool_status(&self, pool: &str) -> serde_json::Value {
        let status = self.status();
        status["pools"]
            .as_array()
            .and_then(|pools| pools.iter().find(|p| p["name"] == pool))
            .cloned()
            .unwrap_or_else(|| panic!("no pool {pool} in {status}"))
    }

    /// Waits (up to [`PATIENCE`]) until pool `pool`'s `/status` entry satisfies `condition`;
    /// returns that entry. For example, that a request occupies a worker before the test queues
    /// another behind it: `paddock.wait_pool("php", "a busy worker", |p| p["busy_slots"] == 1)`.
    pub fn wait_pool(
        &self,
        pool: &str,
        what: &str,
        mut condition: impl FnMut(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let mut last = serde_json::Value::Null;
        let found = wait::poll(PATIENCE, || {
            last = self.pool_status(pool);
            condition(&last).then(|| last.clone())
        });
        found.unwrap_or_else(|| {
            panic!(
                "timed out waiting for {what} in pool {pool}: {last}\n{}",
                self.log()
            )
        })
    }

    /// Waits (up to [`PATIENCE`]) until a worker of pool `pool` is running a request for `path`
    /// (as `/status` shows it: the path without the query).
    pub fn wait_for_request(&self, pool: &str, path: &str) {
        self.wait_pool(pool, &format!("a worker running {path}"), |p| {
            running(p, path)
        });
    }

    /// Waits (up to [`PATIENCE`]) until the log contains `needle`.
    pub fn wait_for_log(&self, needle: &str) {
        self.wait_until(&format!("log line {needle:?}"), PATIENCE, || {
            self.log().contains(needle)
        });
    }

    /// Waits (polling, up to `limit`) until `condition` holds; panics with `what` and the log if not.
    pub fn wait_until(&self, what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + limit;
        while !condition() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM and waits for the exit; returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        signal(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return self.child.wait().expect("wait");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Paddock {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.stop();
        }
    }
}

/// Runs `openssl ARGS` in `dir`; panics with openssl's message if it fails.
pub fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl (apt-get install openssl)");
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Generates a self-signed certificate for localhost with openssl: `<dir>/<name>.crt` and
/// `<dir>/<name>.key`.
pub fn self_signed_certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (apt-get install openssl)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    (cert, key)
}

/// A raw TLS client to `addr` with SNI `servername` (`openssl s_client -quiet -ign_eof`):
/// write HTTP to its stdin, read the answers from its stdout.
pub fn tls_client(addr: SocketAddr, servername: &str) -> Child {
    Command::new("openssl")
        .args(["s_client", "-quiet", "-ign_eof", "-servername", servername])
        .arg("-connect")
        .arg(addr.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client (apt-get install openssl)")
}

/// Writes the config file the harness uses into `dir`: a private runtime directory, debug
/// logging, then `config`.
fn write_config(dir: &Path, config: &str) -> PathBuf {
    let path = dir.join("paddock.toml");
    let text = format!(
        "[server]\nruntime_dir = \"{}\"\nlog_level = \"debug\"\n{config}",
        dir.join("run").display()
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// Child processes of `parent` (pid, command name), read with ps, the oldest first.
pub fn children_of(parent: u32) -> Vec<(u32, String)> {
    let output = Command::new("ps")
        .args(["-o", "pid=,comm=", "--sort=start_time", "--ppid"])
        .arg(parent.to_string())
        .output()
        .expect("ps (apt-get install procps)");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            Some((parts.next()?.parse().ok()?, parts.next()?.to_string()))
        })
        .collect()
}

/// Whether a worker in a pool's `/status` entry is running a request for `path`.
pub fn running(pool: &serde_json::Value, path: &str) -> bool {
    pool["processes"].as_array().is_some_and(|processes| {
        processes.iter().any(|process| {
            process["current"]
                .as_array()
                .is_some_and(|current| current.iter().any(|r| r["path"] == path))
        })
    })
}

/// The number of open file descriptors of `pid`.
pub fn open_fds(pid: u32) -> usize {
    fds(pid).len()
}

/// The open file descriptors of `pid`, from /proc.
pub fn fds(pid: u32) -> std::collections::BTreeSet<u32> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/fd: {e}"))
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The value of header `name` (any case) in a response head, trimmed.
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

/// The fields of a `/proc/…/stat` line after the command name (which may hold spaces and
/// parentheses): the process state first, so field N of proc(5) (1-based) is at index N - 3.
pub fn stat_fields_after_name(stat: &str) -> Vec<&str> {
    stat.rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect()
}

/// The CPUs a process or thread may run on, from the `Cpus_allowed_list` ("0-1,4") of its
/// `/proc/…/status` at `status_path`; `None` if it has gone.
pub fn cpus_allowed(status_path: impl AsRef<Path>) -> Option<std::collections::BTreeSet<usize>> {
    let status = std::fs::read_to_string(status_path).ok()?;
    let list = status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))?;
    let mut cpus = std::collections::BTreeSet::new();
    for part in list.trim().split(',').filter(|part| !part.is_empty()) {
        match part.split_once('-') {
            Some((first, last)) => cpus.extend(first.parse::<usize>().ok()?..=last.parse().ok()?),
            None => {
                cpus.insert(part.parse().ok()?);
            }
        }
    }
    Some(cpus)
}

/// Whether a process exists (and is not a zombie).
pub fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

fn unspecified() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 0))
}

/// Sends a signal to one pid with kill(1): by pid, never by name.
pub fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status();
}

/// The HTTP status of `curl url` (0 when curl gets none): for threads, which cannot take the
/// [`Paddock`] along.
pub fn curl_code(url: &str) -> u16 {
    let output = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "30",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(url)
        .output()
        .expect("run curl (apt-get install curl)");
    String::from_utf8_lossy(&output.stdout).parse().unwrap_or(0)
}

/// A minimal HTTP/1.1 GET over a fresh connection; the raw response text, or None on failure.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

/// Splits curl `-i` output (or a raw response) into status code, head and body.
pub fn split_response(raw: &str) -> (u16, String, String) {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// Spawns `command`, whose program may be a copy a test has just written (a `paddock` alone in a
/// directory). Until every process another test thread forked meanwhile has reached its `exec`,
/// such a child still holds the copy open for writing, and exec'ing the copy fails with ETXTBSY;
/// that passes within moments, so it is retried (for up to 10 s).
fn spawn_fresh_binary(command: &mut Command) -> std::process::Child {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match command.spawn() {
            Ok(child) => return child,
            Err(e)
                if e.kind() == std::io::ErrorKind::ExecutableFileBusy
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("start paddock: {e}"),
        }
    }
}
