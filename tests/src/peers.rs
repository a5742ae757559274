//! Real peers for the tests and the benchmark: nginx, php-fpm and FastCGI applications started
//! with a listening socket on fd 0, each with every file (config, pid, logs, temp paths) in a
//! temporary directory, and stopped by pid when dropped.

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use crate::require_program;
use crate::signal;

/// How long a peer may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A port that was free a moment ago on `ip`, for a server that needs its number in its config
/// before it starts (nginx, pebble, paddock's ACME listeners).
///
/// It comes from below the kernel's ephemeral range, never from it. In that range, every
/// outgoing connection of the tests running alongside (and every bind to port 0) takes a port
/// the kernel chooses. One of them could take a port handed out here in the seconds before its
/// server binds it; a CI run failed that way ("Address already in use"). Below the range, only
/// this function hands out ports. It walks the range from a start of its own per process, so the
/// tests of one binary never get the same port. A port in use right now is skipped.
pub fn free_port(ip: IpAddr) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static HANDED_OUT: AtomicU32 = AtomicU32::new(0);
    let (low, high) = reserved_range();
    let span = u32::from(high - low);
    // Spread the starts of concurrent test processes over the range.
    let start = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let n = HANDED_OUT.fetch_add(1, Ordering::Relaxed);
        let port = low + ((start + n) % span) as u16;
        if TcpListener::bind((ip, port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {low} and {high} on {ip}");
}

/// [`free_port`] on 127.0.0.1.
pub fn loopback_port() -> u16 {
    free_port(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
}

/// The ports [`free_port`] hands out: from 10000 up to the start of the kernel's ephemeral range.
fn reserved_range() -> (u16, u16) {
    const LOW: u16 = 10_000;
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    assert!(
        ephemeral_low > LOW + 1_000,
        "the ephemeral port range starts at {ephemeral_low}: too low to keep ports for servers"
    );
    (LOW, ephemeral_low)
}

/// Whether this machine has an IPv6 loopback address (containers often have none).
pub fn has_ipv6_loopback() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

/// Absolute path of `name` found in PATH or the sbin directories (nginx, php-fpm live in sbin,
/// which a non-root PATH may lack).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"])
        .map(|dir| Path::new(dir).join(name))
        .find(|candidate| candidate.is_file());
    found
}

/// The php-fpm binary: `php-fpm`, or Debian's versioned `php-fpmX.Y`.
pub fn php_fpm_bin() -> PathBuf {
    if let Some(found) = find_program("php-fpm") {
        return found;
    }
    let mut versioned: Vec<PathBuf> = std::fs::read_dir("/usr/sbin")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("php-fpm"))
        })
        .collect();
    versioned.sort();
    versioned
        .pop()
        .expect("php-fpm is required: apt-get install php-fpm (scripts/test.sh does it)")
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// A child process stopped by pid (TERM, then KILL after a grace period) when dropped.
#[derive(Debug)]
pub struct Process {
    name: &'static str,
    child: Child,
}

impl Process {
    /// Starts `command`; `name` labels it in messages.
    pub fn spawn(name: &'static str, command: &mut Command) -> Process {
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Process { name, child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics with `context` if the process has already exited.
    pub fn assert_running(&mut self, context: &dyn Fn() -> String) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!("{} exited early ({status}):\n{}", self.name, context());
        }
    }

