//! Accept loops and connection serving for every listener.
//!
//! hyper-util's automatic builder speaks HTTP/1.1 and HTTP/2 (chosen by ALPN over TLS, by the
//! connection preface in cleartext when the listener allows h2 with prior knowledge). Each
//! connection runs in its own task that also enforces the client-facing deadlines of
//! [`crate::conn::deadlines`], and reacts to a stop by closing gracefully (HTTP/1.1 after the current
//! response, HTTP/2 with GOAWAY). Public HTTP/1.1 connections are served by hyper's HTTP/1
//! builder directly, so that they can be parked outside hyper while idle ([`crate::conn::parking`]).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use protocol::control::{FrontendSpec, ListenerKind, ListenerSpec};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use crate::admin;
use crate::conn::deadlines::{Activity, Expiry, WatchedIo};
use crate::conn::limits::{ConnectionLimits, ConnectionSlot};
use crate::conn::parking::{Parkable, ParkingIo};
use crate::conn::proxy_protocol;
use crate::http::service;
use crate::state::State;
use crate::upstream::buffered::ConnInfo;

/// Pause after a failed accept (EMFILE and friends), so the loop backs off instead of spinning.
/// How long an idle connection stays open after a stop began, for a request already on its way.
const DRAIN_LINGER: Duration = Duration::from_millis(1000);
/// How often a lingering connection with a request under way is checked again.
const DRAIN_RECHECK: Duration = Duration::from_millis(100);
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// After a keep-alive timeout, how long an HTTP/2 client gets to take its GOAWAY.
const GOAWAY_GRACE: Duration = Duration::from_secs(1);
/// Connections the admin listener holds at once (probes and scrapers, never the public).
const ADMIN_MAX_CONNECTIONS: usize = 64;

/// One bound listener, ready to serve.
pub(crate) struct Listener {
    pub spec: ListenerSpec,
    pub tcp: TcpListener,
    pub tls: Option<TlsAcceptor>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("spec", &self.spec)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// `None` while serving; `Some(deadline)` once a stop was requested.
pub(crate) type StopSignal = watch::Receiver<Option<Duration>>;

/// hyper's HTTP/1 builder for the public listeners, with the same settings as [`http_builder`].
fn http1_builder(spec: &FrontendSpec) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true)
        .max_buf_size(spec.limits.max_header_bytes as usize)
        .max_headers(spec.limits.max_headers);
    builder
}

