//! HTTP/3 on HTTPS listeners with `http3 = true`: QUIC (quinn) on a UDP socket at the listener's
//! address and port, HTTP/3 framing (h3) over it, and every request handed to the same service
//! as HTTP/1.1 and HTTP/2 (`crate::http::service`): routing, rules, static files, pools, limits
//! and metrics are the same. The TCP listener announces it with `Alt-Svc`.
//!
//! The TLS configuration is the listener's own (certificates, SNI, ACME swaps, session tickets),
//! with ALPN `h3` and no 0-RTT: early data could be replayed, and a replayed POST would reach a
//! worker twice. The UDP socket is bound by the front end before it drops its privileges; a
//! restarted or upgraded front end binds it again, so QUIC connections do not survive a restart
//! (clients reconnect, over TCP if need be).

mod body;
mod request;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use http::HeaderValue;
use protocol::control::{FrontendSpec, ListenerSpec};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::conn::limits::ConnectionLimits;
use crate::state::State;

pub(crate) use body::RequestStreamBody;

/// How long `Alt-Svc` tells clients to remember the HTTP/3 endpoint.
const ALT_SVC_MAX_AGE_SECS: u32 = 86_400;

/// The `Alt-Svc` value a TCP listener sends when it also serves HTTP/3.
pub(crate) fn alt_svc(spec: &ListenerSpec) -> Option<HeaderValue> {
    spec.http3.then(|| {
        let value = format!("h3=\":{}\"; ma={ALT_SVC_MAX_AGE_SECS}", spec.address.port());
        HeaderValue::from_str(&value).expect("a valid header value")
    })
}

/// An HTTP/3 endpoint ready to serve one listener.
#[derive(Debug)]
pub(crate) struct Http3Listener {
    pub(crate) name: String,
    endpoint: quinn::Endpoint,
}

impl Http3Listener {
    /// Binds the UDP socket at `spec.address` (the TCP listener's bound address) with the
    /// listener's TLS configuration.
    pub(crate) fn bind(
        spec: &ListenerSpec,
        transport: &Arc<quinn::TransportConfig>,
        tls: &rustls::ServerConfig,
    ) -> anyhow::Result<Self> {
        let mut tls = tls.clone();
        tls.alpn_protocols = vec![b"h3".to_vec()];
        // No 0-RTT: early data can be replayed by an attacker.
        tls.max_early_data_size = 0;
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
            .context("the TLS configuration cannot carry QUIC")?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        server.transport_config(transport.clone());
        let socket = std::net::UdpSocket::bind(spec.address)
            .with_context(|| format!("cannot bind UDP {} for HTTP/3", spec.address))?;
        let endpoint = quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            Some(server),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .context("cannot start the QUIC endpoint")?;
        Ok(Self {
            name: spec.name.clone(),
            endpoint,
        })
    }

    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        self.endpoint.local_addr().ok()
    }
}

/// QUIC's limits from the front end's: the keep-alive timeout closes an idle connection, and a
/// connection carries as many requests at once as an HTTP/2 one may.
pub(crate) fn transport(spec: &FrontendSpec) -> Arc<quinn::TransportConfig> {
    let mut transport = quinn::TransportConfig::default();
    let idle = Duration::from_millis(spec.timeouts.keepalive_ms.max(1));
    transport.max_idle_timeout(quinn::IdleTimeout::try_from(idle).ok());
    transport.max_concurrent_bidi_streams(spec.http2.max_concurrent_streams.into());
    // Clients open control and QPACK streams only; nothing else of theirs is read.
    transport.max_concurrent_uni_streams(8u32.into());
    Arc::new(transport)
}

/// Accepts QUIC connections until the stop signal, then lets the open ones finish within the
/// stop's deadline.
pub(crate) async fn serve(
    listener: Http3Listener,
    state: Arc<State>,
    limits: Arc<ConnectionLimits>,
    mut stop: watch::Receiver<Option<Duration>>,
) {
    let local = listener.local_addr();
    info!(listener = %listener.name, address = ?local, "listening for HTTP/3 (QUIC)");
    let mut connections = JoinSet::new();
    loop {
        let incoming = tokio::select! {
            incoming = listener.endpoint.accept() => match incoming {
                Some(incoming) => incoming,
                None => break,
            },
            _ = stop.changed() => break,
        };
        let peer = incoming.remote_address();
        let Some(permit) = limits.try_room() else {
            debug!(listener = %listener.name, %peer, "connection limit reached; refusing QUIC");
            incoming.refuse();
            continue;
        };
        let Some(slot) = limits.admit(permit, Some(peer.ip())) else {
            debug!(listener = %listener.name, %peer, "too many connections from this address; refusing QUIC");
            incoming.refuse();
            continue;
        };
        connections.spawn(request::serve_connection(
            incoming,
            local,
            listener.name.clone(),
            state.clone(),
            slot,
            stop.clone(),
        ));
        while connections.try_join_next().is_some() {}
    }
    let deadline = stop.borrow().unwrap_or_default();
    // No new connections; open ones finish their requests, then are closed.
    listener.endpoint.set_server_config(None);
    let drained = tokio::time::timeout(deadline, async {
        while connections.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        warn!(listener = %listener.name, "HTTP/3 connections still open at the stop deadline; closing them");
    }
    listener.endpoint.close(0u32.into(), b"server stopping");
    listener.endpoint.wait_idle().await;
}
