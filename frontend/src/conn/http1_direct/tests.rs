use std::convert::Infallible;

use http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, VARY};
use http_body_util::BodyExt as _;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::http::response::full;

fn spec() -> FrontendSpec {
    crate::metrics::tests::spec()
}

fn parsed(head: &str) -> Option<Request<RequestBody>> {
    parse(head.as_bytes(), &spec())
}

#[test]
fn takes_a_complete_bodiless_get_or_head() {
    let request = parsed("GET /a/b.css?v=2 HTTP/1.1\r\nHost: example.test\r\nAccept: */*\r\n\r\n")
        .expect("taken");
    assert_eq!(request.method(), Method::GET);
    assert_eq!(request.uri(), "/a/b.css?v=2");
    assert_eq!(request.version(), Version::HTTP_11);
    assert_eq!(request.headers()["host"], "example.test");
    assert_eq!(request.headers()["accept"], "*/*");
    let head = parsed("HEAD / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive\r\n\r\n");
    assert_eq!(head.expect("taken").method(), Method::HEAD);
}

#[test]
fn leaves_everything_else_to_hyper() {
    for head in [
        // Not complete, or followed by a pipelined request.
        "GET / HTTP/1.1\r\nHost: h\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        // Another method, another version, another target form.
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.0\r\nHost: h\r\n\r\n",
        "GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n",
        // A body, or a wish other than one answer on a kept connection.
        "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        // What httparse refuses: hyper answers it (400).
        "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost h\r\n\r\n",
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    ] {
        assert!(parsed(head).is_none(), "{head:?} must go to hyper");
    }
}

#[test]
fn more_headers_than_allowed_go_to_hyper() {
    let mut spec = spec();
    spec.limits.max_headers = 2;
    let head = b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
    assert!(parse(head, &spec).is_none());
    spec.limits.max_headers = 3;
    assert!(parse(head, &spec).is_some());
}

/// Makes one answer (a `fn`, so that hyper's service can make it again).
type Answer = fn() -> Response<Body>;

fn static_like() -> Response<Body> {
    let mut response = Response::new(full("hello world"));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(11));
    headers.insert(ETAG, HeaderValue::from_static("\"1-b\""));
    headers.append(VARY, HeaderValue::from_static("accept-encoding"));
    headers.append(VARY, HeaderValue::from_static("cookie"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=60"));
    headers.insert("x-request-id", HeaderValue::from_static("abc-1"));
    response
}

#[test]
fn simple_answers_are_those_with_certain_framing() {
    let declared = Framing {
        length: 11,
        added_length: None,
    };
    assert_eq!(simple_length(&static_like(), false), Some(declared));
    assert_eq!(simple_length(&static_like(), true), Some(declared));
    let undeclared = Response::new(full("x"));
    let added = |length| Framing {
        length,
        added_length: Some(length),
    };
    assert_eq!(simple_length(&undeclared, false), Some(added(1)));
    assert_eq!(simple_length(&undeclared, true), Some(added(1)));
    let empty = Response::new(full(""));
    assert_eq!(simple_length(&empty, false), Some(added(0)));
    assert_eq!(
        simple_length(&empty, true),
        Some(Framing {
            length: 0,
            added_length: None
        }),
        "hyper adds no length to an empty answer to a HEAD"
    );
    let too_large = Response::new(full(vec![b'x'; MAX_BODY as usize + 1]));
    assert_eq!(simple_length(&too_large, false), None);
    for status in [StatusCode::NOT_MODIFIED, StatusCode::NO_CONTENT] {
        let mut response = static_like();
        *response.status_mut() = status;
        assert_eq!(simple_length(&response, false), None, "{status}");
    }
    let mut odd = static_like();
    *odd.status_mut() = StatusCode::from_u16(299).unwrap();
    assert_eq!(
        simple_length(&odd, false),
        None,
        "no standard reason phrase"
    );
    let mut reason = static_like();
    reason
        .extensions_mut()
        .insert(hyper::ext::ReasonPhrase::from_static(b"Fine"));
    assert_eq!(
        simple_length(&reason, false),
        None,
        "a reason phrase of its own"
    );
    assert_eq!(
        simple_length(&unknown_size(), false),
        None,
        "a body of unknown size"
    );
    let mut twice = static_like();
    twice
        .headers_mut()
        .append(CONTENT_LENGTH, HeaderValue::from(11));
    assert_eq!(simple_length(&twice, false), None);
}

/// A body that does not tell its size, as a script's streamed output does.
struct Streamed(Option<Bytes>);

impl hyper::body::Body for Streamed {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.0.take().map(|data| Ok(hyper::body::Frame::data(data))))
    }
}