/// The hyper builder for one listener, with every limit set explicitly.
fn http_builder(spec: &FrontendSpec, listener: &ListenerSpec) -> auto::Builder<TokioExecutor> {
    let limits = &spec.limits;
    let h2 = &spec.http2;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // paddock enforces the header deadline itself (see `conn::deadlines`): hyper's timer would also
        // cut idle keep-alive connections at the same value.
        .header_read_timeout(None)
        .keep_alive(true)
        .max_buf_size(limits.max_header_bytes as usize)
        .max_headers(limits.max_headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(h2.max_concurrent_streams)
        .max_header_list_size(limits.max_header_bytes)
        .max_pending_accept_reset_streams(h2.max_pending_accept_reset_streams)
        .max_local_error_reset_streams(h2.max_local_error_reset_streams);
    if listener.kind == ListenerKind::Http && !listener.http2_prior_knowledge {
        builder = builder.http1_only();
    }
    builder
}

/// Accepts and serves connections until `stop` fires, then waits (up to its deadline) for open
/// connections to finish.
pub(crate) async fn serve(
    listener: Listener,
    state: Arc<State>,
    limits: Arc<ConnectionLimits>,
    mut stop: StopSignal,
) {
    let admin = listener.spec.kind == ListenerKind::Admin;
    let limits = if admin {
        ConnectionLimits::new(ADMIN_MAX_CONNECTIONS, 0)
    } else {
        limits
    };
    let context = Arc::new(ListenerContext {
        builder: http_builder(&state.spec(), &listener.spec),
        http1: http1_builder(&state.spec()),
        h2c: listener.spec.http2_prior_knowledge,
        https: listener.spec.kind == ListenerKind::Https,
        admin,
        tls: listener.tls.clone(),
        name: listener.spec.name.clone(),
        proxy_protocol: listener.spec.proxy_protocol,
    });
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.tcp.accept() => accepted,
            _ = stop.changed() => break,
            Some(_) = connections.join_next() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                warn!(listener = %listener.spec.name, error = %e, "accept failed; backing off");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // At the overall limit this listener stops accepting until a connection ends: the one
        // just accepted waits unread, the rest wait in the kernel's backlog. (Taking the permit
        // before accept would let an idle listener sit on a free permit.)
        let permit = tokio::select! {
            permit = limits.wait_for_room() => permit,
            _ = stop.changed() => break,
        };
        // Behind a PROXY-protocol balancer every socket comes from the balancer: counting per
        // address would throttle the balancer, not a client.
        let per_address = (!context.proxy_protocol).then(|| peer.ip());
        let Some(slot) = limits.admit(permit, per_address) else {
            debug!(listener = %listener.spec.name, %peer, "too many connections from this address; closing");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = ConnInfo {
            local: stream.local_addr().unwrap_or(listener.spec.address),
            peer,
            https: context.https,
            tracker: state.metrics.connection(&listener.spec.name),
            sni: None,
        };
        connections.spawn(serve_connection(
            stream,
            conn,
            context.clone(),
            state.clone(),
            stop.clone(),
            slot,
        ));
        while connections.try_join_next().is_some() {}
    }
    let deadline = stop.borrow().unwrap_or_default();
    drop(listener);
    let drained = tokio::time::timeout(deadline, async {
        while connections.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        warn!("shutdown deadline reached with connections still open; closing them");
        connections.abort_all();
    }
}

/// What every connection of one listener shares.
struct ListenerContext {
    builder: auto::Builder<TokioExecutor>,
    http1: http1::Builder,
    /// Cleartext HTTP/2 with prior knowledge is accepted (the automatic builder then decides).
    h2c: bool,
    https: bool,
    admin: bool,
    tls: Option<TlsAcceptor>,
    name: String,
    proxy_protocol: bool,
}

async fn serve_connection(
    mut stream: tokio::net::TcpStream,
    mut conn: ConnInfo,
    context: Arc<ListenerContext>,
    state: Arc<State>,
    stop: StopSignal,
    _slot: ConnectionSlot,
) {
    // Every step that is not the idle wait is boxed below: a task's future is as large as its
    // largest state, and a parked connection should hold no more than what it waits with.
    if context.proxy_protocol {
        let limit = Duration::from_millis(state.spec().timeouts.request_header_ms);
        let header = tokio::time::timeout(limit, proxy_protocol::read_header(&mut stream));
        match Box::pin(header).await {
            Ok(Ok(Some(client))) => conn.peer = client,
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                debug!(peer = %conn.peer, error = %e, "closing connection");
                return;
            }
            Err(_) => {
                debug!(peer = %conn.peer, "no PROXY header in time; closing connection");
                return;
            }
        }
    }
    // Built in a block, so that none of its locals keeps a slot in this function's future.
    let session: Pin<Box<dyn Future<Output = ()> + Send>> = {
        let activity = Activity::new();
        let counted = state.metrics.count_bytes(stream, &context.name);
        let io = WatchedIo::new(counted, activity.clone());
        match context.tls.clone() {
            None if context.admin || context.h2c => {
                Box::pin(serve_http(io, conn, context, state, activity, stop))
            }
            None => Box::pin(serve_http1(io, conn, context, state, activity, stop)),
            Some(acceptor) => Box::pin(serve_tls(
                io, acceptor, conn, context, state, activity, stop,
            )),
        }
    };
    session.await
}

async fn serve_tls(
    io: WatchedIo<crate::metrics::connections::CountingStream<tokio::net::TcpStream>>,
    acceptor: TlsAcceptor,
    conn: ConnInfo,
    context: Arc<ListenerContext>,
    state: Arc<State>,
    activity: Arc<Activity>,
    stop: StopSignal,
) {
    let peer = conn.peer;
    let limit = Duration::from_millis(state.spec().timeouts.tls_handshake_ms);
    match tokio::time::timeout(limit, Box::pin(acceptor.accept(io))).await {
        Ok(Ok(tls)) => {
            conn.tracker.tls_established(tls.get_ref().1);
            let sni = tls.get_ref().1.server_name().map(str::to_owned);
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            let conn = ConnInfo { sni, ..conn };
            if context.admin || h2 {
                Box::pin(serve_http(tls, conn, context, state, activity, stop)).await
            } else {
                serve_http1(tls, conn, context, state, activity, stop).await
            }
        }
        Ok(Err(e)) => {
            conn.tracker.tls_failed("error");
            debug!(%peer, error = %e, "TLS handshake failed")
        }
        Err(_) => {
            conn.tracker.tls_failed("timeout");
            debug!(%peer, listener = %context.name, "TLS handshake timed out; closing")
        }
    }
}

async fn serve_http<I>(
    io: I,
    conn: ConnInfo,
    context: Arc<ListenerContext>,
    state: Arc<State>,
    activity: Arc<Activity>,
    stop: StopSignal,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer = conn.peer;
    let io = TokioIo::new(io);
    let timeouts = state.spec().timeouts.clone();
    if context.admin {
        let conn = Arc::new(conn);
        let service =
            service_fn(move |request| admin::handle(state.clone(), conn.clone(), request));
        let connection = context.builder.serve_connection(io, service).into_owned();
        tokio::pin!(connection);
        drive(connection, peer, &activity, &timeouts, stop).await;
        return;
    }
    let service = service_fn(public_handler(state, Arc::new(conn), activity.clone()));
    let connection = context.builder.serve_connection(io, service).into_owned();
    tokio::pin!(connection);
    drive(connection, peer, &activity, &timeouts, stop).await;
}

/// One request's answer, as the public handler returns it.
type Answer = Pin<
    Box<
        dyn Future<Output = Result<hyper::Response<crate::http::response::Body>, Infallible>>
            + Send,
    >,
>;

/// The public listeners' request handler for one connection. Its futures are boxed so that an
/// HTTP/1.1 connection can be taken apart when it parks (hyper asks for an `Unpin` future there).
fn public_handler(
    state: Arc<State>,
    conn: Arc<ConnInfo>,
    activity: Arc<Activity>,
) -> impl Fn(hyper::Request<Incoming>) -> Answer + Send + Clone + 'static {
    move |request| {
        Box::pin(service::handle(
            state.clone(),
            conn.clone(),
            activity.clone(),
            request,
        ))
    }
}

