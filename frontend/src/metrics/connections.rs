//! Per-connection accounting: open and idle connections by listener and protocol, TLS handshakes,
//! and the bytes that cross the socket.
//!
//! A connection's protocol is known only once TLS has negotiated ALPN or, in cleartext, once the
//! first request arrived; until then it counts under `protocol="pending"`, then moves. A connection
//! is idle while no request on it is being handled or answered (a keep-alive connection between
//! requests).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::Version;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use prometheus::{IntCounter, IntCounterVec, IntGaugeVec};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::labels::{self, PROTOCOL_HTTP1, PROTOCOL_HTTP2, PROTOCOL_PENDING};

/// The metric families a tracker moves (shared by every connection).
#[derive(Debug, Clone)]
pub(super) struct ConnectionFamilies {
    pub open: IntGaugeVec,
    pub idle: IntGaugeVec,
    pub tls_handshakes: IntCounterVec,
    pub tls_failures: IntCounterVec,
}

/// Follows one connection; cheap to clone, and the connection counts as closed when the last
/// clone is dropped.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionTracker(Arc<Tracked>);

#[derive(Debug)]
struct Tracked {
    /// The listener's families and name, shared by its connections rather than copied into
    /// each (40 bytes a connection, which an idle connection is made of; docs/frontend.md).
    share: Arc<ListenerShare>,
    state: Mutex<ConnState>,
}

/// What the trackers of one listener's connections share.
#[derive(Debug)]
struct ListenerShare {
    families: ConnectionFamilies,
    listener: Arc<str>,
}

/// Opens the trackers of one listener's connections, with what they share made once.
#[derive(Debug, Clone)]
pub(crate) struct ListenerTracking {
    share: Arc<ListenerShare>,
    /// The listener's `accepted` counter, looked up once.
    accepted: IntCounter,
}

impl ListenerTracking {
    pub(super) fn new(
        families: ConnectionFamilies,
        listener: Arc<str>,
        accepted: IntCounter,
    ) -> Self {
        Self {
            share: Arc::new(ListenerShare { families, listener }),
            accepted,
        }
    }

    /// A newly accepted connection; it counts as open until every clone of its tracker is
    /// dropped.
    pub(crate) fn open(&self) -> ConnectionTracker {
        self.accepted.inc();
        ConnectionTracker::on(self.share.clone())
    }
}

#[derive(Debug)]
struct ConnState {
    protocol: &'static str,
    /// Requests being handled right now (HTTP/2 multiplexes several).
    active: u32,
    /// The idle gauge of `protocol`, looked up once: every request moves it twice, and a look-up
    /// hashes the labels and takes the family's lock (2 % of the front end on a static file).
    idle: Option<prometheus::IntGauge>,
}

impl ConnState {
    fn idle_gauge(&mut self, tracked: &Tracked) -> &prometheus::IntGauge {
        let protocol = self.protocol;
        self.idle.get_or_insert_with(|| {
            tracked
                .share
                .families
                .idle
                .with_label_values(&[&*tracked.share.listener, protocol])
        })
    }
}

impl ConnectionTracker {
    /// A tracker with a listener share of its own (tests; the front end opens trackers through
    /// [`ListenerTracking`]).
    #[cfg(test)]
    pub(super) fn new(families: ConnectionFamilies, listener: Arc<str>) -> Self {
        Self::on(Arc::new(ListenerShare { families, listener }))
    }

    fn on(share: Arc<ListenerShare>) -> Self {
        let labels = [&*share.listener, PROTOCOL_PENDING];
        share.families.open.with_label_values(&labels).inc();
        share.families.idle.with_label_values(&labels).inc();
        Self(Arc::new(Tracked {
            share,
            state: Mutex::new(ConnState {
                protocol: PROTOCOL_PENDING,
                active: 0,
                idle: None,
            }),
        }))
    }

    /// Records a completed TLS handshake and the protocol that ALPN chose.
    pub(crate) fn tls_established(&self, connection: &rustls::ServerConnection) {
        let version = match connection.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "tls1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "tls1.2",
            _ => "other",
        };
        self.0
            .share
            .families
            .tls_handshakes
            .with_label_values(&[&*self.0.share.listener, version])
            .inc();
        let protocol = match connection.alpn_protocol() {
            Some(b"h2") => PROTOCOL_HTTP2,
            _ => PROTOCOL_HTTP1,
        };
        self.set_protocol(protocol);
    }

    /// Records a TLS handshake that failed (`error`) or did not finish in time (`timeout`).
    pub(crate) fn tls_failed(&self, reason: &'static str) {
        self.0
            .share
            .families
            .tls_failures
            .with_label_values(&[&*self.0.share.listener, reason])
            .inc();
    }

    /// Marks a request as being handled on this connection until the guard is dropped.
    pub(crate) fn request_started(&self, version: Version) -> ActiveRequest {
        self.set_protocol(labels::protocol(version));
        let mut state = self.0.state.lock().unwrap();
        if state.active == 0 {
            state.idle_gauge(&self.0).dec();
        }
        state.active += 1;
        ActiveRequest(self.clone())
    }

    fn set_protocol(&self, protocol: &'static str) {
        let mut state = self.0.state.lock().unwrap();
        if state.protocol != PROTOCOL_PENDING || protocol == PROTOCOL_PENDING {
            return;
        }
        self.open(state.protocol).dec();
        self.open(protocol).inc();
        if state.active == 0 {
            self.idle(state.protocol).dec();
            self.idle(protocol).inc();
        }
        state.protocol = protocol;
        state.idle = None;
    }

    fn open(&self, protocol: &str) -> prometheus::IntGauge {
        self.0
            .share
            .families
            .open
            .with_label_values(&[&*self.0.share.listener, protocol])
    }

    fn idle(&self, protocol: &str) -> prometheus::IntGauge {
        self.0
            .share
            .families
            .idle
            .with_label_values(&[&*self.0.share.listener, protocol])
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap();
        let labels = [&*self.share.listener, state.protocol];
        self.share.families.open.with_label_values(&labels).dec();
        if state.active == 0 {
            self.share.families.idle.with_label_values(&labels).dec();
        }
    }
}

