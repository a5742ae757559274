//! Accept loops and connection serving for every listener.
//!
//! hyper-util's automatic builder speaks HTTP/1.1 and HTTP/2 (chosen by ALPN over TLS, by the
//! connection preface in cleartext). Every connection is watched by a graceful-shutdown handle so
//! that a stop lets in-flight requests finish.

use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use protocol::control::{ListenerKind, ListenerSpec};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use crate::proxy::ConnInfo;
use crate::state::State;
use crate::{admin, service};

/// Longest a client may take to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a client may take to send a complete request head (slowloris defence).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after a failed accept (EMFILE and friends), so the loop backs off instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// One bound listener, ready to serve.
pub struct Listener {
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
pub type StopSignal = watch::Receiver<Option<Duration>>;

fn http_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(128)
        .max_header_list_size(64 * 1024);
    builder
}

/// Accepts and serves connections until `stop` fires, then waits (up to its deadline) for open
/// connections to finish.
pub async fn serve(listener: Listener, state: Arc<State>, mut stop: StopSignal) {
    let builder = http_builder();
    let graceful = GracefulShutdown::new();
    let https = listener.spec.kind == ListenerKind::Https;
    let admin = listener.spec.kind == ListenerKind::Admin;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.tcp.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    warn!(listener = %listener.spec.name, error = %e, "accept failed; backing off");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let tracker = state.metrics.connection(&listener.spec.name);
        let conn = Arc::new(ConnInfo {
            local: stream.local_addr().unwrap_or(listener.spec.address),
            peer,
            https,
            tracker: tracker.clone(),
        });
        let stream = state.metrics.count_bytes(stream, &listener.spec.name);
        let state = state.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = listener.tls.clone();
        tokio::spawn(async move {
            if admin {
                let service =
                    service_fn(move |request| admin::handle(state.clone(), conn.clone(), request));
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                let _ = watcher.watch(connection.into_owned()).await;
                return;
            }
            let service =
                service_fn(move |request| service::handle(state.clone(), conn.clone(), request));
            let result = match tls {
                None => {
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(connection.into_owned()).await
                }
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(stream)) => {
                                tracker.tls_established(stream.get_ref().1);
                                stream
                            }
                            Ok(Err(e)) => {
                                tracker.tls_failed("error");
                                debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracker.tls_failed("timeout");
                                debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(connection.into_owned()).await
                }
            };
            if let Err(e) = result {
                debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    let deadline = stop.borrow().unwrap_or_default();
    drop(listener);
    if tokio::time::timeout(deadline, graceful.shutdown())
        .await
        .is_err()
    {
        warn!("shutdown deadline reached with connections still open; closing them");
    }
}
