//! `bench`: paddock side by side with nginx + php-fpm, nginx + php-cgi and Apache (and, for a
//! Flask app, nginx + gunicorn and nginx + uWSGI), in the same run on the same machine. `tests/bench/run.sh [--quick] [scenario…]` builds everything and runs
//! it; docs/benchmarks.md explains the scenarios and keeps the latest tables.
//!
//! Layout: `scenarios/` has one file per scenario; `servers/` starts each server with its own
//! generated config in a temp dir (reusing the tests' peers helpers) and stops it by pid on drop;
//! `load.rs` runs wrk and h2load bounded in time; `holder.rs` holds thousands of idle and stalled
//! connections; `procs.rs` reads /proc; `report.rs` prints and saves the tables.

mod certs;
mod holder;
mod load;
mod machine;
mod procs;
mod report;
mod scenarios;
mod servers;
mod stats;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use load::{Client, Load, LoadResult};
use report::Report;
use servers::Shared;

const USAGE: &str = "usage: bench [--quick] [--runs N] [--duration SECONDS] [--out DIR] [scenario…]
scenarios: static large php keepalive memory burst step kills rules builtin builtin-app wsgi (or 1-9, 8b; 5 = burst + step); default all
large: 1 MiB and 100 MiB static files (1b); builtin-burst, wsgi-burst: only the cold burst of builtin (8) or of wsgi (9c);
builtin-app (8b): MediaWiki on builtin php, php-cgi and php-fpm, and a recycled worker's first request";

/// Everything a scenario needs: the shared site and certificate, run settings, the report.
#[derive(Debug)]
pub struct Bench {
    pub shared: Shared,
    pub runs: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub quick: bool,
    pub report: Report,
    interrupted: Arc<AtomicBool>,
    _work: tempfile::TempDir,
}

impl Bench {
    /// Runs one load and keeps its raw output under `raw/<scenario>/<label>.txt`.
    pub fn run_load(&self, scenario: &str, label: &str, load: &Load) -> LoadResult {
        self.check_interrupted();
        let raw = self.report.raw_path(scenario, label);
        let front = procs::front_end_pids(&load.cpu_of);
        let cpu_before = procs::trees_cpu_seconds(&load.cpu_of);
        let front_before = procs::pids_cpu_seconds(&front);
        let mut result = load.run(&raw);
        if !load.cpu_of.is_empty() && result.requests > 0 {
            let per_request = |seconds: f64| seconds * 1e6 / result.requests as f64;
            let cpu = procs::trees_cpu_seconds(&load.cpu_of) - cpu_before;
            result.cpu_us_per_request = Some(per_request(cpu));
            if !front.is_empty() {
                let front_cpu = procs::pids_cpu_seconds(&front) - front_before;
                result.front_cpu_us_per_request = Some(per_request(front_cpu));
            }
        }
        eprintln!(
            "bench: {scenario} {label}: {} req/s, p50 {} ms, p99 {} ms, {} errors{}",
            report::rps(result.rps),
            report::ms(result.p50_ms),
            report::ms(result.p99_ms),
            result.errors,
            result
                .cpu_us_per_request
                .map(|us| format!(", {us:.0} µs CPU a request"))
                .unwrap_or_default()
                + &result
                    .front_cpu_us_per_request
                    .map(|us| format!(" ({us:.0} in the front end)"))
                    .unwrap_or_default()
        );
        result
    }

    /// A load of `connections` for the run duration.
    pub fn load(&self, url: String, connections: u32, client: Client) -> Load {
        Load {
            url,
            connections,
            duration: self.duration,
            client,
            cpu_of: Vec::new(),
        }
    }

    /// A short unmeasured run, so caches, opcache and connection pools are warm; before it, one
    /// request checks that the server answers 200 with the page's real output (not, say, the PHP
    /// source), so a misconfigured peer cannot post a flattering number.
    pub fn warm_up(&self, scenario: &str, label: &str, load: &Load) {
        check_answer(
            &load.url,
            &self.report.raw_path(scenario, &format!("{label}-check")),
        );
        let warm = Load {
            duration: self.warmup,
            ..load.clone()
        };
        self.run_load(scenario, &format!("{label}-warmup"), &warm);
    }

    /// Unwinds (stopping every server by pid on the way) once SIGINT or SIGTERM arrived.
    pub fn check_interrupted(&self) {
        if self.interrupted.load(Ordering::Relaxed) {
            panic!("interrupted");
        }
    }
}

/// Fetches `url` once with curl and panics unless it is a 200 with a plausible body.
fn check_answer(url: &str, raw: &Path) {
    let output = load::run_bounded(
        std::process::Command::new("curl")
            .args(["-sS", "-k", "-i", "--max-time", "10"])
            .arg(url),
        Duration::from_secs(15),
    );
    let _ = std::fs::write(raw, &output);
    let status_ok = output.starts_with("HTTP/1.1 200") || output.starts_with("HTTP/2 200");
    let body = output.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    assert!(
        status_ok && !body.contains("<?php") && !body.is_empty(),
        "{url} did not answer as expected:\n{output}"
    );
}

#[derive(Debug)]
struct Options {
    scenarios: Vec<&'static str>,
    runs: usize,
    duration: Duration,
    quick: bool,
    out: Option<PathBuf>,
}

