//! Unbuffered responses, for the routes a site lists in `scripts.unbuffered` (server-sent events,
//! long downloads that should start at once).
//!
//! The worker's output goes to the client as it arrives, through a small channel: a slow client
//! slows the worker down and keeps its slot busy until the response ends, which is the price of
//! opting out of buffering. A failure after the head was sent (worker crash, request timeout,
//! `max_response` reached) ends the body with an error, so hyper leaves the response visibly
//! incomplete: no final chunk or a short Content-Length on HTTP/1.1, RST_STREAM on HTTP/2.
//!
//! Retries work as in `proxy` for a worker that cannot be reached; once the exchange started, a
//! failure is never retried (bytes may already be on their way to the client).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame};
use protocol::cgi::CgiResponseHead;
use protocol::control::{KillReason, ToMaster};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use crate::fastcgi_client::{ExchangeError, StdoutSink};
use crate::proxy::{self, ScriptOutcome, ScriptRequest};
use crate::response::{self, Body};
use crate::state::State;
use crate::worker_response;

/// Attempts when the worker could not even be reached (nothing was sent).
const MAX_CONNECT_ATTEMPTS: usize = 3;
/// Chunks in flight between the worker and the client.
const CHANNEL_DEPTH: usize = 8;

type HeadResult = Result<(CgiResponseHead, Bytes), Response<Body>>;

#[derive(Debug)]
enum Chunk {
    Data(Bytes),
    End,
    Failed(String),
}

pub async fn run(state: &Arc<State>, request: ScriptRequest<'_>, pool_name: &str) -> ScriptOutcome {
    let Some(pool) = state.pools.get(pool_name).map(|p| p.clone()) else {
        return ScriptOutcome::Response(response::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the site names a pool that does not exist",
        ));
    };
    // Encoded once here: the exchange runs in a task of its own, which cannot borrow the request.
    let mut params = Vec::new();
    proxy::encode_params(&request, &mut params);
    let mut attempts = 0;
    let mut lease = loop {
        let mut lease = match pool.acquire().await {
            Ok(lease) => lease,
            Err(e) => return ScriptOutcome::Response(proxy::admission_response(&e)),
        };
        match lease.connection().await {
            Ok(_) => break lease,
            Err(e) => {
                warn!(pool = pool_name, pid = lease.worker().pid, error = %e, "worker unreachable");
                lease.worker().mark_dead();
                attempts += 1;
                if attempts >= MAX_CONNECT_ATTEMPTS {
                    return ScriptOutcome::Response(response::error(
                        StatusCode::BAD_GATEWAY,
                        "no worker could be reached",
                    ));
                }
            }
        }
    };
    let (head_tx, head_rx) = oneshot::channel();
    let (data_tx, data_rx) = mpsc::channel(CHANNEL_DEPTH);
    let body = request.body;
    let state = state.clone();
    let pool_name = pool_name.to_string();
    let request_id = request.request_id.to_string();
    let timeout = Duration::from_millis(pool.spec().request_timeout_ms);
    tokio::spawn(async move {
        let worker = lease.worker().clone();
        let mut sink = StreamSink {
            head: BytesMut::new(),
            head_tx: Some(head_tx),
            data_tx,
            sent: 0,
            max: state.spec().limits.max_response_bytes,
        };
        let stderr = |line: &[u8]| {
            warn!(target: "paddock::worker", pool = %pool_name, pid = worker.pid, request_id,
                "{}", String::from_utf8_lossy(line).trim_end());
        };
        let result = match lease.connection().await {
            Ok(connection) => {
                let exchange = connection.exchange(
                    |out| out.extend_from_slice(&params),
                    &body,
                    &mut sink,
                    stderr,
                );
                tokio::time::timeout(timeout, exchange).await
            }
            Err(e) => Ok(Err(ExchangeError::Read {
                source: e,
                response_started: false,
            })),
        };
        match result {
            Ok(Ok(reply)) => {
                if !reply.reusable {
                    lease.discard_connection();
                }
                drop(lease);
                sink.end().await;
            }
            Ok(Err(e)) => {
                lease.discard_connection();
                drop(lease);
                warn!(pool = %pool_name, pid = worker.pid, error = %e, "worker failed while streaming");
                sink.fail(StatusCode::BAD_GATEWAY, &e.to_string()).await;
            }
            Err(_elapsed) => {
                lease.discard_connection();
                worker.mark_dead();
                drop(lease);
                state.tell_master(ToMaster::KillWorker {
                    pool: pool_name.clone(),
                    worker: worker.id,
                    reason: KillReason::RequestTimeout,
                });
                warn!(pool = %pool_name, pid = worker.pid, ?timeout, "streamed request timed out; worker will be killed");
                sink.fail(StatusCode::GATEWAY_TIMEOUT, "request timeout")
                    .await;
            }
        }
    });
    match head_rx.await {
        Ok(Ok((head, first))) => {
            let body = ChannelBody {
                first: Some(first).filter(|b| !b.is_empty()),
                rx: data_rx,
                ended: false,
            };
            worker_response::with_head(head, body.boxed_unsync())
        }
        Ok(Err(response)) => ScriptOutcome::Response(response),
        Err(_) => ScriptOutcome::Response(response::error(
            StatusCode::BAD_GATEWAY,
            "the application failed to answer",
        )),
    }
}

