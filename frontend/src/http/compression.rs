//! gzip and brotli for dynamic text responses, chosen by the client's Accept-Encoding (tower-http's
//! compression service, applied to one finished response).
//!
//! Only script responses of sites that keep `scripts.compress` on are compressed, only text-like
//! content types (HTML, CSS, JavaScript, JSON, XML, SVG, plain text; never `text/event-stream`),
//! only above 256 bytes, and never a response that already has a Content-Encoding. Static files
//! use precompressed siblings instead (no CPU per request). Unbuffered routes are not compressed:
//! an encoder holds data back, which defeats streaming.

use std::convert::Infallible;

use http::header::{
    HeaderValue, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_RANGE, CONTENT_TYPE, VARY,
};
use http::{HeaderMap, Request, Response};
use http_body_util::BodyExt;
use hyper::body::Body as _;
use tower::ServiceExt;
use tower_http::compression::predicate::{Predicate, SizeAbove};
use tower_http::compression::{Compression, CompressionLevel};

use crate::http::response::Body;

/// Smallest body worth compressing.
const MIN_SIZE: u64 = 256;
/// gzip 5 / brotli 5: most of the size gain for a fraction of the CPU of the maximum levels.
const LEVEL: i32 = 5;

/// `response`, compressed when the request allows it and the content is text.
pub(crate) async fn compress(
    request_headers: &HeaderMap,
    response: Response<Body>,
) -> Response<Body> {
    if !request_headers.contains_key(ACCEPT_ENCODING) {
        return identity(response);
    }
    let mut request = Request::new(());
    if let Some(accept) = request_headers.get(ACCEPT_ENCODING) {
        request
            .headers_mut()
            .insert(ACCEPT_ENCODING, accept.clone());
    }
    let mut once = Some(response);
    let inner = tower::service_fn(move |_: Request<()>| {
        let response = once.take().expect("called once");
        async move { Ok::<_, Infallible>(response) }
    });
    let service = Compression::new(inner)
        .quality(CompressionLevel::Precise(LEVEL))
        .compress_when(SizeAbove::new(MIN_SIZE).and(is_text));
    match service.oneshot(request).await {
        Ok(response) => response.map(|body| body.map_err(std::io::Error::other).boxed_unsync()),
        Err(never) => match never {},
    }
}

/// A client that sent no Accept-Encoding gets the body as it is. That is the common case of
/// API clients and load generators, and skipping the compression service there saves most of a
/// PHP request's share of the front end's work in this file. The response carries the same
/// `Vary` that tower-http would add: a cache must not give it to a client that accepts gzip.
fn identity(mut response: Response<Body>) -> Response<Body> {
    let headers = response.headers();
    let compressible = !headers.contains_key(CONTENT_ENCODING)
        && !headers.contains_key(CONTENT_RANGE)
        && response
            .body()
            .size_hint()
            .exact()
            .is_none_or(|size| size >= MIN_SIZE)
        && is_text(
            response.status(),
            response.version(),
            headers,
            response.extensions(),
        );
    let varies = headers
        .get_all(VARY)
        .iter()
        .any(|v| v.as_bytes().eq_ignore_ascii_case(b"accept-encoding"));
    if compressible && !varies {
        response
            .headers_mut()
            .append(VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

fn is_text(
    _: http::StatusCode,
    _: http::Version,
    headers: &HeaderMap,
    _: &http::Extensions,
) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .is_some_and(is_text_type)
}

fn is_text_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "text/event-stream" {
        return false;
    }
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence.as_str(),
            "application/json"
                | "application/javascript"
                | "application/xml"
                | "image/svg+xml"
                | "application/wasm"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_types_are_compressible_and_others_not() {
        for yes in [
            "text/html; charset=UTF-8",
            "application/json",
            "application/ld+json",
            "image/svg+xml",
            "text/css",
        ] {
            assert!(is_text_type(yes), "{yes}");
        }
        for no in [
            "image/png",
            "text/event-stream",
            "application/octet-stream",
            "",
        ] {
            assert!(!is_text_type(no), "{no}");
        }
    }
}
