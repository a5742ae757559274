//! Accept loops for every listener, and the start of each connection.
//!
//! One task per listener accepts connections within the connection limits (overall and per client
//! address, [`crate::conn::limits`]); each connection gets its own task, which reads the PROXY
//! protocol header where the listener asks for one and then serves the connection: through the
//! TLS handshake ([`crate::conn::handshake`]) or straight to HTTP. HTTP/1.1 and HTTP/2 are spoken
//! by hyper-util's automatic builder (chosen by ALPN over TLS, by the connection preface in
//! cleartext when the listener allows h2 with prior knowledge, [`crate::conn::hyper_session`]);
//! public HTTP/1.1 connections are served by hyper's HTTP/1 builder directly, so that they can be
//! parked outside hyper while idle ([`crate::conn::http1_session`]). Every connection task
//! enforces the client-facing deadlines of [`crate::conn::deadlines`] and reacts to a stop by
//! closing gracefully ([`crate::conn::drive`]). When a stop comes, the loop stops accepting and
//! waits, up to the stop's deadline, for the open connections to finish.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use protocol::control::{ListenerKind, ListenerSpec};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use crate::conn::client_socket::ClientSocket;
use crate::conn::deadlines::{Activity, WatchedIo};
use crate::conn::handshake::serve_tls;
use crate::conn::http1_session::serve_http1;
use crate::conn::hyper_session::{http1_builder, http_builder, serve_http};
use crate::conn::idle_deadlines::IdleDeadlines;
use crate::conn::limits::{ConnectionLimits, ConnectionSlot};
use crate::conn::parking::{Parkable, PlainStream};
use crate::conn::proxy_protocol;
use crate::state::State;
use crate::upstream::buffered::ConnInfo;

/// Pause after a failed accept (EMFILE and friends), so the loop backs off instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
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
        alt_svc: crate::http3::alt_svc(&listener.spec).map(Arc::new),
        idle_deadlines: IdleDeadlines::new(),
    });
    // Ends with this function, once the connections it wakes are gone.
    let idle_task = AbortOnDrop(tokio::spawn(
        context.idle_deadlines.clone().run(stop.clone()),
    ));
    // What every connection's metrics tracker shares.
    let tracking = state.metrics.listener_tracking(listener.spec.name.as_str());
    let mut connections = JoinSet::new();
    loop {
        // Both `select!`s are biased, because a connection once accepted must be answered: closed
        // with its request unread, it gets the client a reset. Unbiased, a stop that arrived
        // while a connection waited in the backlog could be taken right after the accept (one
        // time in four when both were ready), dropping that socket: a failed request at an
        // upgrade or reload under load. The stop comes first here, so a connection still in the
        // backlog stays there for the successor sharing the listener; after the accept, room
        // comes first (only at the connection limit can a stop still close it unanswered).
        let accepted = tokio::select! {
            biased;
            _ = stop.changed() => break,
            accepted = listener.tcp.accept() => accepted,
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
            biased;
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
            tracker: tracking.open(),
            sni: None,
            alt_svc: context.alt_svc.clone(),
        };
        // Plain HTTP/1.1 and TLS connections, where the idle ones are, are spawned as their
        // session's future itself: a task keeps its future's largest state allocated for the
        // connection's whole life, so a wrapper would make every parked connection hold the
        // wrapper's arguments and a second allocation for the session.
        match (&context.tls, context.admin || context.proxy_protocol) {
            (None, false) if !context.h2c => {
                let (io, activity) = watched(stream, &state, &context);
                connections.spawn(serve_http1(
                    io,
                    Arc::new(conn),
                    context.clone(),
                    state.clone(),
                    activity,
                    stop.clone(),
                    slot,
                ));
            }
            (Some(acceptor), false) => {
                let (io, activity) = watched(stream, &state, &context);
                connections.spawn(serve_tls(
                    io,
                    acceptor.clone(),
                    Box::new(conn),
                    context.clone(),
                    state.clone(),
                    activity,
                    stop.clone(),
                    slot,
                ));
            }
            _ => {
                connections.spawn(serve_connection(
                    stream,
                    conn,
                    context.clone(),
                    state.clone(),
                    stop.clone(),
                    slot,
                ));
            }
        }
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
    drop(idle_task);
}