/// A public HTTP/1.1 connection: served by a hyper connection while requests come, parked
/// outside hyper while idle ([`crate::conn::parking`]), until the client leaves or a deadline passes.
async fn serve_http1<I: Parkable>(
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

/// The part of a hyper connection that the connection task needs.
trait GracefulConnection:
    Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>>
{
    fn start_graceful_shutdown(self: std::pin::Pin<&mut Self>);
}

impl<I, S, B> GracefulConnection for auto::Connection<'static, I, S, TokioExecutor>
where
    S: hyper::service::Service<hyper::Request<Incoming>, Response = hyper::Response<B>>,
    S::Future: 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    TokioExecutor: auto::HttpServerConnExec<S::Future, B>,
{
    fn start_graceful_shutdown(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Runs a connection to its end while enforcing the deadlines, a requested close, and a stop.
/// `true` when the connection itself ended without an error (an HTTP/1.1 one may have parked).
async fn drive<C: GracefulConnection + ?Sized>(
    mut connection: Pin<&mut C>,
    peer: SocketAddr,
    activity: &Activity,
    timeouts: &protocol::control::TimeoutsSpec,
    mut stop: StopSignal,
) -> bool {
    let mut closing = false;
    // While stopping, an idle keep-alive connection is not closed at once: a client may be
    // sending its next request right now, and would see the close instead of an answer. It gets
    // a short linger; a request that arrives in it is answered with `Connection: close`. A
    // connection that starts while a stop is under way (an HTTP/1.1 one back from parking,
    // because a request arrived) is in its linger from the start: shutting it down at once
    // would drop the request that woke it.
    let mut linger = stop
        .borrow()
        .is_some()
        .then(|| tokio::time::Instant::now() + DRAIN_LINGER);
    loop {
        let next = activity.next_deadline(timeouts);
        let sleep_until = next.map(|(at, _)| at);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = &result {
                    debug!(%peer, error = %e, "connection ended with an error");
                }
                return result.is_ok();
            }
            () = sleep(sleep_until) => {
                let Some((at, expiry)) = activity.next_deadline(timeouts) else { continue };
                if at > tokio::time::Instant::now() {
                    continue;
                }
                debug!(%peer, reason = expiry.describe(), "closing connection");
                if expiry == Expiry::KeepAlive {
                    // An idle connection: HTTP/1.1 closes at once, HTTP/2 sends GOAWAY first.
                    connection.as_mut().start_graceful_shutdown();
                    let _ = tokio::time::timeout(GOAWAY_GRACE, connection.as_mut()).await;
                }
                return false;
            }
            () = activity.changed.notified() => {
                if !closing && activity.close_requested() {
                    closing = true;
                    linger = None;
                    connection.as_mut().start_graceful_shutdown();
                }
            }
            () = sleep(linger), if linger.is_some() => {
                if activity.is_idle() {
                    closing = true;
                    linger = None;
                    connection.as_mut().start_graceful_shutdown();
                } else {
                    // A request is under way: its answer will carry `Connection: close`.
                    linger = Some(tokio::time::Instant::now() + DRAIN_RECHECK);
                }
            }
            changed = stop.changed(), if !closing && linger.is_none() => {
                let _ = changed;
                linger = Some(tokio::time::Instant::now() + DRAIN_LINGER);
            }
        }
    }
}

async fn sleep(until: Option<tokio::time::Instant>) {
    match until {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
