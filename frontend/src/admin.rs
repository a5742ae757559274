//! The admin listener: health and readiness probes and a JSON pool status.
//!
//! It lives on its own listener so that probes and operators reach it even when the public
//! listeners are saturated, and so that it is never exposed by accident with the site.

use std::convert::Infallible;
use std::sync::Arc;

use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::response::{self, Body};
use crate::state::State;

pub async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    Ok(match request.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => {
            let not_ready: Vec<String> = state
                .pools
                .iter()
                .filter(|p| !p.is_ready())
                .map(|p| p.spec.name.clone())
                .collect();
            if not_ready.is_empty() {
                text(StatusCode::OK, "ready\n")
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("pools not ready: {}\n", not_ready.join(", ")),
                )
            }
        }
        "/status" => {
            let mut pools: Vec<_> = state.pools.iter().map(|p| p.snapshot()).collect();
            pools.sort_by(|a, b| a.name.cmp(&b.name));
            let json = serde_json::json!({ "pools": pools });
            let mut response = Response::new(response::full(json.to_string()));
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        _ => response::error(
            StatusCode::NOT_FOUND,
            "admin endpoints: /healthz, /readyz, /status",
        ),
    })
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut response = Response::new(response::full(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
