//! What one client connection is doing, for the client-facing deadlines.
//!
//! hyper has one timer for HTTP/1.1 (the header read timeout, which also bounds keep-alive idle
//! time because it starts as soon as a connection waits for a request) and none for slow readers.
//! paddock keeps its own per-connection record instead: the socket wrapper [`WatchedIo`] notes
//! reads and blocked writes, the service notes requests starting and their responses ending (an
//! [`InFlight`] guard travels inside the response body), and the connection task asks
//! [`Activity::next_deadline`] what to enforce:
//!
//! - no request in flight, nothing read since the last response: the keep-alive idle timeout
//!   (for a fresh connection, the request-header timeout: a client that connects and says
//!   nothing gets as long as one that starts a request);
//! - no request in flight, bytes of a new request read: the request-header deadline, counted
//!   from the first of those bytes, absolute (trickling bytes does not extend it);
//! - a write to the client blocked, or a response body that hyper has not come back to since it
//!   last took a piece of it: the send timeout. The socket test catches an HTTP/1.1 client that
//!   stopped reading; the body test also catches an HTTP/2 client that keeps reading frames but
//!   grants no flow-control window (then hyper never even tries to write);
//! - a request in flight: nothing here (the body deadline lives in `body`, worker deadlines in
//!   `upstream`).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use protocol::control::TimeoutsSpec;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::http::response::Body;

/// Which deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// A request head did not arrive in time (slowloris, or a silent connection).
    RequestHeader,
    /// The connection sat idle between requests for the keep-alive timeout.
    KeepAlive,
    /// A write to the client stayed blocked for the send timeout (the client stopped reading).
    Send,
}

impl Expiry {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Expiry::RequestHeader => "request head not received in time",
            Expiry::KeepAlive => "keep-alive idle timeout",
            Expiry::Send => "client stopped reading (send timeout)",
        }
    }
}

#[derive(Debug)]
struct ActivityState {
    in_flight: u32,
    requests: u64,
    /// When the connection last had no request in flight (accept, or the end of a response).
    idle_since: Instant,
    /// The first read since `idle_since`, while idle.
    read_while_idle: Option<Instant>,
    write_blocked_since: Option<Instant>,
    close_requested: bool,
    /// Every unfinished response body, by id: since when it has been waiting for hyper to take
    /// its next piece (`None` while it waits for its own data).
    /// A list, not a map: HTTP/1.1 has one body at a time and HTTP/2 a few, and an empty list
    /// holds no memory while the connection is idle.
    bodies: Vec<(u64, Option<Instant>)>,
    next_body: u64,
    /// The connection speaks HTTP/2: bytes read between requests are frames of the connection
    /// (a SETTINGS acknowledgement or WINDOW_UPDATE that lands just after a response, a PING) as
    /// often as the start of a request, so they may bring the close forward (the request-head
    /// deadline from that read) but never push the keep-alive deadline back.
    http2: bool,
    /// The first bytes have been looked at (an HTTP/2 preface tells the protocol in cleartext).
    first_read_seen: bool,
    /// What the connection task's timer is set for, while a task watches the deadlines. Boxed:
    /// a parked HTTP/1.1 connection has no such task, and its record stays in jemalloc's 160-byte
    /// class (192 with the timer inline).
    timer: Option<Box<ArmedTimer>>,
}

/// The deadline the connection task's timer is set for, with the timeouts that turn an event into
/// a deadline. A state change wakes the task only when the deadline it brings is earlier than this
/// one: a deadline that moves later is found when the timer fires early. Waking the task polls its
/// whole connection again (for HTTP/2, h2's state machine), and a request changes the state four
/// times (the read of its head, its body handed to hyper, its end, the read of the next head).
#[derive(Debug)]
struct ArmedTimer {
    /// `None`: no deadline is due, so every change that makes one wakes the task.
    at: Option<Instant>,
    request_header_ms: u32,
    send_ms: u32,
    keepalive_ms: u32,
}

impl ArmedTimer {
    fn new(at: Option<Instant>, timeouts: &TimeoutsSpec) -> Self {
        let ms = |value: u64| u32::try_from(value).unwrap_or(u32::MAX);
        Self {
            at,
            request_header_ms: ms(timeouts.request_header_ms),
            send_ms: ms(timeouts.send_ms),
            keepalive_ms: ms(timeouts.keepalive_ms),
        }
    }
}

