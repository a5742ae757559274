//! The HTTP/1.1 request an HTTP pool's worker gets (`protocol = "http"`), written from the CGI
//! variables every pool's request is first turned into, so that the one place where requests
//! are sanitised (`protocol::cgi::encode_params`: no `Proxy` header, no header name with an
//! underscore, no CR or LF in a value) stays the only one.
//!
//! The worker is an HTTP server behind a proxy, as gunicorn or uWSGI behind nginx's
//! `proxy_pass`, and learns what the CGI variables would have told it the way such servers do:
//!
//! - `X-Forwarded-For`: the client's address, after any the request already carried (the
//!   rightmost value is paddock's, the one a proxy-aware application trusts);
//! - `X-Forwarded-Proto`: `https` or `http`, replacing any the client sent;
//! - `X-Forwarded-Prefix`: the mount's prefix (`SCRIPT_NAME`), which is taken off the request
//!   target, so the application sees the path below its mount, as `PATH_INFO`;
//! - `X-Request-Id`: paddock's request id, the one in its log.
//!
//! Hop-by-hop headers (`Connection`, `Keep-Alive`, `TE`, `Upgrade`, …) and `Expect` are the front
//! end's business and are not passed on: the body is already complete, and the connection to
//! the worker is kept for the slot's next request whatever the client asked of its own (unless
//! an external pool keeps no connections: then the worker gets `Connection: close`).

use protocol::fcgi;

/// Headers the worker does not get from the client: hop-by-hop ones (RFC 9110 §7.6.1), `Expect`
/// (the front end has answered it), and those paddock writes itself. In CGI form.
const NOT_PASSED: &[&[u8]] = &[
    b"HTTP_CONNECTION",
    b"HTTP_KEEP_ALIVE",
    b"HTTP_PROXY_CONNECTION",
    b"HTTP_TE",
    b"HTTP_TRAILER",
    b"HTTP_TRANSFER_ENCODING",
    b"HTTP_UPGRADE",
    b"HTTP_HTTP2_SETTINGS",
    b"HTTP_EXPECT",
    b"HTTP_X_FORWARDED_FOR",
    b"HTTP_X_FORWARDED_PROTO",
    b"HTTP_X_FORWARDED_PREFIX",
    b"HTTP_X_REQUEST_ID",
];

/// The variables the request line and paddock's own headers are made of.
#[derive(Default)]
struct Request<'a> {
    method: &'a [u8],
    request_uri: &'a [u8],
    script_name: &'a [u8],
    server_name: &'a [u8],
    remote_addr: &'a [u8],
    https: bool,
    forwarded_for: Option<&'a [u8]>,
    has_host: bool,
    request_id: Option<&'a [u8]>,
}

impl<'a> Request<'a> {
    fn from_params(params: &'a [u8]) -> Result<Self, String> {
        let mut request = Request::default();
        for pair in fcgi::name_values(params) {
            let (name, value) = pair.map_err(|e| e.to_string())?;
            match name {
                b"REQUEST_METHOD" => request.method = value,
                b"REQUEST_URI" => request.request_uri = value,
                b"SCRIPT_NAME" => request.script_name = value,
                b"SERVER_NAME" => request.server_name = value,
                b"REMOTE_ADDR" => request.remote_addr = value,
                b"HTTPS" => request.https = value.eq_ignore_ascii_case(b"on"),
                b"HTTP_X_FORWARDED_FOR" => request.forwarded_for = Some(value),
                b"HTTP_HOST" => request.has_host = true,
                b"PADDOCK_REQUEST_ID" => request.request_id = Some(value),
                _ => {}
            }
        }
        if request.method.is_empty() || !request.request_uri.starts_with(b"/") {
            return Err("a request without a method or an origin-form target".into());
        }
        Ok(request)
    }

    /// The request target below the mount, and the prefix taken off it. A target that does not
    /// start with `SCRIPT_NAME` as sent (a prefix written with percent-escapes) goes whole, with
    /// no prefix, rather than cut in the wrong place.
    fn target(&self) -> (&'a [u8], Option<&'a [u8]>) {
        let prefix = self.script_name;
        match self.request_uri.strip_prefix(prefix) {
            Some(rest)
                if !prefix.is_empty() && matches!(rest.first(), None | Some(b'/' | b'?')) =>
            {
                (rest, Some(prefix))
            }
            _ => (self.request_uri, None),
        }
    }
}

