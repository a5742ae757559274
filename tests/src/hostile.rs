//! Helpers for the hostile-client and hostile-worker tests (tests/tests/hostile/): the
//! request-marker log written by `tests/site/marklog.php`, the front end's memory, and a probe
//! client that keeps asking for a page while an attack runs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::client::Connection;
pub use crate::require_program as require_command;
use crate::Paddock;

/// One request as the worker saw it (a line of the marker log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub marker: String,
    pub method: String,
    pub body_len: usize,
    pub body_sha1: String,
}

impl Mark {
    pub fn new(marker: &str, method: &str, body: &[u8]) -> Mark {
        Mark {
            marker: marker.to_string(),
            method: method.to_string(),
            body_len: body.len(),
            body_sha1: sha1_smol::Sha1::from(body).digest().to_string(),
        }
    }
}

/// The file `marklog.php` appends to (the pool's `MARK_LOG`).
#[derive(Debug)]
pub struct MarkLog {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl MarkLog {
    pub fn new() -> MarkLog {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("marks.log");
        std::fs::write(&path, "").expect("create the marker log");
        MarkLog { path, _dir: dir }
    }

    /// The pool setting that points `marklog.php` at this log.
    pub fn pool_env(&self) -> String {
        format!("env = {{ MARK_LOG = \"{}\" }}", self.path.display())
    }

    /// Every request the workers saw so far, in order.
    pub fn marks(&self) -> Vec<Mark> {
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let mut fields = line.split(' ');
                Some(Mark {
                    marker: fields.next()?.to_string(),
                    method: fields.next()?.to_string(),
                    body_len: fields.next()?.parse().ok()?,
                    body_sha1: fields.next()?.to_string(),
                })
            })
            .collect()
    }

    /// The requests whose marker is `marker` or starts with `marker-`.
    pub fn marks_of(&self, marker: &str) -> Vec<Mark> {
        let prefix = format!("{marker}-");
        self.marks()
            .into_iter()
            .filter(|m| m.marker == marker || m.marker.starts_with(&prefix))
            .collect()
    }

    /// How many requests carried a marker starting with `prefix`.
    pub fn count_prefix(&self, prefix: &str) -> usize {
        self.marks()
            .iter()
            .filter(|m| m.marker.starts_with(prefix))
            .count()
    }
}

impl Default for MarkLog {
    fn default() -> Self {
        Self::new()
    }
}

/// The pid of the `paddock frontend` child of the master ([`Paddock::frontend_pid`]).
pub fn frontend_pid(paddock: &Paddock) -> u32 {
    paddock.frontend_pid()
}

/// Resident memory of a process in KiB (VmRSS).
pub fn rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmRSS:")
}

/// The peak resident memory of a process in KiB (VmHWM): catches a spike that was freed again.
pub fn peak_rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmHWM:")
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system) a process used so far, in clock ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields = crate::stat_fields_after_name(&stat);
    // After the command name: state is field 3 of stat, utime 14 and stime 15 (1-based).
    let utime: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0);
    let stime: u64 = fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
    utime + stime
}

/// What a probe saw: every request's latency, and the failures.
#[derive(Debug, Default)]
pub struct ProbeReport {
    pub latencies: Vec<Duration>,
    pub failures: Vec<String>,
}

impl ProbeReport {
    pub fn max(&self) -> Duration {
        self.latencies.iter().copied().max().unwrap_or_default()
    }

    pub fn median(&self) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        sorted.get(sorted.len() / 2).copied().unwrap_or_default()
    }
}

/// A well-behaved client asking for `path` every `every` on a fresh connection each time (so it
/// also has to get through accept), until stopped.
#[derive(Debug)]
pub struct Probe {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
    thread: JoinHandle<ProbeReport>,
}

impl Probe {
    pub fn start(addr: SocketAddr, path: &str, every: Duration) -> Probe {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let answered = Arc::new(AtomicUsize::new(0));
        let count = answered.clone();
        let path = path.to_string();
        let thread = std::thread::spawn(move || {
            let mut report = ProbeReport::default();
            while !flag.load(Ordering::Relaxed) {
                let started = Instant::now();
                let result = Connection::open(addr)
                    .and_then(|mut conn| conn.request("GET", &path, &[], b""));
                match result {
                    Ok(response) if response.status == 200 => {
                        report.latencies.push(started.elapsed());
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(response) => {
                        report
                            .failures
                            .push(format!("{} {}", response.status, response.text()))
                    }
                    Err(e) => report.failures.push(e.to_string()),
                }
                std::thread::sleep(every);
            }
            report
        });
        Probe {
            stop,
            answered,
            thread,
        }
    }

    /// How many requests have been answered 200 so far.
    pub fn answered(&self) -> usize {
        self.answered.load(Ordering::Relaxed)
    }

    /// Waits (up to [`crate::PATIENCE`]) until `more` further requests have been answered.
    pub fn wait_for_more(&self, more: usize) {
        let target = self.answered() + more;
        crate::wait_until("probe requests answered", || self.answered() >= target);
    }

    pub fn finish(self) -> ProbeReport {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("probe thread")
    }
}

/// Counts log lines containing `needle`.
pub fn count_log_lines(paddock: &Paddock, needle: &str) -> usize {
    paddock
        .log()
        .lines()
        .filter(|line| line.contains(needle))
        .count()
}

/// Path of a helper script in `tests/scripts`.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
}
