//! The shipped monitoring assets against the real tools: promtool checks the scrape config and
//! the rules and runs their unit tests; a real Prometheus server, configured from the shipped
//! scrape config, scrapes a paddock under load; and the dashboard and alerts only use metrics
//! that a live paddock exports.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use harness::observe::{families, require_program, scrape, wait_for};
use harness::{deploy, http_get, php_site, require_php_cgi, test_site, Paddock, PATIENCE};

fn promtool(args: &[&str], dir: &Path) {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    assert!(
        output.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn promtool_accepts_the_shipped_config_and_rules_and_their_unit_tests_pass() {
    require_program("promtool", "prometheus");
    let dir = deploy("prometheus");
    promtool(&["check", "config", "prometheus.yml"], &dir);
    promtool(&["check", "rules", "alerts.yml"], &dir);
    promtool(&["test", "rules", "alerts_test.yml"], &dir);
}

/// `paddock_…` metric names in `text` (recording rules `paddock:…` are not metric names).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("paddock_") {
        let preceded_by_word = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !preceded_by_word {
            names.insert(name.clone());
        }
        rest = &rest[at + name.len()..];
    }
    names
}

/// The family a sample name belongs to (`x_bucket` → `x` for histograms).
fn family_of(name: &str, families: &[String]) -> Option<String> {
    if families.iter().any(|f| f == name) {
        return Some(name.to_string());
    }
    ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
        let base = name.strip_suffix(suffix)?;
        families.iter().any(|f| f == base).then(|| base.to_string())
    })
}

#[test]
fn the_dashboard_and_the_alerts_use_only_exported_metrics_and_the_dashboard_shows_them_all() {
    require_php_cgi();
    let paddock = Paddock::start(&php_site(&test_site(), 1, ""));
    // One request, so that the request counter has a series (its labels are only known then).
    let output = paddock.curl(&[&paddock.url("/sleep.php")]);
    assert!(output.status.success());
    let exported = families(&scrape(paddock.admin));

    let dashboard_text = std::fs::read_to_string(deploy("grafana/paddock.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard_text).expect("valid JSON");
    assert_eq!(dashboard["title"], "paddock");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut exprs = String::new();
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let targets = panel["targets"]
            .as_array()
            .expect("every panel has targets");
        assert!(!targets.is_empty(), "panel {} has no query", panel["title"]);
        for target in targets {
            let expr = target["expr"].as_str().expect("a PromQL expression");
            exprs.push_str(expr);
            exprs.push('\n');
        }
    }
    let used_by_dashboard: BTreeSet<String> = metric_names(&exprs)
        .iter()
        .map(|name| {
            family_of(name, &exported).unwrap_or_else(|| {
                panic!("the dashboard queries {name}, which paddock does not export")
            })
        })
        .collect();
    for family in &exported {
        assert!(
            used_by_dashboard.contains(family),
            "the dashboard does not show {family}"
        );
    }

    let alerts = std::fs::read_to_string(deploy("prometheus/alerts.yml")).unwrap();
    let used_by_alerts = metric_names(&alerts);
    assert!(used_by_alerts.len() >= 8, "{used_by_alerts:?}");
    for name in used_by_alerts {
        assert!(
            family_of(&name, &exported).is_some(),
            "alerts.yml uses {name}, which paddock does not export"
        );
    }
}

/// A Prometheus server started for one test, stopped (by pid) when dropped.
struct Prometheus {
    child: Child,
    address: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shipped scrape config with the target replaced by `admin` and a 1 s interval.
fn scrape_config_for(admin: SocketAddr) -> String {
    let shipped = std::fs::read_to_string(deploy("prometheus/prometheus.yml")).unwrap();
    let mut config = shipped.clone();
    for (from, to) in [
        ("127.0.0.1:9180", admin.to_string()),
        // Every 2 s, each scrape allowed 2 s: on a loaded machine an answer within 1 s is not
        // a given, and a scrape that times out leaves no sample at all.
        ("scrape_interval: 15s", "scrape_interval: 2s".to_string()),
        (
            "evaluation_interval: 15s",
            "evaluation_interval: 1s".to_string(),
        ),
        ("scrape_timeout: 5s", "scrape_timeout: 2s".to_string()),
    ] {
        assert!(
            config.contains(from),
            "the shipped prometheus.yml no longer has `{from}`"
        );
        config = config.replace(from, &to);
    }
    config
}

fn start_prometheus(admin: SocketAddr) -> Prometheus {
    require_program("prometheus", "prometheus");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("prometheus.yml"), scrape_config_for(admin)).unwrap();
    std::fs::copy(
        deploy("prometheus/alerts.yml"),
        dir.path().join("alerts.yml"),
    )
    .unwrap();
    let address = SocketAddr::from(([127, 0, 0, 1], harness::peers::loopback_port()));
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let child = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={address}"))
        .arg("--log.level=warn")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start prometheus");
    let prometheus = Prometheus {
        child,
        address,
        _dir: dir,
    };
    wait_for(PATIENCE, "Prometheus to be ready", || {
        let ready = Command::new("curl")
            .args(["-sf", "--max-time", "2"])
            .arg(format!("http://{address}/-/ready"))
            .output()
            .is_ok_and(|o| o.status.success());
        ready.then_some(())
    });
    prometheus
}

impl Prometheus {
    /// The values of an instant query, as (labels, value) pairs.
    fn query(&self, promql: &str) -> Vec<(serde_json::Value, f64)> {
        let output = Command::new("curl")
            .args(["-sS", "--max-time", "10", "-G", "--data-urlencode"])
            .arg(format!("query={promql}"))
            .arg(format!("http://{}/api/v1/query", self.address))
            .output()
            .expect("run curl");
        let body: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!("{promql}: {e}: {}", String::from_utf8_lossy(&output.stdout))
        });
        assert_eq!(body["status"], "success", "{promql}: {body}");
        body["data"]["result"]
            .as_array()
            .expect("a vector result")
            .iter()
            .map(|r| {
                let value = r["value"][1].as_str().expect("a sample").parse().unwrap();
                (r["metric"].clone(), value)
            })
            .collect()
    }

    /// The single value of `promql`, or `None` if the result is empty.
    fn scalar(&self, promql: &str) -> Option<f64> {
        let result = self.query(promql);
        assert!(result.len() <= 1, "{promql}: {result:?}");
        result.first().map(|(_, v)| *v)
    }
}

