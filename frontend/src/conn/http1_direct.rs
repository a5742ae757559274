//! The direct path: a plain GET or HEAD on an HTTP/1.1 connection answered without a hyper
//! connection.
//!
//! Why: a keep-alive connection parks between requests ([`crate::conn::parking`]), so each
//! request used to start a hyper connection (its buffers, its dispatcher, the task's deadline
//! loop in `drive`) and take it down again. Profiles of the static benchmark put that, with
//! hyper's parsing and encoding, at a large share of the front end's own CPU per request
//! (docs/benchmarks.md, scenario 1). Here the request head is read with one `read`, parsed with
//! `httparse` (the parser hyper uses), handed to the same service as every other request, and a
//! complete answer is written with one `writev`.
//!
//! Exactness over reach: only what is certainly the same on both paths is done here.
//! - The request must be a complete GET or HEAD head in one read, HTTP/1.1, in origin form,
//!   with no body (no `Content-Length`, no `Transfer-Encoding`), no `Expect`, no `Upgrade`, and
//!   no `Connection` option other than `keep-alive`; and nothing may follow it (a pipelined next
//!   request). Anything else, and any head `httparse` does not accept, goes to hyper as it came
//!   ([`Direct::Hyper`]), which answers exactly as before (a 400, a 431, a body read).
//! - The service answers the request as it answers every other one (rules, routing, metrics,
//!   access log, every header). The answer is written here only when its framing is certain: a
//!   status with a standard reason phrase other than 1xx, 204 and 304, one `Content-Length`
//!   that the body matches (or none, when the body tells its exact size, as a script's buffered
//!   output does: the header is then added where hyper adds it), and a body in memory; or a
//!   whole static file too large for memory, which a plain socket sends with sendfile(2)
//!   (`send_file`). Anything else (a 304, a
//!   streamed or chunked body, a PHP reason phrase) goes to a hyper connection together with
//!   the answer already made ([`Direct::Hyper`] with `answered`), which hyper writes from the same bytes.
//! - While the answer is made, the client is watched as hyper watches it: a client that closes
//!   the connection abandons the request (its future, and with it any worker call, is dropped),
//!   and bytes it sends meanwhile are kept for its next request.
//! - Written the way hyper writes it: `HTTP/1.1 <code> <reason>`, the headers in order with
//!   their lower-case names, then `date` (cached per second, as hyper does) unless the answer
//!   has one. A `Connection: close` answer closes the connection after it, with a FIN.

use std::cell::RefCell;
use std::convert::Infallible;
use std::future::Future;
use std::io::{self, IoSlice, Write};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use protocol::control::FrontendSpec;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::conn::deadlines::Activity;
use crate::conn::parking::Parkable;
use crate::http::request_body::RequestBody;
use crate::http::response::Body;
use crate::http::service;
use crate::state::State;
use crate::upstream::buffered::ConnInfo;

/// What the first read of a request may take: a request head longer than this goes to hyper,
/// which reads the rest.
pub(super) const FIRST_READ: usize = 4096;
/// Request headers parsed here at most (the configured `max_headers` when lower).
const MAX_HEADERS: usize = 64;
/// Largest answer body written here; a larger one goes to hyper, which streams it.
const MAX_BODY: u64 = 256 * 1024;
/// Bytes read ahead while an answer is made, at most (see [`answer_watching_client`]).
const WATCH_LIMIT: usize = 64 * 1024;

/// How the direct path left the connection.
pub(super) enum Direct {
    /// A request was answered and the connection stays open; `unread` is what the client sent
    /// meanwhile (the start of its next request), usually nothing.
    Served { unread: Bytes },
    /// The connection is done (the client left, an error, or an answer that closes it).
    Closed,
    /// hyper takes over: `bytes` are what was read (to be parsed again by hyper), `answered` the
    /// answer already made for the request they hold, if any.
    Hyper {
        bytes: Bytes,
        /// Boxed: this value passes through the connection task's future, which a parked
        /// connection holds (docs/frontend.md, "Idle connections cost almost nothing").
        answered: Option<Box<Response<Body>>>,
    },
}

