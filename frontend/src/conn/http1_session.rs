//! A public HTTP/1.1 connection: served by a hyper connection while requests come, parked outside
//! hyper while idle ([`crate::conn::parking`]) with nothing but the socket, until the client
//! leaves, a deadline passes or a stop comes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tracing::debug;

use crate::conn::accept::{ListenerContext, StopSignal};
use crate::conn::deadlines::Activity;
use crate::conn::drive::{drive, sleep, GracefulConnection, DRAIN_LINGER};
use crate::conn::hyper_session::public_handler;
use crate::conn::parking::{Parkable, ParkingIo};
use crate::state::State;
use crate::upstream::buffered::ConnInfo;

/// A public HTTP/1.1 connection: served by a hyper connection while requests come, parked
/// outside hyper while idle ([`crate::conn::parking`]), until the client leaves or a deadline passes.
pub(super) async fn serve_http1<I: Parkable>(
    mut io: I,
    conn: ConnInfo,
    context: Arc<ListenerContext>,
    state: Arc<State>,
    activity: Arc<Activity>,
    mut stop: StopSignal,
) {
    let conn = Arc::new(conn);
    let mut unread = Bytes::new();
    loop {
        if unread.is_empty() && !io.has_buffered_input() {
            let timeouts = &state.spec().timeouts;
            if let Err(reason) = wait_for_request(io.socket(), &activity, timeouts, &mut stop).await
            {
                debug!(peer = %conn.peer, reason, "closing idle connection");
                return;
            }
        }
        let active = serve_until_idle(io, unread, &conn, &context, &state, &activity, &stop);
        match Box::pin(active).await {
            Some((parked_io, left)) => (io, unread) = (parked_io, left),
            None => return,
        }
    }
}

/// Serves requests on one hyper connection until it parks (then the socket and any bytes
/// hyper did not use come back) or ends (`None`).
async fn serve_until_idle<I: Parkable>(
    io: I,
    unread: Bytes,
    conn: &Arc<ConnInfo>,
    context: &ListenerContext,
    state: &Arc<State>,
    activity: &Arc<Activity>,
    stop: &StopSignal,
) -> Option<(I, Bytes)> {
    let timeouts = state.spec().timeouts.clone();
    let peer = conn.peer;
    let service = service_fn(public_handler(
        state.clone(),
        conn.clone(),
        activity.clone(),
    ));
    let parking = ParkingIo::new(io, activity.clone(), unread);
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
        let mut io = parking.into_inner();
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut io).await;
        return None;
    }
    // Copied: even empty, hyper's buffer still owns its whole allocation.
    let unread = Bytes::copy_from_slice(&parts.read_buf);
    Some((parking.into_inner(), unread))
}

/// Waits, holding nothing but the socket, until the next request starts to arrive. `Err` says
/// why the connection should close instead: a deadline passed, a stop, or a socket error.
async fn wait_for_request(
    socket: &tokio::net::TcpStream,
    activity: &Activity,
    timeouts: &protocol::control::TimeoutsSpec,
    stop: &mut StopSignal,
) -> Result<(), &'static str> {
    // While stopping, an idle connection still gets the drain linger (see `drive`).
    let mut linger = stop
        .borrow()
        .is_some()
        .then(|| tokio::time::Instant::now() + DRAIN_LINGER);
    loop {
        let deadline = activity.next_deadline(timeouts).map(|(at, _)| at);
        // One timer for both: the sooner of the connection's deadline and the linger.
        let wake = deadline.into_iter().chain(linger).min();
        // A peek, not `readable()`: readiness can be reported for a socket with nothing to
        // read (tokio documents such false positives, and a fresh socket showed them), and a
        // hyper connection started for nothing would hold its buffers until the next request.
        let mut first = [0u8; 1];
        tokio::select! {
            // A request that arrived is served even when a deadline passed at the same time.
            biased;
            peeked = socket.peek(&mut first) => {
                return match peeked {
                    Ok(0) => Err("client closed the connection"),
                    Ok(_) => Ok(()),
                    Err(_) => Err("socket error"),
                };
            }
            () = sleep(wake) => {
                if linger.is_some_and(|at| at <= tokio::time::Instant::now()) {
                    return Err("stopping");
                }
                if let Some((at, expiry)) = activity.next_deadline(timeouts) {
                    if at <= tokio::time::Instant::now() {
                        return Err(expiry.describe());
                    }
                }
            }
            changed = stop.changed(), if linger.is_none() => {
                let _ = changed;
                linger = Some(tokio::time::Instant::now() + DRAIN_LINGER);
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
