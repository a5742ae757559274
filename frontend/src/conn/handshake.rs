//! The TLS handshake of a connection on an HTTPS listener, within the handshake deadline; ALPN
//! then says whether the connection speaks HTTP/2 or HTTP/1.1.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::TlsAcceptor;
use tracing::debug;

use crate::acme::challenges::ACME_TLS_ALPN;
use crate::conn::accept::{http_session, ListenerContext, StopSignal};
use crate::conn::deadlines::Activity;
use crate::conn::limits::ConnectionSlot;
use crate::state::State;
use crate::upstream::buffered::ConnInfo;

/// The TLS handshake, then the connection's HTTP session.
///
/// A TLS connection's task is this future (see `conn::accept`), held for the connection's whole
/// life, so it keeps only small things: it is an `async` block, not an `async fn` (which would
/// store each argument twice), `conn` comes boxed, and the session after the handshake is built
/// by [`session_after_handshake`], a plain function, and boxed. Built here instead, the TLS
/// stream (over a kilobyte) and the session's own copy of it would each keep a slot in this
/// future: a value moved out of a local still has its place in the future.
#[allow(clippy::too_many_arguments)] // each is one piece of the connection the session takes over
#[allow(clippy::manual_async_fn)] // on purpose, see above
pub(super) fn serve_tls(
    io: PlainIo,
    acceptor: TlsAcceptor,
    conn: Box<ConnInfo>,
    context: Arc<ListenerContext>,
    state: Arc<State>,
    activity: Arc<Activity>,
    stop: StopSignal,
    slot: ConnectionSlot,
) -> impl Future<Output = ()> + Send {
    async move {
        let peer = conn.peer;
        let limit = Duration::from_millis(state.spec().timeouts.tls_handshake_ms);
        let handshake = tokio::time::timeout(limit, Box::pin(acceptor.accept(io)));
        // Matched in place: a named result would keep its slot (the TLS stream's size) in this
        // future for the connection's life.
        let session = match handshake.await {
            Ok(Ok(tls)) => {
                session_after_handshake(tls, *conn, context, state, activity, stop, slot)
            }
            Ok(Err(e)) => {
                conn.tracker.tls_failed("error");
                debug!(%peer, error = %e, "TLS handshake failed");
                None
            }
            Err(_) => {
                conn.tracker.tls_failed("timeout");
                debug!(%peer, listener = %context.name, "TLS handshake timed out; closing");
                None
            }
        };
        if let Some(session) = session {
            session.await;
        }
    }
}

type PlainIo = crate::conn::parking::PlainStream;

/// The HTTP session of a connection whose handshake completed (`None`: nothing follows it).
fn session_after_handshake(
    tls: tokio_rustls::server::TlsStream<PlainIo>,
    conn: ConnInfo,
    context: Arc<ListenerContext>,
    state: Arc<State>,
    activity: Arc<Activity>,
    stop: StopSignal,
    slot: ConnectionSlot,
) -> Option<Pin<Box<dyn Future<Output = ()> + Send>>> {
    let peer = conn.peer;
    conn.tracker.tls_established(tls.get_ref().1);
    if tls.get_ref().1.alpn_protocol() == Some(ACME_TLS_ALPN) {
        // A CA's TLS-ALPN-01 validation: the handshake was the answer; no HTTP follows.
        debug!(%peer, "ACME TLS-ALPN-01 validation handshake answered");
        return None;
    }
    let sni = tls.get_ref().1.server_name().map(Box::from);
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    if h2 {
        activity.speaks_http2();
    }
    let conn = ConnInfo { sni, ..conn };
    let any_version = context.admin || h2;
    Some(http_session(
        tls,
        conn,
        context,
        state,
        activity,
        stop,
        slot,
        any_version,
    ))
}
