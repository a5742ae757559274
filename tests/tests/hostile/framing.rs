//! HTTP/1.1 framing and request smuggling: a table of malformed and ambiguous requests, each
//! followed on the same connection by a pipelined canary request.
//!
//! For every case the test checks the answer (the status from docs/frontend.md, "Request
//! framing", or that the connection closes), whether the canary was served, and — through
//! `marklog.php`, which logs every request it runs — that the worker saw exactly the requests the
//! client meant: the case's own request (with the body the client meant) when it was accepted, the
//! canary when it was answered, and never a request carved out of a body (every case carries one,
//! marked `-smuggled`).

use std::time::Duration;

use harness::hostile::{Mark, MarkLog};
use harness::raw::{RawConn, RawResponse};
use harness::{php_site, require_php_cgi, test_site, Paddock, PATIENCE};

/// `limits.max_body` for these tests: small, so that runaway bodies hit it quickly.
const MAX_BODY: usize = 64 * 1024;

/// What the first request must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Status(u16),
    /// The connection closes without any response.
    Closed,
}

/// One row of the table.
struct Case {
    name: &'static str,
    request: Vec<u8>,
    answer: Answer,
    /// Whether the pipelined canary is answered (the connection stays usable).
    canary: bool,
    /// What the worker must have seen of the case's own request (method, body), if it ran.
    seen: Option<(&'static str, Vec<u8>)>,
}

/// A request the test smuggles into bodies: it must never run.
fn smuggled(name: &str) -> String {
    format!("GET /marklog.php?m={name}-smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n")
}

fn canary(name: &str) -> String {
    format!("GET /marklog.php?m={name}-canary HTTP/1.1\r\nHost: localhost\r\n\r\n")
}

/// `METHOD /marklog.php?m=NAME VERSION` with `Host`, `headers` (each ending in CRLF) and `body`;
/// `{smuggle}` in the body is replaced with [`smuggled`], `{len}` in the headers with the body's
/// final length.
fn request(method: &str, name: &str, version: &str, headers: &str, body: &str) -> Vec<u8> {
    let body = body.replace("{smuggle}", &smuggled(name));
    let headers = headers.replace("{len}", &body.len().to_string());
    format!("{method} /marklog.php?m={name} {version}\r\nHost: localhost\r\n{headers}\r\n{body}")
        .into_bytes()
}

fn post(name: &str, headers: &str, body: &str) -> Vec<u8> {
    request("POST", name, "HTTP/1.1", headers, body)
}

fn get(name: &str, headers: &str) -> Vec<u8> {
    request("GET", name, "HTTP/1.1", headers, "")
}

fn ok(
    name: &'static str,
    request: Vec<u8>,
    canary: bool,
    method: &'static str,
    body: &[u8],
) -> Case {
    Case {
        name,
        request,
        answer: Answer::Status(200),
        canary,
        seen: Some((method, body.to_vec())),
    }
}

fn refused(name: &'static str, request: Vec<u8>, status: u16) -> Case {
    Case {
        name,
        request,
        answer: Answer::Status(status),
        canary: false,
        seen: None,
    }
}

fn cases() -> Vec<Case> {
    const CHUNKED: &str = "Transfer-Encoding: chunked\r\n";
    let mut cases = vec![
        // --- Baselines: the table's machinery sees well-formed requests as they are.
        ok("baseline-get", get("baseline-get", ""), true, "GET", b""),
        ok(
            "baseline-post",
            post("baseline-post", "Content-Length: {len}\r\n", "a=1"),
            true,
            "POST",
            b"a=1",
        ),
        // A GET whose body is a whole request: it stays a body.
        ok(
            "get-body-is-request",
            request(
                "GET",
                "get-body-is-request",
                "HTTP/1.1",
                "Content-Length: {len}\r\n",
                "{smuggle}",
            ),
            true,
            "GET",
            smuggled("get-body-is-request").as_bytes(),
        ),
        // --- Content-Length and Transfer-Encoding together: chunked wins, then close.
        ok(
            "cl-te",
            post(
                "cl-te",
                &format!("Content-Length: {{len}}\r\n{CHUNKED}"),
                "0\r\n\r\n{smuggle}",
            ),
            false,
            "POST",
            b"",
        ),
        ok(
            "te-cl",
            post(
                "te-cl",
                &format!("{CHUNKED}Content-Length: {{len}}\r\n"),
                "0\r\n\r\n{smuggle}",
            ),
            false,
            "POST",
            b"",
        ),
        ok(
            "cl-short-te",
            post(
                "cl-short-te",
                &format!("Content-Length: 3\r\n{CHUNKED}"),
                "5\r\nhello\r\n0\r\n\r\n{smuggle}",
            ),
            false,
            "POST",
            b"hello",
        ),
        // --- Obfuscated Transfer-Encoding.
        refused(
            "te-xchunked",
            post(
                "te-xchunked",
                "Content-Length: {len}\r\nTransfer-Encoding: xchunked\r\n",
                "0\r\n\r\n{smuggle}",
            ),
            400,
        ),
        ok(
            "te-leading-space",
            post(
                "te-leading-space",
                "Transfer-Encoding:  chunked\r\n",
                "3\r\nabc\r\n0\r\n\r\n{smuggle}",
            ),
            false,
            "POST",
            b"abc",
        ),
        ok(
            "te-tab",
            post(
                "te-tab",
                "Transfer-Encoding:\tchunked\r\n",
                "3\r\nabc\r\n0\r\n\r\n{smuggle}",
            ),
            false,
            "POST",
            b"abc",
        ),
        ok(
            "te-uppercase",
            post(
                "te-uppercase",
                "Transfer-Encoding: CHUNKED\r\n",
                "3\r\nabc\r\n0\r\n\r\n{smuggle}",
            ),
            false,
            "POST",
            b"abc",
        ),
        refused(
            "te-twice",
            post(
                "te-twice",
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                "3\r\nabc\r\n0\r\n\r\n{smuggle}",
            ),
            400,
        ),
        refused(
            "te-gzip-chunked",
            post(
                "te-gzip-chunked",
                "Transfer-Encoding: gzip, chunked\r\n",
                "3\r\nabc\r\n0\r\n\r\n{smuggle}",
            ),
            501,
        ),
        refused(
            "te-chunked-identity",
            post(
                "te-chunked-identity",
                "Content-Length: {len}\r\nTransfer-Encoding: chunked, identity\r\n",
                "0\r\n\r\n{smuggle}",
            ),
            400,
        ),
        refused(
            "te-identity",
            post(
                "te-identity",
                "Content-Length: {len}\r\nTransfer-Encoding: identity\r\n",
                "{smuggle}",
            ),
            400,
        ),
        refused(
            "te-quoted",
            post(
                "te-quoted",
                "Content-Length: {len}\r\nTransfer-Encoding: \"chunked\"\r\n",
                "0\r\n\r\n{smuggle}",
            ),
            400,
        ),
        refused(
            "te-space-before-colon",
            post(
                "te-space-before-colon",
                "Content-Length: {len}\r\nTransfer-Encoding : chunked\r\n",
                "0\r\n\r\n{smuggle}",
            ),
            400,
        ),
        refused(
            "te-vertical-tab",
            post(
                "te-vertical-tab",
                "Content-Length: {len}\r\nTransfer-Encoding: \x0bchunked\r\n",
                "0\r\n\r\n{smuggle}",
            ),
            400,
        ),
        refused(
            "te-obs-fold",
            post(
                "te-obs-fold",
                "Content-Length: {len}\r\nTransfer-Encoding:\r\n chunked\r\n",
                "0\r\n\r\n{smuggle}",
            ),
            400,
        ),
        refused(
            "te-http10",
            request("POST", "te-http10", "HTTP/1.0", CHUNKED, "0\r\n\r\n{smuggle}"),
            400,
        ),
        ok(
            "te-on-get",
            request("GET", "te-on-get", "HTTP/1.1", CHUNKED, "0\r\n\r\n{smuggle}"),
            false,
            "GET",
            b"",
        ),
        // --- Content-Length variants.
        ok(
            "cl-duplicate-same",
            post(
                "cl-duplicate-same",
                "Content-Length: 5\r\nContent-Length: 5\r\n",
                "hello",
            ),
            true,
            "POST",
            b"hello",
        ),
        refused(
            "cl-duplicate-different",
            post(
                "cl-duplicate-different",
                "Content-Length: 5\r\nContent-Length: {len}\r\n",
                "hello{smuggle}",
            ),
            400,
        ),
        // hyper refuses a list even of equal lengths (stricter than RFC 9110 §8.6 requires).
        refused(
            "cl-list-same",
            post("cl-list-same", "Content-Length: 5, 5\r\n", "hello{smuggle}"),
            400,
        ),
        ok(
            "cl-leading-zeros",
            post("cl-leading-zeros", "Content-Length: 005\r\n", "hello"),
            true,
            "POST",
            b"hello",
        ),
        refused(
            "cl-list-different",
            post(
                "cl-list-different",
                "Content-Length: 5, {len}\r\n",
                "hello{smuggle}",
            ),
            400,
        ),
        refused(
            "cl-plus",
            post("cl-plus", "Content-Length: +{len}\r\n", "{smuggle}"),
            400,
        ),
        refused(
            "cl-minus",
            post("cl-minus", "Content-Length: -{len}\r\n", "{smuggle}"),
            400,
        ),
        refused(
            "cl-hex",
            post("cl-hex", "Content-Length: 0x10\r\n", "{smuggle}"),
            400,
        ),
        refused(
            "cl-overflow",
            post(
                "cl-overflow",
                "Content-Length: 18446744073709551621\r\n",
                "{smuggle}",
            ),
            400,
        ),
        refused(
            "cl-inner-space",
            post("cl-inner-space", "Content-Length: 1 0\r\n", "{smuggle}"),
            400,
        ),
        refused(
            "cl-empty",
            post("cl-empty", "Content-Length: \r\n", "{smuggle}"),
            400,
        ),
        refused(
            "cl-over-max-body",
            post(
                "cl-over-max-body",
                &format!("Content-Length: {}\r\n", MAX_BODY + 1),
                "{smuggle}",
            ),
            413,
        ),
        // --- Header syntax.
        refused(
            "obs-fold",
            get("obs-fold", "X-Folded: a\r\n b\r\n"),
            400,
        ),
        refused(
            "cr-in-value",
            get("cr-in-value", "X-Test: a\rb\r\n"),
            400,
        ),
        refused(
            "cr-as-line-end",
            post(
                "cr-as-line-end",
                "X-Test: a\rContent-Length: {len}\r\n",
                "{smuggle}",
            ),
            400,
        ),
        refused(
            "nul-in-value",
            get("nul-in-value", "X-Test: a\0b\r\n"),
            400,
        ),
        refused(
            "nul-in-name",
            get("nul-in-name", "X-Te\0st: a\r\n"),
            400,
        ),
        refused(
            "cr-in-name",
            get("cr-in-name", "X-Te\rst: a\r\n"),
            400,
        ),
        refused(
            "space-in-name",
            post("space-in-name", "Content Length: {len}\r\n", "{smuggle}"),
            400,
        ),
        refused(
            "del-in-value",
            get("del-in-value", "X-Test: a\x7fb\r\n"),
            400,
        ),
        refused("no-colon", get("no-colon", "Garbage\r\n"), 400),
        refused("empty-name", get("empty-name", ": value\r\n"), 400),
        refused(
            "leading-space-header",
            b"GET /marklog.php?m=leading-space-header HTTP/1.1\r\n Host: localhost\r\n\r\n".to_vec(),
            400,
        ),
        ok(
            "obs-text-in-value",
            get("obs-text-in-value", "X-Test: caf\u{e9}\r\n"),
            true,
            "GET",
            b"",
        ),
        // Bare LF line ends are accepted (RFC 9112 §2.2 allows it) and framed the same way.
        ok(
            "bare-lf",
            b"GET /marklog.php?m=bare-lf HTTP/1.1\nHost: localhost\n\n".to_vec(),
            true,
            "GET",
            b"",
        ),
        ok(
            "bare-lf-with-length",
            b"POST /marklog.php?m=bare-lf-with-length HTTP/1.1\nHost: localhost\nContent-Length: 5\n\nhello"
                .to_vec(),
            true,
            "POST",
            b"hello",
        ),
        // --- Host: refused, and nothing more is read from the connection.
        refused(
            "no-host",
            b"GET /marklog.php?m=no-host HTTP/1.1\r\n\r\n".to_vec(),
            400,
        ),
        refused(
            "two-hosts",
            b"GET /marklog.php?m=two-hosts HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n"
                .to_vec(),
            400,
        ),
        refused(
            "host-with-space",
            b"GET /marklog.php?m=host-with-space HTTP/1.1\r\nHost: local host\r\n\r\n".to_vec(),
            400,
        ),
        refused(
            "host-with-userinfo",
            b"GET /marklog.php?m=host-with-userinfo HTTP/1.1\r\nHost: user@localhost\r\n\r\n".to_vec(),
            400,
        ),
        // Both empty: allowed (RFC 9112 §3.2), for a target without an authority.
        ok(
            "host-empty",
            b"GET /marklog.php?m=host-empty HTTP/1.1\r\nHost:\r\n\r\n".to_vec(),
            true,
            "GET",
            b"",
        ),
        ok(
            "absolute-form",
            b"GET http://localhost/marklog.php?m=absolute-form HTTP/1.1\r\nHost: localhost\r\n\r\n"
                .to_vec(),
            true,
            "GET",
            b"",
        ),
        ok(
            "http10-closes",
            b"GET /marklog.php?m=http10-closes HTTP/1.0\r\n\r\n".to_vec(),
            false,
            "GET",
            b"",
        ),
        ok(
            "http10-keep-alive",
            b"GET /marklog.php?m=http10-keep-alive HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                .to_vec(),
            true,
            "GET",
            b"",
        ),
        // --- Request line.
        refused(
            "double-space-request-line",
            b"GET  /marklog.php?m=double-space-request-line HTTP/1.1\r\nHost: localhost\r\n\r\n"
                .to_vec(),
            400,
        ),
        refused(
            "nul-in-target",
            b"GET /marklog.php?m=nul-in-target\0 HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            400,
        ),
        refused(
            "lowercase-version",
            b"GET /marklog.php?m=lowercase-version http/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            400,
        ),
        refused(
            "version-1-2",
            b"GET /marklog.php?m=version-1-2 HTTP/1.2\r\nHost: localhost\r\n\r\n".to_vec(),
            400,
        ),
        refused(
            "http09",
            b"GET /marklog.php?m=http09\r\n\r\n".to_vec(),
            400,
        ),
        // An HTTP/2 preface on a listener without prior knowledge: closed without an answer.
        Case {
            name: "h2-preface-on-http1",
            request: b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
            answer: Answer::Closed,
            canary: false,
            seen: None,
        },
        // --- Chunked bodies.
        refused(
            "chunk-size-not-hex",
            post("chunk-size-not-hex", CHUNKED, "zz\r\nabc\r\n0\r\n\r\n{smuggle}"),
            400,
        ),
        refused(
            "chunk-size-negative",
            post("chunk-size-negative", CHUNKED, "-3\r\nabc\r\n0\r\n\r\n{smuggle}"),
            400,
        ),
        refused(
            "chunk-size-0x",
            post("chunk-size-0x", CHUNKED, "0x3\r\nabc\r\n0\r\n\r\n{smuggle}"),
            400,
        ),
        refused(
            "chunk-size-overflow",
            post(
                "chunk-size-overflow",
                CHUNKED,
                "10000000000000003\r\nabc\r\n0\r\n\r\n{smuggle}",
            ),
            400,
        ),
        refused(
            "chunk-data-overrun",
            post("chunk-data-overrun", CHUNKED, "3\r\nabcdef\r\n0\r\n\r\n{smuggle}"),
            400,
        ),
        refused(
            "chunk-missing-crlf",
            post("chunk-missing-crlf", CHUNKED, "3\r\nabc0\r\n\r\n{smuggle}"),
            400,
        ),
        refused(
            "chunk-size-leading-space",
            post(
                "chunk-size-leading-space",
                CHUNKED,
                " 3\r\nabc\r\n0\r\n\r\n{smuggle}",
            ),
            400,
        ),
        // Bare LF is accepted in the head but not in chunk framing.
        refused(
            "chunk-bare-lf",
            post("chunk-bare-lf", CHUNKED, "3\nabc\n0\n\n{smuggle}"),
            400,
        ),
        ok(
            "expect-100-continue",
            post(
                "expect-100-continue",
                "Expect: 100-continue\r\nContent-Length: 5\r\n",
                "hello",
            ),
            true,
            "POST",
            b"hello",
        ),
        ok(
            "chunk-extension",
            post(
                "chunk-extension",
                CHUNKED,
                "3;name=value\r\nabc\r\n0\r\n\r\n{smuggle}",
            ),
            false,
            "POST",
            b"abc",
        ),
        ok(
            "chunk-trailer-with-length",
            post(
                "chunk-trailer-with-length",
                CHUNKED,
                "3\r\nabc\r\n0\r\nContent-Length: 60\r\n\r\n{smuggle}",
            ),
            false,
            "POST",
            b"abc",
        ),
        // A chunked body that never ends: the canary is read as a chunk size, which fails.
        refused(
            "chunked-unterminated",
            post("chunked-unterminated", CHUNKED, "3\r\nabc\r\n"),
            400,
        ),
    ];
    // A single chunk larger than the body limit, sent for real: cut off with 413.
    let mut runaway = post(
        "runaway-chunk",
        CHUNKED,
        &format!("{:x}\r\n", 16 * MAX_BODY),
    );
    runaway.extend(std::iter::repeat_n(b'x', MAX_BODY + 1024));
    cases.push(refused("runaway-chunk", runaway, 413));
    // Many small chunks adding up to more than the limit.
    let mut many = post("many-chunks", CHUNKED, "");
    for _ in 0..(MAX_BODY / 1024 + 1) {
        many.extend_from_slice(b"400\r\n");
        many.extend(std::iter::repeat_n(b'y', 1024));
        many.extend_from_slice(b"\r\n");
    }
    cases.push(refused("many-chunks", many, 413));
    cases
}

/// Sends `case` and its canary in one write, reads what comes back.
fn run(paddock: &Paddock, case: &Case) -> (Answer, bool) {
    let mut conn = RawConn::connect(paddock.http);
    conn.stream()
        .set_read_timeout(Some(Duration::from_secs(8)))
        .unwrap();
    let mut bytes = case.request.clone();
    bytes.extend_from_slice(canary(case.name).as_bytes());
    // The server may close (and reset) while a long request is still being written.
    let _ = conn.send(&bytes);
    let answer = match read_final(&mut conn) {
        Some(response) => Answer::Status(response.status),
        None => Answer::Closed,
    };
    let canary_answered = match read_final(&mut conn) {
        Some(response) => {
            assert_eq!(
                response.text().trim(),
                format!("marked {}-canary", case.name),
                "{}: the second response is the canary's",
                case.name
            );
            true
        }
        None => false,
    };
    (answer, canary_answered)
}

/// The next final (non-1xx) response.
fn read_final(conn: &mut RawConn) -> Option<RawResponse> {
    loop {
        let response = conn.read_response()?;
        if !(100..200).contains(&response.status) {
            return Some(response);
        }
    }
}

#[test]
fn malformed_and_ambiguous_requests_never_smuggle_a_request_to_the_worker() {
    require_php_cgi();
    let marks = MarkLog::new();
    let paddock = Paddock::start(&format!(
        "[limits]\nmax_body = \"{MAX_BODY}\"\nbody_memory = \"{MAX_BODY}\"\nrequest_body_min_rate = 0\n\
         [timeouts]\nrequest_body = \"3s\"\nrequest_header = \"3s\"\n{}",
        php_site(&test_site(), 2, &marks.pool_env())
    ));
    let cases = cases();
    assert!(cases.len() >= 40, "the table has {} cases", cases.len());
    let mut mismatches = Vec::new();
    for case in &cases {
        let (answer, canary_answered) = run(&paddock, case);
        let mut expected_marks: Vec<Mark> = Vec::new();
        if let Some((method, body)) = &case.seen {
            expected_marks.push(Mark::new(case.name, method, body));
        }
        if case.canary {
            expected_marks.push(Mark::new(&format!("{}-canary", case.name), "GET", b""));
        }
        let seen = marks.marks_of(case.name);
        if answer != case.answer || canary_answered != case.canary || seen != expected_marks {
            mismatches.push(format!(
                "{}: answer {answer:?} (want {:?}), canary answered {canary_answered} (want {}), \
                 worker saw {seen:?} (want {expected_marks:?})",
                case.name, case.answer, case.canary
            ));
        }
    }
    let smuggled: Vec<Mark> = marks
        .marks()
        .into_iter()
        .filter(|m| m.marker.ends_with("-smuggled"))
        .collect();
    assert!(
        smuggled.is_empty(),
        "requests carved out of bodies reached the worker: {smuggled:?}"
    );
    assert!(
        mismatches.is_empty(),
        "{} of {} cases differ:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n")
    );
    // Everything the worker ran was one of the table's requests or canaries.
    let names: Vec<&str> = cases.iter().map(|c| c.name).collect();
    for mark in marks.marks() {
        let base = mark.marker.trim_end_matches("-canary");
        assert!(names.contains(&base), "unexpected request {mark:?}");
    }
}