/// Clients requesting `path` from `clients` threads until `stop` is set: the count of answers
/// that were 200, and the thread that ends once every client has. In-process clients, not a
/// `curl` per request: on a loaded machine a process start per request took long enough that
/// the clients left the pool's queue empty most of the time.
fn load_until(
    http: SocketAddr,
    path: &str,
    clients: usize,
    stop: &Arc<AtomicBool>,
) -> (Arc<AtomicU32>, thread::JoinHandle<()>) {
    let ok = Arc::new(AtomicU32::new(0));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (ok, stop) = (ok.clone(), stop.clone());
            let path = path.to_string();
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let answer = http_get(http, &path);
                    if answer.is_some_and(|a| a.starts_with("HTTP/1.1 200")) {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let clients_done = thread::spawn(move || {
        for thread in threads {
            thread.join().unwrap();
        }
    });
    (ok, clients_done)
}

#[test]
fn a_real_prometheus_scrapes_paddock_under_load_and_sees_the_series_move() {
    require_php_cgi();
    let paddock = Paddock::start(&php_site(&test_site(), 2, ""));
    let prometheus = start_prometheus(paddock.admin);
    let job = r#"job="paddock""#;
    wait_for(PATIENCE, "the paddock target to be up", || {
        (prometheus.scalar(&format!("up{{{job}}}")) == Some(1.0)).then_some(())
    });
    let requests = format!(
        r#"sum(paddock_requests_total{{{job}, pool="php", status_class="2xx", method="GET"}})"#
    );
    assert_eq!(
        prometheus.scalar(&requests),
        None,
        "no request was sent yet"
    );
    assert_eq!(
        prometheus.scalar(&format!(r#"paddock_pool_slots{{{job}, pool="php"}}"#)),
        Some(2.0)
    );

    // Eight clients against two workers, 200 ms per request: the queue holds about six requests
    // all along, both slots stay busy; for at least four seconds, and until Prometheus has
    // scraped both slots busy and a request queued (however slow a loaded machine makes it).
    let php = format!(r#"{job}, pool="php""#);
    let stop = Arc::new(AtomicBool::new(false));
    let (answered, load) = load_until(paddock.http, "/sleep.php?ms=200", 8, &stop);
    let started = Instant::now();
    let mut seen = (None, None);
    let scraped = harness::wait::poll(PATIENCE, || {
        let busiest = prometheus.scalar(&format!(
            "max_over_time(paddock_pool_busy_slots{{{php}}}[5m])"
        ));
        let deepest =
            prometheus.scalar(&format!("max_over_time(paddock_queue_depth{{{php}}}[5m])"));
        seen = (busiest, deepest);
        (started.elapsed() >= Duration::from_secs(4)
            && busiest == Some(2.0)
            && deepest.is_some_and(|d| d >= 1.0))
        .then_some(())
    });
    if scraped.is_none() {
        stop.store(true, Ordering::Relaxed);
        let scrapes = prometheus.query(&format!("count_over_time(up{{{job}}}[5m])"));
        let up_now = prometheus.query(&format!("up{{{job}}}"));
        panic!(
            "Prometheus never saw both slots busy and a request queued: busiest {:?}, deepest \
             {:?}; {} answers so far; scrapes in the last 5 min {scrapes:?}, up now {up_now:?}",
            seen.0,
            seen.1,
            answered.load(Ordering::Relaxed)
        );
    }
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    let sent = answered.load(Ordering::Relaxed);
    assert!(sent >= 20, "only {sent} requests succeeded");

    wait_for(PATIENCE, "Prometheus to see every request", || {
        (prometheus.scalar(&requests) == Some(f64::from(sent))).then_some(())
    });
    assert_eq!(
        prometheus.scalar(&format!("sum(paddock_queue_wait_seconds_count{{{php}}})")),
        Some(f64::from(sent)),
        "every request was admitted once"
    );
    let busiest = prometheus
        .scalar(&format!(
            "max_over_time(paddock_pool_busy_slots{{{php}}}[5m])"
        ))
        .unwrap();
    assert_eq!(busiest, 2.0, "both slots were busy during the load");
    let deepest = prometheus
        .scalar(&format!("max_over_time(paddock_queue_depth{{{php}}}[5m])"))
        .unwrap();
    assert!(deepest >= 1.0, "the queue held requests during the load");
    let mean_wait = prometheus
        .scalar(&format!(
            "sum(paddock_queue_wait_seconds_sum{{{php}}}) / sum(paddock_queue_wait_seconds_count{{{php}}})"
        ))
        .unwrap();
    assert!(
        mean_wait > 0.02,
        "eight clients on two workers wait in the queue (mean {mean_wait} s)"
    );
    let worker_time = prometheus
        .scalar(&format!(
            "sum(paddock_worker_duration_seconds_sum{{{php}}}) / sum(paddock_worker_duration_seconds_count{{{php}}})"
        ))
        .unwrap();
    assert!(
        (0.2..5.0).contains(&worker_time),
        "sleep.php?ms=200 holds a worker at least 200 ms (mean {worker_time} s)"
    );
    eprintln!(
        "prometheus saw: {sent} requests, busiest {busiest} slots, deepest queue {deepest}, \
         mean queue wait {mean_wait:.3} s, mean worker time {worker_time:.3} s"
    );
    // After the load the gauges fall back.
    wait_for(PATIENCE, "the queue and slots to drain", || {
        let depth = prometheus.scalar(&format!("paddock_queue_depth{{{php}}}"));
        let busy = prometheus.scalar(&format!("paddock_pool_busy_slots{{{php}}}"));
        (depth == Some(0.0) && busy == Some(0.0)).then_some(())
    });
    // The shipped rules are loaded and evaluated against the live series.
    wait_for(PATIENCE, "the recording rule to be evaluated", || {
        prometheus
            .scalar(&format!(r#"paddock:pool_saturation:ratio{{{php}}}"#))
            .map(|_| ())
    });
    let build = prometheus.query("paddock_build_info");
    assert_eq!(build.len(), 1);
    assert_eq!(build[0].0["version"], env!("CARGO_PKG_VERSION"));
}
