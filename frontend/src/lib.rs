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
//! - `conn/` — client connections: accept loops, TLS, HTTP/1.1 and HTTP/2 serving, parked idle
//!   connections, per-connection deadlines, connection limits, PROXY protocol, inherited
//!   descriptors.
//! - `http/` — the public request path: the service, virtual hosts, site policy, the router, the
//!   client address, request bodies, compression, the access log, response bodies.
//! - `site_rules/` — a site's native rules and `.htaccess` files, applied before routing.
//! - `static_files/` — static files: small ones from an in-memory cache, the rest via tower-http.
//! - `upstream/` — scripts on worker pools: slots and queue, the FastCGI exchange, buffered and
//!   streamed responses, the worker's reply and STDERR, failure classification.
//! - `acme/` — automatic certificates (RFC 8555): orders, challenge answers, renewal, the state
//!   directory.
//! - `admin/` — the admin listener: `/healthz`, `/readyz`, `/status`, `/metrics`.
//! - `metrics/` — Prometheus metrics and the live worker figures behind `/status`.
//! - `control`, `state`, `privileges` — the master link, shared state, dropping root.

mod acme;
mod admin;
mod conn;
mod control;
mod http;
mod http3;
mod metrics;
mod privileges;
mod runtime_layout;
pub mod site_rules;
mod state;
mod static_files;
mod upstream;

pub use crate::conn::tls;
pub use crate::http::router;
pub use crate::runtime_layout::RuntimeLayout;

use std::os::unix::net::UnixStream;
use std::sync::Arc;

use anyhow::{bail, Context};
use protocol::control::{AcmeChallenge, ToFrontend, ToMaster, CONTROL_FD, FIRST_LISTENER_FD};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tracing::info;

use crate::conn::accept::{self, Listener};
use crate::conn::inherited;
use crate::conn::limits::ConnectionLimits;
use crate::control::Inbox;
use crate::http::access_log;
use crate::state::State;

/// Entry point of the `paddock frontend` role: claims the inherited descriptors and serves until
/// the master says stop, with its event loops laid out as `layout` says.
pub fn run_inherited(layout: RuntimeLayout) -> anyhow::Result<()> {
    let control = UnixStream::from(inherited::claim(CONTROL_FD)?);
    control.set_nonblocking(true)?;
    let runtime = layout.main_runtime()?;
    layout.enter_event_loop(1);
    runtime.block_on(run(control, layout))
}

async fn run(control: UnixStream, layout: RuntimeLayout) -> anyhow::Result<()> {
    let (reader, writer) = tokio::net::UnixStream::from_std(control)?.into_split();
    let mut inbox = Inbox::new(reader);
    let mut spec = match inbox.next().await? {
        Some(ToFrontend::Configure(spec)) => *spec,
        other => bail!("expected the configuration from the master, got {other:?}"),
    };
    let mut listeners = Vec::new();
    let mut certificates = Vec::new();
    let challenges = Arc::new(acme::Challenges::default());
    let mut acme_tasks = Vec::new();
    let mut http3_listeners = Vec::new();
    let quic_transport = http3::transport(&spec);
    // A site's TLS-ALPN-01 validation may reach any HTTPS listener.
    let sites_use_alpn = spec
        .site_acme
        .iter()
        .any(|site| site.acme.challenge == AcmeChallenge::TlsAlpn01);
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
                let answers_alpn = sites_use_alpn
                    || listener_spec
                        .acme
                        .as_ref()
                        .is_some_and(|acme| acme.challenge == AcmeChallenge::TlsAlpn01);
                let store =
                    tls::CertificateStore::load(listener_spec, answers_alpn.then_some(&challenges))
                        .and_then(|store| Ok((store.server_config()?, store)))
                        .with_context(|| format!("listener `{}`", listener_spec.name))?;
                acme_tasks.extend(
                    acme::prepare_listener(listener_spec, &store.1, spec.run_as.as_ref())
                        .with_context(|| format!("listener `{}`", listener_spec.name))?,
                );
                certificates.push(store.1);
                if listener_spec.http3 {
                    // Bound here, before the privileges go: the port may be below 1024.
                    http3_listeners.push(
                        http3::Http3Listener::bind(listener_spec, &quic_transport, &store.0)
                            .with_context(|| format!("listener `{}`", listener_spec.name))?,
                    );
                }
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
    for site in &spec.site_acme {
        acme_tasks.push(
            acme::prepare_site(site, &certificates, spec.run_as.as_ref())
                .with_context(|| format!("site `{}`", site.site))?,
        );
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
        challenges.clone(),
    ));
    state.report_certificate_expiry();
    for prepared in acme_tasks {
        acme::start(
            prepared,
            challenges.clone(),
            state.metrics.certificates.clone(),
        );
    }
    let (stop_tx, stop_rx) = watch::channel(None);
    tokio::spawn(control::run_outbox(writer, outbox));
    tokio::spawn(control::run_inbox(inbox, state.clone(), stop_tx));
    tokio::spawn(state.clone().report_load());
    let (history, durations) = state.metrics.history();
    let sampled = state.clone();
    tokio::spawn(metrics::history::sample_every_second(
        history,
        durations,
        move || sampled.status_report(),
    ));

    let other_threads =
        runtime_layout::serve_on_other_threads(layout, &listeners, &state, &limits, &stop_rx)?;
    let tasks: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            tokio::spawn(accept::serve(
                listener,
                state.clone(),
                limits.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    let http3_tasks: Vec<_> = http3_listeners
        .into_iter()
        .map(|listener| {
            tokio::spawn(http3::serve(
                listener,
                state.clone(),
                limits.clone(),
                stop_rx.clone(),
            ))
        })
        .collect();
    state.tell_master(ToMaster::Ready);
    info!(pid = std::process::id(), "front end serving");
    for task in tasks.into_iter().chain(http3_tasks) {
        let _ = task.await;
    }
    for thread in other_threads {
        let _ = thread.await;
    }
    info!("front end stopped");
    Ok(())
}