/// Appends the request head (request line, headers, blank line) for the FastCGI-encoded CGI
/// variables `params` to `out`, with `Connection: close` unless the connection is to be `kept`.
/// Returns whether the request is a HEAD (whose answer has no body whatever its headers say);
/// `Err` for variables that make no request.
pub(crate) fn write_head(params: &[u8], kept: bool, out: &mut Vec<u8>) -> Result<bool, String> {
    let request = Request::from_params(params)?;
    let (target, prefix) = request.target();
    out.reserve(params.len() + 128);
    out.extend_from_slice(request.method);
    out.push(b' ');
    if !target.starts_with(b"/") {
        out.push(b'/');
    }
    out.extend_from_slice(target);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !request.has_host {
        // An HTTP/1.0 client may send none; HTTP/1.1 requires one.
        push_header(out, b"host", &[request.server_name]);
    }
    for pair in fcgi::name_values(params) {
        let (name, value) = pair.map_err(|e| e.to_string())?;
        match name {
            b"CONTENT_TYPE" if !value.is_empty() => push_header(out, b"content-type", &[value]),
            b"CONTENT_LENGTH" if !value.is_empty() => push_header(out, b"content-length", &[value]),
            _ if NOT_PASSED.contains(&name) => {}
            _ => {
                if let Some(header) = name.strip_prefix(b"HTTP_") {
                    push_cgi_named_header(out, header, value);
                }
            }
        }
    }
    match request.forwarded_for {
        Some(earlier) => push_header(
            out,
            b"x-forwarded-for",
            &[earlier, b", ", request.remote_addr],
        ),
        None => push_header(out, b"x-forwarded-for", &[request.remote_addr]),
    }
    let proto: &[u8] = if request.https { b"https" } else { b"http" };
    push_header(out, b"x-forwarded-proto", &[proto]);
    if let Some(prefix) = prefix {
        push_header(out, b"x-forwarded-prefix", &[prefix]);
    }
    if let Some(id) = request.request_id {
        push_header(out, b"x-request-id", &[id]);
    }
    if !kept {
        push_header(out, b"connection", &[b"close"]);
    }
    out.extend_from_slice(b"\r\n");
    Ok(request.method == b"HEAD")
}

/// `name: value` and its line end, the value in pieces.
fn push_header(out: &mut Vec<u8>, name: &[u8], value: &[&[u8]]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    for piece in value {
        out.extend_from_slice(piece);
    }
    out.extend_from_slice(b"\r\n");
}