/// The timeout of a deadline that an event starts.
#[derive(Debug, Clone, Copy)]
enum Starts {
    RequestHeader,
    Send,
    KeepAlive,
}

impl ActivityState {
    /// Whether a deadline of kind `starts`, counted from `from`, must wake the connection task:
    /// when its timer is set for later, or for nothing.
    fn wakes(&self, starts: Starts, from: Instant) -> bool {
        let Some(timer) = &self.timer else {
            return true;
        };
        let Some(at) = timer.at else {
            return true;
        };
        let ms = match starts {
            Starts::RequestHeader => timer.request_header_ms,
            Starts::Send => timer.send_ms,
            Starts::KeepAlive => timer.keepalive_ms,
        };
        from + Duration::from_millis(u64::from(ms)) < at
    }

    fn next_deadline(&self, timeouts: &TimeoutsSpec) -> Option<(Instant, Expiry)> {
        let ms = Duration::from_millis;
        let send = self
            .write_blocked_since
            .into_iter()
            .chain(self.bodies.iter().filter_map(|&(_, since)| since))
            .min()
            .map(|since| (since + ms(timeouts.send_ms), Expiry::Send));
        let idle = (self.in_flight == 0).then(|| {
            let waiting = if self.requests == 0 {
                (
                    self.idle_since + ms(timeouts.request_header_ms),
                    Expiry::RequestHeader,
                )
            } else {
                (
                    self.idle_since + ms(timeouts.keepalive_ms),
                    Expiry::KeepAlive,
                )
            };
            match self.read_while_idle {
                None => waiting,
                Some(first) => {
                    let head = (
                        first + ms(timeouts.request_header_ms),
                        Expiry::RequestHeader,
                    );
                    if self.http2 {
                        std::cmp::min_by_key(waiting, head, |(at, _)| *at)
                    } else {
                        head
                    }
                }
            }
        });
        [send, idle].into_iter().flatten().min_by_key(|(at, _)| *at)
    }
}