/// After a 400 that paddock answers itself for a malformed request, nothing more is read from the
/// connection (nginx does the same): the response says `Connection: close`, the pipelined canary
/// is neither answered nor run, and the connection closes. A 400 from the application is an
/// ordinary answer: the canary behind it is served.
#[test]
fn a_request_rejected_as_malformed_closes_the_connection() {
    require_php_cgi();
    let marks = MarkLog::new();
    let paddock = Paddock::start(&php_site(&test_site(), 1, &marks.pool_env()));
    let rejected: [(&str, &[u8]); 7] = [
        ("no-host", b"GET /marklog.php?m=no-host HTTP/1.1\r\n\r\n"),
        (
            "two-hosts",
            b"GET /marklog.php?m=two-hosts HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n",
        ),
        (
            "host-with-space",
            b"GET /marklog.php?m=host-with-space HTTP/1.1\r\nHost: local host\r\n\r\n",
        ),
        (
            "host-with-userinfo",
            b"GET /marklog.php?m=host-with-userinfo HTTP/1.1\r\nHost: user@localhost\r\n\r\n",
        ),
        (
            "path-above-root",
            b"GET /../marklog.php?m=path-above-root HTTP/1.1\r\nHost: localhost\r\n\r\n",
        ),
        (
            "nul-in-path",
            b"GET /marklog.php%00?m=nul-in-path HTTP/1.1\r\nHost: localhost\r\n\r\n",
        ),
        // No version, and the canary right behind the request line.
        ("http09", b"GET /marklog.php?m=http09\r\n"),
    ];
    let mut failures = Vec::new();
    for (name, request) in rejected {
        let mut conn = RawConn::connect(paddock.http);
        let mut bytes = request.to_vec();
        bytes.extend_from_slice(canary(name).as_bytes());
        conn.send(&bytes).unwrap();
        let response = conn.read_response();
        let status = response.as_ref().map(|r| r.status);
        let connection = response
            .as_ref()
            .and_then(|r| r.header("connection"))
            .map(str::to_owned);
        // Closed with nothing more sent: the canary was not answered.
        let closed = conn.closed_within(PATIENCE);
        if status != Some(400) || connection.as_deref() != Some("close") || !closed {
            failures.push(format!(
                "{name}: status {status:?}, Connection {connection:?}, closed without another \
                 response {closed}"
            ));
        }
    }
    let ran: Vec<Mark> = marks.marks();
    assert!(
        failures.is_empty() && ran.is_empty(),
        "after a rejected request the connection must close unused:\n{}\nthe worker ran {ran:?}",
        failures.join("\n")
    );

    // mark.php answers 400 itself when its file name does not end in `.mark`.
    let mut conn = RawConn::connect(paddock.http);
    let mut bytes = b"GET /mark.php?file=app-400 HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec();
    bytes.extend_from_slice(canary("app-400").as_bytes());
    conn.send(&bytes).unwrap();
    let response = conn.read_response().expect("the application's answer");
    assert_eq!(response.status, 400);
    assert_eq!(response.header("connection"), None);
    let canary = conn.read_response().expect("the canary's answer");
    assert_eq!(canary.text().trim(), "marked app-400-canary");
}

#[test]
fn the_authority_of_an_absolute_form_target_wins_over_host() {
    require_php_cgi();
    let paddock = Paddock::start(&php_site(&test_site(), 1, ""));
    let mut conn = RawConn::connect(paddock.http);
    conn.send(b"GET http://target.example/echo.php HTTP/1.1\r\nHost: header.example\r\n\r\n")
        .unwrap();
    let response = conn.read_response().unwrap();
    assert_eq!(response.status, 200);
    let seen: serde_json::Value = serde_json::from_str(&response.text()).unwrap();
    assert_eq!(seen["server"]["HTTP_HOST"], "target.example");
    assert_eq!(seen["server"]["SERVER_NAME"], "target.example");
}