    /// TERM, then KILL if it has not exited within 10 s.
    pub fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        signal(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until `ready` holds, checking that `process` is still alive.
pub fn wait_until(process: &mut Process, ready: impl Fn() -> bool, context: impl Fn() -> String) {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        process.assert_running(&context);
        if ready() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not start listening:\n{}",
            process.name,
            context()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_or_empty(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A FastCGI application started the standard way: its listening Unix socket as fd 0.
#[derive(Debug)]
pub struct FcgiApp {
    pub socket: PathBuf,
    process: Process,
}

impl FcgiApp {
    /// Binds `socket` and starts `program args…` on it. The application's stderr goes to the
    /// test's stderr.
    pub fn start(program: &Path, args: &[&str], socket: &Path) -> FcgiApp {
        let listener = UnixListener::bind(socket).expect("bind the application socket");
        let mut process = Process::spawn(
            "FastCGI application",
            Command::new(program)
                .args(args)
                .stdin(Stdio::from(OwnedFd::from(listener)))
                .stdout(Stdio::null()),
        );
        process.assert_running(&|| program.display().to_string());
        FcgiApp {
            socket: socket.to_path_buf(),
            process,
        }
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}

/// The main-context settings of an [`Nginx`]; the default suits the tests (one worker, few
/// connections), the benchmark raises them.
#[derive(Debug, Clone)]
pub struct NginxSettings {
    /// `worker_processes` value: a number or `auto`.
    pub worker_processes: String,
    /// `worker_connections` per worker.
    pub worker_connections: u32,
    /// Extra main-context directives (e.g. `worker_rlimit_nofile 30000;`).
    pub main_extra: String,
}

impl Default for NginxSettings {
    fn default() -> Self {
        NginxSettings {
            worker_processes: "1".to_string(),
            worker_connections: 128,
            main_extra: String::new(),
        }
    }
}

/// nginx with a config of our own, listening on `addr`.
#[derive(Debug)]
pub struct Nginx {
    pub addr: SocketAddr,
    pub dir: PathBuf,
    process: Process,
}

impl Nginx {
    /// Starts nginx with `http_body` (server blocks, upstreams) inside an `http {}` block whose
    /// logs and temp paths are under `dir`. `{listen}` in `http_body` is replaced by the chosen
    /// address; `listen_ip` picks its family. Waits until the port accepts connections.
    pub fn start(dir: &Path, listen_ip: IpAddr, http_body: &str) -> Nginx {
        Self::start_with(dir, listen_ip, &NginxSettings::default(), http_body)
    }

    /// Like [`Nginx::start`], with the main-context `settings`.
    pub fn start_with(
        dir: &Path,
        listen_ip: IpAddr,
        settings: &NginxSettings,
        http_body: &str,
    ) -> Nginx {
        let nginx = require_program("nginx", "nginx");
        let port = free_port(listen_ip);
        let addr = SocketAddr::new(listen_ip, port);
        let listen = match listen_ip {
            IpAddr::V4(ip) => format!("{ip}:{port}"),
            IpAddr::V6(ip) => format!("[{ip}]:{port}"),
        };
        let d = dir.display();
        // As root the workers would switch to "nobody", who cannot reach sockets in a private
        // temp dir; the tests' sockets are ours, so keep the workers as root.
        let user = if running_as_root() { "user root;" } else { "" };
        let config = format!(
            "worker_processes {processes};\n{user}\n{main_extra}\n\
             error_log {d}/nginx-error.log info;\npid {d}/nginx.pid;\n\
             events {{ worker_connections {connections}; }}\n\
             http {{\n  access_log {d}/nginx-access.log;\n  client_body_temp_path {d}/client_body;\n  \
             fastcgi_temp_path {d}/fastcgi_temp;\n  proxy_temp_path {d}/proxy_temp;\n  \
             uwsgi_temp_path {d}/uwsgi_temp;\n  scgi_temp_path {d}/scgi_temp;\n\
             {body}\n}}\n",
            body = http_body.replace("{listen}", &listen),
            processes = settings.worker_processes,
            main_extra = settings.main_extra,
            connections = settings.worker_connections,
        );
        let config_path = dir.join("nginx.conf");
        std::fs::write(&config_path, config).expect("write nginx.conf");
        link_stock_nginx_files(dir);
        let stderr = std::fs::File::create(dir.join("nginx.stderr")).expect("nginx.stderr");
        let mut process = Process::spawn(
            "nginx",
            Command::new(nginx)
                .arg("-c")
                .arg(&config_path)
                .arg("-e")
                .arg(dir.join("nginx-error.log"))
                .args(["-g", "daemon off;"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr),
        );
        let dir = dir.to_path_buf();
        let log_dir = dir.clone();
        wait_until(
            &mut process,
            || TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok(),
            || {
                read_or_empty(&log_dir.join("nginx.stderr"))
                    + &read_or_empty(&log_dir.join("nginx-error.log"))
            },
        );
        Nginx { addr, dir, process }
    }

    /// nginx's error log (FastCGI stderr lines land here).
    pub fn error_log(&self) -> String {
        read_or_empty(&self.dir.join("nginx-error.log"))
    }

    pub fn url(&self, path: &str) -> String {
        match self.addr.ip() {
            IpAddr::V4(ip) => format!("http://{ip}:{}{path}", self.addr.port()),
            IpAddr::V6(ip) => format!("http://[{ip}]:{}{path}", self.addr.port()),
        }
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}

/// nginx resolves relative `include`s against the directory of its config file, and Debian's
/// snippets include `fastcgi.conf` relatively; link the stock files next to our config so they
/// can be used unchanged.
fn link_stock_nginx_files(dir: &Path) {
    for name in ["snippets", "fastcgi.conf", "fastcgi_params", "mime.types"] {
        let stock = Path::new("/etc/nginx").join(name);
        if stock.exists() {
            std::os::unix::fs::symlink(&stock, dir.join(name)).expect("link stock nginx file");
        }
    }
}

/// php-fpm in the foreground with one static pool on a Unix socket.
#[derive(Debug)]
pub struct PhpFpm {
    pub socket: PathBuf,
    pub dir: PathBuf,
    process: Process,
}

impl PhpFpm {
    /// Starts php-fpm with a `pm = static` pool of `children` on `dir/php-fpm.sock`, its pid file
    /// and log in `dir`. `pool_extra` is appended to the pool section (php_admin_value, env, …).
    pub fn start(dir: &Path, children: u32, pool_extra: &str) -> PhpFpm {
        let pool = format!("pm = static\npm.max_children = {children}\n{pool_extra}");
        Self::start_pool(dir, &pool)
    }

    /// Starts php-fpm with one pool on `dir/php-fpm.sock` whose process-manager settings (`pm`,
    /// `pm.max_children`, …) and any other pool directives are `pool_settings`.
    pub fn start_pool(dir: &Path, pool_settings: &str) -> PhpFpm {
        let socket = dir.join("php-fpm.sock");
        let d = dir.display();
        let config = format!(
            "[global]\npid = {d}/php-fpm.pid\nerror_log = {d}/php-fpm.log\ndaemonize = no\n\n\
             [paddock-test]\nlisten = {socket}\nlisten.mode = 0666\n\
             catch_workers_output = yes\n{pool_settings}\n",
            socket = socket.display(),
        );
        let config_path = dir.join("php-fpm.conf");
        std::fs::write(&config_path, config).expect("write php-fpm.conf");
        let stderr = std::fs::File::create(dir.join("php-fpm.stderr")).expect("php-fpm.stderr");
        let mut command = Command::new(php_fpm_bin());
        command.arg("-F").arg("-y").arg(&config_path);
        if running_as_root() {
            command.arg("-R");
        }
        let mut process = Process::spawn(
            "php-fpm",
            command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr),
        );
        let probe = socket.clone();
        let log_dir = dir.to_path_buf();
        wait_until(
            &mut process,
            || UnixStream::connect(&probe).is_ok(),
            || {
                read_or_empty(&log_dir.join("php-fpm.stderr"))
                    + &read_or_empty(&log_dir.join("php-fpm.log"))
            },
        );
        PhpFpm {
            socket,
            dir: dir.to_path_buf(),
            process,
        }
    }

    pub fn log(&self) -> String {
        read_or_empty(&self.dir.join("php-fpm.log"))
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_bindable_and_outside_the_ephemeral_range() {
        let ip = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        let (low, high) = reserved_range();
        let ports: Vec<u16> = (0..50).map(|_| free_port(ip)).collect();
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), ports.len(), "{ports:?}");
        for port in ports {
            assert!((low..high).contains(&port), "{port}");
            TcpListener::bind((ip, port)).expect("the port is free");
        }
    }
}