/// A header whose name comes in CGI form (`X_FOO` for `x-foo`): the CGI variables only hold
/// names of letters, digits and '-' (as '_'), so the way back is exact up to case.
fn push_cgi_named_header(out: &mut Vec<u8>, cgi_name: &[u8], value: &[u8]) {
    out.extend(cgi_name.iter().map(|&b| match b {
        b'_' => b'-',
        other => other.to_ascii_lowercase(),
    }));
    push_header(out, b"", &[value]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::fcgi::encode_name_value;

    fn head(pairs: &[(&str, &str)]) -> (String, bool) {
        let mut params = Vec::new();
        for (name, value) in pairs {
            encode_name_value(&mut params, name.as_bytes(), value.as_bytes());
        }
        let mut out = b"kept".to_vec();
        let head_request = write_head(&params, true, &mut out).unwrap();
        assert!(out.starts_with(b"kept"), "appends");
        (String::from_utf8(out[4..].to_vec()).unwrap(), head_request)
    }

    const BASE: &[(&str, &str)] = &[
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("REQUEST_METHOD", "POST"),
        ("REQUEST_URI", "/shop/cart/add?id=7&q=a%20b"),
        ("QUERY_STRING", "id=7&q=a%20b"),
        ("SCRIPT_NAME", "/shop"),
        ("PATH_INFO", "/cart/add"),
        ("SERVER_NAME", "example.test"),
        ("REMOTE_ADDR", "192.0.2.9"),
        ("REMOTE_PORT", "50000"),
        ("REQUEST_SCHEME", "https"),
        ("HTTPS", "on"),
        ("CONTENT_TYPE", "application/x-www-form-urlencoded"),
        ("CONTENT_LENGTH", "4"),
        ("HTTP_HOST", "example.test:8443"),
        ("HTTP_COOKIE", "a=1; b=2"),
        ("HTTP_X_CUSTOM_THING", "yes"),
        ("HTTP_CONNECTION", "keep-alive"),
        ("HTTP_EXPECT", "100-continue"),
        ("HTTP_X_FORWARDED_PROTO", "http"),
        ("HTTP_X_FORWARDED_PREFIX", "/evil"),
        ("HTTP_X_REQUEST_ID", "chosen-by-client"),
        ("PADDOCK_REQUEST_ID", "7f3a"),
        ("REMOTE_USER", "not-a-header"),
    ];

    #[test]
    fn the_request_is_the_clients_below_its_mount_with_forwarded_headers() {
        let (text, head_request) = head(BASE);
        assert_eq!(
            text,
            "POST /cart/add?id=7&q=a%20b HTTP/1.1\r\n\
             content-type: application/x-www-form-urlencoded\r\n\
             content-length: 4\r\n\
             host: example.test:8443\r\n\
             cookie: a=1; b=2\r\n\
             x-custom-thing: yes\r\n\
             x-forwarded-for: 192.0.2.9\r\n\
             x-forwarded-proto: https\r\n\
             x-forwarded-prefix: /shop\r\n\
             x-request-id: 7f3a\r\n\
             \r\n"
        );
        assert!(!head_request);
    }

    #[test]
    fn a_connection_not_kept_is_closed_by_the_request_whatever_the_client_asked() {
        let mut pairs = BASE.to_vec();
        pairs.push(("HTTP_CONNECTION", "keep-alive"));
        let mut params = Vec::new();
        for (name, value) in &pairs {
            encode_name_value(&mut params, name.as_bytes(), value.as_bytes());
        }
        let mut out = Vec::new();
        write_head(&params, false, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("\r\nconnection: close\r\n\r\n"), "{text}");
        assert_eq!(text.matches("onnection:").count(), 1, "{text}");
        let (kept, _) = head(&pairs);
        assert!(!kept.contains("onnection:"), "{kept}");
    }

    #[test]
    fn an_earlier_proxys_addresses_come_first() {
        let mut pairs = BASE.to_vec();
        pairs.push(("HTTP_X_FORWARDED_FOR", "203.0.113.1, 198.51.100.2"));
        let (text, _) = head(&pairs);
        assert!(
            text.contains("\r\nx-forwarded-for: 203.0.113.1, 198.51.100.2, 192.0.2.9\r\n"),
            "{text}"
        );
        assert_eq!(text.matches("x-forwarded-for").count(), 1, "{text}");
    }

    #[test]
    fn the_target_loses_the_prefix_only_where_it_is_one() {
        let target = |uri: &str, script_name: &str| {
            let (text, _) = head(&[
                ("REQUEST_METHOD", "GET"),
                ("REQUEST_URI", uri),
                ("SCRIPT_NAME", script_name),
                ("HTTP_HOST", "h"),
                ("REMOTE_ADDR", "::1"),
            ]);
            let line = text.lines().next().unwrap().to_string();
            let prefix = text
                .lines()
                .find_map(|l| l.strip_prefix("x-forwarded-prefix: "))
                .map(str::to_string);
            (line, prefix)
        };
        let at_root = |uri: &str| (format!("GET {uri} HTTP/1.1"), None);
        assert_eq!(target("/a/b?c", ""), at_root("/a/b?c"));
        assert_eq!(
            target("/app", "/app"),
            ("GET / HTTP/1.1".into(), Some("/app".into()))
        );
        assert_eq!(
            target("/app?x=1", "/app"),
            ("GET /?x=1 HTTP/1.1".into(), Some("/app".into()))
        );
        assert_eq!(
            target("/app/x/", "/app"),
            ("GET /x/ HTTP/1.1".into(), Some("/app".into()))
        );
        // Not a path segment of its own, or spelt otherwise: the whole target, no prefix.
        assert_eq!(target("/apple", "/app"), at_root("/apple"));
        assert_eq!(target("/%61pp/x", "/app"), at_root("/%61pp/x"));
    }

    #[test]
    fn a_request_without_host_gets_the_server_name_and_head_is_told() {
        let (text, head_request) = head(&[
            ("REQUEST_METHOD", "HEAD"),
            ("REQUEST_URI", "/"),
            ("SERVER_NAME", "site.test"),
            ("REMOTE_ADDR", "127.0.0.1"),
            ("CONTENT_LENGTH", ""),
        ]);
        assert!(head_request);
        assert_eq!(
            text,
            "HEAD / HTTP/1.1\r\nhost: site.test\r\nx-forwarded-for: 127.0.0.1\r\n\
             x-forwarded-proto: http\r\n\r\n"
        );
    }

    #[test]
    fn variables_that_make_no_request_are_refused() {
        let mut params = Vec::new();
        encode_name_value(&mut params, b"REQUEST_METHOD", b"GET");
        encode_name_value(&mut params, b"REQUEST_URI", b"*");
        assert!(write_head(&params, true, &mut Vec::new()).is_err());
        assert!(write_head(&[0x05], true, &mut Vec::new()).is_err());
    }
}