/// Parses the head, then forwards the body through the channel.
struct StreamSink {
    head: BytesMut,
    head_tx: Option<oneshot::Sender<HeadResult>>,
    data_tx: mpsc::Sender<Chunk>,
    sent: u64,
    max: u64,
}

impl StdoutSink for StreamSink {
    async fn write(&mut self, data: &[u8]) -> Result<(), ExchangeError> {
        self.sent += data.len() as u64;
        if self.sent > self.max {
            return Err(ExchangeError::TooLarge { limit: self.max });
        }
        let Some(head_tx) = self.head_tx.take() else {
            let chunk = Chunk::Data(Bytes::copy_from_slice(data));
            return self
                .data_tx
                .send(chunk)
                .await
                .map_err(|_| ExchangeError::ClientGone);
        };
        self.head.extend_from_slice(data);
        match worker_response::parse_head(&self.head) {
            Ok(None) => {
                self.head_tx = Some(head_tx);
                Ok(())
            }
            Ok(Some((head, len))) => {
                let rest = self.head.split_off(len).freeze();
                head_tx
                    .send(Ok((head, rest)))
                    .map_err(|_| ExchangeError::ClientGone)
            }
            Err(worker_response::InvalidHead) => {
                let _ = head_tx.send(Err(worker_response::invalid_head()));
                Err(ExchangeError::Protocol("invalid CGI response head".into()))
            }
        }
    }

    fn started(&self) -> bool {
        self.sent > 0
    }
}

impl StreamSink {
    async fn end(mut self) {
        match self.head_tx.take() {
            Some(head_tx) => {
                let _ = head_tx.send(Err(worker_response::incomplete_head()));
            }
            None => {
                let _ = self.data_tx.send(Chunk::End).await;
            }
        }
    }

    async fn fail(mut self, status: StatusCode, reason: &str) {
        match self.head_tx.take() {
            Some(head_tx) => {
                let detail = if status == StatusCode::GATEWAY_TIMEOUT {
                    "the application did not answer in time"
                } else {
                    "the application failed to answer"
                };
                let _ = head_tx.send(Err(response::error(status, detail)));
            }
            None => {
                let _ = self.data_tx.send(Chunk::Failed(reason.to_string())).await;
            }
        }
    }
}

/// The client-facing body of a streamed response.
#[derive(Debug)]
struct ChannelBody {
    first: Option<Bytes>,
    rx: mpsc::Receiver<Chunk>,
    ended: bool,
}

impl HttpBody for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        if self.ended {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Chunk::Data(bytes))) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
            Poll::Ready(Some(Chunk::End)) => {
                self.ended = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Chunk::Failed(reason))) => {
                self.ended = true;
                Poll::Ready(Some(Err(io::Error::other(reason))))
            }
            Poll::Ready(None) => {
                self.ended = true;
                Poll::Ready(Some(Err(io::Error::other(
                    "the worker stream ended without a clean end",
                ))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.first.is_none()
    }
}