/// Answers the request whose first bytes are `bytes` directly if it can (see the module docs).
/// Call it when the connection is at a request boundary.
pub(super) async fn serve<I: Parkable>(
    io: &mut I,
    bytes: Bytes,
    conn: &Arc<ConnInfo>,
    state: &Arc<State>,
    activity: &Arc<Activity>,
) -> Direct {
    // In a block: the request's and the configuration's storage then ends before the first
    // await instead of taking room in this future for its whole life.
    let (answering, send, head) = {
        let spec = state.spec();
        let Some(request) = parse(&bytes, &spec) else {
            return Direct::Hyper {
                bytes,
                answered: None,
            };
        };
        let send = Duration::from_millis(spec.timeouts.send_ms);
        drop(spec);
        let head = request.method() == Method::HEAD;
        // Boxed, as hyper's path boxes it: inline, this large future would be moved twice more.
        let answering = Box::pin(service::handle(
            state.clone(),
            conn.clone(),
            activity.clone(),
            request,
        ));
        (answering, send, head)
    };
    let mut arrived = BytesMut::new();
    let Some(response) = answer_watching_client(io, answering, &mut arrived).await else {
        // The client left: the request is abandoned (its worker call dropped), as hyper does.
        return Direct::Closed;
    };
    let bytes = if arrived.is_empty() {
        bytes
    } else {
        let mut both = BytesMut::from(&bytes[..]);
        both.extend_from_slice(&arrived);
        both.freeze()
    };
    let close = closes(&response);
    if !head {
        if let Some((file, length, sent)) = send_file::sendable(io, &response) {
            let (parts, body) = response.into_parts();
            let encoded = encode_head(&parts, None);
            let sending = send_file::send(io, &encoded, &file, length, send, &sent);
            let all_sent = Box::pin(sending).await;
            // The access log line, the metrics and the in-flight guard riding on the unread
            // body end here, after the file.
            drop(body);
            return finish(io, all_sent, close, arrived).await;
        }
    }
    let Some(framing) = simple_length(&response, head) else {
        if close {
            activity.withdraw_close_request();
        }
        return Direct::Hyper {
            bytes,
            answered: Some(Box::new(response)),
        };
    };
    let (parts, body) = response.into_parts();
    let expected = if head { None } else { Some(framing.length) };
    let Some(body) = collect(body, expected).await else {
        // The body failed or did not match its Content-Length: as hyper does, end the
        // connection rather than send a short answer.
        return Direct::Closed;
    };
    let encoded = encode_head(&parts, framing.added_length);
    let mut sent = 0;
    let all_sent = std::future::poll_fn(|cx| {
        Poll::Ready(write_without_waiting(io, cx, &encoded, &body, &mut sent))
    })
    .await;
    if !all_sent {
        // The socket's buffer is full (a slow reader, a large answer): wait, up to the send
        // timeout. Boxed: this future and its timer would otherwise make every request's
        // future larger, and most answers never come here.
        let (head, body) = unsent(&encoded, &body, sent);
        let written = Box::pin(tokio::time::timeout(send, write_answer(io, head, body))).await;
        if !matches!(written, Ok(Ok(()))) {
            return Direct::Closed;
        }
    }
    finish(io, true, close, arrived).await
}

/// How the connection goes on once an answer was written (`all_sent`) or failed to be.
async fn finish<I: AsyncWrite + Unpin>(
    io: &mut I,
    all_sent: bool,
    close: bool,
    arrived: BytesMut,
) -> Direct {
    if !all_sent {
        return Direct::Closed;
    }
    if close {
        let _ = io.shutdown().await;
        return Direct::Closed;
    }
    Direct::Served {
        unread: arrived.freeze(),
    }
}

