//! Slow clients with `slowhttptest` (Debian package): slowloris (slow headers), slow POST (slow
//! body) and slow read, each bounded to about 15 seconds, while a probe client asks for a PHP page
//! on fresh connections and the test samples `/status`: the service stays available, no request
//! holds a worker while its client dawdles (slow clients cost the front end a little memory,
//! never a worker), and the slow requests never reach a worker before they are complete.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use harness::hostile::{frontend_pid, peak_rss_kib, require_command, rss_kib, MarkLog, Probe};
use harness::observe::{scrape, value};
use harness::{php_site, require_php_cgi, test_site, Paddock};

const WORKERS: u64 = 2;
/// Length of each slowhttptest run.
const ATTACK_SECONDS: u64 = 15;
/// slowhttptest opens its connections (200 a second) and their requests run in this time.
const RAMP_SECONDS: f64 = 4.0;
/// Connections each run opens.
const CONNECTIONS: &str = "400";

fn start(marks: &MarkLog) -> Paddock {
    require_php_cgi();
    require_command("slowhttptest", "slowhttptest");
    // Short head and body deadlines, so that the run sees them cut slow clients off.
    Paddock::start(&format!(
        "[timeouts]\nrequest_header = \"5s\"\nrequest_body = \"5s\"\nsend = \"10s\"\n{}",
        php_site(&test_site(), WORKERS as u32, &marks.pool_env())
    ))
}

/// What the test saw while slowhttptest ran.
struct Observed {
    output: Output,
    /// `/status` samples taken after the first [`RAMP_SECONDS`] (while slowhttptest opens its
    /// connections, and their first requests run): how many, and how many had every slot idle.
    idle_samples: usize,
    samples: usize,
    /// (seconds since the start, open client connections on the public HTTP listener).
    open: Vec<(f64, f64)>,
}

impl Observed {
    fn most_open(&self) -> f64 {
        self.open.iter().map(|&(_, n)| n).fold(0.0, f64::max)
    }

    /// Connections open at the last sample.
    fn open_at_end(&self) -> f64 {
        self.open.last().map_or(f64::INFINITY, |&(_, n)| n)
    }
}

