//! Prometheus metrics of the front end, and the live figures behind `/status`.
//!
//! The registry is created by the front end's entry point and handed to [`Metrics::new`]; every
//! metric name lives in [`names`], and docs/metrics.md explains each one. The code on the request
//! path calls the small hooks below (one line each) so that it stays readable.
//!
//! This module is a leaf: it imports nothing from the request path. Callers hand it plain values
//! (pool names, pids, a [`Rejection`], the [`KnownBefore`] figures of a master's message, a
//! worker's [`activity::WorkerActivity`]), so its tests need no `State`.
//!
//! Counters are kept for the life of the front-end process: a configuration reload keeps them
//! (new pools simply add label values), while a front-end restart starts them again from zero,
//! which Prometheus treats as an ordinary counter reset. Gauges about pools and workers are
//! sampled from the dispatcher when `/metrics` is scraped, so they can never drift.
//!
//! # Layout
//! - [`names`] — metric and label names.
//! - [`labels`] — bounded label values (method, status class, protocol).
//! - [`connections`] — per-connection tracker (open/idle, TLS) and byte counting.
//! - [`activity`] — per-worker running requests, served count, RSS, state.
//! - [`exits`] — the last worker exits of each pool.
//! - [`certificates`] — ACME certificate expiry and renewal results.
//! - [`report`] — the pool/worker snapshot that `/status` shows and the gauges are set from.
//! - `control_events` — counters driven by the master's worker events.

pub(crate) mod activity;
pub(crate) mod certificates;
pub(crate) mod connections;
mod control_events;
pub(crate) mod exits;
pub(crate) mod history;
pub(crate) mod labels;
pub(crate) mod names;
pub(crate) mod report;
mod request_handles;
#[cfg(test)]
pub(crate) mod tests;
mod usage;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use http::{Method, Response};
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramTimer, HistogramVec, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use protocol::control::{ExitReason, FrontendSpec, ListenerKind};

use self::activity::{WorkerActivity, WorkerState};
pub(crate) use self::connections::hold_until_sent;
use self::connections::{ConnectionFamilies, ConnectionTracker, CountingStream, ListenerTracking};
pub(crate) use self::control_events::KnownBefore;
use self::exits::ExitLog;
use self::labels::{PROTOCOL_HTTP1, PROTOCOL_HTTP2, PROTOCOL_HTTP3, PROTOCOL_PENDING};
use self::names::label;
use self::report::StatusReport;
use self::request_handles::PoolHistogram;

/// Bucket bounds (seconds) for the whole request and the worker's part of it: PHP pages take
/// milliseconds to tens of seconds.
const REQUEST_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Bucket bounds (seconds) for the queue wait: zero most of the time, so finer at the bottom.
const QUEUE_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Bucket bounds (seconds) for a worker's load until it says it is ready: a small Flask app
/// about 0.3 s, a large Django project several seconds, `start_timeout` 60 s by default.
const START_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];

/// Why a request waiting in a pool's queue never got a slot (the `reason` label).
pub(crate) const REJECTION_REASONS: [&str; 4] = ["full", "timeout", "client_gone", "failing"];
/// Why a request was sent to a second worker (the `reason` label).
pub(crate) const RETRY_REASONS: [&str; 2] = ["unreachable", "failed"];

#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_duration: HistogramVec,
    queue_wait: HistogramVec,
    worker_duration: HistogramVec,
    request_cpu: HistogramVec,
    request_memory: HistogramVec,
    timeouts: IntCounterVec,
    retries: IntCounterVec,
    accepted: IntCounterVec,
    connections: ConnectionFamilies,
    received_bytes: IntCounterVec,
    sent_bytes: IntCounterVec,
    pool_workers: IntGaugeVec,
    pool_slots: IntGaugeVec,
    pool_busy_slots: IntGaugeVec,
    queue_depth: IntGaugeVec,
    sent_ahead: IntGaugeVec,
    queue_limit: IntGaugeVec,
    rejections: IntCounterVec,
    pool_failing: IntGaugeVec,
    crash_loops: IntCounterVec,
    max_workers_reached: IntCounterVec,
    pool_rss: IntGaugeVec,
    worker_rss_max: IntGaugeVec,
    spawns: IntCounterVec,
    worker_start: HistogramVec,
    exits: IntCounterVec,
    reloads: IntCounterVec,
    last_reload_successful: IntGauge,
    /// ACME certificates: expiry and renewals.
    pub certificates: certificates::CertificateMetrics,
    /// The last worker exits of each pool, for the status page.
    pub exit_log: ExitLog,
    started: Instant,
    started_at: SystemTime,
    /// The last 15 minutes per pool, for the status page's charts.
    history: Arc<history::History>,
    /// Serialises scrapes: each one resets and refills the sampled gauges.
    scrape: Mutex<()>,
    /// Names these metrics for the threads' remembered handles ([`request_handles`]).
    id: u64,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let vec = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry.register(Box::new(vec.clone())).expect("unique");
    vec
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let vec = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry.register(Box::new(vec.clone())).expect("unique");
    vec
}

