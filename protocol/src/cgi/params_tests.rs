//! Tests for the CGI meta-variables built by `encode_params`.

use std::net::SocketAddr;

use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;

use super::{encode_params, CgiRequest};
use crate::fcgi::name_values;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

fn request<'a>(headers: &'a HeaderMap) -> CgiRequest<'a> {
    CgiRequest {
        method: "POST",
        request_uri: "/index.php/a%20b?x=1&y=%41",
        query_string: "x=1&y=%41",
        document_root: "/srv/www",
        script_name: "/index.php",
        script_filename: Some("/srv/www/index.php"),
        path_info: "",
        server_name: "example.test",
        server_addr: "192.0.2.1:8443".parse().unwrap(),
        remote_addr: "198.51.100.7:51234".parse().unwrap(),
        https: true,
        server_protocol: "HTTP/1.1",
        redirect_status: 200,
        content_length: 0,
        headers,
        extra: &[],
    }
}

/// Encodes and decodes back to (name, value) strings in order.
fn vars(req: &CgiRequest<'_>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    encode_params(req, &mut out);
    name_values(&out)
        .map(|pair| {
            let (name, value) = pair.expect("well-formed pairs");
            (
                String::from_utf8(name.to_vec()).unwrap(),
                String::from_utf8(value.to_vec()).unwrap(),
            )
        })
        .collect()
}

fn get<'v>(vars: &'v [(String, String)], name: &str) -> Option<&'v str> {
    let mut found = vars.iter().filter(|(n, _)| n == name);
    let first = found.next().map(|(_, v)| v.as_str());
    assert!(found.next().is_none(), "{name} emitted twice");
    first
}

