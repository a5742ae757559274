//! HTTP/3 on an HTTPS listener with `http3 = true`, through a client built from the crates
//! paddock serves it with (quinn, h3), and through aioquic, an implementation of its own: the same routing, static files, PHP, request bodies and
//! metrics as over TCP, `Alt-Svc` on the TCP listener, and what the HTTP/2 hostile suite checks
//! that applies here: a request the client resets midway and a request head over the limit never
//! reach a worker, and the connection serves on.

use harness::h3_client::{self, Ending, H3Request};
use harness::observe::{scrape, value};
use harness::{php_site, require_php_cgi, split_response, test_site, Paddock, LISTENERS, PATIENCE};
use serde_json::Value;

/// The standard listeners with HTTP/3 on the HTTPS one.
fn listeners_h3() -> String {
    LISTENERS.replace(
        "[listeners.https]\nkind = \"https\"\naddress = \"127.0.0.1:0\"\n",
        "[listeners.https]\nkind = \"https\"\naddress = \"127.0.0.1:0\"\nhttp3 = true\n",
    )
}

fn start(extra_pool: &str) -> Paddock {
    require_php_cgi();
    let config = format!(
        "{}\n{}",
        listeners_h3(),
        php_site(&test_site(), 2, extra_pool)
    );
    let paddock = Paddock::start_with(&config, true);
    paddock.wait_for_log("listening for HTTP/3");
    paddock
}

fn json(response: &h3_client::H3Response) -> Value {
    assert_eq!(response.status, 200, "{}", response.text());
    serde_json::from_slice(&response.body).unwrap_or_else(|_| panic!("{}", response.text()))
}

#[test]
fn http3_serves_static_files_php_uploads_and_large_downloads_as_tcp_does() {
    let paddock = start("");
    let upload: Vec<u8> = (0..300 * 1024).map(|i| (i % 251) as u8).collect();
    let requests = [
        (H3Request::get("/static/site.css"), Ending::Complete),
        (H3Request::get("/echo.php?x=1"), Ending::Complete),
        (
            H3Request {
                method: "POST",
                path: "/echo.php",
                headers: &[("content-type", "application/octet-stream")],
                body: &upload,
            },
            Ending::Complete,
        ),
        (H3Request::get("/big.php?kb=8192"), Ending::Complete),
        (
            H3Request {
                method: "HEAD",
                ..H3Request::get("/static/site.css")
            },
            Ending::Complete,
        ),
        (H3Request::get("/missing.php"), Ending::Complete),
    ];
    let answers: Vec<_> = h3_client::exchange(paddock.https, &requests)
        .unwrap_or_else(|e| panic!("HTTP/3 exchange failed: {e}\n{}", paddock.log()))
        .into_iter()
        .map(Option::unwrap)
        .collect();

    let css = &answers[0];
    assert_eq!(css.status, 200);
    assert_eq!(css.header("content-type"), Some("text/css"));
    assert_eq!(css.text(), "body { color: #333; }\n");
    assert!(css.header("x-request-id").is_some());

    let seen = json(&answers[1]);
    assert_eq!(seen["server"]["SERVER_PROTOCOL"], "HTTP/3.0");
    assert_eq!(seen["server"]["HTTPS"], "on");
    assert_eq!(seen["get"]["x"], "1");

    let posted = json(&answers[2]);
    assert_eq!(posted["input_sha1"], sha1(&upload));
    assert_eq!(posted["server"]["CONTENT_LENGTH"], upload.len().to_string());

    let big = &answers[3];
    assert_eq!(big.status, 200);
    assert_eq!(big.body.len(), 8192 * 1024);
    assert!(big.body.starts_with(b"0123456789abcdef"));

    let head = &answers[4];
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), Some("22"));

    assert_eq!(answers[5].status, 404);

    // The TCP listener tells clients where HTTP/3 is.
    let tcp = paddock.curl(&["-sI", &paddock.https_url("/static/site.css")]);
    let (status, head, _) = split_response(&String::from_utf8_lossy(&tcp.stdout));
    assert_eq!(status, 200);
    let alt_svc = format!("alt-svc: h3=\":{}\"; ma=86400", paddock.https.port());
    assert!(head.to_ascii_lowercase().contains(&alt_svc), "{head}");

    // Counted as any request, on a connection labelled http3.
    let metrics = scrape(paddock.admin);
    assert!(
        value(&metrics, "paddock_requests_total", &[("pool", "php")]) >= 3.0,
        "{metrics}"
    );
    assert!(
        metrics.contains("protocol=\"http3\""),
        "no http3 connection series:\n{metrics}"
    );
}