fn histogram(registry: &Registry, name: &str, help: &str, buckets: &[f64]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    let vec = HistogramVec::new(opts, &[label::POOL]).expect("valid metric");
    registry.register(Box::new(vec.clone())).expect("unique");
    vec
}

impl Metrics {
    /// Registers every metric in `registry` and creates the label values known from the start
    /// (every pool × reason), so that counters exist at zero before their first event and
    /// `increase()` sees the first one.
    pub(crate) fn new(registry: &Registry, spec: &FrontendSpec) -> Self {
        use names::*;
        let r = registry;
        let pool = &[label::POOL][..];
        let listener = &[label::LISTENER][..];
        let metrics = Metrics {
            registry: registry.clone(),
            requests: counter(r, REQUESTS_TOTAL, "HTTP requests answered, by pool (\"-\" for none), status class and method.", &[label::POOL, label::STATUS_CLASS, label::METHOD]),
            request_duration: histogram(r, REQUEST_DURATION_SECONDS, "Time from a request's arrival to its response head, by pool.", REQUEST_BUCKETS),
            queue_wait: histogram(r, QUEUE_WAIT_SECONDS, "Time a script request waited for a free worker slot (rejected requests included).", QUEUE_BUCKETS),
            worker_duration: histogram(r, WORKER_DURATION_SECONDS, "Time a worker slot was held for one request: FastCGI exchange including reading the reply.", REQUEST_BUCKETS),
            request_cpu: histogram(r, WORKER_REQUEST_CPU_SECONDS, "CPU time a worker spent on one request (paddock's own PHP worker reports it).", usage::CPU_BUCKETS),
            request_memory: histogram(r, WORKER_REQUEST_MEMORY_PEAK_BYTES, "The most memory a request's script held at once (memory_get_peak_usage(), paddock's own PHP worker).", usage::MEMORY_BUCKETS),
            timeouts: counter(r, REQUEST_TIMEOUTS_TOTAL, "Requests that overran the pool's request_timeout (answered 504; the worker is killed).", pool),
            retries: counter(r, WORKER_RETRIES_TOTAL, "Requests sent to another worker after a worker failure, by reason.", &[label::POOL, label::REASON]),
            accepted: counter(r, CONNECTIONS_ACCEPTED_TOTAL, "TCP connections accepted, by listener.", listener),
            connections: ConnectionFamilies {
                open: gauge(r, CONNECTIONS_OPEN, "Client connections open, by listener and protocol.", &[label::LISTENER, label::PROTOCOL]),
                idle: gauge(r, CONNECTIONS_IDLE, "Open client connections with no request in progress, by listener and protocol.", &[label::LISTENER, label::PROTOCOL]),
                tls_handshakes: counter(r, TLS_HANDSHAKES_TOTAL, "Completed TLS handshakes, by listener and TLS version.", &[label::LISTENER, label::VERSION]),
                tls_failures: counter(r, TLS_HANDSHAKE_FAILURES_TOTAL, "TLS handshakes that failed or timed out, by listener and reason.", &[label::LISTENER, label::REASON]),
            },
            received_bytes: counter(r, RECEIVED_BYTES_TOTAL, "Bytes read from client connections (TLS records included), by listener.", listener),
            sent_bytes: counter(r, SENT_BYTES_TOTAL, "Bytes written to client connections (TLS records included), by listener.", listener),
            pool_workers: gauge(r, POOL_WORKERS, "Worker processes by pool and state (starting, idle, busy, retiring).", &[label::POOL, label::STATE]),
            pool_slots: gauge(r, POOL_SLOTS, "Request slots of the pool's live workers (one per prefork worker, threads per threaded worker).", pool),
            pool_busy_slots: gauge(r, POOL_BUSY_SLOTS, "Slots running a request right now.", pool),
            queue_depth: gauge(r, QUEUE_DEPTH, "Requests waiting for a free slot right now.", pool),
            sent_ahead: gauge(r, SENT_AHEAD, "Requests sent ahead to a busy worker (send_ahead), waiting in its socket right now.", pool),
            queue_limit: gauge(r, QUEUE_LIMIT, "The pool's queue_max: more waiting requests are rejected.", pool),
            rejections: counter(r, QUEUE_REJECTIONS_TOTAL, "Requests that never got a slot, by reason (full, timeout, client_gone, failing).", &[label::POOL, label::REASON]),
            pool_failing: gauge(r, POOL_FAILING, "1 while the pool is crash-looping or cannot start workers (fast 503s), else 0.", pool),
            crash_loops: counter(r, POOL_CRASH_LOOPS_TOTAL, "Times the pool entered the failing (crash-loop) state.", pool),
            max_workers_reached: counter(r, POOL_MAX_WORKERS_REACHED_TOTAL, "Times the sizing policy wanted another worker but the pool was at its maximum.", pool),
            pool_rss: gauge(r, POOL_RSS_BYTES, "Resident memory of all the pool's workers together, as last measured by the master.", pool),
            worker_rss_max: gauge(r, WORKER_RSS_MAX_BYTES, "Resident memory of the pool's largest worker.", pool),
            spawns: counter(r, WORKER_SPAWNS_TOTAL, "Worker processes started.", pool),
            worker_start: histogram(r, WORKER_START_SECONDS, "Time from a worker's start to its READY=1 (pools with readiness = \"notify\").", START_BUCKETS),
            exits: counter(r, WORKER_EXITS_TOTAL, "Worker processes gone, by reason.", &[label::POOL, label::REASON]),
            reloads: counter(r, CONFIG_RELOADS_TOTAL, "Configuration reloads, by result (success, failure).", &[label::RESULT]),
            last_reload_successful: IntGauge::new(CONFIG_LAST_RELOAD_SUCCESSFUL, "0 if the last configuration reload failed, else 1.").expect("valid metric"),
            certificates: certificates::CertificateMetrics::new(r, spec),
            exit_log: ExitLog::default(),
            started: Instant::now(),
            started_at: SystemTime::now(),
            history: Arc::default(),
            scrape: Mutex::new(()),
            id: request_handles::next_owner(),
        };
        registry
            .register(Box::new(metrics.last_reload_successful.clone()))
            .expect("unique");
        metrics.last_reload_successful.set(1);
        metrics.register_constants(spec);
        metrics
    }

