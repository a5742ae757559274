//! What requests cost, as paddock's own PHP worker reports it: CPU time and peak memory per
//! request in the metrics (histograms per pool), the last request's figures per worker on
//! `/status`, the CPU time a request running now has used so far, and the slow-request log
//! with the PHP stack of a request past `slowlog_timeout`.

use harness::observe::{scrape, value};
use harness::php_builtin::{php_builtin_site, require_libphp};
use harness::{test_site, Paddock, PATIENCE};
use serde_json::Value;

const CPU_SUM: &str = "paddock_worker_request_cpu_seconds_sum";
const CPU_COUNT: &str = "paddock_worker_request_cpu_seconds_count";
const MEMORY_SUM: &str = "paddock_worker_request_memory_peak_bytes_sum";

/// The `/status` line of the pool's only worker.
fn only_worker(paddock: &Paddock) -> Value {
    let status = paddock.status();
    let processes = &status["pools"][0]["processes"];
    assert_eq!(processes.as_array().map(Vec::len), Some(1), "{status}");
    processes[0].clone()
}

#[test]
fn each_request_reports_its_cpu_time_and_peak_memory() {
    if !require_libphp() {
        return;
    }
    let paddock = Paddock::start(&php_builtin_site(&test_site(), 1, ""));
    let pool = [("pool", "php")];
    // 200 ms of CPU by the script's own clock, holding 16 MiB.
    let status = paddock.curl_status(&[&paddock.url("/burn.php?ms=200&mib=16")]);
    assert_eq!(status, 200);
    let metrics = scrape(paddock.admin);
    assert_eq!(value(&metrics, CPU_COUNT, &pool), 1.0, "{metrics}");
    let cpu = value(&metrics, CPU_SUM, &pool);
    assert!((0.2..30.0).contains(&cpu), "CPU seconds: {cpu}");
    let memory = value(&metrics, MEMORY_SUM, &pool);
    assert!(
        (16.0 * 1048576.0..256.0 * 1048576.0).contains(&memory),
        "peak bytes: {memory}"
    );
    let last = &only_worker(&paddock)["last_request"];
    assert!(last["cpu_seconds"].as_f64().unwrap() >= 0.2, "{last}");
    assert!(
        last["peak_memory_bytes"].as_u64().unwrap() >= 16 << 20,
        "{last}"
    );

    // A light request after it: its own figures, not the first one's.
    assert_eq!(paddock.curl_status(&[&paddock.url("/burn.php?ms=0")]), 200);
    let last = &only_worker(&paddock)["last_request"];
    assert!(
        last["peak_memory_bytes"].as_u64().unwrap() < 16 << 20,
        "{last}"
    );
    let metrics = scrape(paddock.admin);
    assert_eq!(value(&metrics, CPU_COUNT, &pool), 2.0, "{metrics}");
}

#[test]
fn the_status_page_shows_the_cpu_time_a_running_request_has_used() {
    if !require_libphp() {
        return;
    }
    let paddock = Paddock::start(&php_builtin_site(&test_site(), 1, ""));
    // The worker's clock at the end of a request is where the next one's count starts.
    assert_eq!(paddock.curl_status(&[&paddock.url("/burn.php?ms=0")]), 200);
    let url = paddock.url("/burn.php?ms=3000");
    let busy = std::thread::scope(|scope| {
        let request = scope.spawn(|| paddock.curl_status(&[&url]));
        let mut seen = 0.0;
        paddock.wait_until(
            "the running request's CPU time on /status",
            PATIENCE,
            || {
                let worker = only_worker(&paddock);
                seen = worker["current"][0]["cpu_seconds"].as_f64().unwrap_or(0.0);
                seen >= 0.5 || request.is_finished()
            },
        );
        assert_eq!(request.join().unwrap(), 200);
        seen
    });
    assert!(
        busy >= 0.5,
        "the request ended before /status showed 0.5 s of CPU: {busy}"
    );
    let html = harness::observe::get_ok(paddock.admin, "/status");
    assert!(html.contains("last request"), "{html}");
    assert!(html.contains(" peak"), "{html}");
}

#[test]
fn a_request_past_slowlog_timeout_gets_its_php_stack_logged_with_its_request_id() {
    if !require_libphp() {
        return;
    }
    let paddock = Paddock::start(&php_builtin_site(
        &test_site(),
        1,
        "slowlog_timeout = \"300ms\"\nslowlog_trace_depth = 3",
    ));
    // Quick requests leave no trace.
    assert_eq!(paddock.curl_status(&[&paddock.url("/burn.php?ms=0")]), 200);
    // 1.5 s of CPU in a PHP loop: the trace is taken at the loop's next turn after 300 ms.
    let output = paddock.curl(&["-si", &paddock.url("/burn.php?ms=1500&mib=1")]);
    let head = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let request_id = head
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .expect("x-request-id")
        .trim()
        .to_owned();
    paddock.wait_for_log("slow request: GET /burn.php?ms=1500&mib=1");
    let log = paddock.log();
    let trace: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&request_id) && l.contains("paddock::worker"))
        .collect();
    assert!(
        trace
            .iter()
            .any(|l| l.contains("slow request: GET /burn.php")
                && l.contains("burn.php)")
                && l.contains("pool=\"php\"")),
        "{log}"
    );
    // The frames name the function and the script's line, innermost first, cut at the depth.
    let frames: Vec<&&str> = trace.iter().filter(|l| l.contains("  #")).collect();
    assert!(!frames.is_empty() && frames.len() <= 3, "{trace:#?}");
    assert!(frames.iter().any(|l| l.contains("burn.php:")), "{trace:#?}");
    assert!(
        frames
            .iter()
            .any(|l| l.contains("cpu_ms()") || l.contains("getrusage()") || l.contains(" main ")),
        "{trace:#?}"
    );
    assert_eq!(log.matches("slow request:").count(), 1, "{log}");
    println!("{}", trace.join("\n"));
}