#[test]
fn a_reset_upload_and_an_oversized_head_never_reach_a_worker_and_the_connection_serves_on() {
    let dir = tempfile::tempdir().unwrap();
    let nonces = dir.path().join("nonces.log");
    let paddock = start(&format!("env = {{ NONCE_LOG = \"{}\" }}", nonces.display()));
    let cut = b"nonce=reset-one&padding=0123456789";
    let whole = b"nonce=whole-one";
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let cut_headers = [form[0], ("content-length", "4000")];
    let huge = "x".repeat(128 * 1024);
    let huge_headers = [form[0], ("x-huge", huge.as_str())];
    let requests = [
        (
            H3Request {
                method: "POST",
                path: "/nonce.php",
                headers: &cut_headers,
                body: cut,
            },
            Ending::ResetAfter(cut.len()),
        ),
        (
            H3Request {
                method: "POST",
                path: "/nonce.php",
                headers: &huge_headers,
                body: b"nonce=huge-one",
            },
            Ending::Complete,
        ),
        (
            H3Request {
                method: "POST",
                path: "/nonce.php",
                headers: &form,
                body: whole,
            },
            Ending::Complete,
        ),
    ];
    let answers = h3_client::exchange(paddock.https, &requests)
        .unwrap_or_else(|e| panic!("HTTP/3 exchange failed: {e}\n{}", paddock.log()));
    let too_big = answers[1].as_ref().expect("the oversized head's answer");
    assert_eq!(too_big.status, 431, "{}", too_big.text());
    let stored = answers[2].as_ref().expect("the last request's answer");
    assert_eq!(stored.status, 200, "{}", stored.text());
    assert_eq!(stored.text(), "stored whole-one\n");
    // The reset request ends in the front end: refused with its head when the reset came first,
    // or answered 400 when its body was cut. Wait for either, then the worker's record must hold
    // the whole request only.
    paddock.wait_until("the reset request to end", PATIENCE, || {
        paddock.log().lines().any(|l| {
            l.contains("HTTP/3 request head refused")
                || (l.contains("uri=/nonce.php") && l.contains("status=400"))
        })
    });
    let recorded = std::fs::read_to_string(&nonces).unwrap();
    assert_eq!(recorded, "whole-one\n");
}

fn sha1(bytes: &[u8]) -> String {
    let mut hasher = sha1_smol::Sha1::new();
    hasher.update(bytes);
    hasher.digest().to_string()
}

#[test]
fn a_rapid_reset_flood_reaches_no_worker_and_the_connection_serves_on() {
    let dir = tempfile::tempdir().unwrap();
    let nonces = dir.path().join("nonces.log");
    let paddock = start(&format!("env = {{ NONCE_LOG = \"{}\" }}", nonces.display()));
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let reset = H3Request {
        method: "POST",
        path: "/nonce.php",
        headers: &form,
        body: b"nonce=flood",
    };
    // 300 requests opened and reset at once (CVE-2023-44487 over HTTP/3), then one real one.
    let mut requests = vec![(reset, Ending::ResetAfter(0)); 300];
    requests.push((
        H3Request {
            body: b"nonce=after-the-flood",
            ..reset
        },
        Ending::Complete,
    ));
    let answers = h3_client::exchange(paddock.https, &requests)
        .unwrap_or_else(|e| panic!("HTTP/3 exchange failed: {e}\n{}", paddock.log()));
    let last = answers
        .last()
        .unwrap()
        .as_ref()
        .expect("an answer after the flood");
    assert_eq!(last.status, 200, "{}", last.text());
    assert_eq!(
        std::fs::read_to_string(&nonces).unwrap(),
        "after-the-flood\n",
        "a reset request reached a worker"
    );
}

