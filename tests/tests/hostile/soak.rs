//! The soak run (long tier, `#[ignore]`d): mixed static, PHP and HTTP/2 load for
//! `PADDOCK_SOAK_SECONDS` (default 600) with a worker killed every 3 seconds and a configuration
//! reload every minute. Checks: no paddock process crashes (the master and front-end pids stay
//! the same), zero 5xx (every request is idempotent, so a killed worker's request is retried),
//! every reload applied, the front end's RSS flat (the slope is reported) and its descriptors
//! back to the idle count once the load stops.
//!
//! `PADDOCK_SOAK_SECONDS=600 cargo test -p paddock-tests --test hostile_soak -- --ignored --nocapture`
//! (scripts/long-tier.sh runs it).

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::client::load;
use harness::hostile::{frontend_pid, require_command, rss_kib};
use harness::{listeners_h2c, open_fds, php_site, require_php_cgi, test_site, Paddock};

const WORKERS: u32 = 4;

fn config() -> String {
    format!(
        "{}\n{}",
        listeners_h2c(),
        php_site(&test_site(), WORKERS, "")
    )
}

/// h2load does not retry the streams a GOAWAY refuses (RFC 9113 §6.8 says they may be retried,
/// since they never ran) and counts them as errors; so that every counted error is a real one,
/// connections are not closed at the request limit, and reloads change it around this value.
fn request_limit_section(reloads: usize) -> String {
    format!(
        "[limits]\nmax_requests_per_connection = {}\n",
        1_000_000 + reloads
    )
}

/// Least-squares slope of `points` (seconds, value) per minute.
fn slope_per_minute(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(sx, sy), &(x, y)| (sx + x, sy + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), &(x, y)| {
        (num + (x - mx) * (y - my), den + (x - mx) * (x - mx))
    });
    if den == 0.0 {
        0.0
    } else {
        num / den * 60.0
    }
}