/// The static-like answer with a body of unknown size (its Content-Length still right).
fn unknown_size() -> Response<Body> {
    let (parts, _) = static_like().into_parts();
    let body = Streamed(Some(Bytes::from_static(b"hello world")));
    Response::from_parts(parts, body.boxed_unsync())
}

/// The first `length` bytes hyper's HTTP/1 server writes for `response` to the request `head`.
async fn written_by_hyper(
    head: &'static [u8],
    response: fn() -> Response<Body>,
    length: usize,
) -> Vec<u8> {
    let (server, mut client) = tokio::io::duplex(1 << 16);
    let service = service_fn(move |_| async move { Ok::<_, Infallible>(response()) });
    let connection = http1::Builder::new().serve_connection(TokioIo::new(server), service);
    let task = tokio::spawn(connection);
    client.write_all(head).await.unwrap();
    let mut written = vec![0; length];
    client.read_exact(&mut written).await.unwrap();
    // Nothing more: the same length, not just the same start.
    client.shutdown().await.unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.unwrap();
    assert_eq!(rest, b"", "hyper wrote more");
    let _ = task.await.unwrap();
    written
}

/// What the direct path writes for `response` (the request method given by `head_request`).
async fn written_directly(head_request: bool, response: Response<Body>) -> Vec<u8> {
    let framing = simple_length(&response, head_request).expect("simple");
    let (parts, body) = response.into_parts();
    let body = collect(body, (!head_request).then_some(framing.length))
        .await
        .unwrap();
    let mut written = Vec::new();
    write_answer(
        &mut written,
        &encode_head(&parts, framing.added_length),
        &body,
    )
    .await
    .unwrap();
    written
}

/// The `date` value blanked: the two writers may run on either side of a second.
fn without_date(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let start = text.find("\r\ndate: ").expect("a date header") + 8;
    format!("{}{}", &text[..start], &text[start + 29..])
}

#[tokio::test]
async fn a_simple_answer_is_written_byte_for_byte_as_hyper_writes_it() {
    let get: &[u8] = b"GET /f HTTP/1.1\r\nHost: h\r\n\r\n";
    let head: &[u8] = b"HEAD /f HTTP/1.1\r\nHost: h\r\n\r\n";
    fn closing() -> Response<Body> {
        let mut response = static_like();
        *response.status_mut() = StatusCode::NOT_FOUND;
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        response
    }
    fn empty_head() -> Response<Body> {
        let mut response = static_like();
        *response.body_mut() = full(Bytes::new());
        response
    }
    // A script's buffered answer: no Content-Length of its own, a body of known size.
    fn script_like() -> Response<Body> {
        let mut response = Response::new(full("Hello, world\n"));
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=UTF-8"),
        );
        headers.append("set-cookie", HeaderValue::from_static("a=1"));
        headers.append("set-cookie", HeaderValue::from_static("b=2"));
        response
    }
    fn script_empty() -> Response<Body> {
        let mut response = script_like();
        *response.body_mut() = full(Bytes::new());
        response
    }
    let cases: [(&[u8], Answer); 7] = [
        (get, static_like),
        (get, closing),
        (head, empty_head),
        (get, script_like),
        (get, script_empty),
        (head, script_like),
        (head, script_empty),
    ];
    for (request, response) in cases {
        let direct = written_directly(request.starts_with(b"HEAD"), response()).await;
        let hyper = written_by_hyper(request, response, direct.len()).await;
        assert_eq!(without_date(&direct), without_date(&hyper));
    }
    assert!(closes(&closing()));
    assert!(!closes(&static_like()));
}

