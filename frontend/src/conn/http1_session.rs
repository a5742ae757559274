//! A public HTTP/1.1 connection: served by a hyper connection while requests come, parked outside
//! hyper while idle ([`crate::conn::parking`]) with nothing but the socket, until the client
//! leaves, a deadline passes or a stop comes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Response;
use hyper_util::rt::TokioIo;
use tokio::io::ReadBuf;
use tracing::debug;

use crate::conn::accept::{ListenerContext, StopSignal};
use crate::conn::deadlines::Activity;
use crate::conn::drive::{drive, GracefulConnection, DRAIN_LINGER};
use crate::conn::http1_direct::{self, Direct, FIRST_READ};
use crate::conn::hyper_session::{public_handler, Answer};
use crate::conn::idle_deadlines::{IdleDeadlines, IdleTimer, Wait};
use crate::conn::limits::ConnectionSlot;
use crate::conn::parking::{Parkable, ParkingIo};
use crate::http::response::Body;
use crate::state::State;
use crate::upstream::buffered::ConnInfo;

/// How often a parked connection with no deadline at all would look at the clock again.
const NO_DEADLINE_RECHECK: std::time::Duration = std::time::Duration::from_secs(3600);

/// A public HTTP/1.1 connection: served by a hyper connection while requests come, parked
/// outside hyper while idle ([`crate::conn::parking`]), until the client leaves or a deadline
/// passes.
///
/// This future is what a parked connection holds (a plain connection's task is this future, see
/// `conn::accept`), so it is kept small: `conn` comes shared, not by value; it is an `async`
/// block, not an `async fn` (an `async fn` stores each argument twice, as the argument and as
/// the local it is moved into); and `slot` (the connection's place under the connection limits)
/// is held until the end.
#[allow(clippy::manual_async_fn)] // on purpose, see above
pub(super) fn serve_http1<I: Parkable>(
    mut io: I,
    conn: Arc<ConnInfo>,
    context: Arc<ListenerContext>,
    state: Arc<State>,
    activity: Arc<Activity>,
    stop: StopSignal,
    slot: ConnectionSlot,
) -> impl Future<Output = ()> + Send {
    async move {
        let mut unread = Bytes::new();
        loop {
            let (unread_now, answered) = if unread.is_empty() {
                let timeouts = &state.spec().timeouts;
                let idle = &context.idle_deadlines;
                let first = match wait_for_request(&mut io, &activity, timeouts, idle).await {
                    Ok(first) => first,
                    Err(reason) => {
                        debug!(peer = %conn.peer, reason, "closing idle connection");
                        break;
                    }
                };
                // Boxed like the hyper connection below: a parked connection's future stays
                // small.
                let direct = http1_direct::serve(&mut io, first, &conn, &state, &activity);
                match Box::pin(direct).await {
                    Direct::Served { unread: left } => {
                        unread = left;
                        continue;
                    }
                    Direct::Closed => break,
                    Direct::Hyper { bytes, answered } => (bytes, answered),
                }
            } else {
                (std::mem::take(&mut unread), None)
            };
            // The hyper connection borrows the socket instead of taking it and giving it back:
            // an awaited value (here, what the served connection returns) keeps a slot in this
            // future as large as the value, and a TLS stream is over a kilobyte. Boxed for the
            // same reason: the hyper connection is large.
            let active = Box::pin(serve_until_idle(
                &mut io, unread_now, answered, &conn, &context, &state, &activity, &stop,
            ));
            match active.await {
                Some(left) => unread = left,
                None => break,
            }
        }
        drop(slot);
    }
}

