//! Running a script on a pool: admission, the FastCGI exchange, retries, timeouts, and turning the
//! CGI reply into an HTTP response.
//!
//! Failure rules (DESIGN.md, "Request path" step 7):
//! - the worker could not be reached: nothing was sent, so any request goes to another worker;
//! - the worker failed before any response byte: GET, HEAD and OPTIONS are retried on another
//!   worker (at most [`MAX_IDEMPOTENT_RETRIES`] times, so a request is not lost when workers die in
//!   quick succession), everything else gets 502 (a POST never runs twice);
//! - the per-pool deadline expired: 504, and the master kills that worker (pid known exactly).

use std::net::SocketAddr;
use std::time::Duration;

use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode};
use protocol::cgi::{self, CgiRequest};
use protocol::control::{KillReason, SiteSpec, ToMaster};
use tracing::warn;

use crate::body::BufferedBody;
use crate::dispatch::AdmissionError;
use crate::response::{self, Body};
use crate::response_buffer::ResponseBuffer;
use crate::router::ScriptTarget;
use crate::state::State;
use crate::worker_response;
use crate::worker_stderr::WorkerStderr;

/// Attempts when the worker could not even be reached (nothing was sent).
const MAX_CONNECT_ATTEMPTS: usize = 3;
/// Retries of an idempotent request whose worker failed before answering.
const MAX_IDEMPOTENT_RETRIES: usize = 2;

/// The connection a request arrived on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub local: SocketAddr,
    pub peer: SocketAddr,
    pub https: bool,
    /// Open/idle accounting for metrics.
    pub tracker: crate::metrics::connections::ConnectionTracker,
    /// The TLS SNI name the client sent, if any.
    pub sni: Option<String>,
}

/// Everything about one script request that does not change between attempts.
#[derive(Debug)]
pub struct ScriptRequest<'a> {
    pub parts: &'a Parts,
    /// REQUEST_URI: the client's request target, which a site's rewrite does not change.
    pub request_uri: &'a str,
    pub conn: &'a ConnInfo,
    pub site: &'a SiteSpec,
    pub target: ScriptTarget,
    pub body: BufferedBody,
    pub request_id: &'a str,
}

/// What the caller should do with the worker's answer.
#[derive(Debug)]
pub enum ScriptOutcome {
    Response(Response<Body>),
    /// RFC 3875 local redirect: serve this path (and query) as a new GET instead.
    LocalRedirect(String),
}

