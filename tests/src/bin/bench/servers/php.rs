//! The PHP backends behind nginx and Apache: php-fpm with a given process manager, and php-cgi
//! managing its own children on one socket (`PHP_FCGI_CHILDREN`, the classic spawn-fcgi set-up).

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use harness::peers::{PhpFpm, Process};

use super::{wait_for, Workers};

/// A started PHP backend: its FastCGI socket, where its workers are, and the guard that stops it.
#[derive(Debug)]
pub(crate) struct Backend {
    pub socket: PathBuf,
    pub root: u32,
    pub workers: Workers,
    pub guard: Box<dyn std::fmt::Debug>,
}

/// The command name of `pid` (what its forked children are called too).
fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// php-fpm process-manager settings.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Pm {
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

impl Pm {
    fn settings(self) -> String {
        match self {
            Pm::Static(n) => format!("pm = static\npm.max_children = {n}\n"),
            Pm::Ondemand { max } => {
                format!("pm = ondemand\npm.max_children = {max}\npm.process_idle_timeout = 10s\n")
            }
            Pm::Dynamic {
                max,
                start,
                min_spare,
                max_spare,
            } => format!(
                "pm = dynamic\npm.max_children = {max}\npm.start_servers = {start}\n\
                 pm.min_spare_servers = {min_spare}\npm.max_spare_servers = {max_spare}\n"
            ),
        }
    }

    fn initial(self) -> usize {
        match self {
            Pm::Static(n) => n as usize,
            Pm::Ondemand { .. } => 0,
            Pm::Dynamic { start, .. } => start as usize,
        }
    }
}

pub(crate) fn php_fpm(dir: &Path, pm: Pm) -> Backend {
    // A deep listen backlog like paddock's and nginx's, so no server is limited by it.
    let fpm = PhpFpm::start_pool(dir, &format!("{}listen.backlog = 4096\n", pm.settings()));
    let root = fpm.pid();
    let workers = Workers {
        parent: root,
        comm: comm(root),
    };
    let expected = pm.initial();
    wait_for(
        "php-fpm's children",
        Duration::from_secs(20),
        &dir.join("php-fpm.log"),
        || workers.pids().len() >= expected,
    );
    Backend {
        socket: fpm.socket.clone(),
        root,
        workers,
        guard: Box::new(fpm),
    }
}

/// `php-cgi -b SOCKET` with `children` children of its own (and no recycling, as paddock and
/// php-fpm run it).
pub(crate) fn php_cgi_children(dir: &Path, children: u32) -> Backend {
    let socket = dir.join("php-cgi.sock");
    let log = dir.join("php-cgi.log");
    let stderr = std::fs::File::create(&log).expect("php-cgi.log");
    let process = Process::spawn(
        "php-cgi",
        Command::new("php-cgi")
            .arg("-b")
            .arg(&socket)
            .env("PHP_FCGI_CHILDREN", children.to_string())
            .env("PHP_FCGI_MAX_REQUESTS", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr),
    );
    let root = process.pid();
    let limit = Duration::from_secs(20);
    wait_for("php-cgi's socket", limit, &log, || {
        UnixStream::connect(&socket).is_ok()
    });
    let workers = Workers {
        parent: root,
        comm: "php-cgi".into(),
    };
    wait_for("php-cgi's children", limit, &log, || {
        workers.pids().len() >= children as usize
    });
    // The socket is created by php-cgi as root: let Apache's or nginx's workers reach it.
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666));
    Backend {
        socket,
        root,
        workers,
        guard: Box::new(process),
    }
}