/// Serves requests on one hyper connection until it parks (then any bytes hyper did not use come
/// back) or ends (`None`). `answered` is the answer the direct path already made for the request
/// at the start of `unread`: hyper parses that request again and sends this answer for it.
#[allow(clippy::too_many_arguments)]
async fn serve_until_idle<I: Parkable>(
    io: &mut I,
    unread: Bytes,
    answered: Option<Box<Response<Body>>>,
    conn: &Arc<ConnInfo>,
    context: &ListenerContext,
    state: &Arc<State>,
    activity: &Arc<Activity>,
    stop: &StopSignal,
) -> Option<Bytes> {
    let timeouts = state.spec().timeouts.clone();
    let peer = conn.peer;
    // The request answered already was counted when the direct path began it.
    let requests_at_start = activity.requests() - u64::from(answered.is_some());
    let handler = public_handler(state.clone(), conn.clone(), activity.clone());
    let answered = std::sync::Mutex::new(answered);
    let service = service_fn(
        move |request| match answered.lock().expect("not poisoned").take() {
            Some(response) => Box::pin(std::future::ready(Ok(*response))) as Answer,
            None => handler(request),
        },
    );
    let parking = ParkingIo::new(io, activity.clone(), unread, requests_at_start);
    let mut connection = Box::pin(Http1Connection(
        context
            .http1
            .serve_connection(TokioIo::new(parking), service),
    ));
    if !drive(connection.as_mut(), peer, activity, &timeouts, stop.clone()).await {
        return None;
    }
    let parts = Pin::into_inner(connection).0.into_parts();
    let parking = parts.io.into_inner();
    if !parking.parked() {
        // hyper ended the connection itself (`Connection: close`, a stop): close it the way
        // hyper would have without `without_shutdown`, with a flush and a FIN (TLS: close_notify).
        let io = parking.into_inner();
        let _ = tokio::io::AsyncWriteExt::shutdown(io).await;
        return None;
    }
    // Copied: even empty, hyper's buffer still owns its whole allocation.
    Some(Bytes::copy_from_slice(&parts.read_buf))
}

/// Waits, holding nothing but the socket, until the next request starts to arrive, and returns
/// its first bytes. `Err` says why the connection should close instead: a deadline passed, a
/// stop, the client left, or a socket error.
fn wait_for_request<'a, I: Parkable>(
    io: &'a mut I,
    activity: &'a Activity,
    timeouts: &'a protocol::control::TimeoutsSpec,
    idle: &'a IdleDeadlines,
) -> WaitForRequest<'a, I> {
    WaitForRequest {
        io,
        activity,
        timeouts,
        // While stopping, an idle connection still gets the drain linger (see `drive`).
        linger: idle
            .stopping()
            .then(|| tokio::time::Instant::now() + DRAIN_LINGER),
        timer: idle.timer(),
    }
}

/// The future of [`wait_for_request`]: every parked connection holds one, so it is a plain
/// struct polled by hand, each field once (an `async fn` around a `poll_fn` kept its arguments
/// and the closure's references to them both, and a `select!` would keep all its branches'
/// futures). The socket is read with `poll_read` (its waker lives in the socket's
/// registration); the deadline and the stop are the listener's `IdleDeadlines`, of which this
/// holds one small timer.
struct WaitForRequest<'a, I> {
    io: &'a mut I,
    activity: &'a Activity,
    timeouts: &'a protocol::control::TimeoutsSpec,
    /// When the drain linger ends, once the stop has come.
    linger: Option<tokio::time::Instant>,
    timer: IdleTimer<'a>,
}

