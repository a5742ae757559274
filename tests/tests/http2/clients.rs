//! HTTP/2 with real clients: curl (ALPN h2 over TLS, prior knowledge in cleartext), nghttp (the
//! SETTINGS paddock advertises) and a short, bounded h2load run.

use std::process::Command;

use harness::{php_site, require_php_cgi, test_site, Paddock, LISTENERS};

fn start(extra: &str) -> Paddock {
    require_php_cgi();
    Paddock::start(&php_site(&test_site(), 2, extra))
}

fn version_and_status(paddock: &Paddock, args: &[&str]) -> String {
    let mut all = vec!["-o", "/dev/null", "-w", "%{http_version} %{http_code}"];
    all.extend_from_slice(args);
    String::from_utf8_lossy(&paddock.curl(&all).stdout).into_owned()
}

#[test]
fn alpn_h2_over_tls_for_static_and_php() {
    let paddock = start("");
    assert_eq!(
        version_and_status(
            &paddock,
            &["--http2", &paddock.https_url("/static/hello.txt")]
        ),
        "2 200"
    );
    let body = paddock.curl(&["--http2", &paddock.https_url("/echo.php?x=1")]);
    let seen: serde_json::Value = serde_json::from_slice(&body.stdout).unwrap();
    assert_eq!(seen["server"]["SERVER_PROTOCOL"], "HTTP/2.0");
    assert_eq!(seen["get"]["x"], "1");
    // HTTP/1.1 is still offered.
    assert_eq!(
        version_and_status(
            &paddock,
            &["--http1.1", &paddock.https_url("/static/hello.txt")]
        ),
        "1.1 200"
    );
}

#[test]
fn cleartext_h2_only_where_the_listener_allows_it() {
    require_php_cgi();
    let config = format!(
        "{}\n[listeners.h2c]\nkind = \"http\"\naddress = \"127.0.0.1:0\"\nhttp2_prior_knowledge = true\n{}",
        LISTENERS,
        php_site(&test_site(), 1, "")
    );
    let paddock = Paddock::start_with(&config, true);
    let h2c = paddock.address("h2c");
    let url = format!("http://{h2c}/static/hello.txt");
    assert_eq!(
        version_and_status(&paddock, &["--http2-prior-knowledge", &url]),
        "2 200"
    );
    assert_eq!(
        version_and_status(&paddock, &["--http1.1", &url]),
        "1.1 200"
    );
    // The default listener speaks HTTP/1.1 only: the h2 preface is not a valid request.
    let refused = version_and_status(
        &paddock,
        &["--http2-prior-knowledge", &paddock.url("/static/hello.txt")],
    );
    assert!(!refused.starts_with("2 "), "{refused}");
}

#[test]
fn protection_settings_are_advertised() {
    let paddock =
        start("[http2]\nmax_concurrent_streams = 7\n[limits]\nmax_header_size = \"32KiB\"\n");
    let output = Command::new("nghttp")
        .args([
            "-nv",
            &format!(
                "https://127.0.0.1:{}/static/hello.txt",
                paddock.https.port()
            ),
        ])
        .output()
        .expect("nghttp (apt-get install nghttp2-client)");
    let text = String::from_utf8_lossy(&output.stdout);
    let settings = text
        .lines()
        .skip_while(|l| !l.contains("recv SETTINGS frame"))
        .take(8)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        settings.contains("SETTINGS_MAX_CONCURRENT_STREAMS(0x03):7"),
        "{text}"
    );
    assert!(
        settings.contains("SETTINGS_MAX_HEADER_LIST_SIZE(0x06):32768"),
        "{text}"
    );
}

#[test]
fn h2load_short_run_succeeds_with_many_streams_per_connection() {
    let paddock = start("[http2]\nmax_concurrent_streams = 16\n");
    for path in ["/static/hello.txt", "/sleep.php?ms=0"] {
        let url = format!("https://127.0.0.1:{}{path}", paddock.https.port());
        // Bounded: 400 requests over 4 connections, 16 concurrent streams each. (A client that
        // opens more streams than allowed before it has read the SETTINGS gets those refused with
        // RST_STREAM(REFUSED_STREAM), as the protocol says; h2load counts them as errors.)
        let output = Command::new("h2load")
            .args(["-n", "400", "-c", "4", "-m", "16", "-T", "30", &url])
            .output()
            .expect("h2load (apt-get install nghttp2-client)");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            text.contains("400 succeeded, 0 failed, 0 errored"),
            "{path}:\n{text}"
        );
        assert!(text.contains("status codes: 400 2xx"), "{path}:\n{text}");
    }
}
