//! The HTTP/1.1 direct path (frontend/src/conn/http1_direct.rs) against hyper's, on the wire.
//!
//! A GET or HEAD that arrives alone on its connection is answered without hyper; the same
//! request pipelined behind another one always goes through hyper (the direct path never takes
//! a read with bytes after the head). Both answers must agree in status, headers (every one,
//! in order; only `date` and `x-request-id` differ by nature) and body, and both must be
//! logged and counted alike.

use std::path::Path;

use harness::raw::{RawConn, RawResponse};
use harness::{observe, php_site, require_php_cgi, test_site, wait_for, Paddock};

use crate::static_files::tree;

/// Requests whose answers cover the static path's headers: validators, types, `Vary` and
/// `Content-Encoding` from precompressed siblings, `Cache-Control` rules, index files, the
/// redirect to a directory's slash, refusals and a missing file; conditional and range
/// requests (304 and 206), which the direct path hands to hyper with its answer made.
const REQUESTS: &[&str] = &[
    "GET /style.css HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "GET /style.css HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: gzip, br\r\n\r\n",
    "GET /style.css HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: gzip\r\n\r\n",
    "HEAD /style.css HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "GET /assets/logo.txt?v=3 HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n",
    "GET /app.js HTTP/1.1\r\nHost: localhost\r\nUser-Agent: direct-test\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "GET /docs/ HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "GET /docs HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "GET /.env HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "GET /missing.txt HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "GET /style.css HTTP/1.1\r\nHost: localhost\r\nRange: bytes=0-9\r\n\r\n",
    "GET /style.css HTTP/1.1\r\nHost: localhost\r\nIf-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\n\r\n",
    "GET /style.css HTTP/1.1\r\n\r\n",
];

pub(crate) fn start(root: &Path, log: &Path) -> Paddock {
    Paddock::start(&format!(
        r#"
[access_log]
path = "{log}"
format = "combined"

[sites.files]
root = "{root}"
index = ["index.html"]
hsts = "max-age=600"
cache_control = [
    {{ prefix = "/assets/", value = "public, max-age=31536000, immutable" }},
    {{ prefix = "/", value = "no-cache" }},
]
"#,
        root = root.display(),
        log = log.display(),
    ))
}

fn is_head(request: &str) -> bool {
    request.starts_with("HEAD ")
}

fn read(conn: &mut RawConn, request: &str) -> RawResponse {
    let response = if is_head(request) {
        conn.read_head_response()
    } else {
        conn.read_response()
    };
    response.unwrap_or_else(|| panic!("no answer to {request:?}"))
}

/// The answer to `request` sent alone on a fresh connection: the direct path.
fn alone(paddock: &Paddock, request: &str) -> RawResponse {
    let mut conn = RawConn::connect(paddock.http);
    conn.send(request.as_bytes()).unwrap();
    read(&mut conn, request)
}

/// The answer to `request` pipelined behind itself: hyper, for both. The second is answered
/// too unless the first closes the connection.
fn through_hyper(paddock: &Paddock, request: &str) -> RawResponse {
    let mut conn = RawConn::connect(paddock.http);
    conn.send(format!("{request}{request}").as_bytes()).unwrap();
    let first = read(&mut conn, request);
    if !closes(&first) {
        read(&mut conn, request);
    }
    first
}

fn closes(response: &RawResponse) -> bool {
    response.header("connection") == Some("close")
}

/// Everything but the two headers that differ by nature, in the order sent.
pub(crate) fn comparable(response: &RawResponse) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let headers = response
        .headers
        .iter()
        .filter(|(name, _)| name != "date" && name != "x-request-id")
        .cloned()
        .collect();
    (response.status, headers, response.body.clone())
}

#[test]
fn direct_answers_equal_hypers_header_for_header() {
    let (dir, root) = tree();
    let log = dir.path().join("access.log");
    let paddock = start(&root, &log);
    let counted_before = requests_counted(&paddock);
    let mut expected = 0;
    for request in REQUESTS {
        let direct = alone(&paddock, request);
        let hyper = through_hyper(&paddock, request);
        assert_eq!(comparable(&direct), comparable(&hyper), "{request:?}");
        for response in [&direct, &hyper] {
            assert!(response.header("date").is_some(), "{request:?}");
            assert!(response.header("x-request-id").is_some(), "{request:?}");
        }
        // Alone, then twice pipelined unless the answer closes the connection.
        expected += if closes(&direct) { 2 } else { 3 };
    }
    // Every request answered was logged and counted.
    let lines = wait_for("every request in the access log", || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        (lines.len() >= expected).then_some(lines)
    });
    assert_eq!(lines.len(), expected);
    let first_style = lines
        .iter()
        .filter(|line| line.contains("\"GET /style.css HTTP/1.1\" 200 "))
        .count();
    assert!(first_style >= 3, "{lines:#?}");
    assert_eq!(
        requests_counted(&paddock) - counted_before,
        expected as u64,
        "paddock_requests_total"
    );
}