/// Shared between a connection's socket wrapper, its service and its task.
#[derive(Debug)]
pub(crate) struct Activity {
    state: Mutex<ActivityState>,
    /// Wakes the connection task when the state changes in a way that moves a deadline.
    pub changed: Notify,
}

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(ActivityState {
                in_flight: 0,
                requests: 0,
                idle_since: Instant::now(),
                read_while_idle: None,
                write_blocked_since: None,
                close_requested: false,
                bodies: Vec::new(),
                next_body: 0,
                http2: false,
                first_read_seen: false,
                timer: None,
            }),
            changed: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ActivityState> {
        self.state.lock().expect("not poisoned")
    }

    /// A request reached the service; returns its number on this connection (1-based) and the
    /// guard that marks it finished when dropped. No deadline comes earlier (the idle one ends),
    /// so the connection task is not woken.
    pub(crate) fn begin_request(self: &Arc<Self>) -> (u64, InFlight) {
        let mut state = self.lock();
        state.in_flight += 1;
        state.requests += 1;
        let n = state.requests;
        drop(state);
        (
            n,
            InFlight {
                activity: self.clone(),
            },
        )
    }

    /// Ask the connection task to close the connection gracefully once in-flight requests end.
    pub(crate) fn request_close(&self) {
        self.lock().close_requested = true;
        self.changed.notify_one();
    }

    /// Withdraws a close request that an HTTP/1.1 answer carries itself (`Connection: close`,
    /// which hyper honours after writing it). For an answer made before its hyper connection
    /// exists (`conn::http1_direct`): that connection would otherwise close at once, before it
    /// has read the request, let alone written the answer.
    pub(crate) fn withdraw_close_request(&self) {
        self.lock().close_requested = false;
    }

    pub(crate) fn close_requested(&self) -> bool {
        self.lock().close_requested
    }

    /// Requests begun on this connection so far.
    pub(crate) fn requests(&self) -> u64 {
        self.lock().requests
    }

    /// A write to the client is blocked (the socket would not take more).
    pub(crate) fn write_blocked(&self) -> bool {
        self.lock().write_blocked_since.is_some()
    }

    /// Since when the connection has had no request in flight (its accept, or the end of its last
    /// response); `None` while one is.
    pub(crate) fn idle_since(&self) -> Option<Instant> {
        let state = self.lock();
        (state.in_flight == 0).then_some(state.idle_since)
    }

    /// No request in flight and none partly received: closing now loses nothing.
    pub(crate) fn is_idle(&self) -> bool {
        let state = self.lock();
        state.in_flight == 0 && state.read_while_idle.is_none()
    }

    /// The next deadline to enforce and what it is, or `None` when nothing is due.
    pub(crate) fn next_deadline(&self, timeouts: &TimeoutsSpec) -> Option<(Instant, Expiry)> {
        self.lock().next_deadline(timeouts)
    }

    /// For the connection task: the deadline to set its timer for, when the next one is earlier
    /// than `armed` (what the timer is set for now) or nothing is armed; `None` keeps the timer as
    /// it is. Records what the timer is then set for, so that later state changes wake the task
    /// only for an earlier deadline.
    pub(crate) fn arm(&self, timeouts: &TimeoutsSpec, armed: Option<Instant>) -> Option<Instant> {
        let mut state = self.lock();
        let next = state.next_deadline(timeouts).map(|(at, _)| at);
        let set = next.filter(|&at| armed.is_none_or(|armed| at < armed));
        let at = set.or(armed);
        match &mut state.timer {
            Some(timer) => timer.at = at,
            None => state.timer = Some(Box::new(ArmedTimer::new(at, timeouts))),
        }
        set
    }

    /// The connection task stopped watching: every change that makes a deadline wakes it again.
    pub(crate) fn disarm(&self) {
        self.lock().timer = None;
    }

    /// The connection speaks HTTP/2 (negotiated by ALPN).
    pub(crate) fn speaks_http2(&self) {
        self.lock().http2 = true;
    }

    fn on_read(&self, data: &[u8]) {
        let mut state = self.lock();
        if !state.first_read_seen {
            state.first_read_seen = true;
            // Cleartext HTTP/2 (prior knowledge) opens with `PRI * HTTP/2.0`; no HTTP/1 method
            // is called PRI.
            state.http2 |= data.starts_with(b"PRI ");
        }
        if state.in_flight == 0 && state.read_while_idle.is_none() {
            let now = Instant::now();
            state.read_while_idle = Some(now);
            let wake = state.wakes(Starts::RequestHeader, now);
            drop(state);
            if wake {
                self.changed.notify_one();
            }
        }
    }

    fn on_write(&self, blocked: bool) {
        let mut state = self.lock();
        match (blocked, state.write_blocked_since.is_some()) {
            (true, false) => {
                let now = Instant::now();
                state.write_blocked_since = Some(now);
                let wake = state.wakes(Starts::Send, now);
                drop(state);
                if wake {
                    self.changed.notify_one();
                }
            }
            (false, true) => state.write_blocked_since = None,
            _ => {}
        }
    }
}

/// Marks one request as in flight until dropped (it rides inside the response body, so the
/// request ends when the last byte was handed to the connection, or when hyper drops it).
#[derive(Debug)]
pub(crate) struct InFlight {
    activity: Arc<Activity>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.activity.lock();
        state.in_flight -= 1;
        let mut wake = false;
        if state.in_flight == 0 {
            let now = Instant::now();
            state.idle_since = now;
            state.read_while_idle = None;
            wake = state.wakes(Starts::KeepAlive, now);
        }
        drop(state);
        if wake {
            self.activity.changed.notify_one();
        }
    }
}

/// A response body that holds an [`InFlight`] guard and reports whether hyper keeps taking it.
///
/// The body is "waiting on hyper" from the moment it has something to give (the response is
/// ready, a piece was just handed over, or the inner body woke up after a `Pending`) until hyper
/// polls it again. A body that answered `Pending` (still waiting for the worker) is on paddock's
/// side and never times out here. The wake-up is seen through a waker wrapper, because hyper
/// may be woken and still not poll the body (HTTP/2 with no window left).
#[derive(Debug)]
struct GuardedBody {
    inner: Body,
    guard: InFlight,
    id: u64,
    /// hyper's waker and the wrapper made for it, reused while hyper polls with the same one (a
    /// new wrapper per poll was an allocation per frame).
    waker: Option<(Waker, Waker)>,
}