    fn register_constants(&self, spec: &FrontendSpec) {
        let build = IntGaugeVec::new(
            Opts::new(
                names::BUILD_INFO,
                "Always 1; the labels name the running build.",
            ),
            &[label::VERSION],
        )
        .expect("valid metric");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        self.registry.register(Box::new(build)).expect("unique");
        let start = Gauge::new(
            names::START_TIME_SECONDS,
            "When the front-end process started, in seconds since the Unix epoch.",
        )
        .expect("valid metric");
        start.set(
            self.started_at
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        );
        self.registry.register(Box::new(start)).expect("unique");
        for result in ["success", "failure"] {
            self.reloads.with_label_values(&[result]);
        }
        self.request_duration.with_label_values(&[names::NO_POOL]);
        for pool in &spec.pools {
            self.add_pool(&pool.name);
        }
        for listener in &spec.listeners {
            let name = listener.name.as_str();
            self.accepted.with_label_values(&[name]);
            self.received_bytes.with_label_values(&[name]);
            self.sent_bytes.with_label_values(&[name]);
            for protocol in [
                PROTOCOL_PENDING,
                PROTOCOL_HTTP1,
                PROTOCOL_HTTP2,
                PROTOCOL_HTTP3,
            ] {
                self.connections.open.with_label_values(&[name, protocol]);
                self.connections.idle.with_label_values(&[name, protocol]);
            }
            if listener.kind == ListenerKind::Https {
                for version in ["tls1.2", "tls1.3"] {
                    self.connections
                        .tls_handshakes
                        .with_label_values(&[name, version]);
                }
                for reason in ["error", "timeout"] {
                    self.connections
                        .tls_failures
                        .with_label_values(&[name, reason]);
                }
            }
        }
    }

    /// Creates a pool's counters at zero.
    pub(crate) fn add_pool(&self, pool: &str) {
        for reason in ExitReason::ALL {
            self.exits.with_label_values(&[pool, reason.as_str()]);
        }
        for reason in REJECTION_REASONS {
            self.rejections.with_label_values(&[pool, reason]);
        }
        for reason in RETRY_REASONS {
            self.retries.with_label_values(&[pool, reason]);
        }
        self.timeouts.with_label_values(&[pool]);
        self.request_duration.with_label_values(&[pool]);
        self.queue_wait.with_label_values(&[pool]);
        self.worker_duration.with_label_values(&[pool]);
        self.spawns.with_label_values(&[pool]);
        self.crash_loops.with_label_values(&[pool]);
        self.max_workers_reached.with_label_values(&[pool]);
    }

