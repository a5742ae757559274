//! The master's worker events, applied through `State::apply`, as `/metrics` and `/status` show
//! them (no processes needed: the events are what the master would send).

use protocol::control::{ExitReason, ToFrontend, WorkerId};

use super::State;
use crate::metrics::tests::{sample, spec};
use crate::metrics::Metrics;

fn state() -> State {
    state_for(spec())
}

/// A front end's state for `spec`, with no master on the other end of its channel.
pub(crate) fn state_for(spec: protocol::control::FrontendSpec) -> State {
    let metrics = Metrics::new(&prometheus::Registry::new(), &spec);
    let (to_master, _) = tokio::sync::mpsc::unbounded_channel();
    State::new(
        spec,
        to_master,
        Vec::new(),
        None,
        metrics,
        Default::default(),
    )
}

fn up(worker: WorkerId, pid: u32) -> ToFrontend {
    ToFrontend::WorkerUp {
        pool: "php".into(),
        worker,
        pid,
        socket: format!("/nonexistent/{worker}.sock").into(),
        slots: 1,
        ready_after_ms: None,
        cpu: None,
    }
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
    let text = state.metrics.render(&state.status_report());
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
    let report = state.status_report();
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
    let report = state.status_report();
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
    assert_eq!(state.status_report().not_ready().len(), 1);
}

#[test]
fn a_loading_worker_is_starting_without_slots_until_it_is_up_and_then_idle_at_once() {
    let state = state();
    state.apply(&ToFrontend::WorkerLoading {
        pool: "php".into(),
        worker: 7,
        pid: 707,
    });
    let report = state.status_report();
    let pool = report.pools.iter().find(|p| p.name == "php").unwrap();
    assert_eq!(pool.workers, 1);
    assert_eq!(pool.total_slots, 0);
    assert_eq!(pool.processes[0].pid, 707);
    assert_eq!(pool.processes[0].state.as_str(), "starting");
    let text = state.metrics.render(&report);
    let get = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series}:\n{text}"));
    assert_eq!(
        get(r#"paddock_pool_workers{pool="php",state="starting"}"#),
        1.0
    );

    // READY=1 after 312 ms: one worker, up with its slot, idle rather than starting.
    state.apply(&ToFrontend::WorkerUp {
        pool: "php".into(),
        worker: 7,
        pid: 707,
        socket: "/nonexistent/7.sock".into(),
        slots: 1,
        ready_after_ms: Some(312),
        cpu: Some(1),
    });
    let report = state.status_report();
    let pool = report.pools.iter().find(|p| p.name == "php").unwrap();
    assert_eq!(pool.workers, 1);
    assert_eq!(pool.total_slots, 1);
    assert_eq!(pool.processes[0].state.as_str(), "idle");
    assert_eq!(pool.processes[0].cpu, Some(1));
    let text = state.metrics.render(&report);
    let get = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series}:\n{text}"));
    assert_eq!(
        get(r#"paddock_worker_start_seconds_count{pool="php"}"#),
        1.0
    );
    assert_eq!(
        get(r#"paddock_worker_start_seconds_sum{pool="php"}"#),
        0.312
    );

    // One that ends while loading leaves the list and counts as an exit.
    state.apply(&ToFrontend::WorkerLoading {
        pool: "php".into(),
        worker: 8,
        pid: 808,
    });
    state.apply(&ToFrontend::WorkerDown {
        pool: "php".into(),
        worker: 8,
        reason: ExitReason::Crash,
    });
    let report = state.status_report();
    let pool = report.pools.iter().find(|p| p.name == "php").unwrap();
    assert_eq!(pool.workers, 1);
    let text = state.metrics.render(&report);
    let get = |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series}:\n{text}"));
    assert_eq!(
        get(r#"paddock_worker_exits_total{pool="php",reason="crash"}"#),
        1.0
    );
}

#[test]
fn request_ids_read_as_the_boot_tag_and_the_count_in_hex() {
    for (boot, n) in [
        (0, 0),
        (0xdead_beef, 1),
        (0x0000_00a5, 0x1f),
        (u32::MAX, u64::MAX),
    ] {
        assert_eq!(super::request_id(boot, n), format!("{boot:08x}-{n:x}"));
    }
}