/// The service's answer, while the client is watched as hyper watches it: a client that closes
/// the connection meanwhile abandons the request (`None`, the answer's future is dropped), and
/// bytes it sends (a pipelined next request) are kept in `arrived`, up to
/// [`WATCH_LIMIT`] (hyper, too, stops reading when its buffer is full).
async fn answer_watching_client<I, F>(
    io: &mut I,
    mut answering: F,
    arrived: &mut BytesMut,
) -> Option<Response<Body>>
where
    I: AsyncRead + Unpin,
    F: Future<Output = Result<Response<Body>, Infallible>> + Unpin,
{
    std::future::poll_fn(|cx| {
        if let Poll::Ready(answer) = Pin::new(&mut answering).poll(cx) {
            let Ok(response) = answer;
            return Poll::Ready(Some(response));
        }
        while arrived.len() < WATCH_LIMIT {
            let mut space = [MaybeUninit::<u8>::uninit(); 2048];
            let mut read = ReadBuf::uninit(&mut space);
            match Pin::new(&mut *io).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) if read.filled().is_empty() => return Poll::Ready(None),
                Poll::Ready(Ok(())) => arrived.extend_from_slice(read.filled()),
                Poll::Ready(Err(_)) => return Poll::Ready(None),
                Poll::Pending => break,
            }
        }
        Poll::Pending
    })
    .await
}

/// The request in `bytes` if the direct path may take it: one complete bodiless GET or HEAD
/// head and nothing after it (see the module docs).
fn parse(bytes: &[u8], spec: &FrontendSpec) -> Option<Request<RequestBody>> {
    if bytes.len() > spec.limits.max_header_bytes as usize {
        return None;
    }
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let slots = &mut slots[..spec.limits.max_headers.min(MAX_HEADERS)];
    let mut parsed = httparse::Request::new(slots);
    match parsed.parse(bytes) {
        Ok(httparse::Status::Complete(len)) if len == bytes.len() => {}
        _ => return None,
    }
    let method = match parsed.method? {
        "GET" => Method::GET,
        "HEAD" => Method::HEAD,
        _ => return None,
    };
    if parsed.version? != 1 {
        return None;
    }
    let path = parsed.path?;
    if !path.starts_with('/') {
        return None;
    }
    let mut request = Request::new(RequestBody::Empty);
    *request.method_mut() = method;
    *request.uri_mut() = Uri::try_from(path).ok()?;
    *request.version_mut() = Version::HTTP_11;
    let headers = request.headers_mut();
    headers.reserve(parsed.headers.len());
    for header in parsed.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes()).ok()?;
        if !allowed(&name, header.value) {
            return None;
        }
        headers.append(name, HeaderValue::from_bytes(header.value).ok()?);
    }
    Some(request)
}

/// Whether a request header leaves the request for the direct path: none that frames a body
/// or asks for something other than one answer on a kept connection.
fn allowed(name: &HeaderName, value: &[u8]) -> bool {
    match name.as_str() {
        "content-length" | "transfer-encoding" | "expect" | "upgrade" => false,
        "connection" => value.trim_ascii().eq_ignore_ascii_case(b"keep-alive"),
        _ => true,
    }
}

/// How an answer the direct path writes is framed (see [`simple_length`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Framing {
    /// The body's length.
    length: u64,
    /// A `Content-Length` written after the answer's own headers. hyper adds one to an answer
    /// that has none and whose body tells its exact size, which a script's buffered output does
    /// (a CGI script rarely sends the header itself).
    added_length: Option<u64>,
}

/// The answer's framing when the direct path can write the answer exactly as hyper would: a
/// plain status, at most one length that fits in memory, and a body whose size is known, so
/// that collecting it never holds back a stream (a script's progressive output, which hyper
/// sends as it comes). `head_request`: the answer is to a HEAD.
fn simple_length(response: &Response<Body>, head_request: bool) -> Option<Framing> {
    let status = response.status();
    if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || status.canonical_reason().is_none()
        || response
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .is_some()
        || response.headers().contains_key(TRANSFER_ENCODING)
    {
        return None;
    }
    // A HEAD answer's body is never sent and may be empty (paddock's own) or not: known is enough.
    let size = hyper::body::Body::size_hint(response.body()).exact()?;
    let mut lengths = response.headers().get_all(CONTENT_LENGTH).iter();
    let Some(declared) = lengths.next() else {
        // hyper's rule for an answer without the header: the body's size, except that an empty
        // answer to a HEAD gets no header (it cannot tell the size of the GET's body).
        let added_length = (!(head_request && size == 0)).then_some(size);
        return (size <= MAX_BODY).then_some(Framing {
            length: size,
            added_length,
        });
    };
    let length: u64 = declared.to_str().ok()?.parse().ok()?;
    if lengths.next().is_some() || length > MAX_BODY {
        return None;
    }
    Some(Framing {
        length,
        added_length: None,
    })
}

