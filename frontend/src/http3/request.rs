//! One QUIC connection's HTTP/3 requests: each goes to the service as an HTTP/1.1 or HTTP/2
//! request does, and its response is sent back on the request's stream.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use h3::error::Code;
use h3::server::RequestStream;
use http::header::{CONNECTION, TRANSFER_ENCODING, UPGRADE};
use http::{Method, Response, StatusCode};
use http_body_util::BodyExt;
use tokio::sync::watch;
use tracing::debug;

use super::body::RequestStreamBody;
use crate::conn::deadlines::Activity;
use crate::conn::limits::ConnectionSlot;
use crate::http::request_body::RequestBody;
use crate::http::response::{self, Body};
use crate::http::service;
use crate::state::State;
use crate::upstream::buffered::ConnInfo;

type SendStream = RequestStream<h3_quinn::SendStream<Bytes>, Bytes>;

/// How long a connection that got GOAWAY waits, once its last request is answered, for the
/// client to close it.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Serves one QUIC connection's requests until the client or the idle timeout closes it.
pub(super) async fn serve_connection(
    incoming: quinn::Incoming,
    local: Option<SocketAddr>,
    listener: String,
    state: Arc<State>,
    _slot: ConnectionSlot,
    mut stop: watch::Receiver<Option<Duration>>,
) {
    let connection = match incoming.await {
        Ok(connection) => connection,
        Err(e) => {
            debug!(listener, error = %e, "QUIC handshake failed");
            state
                .metrics
                .connection(listener.as_str())
                .tls_failed("handshake");
            return;
        }
    };
    let peer = connection.remote_address();
    let sni = connection
        .handshake_data()
        .and_then(|data| data.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|data| data.server_name)
        .map(String::into_boxed_str);
    let info = Arc::new(ConnInfo {
        local: local.unwrap_or(peer),
        peer,
        https: true,
        tracker: state.metrics.connection(listener.as_str()),
        sni,
        alt_svc: None,
    });
    let activity = Activity::new();
    // A request head over the limit is refused as over TCP (431 there, a stream error here).
    let max_head = u64::from(state.spec().limits.max_header_bytes);
    let mut h3 = match h3::server::builder()
        .max_field_section_size(max_head)
        .build(h3_quinn::Connection::new(connection))
        .await
    {
        Ok(h3) => h3,
        Err(e) => {
            debug!(listener, %peer, error = %e, "HTTP/3 connection setup failed");
            return;
        }
    };
    let mut requests = tokio::task::JoinSet::new();
    // `max_requests_per_connection` ends the connection with GOAWAY, as for HTTP/2.
    let max_requests = state.spec().limits.max_requests_per_connection;
    let mut accepted_requests: u64 = 0;
    let mut stopping = stop.borrow().is_some();
    let mut goaway_sent = false;
    // After GOAWAY the connection stays until the client closes it, or until this linger has
    // passed with no request left: closing a QUIC connection discards the stream data not yet
    // delivered, so closing right after the last response was written could cut it off.
    let linger = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(linger);
    loop {
        if stopping && !goaway_sent {
            // GOAWAY: requests already taken are answered; the client sends any later one on a
            // new connection.
            let _ = h3.shutdown(0).await;
            goaway_sent = true;
            linger
                .as_mut()
                .reset(tokio::time::Instant::now() + CLOSE_LINGER);
        }
        let accepted = tokio::select! {
            accepted = h3.accept() => accepted,
            _ = stop.changed(), if !stopping => {
                stopping = true;
                continue;
            }
            // While draining, a request that ends may be the last one: its response gets the
            // linger from now.
            Some(_) = requests.join_next(), if goaway_sent => {
                linger.as_mut().reset(tokio::time::Instant::now() + CLOSE_LINGER);
                continue;
            }
            () = &mut linger, if goaway_sent && requests.is_empty() => break,
        };
        match accepted {
            Ok(Some(resolver)) => {
                accepted_requests += 1;
                stopping |= accepted_requests >= max_requests;
                let (state, info, activity) = (state.clone(), info.clone(), activity.clone());
                requests.spawn(async move {
                    match resolver.resolve_request().await {
                        Ok((request, stream)) => {
                            answer(state, info, activity, request, stream).await
                        }
                        Err(e) => debug!(error = %e, "HTTP/3 request head refused"),
                    }
                });
            }
            Ok(None) => break,
            Err(e) => {
                debug!(listener, %peer, error = %e, "HTTP/3 connection ended");
                break;
            }
        }
        while requests.try_join_next().is_some() {}
    }
    while requests.join_next().await.is_some() {}
}

/// Runs one request through the service and sends the response on its stream.
async fn answer(
    state: Arc<State>,
    info: Arc<ConnInfo>,
    activity: Arc<Activity>,
    request: http::Request<()>,
    stream: RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>,
) {
    let (mut send, recv) = stream.split();
    let head_only = request.method() == Method::HEAD;
    let limits = &state.spec().limits;
    if let Some(refusal) = head_refusal(&request, limits.max_header_bytes, limits.max_headers) {
        if let Err(e) = send_response(&mut send, refusal, head_only).await {
            debug!(error = %e, "HTTP/3 refusal not delivered");
        }
        return;
    }
    let request = request.map(|()| RequestBody::Http3(RequestStreamBody::new(recv)));
    let Ok(response) = service::handle(state, info, activity, request).await;
    if let Err(e) = send_response(&mut send, response, head_only).await {
        debug!(error = %e, "HTTP/3 response not delivered");
    }
}

/// 431 for a request head over the listener's limits, measured as HTTP/2 measures a header
/// list (name, value and 32 bytes a field), so that it is refused before it reaches a worker.
fn head_refusal(
    request: &http::Request<()>,
    max_bytes: u32,
    max_fields: usize,
) -> Option<Response<Body>> {
    let fields = request.headers().len();
    let bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 32)
        .sum::<usize>()
        + request
            .uri()
            .path_and_query()
            .map_or(0, |pq| pq.as_str().len());
    (fields > max_fields || bytes > max_bytes as usize).then(|| {
        response::error(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "the request head is over the limit",
        )
    })
}

async fn send_response(
    send: &mut SendStream,
    response: Response<Body>,
    head_only: bool,
) -> Result<(), h3::error::StreamError> {
    let (mut parts, mut body) = response.into_parts();
    // Connection-specific fields do not exist in HTTP/3 (RFC 9114 section 4.2).
    for name in [CONNECTION, TRANSFER_ENCODING, UPGRADE] {
        parts.headers.remove(name);
    }
    parts.headers.remove("keep-alive");
    send.send_response(Response::from_parts(parts, ())).await?;
    if !head_only {
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        if !data.is_empty() {
                            send.send_data(data).await?;
                        }
                    }
                }
                Err(e) => {
                    // A body that fails midway (a file read error): the client must not take a
                    // cut response for a whole one.
                    debug!(error = %e, "response body failed; resetting the HTTP/3 stream");
                    send.stop_stream(Code::H3_INTERNAL_ERROR);
                    return Ok(());
                }
            }
        }
    }
    send.finish().await
}