/// A script's answers: PHP sends no `Content-Length`, so the direct path adds the one hyper
/// adds (none to an empty answer to a HEAD); an answer with its own reason phrase goes to hyper.
const SCRIPT_REQUESTS: &[&str] = &[
    "GET /headers.php?case=cookies HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "HEAD /headers.php?case=cookies HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "GET /headers.php?case=created HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "GET /headers.php?case=redirect HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "HEAD /headers.php?case=redirect HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "GET /headers.php?case=status HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "GET /no/such/page HTTP/1.1\r\nHost: localhost\r\n\r\n",
];

#[test]
fn script_answers_equal_hypers_header_for_header() {
    require_php_cgi();
    let paddock = Paddock::start(&php_site(&test_site(), 2, ""));
    for request in SCRIPT_REQUESTS {
        let direct = alone(&paddock, request);
        let hyper = through_hyper(&paddock, request);
        assert_eq!(comparable(&direct), comparable(&hyper), "{request:?}");
        if !is_head(request) {
            let length = direct.header("content-length").map(str::to_owned);
            assert_eq!(
                length,
                Some(direct.body.len().to_string()),
                "{request:?}: the length hyper would add"
            );
        }
    }
}

/// The front end's count of answered requests, from its metrics.
fn requests_counted(paddock: &Paddock) -> u64 {
    observe::scrape(paddock.admin)
        .lines()
        .filter(|line| line.starts_with("paddock_requests_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[test]
fn a_kept_connection_alternates_between_the_two_paths() {
    let (dir, root) = tree();
    let paddock = start(&root, &dir.path().join("access.log"));
    let mut conn = RawConn::connect(paddock.http);
    let get = REQUESTS[0];
    let not_modified = REQUESTS[12];
    for round in 0..3 {
        conn.send(get.as_bytes()).unwrap();
        let answer = read(&mut conn, get);
        assert_eq!(answer.status, 200, "round {round}");
        assert_eq!(answer.body.len(), 950);
        // A 304 goes to hyper with its answer made; the connection parks again after it.
        conn.send(not_modified.as_bytes()).unwrap();
        assert_eq!(read(&mut conn, not_modified).status, 304, "round {round}");
        conn.send(format!("{get}{get}").as_bytes()).unwrap();
        assert_eq!(read(&mut conn, get).status, 200, "round {round}");
        assert_eq!(read(&mut conn, get).status, 200, "round {round}");
    }
    // An answer that closes (a request without Host is refused with a 400) closes.
    let refused = REQUESTS[13];
    conn.send(refused.as_bytes()).unwrap();
    assert_eq!(read(&mut conn, refused).status, 400);
    assert!(conn.closed_within(std::time::Duration::from_secs(10)));
}

/// Header lines of the first response in `raw` (names lower-cased), in order, without the two
/// that differ by nature; and its status line.
fn head_lines(raw: &str) -> (String, Vec<String>) {
    let start = raw
        .find("HTTP/1.1 ")
        .unwrap_or_else(|| panic!("no response in {raw:?}"));
    let head = raw[start..].split("\r\n\r\n").next().unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().to_owned();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').expect("a header line");
            format!("{}:{}", name.to_ascii_lowercase(), value)
        })
        .filter(|line| !line.starts_with("date:") && !line.starts_with("x-request-id:"))
        .collect();
    (status, headers)
}

/// Over TLS the same: curl's one request per connection is answered directly; two requests
/// that arrive in one TLS record (`openssl s_client` sends its whole input at once) go
/// through hyper. HSTS, which only HTTPS answers carry, comes out the same.
#[test]
fn over_tls_too_and_with_hsts() {
    let (dir, root) = tree();
    let paddock = start(&root, &dir.path().join("access.log"));
    for path in ["/style.css", "/assets/logo.txt", "/missing.txt"] {
        let direct = paddock.curl(&["--http1.1", "-i", &paddock.https_url(path)]);
        let direct = head_lines(&String::from_utf8_lossy(&direct.stdout));
        let both = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n\
             GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        );
        let mut client = std::process::Command::new("openssl")
            .args([
                "s_client",
                "-quiet",
                "-ign_eof",
                "-servername",
                "localhost",
                "-connect",
            ])
            .arg(paddock.https.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("openssl s_client");
        use std::io::Write as _;
        client
            .stdin
            .take()
            .unwrap()
            .write_all(both.as_bytes())
            .unwrap();
        let output = client.wait_with_output().unwrap();
        let through_hyper = head_lines(&String::from_utf8_lossy(&output.stdout));
        assert_eq!(direct, through_hyper, "{path}");
        if path != "/missing.txt" {
            assert!(
                direct
                    .1
                    .iter()
                    .any(|h| h == "strict-transport-security: max-age=600"),
                "{path}: {direct:?}"
            );
        }
    }
}
