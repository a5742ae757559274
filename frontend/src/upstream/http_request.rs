//! The HTTP/1.1 request an HTTP pool's worker gets (`protocol = "http"`). It is what the CGI
//! variables every other pool's request is made of would say ([`write_head`] reads them), so
//! that the request is sanitised by the rules of one place (`protocol::cgi::encode_params`: no
//! `Proxy` header, no header name with an underscore, no CR or LF in a value). A script request
//! is written straight from what those variables are made of ([`write_head_for`]: the same
//! bytes, a test holds the two to that), which spares encoding thirty variables only to parse
//! eight of them back: 0.9 µs of the front end's 15 a request (docs/benchmarks.md).
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

use std::borrow::Cow;

use http::header::{self, HeaderName};
use http::HeaderMap;
use protocol::cgi::{self, push_escaped, CgiRequest, StackText};
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
    push_request_line(out, request.method, target);
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
    let forwarding = Forwarding {
        earlier: request.forwarded_for,
        client: request.remote_addr,
        https: request.https,
        prefix,
        request_id: request.request_id,
    };
    forwarding.push(out, kept);
    Ok(request.method == b"HEAD")
}

/// `METHOD /target HTTP/1.1` and its line end.
fn push_request_line(out: &mut Vec<u8>, method: &[u8], target: &[u8]) {
    out.extend_from_slice(method);
    out.push(b' ');
    if !target.starts_with(b"/") {
        out.push(b'/');
    }
    out.extend_from_slice(target);
    out.extend_from_slice(b" HTTP/1.1\r\n");
}

/// The headers paddock adds after the client's, as a proxy in front of the worker, and the
/// head's end.
struct Forwarding<'a> {
    /// The `X-Forwarded-For` the request came with.
    earlier: Option<&'a [u8]>,
    client: &'a [u8],
    https: bool,
    /// The mount's prefix taken off the target.
    prefix: Option<&'a [u8]>,
    request_id: Option<&'a [u8]>,
}

impl Forwarding<'_> {
    /// Appends them, with `Connection: close` unless the connection is `kept`.
    fn push(&self, out: &mut Vec<u8>, kept: bool) {
        match self.earlier {
            Some(earlier) => push_header(out, b"x-forwarded-for", &[earlier, b", ", self.client]),
            None => push_header(out, b"x-forwarded-for", &[self.client]),
        }
        let proto: &[u8] = if self.https { b"https" } else { b"http" };
        push_header(out, b"x-forwarded-proto", &[proto]);
        if let Some(prefix) = self.prefix {
            push_header(out, b"x-forwarded-prefix", &[prefix]);
        }
        if let Some(id) = self.request_id {
            push_header(out, b"x-request-id", &[id]);
        }
        if !kept {
            push_header(out, b"connection", &[b"close"]);
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// [`write_head`] for the variables [`cgi::encode_params`] would make of `request`, written
/// straight from it: the same bytes (a test holds the two to that), without encoding thirty
/// variables that are then parsed back for the eight the head is made of, which was about a
/// tenth of the front end's own work on a proxied request. The extra variables (`.htaccess`
/// ones, X-Sendfile's, the request id) never name the request's own (`buffered::may_set`):
/// only their `HTTP_*` ones, `HTTP_HOST` and `HTTP_X_FORWARDED_FOR` among them, and the id count.
pub(crate) fn write_head_for(
    request: &CgiRequest<'_>,
    kept: bool,
    out: &mut Vec<u8>,
) -> Result<bool, String> {
    let passed = PassedVariables::of(request);
    let target = Request {
        method: request.method.as_bytes(),
        request_uri: request.request_uri.as_bytes(),
        script_name: request.script_name.as_bytes(),
        ..Request::default()
    };
    if target.method.is_empty() || !target.request_uri.starts_with(b"/") {
        return Err("a request without a method or an origin-form target".into());
    }
    let (path, prefix) = target.target();
    out.reserve(512);
    push_request_line(out, target.method, path);
    if !passed.host {
        push_header(out, b"host", &[&escaped(request.server_name.as_bytes())]);
    }
    if let Some(content_type) = request.headers.get(header::CONTENT_TYPE) {
        if !content_type.is_empty() {
            push_header(out, b"content-type", &[&escaped(content_type.as_bytes())]);
        }
    }
    let has_body_header = request.headers.contains_key(header::CONTENT_LENGTH)
        || request.headers.contains_key(header::TRANSFER_ENCODING);
    if request.content_length > 0 || has_body_header {
        let length = StackText::number(request.content_length);
        push_header(out, b"content-length", &[length.as_bytes()]);
    }
    for name in request.headers.keys() {
        if header_passes(request.headers, name) && !header_not_passed(name) {
            push_joined_values(out, request.headers, name);
        }
    }
    for (name, value) in request.extra {
        if let Some(header) = name.as_bytes().strip_prefix(b"HTTP_") {
            if !NOT_PASSED.contains(&name.as_bytes()) {
                let value = escaped(value.as_bytes());
                push_cgi_named_header(out, &escaped(header), &value);
            }
        }
    }
    let client = StackText::ip(request.remote_addr.ip());
    let forwarding = Forwarding {
        earlier: passed.forwarded_for.as_deref(),
        client: client.as_bytes(),
        https: request.https,
        prefix,
        request_id: passed.request_id.as_deref(),
    };
    forwarding.push(out, kept);
    Ok(request.method == "HEAD")
}

/// `value` as `encode_params` writes it into a variable: forbidden bytes escaped (a copy only
/// then).
fn escaped(value: &[u8]) -> Cow<'_, [u8]> {
    if cgi::contains_forbidden(value) {
        let mut copy = Vec::with_capacity(value.len() + 8);
        push_escaped(&mut copy, value);
        Cow::Owned(copy)
    } else {
        Cow::Borrowed(value)
    }
}

/// What [`write_head`] would have read from the variables besides the request line: whether
/// an `HTTP_HOST` came through, and the last `HTTP_X_FORWARDED_FOR` and `PADDOCK_REQUEST_ID`
/// (the header's own comes first, the extra variables after it, as `encode_params` orders them).
struct PassedVariables<'a> {
    host: bool,
    /// As the variable holds it (a copy only for a repeated header or an escaped value).
    forwarded_for: Option<Cow<'a, [u8]>>,
    request_id: Option<Cow<'a, [u8]>>,
}