    /// The status page's history, and what its sampler reads (see [`history`]).
    pub(crate) fn history(&self) -> (Arc<history::History>, HistogramVec) {
        (self.history.clone(), self.request_duration.clone())
    }

    pub(crate) fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub(crate) fn started_at(&self) -> SystemTime {
        self.started_at
    }

    // ----- connections ---------------------------------------------------------------------------

    /// A newly accepted connection on `listener`; it counts as open until every clone is dropped.
    /// The name comes shared so that a connection does not hold a copy of its own.
    pub(crate) fn connection(&self, listener: impl Into<Arc<str>>) -> ConnectionTracker {
        self.listener_tracking(listener).open()
    }

    /// Opens the trackers of `listener`'s connections; made once per listener, so that its
    /// connections share the families, the name and the `accepted` counter.
    pub(crate) fn listener_tracking(&self, listener: impl Into<Arc<str>>) -> ListenerTracking {
        let listener = listener.into();
        let accepted = self.accepted.with_label_values(&[&*listener]);
        ListenerTracking::new(self.connections.clone(), listener, accepted)
    }

    /// Wraps a socket so that the bytes crossing it are counted for `listener`.
    pub(crate) fn count_bytes<S>(&self, stream: S, listener: &str) -> CountingStream<S> {
        CountingStream::new(
            stream,
            self.received_bytes.with_label_values(&[listener]),
            self.sent_bytes.with_label_values(&[listener]),
        )
    }

    // ----- requests ------------------------------------------------------------------------------

    /// Counts an answered request; the pool comes from [`served_by`] (none for static files).
    pub(crate) fn request_done<B>(
        &self,
        response: &Response<B>,
        method: &Method,
        started: Instant,
    ) {
        let pool = response
            .extensions()
            .get::<ServedBy>()
            .map_or(names::NO_POOL, |s| s.0.as_str());
        let class = labels::status_class(response.status());
        let method = labels::method(method);
        let lookup = || {
            (
                self.requests.with_label_values(&[pool, class, method]),
                self.request_duration.with_label_values(&[pool]),
            )
        };
        let seconds = started.elapsed().as_secs_f64();
        request_handles::count(self.id, (pool, class, method), lookup, seconds);
    }

    /// Starts timing a request's wait in `pool`'s queue; report how it ended on the guard.
    /// Dropping the guard without a report means the client went away while queued.
    pub(crate) fn queue_entered<'a>(&'a self, pool: &'a str) -> QueueWait<'a> {
        QueueWait {
            metrics: self,
            pool,
            since: Instant::now(),
            reported: false,
        }
    }

    /// Records a request running on a worker (whose figures are `worker`) for the status page
    /// and times the worker's part; both end when the guard is dropped.
    pub(crate) fn worker_request(
        &self,
        pool: &str,
        worker: &Arc<WorkerActivity>,
        request_id: &str,
        method: &Method,
        path: &str,
    ) -> WorkerRequest {
        let token = worker.begin(request_id, method, path);
        WorkerRequest {
            worker: worker.clone(),
            token,
            _timer: self
                .pool_histogram(PoolHistogram::WorkerDuration, pool)
                .start_timer(),
        }
    }

    /// This thread's handle of a per-pool histogram ([`request_handles::pool_histogram`]).
    fn pool_histogram(&self, which: PoolHistogram, pool: &str) -> Histogram {
        let family = match which {
            PoolHistogram::QueueWait => &self.queue_wait,
            PoolHistogram::WorkerDuration => &self.worker_duration,
        };
        request_handles::pool_histogram(self.id, which, pool, || family.with_label_values(&[pool]))
    }

    /// A request overran the pool's request timeout.
    pub(crate) fn request_timed_out(&self, pool: &str) {
        self.timeouts.with_label_values(&[pool]).inc();
    }

    /// A request goes to another worker: `unreachable` (nothing was sent) or `failed` (the worker
    /// failed before answering).
    pub(crate) fn retried(&self, pool: &str, reason: &'static str) {
        self.retries.with_label_values(&[pool, reason]).inc();
    }

    // ----- pool events reported by the master ----------------------------------------------------

    /// The sizing policy wanted to start a worker but the pool was at its maximum.
    pub(crate) fn max_workers_reached(&self, pool: &str) {
        self.max_workers_reached.with_label_values(&[pool]).inc();
    }

    /// A configuration reload was applied (`true`) or refused (`false`).
    pub(crate) fn config_reloaded(&self, success: bool) {
        let result = if success { "success" } else { "failure" };
        self.reloads.with_label_values(&[result]).inc();
        self.last_reload_successful.set(i64::from(success));
    }