impl<I: Parkable> Future for WaitForRequest<'_, I> {
    type Output = Result<Bytes, &'static str>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Some(socket) = this.io.client_socket().filter(|s| s.is_asleep()) {
            // Woken while the socket slept in the listener's epoll set: by the client, a
            // deadline or the stop. Whichever, tokio watches it again from here, for the rest
            // of this wait (`timer.deep` stays set): its first read after the move finds no
            // readiness yet, and going back to sleep then would lose the client's bytes to a
            // loop of moves.
            if this.timer.deadlines().wake_deep(socket).is_err() {
                return Poll::Ready(Err("socket error"));
            }
        }
        // A read, not a readiness wait: readiness can be reported for a socket with nothing to
        // read (tokio documents such false positives, and a fresh socket showed them), and a
        // hyper connection started for nothing would hold its buffers until the next request.
        // The buffer lives on the stack for this poll only, so a parked connection holds none.
        // A request that arrived is served even when a deadline passed at the same time.
        let mut space = [std::mem::MaybeUninit::<u8>::uninit(); FIRST_READ];
        let mut first = ReadBuf::uninit(&mut space);
        match Pin::new(&mut *this.io).poll_read(cx, &mut first) {
            Poll::Ready(Ok(())) if first.filled().is_empty() => {
                return Poll::Ready(Err("client closed the connection"))
            }
            Poll::Ready(Ok(())) => return Poll::Ready(Ok(Bytes::copy_from_slice(first.filled()))),
            Poll::Ready(Err(_)) => return Poll::Ready(Err("socket error")),
            Poll::Pending => {}
        }
        loop {
            if this.linger.is_none() && this.timer.deadlines().stopping() {
                this.linger = Some(tokio::time::Instant::now() + DRAIN_LINGER);
            }
            let deadline = this.activity.next_deadline(this.timeouts).map(|(at, _)| at);
            // Once idle long enough, the socket goes to sleep outside tokio (not while the
            // stop's linger runs: that is the last second of the connection anyway).
            let deep_at = (this.linger.is_none() && !this.timer.deep)
                .then(|| this.activity.idle_since())
                .flatten()
                .and_then(|since| this.timer.deadlines().deep_park_at(since));
            // One timer for all: the sooner of the connection's deadline, the linger and the
            // move to deep sleep. A parked connection always has a deadline (nothing is in
            // flight); the fallback only keeps the stop's wake-up if that ever changes.
            let wake = deadline
                .into_iter()
                .chain(this.linger)
                .chain(deep_at)
                .min()
                .unwrap_or_else(|| tokio::time::Instant::now() + NO_DEADLINE_RECHECK);
            match this.timer.poll_until(wake, this.linger.is_some(), cx) {
                Wait::Armed => return Poll::Pending,
                // The next turn takes the linger.
                Wait::Stopping => continue,
                Wait::Due => {}
            }
            let now = tokio::time::Instant::now();
            if this.linger.is_some_and(|at| at <= now) {
                return Poll::Ready(Err("stopping"));
            }
            if let Some((at, expiry)) = this.activity.next_deadline(this.timeouts) {
                if at <= now {
                    return Poll::Ready(Err(expiry.describe()));
                }
            }
            if deep_at.is_some_and(|at| at <= now) {
                if let Some(socket) = this.io.client_socket() {
                    this.timer.deadlines().sleep_deep(socket, &this.timer);
                }
                // Set even when the socket stayed with tokio: one move per wait.
                this.timer.deep = true;
            }
        }
    }
}

/// A hyper HTTP/1 connection that is not shut down when it ends, so its socket can be reused.
struct Http1Connection<I, S>(http1::Connection<I, S>)
where
    S: hyper::service::HttpService<Incoming>;

impl<I, S, B> Future for Http1Connection<I, S>
where
    S: hyper::service::Service<hyper::Request<Incoming>, Response = hyper::Response<B>> + Unpin,
    S::Future: Unpin,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
{
    type Output = Result<(), Box<dyn std::error::Error + Send + Sync>>;

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        self.0.poll_without_shutdown(cx).map_err(Into::into)
    }
}

impl<I, S, B> GracefulConnection for Http1Connection<I, S>
where
    S: hyper::service::Service<hyper::Request<Incoming>, Response = hyper::Response<B>> + Unpin,
    S::Future: Unpin,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
{
    fn start_graceful_shutdown(mut self: Pin<&mut Self>) {
        Pin::new(&mut self.0).graceful_shutdown();
    }
}
