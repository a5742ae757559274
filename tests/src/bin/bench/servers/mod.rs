//! The servers under test, each started with its own generated config in its own temp dir on
//! loopback ports, and stopped by pid when dropped.

pub(crate) mod apache;
pub(crate) mod nginx;
pub(crate) mod paddock;
pub(crate) mod php;
pub(crate) mod wsgi;

use std::fmt::Debug;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::procs;

/// Where a server's PHP workers are: children of `parent` named `comm`.
#[derive(Debug, Clone)]
pub(crate) struct Workers {
    pub parent: u32,
    pub comm: String,
}

impl Workers {
    pub(crate) fn pids(&self) -> Vec<u32> {
        procs::children_named(self.parent, &self.comm)
    }
}

/// A running server (a front end plus, for the peers, its PHP backend).
#[derive(Debug)]
pub(crate) struct Server {
    pub name: String,
    pub http: SocketAddr,
    pub https: Option<SocketAddr>,
    /// Root processes whose trees make up this server (memory is summed over them).
    pub roots: Vec<u32>,
    pub workers: Option<Workers>,
    /// Dropped in order (front first, then backends): each stops its process by pid.
    guards: Vec<Box<dyn Debug>>,
    /// The server's config, logs and sockets; removed after the processes stopped.
    dir: Option<tempfile::TempDir>,
}

impl Server {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    pub(crate) fn https_url(&self, path: &str) -> String {
        let addr = self.https.expect("this server has no TLS listener");
        format!("https://{addr}{path}")
    }

    /// Resident memory of every process of this server, in KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        procs::trees_rss_kib(&self.roots)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let pids: Vec<u32> = self.roots.iter().flat_map(|r| procs::tree(*r)).collect();
        self.guards.clear();
        let killed = procs::kill_leftovers(&pids);
        if killed > 0 {
            eprintln!(
                "bench: {}: killed {killed} leftover processes by pid",
                self.name
            );
        }
        // Keep the logs of a failed server for a look; remove the rest.
        if let Some(dir) = self.dir.take() {
            if std::thread::panicking() {
                let kept = dir.keep();
                eprintln!("bench: {} files kept in {}", self.name, kept.display());
            }
        }
    }
}

/// A fresh directory for one server, enterable by other users (Apache's children and php-fpm
/// sockets are reached as www-data when running as root).
pub(crate) fn server_dir(label: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("paddock-bench-{label}-"))
        .tempdir()
        .expect("temp dir");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod the server dir");
    dir
}

pub(crate) fn loopback_port() -> SocketAddr {
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    SocketAddr::new(ip, harness::peers::free_port(ip))
}

/// Waits up to `limit` for `ready`; panics with `what` and `log` if it never holds.
pub(crate) fn wait_for(what: &str, limit: Duration, log: &Path, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        if Instant::now() > deadline {
            panic!(
                "{what} did not happen within {limit:?}; log {}:\n{}",
                log.display(),
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

pub(crate) fn running_as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// What every server of the run shares: the document root and the TLS certificate.
#[derive(Debug, Clone)]
pub struct Shared {
    pub site: PathBuf,
    pub certs: crate::certs::Certs,
    pub paddock_bin: PathBuf,
}
