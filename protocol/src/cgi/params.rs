//! Building the CGI/1.1 meta-variables for one request.

use std::net::SocketAddr;

use http::header::{self, HeaderName};
use http::HeaderMap;

use super::text::{self, contains_forbidden, escaped_len, StackText};
use crate::fcgi::encode_name_value_lengths;

/// What the front end knows about one request, borrowed for the duration of [`encode_params`].
///
/// Paths arrive already routed: the front end has decided which script serves the request and
/// which part of the URL path is PATH_INFO.
#[derive(Debug)]
pub struct CgiRequest<'a> {
    pub method: &'a str,
    /// Raw path + "?" + query as the client sent it.
    pub request_uri: &'a str,
    /// Raw, without '?', "" when none.
    pub query_string: &'a str,
    pub document_root: &'a str,
    /// Decoded URL path of the script, e.g. "/index.php".
    pub script_name: &'a str,
    /// Absolute filesystem path of the script; `None` for an application mount that names no
    /// file (then no SCRIPT_FILENAME is sent, as nginx sends none unless configured).
    pub script_filename: Option<&'a str>,
    /// Decoded, "" when none.
    pub path_info: &'a str,
    pub server_name: &'a str,
    /// Local address of the accepted connection.
    pub server_addr: SocketAddr,
    pub remote_addr: SocketAddr,
    pub https: bool,
    /// "HTTP/1.1", "HTTP/2.0".
    pub server_protocol: &'a str,
    /// REDIRECT_STATUS: 200 for a request as the client sent it; the error's status when the
    /// script runs as an error page (Apache's `ErrorDocument`), so that it can tell which.
    pub redirect_status: u16,
    /// Number of body bytes actually buffered and delivered.
    pub content_length: u64,
    pub headers: &'a HeaderMap,
    /// Extra params appended verbatim (e.g. PADDOCK_REQUEST_ID).
    pub extra: &'a [(&'a str, &'a str)],
}

const SERVER_SOFTWARE: &str = concat!("paddock/", env!("CARGO_PKG_VERSION"));

/// Appends the FastCGI name-value encoding (`fcgi::encode_name_value`) of all meta-variables to
/// `out`.
///
/// Every value is written with CR, LF and NUL percent-escaped, so no variable can carry them;
/// a request header holding one is left out entirely. Headers also never pass when they could be
/// confused with another variable: `Proxy` (httpoxy), and names with anything but letters, digits
/// and '-' (so `X_Auth` cannot pose as `X-Auth`).
pub fn encode_params(req: &CgiRequest<'_>, out: &mut Vec<u8>) {
    // The names below are constants without a forbidden byte: only their values are checked.
    let put = |out: &mut Vec<u8>, name: &'static str, value: &[&[u8]]| {
        debug_assert!(!contains_forbidden(name.as_bytes()));
        put_value(out, name.as_bytes(), value)
    };

    put(out, "GATEWAY_INTERFACE", &[b"CGI/1.1"]);
    put(out, "SERVER_SOFTWARE", &[SERVER_SOFTWARE.as_bytes()]);
    put(out, "REQUEST_METHOD", &[req.method.as_bytes()]);
    put(out, "REQUEST_URI", &[req.request_uri.as_bytes()]);
    put(out, "QUERY_STRING", &[req.query_string.as_bytes()]);
    put(out, "SCRIPT_NAME", &[req.script_name.as_bytes()]);
    if let Some(filename) = req.script_filename {
        put(out, "SCRIPT_FILENAME", &[filename.as_bytes()]);
    }
    put(out, "DOCUMENT_ROOT", &[req.document_root.as_bytes()]);
    put(
        out,
        "DOCUMENT_URI",
        &[req.script_name.as_bytes(), req.path_info.as_bytes()],
    );
    if !req.path_info.is_empty() {
        put(out, "PATH_INFO", &[req.path_info.as_bytes()]);
        put(
            out,
            "PATH_TRANSLATED",
            &[
                path_translated_root(req.document_root, req.path_info).as_bytes(),
                req.path_info.as_bytes(),
            ],
        );
    }
    put(out, "SERVER_NAME", &[req.server_name.as_bytes()]);
    let server_port = StackText::number(req.server_addr.port().into());
    put(out, "SERVER_PORT", &[server_port.as_bytes()]);
    let server_ip = StackText::ip(req.server_addr.ip());
    put(out, "SERVER_ADDR", &[server_ip.as_bytes()]);
    let remote_ip = StackText::ip(req.remote_addr.ip());
    put(out, "REMOTE_ADDR", &[remote_ip.as_bytes()]);
    let remote_port = StackText::number(req.remote_addr.port().into());
    put(out, "REMOTE_PORT", &[remote_port.as_bytes()]);
    let scheme: &[u8] = if req.https { b"https" } else { b"http" };
    put(out, "REQUEST_SCHEME", &[scheme]);
    if req.https {
        put(out, "HTTPS", &[b"on"]);
    }
    put(out, "SERVER_PROTOCOL", &[req.server_protocol.as_bytes()]);
    // php-cgi built with force-cgi-redirect refuses to run without this.
    let redirect_status = StackText::number(req.redirect_status.into());
    put(out, "REDIRECT_STATUS", &[redirect_status.as_bytes()]);

    if let Some(content_type) = req.headers.get(header::CONTENT_TYPE) {
        put(out, "CONTENT_TYPE", &[content_type.as_bytes()]);
    }
    let has_body_header = req.headers.contains_key(header::CONTENT_LENGTH)
        || req.headers.contains_key(header::TRANSFER_ENCODING);
    if req.content_length > 0 || has_body_header {
        let length = StackText::number(req.content_length);
        put(out, "CONTENT_LENGTH", &[length.as_bytes()]);
    } else {
        put(out, "CONTENT_LENGTH", &[]);
    }

    for name in req.headers.keys() {
        put_http_variable(out, req.headers, name);
    }

    for (name, value) in req.extra {
        if *name == "PHP_VALUE" {
            put_ini_lines(out, value);
        } else {
            put_var(out, &[name.as_bytes()], &[value.as_bytes()]);
        }
    }
}

