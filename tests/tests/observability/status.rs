//! The admin listener's status page (JSON checked against the live processes, HTML rendered by a
//! real headless Chromium), the health probes, and worker log lines carrying the request id.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use harness::observe::{artifacts_dir, require_program, scrape, status, value, wait_for};
use harness::{
    header, http_get, php_site, require_php_cgi, split_response, test_site, Hold, Paddock,
    LISTENERS, PATIENCE,
};

const WAIT: Duration = PATIENCE;
/// Chromium can be slow to start on a loaded machine; this only bounds a hang.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(120);

fn start(workers: u32) -> Paddock {
    require_php_cgi();
    Paddock::start(&php_site(&test_site(), workers, ""))
}

/// Starts `curl -i url` in a thread; joins to (status, head, body).
fn request_in_background(url: String) -> thread::JoinHandle<(u16, String, String)> {
    thread::spawn(move || {
        let output = Command::new("curl")
            .args(["-sS", "-i", "--max-time", "30", &url])
            .output()
            .expect("run curl");
        split_response(&String::from_utf8_lossy(&output.stdout))
    })
}

/// The parent pid of `pid`, from /proc.
fn parent_of(pid: u64) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("a live process");
    // pid (comm) state ppid …; comm may hold spaces, so count from the closing parenthesis.
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    after.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Waits until exactly one worker of the first pool is busy; returns the status JSON.
fn wait_for_one_busy(paddock: &Paddock) -> serde_json::Value {
    wait_for(WAIT, "one busy worker", || {
        let status = status(paddock.admin);
        (status["pools"][0]["busy_slots"] == 1).then_some(status)
    })
}

