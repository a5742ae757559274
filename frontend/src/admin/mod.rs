//! The admin listener: health and readiness probes, the status page and Prometheus metrics.
//!
//! It lives on its own listener so that probes and operators reach it even when the public
//! listeners are saturated, and so that it is never exposed by accident with the site.
//!
//! - `/healthz` — 200 while the front end runs (liveness).
//! - `/readyz` — 200 when every pool has a live worker, else 503 naming the pools that cannot
//!   serve (readiness: take this instance out of a load balancer meanwhile).
//! - `/status` — per-pool and per-worker scoreboard: HTML for people, JSON with `?json` or
//!   `Accept: application/json`. `?refresh=N` reloads the HTML page every N seconds. The page
//!   draws each pool's last 15 minutes from `/status/history` (JSON, one sample a second:
//!   requests per second, p50/p99 latency, queue depth, busy slots).
//! - `/metrics` — the Prometheus text format.

mod status_page;

use std::convert::Infallible;
use std::sync::Arc;

use http::header::{HeaderValue, ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::http::response::{self, Body};
use crate::state::State;
use crate::upstream::buffered::ConnInfo;

/// The content type of the Prometheus text exposition format.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(crate) async fn handle(
    state: Arc<State>,
    conn: Arc<ConnInfo>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let _active = conn.tracker.request_started(request.version());
    let query = request.uri().query().unwrap_or("");
    let mut response = match request.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => {
            let not_ready = state.status_report().not_ready();
            if not_ready.is_empty() {
                text(StatusCode::OK, "ready\n")
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("not ready: {}\n", not_ready.join("; ")),
                )
            }
        }
        "/status" => {
            let report = state.status_report();
            if wants_json(&request, query) {
                let json = serde_json::to_string_pretty(&report).expect("serialisable");
                with_type(Response::new(response::full(json)), "application/json")
            } else {
                let page = status_page::render(&report, refresh_seconds(query));
                with_type(
                    Response::new(response::full(page)),
                    "text/html; charset=utf-8",
                )
            }
        }
        "/status/history" => {
            let (history, _) = state.metrics.history();
            let json = serde_json::json!({
                "interval_seconds": crate::metrics::history::INTERVAL.as_secs(),
                "kept_samples": crate::metrics::history::KEPT_SAMPLES,
                "pools": history.snapshot(),
            });
            with_type(
                Response::new(response::full(json.to_string())),
                "application/json",
            )
        }
        "/metrics" => {
            let report = state.status_report();
            let body = state.metrics.render(&report);
            with_type(Response::new(response::full(body)), METRICS_CONTENT_TYPE)
        }
        _ => response::error(
            StatusCode::NOT_FOUND,
            "admin endpoints: /healthz, /readyz, /status, /status?json, /status/history, /metrics",
        ),
    };
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `?json` (or `?json=1`, `?format=json`) or an `Accept` header that names JSON.
fn wants_json(request: &Request<Incoming>, query: &str) -> bool {
    let in_query = query.split('&').any(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        key == "json" || (key == "format" && value == "json")
    });
    let accepts = request
        .headers()
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/json"));
    in_query || accepts
}

/// `?refresh=N`, bounded to 1..=3600 seconds.
fn refresh_seconds(query: &str) -> Option<u32> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("refresh="))
        .and_then(|n| n.parse::<u32>().ok())
        .map(|n| n.clamp(1, 3600))
}

fn with_type(mut response: Response<Body>, content_type: &'static str) -> Response<Body> {
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut response = with_type(
        Response::new(response::full(body.to_string())),
        "text/plain; charset=utf-8",
    );
    *response.status_mut() = status;
    response
}
