//! Tests for CGI response-head parsing.

use http::StatusCode;

use super::{parse_response_head, response_head_end, CgiResponseHead, ResponseError, ResponseKind};

const MAX: usize = 8192;

/// Parses a complete head and checks that it occupies exactly `head.len()` bytes of `head + body`.
fn parse(head: &str) -> CgiResponseHead {
    let mut buf = head.as_bytes().to_vec();
    buf.extend_from_slice(b"<html>body</html>");
    let (parsed, used) = parse_response_head(&buf, MAX)
        .expect("valid head")
        .expect("complete head");
    assert_eq!(used, head.len());
    parsed
}

fn error(head: &str) -> ResponseError {
    parse_response_head(head.as_bytes(), MAX).expect_err("invalid head")
}

#[test]
fn php_cgi_head() {
    let head = parse(
        "X-Powered-By: PHP/8.2\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\
         Content-type: text/html; charset=UTF-8\r\n\r\n",
    );
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.reason, None);
    assert_eq!(head.kind, ResponseKind::Document);
    assert_eq!(head.headers["x-powered-by"], "PHP/8.2");
    assert_eq!(head.headers["content-type"], "text/html; charset=UTF-8");
    let cookies: Vec<_> = head.headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    assert_eq!(head.headers.len(), 4);
}

#[test]
fn status_with_custom_reason() {
    let head = parse("Status: 403 Login failed\r\nContent-Type: text/plain\r\n\r\n");
    assert_eq!(head.status, StatusCode::FORBIDDEN);
    assert_eq!(head.reason.as_deref(), Some("Login failed"));
    assert_eq!(head.kind, ResponseKind::Document);
    assert!(head.headers.get("status").is_none());
}

#[test]
fn canonical_or_missing_reason_is_not_kept() {
    for head in [
        "Status: 404 Not Found\n\n",
        "Status: 404 not found\n\n",
        "Status: 404\n\n",
        "Status: 404 \n\n",
        "status:404\n\n",
    ] {
        let parsed = parse(head);
        assert_eq!(parsed.status, StatusCode::NOT_FOUND, "{head:?}");
        assert_eq!(parsed.reason, None, "{head:?}");
    }
    // A code without a canonical reason keeps whatever reason it was given.
    let parsed = parse("Status: 599 Custom\n\n");
    assert_eq!(parsed.status.as_u16(), 599);
    assert_eq!(parsed.reason.as_deref(), Some("Custom"));
}

#[test]
fn bad_status_values() {
    for value in [
        "", "20", "2000", "abc", "99", "600", "099", "2x0", "200x", "-20", "+200", "1e2",
    ] {
        assert_eq!(
            error(&format!("Status: {value}\r\n\r\n")),
            ResponseError::BadStatus,
            "{value:?}"
        );
    }
}

#[test]
fn duplicate_status_is_rejected() {
    assert_eq!(
        error("Status: 200\r\nStatus: 500\r\n\r\n"),
        ResponseError::DuplicateStatus
    );
}

#[test]
fn default_status_is_200() {
    let head = parse("Content-Type: text/plain\r\n\r\n");
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.kind, ResponseKind::Document);
}

#[test]
fn empty_head_is_a_document() {
    let head = parse("\r\n");
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.headers.is_empty());
    let head = parse("\n");
    assert_eq!(head.kind, ResponseKind::Document);
}

#[test]
fn bare_lf_and_mixed_line_endings() {
    let head = parse("Status: 201 Created\nX-A: 1\r\nX-B: 2\n\r\n");
    assert_eq!(head.status, StatusCode::CREATED);
    assert_eq!(head.headers["x-a"], "1");
    assert_eq!(head.headers["x-b"], "2");
}

#[test]
fn local_redirect() {
    let head = parse("Location: /login.php?next=%2F\r\n\r\n");
    assert_eq!(
        head.kind,
        ResponseKind::LocalRedirect("/login.php?next=%2F".to_owned())
    );
    assert_eq!(head.status, StatusCode::OK);
}

#[test]
fn local_path_with_other_headers_is_a_client_redirect() {
    let head = parse("Location: /login.php\r\nContent-Type: text/html\r\n\r\n");
    assert_eq!(head.kind, ResponseKind::ClientRedirect);
    assert_eq!(head.status, StatusCode::FOUND);
}

#[test]
fn network_path_is_not_local() {
    let head = parse("Location: //evil.test/x\r\n\r\n");
    assert_eq!(head.kind, ResponseKind::ClientRedirect);
    assert_eq!(head.status, StatusCode::FOUND);
}

#[test]
fn absolute_location_without_status_is_a_302() {
    let head = parse("Location: https://example.test/next\r\n\r\n");
    assert_eq!(head.kind, ResponseKind::ClientRedirect);
    assert_eq!(head.status, StatusCode::FOUND);
    assert_eq!(head.headers["location"], "https://example.test/next");
}

