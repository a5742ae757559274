//! Turning a worker's CGI reply into the client's HTTP response.

use http::{Method, Response, StatusCode};
use http_body_util::BodyExt;
use protocol::cgi::{self, CgiResponseHead, ResponseKind};
use tracing::{debug, warn};

use crate::http::response::{self, Body};
use crate::upstream::buffered::ScriptOutcome;
use crate::upstream::response_buffer::{BufferedResponse, SpooledBody};

/// The largest CGI header block accepted from a worker.
pub(crate) const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// The worker's CGI head is invalid or too large (already logged).
#[derive(Debug)]
pub(crate) struct InvalidHead;

/// Parses the head at the start of `stdout`: `Ok(None)` while incomplete.
pub(crate) fn parse_head(stdout: &[u8]) -> Result<Option<(CgiResponseHead, usize)>, InvalidHead> {
    cgi::parse_response_head(stdout, MAX_RESPONSE_HEAD).map_err(|e| {
        warn!(error = %e, "worker sent an invalid CGI response head");
        InvalidHead
    })
}

pub(crate) fn invalid_head() -> Response<Body> {
    response::error(
        StatusCode::BAD_GATEWAY,
        "the application sent an invalid response",
    )
}

pub(crate) fn incomplete_head() -> Response<Body> {
    debug!("worker ended the request without a complete CGI header block");
    response::error(
        StatusCode::BAD_GATEWAY,
        "the application sent an incomplete response",
    )
}

/// The response for a complete, buffered reply.
pub(crate) fn from_buffer(reply: BufferedResponse, method: &Method) -> ScriptOutcome {
    let (head, head_len) = match parse_head(&reply.memory) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return ScriptOutcome::Response(incomplete_head()),
        Err(InvalidHead) => return ScriptOutcome::Response(invalid_head()),
    };
    if head.status.is_informational() {
        // A 1xx is never a final answer: passed on, the client would wait for another response
        // on a connection that has none (or treat it as switched protocols).
        warn!(
            status = head.status.as_u16(),
            "worker answered with an informational status"
        );
        return ScriptOutcome::Response(invalid_head());
    }
    let body_len =
        reply.memory.len() as u64 - head_len as u64 + reply.spill.as_ref().map_or(0, |s| s.1);
    if method != Method::HEAD && !content_length_matches(&head.headers, body_len) {
        // Passing it on would truncate the response silently or, if shorter than the body, turn
        // the rest of the body into a second response on a keep-alive connection.
        warn!(body_len, "worker's Content-Length does not match its body");
        return ScriptOutcome::Response(invalid_head());
    }
    let body = if method == Method::HEAD {
        response::full(bytes::Bytes::new())
    } else {
        SpooledBody::new(reply, head_len).boxed_unsync()
    };
    with_head(head, body)
}

/// True unless the worker declared a Content-Length (one, or several) that is not the body's.
fn content_length_matches(headers: &http::HeaderMap, body_len: u64) -> bool {
    let mut declared = headers.get_all(http::header::CONTENT_LENGTH).iter();
    match (declared.next(), declared.next()) {
        (None, _) => true,
        (Some(value), None) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n == body_len),
        (Some(_), Some(_)) => false,
    }
}

/// The response (or local redirect) for a parsed head and its body.
pub(crate) fn with_head(head: CgiResponseHead, body: Body) -> ScriptOutcome {
    if let ResponseKind::LocalRedirect(location) = head.kind {
        return ScriptOutcome::LocalRedirect(location);
    }
    let mut response = Response::new(body);
    *response.status_mut() = head.status;
    *response.headers_mut() = head.headers;
    if let Some(reason) = head.reason {
        if let Ok(reason) = hyper::ext::ReasonPhrase::try_from(reason.into_bytes()) {
            response.extensions_mut().insert(reason);
        }
    }
    ScriptOutcome::Response(response)
}