/// A request in progress on a connection; the connection is idle again when the last one ends.
#[derive(Debug)]
pub(crate) struct ActiveRequest(ConnectionTracker);

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        let tracker = &self.0;
        let mut state = tracker.0.state.lock().unwrap();
        state.active -= 1;
        if state.active == 0 {
            state.idle_gauge(&tracker.0).inc();
        }
    }
}

/// Keeps a request counted as in progress until its response body has been sent (or dropped),
/// so a connection streaming a long response is not idle.
pub(crate) fn hold_until_sent<B>(body: B, active: ActiveRequest) -> HeldBody<B> {
    HeldBody {
        inner: body,
        _active: active,
    }
}

/// A response body that keeps its request counted as in progress (see [`hold_until_sent`]).
#[derive(Debug)]
pub(crate) struct HeldBody<B> {
    inner: B,
    _active: ActiveRequest,
}

impl<B: HttpBody + Unpin> HttpBody for HeldBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A socket that counts the bytes read from and written to it (TLS records included when it sits
/// under the TLS layer).
#[derive(Debug)]
pub(crate) struct CountingStream<S> {
    inner: S,
    received: IntCounter,
    sent: IntCounter,
}

impl<S> CountingStream<S> {
    pub(super) fn new(inner: S, received: IntCounter, sent: IntCounter) -> Self {
        Self {
            inner,
            received,
            sent,
        }
    }

    pub(crate) fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Counts bytes written to the socket past [`AsyncWrite`] (sendfile(2)).
    pub(crate) fn count_sent(&self, bytes: u64) {
        self.sent.inc_by(bytes);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CountingStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            self.received.inc_by(read as u64);
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CountingStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(written)) = result {
            self.sent.inc_by(written as u64);
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(written)) = result {
            self.sent.inc_by(written as u64);
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A tracker counting into unregistered metric families, for unit tests of other modules.
#[cfg(test)]
pub(crate) fn detached_tracker() -> ConnectionTracker {
    ConnectionTracker::new(tests::families(), "test".into())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http_body_util::BodyExt;
    use prometheus::Opts;

    use super::*;

    pub(super) fn families() -> ConnectionFamilies {
        let gauge = |name: &str| {
            IntGaugeVec::new(Opts::new(name, "test"), &["listener", "protocol"]).unwrap()
        };
        let counter = |name: &str, label: &str| {
            IntCounterVec::new(Opts::new(name, "test"), &["listener", label]).unwrap()
        };
        ConnectionFamilies {
            open: gauge("open"),
            idle: gauge("idle"),
            tls_handshakes: counter("hs", "version"),
            tls_failures: counter("hf", "reason"),
        }
    }

    fn value(vec: &IntGaugeVec, protocol: &str) -> i64 {
        vec.with_label_values(&["http", protocol]).get()
    }

    #[test]
    fn a_connection_moves_from_pending_to_its_protocol_and_back_to_zero() {
        let families = families();
        let tracker = ConnectionTracker::new(families.clone(), "http".into());
        assert_eq!(value(&families.open, PROTOCOL_PENDING), 1);
        assert_eq!(value(&families.idle, PROTOCOL_PENDING), 1);

        let first = tracker.request_started(Version::HTTP_2);
        let second = tracker.request_started(Version::HTTP_2);
        assert_eq!(value(&families.open, PROTOCOL_PENDING), 0);
        assert_eq!(value(&families.open, PROTOCOL_HTTP2), 1);
        assert_eq!(value(&families.idle, PROTOCOL_HTTP2), 0);
        drop(first);
        assert_eq!(value(&families.idle, PROTOCOL_HTTP2), 0, "one still active");
        drop(second);
        assert_eq!(value(&families.idle, PROTOCOL_HTTP2), 1);

        let clone = tracker.clone();
        drop(tracker);
        assert_eq!(
            value(&families.open, PROTOCOL_HTTP2),
            1,
            "a clone keeps it open"
        );
        drop(clone);
        assert_eq!(value(&families.open, PROTOCOL_HTTP2), 0);
        assert_eq!(value(&families.idle, PROTOCOL_HTTP2), 0);
    }

    #[tokio::test]
    async fn a_connection_is_busy_until_the_response_body_is_sent() {
        let families = families();
        let tracker = ConnectionTracker::new(families.clone(), "http".into());
        let active = tracker.request_started(Version::HTTP_11);
        let body = hold_until_sent(http_body_util::Full::new(Bytes::from("hello")), active);
        assert_eq!(value(&families.idle, PROTOCOL_HTTP1), 0);
        let sent = body.collect().await.unwrap().to_bytes();
        assert_eq!(&sent[..], b"hello");
        assert_eq!(value(&families.idle, PROTOCOL_HTTP1), 1);
    }

    #[test]
    fn a_connection_closed_mid_request_leaves_no_idle_count() {
        let families = families();
        let tracker = ConnectionTracker::new(families.clone(), "http".into());
        let request = tracker.request_started(Version::HTTP_11);
        drop(tracker);
        assert_eq!(value(&families.open, PROTOCOL_HTTP1), 1);
        drop(request);
        assert_eq!(value(&families.open, PROTOCOL_HTTP1), 0);
        assert_eq!(value(&families.idle, PROTOCOL_HTTP1), 0);
    }
}