/// `PHP_VALUE` is php-fpm's INI text, one `name=value` a line: LF separates its settings, so it
/// stays; anything else forbidden inside a line (CR, NUL) is escaped as in every other value, so
/// no line can carry a second setting or break the record.
fn put_ini_lines(out: &mut Vec<u8>, value: &str) {
    let lines: Vec<&[u8]> = value.split('\n').map(str::as_bytes).collect();
    let value_len = lines.iter().map(|l| escaped_len(l)).sum::<usize>() + lines.len() - 1;
    encode_name_value_lengths(out, "PHP_VALUE".len(), value_len);
    out.extend_from_slice(b"PHP_VALUE");
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        text::push_escaped(out, line);
    }
}

/// The document root to put before PATH_INFO, without the trailing slash that would double the
/// one PATH_INFO starts with.
fn path_translated_root<'a>(document_root: &'a str, path_info: &str) -> &'a str {
    if path_info.starts_with('/') {
        document_root.strip_suffix('/').unwrap_or(document_root)
    } else {
        document_root
    }
}

/// Appends one variable named `name` (known to need no escaping) whose value is the
/// concatenation of some pieces. Each piece is scanned once; only a value that holds a forbidden
/// byte takes the escaping path.
fn put_value(out: &mut Vec<u8>, name: &[u8], value: &[&[u8]]) {
    if value.iter().any(|part| contains_forbidden(part)) {
        return put_escaped(out, &[name], value);
    }
    let value_len = value.iter().map(|part| part.len()).sum();
    out.reserve(8 + name.len() + value_len);
    encode_name_value_lengths(out, name.len(), value_len);
    out.extend_from_slice(name);
    for part in value {
        out.extend_from_slice(part);
    }
}

/// Appends one variable whose name and value are each the concatenation of some pieces, with
/// forbidden bytes escaped, without assembling either in a temporary buffer.
fn put_var(out: &mut Vec<u8>, name: &[&[u8]], value: &[&[u8]]) {
    match name {
        [name] if !contains_forbidden(name) => put_value(out, name, value),
        _ => put_escaped(out, name, value),
    }
}

/// [`put_var`] for a name or value that holds a forbidden byte.
fn put_escaped(out: &mut Vec<u8>, name: &[&[u8]], value: &[&[u8]]) {
    let name_len = name.iter().map(|part| escaped_len(part)).sum();
    let value_len = value.iter().map(|part| escaped_len(part)).sum();
    out.reserve(8 + name_len + value_len);
    encode_name_value_lengths(out, name_len, value_len);
    for part in name.iter().chain(value) {
        text::push_escaped(out, part);
    }
}

/// Whether a request header may become an `HTTP_*` variable.
///
/// - `Content-Type` and `Content-Length` already have their own variables.
/// - `Proxy` would become `HTTP_PROXY`, which many HTTP clients read as their proxy setting
///   ("httpoxy"), letting a request redirect the application's outbound traffic.
/// - Only letters, digits and '-' are allowed in the name. An underscore would let `X_Auth`
///   masquerade as a header a trusted proxy set as `X-Auth` (both map to `HTTP_X_AUTH`), and PHP
///   also folds '.' and ' ' into '_' when it registers variables, so other punctuation could
///   collide the same way. nginx drops such headers by default for the same reasons.
pub fn http_variable_allowed(name: &HeaderName) -> bool {
    if name == header::CONTENT_TYPE || name == header::CONTENT_LENGTH || name.as_str() == "proxy" {
        return false;
    }
    name.as_str()
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Appends `HTTP_<NAME>` for every value of header `name`, joined into one variable the way HTTP
/// allows a repeated field to be combined, or nothing if the header must not pass.
fn put_http_variable(out: &mut Vec<u8>, headers: &HeaderMap, name: &HeaderName) {
    if !http_variable_allowed(name) {
        return;
    }
    let values = headers.get_all(name);
    if values.iter().any(|v| contains_forbidden(v.as_bytes())) {
        return;
    }
    // Cookie is the one field whose own syntax uses "; " between repeats (RFC 6265 §5.4).
    let separator: &[u8] = if name == header::COOKIE { b"; " } else { b", " };
    let count = values.iter().count();
    let value_len = values.iter().map(|v| v.len()).sum::<usize>() + separator.len() * (count - 1);
    let name = name.as_str().as_bytes();
    out.reserve(8 + 5 + name.len() + value_len);
    encode_name_value_lengths(out, 5 + name.len(), value_len);
    out.extend_from_slice(b"HTTP_");
    out.extend(name.iter().map(|&b| match b {
        b'-' => b'_',
        other => other.to_ascii_uppercase(),
    }));
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(separator);
        }
        out.extend_from_slice(value.as_bytes());
    }
}
