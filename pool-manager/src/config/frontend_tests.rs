//! Config tests for the front-end keys: limits, timeouts, HTTP/2, TLS, sites, logs, client address.

use protocol::control::{AccessLogFormat, SymlinkPolicy};

use super::test_support::{load, MINIMAL};

#[test]
fn front_end_defaults_are_the_documented_ones() {
    let spec = load(MINIMAL).unwrap().frontend;
    assert_eq!(spec.timeouts.request_header_ms, 30_000);
    assert_eq!(spec.timeouts.keepalive_ms, 75_000);
    assert_eq!(spec.timeouts.send_ms, 60_000);
    assert_eq!(spec.timeouts.tls_handshake_ms, 10_000);
    assert_eq!(spec.timeouts.request_body_ms, 60_000);
    assert_eq!(spec.limits.max_connections, 16_384);
    assert_eq!(spec.limits.max_connections_per_ip, 0);
    assert_eq!(spec.limits.max_header_bytes, 64 << 10);
    assert_eq!(spec.limits.max_uri_bytes, 8 << 10);
    assert_eq!(spec.limits.response_memory_bytes, 1 << 20);
    assert_eq!(spec.http2.max_concurrent_streams, 128);
    assert_eq!(spec.http2.max_pending_accept_reset_streams, 20);
    assert_eq!(spec.http2.max_local_error_reset_streams, 256);
    assert!(!spec.listeners[0].http2_prior_knowledge);
    assert!(!spec.listeners[0].proxy_protocol);
    let site = &spec.sites[0];
    assert_eq!(site.symlinks, SymlinkPolicy::InsideRoot);
    assert!(site.precompressed);
    assert!(spec.access_log.is_none());
}

#[test]
fn front_end_keys_are_read() {
    let text = format!(
        r#"{MINIMAL}
symlinks = "owner_match"
default = true
hsts = "max-age=60"
cache_control = [{{ prefix = "/a/", value = "no-store" }}]
error_pages = {{ "404" = "/index.php" }}

[timeouts]
keepalive = "5s"
request_header = "250ms"

[limits]
max_uri = "1KiB"

[http2]
max_concurrent_streams = 10

[access_log]
path = "-"
format = "json"

[client_address]
trusted_proxies = ["10.0.0.0/8", "::1"]
"#
    );
    let spec = load(&text).unwrap().frontend;
    assert_eq!(spec.timeouts.keepalive_ms, 5000);
    assert_eq!(spec.timeouts.request_header_ms, 250);
    assert_eq!(spec.limits.max_uri_bytes, 1024);
    assert_eq!(spec.http2.max_concurrent_streams, 10);
    assert_eq!(spec.access_log.unwrap().format, AccessLogFormat::Json);
    assert_eq!(spec.trusted_proxies.len(), 2);
    let site = &spec.sites[0];
    assert_eq!(site.symlinks, SymlinkPolicy::OwnerMatch);
    assert!(site.default);
    assert_eq!(site.error_pages, vec![(404, "/index.php".to_string())]);
}

#[test]
fn bad_front_end_values_name_their_key() {
    for (extra, key) in [
        ("[timeouts]\nkeepalive = \"0s\"\n", "timeouts.keepalive"),
        ("[timeouts]\nkeepalives = \"5s\"\n", "timeouts.keepalives"),
        (
            "[limits]\nmax_header_size = \"1KiB\"\n",
            "limits.max_header_size",
        ),
        (
            "[limits]\nresponse_memory = \"1KiB\"\n",
            "limits.response_memory",
        ),
        (
            "[http2]\nmax_concurrent_streams = 0\n",
            "http2.max_concurrent_streams",
        ),
        (
            "[client_address]\ntrusted_proxies = [\"proxy.local\"]\n",
            "client_address.trusted_proxies",
        ),
        (
            "[access_log]\npath = \"/no/such/dir/a.log\"\n",
            "access_log.path",
        ),
    ] {
        let error = load(&format!("{MINIMAL}\n{extra}")).unwrap_err();
        assert_eq!(error.key, key, "{error}");
    }
    let error = load(&MINIMAL.replace(
        "root = \"deploy/demo\"",
        "root = \"deploy/demo\"\nsymlinks = \"sometimes\"",
    ))
    .unwrap_err();
    assert_eq!(error.key, "sites.main.symlinks", "{error}");
    let error = load(&format!(
        "{MINIMAL}error_pages = {{ \"200\" = \"/index.html\" }}\n"
    ))
    .unwrap_err();
    assert_eq!(error.key, "sites.main.error_pages.200", "{error}");
}

#[test]
fn listener_options_fit_their_kind() {
    let error = load(&MINIMAL.replace(
        "address = \"127.0.0.1:0\"",
        "address = \"127.0.0.1:0\"\nsni_certificates = [{ certificate = \"Cargo.toml\", key = \"Cargo.toml\" }]",
    ))
    .unwrap_err();
    assert_eq!(error.key, "listeners.web.certificate", "{error}");
    let https = MINIMAL.replace("kind = \"http\"", "kind = \"https\"");
    let error = load(&https.replace(
        "address = \"127.0.0.1:0\"",
        "address = \"127.0.0.1:0\"\nhttp2_prior_knowledge = true",
    ))
    .unwrap_err();
    assert_eq!(error.key, "listeners.web.http2_prior_knowledge", "{error}");
}

#[test]
fn http3_is_an_https_listener_option_without_proxy_protocol() {
    let https = MINIMAL.replace("kind = \"http\"", "kind = \"https\"");
    let with = |text: &str, extra: &str| {
        load(&text.replace(
            "address = \"127.0.0.1:0\"",
            &format!("address = \"127.0.0.1:0\"\n{extra}"),
        ))
    };
    let config = with(&https, "http3 = true").expect("valid");
    assert!(config.frontend.listeners[0].http3);
    assert!(
        !load(&https).unwrap().frontend.listeners[0].http3,
        "off by default"
    );
    let error = with(MINIMAL, "http3 = true").unwrap_err();
    assert_eq!(error.key, "listeners.web.http3", "{error}");
    let error = with(&https, "http3 = true\nproxy_protocol = true").unwrap_err();
    assert_eq!(error.key, "listeners.web.http3", "{error}");
}

#[test]
fn the_front_end_runtime_is_per_core_unless_told_and_only_a_known_layout() {
    assert_eq!(
        load(MINIMAL).unwrap().frontend_runtime,
        frontend::RuntimeLayout::PerCore
    );
    let shared = format!("[server]\nfrontend_runtime = \"shared\"\n{MINIMAL}");
    assert_eq!(
        load(&shared).unwrap().frontend_runtime,
        frontend::RuntimeLayout::Shared
    );
    let pinned = format!("[server]\nfrontend_runtime = \"per-core-pinned\"\n{MINIMAL}");
    assert_eq!(
        load(&pinned).unwrap().frontend_runtime,
        frontend::RuntimeLayout::PerCorePinned
    );
    let error = load(&format!("[server]\nfrontend_runtime = \"many\"\n{MINIMAL}")).unwrap_err();
    assert_eq!(error.key, "server.frontend_runtime", "{error}");
    assert!(
        error
            .to_string()
            .contains("per-core, per-core-pinned, shared"),
        "{error}"
    );
}
