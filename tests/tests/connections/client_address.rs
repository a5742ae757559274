//! The client address workers see (REMOTE_ADDR) and the access log records: PROXY protocol v1
//! and v2 on listeners that opt in, and Forwarded / X-Forwarded-For only from trusted proxies.

use harness::raw::RawConn;
use harness::{php_site, require_php_cgi, test_site, Paddock, LISTENERS, PATIENCE};
use serde_json::Value;

const PROXIED: &str = r#"
[listeners.proxied]
kind = "http"
address = "127.0.0.1:0"
proxy_protocol = true
"#;

fn start(extra: &str) -> Paddock {
    require_php_cgi();
    let config = format!(
        "{LISTENERS}\n{PROXIED}\n{}",
        php_site(&test_site(), 1, extra)
    );
    Paddock::start_with(&config, true)
}

fn echo_over(conn: &mut RawConn, prefix: &[u8], extra_headers: &str) -> Value {
    let mut request = prefix.to_vec();
    request.extend_from_slice(
        format!("GET /echo.php HTTP/1.1\r\nHost: localhost\r\n{extra_headers}\r\n").as_bytes(),
    );
    conn.send(&request).unwrap();
    let response = conn.read_response().expect("a response");
    assert_eq!(response.status, 200, "{}", response.text());
    serde_json::from_str(&response.text()).unwrap()
}

/// A PROXY v2 header for TCP over IPv4.
fn v2_header(source: [u8; 4], source_port: u16) -> Vec<u8> {
    let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    header.extend_from_slice(&[0x21, 0x11, 0, 12]);
    header.extend_from_slice(&source);
    header.extend_from_slice(&[127, 0, 0, 1]);
    header.extend_from_slice(&source_port.to_be_bytes());
    header.extend_from_slice(&80u16.to_be_bytes());
    header
}

#[test]
fn proxy_protocol_v1_and_v2_set_the_client_address() {
    let paddock = start("");
    let proxied = paddock.address("proxied");
    let mut conn = RawConn::connect(proxied);
    let seen = echo_over(
        &mut conn,
        b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n",
        "",
    );
    assert_eq!(seen["server"]["REMOTE_ADDR"], "203.0.113.7");
    assert_eq!(seen["server"]["REMOTE_PORT"], "5555");
    // The header applies to the whole connection: a second request keeps it.
    let seen = echo_over(&mut conn, b"", "");
    assert_eq!(seen["server"]["REMOTE_ADDR"], "203.0.113.7");

    let mut conn = RawConn::connect(proxied);
    let seen = echo_over(&mut conn, &v2_header([198, 51, 100, 2], 4242), "");
    assert_eq!(seen["server"]["REMOTE_ADDR"], "198.51.100.2");
    assert_eq!(seen["server"]["REMOTE_PORT"], "4242");

    let mut conn = RawConn::connect(proxied);
    let seen = echo_over(&mut conn, b"PROXY UNKNOWN\r\n", "");
    assert_eq!(seen["server"]["REMOTE_ADDR"], "127.0.0.1");
}

#[test]
fn proxy_listener_refuses_connections_without_a_header() {
    let paddock = start("");
    let mut conn = RawConn::connect(paddock.address("proxied"));
    conn.get("/static/hello.txt").unwrap();
    assert!(conn.closed_within(PATIENCE));
    // Ordinary listeners do not expect one.
    let mut plain = RawConn::connect(paddock.http);
    plain.get("/static/hello.txt").unwrap();
    assert_eq!(plain.read_response().unwrap().status, 200);
}

#[test]
fn curl_haproxy_protocol_over_tls() {
    require_php_cgi();
    let config = format!(
        "{LISTENERS}\n[listeners.proxied_tls]\nkind = \"https\"\naddress = \"127.0.0.1:0\"\nproxy_protocol = true\n{}",
        php_site(&test_site(), 1, "")
    );
    let paddock = Paddock::start_with(&config, true);
    let port = paddock.address("proxied_tls").port();
    let output = paddock.curl(&[
        "--haproxy-protocol",
        "--resolve",
        &format!("localhost:{port}:127.0.0.1"),
        &format!("https://localhost:{port}/echo.php"),
    ]);
    let seen: Value = serde_json::from_slice(&output.stdout).expect("JSON over TLS after PROXY v1");
    assert_eq!(seen["server"]["REMOTE_ADDR"], "127.0.0.1");
    assert_eq!(seen["server"]["HTTPS"], "on");
}

#[test]
fn forwarded_headers_count_only_from_trusted_proxies() {
    // 127.0.0.1 (the test client) is a trusted proxy here.
    let paddock = start("[client_address]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]\n");
    let mut conn = RawConn::connect(paddock.http);
    let seen = echo_over(
        &mut conn,
        b"",
        "X-Forwarded-For: 1.2.3.4, 203.0.113.9, 10.0.0.5\r\nX-Forwarded-Proto: https\r\n",
    );
    assert_eq!(seen["server"]["REMOTE_ADDR"], "203.0.113.9");
    assert_eq!(seen["server"]["HTTPS"], "on");
    let seen = echo_over(
        &mut conn,
        b"",
        "Forwarded: for=\"[2001:db8::7]:1234\";proto=http\r\n",
    );
    assert_eq!(seen["server"]["REMOTE_ADDR"], "2001:db8::7");
    assert_eq!(seen["server"]["HTTPS"], serde_json::Value::Null);

    // Through a PROXY header, the peer is the real client (untrusted): its headers are ignored.
    let mut conn = RawConn::connect(paddock.address("proxied"));
    let seen = echo_over(
        &mut conn,
        b"PROXY TCP4 198.51.100.1 127.0.0.1 5555 80\r\n",
        "X-Forwarded-For: 6.6.6.6\r\n",
    );
    assert_eq!(seen["server"]["REMOTE_ADDR"], "198.51.100.1");
    assert_eq!(
        seen["server"]["HTTP_X_FORWARDED_FOR"], "6.6.6.6",
        "still visible to the app"
    );
}

#[test]
fn forwarded_headers_are_ignored_without_trusted_proxies() {
    let paddock = start("");
    let mut conn = RawConn::connect(paddock.http);
    let seen = echo_over(&mut conn, b"", "X-Forwarded-For: 203.0.113.9\r\n");
    assert_eq!(seen["server"]["REMOTE_ADDR"], "127.0.0.1");
}
