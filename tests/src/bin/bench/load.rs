//! Load generators: wrk for HTTP/1.1 (plain and TLS), h2load for HTTP/2, each run as a child process
//! bounded in time, its output kept as a raw file and parsed into a [`LoadResult`].

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::stats;

/// Which client drives the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// wrk, one thread, HTTP/1.1 keep-alive (http:// or https://).
    Wrk,
    /// h2load, one thread, one stream per connection at a time, HTTP/2 over TLS (ALPN).
    H2load,
    /// h2load over HTTP/1.1 (`--h1`), one request at a time per connection, each connection
    /// sending `per_connection` requests a second (`--rps`) however fast the answers come: a
    /// fixed offered load, so that stacks of different top speeds show their latency at the
    /// same one. Each connection keeps its own pace, so connections opened together send
    /// together: the requests arrive in bursts of up to one per connection.
    H1Paced { per_connection: u32 },
}

/// One load run: `connections` clients hitting `url` for `duration`.
#[derive(Debug, Clone)]
pub struct Load {
    pub url: String,
    pub connections: u32,
    pub duration: Duration,
    pub client: Client,
    /// The server's root processes, whose trees' CPU time the run measures (none: not measured).
    pub cpu_of: Vec<u32>,
}

impl Load {
    /// This load, measuring the CPU time of `server`'s processes per request.
    pub(crate) fn measuring_cpu_of(mut self, server: &crate::servers::Server) -> Load {
        self.cpu_of = server.roots.clone();
        self
    }
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    pub requests: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Failed requests: non-2xx/3xx answers, connect/read/write errors, timeouts.
    pub errors: u64,
    /// CPU time the server's processes spent per answered request, in µs (the load's `cpu_of`):
    /// its cost whatever share of the machine the load client and the neighbours took.
    pub cpu_us_per_request: Option<f64>,
    /// The part of it spent by the stack's front end (nginx, or paddock's front-end process),
    /// where it has one apart from its application server.
    pub front_cpu_us_per_request: Option<f64>,
}

impl LoadResult {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "requests": self.requests,
            "rps": self.rps,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "errors": self.errors,
            "cpu_us_per_request": self.cpu_us_per_request,
            "front_cpu_us_per_request": self.front_cpu_us_per_request,
        })
    }
}

/// A request that waits longer than this counts as an error (wrk's `--timeout`).
const REQUEST_TIMEOUT: &str = "5s";
/// Extra time a load client gets beyond its duration before it is killed.
const GRACE: Duration = Duration::from_secs(20);

impl Load {
    /// Runs the load, writing the client's output to `raw` (and h2load's per-request log next to
    /// it), and parses it.
    pub fn run(&self, raw: &Path) -> LoadResult {
        let seconds = self.duration.as_secs().max(1).to_string();
        let connections = self.connections.to_string();
        let request_log = raw.with_extension("requests.log");
        let mut command = match self.client {
            Client::Wrk => {
                let mut c = Command::new("wrk");
                c.args(["-t1", "-c", &connections, "-d"])
                    .arg(format!("{seconds}s"))
                    .args(["--latency", "--timeout", REQUEST_TIMEOUT, &self.url]);
                c
            }
            Client::H2load | Client::H1Paced { .. } => {
                let mut c = Command::new("h2load");
                if let Client::H1Paced { per_connection } = self.client {
                    c.arg("--h1").arg(format!("--rps={per_connection}"));
                }
                c.args(["-t1", "-m1", "-c", &connections, "-D", &seconds, "-T5"])
                    .arg(format!("--log-file={}", request_log.display()))
                    .arg(&self.url);
                c
            }
        };
        let output = run_bounded(&mut command, self.duration + GRACE);
        // A missing client would read as a server that answered nothing.
        assert!(
            !output.starts_with("cannot start"),
            "bench: {output}; tests/bench/run.sh installs the load clients (wrk, nghttp2-client)"
        );
        let header = format!(
            "# {:?} {} connections {}\n",
            self.client, connections, self.url
        );
        let _ = std::fs::write(raw, format!("{header}{output}"));
        match self.client {
            Client::Wrk => parse_wrk(&output),
            Client::H2load | Client::H1Paced { .. } => {
                let mut result = parse_h2load(&output);
                let log = std::fs::read_to_string(&request_log).unwrap_or_default();
                let (p50, p99) = h2load_percentiles(&log);
                result.p50_ms = p50;
                result.p99_ms = p99;
                // The per-request log is large; the summary above is what matters.
                let _ = std::fs::remove_file(&request_log);
                result
            }
        }
    }
}