#[test]
fn the_status_json_matches_the_live_pool_state() {
    let paddock = start(3);
    let slow = request_in_background(paddock.url("/sleep.php?ms=2500&token=s3cr3t"));
    let status = wait_for_one_busy(&paddock);
    let text = status.to_string();
    assert!(
        !text.contains("s3cr3t"),
        "query strings stay off the status page"
    );

    let pool = &status["pools"][0];
    assert_eq!(pool["name"], "php");
    assert_eq!(pool["workers"], 3);
    assert_eq!(pool["total_slots"], 3);
    assert_eq!(pool["idle_slots"], 2);
    assert_eq!(pool["waiting"], 0);
    assert_eq!(pool["ready"], true);
    assert_eq!(pool["failing"], serde_json::Value::Null);
    assert_eq!(pool["states"]["busy"], 1);
    let scoreboard = pool["scoreboard"].as_str().unwrap();
    assert_eq!(scoreboard.len(), 3);
    assert_eq!(scoreboard.matches('W').count(), 1, "{scoreboard}");

    let processes = pool["processes"].as_array().unwrap();
    assert_eq!(processes.len(), 3);
    for process in processes {
        let pid = process["pid"].as_u64().unwrap();
        assert_eq!(
            parent_of(pid),
            u64::from(paddock.pid()),
            "worker {pid} is a child of the master"
        );
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        assert_eq!(comm.trim(), "php-cgi");
        assert_eq!(process["slots"], 1);
    }
    let busy: Vec<_> = processes.iter().filter(|p| p["state"] == "busy").collect();
    assert_eq!(busy.len(), 1);
    let busy = busy[0];
    let current = &busy["current"][0];
    assert_eq!(current["method"], "GET");
    assert_eq!(current["path"], "/sleep.php");
    assert!(current["age_seconds"].as_f64().unwrap() > 0.0);
    let served_before = busy["requests_served"].as_u64().unwrap();

    let (code, head, body) = slow.join().unwrap();
    assert_eq!(code, 200);
    assert_eq!(
        body.trim(),
        format!("slept 2500 ms in pid {}", busy["pid"]),
        "the worker shown busy is the one that answered"
    );
    assert_eq!(
        header(&head, "x-request-id"),
        current["request_id"].as_str(),
        "the status page shows the request id the client got"
    );

    // The same document for `Accept: application/json`, now with the worker idle again.
    let output = Command::new("curl")
        .args(["-sS", "-H", "Accept: application/json"])
        .arg(format!("http://{}/status", paddock.admin))
        .output()
        .unwrap();
    let after: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let same = after["pools"][0]["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == busy["pid"])
        .expect("the same worker");
    assert_eq!(same["state"], "idle");
    assert_eq!(same["current"].as_array().unwrap().len(), 0);
    assert_eq!(same["requests_served"].as_u64(), Some(served_before + 1));
    assert_eq!(after["pools"][0]["busy_slots"], 0);
}

/// Runs chromium headless with `args` on `url`; its stdout, or a panic after the timeout.
fn chromium(profile: &Path, args: &[String], url: &str) -> String {
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .env("HOME", profile)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let deadline = Instant::now() + CHROMIUM_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium exited with {status}");
            return reader.join().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {CHROMIUM_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_status_page_renders_in_headless_chromium() {
    require_program("chromium", "chromium");
    let paddock = start(3);
    // Something to show: a crash in the recent exits, a busy worker with its request.
    let victim = status(paddock.admin)["pools"][0]["processes"][0]["pid"]
        .as_u64()
        .unwrap();
    harness::signal(victim as u32, "KILL");
    wait_for(WAIT, "the replacement worker", || {
        let status = status(paddock.admin);
        let pool = &status["pools"][0];
        (pool["last_exit_reason"] == "crash" && pool["total_slots"] == 3).then_some(())
    });
    // Held until the end, however long chromium takes.
    let hold = Hold::new();
    let slow = request_in_background(paddock.url(&hold.path()));
    let status = wait_for_one_busy(&paddock);
    let url = format!("http://{}/status", paddock.admin);
    let profile = tempfile::tempdir().unwrap();

    let dom = chromium(profile.path(), &["--dump-dom".to_string()], &url);
    assert!(dom.contains("Pool php"), "{dom}");
    assert!(
        dom.contains("GET /hold.php"),
        "the busy worker's request: {dom}"
    );
    for process in status["pools"][0]["processes"].as_array().unwrap() {
        assert!(
            dom.contains(&format!(">{}<", process["pid"])),
            "pid {} on the page",
            process["pid"]
        );
    }
    assert!(
        dom.contains(&format!(">{victim}<")),
        "the crashed worker in the exits"
    );
    assert!(dom.contains(">crash<"));

    let screenshot = artifacts_dir().join("status-page.png");
    let _ = std::fs::remove_file(&screenshot);
    chromium(
        profile.path(),
        &[
            format!("--screenshot={}", screenshot.display()),
            "--window-size=1200,900".to_string(),
        ],
        &url,
    );
    let png = std::fs::read(&screenshot).expect("the screenshot was written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG file");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (1200, 900));
    assert!(
        png.len() > 20_000,
        "a page with tables, not a blank one ({} bytes)",
        png.len()
    );
    eprintln!("status page screenshot: {}", screenshot.display());

    hold.release();
    assert_eq!(slow.join().unwrap().0, 200);
}

#[test]
fn healthz_and_readyz_follow_the_pools() {
    let paddock = start(1);
    let get = |addr, path| split_response(&http_get(addr, path).expect("admin answers"));
    let (code, _, body) = get(paddock.admin, "/healthz");
    assert_eq!((code, body.as_str()), (200, "ok\n"));
    let (code, _, body) = get(paddock.admin, "/readyz");
    assert_eq!((code, body.as_str()), (200, "ready\n"));

    // A pool whose command does not exist never becomes ready, and says why.
    let broken = Paddock::start_with(
        &format!(
            r#"{LISTENERS}
[sites.test]
root = "{root}"
[sites.test.scripts]
pool = "php"
[pools.php]
mode = "prefork"
command = ["/nonexistent/php-cgi"]
workers = 1
"#,
            root = test_site().display()
        ),
        false,
    );
    // Whether spawning fails or the workers die at once, the master reports the pool failing.
    let reason = wait_for(WAIT, "the failing pool to be reported", || {
        let status = status(broken.admin);
        status["pools"][0]["failing"].as_str().map(str::to_string)
    });
    let (code, _, body) = get(broken.admin, "/readyz");
    assert_eq!(code, 503);
    assert!(body.starts_with("not ready: php: "), "{body}");
    assert_eq!(get(broken.admin, "/healthz").0, 200, "alive but not ready");
    assert_eq!(status(broken.admin)["pools"][0]["ready"], false, "{reason}");
    // Requests get a fast 503, counted as a `failing` rejection; the pool is in crash-loop state.
    let output = broken.curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &broken.url("/sleep.php"),
    ]);
    assert_eq!(String::from_utf8_lossy(&output.stdout), "503");
    let text = scrape(broken.admin);
    let php = [("pool", "php")];
    assert_eq!(value(&text, "paddock_pool_failing", &php), 1.0);
    assert!(value(&text, "paddock_pool_crash_loops_total", &php) >= 1.0);
    let failing = [("pool", "php"), ("reason", "failing")];
    assert_eq!(
        value(&text, "paddock_queue_rejections_total", &failing),
        1.0
    );
}