impl Activity {
    /// Body `id` now waits on hyper (`Some`) or on itself (`None`). Unknown ids (dropped bodies)
    /// are ignored, so a late wake-up cannot resurrect a finished response.
    fn set_body_waiting(&self, id: u64, since: Option<Instant>) {
        let mut state = self.lock();
        let Some((_, slot)) = state.bodies.iter_mut().find(|(body, _)| *body == id) else {
            return;
        };
        let newly = slot.is_none() && since.is_some();
        *slot = since;
        let wake = newly && since.is_some_and(|since| state.wakes(Starts::Send, since));
        drop(state);
        if wake {
            self.changed.notify_one();
        }
    }
}

/// Wakes hyper, after noting that the body has something to give.
struct BodyWaker {
    activity: Arc<Activity>,
    id: u64,
    inner: Waker,
}

impl Wake for BodyWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.activity
            .set_body_waiting(self.id, Some(Instant::now()));
        self.inner.wake_by_ref();
    }
}

impl HttpBody for GuardedBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        let reusable = matches!(&this.waker, Some((inner, _)) if inner.will_wake(cx.waker()));
        if !reusable {
            let wrapped = Waker::from(Arc::new(BodyWaker {
                activity: this.guard.activity.clone(),
                id: this.id,
                inner: cx.waker().clone(),
            }));
            this.waker = Some((cx.waker().clone(), wrapped));
        }
        let waker = &this.waker.as_ref().expect("set above").1;
        let polled = Pin::new(&mut this.inner).poll_frame(&mut Context::from_waker(waker));
        let next = match &polled {
            Poll::Ready(Some(Ok(_))) => Some(Instant::now()),
            _ => None,
        };
        this.guard.activity.set_body_waiting(this.id, next);
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for GuardedBody {
    fn drop(&mut self) {
        let mut state = self.guard.activity.lock();
        state.bodies.retain(|&(body, _)| body != self.id);
        if state.bodies.is_empty() {
            state.bodies = Vec::new();
        }
    }
}

/// Attaches `guard` to `body`; from now until hyper first takes a piece, the response waits on
/// the client side.
pub(crate) fn guard_body(body: Body, guard: InFlight) -> Body {
    let activity = guard.activity.clone();
    let (id, wake) = {
        let mut state = activity.lock();
        state.next_body += 1;
        let id = state.next_body;
        let now = Instant::now();
        state.bodies.push((id, Some(now)));
        (id, state.wakes(Starts::Send, now))
    };
    if wake {
        activity.changed.notify_one();
    }
    GuardedBody {
        inner: body,
        guard,
        id,
        waker: None,
    }
    .boxed_unsync()
}

/// A client socket that reports reads and blocked writes to its [`Activity`].
#[derive(Debug)]
pub(crate) struct WatchedIo<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> WatchedIo<T> {
    pub(crate) fn new(inner: T, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }

    pub(crate) fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WatchedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.on_read(&buf.filled()[before..]);
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WatchedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.activity.on_write(result.is_pending());
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.activity.on_write(result.is_pending());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn timeouts() -> TimeoutsSpec {
        TimeoutsSpec {
            tls_handshake_ms: 1000,
            request_header_ms: 100,
            request_body_ms: 1000,
            keepalive_ms: 500,
            send_ms: 300,
        }
    }

    #[tokio::test]
    async fn deadlines_follow_the_connection_state() {
        let activity = Activity::new();
        let t = timeouts();
        assert_eq!(
            activity.next_deadline(&t).unwrap().1,
            Expiry::RequestHeader,
            "a fresh connection must send a request head in time"
        );
        let (n, guard) = activity.begin_request();
        assert_eq!(n, 1);
        assert_eq!(activity.next_deadline(&t), None);
        activity.on_write(true);
        assert_eq!(activity.next_deadline(&t).unwrap().1, Expiry::Send);
        activity.on_write(false);
        drop(guard);
        assert_eq!(activity.next_deadline(&t).unwrap().1, Expiry::KeepAlive);
        activity.on_read(b"GET / HTTP/1.1\r\n");
        let (at, expiry) = activity.next_deadline(&t).unwrap();
        assert_eq!(expiry, Expiry::RequestHeader);
        // Later reads do not move the head deadline.
        tokio::time::sleep(Duration::from_millis(20)).await;
        activity.on_read(b"Host: x\r\n");
        assert_eq!(activity.next_deadline(&t).unwrap().0, at);
    }