/// Runs `command` to completion (killing it by pid after `limit`) and returns stdout + stderr.
pub(crate) fn run_bounded(command: &mut Command, limit: Duration) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let out_path = dir.path().join("out");
    let out = std::fs::File::create(&out_path).expect("output file");
    let err = out.try_clone().expect("clone output file");
    let mut child = match command.stdin(Stdio::null()).stdout(out).stderr(err).spawn() {
        Ok(child) => child,
        Err(e) => return format!("cannot start {command:?}: {e}"),
    };
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().ok().flatten().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::read_to_string(&out_path).unwrap_or_default()
}

/// `757.00us`, `1.06ms`, `2.00s`, `1.00m` → milliseconds.
fn duration_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        _ => return None,
    };
    Some(number * factor)
}

/// Numbers following `label` in `line`, e.g. `connect 0, read 3` → [0, 3].
fn numbers(line: &str) -> Vec<u64> {
    line.split(|c: char| !c.is_ascii_digit() && c != '.')
        .filter_map(|w| w.parse::<f64>().ok())
        .map(|n| n as u64)
        .collect()
}

pub(crate) fn parse_wrk(output: &str) -> LoadResult {
    let mut result = LoadResult {
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        ..LoadResult::default()
    };
    for line in output.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        let second = words.next().unwrap_or("");
        match first {
            "50%" => result.p50_ms = duration_ms(second).unwrap_or(f64::NAN),
            "99%" => result.p99_ms = duration_ms(second).unwrap_or(f64::NAN),
            "Requests/sec:" => result.rps = second.parse().unwrap_or(0.0),
            _ if line.contains(" requests in ") => {
                result.requests = first.parse().unwrap_or(0);
            }
            _ if line.starts_with("Socket errors:") || line.starts_with("Non-2xx or 3xx") => {
                result.errors += numbers(line.split(':').nth(1).unwrap_or(""))
                    .iter()
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    if result.requests == 0 {
        result.p50_ms = f64::NAN;
        result.p99_ms = f64::NAN;
    }
    result
}

pub(crate) fn parse_h2load(output: &str) -> LoadResult {
    let mut result = LoadResult::default();
    for line in output.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("finished in ") {
            // "finished in 10.00s, 35000.00 req/s, 40.00MB/s"
            result.rps = rest
                .split(',')
                .nth(1)
                .and_then(|s| s.trim().strip_suffix(" req/s"))
                .and_then(|s| s.parse().ok())
                .unwrap_or(0.0);
        } else if let Some(rest) = line.strip_prefix("requests: ") {
            // "requests: T total, S started, D done, OK succeeded, F failed, E errored, TO timeout"
            // `failed` includes the HTTP-level failures, `errored` and `timeout`.
            let n = numbers(rest);
            if n.len() >= 5 {
                result.requests = n[3];
                result.errors = n[4];
            }
        }
    }
    result
}

/// p50 and p99 in milliseconds from h2load's `--log-file` (start µs, status, duration µs).
fn h2load_percentiles(log: &str) -> (f64, f64) {
    let mut latencies: Vec<f64> = log
        .lines()
        .filter_map(|line| line.split('\t').nth(2)?.trim().parse::<f64>().ok())
        .map(|us| us / 1000.0)
        .collect();
    let p50 = stats::quantile(&mut latencies, 0.50);
    let p99 = stats::quantile(&mut latencies, 0.99);
    (p50, p99)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK: &str = "Running 3s test @ http://127.0.0.1:8080/hello.php
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms  500.00us  10.00ms   90.00%
    Req/Sec    15.00k     1.00k   16.00k    80.00%
  Latency Distribution
     50%  757.00us
     75%    1.06ms
     90%    1.56ms
     99%    3.45ms
  45000 requests in 3.00s, 7.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 5
  Non-2xx or 3xx responses: 7
Requests/sec:  15000.50
Transfer/sec:      2.33MB
";

    #[test]
    fn wrk_output_parses() {
        let r = parse_wrk(WRK);
        assert_eq!(r.requests, 45000);
        assert_eq!(r.rps, 15000.5);
        assert!((r.p50_ms - 0.757).abs() < 1e-9);
        assert_eq!(r.p99_ms, 3.45);
        assert_eq!(r.errors, 14);
    }

    #[test]
    fn h2load_output_parses() {
        let out = "finished in 3.00s, 30000.25 req/s, 40.00MB/s
requests: 90001 total, 90065 started, 90001 done, 89990 succeeded, 11 failed, 3 errored, 1 timeout
status codes: 89990 2xx, 0 3xx, 8 4xx, 0 5xx";
        let r = parse_h2load(out);
        assert_eq!(r.rps, 30000.25);
        assert_eq!(r.requests, 89990);
        assert_eq!(r.errors, 11);
        let (p50, p99) = h2load_percentiles("1\t200\t1000\n2\t200\t3000\n3\t200\t2000\n");
        assert_eq!((p50, p99), (2.0, 3.0));
    }
}
