//! The TLS handshake of a connection on an HTTPS listener, within the handshake deadline; ALPN
//! then says whether the connection speaks HTTP/2 or HTTP/1.1.

use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::TlsAcceptor;
use tracing::debug;

use crate::acme::challenges::ACME_TLS_ALPN;
use crate::conn::accept::{ListenerContext, StopSignal};
use crate::conn::deadlines::{Activity, WatchedIo};
use crate::conn::http1_session::serve_http1;
use crate::conn::hyper_session::serve_http;
use crate::state::State;
use crate::upstream::buffered::ConnInfo;

pub(super) async fn serve_tls(
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
            if tls.get_ref().1.alpn_protocol() == Some(ACME_TLS_ALPN) {
                // A CA's TLS-ALPN-01 validation: the handshake was the answer; no HTTP follows.
                debug!(%peer, "ACME TLS-ALPN-01 validation handshake answered");
                return;
            }
            let sni = tls.get_ref().1.server_name().map(str::to_owned);
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            if h2 {
                activity.speaks_http2();
            }
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