    // ----- scraping ------------------------------------------------------------------------------

    /// The text exposition of every metric, with the pool gauges sampled from `report`.
    pub(crate) fn render(&self, report: &StatusReport) -> String {
        let _one_at_a_time = self.scrape.lock().unwrap();
        self.sample(report);
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding of valid metrics");
        String::from_utf8(out).expect("the text format is UTF-8")
    }

    fn sample(&self, report: &StatusReport) {
        for vec in [
            &self.pool_workers,
            &self.pool_slots,
            &self.pool_busy_slots,
            &self.queue_depth,
            &self.sent_ahead,
            &self.queue_limit,
            &self.pool_failing,
            &self.pool_rss,
            &self.worker_rss_max,
        ] {
            vec.reset();
        }
        for pool in &report.pools {
            let name = pool.name.as_str();
            for state in WorkerState::ALL {
                let count = pool.states.get(state.as_str()).copied().unwrap_or(0);
                self.pool_workers
                    .with_label_values(&[name, state.as_str()])
                    .set(count as i64);
            }
            let set = |vec: &IntGaugeVec, value: u64| {
                vec.with_label_values(&[name]).set(value as i64);
            };
            set(&self.pool_slots, pool.total_slots);
            set(&self.pool_busy_slots, pool.busy_slots);
            set(&self.queue_depth, pool.waiting as u64);
            set(&self.sent_ahead, pool.sent_ahead as u64);
            set(&self.queue_limit, pool.queue_max as u64);
            set(&self.pool_failing, u64::from(pool.failing.is_some()));
            let rss = pool.processes.iter().filter_map(|w| w.rss_bytes);
            set(&self.pool_rss, rss.clone().sum());
            set(&self.worker_rss_max, rss.max().unwrap_or(0));
        }
    }
}

/// Marks a response as produced by a pool, for the `pool` label of [`Metrics::request_done`].
pub(crate) fn served_by<B>(mut response: Response<B>, pool: &str) -> Response<B> {
    response.extensions_mut().insert(ServedBy(pool.to_string()));
    response
}

#[derive(Debug, Clone)]
struct ServedBy(String);

/// Why a request was turned away from a pool's queue: the `reason` label of
/// `paddock_queue_rejections_total` (the dispatcher says which applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// The queue was at its maximum.
    Full,
    /// The request waited the pool's whole queue timeout.
    Timeout,
    /// The pool cannot start workers.
    Failing,
}

impl Rejection {
    /// The metric label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Rejection::Full => "full",
            Rejection::Timeout => "timeout",
            Rejection::Failing => "failing",
        }
    }
}

/// A request's stay in a pool's queue.
#[derive(Debug)]
pub(crate) struct QueueWait<'a> {
    metrics: &'a Metrics,
    pool: &'a str,
    since: Instant,
    reported: bool,
}

impl QueueWait<'_> {
    /// Awaits the admission and records how it ended; if the caller is dropped while waiting
    /// (the client went away), the guard records `client_gone`.
    pub(crate) async fn wait<T, E>(
        self,
        admission: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, E>
    where
        for<'e> Rejection: From<&'e E>,
    {
        let result = admission.await;
        match &result {
            Ok(_) => self.admitted(),
            Err(e) => self.rejected(Rejection::from(e)),
        }
        result
    }

    /// The request got a slot.
    pub(crate) fn admitted(mut self) {
        self.reported = true;
        self.observe();
    }

    /// The request was turned away.
    pub(crate) fn rejected(mut self, reason: Rejection) {
        self.reported = true;
        self.reject(reason.as_str());
    }

    fn reject(&self, reason: &str) {
        self.metrics
            .rejections
            .with_label_values(&[self.pool, reason])
            .inc();
        self.observe();
    }

    fn observe(&self) {
        self.metrics
            .pool_histogram(PoolHistogram::QueueWait, self.pool)
            .observe(self.since.elapsed().as_secs_f64());
    }
}

impl Drop for QueueWait<'_> {
    fn drop(&mut self) {
        if !self.reported {
            // The request future was dropped while waiting: the client went away.
            self.reject("client_gone");
        }
    }
}

/// A request running on a worker slot: visible on the status page, timed for
/// `paddock_worker_duration_seconds`, and counted as served when dropped.
#[derive(Debug)]
pub(crate) struct WorkerRequest {
    worker: Arc<WorkerActivity>,
    token: u64,
    _timer: HistogramTimer,
}

impl Drop for WorkerRequest {
    fn drop(&mut self) {
        self.worker.finish(self.token);
    }
}
