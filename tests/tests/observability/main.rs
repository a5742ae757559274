//! What operators see of a running paddock: `/metrics` (and the shipped Prometheus and Grafana
//! assets against the real tools), the status page, metrics fed by the master's events, and the
//! access log.

mod access_log;
mod metrics;
mod pool_events;
mod prometheus;
mod status;