#[test]
fn worker_stderr_lines_carry_pool_pid_and_request_id() {
    let paddock = start(1);
    let tag = format!("tag{}", std::process::id());
    let output = paddock.curl(&["-i", &paddock.url(&format!("/stderr.php?tag={tag}"))]);
    let (code, head, body) = split_response(&String::from_utf8_lossy(&output.stdout));
    assert_eq!(code, 200);
    let request_id = header(&head, "x-request-id")
        .expect("X-Request-Id")
        .to_string();
    let pid = body.trim().to_string();
    let line = wait_for(WAIT, "the worker's stderr line in the log", || {
        let log = paddock.log();
        log.lines()
            .find(|l| l.contains(&format!("marker {tag}")))
            .map(str::to_string)
    });
    assert!(line.contains(r#"pool="php""#), "{line}");
    assert!(line.contains(&format!("pid={pid}")), "{line}");
    assert!(
        line.contains(&format!(r#"request_id="{request_id}""#)),
        "{line}"
    );
}

/// The pools' last 15 minutes, as the status page's charts read them.
fn history(paddock: &Paddock) -> serde_json::Value {
    let body = harness::observe::get_ok(paddock.admin, "/status/history");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("history JSON: {e}\n{body}"))
}

/// The `points` of the first line of chart `kind` (`rps`, `latency`, `queue`, `busy`) in a DOM.
fn chart_points(dom: &str, kind: &str) -> String {
    let chart = dom
        .split(&format!("chart chart-{kind}\""))
        .nth(1)
        .unwrap_or_else(|| panic!("no {kind} chart in {dom}"));
    let points = chart.split("points=\"").nth(1).expect("a line");
    points[..points.find('"').unwrap()].to_string()
}

#[test]
fn the_status_page_charts_follow_the_load() {
    require_program("chromium", "chromium");
    let paddock = start(2);
    wait_for(WAIT, "a few seconds of samples", || {
        let samples = history(&paddock)["pools"]["php"].as_array()?.len();
        (samples >= 2).then_some(())
    });
    let url = format!("http://{}/status", paddock.admin);
    let profile = tempfile::tempdir().unwrap();
    let dump = [
        "--dump-dom".to_string(),
        "--virtual-time-budget=3000".to_string(),
    ];
    let idle = chromium(profile.path(), &dump, &url);
    assert!(idle.contains("data-pool=\"php\""), "{idle}");
    let idle_rps = chart_points(&idle, "rps");
    // Load, a few requests at a time, until a second with requests is in the history.
    wait_for(WAIT, "a sample with requests", || {
        for _ in 0..20 {
            http_get(paddock.http, "/echo.php?chart");
        }
        let samples = history(&paddock)["pools"]["php"].as_array()?.clone();
        let busy = samples.iter().find(|s| s["rps"].as_f64() >= Some(1.0))?;
        assert!(busy["p50_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{busy}");
        Some(())
    });
    let loaded = chromium(profile.path(), &dump, &url);
    let loaded_rps = chart_points(&loaded, "rps");
    assert_ne!(idle_rps, loaded_rps, "the requests chart moved");
    assert!(
        !loaded.contains("requests / s (max 0.0)"),
        "the chart's scale shows the requests"
    );
    for kind in ["latency", "queue", "busy"] {
        chart_points(&loaded, kind);
    }
    // As a phone shows it.
    let screenshot = artifacts_dir().join("status-charts-phone.png");
    let _ = std::fs::remove_file(&screenshot);
    chromium(
        profile.path(),
        &[
            format!("--screenshot={}", screenshot.display()),
            "--window-size=412,915".to_string(),
            "--virtual-time-budget=3000".to_string(),
        ],
        &url,
    );
    let png = std::fs::read(&screenshot).expect("the screenshot was written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG file");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert_eq!(width, 412);
    eprintln!("status charts screenshot: {}", screenshot.display());
}