pub async fn run(state: &State, request: &ScriptRequest<'_>, pool_name: &str) -> ScriptOutcome {
    let Some(pool) = state.pools.get(pool_name).map(|p| p.clone()) else {
        return ScriptOutcome::Response(response::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the site names a pool that does not exist",
        ));
    };
    let idempotent = matches!(
        request.parts.method,
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let timeout = Duration::from_millis(pool.spec().request_timeout_ms);
    let mut connect_failures = 0;
    let mut retries = 0;
    loop {
        let queued = state.metrics.queue_entered(pool_name);
        let mut lease = match queued.wait(pool.acquire()).await {
            Ok(lease) => lease,
            Err(e) => return ScriptOutcome::Response(admission_response(&e)),
        };
        let worker = lease.worker().clone();
        let connection = match lease.connection().await {
            Ok(connection) => connection,
            Err(e) => {
                // Nothing was sent, so any method may move on to another worker. A refused or
                // missing socket means the worker is gone; other errors (EMFILE) are ours.
                warn!(pool = pool_name, pid = worker.pid, error = %e, "worker unreachable");
                let gone = matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
                );
                if gone && !pool.spec().external {
                    worker.mark_dead();
                }
                connect_failures += 1;
                if connect_failures < MAX_CONNECT_ATTEMPTS {
                    state.metrics.retried(pool_name, "unreachable");
                    continue;
                }
                return ScriptOutcome::Response(response::error(
                    StatusCode::BAD_GATEWAY,
                    "no worker could be reached",
                ));
            }
        };
        let _on_worker = state.metrics.worker_request(pool_name, &worker, request);
        let mut stderr = WorkerStderr::new(pool_name, worker.pid, request.request_id);
        let spec = state.spec();
        let mut buffer = ResponseBuffer::new(&spec.limits);
        let exchange = connection.exchange(
            |out| encode_params(request, out),
            &request.body,
            &mut buffer,
            |b| stderr.write(b),
        );
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(reply)) => {
                if !reply.reusable {
                    lease.discard_connection();
                }
                drop(lease);
                return match buffer.finish().await {
                    Ok(reply) => worker_response::from_buffer(reply, &request.parts.method),
                    Err(e) => {
                        warn!(error = %e, "cannot read back a spooled response");
                        ScriptOutcome::Response(response::error(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "the response could not be stored",
                        ))
                    }
                };
            }
            Ok(Err(e)) => {
                lease.discard_connection();
                if e.worker_is_broken() && !pool.spec().external {
                    // Whatever it does next cannot be trusted: replace it.
                    worker.mark_dead();
                    state.tell_master(ToMaster::KillWorker {
                        pool: pool_name.to_string(),
                        worker: worker.id,
                        reason: KillReason::ProtocolError,
                    });
                }
                let retry = idempotent && retries < MAX_IDEMPOTENT_RETRIES && !e.response_started();
                warn!(pool = pool_name, pid = worker.pid, error = %e, retry, "worker failed");
                if retry {
                    retries += 1;
                    state.metrics.retried(pool_name, "failed");
                    continue;
                }
                return ScriptOutcome::Response(response::error(
                    StatusCode::BAD_GATEWAY,
                    "the application failed to answer",
                ));
            }
            Err(_elapsed) => {
                lease.discard_connection();
                worker.mark_dead();
                state.metrics.request_timed_out(pool_name);
                state.tell_master(ToMaster::KillWorker {
                    pool: pool_name.to_string(),
                    worker: worker.id,
                    reason: KillReason::RequestTimeout,
                });
                warn!(
                    pool = pool_name,
                    pid = worker.pid,
                    ?timeout,
                    "request timed out; worker will be killed"
                );
                return ScriptOutcome::Response(response::error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "the application did not answer in time",
                ));
            }
        }
    }
}

pub(crate) fn admission_response(error: &AdmissionError) -> Response<Body> {
    match error {
        AdmissionError::Failing { reason, .. } => response::unavailable(reason, 5),
        AdmissionError::QueueFull(_) | AdmissionError::QueueTimeout(_) => {
            response::unavailable("the server is busy; please retry shortly", 1)
        }
    }
}

/// Appends the request's CGI meta-variables (FastCGI PARAMS content) to `out`.
pub(crate) fn encode_params(request: &ScriptRequest<'_>, out: &mut Vec<u8>) {
    let parts = request.parts;
    let uri = &parts.uri;
    let request_uri = request.request_uri;
    // HTTP/2 carries the host in :authority; CGI applications expect HTTP_HOST. Only that case
    // needs a copy of the headers.
    let authority = uri
        .authority()
        .filter(|_| !parts.headers.contains_key(http::header::HOST))
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
    let headers = match authority {
        None => std::borrow::Cow::Borrowed(&parts.headers),
        Some(value) => {
            let mut headers = parts.headers.clone();
            headers.insert(http::header::HOST, value);
            std::borrow::Cow::Owned(headers)
        }
    };
    let server_name = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(cgi::server_name_from_host)
        .unwrap_or(&request.site.name);
    let version = match parts.version {
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    };
    let root = request.site.root.to_string_lossy();
    let filename = request.target.filename.to_string_lossy();
    let extra = [("PADDOCK_REQUEST_ID", request.request_id)];
    let cgi_request = CgiRequest {
        method: parts.method.as_str(),
        request_uri,
        query_string: uri.query().unwrap_or(""),
        document_root: &root,
        script_name: &request.target.name,
        script_filename: &filename,
        path_info: &request.target.path_info,
        server_name,
        server_addr: request.conn.local,
        remote_addr: request.conn.peer,
        https: request.conn.https,
        server_protocol: version,
        content_length: request.body.len(),
        headers: &headers,
        extra: &extra,
    };
    cgi::encode_params(&cgi_request, out);
}