#[test]
fn status_with_location_keeps_the_status() {
    let head = parse("Status: 301 Moved Permanently\r\nLocation: https://example.test/\r\n\r\n");
    assert_eq!(head.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(head.kind, ResponseKind::ClientRedirect);
    assert_eq!(head.reason, None);

    // A relative target or a non-3xx status stays a plain document.
    let head = parse("Status: 302 Found\r\nLocation: /elsewhere\r\n\r\n");
    assert_eq!(head.status, StatusCode::FOUND);
    assert_eq!(head.kind, ResponseKind::Document);
    let head = parse("Status: 201 Created\r\nLocation: https://example.test/item/1\r\n\r\n");
    assert_eq!(head.status, StatusCode::CREATED);
    assert_eq!(head.kind, ResponseKind::Document);
}

#[test]
fn hop_by_hop_headers_are_dropped() {
    let head = parse(
        "Connection: close\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\n\
         Proxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-Sum\r\nUpgrade: h2c\r\n\
         Content-Length: 5\r\nX-Kept: yes\r\n\r\n",
    );
    assert_eq!(head.headers.len(), 2);
    assert_eq!(head.headers["content-length"], "5");
    assert_eq!(head.headers["x-kept"], "yes");
}

#[test]
fn value_whitespace_is_trimmed() {
    let head = parse("X-Pad:   spaced out \t\r\nX-Empty:\r\n\r\n");
    assert_eq!(head.headers["x-pad"], "spaced out");
    assert_eq!(head.headers["x-empty"], "");
}

#[test]
fn incomplete_heads_need_more() {
    let full = b"Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nbody";
    let head_len = full.len() - 4;
    for end in 0..head_len {
        assert!(
            matches!(parse_response_head(&full[..end], MAX), Ok(None)),
            "prefix {end}"
        );
    }
    let (_, used) = parse_response_head(&full[..head_len], MAX)
        .unwrap()
        .unwrap();
    assert_eq!(used, head_len);
}

#[test]
fn head_size_limit() {
    let head = b"X-A: 1234567890\r\n\r\n";
    // Exactly at the limit is fine, one byte less is too large.
    assert!(parse_response_head(head, head.len()).unwrap().is_some());
    assert_eq!(
        parse_response_head(head, head.len() - 1).unwrap_err(),
        ResponseError::HeadTooLarge {
            limit: head.len() - 1
        }
    );
    // An unfinished head that already fills the limit can never fit.
    let partial = vec![b'x'; 100];
    let mut line = b"X-Long: ".to_vec();
    line.extend_from_slice(&partial);
    assert!(matches!(parse_response_head(&line, 200), Ok(None)));
    assert_eq!(
        parse_response_head(&line, line.len()).unwrap_err(),
        ResponseError::HeadTooLarge { limit: line.len() }
    );
}

#[test]
fn malformed_lines() {
    assert_eq!(
        error("Content-Type: text/html\r\nnot a header\r\n\r\n"),
        ResponseError::MissingColon { line: 2 }
    );
    assert_eq!(
        error("X-A: 1\r\n continued\r\n\r\n"),
        ResponseError::ObsFold { line: 2 }
    );
    assert_eq!(
        error("X-A: 1\r\n\tcontinued\r\n\r\n"),
        ResponseError::ObsFold { line: 2 }
    );
    assert_eq!(
        error(": value\r\n\r\n"),
        ResponseError::InvalidHeaderName { line: 1 }
    );
    assert_eq!(
        error("Bad Name: value\r\n\r\n"),
        ResponseError::InvalidHeaderName { line: 1 }
    );
    assert_eq!(
        error("X-A : value\r\n\r\n"),
        ResponseError::InvalidHeaderName { line: 1 }
    );
    assert_eq!(
        error("X-A: a\rb\r\n\r\n"),
        ResponseError::InvalidHeaderValue { line: 1 }
    );
    assert_eq!(
        error("X-A: a\0b\r\n\r\n"),
        ResponseError::InvalidHeaderValue { line: 1 }
    );
}

#[test]
fn malformed_lines_fail_before_the_head_ends() {
    // The worker printed a body with no head: rejected on the first line, not at max_head.
    assert_eq!(
        parse_response_head(b"<html>\n<body>", MAX).unwrap_err(),
        ResponseError::MissingColon { line: 1 }
    );
}

#[test]
fn too_many_headers_is_an_error_not_a_panic() {
    // HeaderMap holds at most 32768 distinct names; a worker must not be able to crash us.
    let mut head: String = (0..40_000).map(|i| format!("h{i}:\n")).collect();
    head.push('\n');
    let result = parse_response_head(head.as_bytes(), head.len());
    assert!(
        matches!(result, Err(ResponseError::TooManyHeaders)),
        "expected TooManyHeaders"
    );
}

#[test]
fn the_head_ends_at_its_first_blank_line_whatever_follows() {
    let head = "Status: 200 OK\r\nContent-Type: text/html\r\n\r\n";
    // A body with lines but no blank line of its own, and one with a blank line later on.
    for body in [
        "<p>one</p>\n<p>two</p>\n",
        "<p>one</p>\n\n<p>two</p>\r\n\r\n",
    ] {
        let buf = format!("{head}{body}");
        assert_eq!(response_head_end(buf.as_bytes(), MAX), Some(head.len()));
    }
    assert_eq!(response_head_end(b"A: b\n\nbody", MAX), Some(6));
    assert_eq!(response_head_end(b"\r\nbody", MAX), Some(2));
    assert_eq!(response_head_end(b"\nbody", MAX), Some(1));
}

#[test]
fn no_head_end_until_the_blank_line_arrives_within_the_limit() {
    assert_eq!(response_head_end(b"", MAX), None);
    assert_eq!(response_head_end(b"Content-Type: text/html\r\n", MAX), None);
    assert_eq!(
        response_head_end(b"Content-Type: text/html\r\n\r", MAX),
        None
    );
    let late = format!("X-Long: {}\r\n\r\n", "a".repeat(MAX));
    assert_eq!(response_head_end(late.as_bytes(), MAX), None);
}
