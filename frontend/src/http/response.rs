//! The response body type every handler returns, and paddock's own error responses.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use http::{Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};

/// What every handler answers with: buffered bytes or a file stream.
pub(crate) type Body = UnsyncBoxBody<Bytes, std::io::Error>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// Marks a response as one of paddock's own error pages (a site may replace its body).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OwnError;

/// Marks a script's answer that stands in for one of paddock's own errors (an error page that
/// is a script, `error_script`): like the error, it was decided before the request's body was
/// read, and the connection must not read that body as a next request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ErrorPage;

/// A small HTML error page; `detail` is shown to the client, so it never holds internals that a
/// visitor should not see (paths, worker output).
pub(crate) fn error(status: StatusCode, detail: &str) -> Response<Body> {
    let reason = status.canonical_reason().unwrap_or("Error");
    let page = format!(
        "<!DOCTYPE html>\n<html><head><title>{code} {reason}</title></head>\n<body><h1>{code} {reason}</h1>\n<p>{detail}</p>\n<hr><address>paddock</address></body></html>\n",
        code = status.as_u16(),
        detail = escape_html(detail),
    );
    let mut response = Response::new(full(page));
    *response.status_mut() = status;
    response.extensions_mut().insert(OwnError);
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// 503 with a `Retry-After`, for a full or timed-out queue and for a failing pool.
pub(crate) fn unavailable(detail: &str, retry_after_secs: u32) -> Response<Body> {
    let mut response = error(StatusCode::SERVICE_UNAVAILABLE, detail);
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after_secs));
    response
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}