/// Runs slowhttptest with `args` (plus length and target) while a probe runs and `/status` is
/// sampled every 250 ms.
fn attack(paddock: &Paddock, mode_args: &[&str], path: &str) -> Observed {
    let url = format!("http://{}{path}", paddock.http);
    let length = ATTACK_SECONDS.to_string();
    let mut child = Command::new("slowhttptest")
        .args(mode_args)
        .args([
            "-c",
            CONNECTIONS,
            "-r",
            "200",
            "-p",
            "3",
            "-l",
            &length,
            "-u",
            &url,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run slowhttptest");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(ATTACK_SECONDS + 30);
    let (mut samples, mut idle_samples, mut open) = (0, 0, Vec::new());
    while child.try_wait().expect("try_wait").is_none() {
        assert!(Instant::now() < deadline, "slowhttptest did not stop");
        let status = paddock.status();
        let idle = status["pools"][0]["idle_slots"].as_u64().unwrap_or(0);
        if started.elapsed().as_secs_f64() > RAMP_SECONDS {
            samples += 1;
            if idle == WORKERS {
                idle_samples += 1;
            }
        }
        let metrics = scrape(paddock.admin);
        open.push((
            started.elapsed().as_secs_f64(),
            value(
                &metrics,
                "paddock_connections_open",
                &[("listener", "http")],
            ),
        ));
        std::thread::sleep(Duration::from_millis(250));
    }
    Observed {
        output: child.wait_with_output().expect("slowhttptest output"),
        idle_samples,
        samples,
        open,
    }
}

fn check(name: &str, paddock: &Paddock, run: impl FnOnce() -> Observed) -> Observed {
    let frontend = frontend_pid(paddock);
    let rss_before = rss_kib(frontend);
    let probe = Probe::start(paddock.http, "/sleep.php?ms=1", Duration::from_millis(200));
    let observed = run();
    let probe = probe.finish();
    let stdout = String::from_utf8_lossy(&observed.output.stdout);
    let summary: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("closed:") || l.contains("connected:") || l.contains("available"))
        .collect();
    eprintln!(
        "{name}: probe {} ok, {} failed, median {:?}, max {:?}; all slots idle in {}/{} samples; \
         open connections at most {}, at the end {:?}; front end RSS {rss_before} KiB, peak {} KiB; \
         slowhttptest last: {:?}",
        probe.latencies.len(),
        probe.failures.len(),
        probe.median(),
        probe.max(),
        observed.idle_samples,
        observed.samples,
        observed.most_open(),
        observed.open.last(),
        peak_rss_kib(frontend),
        summary.iter().rev().take(4).collect::<Vec<_>>()
    );
    assert!(
        probe.failures.is_empty(),
        "{name}: the probe failed: {:?}",
        probe.failures
    );
    assert!(
        probe.latencies.len() >= 20,
        "{name}: only {} probe requests in {ATTACK_SECONDS} s",
        probe.latencies.len()
    );
    assert!(
        observed.samples >= 5,
        "{name}: {} samples",
        observed.samples
    );
    // No request held a worker while its client dawdled: a slow client that did would hold it
    // for the whole send or body deadline (10 s, 5 s). Measured as the time each request held its
    // slot, not as idle samples: on a loaded machine the attack's own complete requests (400
    // of them at the start) keep the two workers legitimately busy for seconds.
    let metrics = scrape(paddock.admin);
    let held = |le: &str| {
        value(
            &metrics,
            "paddock_worker_duration_seconds_bucket",
            &[("pool", "php"), ("le", le)],
        )
    };
    let (quick, all) = (held("2.5"), held("+Inf"));
    assert!(all > 0.0, "{name}: no request ran on a worker");
    assert_eq!(
        quick,
        all,
        "{name}: {} requests held a worker 2.5 s or longer",
        all - quick
    );
    assert!(
        peak_rss_kib(frontend) < rss_before + 128 * 1024,
        "{name}: front end memory"
    );
    observed
}

#[test]
fn slowloris_costs_no_worker_and_is_cut_off_by_the_head_deadline() {
    let marks = MarkLog::new();
    let paddock = start(&marks);
    let observed = check("slowloris", &paddock, || {
        attack(
            &paddock,
            &["-H", "-i", "2", "-x", "24"],
            "/marklog.php?m=slowloris",
        )
    });
    // The attack held hundreds of connections, and the 5 s head deadline closed them all before
    // the run ended (slowhttptest stops early once every connection is gone).
    assert!(observed.most_open() >= 300.0, "{:?}", observed.open);
    assert!(
        observed.open_at_end() < 50.0,
        "slow heads were not cut off: {:?}",
        observed.open
    );
    // No slow head ever completed, so none reached a worker: the only requests that ran are
    // slowhttptest's own availability probes (one every few seconds).
    assert!(marks.count_prefix("slowloris") <= 8, "{:?}", marks.marks());
}

#[test]
fn slow_post_costs_no_worker() {
    let marks = MarkLog::new();
    let paddock = start(&marks);
    let before = value(
        &scrape(paddock.admin),
        "paddock_requests_total",
        &[("pool", "-"), ("status_class", "4xx")],
    );
    let observed = check("slow POST", &paddock, || {
        attack(
            &paddock,
            &["-B", "-i", "2", "-s", "65536", "-x", "10"],
            "/marklog.php?m=slowpost",
        )
    });
    assert!(observed.most_open() >= 300.0, "{:?}", observed.open);
    // Bodies trickled at a few bytes every 2 s never complete: each is answered 408 by the front
    // end at the body deadline, without a pool ...
    let refused = value(
        &scrape(paddock.admin),
        "paddock_requests_total",
        &[("pool", "-"), ("status_class", "4xx")],
    ) - before;
    assert!(refused >= 300.0, "only {refused} slow bodies refused");
    // ... and never reach a worker (the runs are slowhttptest's own GET probes, bodiless).
    assert!(
        marks.marks().iter().all(|m| m.method == "GET"),
        "{:?}",
        marks.marks()
    );
}

#[test]
fn slow_read_costs_no_worker() {
    let marks = MarkLog::new();
    let paddock = start(&marks);
    let observed = check("slow read", &paddock, || {
        attack(
            &paddock,
            &[
                "-X", "-w", "8", "-y", "64", "-n", "2", "-z", "16", "-k", "1",
            ],
            "/bigtext.php?kb=64",
        )
    });
    // Hundreds of readers with 64 KiB answers they take bytes of at a time, held by the front end.
    assert!(observed.most_open() >= 300.0, "{:?}", observed.open);
}