#[test]
fn standard_variables() {
    let h = headers(&[]);
    let v = vars(&request(&h));
    let expect = [
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("REQUEST_METHOD", "POST"),
        ("REQUEST_URI", "/index.php/a%20b?x=1&y=%41"),
        ("QUERY_STRING", "x=1&y=%41"),
        ("SCRIPT_NAME", "/index.php"),
        ("SCRIPT_FILENAME", "/srv/www/index.php"),
        ("DOCUMENT_ROOT", "/srv/www"),
        ("DOCUMENT_URI", "/index.php"),
        ("SERVER_NAME", "example.test"),
        ("SERVER_PORT", "8443"),
        ("SERVER_ADDR", "192.0.2.1"),
        ("REMOTE_ADDR", "198.51.100.7"),
        ("REMOTE_PORT", "51234"),
        ("REQUEST_SCHEME", "https"),
        ("HTTPS", "on"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("REDIRECT_STATUS", "200"),
        ("CONTENT_LENGTH", ""),
    ];
    for (name, value) in expect {
        assert_eq!(get(&v, name), Some(value), "{name}");
    }
    assert_eq!(
        get(&v, "SERVER_SOFTWARE"),
        Some(concat!("paddock/", env!("CARGO_PKG_VERSION")))
    );
    for absent in ["PATH_INFO", "PATH_TRANSLATED", "CONTENT_TYPE"] {
        assert_eq!(get(&v, absent), None, "{absent}");
    }
    assert_eq!(v[0].0, "GATEWAY_INTERFACE");
}

#[test]
fn empty_query_string_is_still_sent() {
    let h = headers(&[]);
    let mut req = request(&h);
    req.query_string = "";
    req.request_uri = "/index.php";
    assert_eq!(get(&vars(&req), "QUERY_STRING"), Some(""));
}

#[test]
fn plain_http_has_no_https_variable() {
    let h = headers(&[]);
    let mut req = request(&h);
    req.https = false;
    let v = vars(&req);
    assert_eq!(get(&v, "REQUEST_SCHEME"), Some("http"));
    assert_eq!(get(&v, "HTTPS"), None);
}

#[test]
fn path_info_adds_translated_path() {
    let h = headers(&[]);
    let mut req = request(&h);
    req.path_info = "/a b";
    let v = vars(&req);
    assert_eq!(get(&v, "PATH_INFO"), Some("/a b"));
    assert_eq!(get(&v, "PATH_TRANSLATED"), Some("/srv/www/a b"));
    assert_eq!(get(&v, "DOCUMENT_URI"), Some("/index.php/a b"));

    req.document_root = "/srv/www/";
    assert_eq!(get(&vars(&req), "PATH_TRANSLATED"), Some("/srv/www/a b"));
}

#[test]
fn ipv6_addresses_have_no_brackets() {
    let h = headers(&[]);
    let mut req = request(&h);
    req.server_addr = "[2001:db8::1]:443".parse().unwrap();
    req.remote_addr = "[2001:db8::2]:40000".parse().unwrap();
    let v = vars(&req);
    assert_eq!(get(&v, "SERVER_ADDR"), Some("2001:db8::1"));
    assert_eq!(get(&v, "SERVER_PORT"), Some("443"));
    assert_eq!(get(&v, "REMOTE_ADDR"), Some("2001:db8::2"));
    assert_eq!(get(&v, "REMOTE_PORT"), Some("40000"));

    let longest: SocketAddr = "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"
        .parse()
        .unwrap();
    req.remote_addr = longest;
    assert_eq!(
        get(&vars(&req), "REMOTE_ADDR"),
        Some("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
    );
}

#[test]
fn ipv4_mapped_addresses_are_shown_as_ipv4() {
    let h = headers(&[]);
    let mut req = request(&h);
    req.remote_addr = "[::ffff:203.0.113.9]:1234".parse().unwrap();
    assert_eq!(get(&vars(&req), "REMOTE_ADDR"), Some("203.0.113.9"));
}

#[test]
fn content_variables() {
    let h = headers(&[
        ("content-type", "application/x-www-form-urlencoded"),
        ("content-length", "7"),
    ]);
    let mut req = request(&h);
    req.content_length = 7;
    let v = vars(&req);
    assert_eq!(
        get(&v, "CONTENT_TYPE"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(get(&v, "CONTENT_LENGTH"), Some("7"));
    assert_eq!(get(&v, "HTTP_CONTENT_TYPE"), None);
    assert_eq!(get(&v, "HTTP_CONTENT_LENGTH"), None);
}

#[test]
fn content_length_reflects_delivered_body() {
    // HTTP/2 or chunked bodies have no Content-Length header; the buffered size is what counts.
    let h = headers(&[("transfer-encoding", "chunked")]);
    let mut req = request(&h);
    req.content_length = 12;
    assert_eq!(get(&vars(&req), "CONTENT_LENGTH"), Some("12"));

    let h = headers(&[]);
    let mut req = request(&h);
    req.content_length = 3;
    assert_eq!(get(&vars(&req), "CONTENT_LENGTH"), Some("3"));

    // An explicit empty body is "0"; no body at all is "" as nginx sends it.
    let h = headers(&[("content-length", "0")]);
    assert_eq!(get(&vars(&request(&h)), "CONTENT_LENGTH"), Some("0"));
    let h = headers(&[("transfer-encoding", "chunked")]);
    assert_eq!(get(&vars(&request(&h)), "CONTENT_LENGTH"), Some("0"));
}

#[test]
fn headers_become_http_variables() {
    let h = headers(&[
        ("host", "example.test:8443"),
        ("user-agent", "curl/8.0"),
        ("accept", "text/html"),
        ("accept", "application/json"),
        ("cookie", "a=1"),
        ("cookie", "b=2"),
        ("authorization", "Basic dXNlcjpwYXNz"),
        ("x-forwarded-for", "203.0.113.1"),
        ("x-custom-header-9", "v\talue"),
    ]);
    let v = vars(&request(&h));
    assert_eq!(get(&v, "HTTP_HOST"), Some("example.test:8443"));
    assert_eq!(get(&v, "HTTP_USER_AGENT"), Some("curl/8.0"));
    assert_eq!(get(&v, "HTTP_ACCEPT"), Some("text/html, application/json"));
    assert_eq!(get(&v, "HTTP_COOKIE"), Some("a=1; b=2"));
    assert_eq!(get(&v, "HTTP_AUTHORIZATION"), Some("Basic dXNlcjpwYXNz"));
    assert_eq!(get(&v, "HTTP_X_FORWARDED_FOR"), Some("203.0.113.1"));
    assert_eq!(get(&v, "HTTP_X_CUSTOM_HEADER_9"), Some("v\talue"));
}

#[test]
fn dangerous_headers_are_dropped() {
    let h = headers(&[
        ("proxy", "http://evil.test:3128"),
        ("x_auth", "forged"),
        ("x-auth", "real"),
        ("x.auth", "forged-too"),
        ("content_type", "forged"),
    ]);
    let v = vars(&request(&h));
    assert_eq!(get(&v, "HTTP_PROXY"), None);
    assert_eq!(get(&v, "HTTP_X_AUTH"), Some("real"));
    assert_eq!(get(&v, "HTTP_CONTENT_TYPE"), None);
    assert_eq!(get(&v, "CONTENT_TYPE"), None);
    assert!(v.iter().all(|(name, _)| !name.contains('.')));
}

#[test]
fn non_utf8_header_values_pass_through() {
    let mut h = HeaderMap::new();
    h.insert("x-latin", HeaderValue::from_bytes(b"caf\xe9").unwrap());
    let mut out = Vec::new();
    encode_params(&request(&h), &mut out);
    let found = name_values(&out)
        .map(Result::unwrap)
        .find(|(name, _)| *name == b"HTTP_X_LATIN");
    assert_eq!(found, Some((&b"HTTP_X_LATIN"[..], &b"caf\xe9"[..])));
}

#[test]
fn control_bytes_never_reach_the_worker() {
    let h = headers(&[]);
    let mut req = request(&h);
    req.path_info = "/a\nb";
    req.script_filename = Some("/srv/www/x.php\0.jpg");
    req.script_name = "/x.php\r";
    req.server_name = "a\r\nb";
    let extra = [("PADDOCK_EVIL\n", "v\0")];
    req.extra = &extra;
    let mut out = Vec::new();
    encode_params(&req, &mut out);
    for pair in name_values(&out) {
        let (name, value) = pair.unwrap();
        for bytes in [name, value] {
            assert!(
                !bytes.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
    let v = vars(&req);
    assert_eq!(get(&v, "SCRIPT_FILENAME"), Some("/srv/www/x.php%00.jpg"));
    assert_eq!(get(&v, "PATH_INFO"), Some("/a%0Ab"));
    assert_eq!(get(&v, "DOCUMENT_URI"), Some("/x.php%0D/a%0Ab"));
    assert_eq!(get(&v, "SERVER_NAME"), Some("a%0D%0Ab"));
    assert_eq!(get(&v, "PADDOCK_EVIL%0A"), Some("v%00"));
}

#[test]
fn extra_params_come_last_verbatim() {
    let h = headers(&[("host", "h")]);
    let extra = [("PADDOCK_REQUEST_ID", "abc123"), ("APP_ENV", "")];
    let mut req = request(&h);
    req.extra = &extra;
    let v = vars(&req);
    let n = v.len();
    assert_eq!(
        v[n - 2..],
        [
            ("PADDOCK_REQUEST_ID".to_owned(), "abc123".to_owned()),
            ("APP_ENV".to_owned(), String::new()),
        ]
    );
}

#[test]
fn long_values_use_four_byte_lengths() {
    let long = "a".repeat(5000);
    let h = headers(&[("cookie", &long)]);
    let v = vars(&request(&h));
    assert_eq!(get(&v, "HTTP_COOKIE"), Some(long.as_str()));
}

#[test]
fn appends_to_existing_buffer() {
    let h = headers(&[]);
    let mut out = b"prefix".to_vec();
    encode_params(&request(&h), &mut out);
    assert!(out.starts_with(b"prefix"));
    assert!(name_values(&out[6..]).all(|pair| pair.is_ok()));
}

#[test]
fn php_value_keeps_its_line_breaks_and_nothing_else() {
    let h = headers(&[("host", "h")]);
    let extra = [("PHP_VALUE", "precision=7\nmemory_limit=77M\rx\0")];
    let mut req = request(&h);
    req.extra = &extra;
    let v = vars(&req);
    assert_eq!(
        get(&v, "PHP_VALUE"),
        Some("precision=7\nmemory_limit=77M%0Dx%00")
    );
}

#[test]
fn an_application_mount_sends_no_script_filename_and_an_empty_root_script_name() {
    let h = headers(&[]);
    let mut req = request(&h);
    req.request_uri = "/api/items?x=1";
    req.script_name = "";
    req.script_filename = None;
    req.path_info = "/api/items";
    let v = vars(&req);
    assert_eq!(get(&v, "SCRIPT_FILENAME"), None);
    assert_eq!(get(&v, "SCRIPT_NAME"), Some(""));
    assert_eq!(get(&v, "PATH_INFO"), Some("/api/items"));
    assert_eq!(get(&v, "DOCUMENT_URI"), Some("/api/items"));
}