/// Whether the answer ends the connection.
fn closes(response: &Response<Body>) -> bool {
    response
        .headers()
        .get_all(CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .any(|option| option.trim_ascii().eq_ignore_ascii_case(b"close"))
}

/// The whole body, polled to its end (so that the access log, the metrics and the in-flight
/// guard riding on it finish as they do under hyper); `None` if it fails or, when `expected` is
/// given, its length differs.
async fn collect(mut body: Body, expected: Option<u64>) -> Option<Bytes> {
    let mut whole: Option<BytesMut> = None;
    let mut first = Bytes::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.ok()?.into_data() else {
            continue; // trailers: HTTP/1.1 without chunked coding has no place for them
        };
        if first.is_empty() && whole.is_none() {
            first = data;
        } else {
            whole
                .get_or_insert_with(|| BytesMut::from(&first[..]))
                .extend_from_slice(&data);
        }
    }
    let body = whole.map_or(first, BytesMut::freeze);
    match expected {
        Some(length) if body.len() as u64 != length => None,
        Some(_) => Some(body),
        // HEAD: the body (empty for paddock's own HEAD answers) is never sent.
        None => Some(Bytes::new()),
    }
}

/// The status line and headers as hyper writes them.
fn encode_head(parts: &http::response::Parts, added_length: Option<u64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(parts.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(length) = added_length {
        // Writing to a Vec cannot fail.
        let _ = write!(out, "content-length: {length}\r\n");
    }
    if !parts.headers.contains_key(DATE) {
        out.extend_from_slice(b"date: ");
        with_date(|date| out.extend_from_slice(date));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The current `Date` value, formatted once a second per thread (hyper caches it the same way).
fn with_date(use_it: impl FnOnce(&[u8])) {
    thread_local! {
        static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(at, text)| {
        if *at != secs {
            *at = secs;
            *text = httpdate::fmt_http_date(now);
        }
        use_it(text.as_bytes());
    });
}

/// Head and body written and flushed as far as the socket takes them now, counting the bytes
/// taken in `sent`; `true` when all of it is sent. An error is left for [`write_answer`] to meet
/// again.
fn write_without_waiting<I: AsyncWrite + Unpin>(
    io: &mut I,
    cx: &mut Context<'_>,
    head: &[u8],
    body: &[u8],
    sent: &mut usize,
) -> bool {
    loop {
        let (head, body) = unsent(head, body, *sent);
        if head.is_empty() && body.is_empty() {
            break;
        }
        let slices = [IoSlice::new(head), IoSlice::new(body)];
        match Pin::new(&mut *io).poll_write_vectored(cx, &slices) {
            Poll::Ready(Ok(n)) if n > 0 => *sent += n,
            _ => return false,
        }
    }
    matches!(Pin::new(&mut *io).poll_flush(cx), Poll::Ready(Ok(())))
}

/// What is left of head then body once `sent` bytes of them are written.
fn unsent<'a>(head: &'a [u8], body: &'a [u8], sent: usize) -> (&'a [u8], &'a [u8]) {
    let from_head = sent.min(head.len());
    (&head[from_head..], &body[sent - from_head..])
}

/// Head and body with as few writes as the socket allows, then a flush (which a TLS stream
/// needs to send its records).
async fn write_answer<I: AsyncWrite + Unpin>(
    io: &mut I,
    head: &[u8],
    body: &[u8],
) -> io::Result<()> {
    let (mut head, mut body) = (head, body);
    while !head.is_empty() {
        let n = io
            .write_vectored(&[IoSlice::new(head), IoSlice::new(body)])
            .await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let from_head = n.min(head.len());
        head = &head[from_head..];
        body = &body[n - from_head..];
    }
    io.write_all(body).await?;
    io.flush().await
}

mod send_file;
#[cfg(test)]
mod tests;