/// A task aborted when this handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What every connection of one listener shares.
pub(super) struct ListenerContext {
    pub(super) builder: auto::Builder<TokioExecutor>,
    pub(super) http1: http1::Builder,
    /// Cleartext HTTP/2 with prior knowledge is accepted (the automatic builder then decides).
    pub(super) h2c: bool,
    pub(super) https: bool,
    pub(super) admin: bool,
    pub(super) tls: Option<TlsAcceptor>,
    pub(super) name: String,
    pub(super) proxy_protocol: bool,
    /// The `Alt-Svc` value announcing this listener's HTTP/3, when it has it.
    pub(super) alt_svc: Option<Arc<http::HeaderValue>>,
    /// The deadlines and the stop of this listener's parked connections.
    pub(super) idle_deadlines: Arc<IdleDeadlines>,
}

/// The client socket as a session reads it: bytes counted for the metrics, reads and blocked
/// writes noted for the deadlines.
fn watched(
    stream: tokio::net::TcpStream,
    state: &State,
    context: &ListenerContext,
) -> (PlainStream, Arc<Activity>) {
    let activity = Activity::new();
    let counted = state
        .metrics
        .count_bytes(ClientSocket::new(stream), &context.name);
    (WatchedIo::new(counted, activity.clone()), activity)
}

/// A connection that needs a step before its session (a PROXY protocol header), or is served by
/// hyper's automatic builder (admin, cleartext HTTP/2 with prior knowledge).
async fn serve_connection(
    mut stream: tokio::net::TcpStream,
    mut conn: ConnInfo,
    context: Arc<ListenerContext>,
    state: Arc<State>,
    stop: StopSignal,
    slot: ConnectionSlot,
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
        let (io, activity) = watched(stream, &state, &context);
        match context.tls.clone() {
            None => {
                let any_version = context.admin || context.h2c;
                http_session(io, conn, context, state, activity, stop, slot, any_version)
            }
            Some(acceptor) => Box::pin(serve_tls(
                io,
                acceptor,
                Box::new(conn),
                context,
                state,
                activity,
                stop,
                slot,
            )),
        }
    };
    session.await
}