/// The aioquic release the interoperability test installs (into a venv under the target dir).
const AIOQUIC_VERSION: &str = "1.7.2";

/// One request with aioquic (`tests/scripts/h3_request.py`): its JSON summary.
fn aioquic(paddock: &Paddock, method: &str, path: &str, body: Option<&std::path::Path>) -> Value {
    let python = harness::wsgi::registry_venv("aioquic", AIOQUIC_VERSION);
    let mut command = std::process::Command::new(python);
    command
        .arg(harness::hostile::script("h3_request.py"))
        .arg(paddock.https.port().to_string())
        .args([method, path]);
    if let Some(body) = body {
        command.arg(body);
    }
    let output = command.output().expect("run tests/scripts/h3_request.py");
    assert!(
        output.status.success(),
        "aioquic {method} {path}: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        paddock.log()
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn aioquic_gets_the_same_answers() {
    let paddock = start("");
    let css = aioquic(&paddock, "GET", "/static/site.css", None);
    assert_eq!(css["status"], 200);
    assert_eq!(css["body"], "body { color: #333; }\n");
    assert_eq!(css["headers"]["content-type"], "text/css");

    let dir = tempfile::tempdir().unwrap();
    let upload: Vec<u8> = (0..200 * 1024).map(|i| (i % 241) as u8).collect();
    let file = dir.path().join("upload.bin");
    std::fs::write(&file, &upload).unwrap();
    let posted = aioquic(&paddock, "POST", "/echo.php", Some(&file));
    assert_eq!(posted["status"], 200);
    let seen: Value = serde_json::from_str(posted["body"].as_str().unwrap()).unwrap();
    assert_eq!(seen["server"]["SERVER_PROTOCOL"], "HTTP/3.0");
    assert_eq!(seen["input_sha1"], sha1(&upload));

    // aioquic is pure Python: 2 MiB is large enough to need many flow-control updates and
    // small enough to stay quick on a loaded machine (the quinn client downloads 8 MiB).
    let big = aioquic(&paddock, "GET", "/big.php?kb=2048", None);
    assert_eq!(big["status"], 200);
    assert_eq!(big["length"], 2048 * 1024);
}

#[test]
fn max_requests_per_connection_ends_an_http3_connection_with_goaway() {
    require_php_cgi();
    let config = format!(
        "[limits]\nmax_requests_per_connection = 2\n{}\n{}",
        listeners_h3(),
        php_site(&test_site(), 1, "")
    );
    let paddock = Paddock::start_with(&config, true);
    paddock.wait_for_log("listening for HTTP/3");
    let get = || (H3Request::get("/static/site.css"), Ending::Complete);
    let two = h3_client::exchange(paddock.https, &[get(), get()])
        .unwrap_or_else(|e| panic!("two requests on one connection: {e}"));
    assert!(two
        .iter()
        .all(|a| a.as_ref().is_some_and(|r| r.status == 200)));
    // The third request on the same connection is refused (GOAWAY after the second)...
    assert!(
        h3_client::exchange(paddock.https, &[get(), get(), get()]).is_err(),
        "a third request was answered on the same connection"
    );
    // ...and a new connection is served.
    let fresh = h3_client::request(paddock.https, H3Request::get("/static/site.css")).unwrap();
    assert_eq!(fresh.status, 200);
}
