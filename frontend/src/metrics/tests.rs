//! The master's worker events, applied through `State::apply`, as `/metrics` and `/status` show
//! them (no processes needed: the events are what the master would send).

use protocol::control::{
    ExitReason, FrontendSpec, Http2Spec, LimitsSpec, PoolDispatchSpec, TimeoutsSpec, ToFrontend,
    WorkerId,
};

use super::report::StatusReport;
use super::Metrics;
use crate::state::State;

fn state() -> State {
    let spec = FrontendSpec {
        listeners: Vec::new(),
        sites: Vec::new(),
        pools: vec![PoolDispatchSpec {
            name: "php".into(),
            queue_timeout_ms: 1000,
            queue_max: 8,
            request_timeout_ms: 1000,
            max_requests: 0,
            max_requests_jitter: 0,
            external: false,
            starts_empty: false,
        }],
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
    };
    let metrics = Metrics::new(&prometheus::Registry::new(), &spec);
    let (to_master, _) = tokio::sync::mpsc::unbounded_channel();
    State::new(spec, to_master, Vec::new(), None, metrics)
}

fn up(worker: WorkerId, pid: u32) -> ToFrontend {
    ToFrontend::WorkerUp {
        pool: "php".into(),
        worker,
        pid,
        socket: format!("/nonexistent/{worker}.sock").into(),
        slots: 1,
    }
}

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

#[test]
fn worker_events_drive_spawns_exits_rss_and_the_crash_loop_state() {
    let state = state();
    state.apply(&up(1, 101));
    state.apply(&up(2, 102));
    for (worker, rss) in [(1, 30 << 20), (2, 50 << 20)] {
        state.apply(&ToFrontend::WorkerStats {
            pool: "php".into(),
            worker,
            rss_bytes: rss,
        });
    }
    let text = state.metrics.render(&StatusReport::collect(&state));
    let get = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series}:\n{text}"));
    assert_eq!(get(r#"paddock_worker_spawns_total{pool="php"}"#), 2.0);
    assert_eq!(
        get(r#"paddock_pool_rss_bytes{pool="php"}"#),
        f64::from(80 << 20)
    );
    assert_eq!(
        get(r#"paddock_worker_rss_max_bytes{pool="php"}"#),
        f64::from(50 << 20)
    );
    assert_eq!(get(r#"paddock_pool_slots{pool="php"}"#), 2.0);
    assert_eq!(
        get(r#"paddock_pool_workers{pool="php",state="starting"}"#),
        2.0
    );
    assert_eq!(get(r#"paddock_pool_failing{pool="php"}"#), 0.0);

    state.apply(&ToFrontend::WorkerDown {
        pool: "php".into(),
        worker: 2,
        reason: ExitReason::Memory,
    });
    let failing = Some("workers exit right after starting".to_string());
    for _ in 0..2 {
        // Repeated reports of the same state count one crash loop.
        state.apply(&ToFrontend::PoolStatus {
            pool: "php".into(),
            failing: failing.clone(),
        });
    }
    let report = StatusReport::collect(&state);
    let text = state.metrics.render(&report);
    let get = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series}:\n{text}"));
    assert_eq!(
        get(r#"paddock_worker_exits_total{pool="php",reason="memory"}"#),
        1.0
    );
    assert_eq!(
        get(r#"paddock_worker_exits_total{pool="php",reason="crash"}"#),
        0.0
    );
    assert_eq!(
        get(r#"paddock_pool_rss_bytes{pool="php"}"#),
        f64::from(30 << 20)
    );
    assert_eq!(get(r#"paddock_pool_failing{pool="php"}"#), 1.0);
    assert_eq!(get(r#"paddock_pool_crash_loops_total{pool="php"}"#), 1.0);

    let pool = &report.pools[0];
    assert_eq!(pool.workers, 1);
    assert_eq!(pool.processes[0].rss_bytes, Some(30 << 20));
    assert_eq!(pool.last_exit_reason, Some("memory"));
    assert_eq!(pool.recent_exits[0].pid, Some(102));
    assert_eq!(pool.failing, failing);
}

#[test]
fn a_worker_marked_dead_is_retiring_and_its_slots_leave_the_total() {
    let state = state();
    state.apply(&up(1, 101));
    state.apply(&up(2, 102));
    state
        .pools
        .get("php")
        .unwrap()
        .worker(1)
        .unwrap()
        .mark_dead();
    let report = StatusReport::collect(&state);
    let pool = &report.pools[0];
    assert_eq!(pool.states["retiring"], 1);
    assert_eq!(pool.total_slots, 1);
    assert!(pool.ready);
    state
        .pools
        .get("php")
        .unwrap()
        .worker(2)
        .unwrap()
        .mark_dead();
    assert_eq!(StatusReport::collect(&state).not_ready().len(), 1);
}

#[test]
fn reloads_are_counted_and_the_last_result_kept() {
    let state = state();
    state.metrics.config_reloaded(false);
    let text = state.metrics.render(&StatusReport::collect(&state));
    assert_eq!(
        sample(&text, "paddock_config_last_reload_successful"),
        Some(0.0)
    );
    assert_eq!(
        sample(&text, r#"paddock_config_reloads_total{result="failure"}"#),
        Some(1.0)
    );
    state.metrics.config_reloaded(true);
    state.metrics.max_workers_reached("php");
    let text = state.metrics.render(&StatusReport::collect(&state));
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
