//! Helpers for the observability tests: scraping `/metrics`, reading one sample, the `/status`
//! JSON, polling until a condition holds, and where test artifacts go.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::require_program;
use crate::{http_get, split_response};

/// The body of `GET path` on `addr`; panics unless the answer is 200.
pub fn get_ok(addr: SocketAddr, path: &str) -> String {
    let raw = http_get(addr, path).unwrap_or_else(|| panic!("GET {path} on {addr} failed"));
    let (status, head, body) = split_response(&raw);
    assert_eq!(status, 200, "GET {path}:\n{head}\n{body}");
    body
}

/// The Prometheus text exposition from the admin listener.
pub fn scrape(admin: SocketAddr) -> String {
    get_ok(admin, "/metrics")
}

/// The `/status` JSON from the admin listener.
pub fn status(admin: SocketAddr) -> serde_json::Value {
    let body = get_ok(admin, "/status?json");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("status JSON: {e}\n{body}"))
}

/// The value of the sample `name{labels}` in `text`, where `labels` lists the label pairs that
/// must match (others may be present): `sample(&text, "paddock_requests_total", &[("pool", "php")])`.
/// `None` if no sample matches; the sum if several do.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric, label_text) = match series.split_once('{') {
            Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric != name {
            continue;
        }
        let pairs = parse_labels(label_text);
        let matches = labels
            .iter()
            .all(|(k, v)| pairs.iter().any(|(pk, pv)| pk == k && pv == v));
        if matches {
            let value: f64 = value.parse().expect("numeric sample");
            found = Some(found.unwrap_or(0.0) + value);
        }
    }
    found
}

/// Like [`sample`], but 0 when the series does not exist (yet).
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(text, name, labels).unwrap_or(0.0)
}

fn parse_labels(text: &str) -> Vec<(String, String)> {
    // Label values in paddock's metrics never contain `"` or `,` escapes, but be exact anyway.
    let mut pairs = Vec::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(if escaped == 'n' { '\n' } else { escaped });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                _ => value.push(c),
            }
        }
        pairs.push((key.trim_start_matches(',').trim().to_string(), value));
        rest = &after[end..];
    }
    pairs
}

/// The metric family names declared (`# TYPE`) in a scrape.
pub fn families(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Polls `check` until it returns `Some`, or panics with `what` after `timeout` (new tests: use
/// [`crate::wait_for`], bounded by [`crate::PATIENCE`]).
pub fn wait_for<T>(timeout: Duration, what: &str, check: impl FnMut() -> Option<T>) -> T {
    crate::wait::poll(timeout, check).unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

/// A directory for files a test keeps for people to look at (screenshots): `test-artifacts/`
/// in the cargo target directory (`$CARGO_TARGET_DIR`, else the one holding the test binary).
pub fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().expect("test executable path");
            // target/<profile>/deps/<test> → target
            exe.ancestors().nth(3).expect("target dir").to_path_buf()
        });
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("create test-artifacts");
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_samples_by_partial_labels() {
        let text = "# TYPE x counter\nx{pool=\"php\",reason=\"crash\"} 2\nx{pool=\"php\",reason=\"idle\"} 3\nx{pool=\"cgi\",reason=\"crash\"} 5\ny 7\n";
        assert_eq!(sample(text, "x", &[("pool", "php")]), Some(5.0));
        assert_eq!(sample(text, "x", &[("reason", "crash")]), Some(7.0));
        assert_eq!(sample(text, "x", &[("pool", "none")]), None);
        assert_eq!(sample(text, "y", &[]), Some(7.0));
        assert_eq!(families(text), vec!["x"]);
    }
}