const ALL: [&str; 12] = [
    "static",
    "large",
    "php",
    "keepalive",
    "memory",
    "burst",
    "step",
    "kills",
    "rules",
    "builtin",
    "builtin-app",
    "wsgi",
];

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        scenarios: Vec::new(),
        runs: 3,
        duration: Duration::from_secs(10),
        quick: false,
        out: None,
    };
    let mut duration = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--runs" => {
                options.runs = value("--runs")?
                    .parse()
                    .map_err(|_| "--runs: not a number")?;
            }
            "--duration" => {
                let secs: u64 = value("--duration")?
                    .parse()
                    .map_err(|_| "--duration: not a number of seconds")?;
                duration = Some(Duration::from_secs(secs));
            }
            "--out" => options.out = Some(value("--out")?.into()),
            "-h" | "--help" => return Err(USAGE.into()),
            "all" => options.scenarios.extend(ALL),
            "1" => options.scenarios.push("static"),
            "2" => options.scenarios.push("php"),
            "3" => options.scenarios.push("keepalive"),
            "4" => options.scenarios.push("memory"),
            "5" => options.scenarios.extend(["burst", "step"]),
            "6" => options.scenarios.push("kills"),
            "7" => options.scenarios.push("rules"),
            "8" => options.scenarios.push("builtin"),
            "9" => options.scenarios.push("wsgi"),
            "wsgi-burst" => options.scenarios.push("wsgi-burst"),
            "builtin-burst" => options.scenarios.push("builtin-burst"),
            "8b" => options.scenarios.push("builtin-app"),
            name => match ALL.iter().find(|s| **s == name) {
                Some(s) => options.scenarios.push(s),
                None => return Err(format!("unknown scenario or option `{name}`\n{USAGE}")),
            },
        }
    }
    if options.scenarios.is_empty() {
        options.scenarios.extend(ALL);
    }
    options.scenarios.dedup();
    options.duration = duration.unwrap_or(if options.quick {
        Duration::from_secs(3)
    } else {
        Duration::from_secs(10)
    });
    if options.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    Ok(options)
}

/// The paddock binary: `$PADDOCK_BIN`, or the one built next to this benchmark.
fn paddock_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("PADDOCK_BIN") {
        return path.into();
    }
    let exe = std::env::current_exe().expect("own path");
    let bin = exe.with_file_name("paddock");
    assert!(
        bin.exists(),
        "{} not found: build it with `cargo build --release` (tests/bench/run.sh does)",
        bin.display()
    );
    bin
}

/// `20260102T030405Z` for now.
fn timestamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Days since 1970-01-01 → civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Raises the open-file limit (children inherit it): 10,000 held connections need it.
fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let wanted = 65_536;
    if setrlimit(Resource::RLIMIT_NOFILE, wanted, wanted).is_ok() {
        return wanted;
    }
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((1024, 1024));
    let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    hard
}

fn main() {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, interrupted.clone()).expect("signal handler");
    }
    let fd_limit = raise_fd_limit();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is inside the repository");
    let out = options
        .out
        .clone()
        .unwrap_or_else(|| repo.join("target/bench").join(timestamp()));
    let paddock_bin = paddock_bin();
    let machine = machine::describe(&paddock_bin);
    let header = format!(
        "# paddock benchmark {}\n\nScenarios: {}. {} run(s) of {} s each (medians), wrk/h2load \
         with one thread, loopback only. Open-file limit {fd_limit}.\n\n{machine}",
        timestamp(),
        options.scenarios.join(", "),
        options.runs,
        options.duration.as_secs(),
    );
    let _ = std::fs::create_dir_all(&out);
    let work = tempfile::Builder::new()
        .prefix("paddock-bench-")
        .tempdir()
        .expect("temp dir");
    let certs = certs::Certs::generate(work.path());
    let mut bench = Bench {
        shared: Shared {
            site: Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("bench/site")
                .canonicalize()
                .expect("tests/bench/site"),
            certs,
            paddock_bin,
        },
        runs: options.runs,
        duration: options.duration,
        warmup: if options.quick {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(2)
        },
        quick: options.quick,
        report: Report::new(&out, &header),
        interrupted,
        _work: work,
    };
    println!("{header}");
    eprintln!("bench: results go to {}", out.display());
    for scenario in &options.scenarios {
        bench.check_interrupted();
        match *scenario {
            "static" => scenarios::static_files::run(&mut bench),
            "large" => scenarios::static_large::run(&mut bench),
            "php" => scenarios::php::run(&mut bench),
            "keepalive" => scenarios::keepalive::run(&mut bench),
            "memory" => scenarios::idle_memory::run(&mut bench),
            "burst" => scenarios::burst::run(&mut bench),
            "step" => scenarios::step::run(&mut bench),
            "kills" => scenarios::kills::run(&mut bench),
            "rules" => scenarios::rules::run(&mut bench),
            "builtin" => scenarios::builtin::run(&mut bench),
            "wsgi" => scenarios::wsgi::run(&mut bench),
            "wsgi-burst" => scenarios::wsgi_burst::run(&mut bench),
            "builtin-burst" => scenarios::builtin::run_burst(&mut bench),
            "builtin-app" => scenarios::builtin_app::run(&mut bench),
            other => unreachable!("scenario {other}"),
        }
    }
    eprintln!(
        "bench: done; load average now {}; results in {}",
        machine::load_average(),
        bench.report.dir().display()
    );
}
