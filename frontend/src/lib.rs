//! paddock's front end: the process that holds every client connection.
//!
//! It terminates TLS, speaks HTTP/1.1 and HTTP/2, routes each request (static file, script in a
//! pool, redirect), buffers complete request bodies, and sends scripts to worker slots over
//! FastCGI, reading each reply as fast as the worker writes it. No client ever holds a worker.
//!
//! It is started by the master (`paddock serve`) as `paddock frontend`, with its listeners and the
//! control channel as inherited descriptors, and learns everything else from control messages.
//!
//! # Layout
//! - `server` — accept loops, TLS handshakes, hyper connections, graceful stop.
//! - `parking` — idle HTTP/1.1 connections held outside hyper, with nothing but the socket.
//! - `activity` — per-connection deadlines (request head, keep-alive, send) and the socket wrapper.
//! - `conn_limits` — overall and per-address connection counts.
//! - `service` — the public request path: route, buffer, dispatch, answer.
//! - `vhost` — which site answers a host name.
//! - `site_policy` — HTTPS redirect, HSTS, custom error pages.
//! - `site_rules` — a site's native rules: deny, client addresses, rate limits, basic auth,
//!   rewrites, no-scripts paths, response headers.
//! - `router` — URL path → static file / script + PATH_INFO / redirect / 404.
//! - `static_files` — files: small ones from `file_cache` (in memory), the rest via tower-http.
//! - `access_log` — combined or JSON lines, written by a thread, reopened on SIGUSR1.
//! - `client_addr` — the client behind trusted proxies (Forwarded, X-Forwarded-For).
//! - `body` — request-body buffering (memory, then temp file; 413, 408).
//! - `compression` — gzip/brotli for dynamic text responses.
//! - `dispatch` — per-pool slots and FIFO queue.
//! - `fastcgi_client` — one FastCGI exchange on a persistent connection.
//! - `worker_call` — one script request on a pool: queue, connection, exchange, retries,
//!   deadline; shared by buffered and streamed responses.
//! - `script_error` — one classification of script-request failures (source, retryability):
//!   status code, retry metric label, log level, the worker's fate.
//! - `proxy` — a buffered script request; the CGI meta-variables.
//! - `response_buffer` — worker responses in memory, then a temp file; the client body from them.
//! - `streaming` — unbuffered script responses for the routes that opt in.
//! - `worker_response` — CGI reply → HTTP response.
//! - `proxy_protocol` — PROXY v1/v2 headers on listeners that opt in.
//! - `worker_stderr` — FCGI_STDERR into the log, rate-limited per pool.
//! - `admin` — `/healthz`, `/readyz`, `/status` (HTML and JSON), `/metrics`.
//! - `metrics` — Prometheus metrics and the live worker figures behind `/status`.
//! - [`tls`] — certificates by SNI, reload, and the self-signed fallback.
//! - `privileges` — switching from root to the configured user after start-up.
//! - `control`, `state`, `inherited` — the master link, shared state, descriptor hand-over.

mod access_log;
mod activity;
mod admin;
mod body;
mod client_addr;
mod compression;
mod conn_limits;
mod control;
mod dispatch;
mod fastcgi_client;
mod file_cache;
mod inherited;
mod metrics;
mod parking;
mod privileges;
mod proxy;
mod proxy_protocol;
mod response;
mod response_buffer;
pub mod router;
mod script_error;
mod server;
mod service;
mod site_policy;
pub mod site_rules;
mod state;
mod static_files;
mod streaming;
pub mod tls;
mod vhost;
mod worker_call;
mod worker_response;
mod worker_stderr;

use std::os::unix::net::UnixStream;
use std::sync::Arc;

use anyhow::{bail, Context};
use protocol::control::{ToFrontend, ToMaster, CONTROL_FD, FIRST_LISTENER_FD};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tracing::info;

use crate::conn_limits::ConnectionLimits;
use crate::control::Inbox;
use crate::server::Listener;
use crate::state::State;

/// Entry point of the `paddock frontend` role: claims the inherited descriptors and serves until
/// the master says stop.
pub fn run_inherited() -> anyhow::Result<()> {
    let control = UnixStream::from(inherited::claim(CONTROL_FD)?);
    control.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("paddock-frontend")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(control))
}

async fn run(control: UnixStream) -> anyhow::Result<()> {
    let (reader, writer) = tokio::net::UnixStream::from_std(control)?.into_split();
    let mut inbox = Inbox::new(reader);
    let mut spec = match inbox.next().await? {
        Some(ToFrontend::Configure(spec)) => *spec,
        other => bail!("expected the configuration from the master, got {other:?}"),
    };
    let mut listeners = Vec::new();
    let mut certificates = Vec::new();
    for (i, listener_spec) in spec.listeners.iter_mut().enumerate() {
        let fd = inherited::claim(FIRST_LISTENER_FD + i as i32)?;
        let std_listener = std::net::TcpListener::from(fd);
        std_listener.set_nonblocking(true)?;
        // The bound address (a configured port 0 became a real one): redirects to the HTTPS
        // listener need it.
        if let Ok(bound) = std_listener.local_addr() {
            listener_spec.address = bound;
        }
        let tls = match listener_spec.kind {
            protocol::control::ListenerKind::Https => {
                let store = tls::CertificateStore::load(listener_spec)
                    .and_then(|store| Ok((store.server_config()?, store)))
                    .with_context(|| format!("listener `{}`", listener_spec.name))?;
                certificates.push(store.1);
                Some(TlsAcceptor::from(store.0))
            }
            _ => None,
        };
        listeners.push(Listener {
            spec: listener_spec.clone(),
            tcp: tokio::net::TcpListener::from_std(std_listener)?,
            tls,
        });
    }
    // Listeners and certificates are in hand: nothing below needs root.
    if let Some(run_as) = &spec.run_as {
        privileges::drop_to(run_as)?;
    }
    let (to_master, outbox) = mpsc::unbounded_channel();
    let limits = ConnectionLimits::new(
        spec.limits.max_connections,
        spec.limits.max_connections_per_ip,
    );
    let access_log = match &spec.access_log {
        Some(log) => Some(
            access_log::AccessLog::open(log)
                .with_context(|| format!("cannot open the access log {:?}", log.path))?,
        ),
        None => None,
    };
    let registry = prometheus::Registry::new();
    let metrics = metrics::Metrics::new(&registry, &spec);
    let state = Arc::new(State::new(
        spec,
        to_master,
        certificates,
        access_log,
        metrics,
    ));
    let (stop_tx, stop_rx) = watch::channel(None);
    tokio::spawn(control::run_outbox(writer, outbox));
    tokio::spawn(control::run_inbox(inbox, state.clone(), stop_tx));
    tokio::spawn(state.clone().report_load());

    let tasks: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            tokio::spawn(server::serve(
                listener,
                state.clone(),
                limits.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    state.tell_master(ToMaster::Ready);
    info!(pid = std::process::id(), "front end serving");
    for task in tasks {
        let _ = task.await;
    }
    info!("front end stopped");
    Ok(())
}