/// One h2load burst of `seconds`; (succeeded, 5xx, failed+errored).
fn h2load(addr: std::net::SocketAddr, seconds: u64) -> (u64, u64, u64) {
    let output = Command::new("h2load")
        .args(["-D", &seconds.to_string(), "-c", "4", "-m", "8"])
        .arg(format!("http://{addr}/sleep.php?ms=1"))
        .arg(format!("http://{addr}/static/hello.txt"))
        .output()
        .expect("h2load");
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |line: &str, label: &str| -> u64 {
        line.split(',')
            .find(|part| part.trim().ends_with(label))
            .and_then(|part| part.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let requests = text
        .lines()
        .find(|l| l.starts_with("requests:"))
        .unwrap_or("");
    let codes = text
        .lines()
        .find(|l| l.starts_with("status codes:"))
        .unwrap_or("");
    eprintln!("h2load burst: {requests} | {codes}");
    (
        field(requests, "succeeded"),
        field(codes, "5xx"),
        field(requests, "failed") + field(requests, "errored"),
    )
}

#[test]
#[ignore = "long tier: PADDOCK_SOAK_SECONDS (default 600) of mixed load with kills and reloads"]
fn soak_mixed_load_with_kills_and_reloads() {
    require_php_cgi();
    require_command("h2load", "nghttp2-client");
    let seconds: u64 = std::env::var("PADDOCK_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let paddock = Paddock::start_with(&format!("{}\n{}", config(), request_limit_section(0)), true);
    let master = paddock.pid();
    let frontend = frontend_pid(&paddock);
    let idle_fds = open_fds(frontend);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let stop = Arc::new(AtomicBool::new(false));

    // A worker killed every 3 s.
    let killer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut kills = 0;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(3));
                let workers: Vec<u32> = harness::children_of(master)
                    .into_iter()
                    .filter(|(_, name)| name == "php-cgi")
                    .map(|(pid, _)| pid)
                    .collect();
                if let Some(&pid) = workers.get(kills % workers.len().max(1)) {
                    harness::signal(pid, "KILL");
                    kills += 1;
                }
            }
            kills
        })
    };
    // HTTP/2 bursts of 10 s.
    let h2 = {
        let stop = stop.clone();
        let addr = paddock.http;
        std::thread::spawn(move || {
            let mut totals = (0, 0, 0);
            while !stop.load(Ordering::Relaxed) {
                let (ok, errors_5xx, failed) = h2load(addr, 10);
                totals = (totals.0 + ok, totals.1 + errors_5xx, totals.2 + failed);
            }
            totals
        })
    };
    // HTTP/1.1: 8 keep-alive clients on static files and PHP, in slices between samples.
    let mut samples: Vec<(f64, f64, f64)> = Vec::new();
    let (mut ok, mut failures) = (0, Vec::new());
    let mut last_reload = Instant::now();
    let config_path = paddock.dir.path().join("paddock.toml");
    let original = std::fs::read_to_string(&config_path)
        .expect("the harness's config file")
        .replace(&request_limit_section(0), "");
    let mut reloads = 0;
    while Instant::now() < deadline {
        let report = load(
            paddock.http,
            8,
            Duration::from_secs(5),
            |client, n| {
                let path = match (client + n as usize) % 3 {
                    0 => "/static/hello.txt".to_string(),
                    1 => "/sleep.php?ms=2".to_string(),
                    _ => format!("/echo.php?n={n}"),
                };
                ("GET".into(), path, Vec::new())
            },
            |r| r.status == 200,
        );
        ok += report.ok;
        failures.extend(report.failures);
        if last_reload.elapsed() >= Duration::from_secs(60) {
            // A real change each time (the per-connection request limit), then SIGHUP.
            reloads += 1;
            std::fs::write(
                &config_path,
                format!("{original}\n{}", request_limit_section(reloads)),
            )
            .unwrap();
            harness::signal(master, "HUP");
            last_reload = Instant::now();
        }
        samples.push((
            started.elapsed().as_secs_f64(),
            rss_kib(frontend) as f64,
            open_fds(frontend) as f64,
        ));
        assert!(harness::process_alive(master), "the master died");
        assert_eq!(frontend_pid(&paddock), frontend, "the front end restarted");
    }
    stop.store(true, Ordering::Relaxed);
    let reloaded = harness::observe::value(
        &harness::observe::scrape(paddock.admin),
        "paddock_config_reloads_total",
        &[("result", "success")],
    );
    let kills = killer.join().unwrap();
    let (h2_ok, h2_5xx, h2_failed) = h2.join().unwrap();
    let rss: Vec<(f64, f64)> = samples.iter().map(|&(t, r, _)| (t, r)).collect();
    let fds: Vec<(f64, f64)> = samples.iter().map(|&(t, _, f)| (t, f)).collect();
    // The first minute warms caches and pools up; the slope is taken after it when there is one.
    let settled = |points: &[(f64, f64)]| -> Vec<(f64, f64)> {
        let after: Vec<_> = points.iter().copied().filter(|&(t, _)| t > 60.0).collect();
        if after.len() >= 3 {
            after
        } else {
            points.to_vec()
        }
    };
    eprintln!(
        "soak {seconds} s: HTTP/1.1 {ok} ok, {} failed; HTTP/2 {h2_ok} ok, {h2_5xx} 5xx, {h2_failed} \
         failed; {kills} kills, {reloads} reloads; front end RSS {:.0} → {:.0} KiB (slope {:.1} \
         KiB/min), fds {:.0} → {:.0} (slope {:.2}/min)",
        failures.len(),
        rss.first().map_or(0.0, |p| p.1),
        rss.last().map_or(0.0, |p| p.1),
        slope_per_minute(&settled(&rss)),
        fds.first().map_or(0.0, |p| p.1),
        fds.last().map_or(0.0, |p| p.1),
        slope_per_minute(&settled(&fds)),
    );
    assert!(
        failures.is_empty(),
        "{} HTTP/1.1 failures, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(h2_5xx, 0, "HTTP/2 5xx");
    assert_eq!(h2_failed, 0, "HTTP/2 failed requests");
    assert!(kills >= seconds as usize / 4, "only {kills} kills");
    assert_eq!(reloaded, reloads as f64, "every reload applied");
    // No descriptor leak: idle again, the front end holds what it held idle before the load
    // (samples under load also count client connections, so they only give the reported slope).
    // Allowed on top: one FastCGI connection per worker slot (kept open between requests).
    let allowed_fds = idle_fds + WORKERS as usize + 2;
    let settle = Instant::now() + Duration::from_secs(10);
    while open_fds(frontend) > allowed_fds && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(200));
    }
    let fd_targets: Vec<String> = std::fs::read_dir(format!("/proc/{frontend}/fd"))
        .map(|dir| {
            dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .map(|t| t.display().to_string())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        fd_targets.len() <= allowed_fds,
        "{} descriptors open after the load ({idle_fds} before it): {fd_targets:?}",
        fd_targets.len()
    );
    // Flat memory: over a long run, less than 1 MiB a minute of growth once warmed up; over a
    // short one, less than 16 MiB in all.
    if seconds >= 300 {
        assert!(slope_per_minute(&settled(&rss)) < 1024.0, "RSS grows");
    } else {
        let (first, last) = (rss[0].1, rss[rss.len() - 1].1);
        assert!(last < first + 16.0 * 1024.0, "RSS {first} → {last} KiB");
    }
}
