//! HTTP/3 on an HTTPS listener with `http3 = true`, through a client built from the crates
//! paddock serves it with (quinn, h3): the same routing, static files, PHP, request bodies and
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