#[tokio::test]
async fn a_date_of_the_answers_own_is_kept() {
    let mut response = static_like();
    response.headers_mut().insert(
        DATE,
        HeaderValue::from_static("Tue, 01 Dec 2026 10:00:00 GMT"),
    );
    let written = String::from_utf8(written_directly(false, response).await).unwrap();
    assert_eq!(written.matches("date: ").count(), 1);
    assert!(written.contains("date: Tue, 01 Dec 2026 10:00:00 GMT\r\n"));
}

#[tokio::test]
async fn a_body_shorter_than_its_length_is_not_sent() {
    let (_, body) = static_like().into_parts();
    assert!(collect(body, Some(12)).await.is_none());
}

/// The service's future is several kilobytes; inline in the direct path's future it was moved
/// twice per request (17.5 KiB in a debug build), boxed once it is not. The direct path's own
/// future is boxed for every request, and glibc serves blocks up to 1,032 bytes from a
/// per-thread cache, larger ones from the shared arena under its lock: it stays below that
/// (it was 1,200 bytes while the parsed request's storage lasted the whole future).
#[test]
fn the_service_future_is_boxed_not_inlined() {
    fn size5<A, B, C, D, E, F>(_: fn(A, B, C, D, E) -> F) -> usize {
        std::mem::size_of::<F>()
    }
    let direct = size5(serve::<crate::conn::parking::PlainStream>);
    assert!(direct <= 1024, "the direct path's future: {direct} bytes");
}

#[test]
fn unsent_continues_where_the_socket_stopped() {
    assert_eq!(unsent(b"head", b"body", 0), (&b"head"[..], &b"body"[..]));
    assert_eq!(unsent(b"head", b"body", 3), (&b"d"[..], &b"body"[..]));
    assert_eq!(unsent(b"head", b"body", 6), (&b""[..], &b"dy"[..]));
    assert_eq!(unsent(b"head", b"body", 8), (&b""[..], &b""[..]));
}

#[tokio::test]
async fn an_answer_larger_than_the_socket_takes_is_finished_by_waiting() {
    // A socket that takes 16 bytes at a time: the first try sends what fits, the rest waits
    // for the reader, and the reader gets every byte once, in order.
    let (mut ours, mut theirs) = tokio::io::duplex(16);
    let head = b"HTTP/1.1 200 OK\r\ncontent-length: 40\r\n\r\n".to_vec();
    let body = vec![b'x'; 40];
    let mut sent = 0;
    let all = std::future::poll_fn(|cx| {
        Poll::Ready(write_without_waiting(
            &mut ours, cx, &head, &body, &mut sent,
        ))
    })
    .await;
    assert!(!all);
    assert_eq!(sent, 16);
    let expected = [head.clone(), body.clone()].concat();
    let reader = tokio::spawn(async move {
        let mut got = vec![0; expected.len()];
        theirs.read_exact(&mut got).await.unwrap();
        assert_eq!(got, expected);
    });
    let (rest_head, rest_body) = unsent(&head, &body, sent);
    write_answer(&mut ours, rest_head, rest_body).await.unwrap();
    reader.await.unwrap();
}

#[tokio::test]
async fn an_answer_the_socket_takes_at_once_needs_no_wait() {
    let (mut ours, mut theirs) = tokio::io::duplex(4096);
    let mut sent = 0;
    let all = std::future::poll_fn(|cx| {
        Poll::Ready(write_without_waiting(
            &mut ours, cx, b"head ", b"body", &mut sent,
        ))
    })
    .await;
    assert!(all);
    assert_eq!(sent, 9);
    let mut got = [0; 9];
    theirs.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"head body");
}
