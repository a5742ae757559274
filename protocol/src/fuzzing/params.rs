//! The request → PARAMS property: what `encode_params` emits for a request routed the way the front
//! end routes it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use http::header::{HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use http::HeaderMap;

use crate::cgi::{decode_url_path, encode_params, server_name_from_host, CgiRequest};
use crate::fcgi::name_values;

/// Separates the fields of a fuzz input.
const FIELD: u8 = 0xff;
/// Separates a header's name from its value.
const NAME_VALUE: u8 = 0xfe;

/// Fuzz input: fields separated by 0xff — request target, document root, method, Host,
/// choices (script segment, HTTPS, IPv6, content length), then headers as `name 0xfe value`.
///
/// A target that is not a valid origin-form path and query (hyper would have rejected it), or
/// whose path does not decode, is skipped; the document root and method may hold any bytes.
/// The PARAMS must decode; no name or value may contain CR, LF or NUL; names are unique; no
/// `HTTP_PROXY` and only `[A-Z0-9_]` after `HTTP_`; PATH_INFO is present exactly when the route
/// has one, DOCUMENT_URI = SCRIPT_NAME + PATH_INFO, PATH_TRANSLATED = root + PATH_INFO; and
/// decoding REQUEST_URI's path and splitting it at the same script segment gives back
/// SCRIPT_NAME and PATH_INFO.
pub fn request_params(data: &[u8]) {
    let mut fields = data.split(|&b| b == FIELD);
    let mut next = || fields.next().unwrap_or_default();
    let target = String::from_utf8_lossy(next()).into_owned();
    let document_root = String::from_utf8_lossy(next()).into_owned();
    let method = String::from_utf8_lossy(next()).into_owned();
    let host = String::from_utf8_lossy(next()).into_owned();
    let choices = next().to_vec();
    let mut headers = HeaderMap::new();
    for field in fields.take(64) {
        let mut parts = field.splitn(2, |&b| b == NAME_VALUE);
        let name = HeaderName::from_bytes(parts.next().unwrap_or_default());
        let value = HeaderValue::from_bytes(parts.next().unwrap_or_default());
        if let (Ok(name), Ok(value)) = (name, value) {
            headers.append(name, value);
        }
    }
    if let Ok(host) = HeaderValue::from_str(&host) {
        headers.insert(http::header::HOST, host);
    }

    let Ok(target) = target.parse::<PathAndQuery>() else {
        return;
    };
    let Ok(path) = decode_url_path(target.path()) else {
        return;
    };
    if path.segments().is_empty() {
        return;
    }
    let choice = |i: usize| choices.get(i).copied().unwrap_or(0);
    let script = usize::from(choice(0)) % path.segments().len();
    let (script_name, path_info) = path.split_at_script(script);
    let https = choice(1) & 1 == 1;
    let local_ip = if choice(1) & 2 == 2 {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    };
    let content_length = u64::from(u16::from_be_bytes([choice(2), choice(3)]));
    let server_name = host_name(&headers);
    let script_filename = format!("{document_root}{script_name}");
    let request = CgiRequest {
        method: &method,
        request_uri: target.as_str(),
        query_string: target.query().unwrap_or(""),
        document_root: &document_root,
        script_name: &script_name,
        script_filename: Some(&script_filename),
        path_info: &path_info,
        server_name: &server_name,
        server_addr: SocketAddr::new(local_ip, 443),
        remote_addr: SocketAddr::new(local_ip, 50000),
        https,
        server_protocol: "HTTP/1.1",
        redirect_status: 200,
        content_length,
        headers: &headers,
        extra: &[],
    };
    let mut params = Vec::new();
    encode_params(&request, &mut params);

    let vars = decode_vars(&params);
    let var = |name: &str| vars.get(name).map(String::as_str);
    assert_eq!(var("SCRIPT_NAME"), Some(escaped(&script_name).as_str()));
    assert_eq!(var("REQUEST_URI"), Some(target.as_str()));
    let emitted_info = var("PATH_INFO").unwrap_or("");
    assert_eq!(var("PATH_INFO").is_some(), !path_info.is_empty());
    assert_eq!(emitted_info, escaped(&path_info));
    assert!(emitted_info.is_empty() || emitted_info.starts_with('/'));
    let script_var = var("SCRIPT_NAME").unwrap_or("");
    assert_eq!(
        var("DOCUMENT_URI"),
        Some(format!("{script_var}{emitted_info}").as_str())
    );
    if !path_info.is_empty() {
        let root = document_root.strip_suffix('/').unwrap_or(&document_root);
        assert_eq!(
            var("PATH_TRANSLATED"),
            Some(format!("{}{emitted_info}", escaped(root)).as_str())
        );
    }
    // REQUEST_URI, as emitted, says the same thing as SCRIPT_NAME and PATH_INFO.
    let uri_path = var("REQUEST_URI")
        .and_then(|uri| uri.split('?').next())
        .unwrap_or("");
    let again = decode_url_path(uri_path).expect("REQUEST_URI path decodes as it did before");
    let (again_script, again_info) = again.split_at_script(script);
    assert_eq!(escaped(&again_script), script_var);
    assert_eq!(escaped(&again_info), emitted_info);
    if content_length > 0 {
        assert_eq!(
            var("CONTENT_LENGTH"),
            Some(content_length.to_string().as_str())
        );
    }
    assert_eq!(var("HTTPS").is_some(), https);
}

/// SERVER_NAME the way the front end picks it.
fn host_name(headers: &HeaderMap) -> String {
    headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(server_name_from_host)
        .unwrap_or("fallback.test")
        .to_string()
}

/// Decodes PARAMS, checking the properties that hold for every variable.
fn decode_vars(params: &[u8]) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for pair in name_values(params) {
        let (name, value) = pair.expect("PARAMS decode");
        for bytes in [name, value] {
            assert!(
                !bytes.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)),
                "CR, LF or NUL in {:?}={:?}",
                String::from_utf8_lossy(name),
                String::from_utf8_lossy(value)
            );
        }
        let name = String::from_utf8(name.to_vec()).expect("variable names are ASCII");
        if let Some(header) = name.strip_prefix("HTTP_") {
            assert!(!header.is_empty());
            assert!(header
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'));
            assert!(!matches!(
                header,
                "PROXY" | "CONTENT_TYPE" | "CONTENT_LENGTH"
            ));
        }
        let value = String::from_utf8_lossy(value).into_owned();
        assert!(vars.insert(name.clone(), value).is_none(), "{name} twice");
    }
    vars
}

/// How a value must look once CR, LF and NUL are escaped (an independent statement of the rule
/// `encode_params` follows).
fn escaped(text: &str) -> String {
    text.replace('\r', "%0D")
        .replace('\n', "%0A")
        .replace('\0', "%00")
}