impl<'a> PassedVariables<'a> {
    fn of(request: &'a CgiRequest<'a>) -> Self {
        let headers = request.headers;
        let mut passed = PassedVariables {
            host: header_passes(headers, &header::HOST),
            forwarded_for: None,
            request_id: None,
        };
        if header_passes(headers, &X_FORWARDED_FOR) {
            let mut values = headers.get_all(&X_FORWARDED_FOR).iter();
            passed.forwarded_for = match (values.next(), values.next()) {
                (Some(only), None) => Some(Cow::Borrowed(only.as_bytes())),
                _ => {
                    let mut joined = Vec::new();
                    join_values(&mut joined, headers, &X_FORWARDED_FOR);
                    Some(Cow::Owned(joined))
                }
            };
        }
        for (name, value) in request.extra {
            match *name {
                "HTTP_HOST" => passed.host = true,
                "HTTP_X_FORWARDED_FOR" => passed.forwarded_for = Some(escaped(value.as_bytes())),
                "PADDOCK_REQUEST_ID" => passed.request_id = Some(escaped(value.as_bytes())),
                _ => {}
            }
        }
        passed
    }
}

/// Whether `encode_params` makes an `HTTP_*` variable of the header `name` (present, a name
/// that may pass, no forbidden byte in any of its values).
fn header_passes(headers: &HeaderMap, name: &HeaderName) -> bool {
    let mut values = headers.get_all(name).iter().peekable();
    values.peek().is_some()
        && name != header::CONTENT_TYPE
        && name != header::CONTENT_LENGTH
        && cgi::http_variable_allowed(name)
        && !values.any(|v| cgi::contains_forbidden(v.as_bytes()))
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Whether the request header `name` (letters, digits and '-', as [`header_passes`] lets
/// through) is one of [`NOT_PASSED`], whose names are in CGI form.
fn header_not_passed(name: &HeaderName) -> bool {
    let name = name.as_str().as_bytes();
    NOT_PASSED.iter().any(|cgi| {
        let cgi = &cgi[b"HTTP_".len()..];
        cgi.len() == name.len()
            && cgi
                .iter()
                .zip(name)
                .all(|(&c, &n)| c == n.to_ascii_uppercase() || (c == b'_' && n == b'-'))
    })
}

/// `name: value, value` for every value of a header, joined as `encode_params` joins them.
fn push_joined_values(out: &mut Vec<u8>, headers: &HeaderMap, name: &HeaderName) {
    out.extend_from_slice(name.as_str().as_bytes());
    out.extend_from_slice(b": ");
    join_values(out, headers, name);
    out.extend_from_slice(b"\r\n");
}

fn join_values(out: &mut Vec<u8>, headers: &HeaderMap, name: &HeaderName) {
    // Cookie is the one field whose own syntax uses "; " between repeats (RFC 6265 §5.4).
    let separator: &[u8] = if name == header::COOKIE { b"; " } else { b", " };
    for (i, value) in headers.get_all(name).iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(separator);
        }
        out.extend_from_slice(value.as_bytes());
    }
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

    /// A head written, or why not: whether it is a HEAD request's, and its text.
    type Head = Result<(bool, String), String>;

    /// A request as the front end holds it, for the direct writer and the CGI route alike.
    struct Held {
        method: &'static str,
        request_uri: &'static str,
        script_name: &'static str,
        remote: &'static str,
        https: bool,
        content_length: u64,
        headers: Vec<(&'static str, &'static str)>,
        extra: Vec<(&'static str, &'static str)>,
    }

    impl Held {
        fn get(request_uri: &'static str) -> Held {
            Held {
                method: "GET",
                request_uri,
                script_name: "",
                remote: "192.0.2.9:50000",
                https: false,
                content_length: 0,
                headers: vec![("host", "example.test")],
                extra: vec![("PADDOCK_REQUEST_ID", "7f3a-1")],
            }
        }

        /// The head both ways: straight from the request, and through its CGI variables.
        fn heads(&self, kept: bool) -> (Head, Head) {
            let mut headers = http::HeaderMap::new();
            for (name, value) in &self.headers {
                headers.append(
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    http::HeaderValue::from_str(value).unwrap(),
                );
            }
            let request = CgiRequest {
                method: self.method,
                request_uri: self.request_uri,
                query_string: self.request_uri.split_once('?').map_or("", |(_, q)| q),
                document_root: "/srv/site",
                script_name: self.script_name,
                script_filename: None,
                path_info: "",
                server_name: "site.test",
                server_addr: "127.0.0.1:8080".parse().unwrap(),
                remote_addr: self.remote.parse().unwrap(),
                https: self.https,
                server_protocol: "HTTP/1.1",
                redirect_status: 200,
                content_length: self.content_length,
                headers: &headers,
                extra: &self.extra,
            };
            let text = |out: Vec<u8>| String::from_utf8(out).unwrap();
            let mut direct = Vec::new();
            let direct = write_head_for(&request, kept, &mut direct).map(|h| (h, text(direct)));
            let mut params = Vec::new();
            cgi::encode_params(&request, &mut params);
            let mut routed = Vec::new();
            let routed = write_head(&params, kept, &mut routed).map(|h| (h, text(routed)));
            (direct, routed)
        }
    }

    #[test]
    fn the_head_written_straight_is_the_one_the_cgi_variables_make() {
        let mut cases = vec![Held::get("/"), Held::get("/a/b?c=d&e")];
        let mut post = Held::get("/shop/cart/add?id=7");
        post.method = "POST";
        post.script_name = "/shop";
        post.https = true;
        post.content_length = 4;
        post.headers.extend([
            ("content-type", "application/x-www-form-urlencoded"),
            ("content-length", "4"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
            ("accept", "text/html"),
            ("accept", "application/json"),
            ("x_auth", "underscored"),
            ("proxy", "http://evil.test"),
            ("connection", "keep-alive"),
            ("te", "trailers"),
            ("expect", "100-continue"),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-prefix", "/evil"),
            ("x-request-id", "chosen-by-client"),
            ("x-forwarded-for", "203.0.113.1"),
            ("x-forwarded-for", "198.51.100.2"),
            ("x-empty", ""),
        ]);
        post.extra.extend([
            ("HTTP_X_SENDFILE_TYPE", "X-Accel-Redirect"),
            ("HTTP_AUTHORIZATION", "Basic Zm9vOmJhcg=="),
            ("PHP_VALUE", "memory_limit=1G"),
            ("REMOTE_USER", "alice"),
            ("HTTP_X_NOTE", "line\r\nbreak"),
        ]);
        cases.push(post);
        let mut bare = Held::get("/app");
        bare.script_name = "/app";
        bare.headers.clear();
        bare.remote = "[::ffff:192.0.2.7]:4000";
        bare.extra.extend([
            ("HTTP_HOST", "from-env.test"),
            ("HTTP_X_FORWARDED_FOR", "10.0.0.1"),
        ]);
        cases.push(bare);
        let mut head = Held::get("/apple?x");
        head.method = "HEAD";
        head.script_name = "/app";
        head.headers = vec![("transfer-encoding", "chunked"), ("upgrade", "h2c")];
        head.remote = "[2001:db8::1]:443";
        head.extra.clear();
        cases.push(head);
        let mut refused = Held::get("*");
        refused.method = "OPTIONS";
        cases.push(refused);
        for (i, case) in cases.iter().enumerate() {
            for kept in [true, false] {
                let (direct, routed) = case.heads(kept);
                assert_eq!(direct, routed, "case {i}, kept {kept}");
            }
        }
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
