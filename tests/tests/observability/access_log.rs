//! The access log: combined format and JSON, to a file, reopened on SIGUSR1 (logrotate's
//! `postrotate` step), recording the client address behind trusted proxies.

use std::path::Path;

use harness::{php_site, require_php_cgi, test_site, wait_for, Paddock};

fn start(log: &Path, format: &str, extra: &str) -> Paddock {
    require_php_cgi();
    Paddock::start(&php_site(
        &test_site(),
        1,
        &format!(
            "[access_log]\npath = \"{}\"\nformat = \"{format}\"\n{extra}",
            log.display()
        ),
    ))
}

/// Waits until `path` holds at least `lines` lines; returns them.
fn lines(path: &Path, lines: usize) -> Vec<String> {
    wait_for(&format!("{lines} lines in {path:?}"), || {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let found: Vec<String> = text.lines().map(str::to_owned).collect();
        (found.len() >= lines).then_some(found)
    })
}

#[test]
fn combined_format_as_log_tools_expect() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let paddock = start(&log, "combined", "");
    paddock.curl(&[
        "-A",
        "test-agent/1.0",
        "-e",
        "http://example.test/from",
        &paddock.url("/static/hello.txt?q=1"),
    ]);
    paddock.curl(&[&paddock.url("/missing.php")]);
    let found = lines(&log, 2);
    // 127.0.0.1 - - [26/Nov/2026:10:00:00 +0000] "GET /static/hello.txt?q=1 HTTP/1.1" 200 13 "http://example.test/from" "test-agent/1.0"
    let first = &found[0];
    assert!(first.starts_with("127.0.0.1 - - ["), "{first}");
    assert!(first.contains(" +0000] \"GET /static/hello.txt?q=1 HTTP/1.1\" 200 13 \"http://example.test/from\" \"test-agent/1.0\""), "{first}");
    assert!(
        found[1].contains("\"GET /missing.php HTTP/1.1\" 404 "),
        "{}",
        found[1]
    );
}

#[test]
fn json_lines_with_the_forwarded_client() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.json");
    let paddock = start(
        &log,
        "json",
        "[client_address]\ntrusted_proxies = [\"127.0.0.1\"]\n",
    );
    paddock.curl(&[
        "-H",
        "X-Forwarded-For: 203.0.113.9",
        &paddock.url("/sleep.php?ms=0"),
    ]);
    let found = lines(&log, 1);
    let entry: serde_json::Value = serde_json::from_str(&found[0]).unwrap();
    assert_eq!(entry["client"], "203.0.113.9");
    assert_eq!(entry["method"], "GET");
    assert_eq!(entry["target"], "/sleep.php?ms=0");
    assert_eq!(entry["status"], 200);
    assert_eq!(entry["site"], "test");
    assert_eq!(entry["complete"], true);
    assert!(entry["bytes"].as_u64().unwrap() > 10);
    assert!(entry["time"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn sigusr1_reopens_the_log_after_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let rotated = dir.path().join("access.log.1");
    let paddock = start(&log, "combined", "");
    paddock.curl(&[&paddock.url("/static/hello.txt?before")]);
    lines(&log, 1);
    std::fs::rename(&log, &rotated).unwrap();
    harness::signal(paddock.pid(), "USR1");
    paddock.wait_for_log("access log reopened");
    paddock.curl(&[&paddock.url("/static/hello.txt?after")]);
    let fresh = lines(&log, 1);
    assert!(fresh[0].contains("?after"), "{fresh:?}");
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert!(old.contains("?before") && !old.contains("?after"), "{old}");
}
