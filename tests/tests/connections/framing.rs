//! The policy for ambiguous request framing (docs/frontend.md, "Request framing"), checked with
//! raw bytes: hyper parses HTTP/1.1, paddock closes the connection after any request whose
//! framing leaves doubt, so that no byte can be read as a smuggled second request.

use harness::raw::RawConn;
use harness::{php_site, require_php_cgi, test_site, Paddock, PATIENCE};

fn start() -> Paddock {
    require_php_cgi();
    Paddock::start(&php_site(&test_site(), 1, ""))
}

/// Sends `request` followed by a second, innocent-looking request on the same connection, and
/// returns the first response and whether the second one was answered.
fn send_with_follower(paddock: &Paddock, request: &str) -> (u16, Option<String>, bool) {
    let mut conn = RawConn::connect(paddock.http);
    let follower = "GET /static/hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let _ = conn.send(format!("{request}{follower}").as_bytes());
    let Some(first) = conn.read_response() else {
        return (0, None, false);
    };
    let second_answered = conn.read_response().is_some();
    (first.status, Some(first.text()), second_answered)
}

#[test]
fn chunked_wins_over_content_length_and_the_connection_closes() {
    let paddock = start();
    // A front proxy trusting Content-Length: 40 would forward the chunked terminator plus the
    // start of the "next request" as body; paddock reads chunked, then closes.
    let request = "POST /echo.php HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n5\r\na=b&c\r\n0\r\n\r\n";
    let (status, body, second_answered) = send_with_follower(&paddock, request);
    assert_eq!(status, 200);
    let seen: serde_json::Value = serde_json::from_str(&body.unwrap()).unwrap();
    assert_eq!(seen["post"]["a"], "b");
    assert_eq!(seen["server"]["CONTENT_LENGTH"], "5");
    assert!(
        !second_answered,
        "nothing after an ambiguous request is served"
    );
}

#[test]
fn plain_chunked_request_also_ends_the_connection() {
    let paddock = start();
    let request = "POST /echo.php HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let (status, _, second_answered) = send_with_follower(&paddock, request);
    assert_eq!(status, 200);
    assert!(!second_answered);
}

#[test]
fn conflicting_content_lengths_are_rejected() {
    let paddock = start();
    let request = "POST /echo.php HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde";
    let (status, _, second_answered) = send_with_follower(&paddock, request);
    assert_eq!(status, 400);
    assert!(!second_answered);
}

#[test]
fn transfer_encoding_not_ending_in_chunked_is_rejected() {
    let paddock = start();
    let request = "POST /echo.php HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked, gzip\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let (status, _, _) = send_with_follower(&paddock, request);
    assert_eq!(status, 400);
}

#[test]
fn transfer_encoding_in_http_1_0_is_rejected() {
    let paddock = start();
    let request = "POST /echo.php HTTP/1.0\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let (status, _, _) = send_with_follower(&paddock, request);
    assert_eq!(status, 400);
}

#[test]
fn malformed_header_lines_are_rejected() {
    let paddock = start();
    for request in [
        // Whitespace between the name and the colon.
        "POST /echo.php HTTP/1.1\r\nHost: localhost\r\nContent-Length : 3\r\n\r\nabc",
        // Obsolete line folding.
        "GET /echo.php HTTP/1.1\r\nHost: localhost\r\nX-Folded: a\r\n b\r\n\r\n",
        // A non-numeric length.
        "POST /echo.php HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3x\r\n\r\nabc",
    ] {
        let (status, _, second_answered) = send_with_follower(&paddock, request);
        assert_eq!(status, 400, "{request:?}");
        assert!(!second_answered, "{request:?}");
    }
}

#[test]
fn http_1_1_without_host_is_rejected() {
    let paddock = start();
    let mut conn = RawConn::connect(paddock.http);
    conn.send(b"GET /static/hello.txt HTTP/1.1\r\n\r\n")
        .unwrap();
    let response = conn.read_response().unwrap();
    assert_eq!(response.status, 400);
    // Nothing more is read from a client that sent a malformed request (hostile/framing.rs
    // checks it with pipelined canaries)...
    assert_eq!(response.header("connection"), Some("close"));
    assert!(conn.closed_within(PATIENCE));
    // ...and a well-formed request on a new connection works.
    let mut conn = RawConn::connect(paddock.http);
    conn.get("/static/hello.txt").unwrap();
    assert_eq!(conn.read_response().unwrap().status, 200);
}
