//! Every metric name paddock exports, in one place. docs/metrics.md describes each one; a test
//! checks that every family in a live scrape is documented there.
//!
//! Conventions: the `paddock_` prefix, base units in the name (`_seconds`, `_bytes`), `_total` on
//! counters, and only bounded label values (pool and listener names from the config, fixed sets
//! for everything else; never a URL, host or client address).

// Requests.
pub(crate) const REQUESTS_TOTAL: &str = "paddock_requests_total";
pub(crate) const REQUEST_DURATION_SECONDS: &str = "paddock_request_duration_seconds";
pub(crate) const QUEUE_WAIT_SECONDS: &str = "paddock_queue_wait_seconds";
pub(crate) const WORKER_DURATION_SECONDS: &str = "paddock_worker_duration_seconds";
pub(crate) const WORKER_REQUEST_CPU_SECONDS: &str = "paddock_worker_request_cpu_seconds";
pub(crate) const WORKER_REQUEST_MEMORY_PEAK_BYTES: &str =
    "paddock_worker_request_memory_peak_bytes";
pub(crate) const REQUEST_TIMEOUTS_TOTAL: &str = "paddock_request_timeouts_total";
pub(crate) const WORKER_RETRIES_TOTAL: &str = "paddock_worker_retries_total";

// Connections.
pub(crate) const CONNECTIONS_ACCEPTED_TOTAL: &str = "paddock_connections_accepted_total";
pub(crate) const CONNECTIONS_OPEN: &str = "paddock_connections_open";
pub(crate) const CONNECTIONS_IDLE: &str = "paddock_connections_idle";
pub(crate) const TLS_HANDSHAKES_TOTAL: &str = "paddock_tls_handshakes_total";
pub(crate) const TLS_HANDSHAKE_FAILURES_TOTAL: &str = "paddock_tls_handshake_failures_total";
pub(crate) const RECEIVED_BYTES_TOTAL: &str = "paddock_received_bytes_total";
pub(crate) const SENT_BYTES_TOTAL: &str = "paddock_sent_bytes_total";

// Pools and workers (gauges are sampled when /metrics is scraped).
pub(crate) const POOL_WORKERS: &str = "paddock_pool_workers";
pub(crate) const SENT_AHEAD: &str = "paddock_pool_sent_ahead";
pub(crate) const POOL_SLOTS: &str = "paddock_pool_slots";
pub(crate) const POOL_BUSY_SLOTS: &str = "paddock_pool_busy_slots";
pub(crate) const QUEUE_DEPTH: &str = "paddock_queue_depth";
pub(crate) const QUEUE_LIMIT: &str = "paddock_queue_limit";
pub(crate) const QUEUE_REJECTIONS_TOTAL: &str = "paddock_queue_rejections_total";
pub(crate) const POOL_FAILING: &str = "paddock_pool_failing";
pub(crate) const POOL_CRASH_LOOPS_TOTAL: &str = "paddock_pool_crash_loops_total";
pub(crate) const POOL_MAX_WORKERS_REACHED_TOTAL: &str = "paddock_pool_max_workers_reached_total";
pub(crate) const POOL_RSS_BYTES: &str = "paddock_pool_rss_bytes";
pub(crate) const WORKER_RSS_MAX_BYTES: &str = "paddock_worker_rss_max_bytes";
pub(crate) const WORKER_SPAWNS_TOTAL: &str = "paddock_worker_spawns_total";
pub(crate) const WORKER_START_SECONDS: &str = "paddock_worker_start_seconds";
pub(crate) const WORKER_EXITS_TOTAL: &str = "paddock_worker_exits_total";

// Certificates (ACME).
pub(crate) const CERTIFICATE_EXPIRY_TIMESTAMP_SECONDS: &str =
    "paddock_certificate_expiry_timestamp_seconds";
pub(crate) const ACME_ORDERS_TOTAL: &str = "paddock_acme_renewals_total";

// The process itself.
pub(crate) const CONFIG_RELOADS_TOTAL: &str = "paddock_config_reloads_total";
pub(crate) const CONFIG_LAST_RELOAD_SUCCESSFUL: &str = "paddock_config_last_reload_successful";
pub(crate) const BUILD_INFO: &str = "paddock_build_info";
pub(crate) const START_TIME_SECONDS: &str = "paddock_start_time_seconds";

/// Label names.
pub(crate) mod label {
    pub(crate) const POOL: &str = "pool";
    pub(crate) const LISTENER: &str = "listener";
    pub(crate) const CERTIFICATE: &str = "certificate";
    pub(crate) const PROTOCOL: &str = "protocol";
    pub(crate) const METHOD: &str = "method";
    pub(crate) const STATUS_CLASS: &str = "status_class";
    pub(crate) const STATE: &str = "state";
    pub(crate) const REASON: &str = "reason";
    pub(crate) const RESULT: &str = "result";
    pub(crate) const VERSION: &str = "version";
}

/// The `pool` label of requests that never went to a pool (static files, redirects, 404s).
pub(crate) const NO_POOL: &str = "-";