/// A connection's HTTP session once its bytes are plain HTTP (cleartext, or TLS after the
/// handshake): hyper's HTTP/1.1-and-2 connection where HTTP/2 may come (`any_version`: the admin
/// listener, h2c, ALPN `h2`), else paddock's own HTTP/1.1 session, which parks idle
/// connections. Boxed, so that the connection's task holds a pointer, not the session.
#[allow(clippy::too_many_arguments)]
pub(super) fn http_session<I: Parkable>(
    io: I,
    conn: ConnInfo,
    context: Arc<ListenerContext>,
    state: Arc<State>,
    activity: Arc<Activity>,
    stop: StopSignal,
    slot: ConnectionSlot,
    any_version: bool,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    if any_version {
        Box::pin(async move {
            serve_http(io, conn, context, state, activity, stop).await;
            drop(slot);
        })
    } else {
        Box::pin(serve_http1(
            io,
            Arc::new(conn),
            context,
            state,
            activity,
            stop,
            slot,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Plain = PlainStream;

    fn test_state() -> Arc<State> {
        let mut spec = crate::metrics::tests::spec();
        spec.sites
            .push(crate::http::vhost::tests::site("static", &["*"], true));
        Arc::new(crate::state::tests::state_for(spec))
    }

    fn plain_listener(tcp: std::net::TcpListener) -> Listener {
        tcp.set_nonblocking(true).unwrap();
        Listener {
            spec: ListenerSpec {
                name: "http".into(),
                kind: ListenerKind::Http,
                address: tcp.local_addr().unwrap(),
                tls: None,
                sni_certificates: Vec::new(),
                http2_prior_knowledge: false,
                proxy_protocol: false,
                acme: None,
                http3: false,
            },
            tcp: TcpListener::from_std(tcp).unwrap(),
            tls: None,
        }
    }

    /// What the client reads first: an answer's head, or the error that ended the connection.
    fn first_answer(mut client: std::net::TcpStream) -> String {
        use std::io::Read;
        client
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut head = [0u8; 12];
        match client.read_exact(&mut head) {
            Ok(()) => String::from_utf8_lossy(&head).into_owned(),
            Err(e) => format!("no answer: {e}"),
        }
    }

    /// An upgrade or reload under load: the stop reaches the old front end in the same turn as
    /// a connection waiting in the backlog of the listener it shares with its successor. The
    /// connection must be answered (here by the successor), never accepted and closed unread,
    /// which resets it.
    ///
    /// To have both ready at one poll of the old accept loop, a helper task sends the stop when
    /// a probe connection reaches a listener of its own; the probe connects just before the
    /// client, so one wait of the runtime's I/O driver wakes the helper, then the accept loop.
    /// With unbiased `select!`s, a round dropped the client about one time in four (32 rounds
    /// all passed in none of 5 runs).
    #[test]
    fn a_connection_waiting_when_a_stop_comes_is_answered_not_dropped() {
        use std::io::Write;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            for round in 0..32 {
                let old = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let address = old.local_addr().unwrap();
                // Another descriptor for the same socket, as an upgrade hands it over.
                let shared = old.try_clone().unwrap();
                let limits = ConnectionLimits::new(100, 0);
                let (stop, stopped) = watch::channel(None);
                let stopping = tokio::spawn(serve(
                    plain_listener(old),
                    test_state(),
                    limits.clone(),
                    stopped,
                ));
                let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let probe_address = probe.local_addr().unwrap();
                let stopper = tokio::spawn(async move {
                    let _probe = probe.accept().await.unwrap();
                    stop.send(Some(Duration::from_secs(5))).unwrap();
                });
                // Both tasks run once and wait on their listeners.
                tokio::task::yield_now().await;
                let _probe = std::net::TcpStream::connect(probe_address).unwrap();
                let mut client = std::net::TcpStream::connect(address).unwrap();
                client
                    .write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
                    .unwrap();
                stopper.await.unwrap();
                stopping.await.unwrap();
                // The successor starts once the old loop has ended, so a connection the old
                // one left in the backlog is the successor's, and one it took and dropped is lost.
                let (_running, successor_stop) = watch::channel(None);
                let successor = tokio::spawn(serve(
                    plain_listener(shared),
                    test_state(),
                    limits,
                    successor_stop,
                ));
                let answer = tokio::task::spawn_blocking(move || first_answer(client))
                    .await
                    .unwrap();
                assert!(answer.starts_with("HTTP/1.1 "), "round {round}: {answer}");
                successor.abort();
            }
        });
    }

    /// The size of the future a 7-argument function returns, without calling it.
    fn future_size7<A, B, C, D, E, G, H, F>(_: fn(A, B, C, D, E, G, H) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// The same for 8 arguments.
    fn future_size8<A, B, C, D, E, G, H, J, F>(_: fn(A, B, C, D, E, G, H, J) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// A parked connection holds its task's future for its whole life (docs/frontend.md, "Idle
    /// connections cost almost nothing"): these futures were 1,000 bytes (plain HTTP/1.1, then
    /// boxed inside a 544-byte wrapper task) and 6,344 bytes (TLS) before they were trimmed to
    /// 560 and 336 bytes, and the plain one to 280 (debug build; 272 in release) once the idle
    /// wait's timer and stop watcher moved to the listener (`conn::idle_deadlines`). A tokio
    /// task is its future plus 96 bytes, in blocks of 128: at 288 bytes or less, a plain
    /// connection's task is 384 bytes; above, 512. The TLS bound leaves room for compiler
    /// changes, not for a `select!` in the idle wait or an argument stored twice coming back.
    #[test]
    fn a_parked_connection_s_task_stays_small() {
        let plain = future_size7(serve_http1::<Plain>);
        assert!(plain <= 288, "plain HTTP/1.1 task future: {plain} bytes");
        let tls = future_size8(serve_tls);
        assert!(tls <= 448, "TLS task future: {tls} bytes");
    }
}
