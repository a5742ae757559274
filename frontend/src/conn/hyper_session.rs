//! Serving a connection with hyper: the builders (every limit set explicitly), the automatic
//! HTTP/1.1-or-HTTP/2 session used for HTTP/2, cleartext h2c and the admin listener, and the public
//! request handler shared with the parked HTTP/1.1 sessions.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use hyper::body::Incoming;

use crate::http::request_body::RequestBody;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use protocol::control::{FrontendSpec, ListenerKind, ListenerSpec};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::admin;
use crate::conn::accept::{ListenerContext, StopSignal};
use crate::conn::deadlines::Activity;
use crate::conn::drive::drive;
use crate::http::service;
use crate::state::State;
use crate::upstream::buffered::ConnInfo;

/// hyper's HTTP/1 builder for the public listeners, with the same settings as [`http_builder`].
pub(super) fn http1_builder(spec: &FrontendSpec) -> http1::Builder {
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
pub(super) fn http_builder(
    spec: &FrontendSpec,
    listener: &ListenerSpec,
) -> auto::Builder<TokioExecutor> {
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

pub(super) async fn serve_http<I>(
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
pub(super) type Answer = Pin<
    Box<
        dyn Future<Output = Result<hyper::Response<crate::http::response::Body>, Infallible>>
            + Send,
    >,
>;

/// The public listeners' request handler for one connection. Its futures are boxed so that an
/// HTTP/1.1 connection can be taken apart when it parks (hyper asks for an `Unpin` future there).
pub(super) fn public_handler(
    state: Arc<State>,
    conn: Arc<ConnInfo>,
    activity: Arc<Activity>,
) -> impl Fn(hyper::Request<Incoming>) -> Answer + Send + Clone + 'static {
    move |request| {
        Box::pin(service::handle(
            state.clone(),
            conn.clone(),
            activity.clone(),
            request.map(RequestBody::Hyper),
        ))
    }
}
