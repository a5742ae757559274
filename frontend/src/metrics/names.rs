//! Every metric name paddock exports, in one place. docs/metrics.md describes each one; a test
//! checks that every family in a live scrape is documented there.
//!
//! Conventions: the `paddock_` prefix, base units in the name (`_seconds`, `_bytes`), `_total` on
//! counters, and only bounded label values (pool and listener names from the config, fixed sets
//! for everything else; never a URL, host or client address).

// Requests.
pub const REQUESTS_TOTAL: &str = "paddock_requests_total";
pub const REQUEST_DURATION_SECONDS: &str = "paddock_request_duration_seconds";
pub const QUEUE_WAIT_SECONDS: &str = "paddock_queue_wait_seconds";
pub const WORKER_DURATION_SECONDS: &str = "paddock_worker_duration_seconds";
pub const REQUEST_TIMEOUTS_TOTAL: &str = "paddock_request_timeouts_total";
pub const WORKER_RETRIES_TOTAL: &str = "paddock_worker_retries_total";

// Connections.
pub const CONNECTIONS_ACCEPTED_TOTAL: &str = "paddock_connections_accepted_total";
pub const CONNECTIONS_OPEN: &str = "paddock_connections_open";
pub const CONNECTIONS_IDLE: &str = "paddock_connections_idle";
pub const TLS_HANDSHAKES_TOTAL: &str = "paddock_tls_handshakes_total";
pub const TLS_HANDSHAKE_FAILURES_TOTAL: &str = "paddock_tls_handshake_failures_total";
pub const RECEIVED_BYTES_TOTAL: &str = "paddock_received_bytes_total";
pub const SENT_BYTES_TOTAL: &str = "paddock_sent_bytes_total";

// Pools and workers (gauges are sampled when /metrics is scraped).
pub const POOL_WORKERS: &str = "paddock_pool_workers";
pub const POOL_SLOTS: &str = "paddock_pool_slots";
pub const POOL_BUSY_SLOTS: &str = "paddock_pool_busy_slots";
pub const QUEUE_DEPTH: &str = "paddock_queue_depth";
pub const QUEUE_LIMIT: &str = "paddock_queue_limit";
pub const QUEUE_REJECTIONS_TOTAL: &str = "paddock_queue_rejections_total";
pub const POOL_FAILING: &str = "paddock_pool_failing";
pub const POOL_CRASH_LOOPS_TOTAL: &str = "paddock_pool_crash_loops_total";
pub const POOL_MAX_WORKERS_REACHED_TOTAL: &str = "paddock_pool_max_workers_reached_total";
pub const POOL_RSS_BYTES: &str = "paddock_pool_rss_bytes";
pub const WORKER_RSS_MAX_BYTES: &str = "paddock_worker_rss_max_bytes";
pub const WORKER_SPAWNS_TOTAL: &str = "paddock_worker_spawns_total";
pub const WORKER_EXITS_TOTAL: &str = "paddock_worker_exits_total";

// The process itself.
pub const CONFIG_RELOADS_TOTAL: &str = "paddock_config_reloads_total";
pub const CONFIG_LAST_RELOAD_SUCCESSFUL: &str = "paddock_config_last_reload_successful";
pub const BUILD_INFO: &str = "paddock_build_info";
pub const START_TIME_SECONDS: &str = "paddock_start_time_seconds";

/// Label names.
pub mod label {
    pub const POOL: &str = "pool";
    pub const LISTENER: &str = "listener";
    pub const PROTOCOL: &str = "protocol";
    pub const METHOD: &str = "method";
    pub const STATUS_CLASS: &str = "status_class";
    pub const STATE: &str = "state";
    pub const REASON: &str = "reason";
    pub const RESULT: &str = "result";
    pub const VERSION: &str = "version";
}

/// The `pool` label of requests that never went to a pool (static files, redirects, 404s).
pub const NO_POOL: &str = "-";
