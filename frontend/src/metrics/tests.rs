//! Metrics on their own: a [`Metrics`] built from a spec, fed plain values, rendered. (The master's
//! worker events as `State::apply` feeds them to the metrics are tested in `state/tests.rs`.)

use protocol::control::{FrontendSpec, Http2Spec, LimitsSpec, TimeoutsSpec};

use super::Metrics;

/// A front-end configuration with one pool, `php`, and no listeners or sites.
pub(crate) fn spec() -> FrontendSpec {
    FrontendSpec {
        listeners: Vec::new(),
        sites: Vec::new(),
        site_acme: Vec::new(),
        pools: vec![crate::upstream::dispatch::tests::spec(8, 1000)],
        limits: LimitsSpec {
            max_body_bytes: 1 << 20,
            body_memory_bytes: 1 << 16,
            max_response_bytes: 1 << 20,
            response_memory_bytes: 1 << 16,
            temp_dir: std::env::temp_dir(),
            max_connections: 100,
            max_connections_per_ip: 0,
            max_requests_per_connection: 100,
            max_header_bytes: 1 << 16,
            max_headers: 100,
            max_uri_bytes: 8192,
            request_body_min_rate: 0,
            static_cache_bytes: 0,
            static_cache_max_file_bytes: 0,
        },
        timeouts: TimeoutsSpec {
            tls_handshake_ms: 1000,
            request_header_ms: 1000,
            request_body_ms: 1000,
            keepalive_ms: 1000,
            send_ms: 1000,
        },
        http2: Http2Spec {
            max_concurrent_streams: 10,
            max_pending_accept_reset_streams: 10,
            max_local_error_reset_streams: 10,
        },
        run_as: None,
        access_log: None,
        trusted_proxies: Vec::new(),
    }
}

pub(crate) fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

#[test]
fn reloads_are_counted_and_the_last_result_kept() {
    let metrics = Metrics::new(&prometheus::Registry::new(), &spec());
    metrics.config_reloaded(false);
    let text = metrics.render(&metrics.status_report([]));
    assert_eq!(
        sample(&text, "paddock_config_last_reload_successful"),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, r#"paddock_config_reloads_total{result="failure"}"#),
        Some(1.0)
    );
    metrics.config_reloaded(true);
    metrics.max_workers_reached("php");
    let text = metrics.render(&metrics.status_report([]));
    assert_eq!(
        sample(&text, "paddock_config_last_reload_successful"),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"paddock_pool_max_workers_reached_total{pool="php"}"#
        ),
        Some(1.0)
    );
}