    /// Whether the connection task would be woken now (a stored notification), taking it.
    fn woken(activity: &Activity) -> bool {
        use std::future::Future;
        let notified = std::pin::pin!(activity.changed.notified());
        notified
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_ready()
    }

    #[tokio::test(start_paused = true)]
    async fn only_a_change_that_brings_a_deadline_before_the_timer_wakes_the_task() {
        let t = timeouts();
        let activity = Activity::new();
        let (_, in_flight) = activity.begin_request();
        assert!(!woken(&activity), "a request's start brings no deadline");
        // No timer set: a response waiting on the client must set one.
        let body = guard_body(crate::http::response::full("answer"), in_flight);
        assert!(woken(&activity));
        let send = activity.arm(&t, None).expect("the send deadline");
        assert_eq!(send, Instant::now() + Duration::from_millis(t.send_ms));
        // The answer ends: the keep-alive deadline (500 ms) comes after the timer (300 ms).
        drop(body);
        assert!(
            !woken(&activity),
            "a later deadline is found when the timer fires"
        );
        assert_eq!(activity.arm(&t, Some(send)), None, "the timer stays");
        // A read starts a request head, due in 100 ms: before the timer.
        activity.on_read(b"GET / HTTP/1.1\r\n");
        assert!(woken(&activity));
        let head = activity.arm(&t, Some(send)).expect("the head deadline");
        assert_eq!(
            head,
            Instant::now() + Duration::from_millis(t.request_header_ms)
        );
        // A write that blocks later than that brings its send deadline after the timer.
        tokio::time::advance(Duration::from_millis(10)).await;
        let (_, in_flight) = activity.begin_request();
        activity.on_write(true);
        assert!(!woken(&activity));
        activity.on_write(false);
        drop(in_flight);
        assert!(!woken(&activity));
        // A close request always wakes the task.
        activity.request_close();
        assert!(woken(&activity));
        // Once the task stops watching, every change that makes a deadline wakes again.
        activity.disarm();
        activity.on_read(b"GET");
        assert!(woken(&activity));
    }

    /// Every connection, idle ones too, holds an `Activity` behind an `Arc`: 16 bytes of counts
    /// and 144 of record fill jemalloc's 160-byte size class, the next one is 192.
    #[test]
    fn the_record_of_an_idle_connection_stays_small() {
        assert!(std::mem::size_of::<Activity>() <= 144);
    }

    #[tokio::test]
    async fn http2_frames_between_requests_only_bring_the_close_forward() {
        // A keep-alive shorter than the head deadline: a frame after the response (a SETTINGS
        // acknowledgement, a WINDOW_UPDATE) must not push the keep-alive deadline back.
        let short_keepalive = TimeoutsSpec {
            keepalive_ms: 50,
            request_header_ms: 1000,
            ..timeouts()
        };
        // Cleartext HTTP/2 is recognised by its preface.
        let activity = Activity::new();
        activity.on_read(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        let (_, guard) = activity.begin_request();
        drop(guard);
        activity.on_read(&[0, 0, 0, 4, 1, 0, 0, 0, 0]);
        assert_eq!(
            activity.next_deadline(&short_keepalive).unwrap().1,
            Expiry::KeepAlive
        );
        // A keep-alive longer than the head deadline: a client that only pings is closed at the
        // head deadline.
        assert_eq!(
            activity.next_deadline(&timeouts()).unwrap().1,
            Expiry::RequestHeader
        );
        // The same over TLS, where ALPN says it; HTTP/1.1 keeps "a read starts a request head".
        let activity = Activity::new();
        activity.on_read(&[0x16, 3, 1]);
        activity.speaks_http2();
        let (_, guard) = activity.begin_request();
        drop(guard);
        activity.on_read(&[0, 0, 8, 6, 0]);
        assert_eq!(
            activity.next_deadline(&short_keepalive).unwrap().1,
            Expiry::KeepAlive
        );
        let http1 = Activity::new();
        http1.on_read(b"GET / HTTP/1.1\r\n");
        let (_, guard) = http1.begin_request();
        drop(guard);
        http1.on_read(b"GET /next HTTP/1.1\r\n");
        assert_eq!(
            http1.next_deadline(&short_keepalive).unwrap().1,
            Expiry::RequestHeader
        );
    }
}
