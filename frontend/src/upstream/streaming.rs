//! Unbuffered responses, for the routes a site lists in `scripts.unbuffered` (server-sent events,
//! long downloads that should start at once).
//!
//! The worker's output goes to the client as it arrives, through a small channel: a slow client
//! slows the worker down and keeps its slot busy until the response ends, which is the price of
//! opting out of buffering. A failure after the head was sent (worker crash, request timeout,
//! `max_response` reached) ends the body with an error, so hyper leaves the response visibly
//! incomplete: no final chunk or a short Content-Length on HTTP/1.1, RST_STREAM on HTTP/2.
//!
//! Everything up to the reply (queue, connection, retries, deadline, worker stderr, status page
//! and metrics) is `worker_call`'s, as for buffered responses; the exchange runs in a task of its
//! own so that the response can be handed to the client while the worker still writes it. A
//! failure is retried only while nothing of the reply has reached the sink.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{Method, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame};
use protocol::cgi::CgiResponseHead;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::warn;

use crate::http::body::BufferedBody;
use crate::http::response::{self, Body};
use crate::state::State;
use crate::upstream::buffered::{self, ScriptOutcome, ScriptRequest};
use crate::upstream::script_error::ScriptError;
use crate::upstream::worker_call::{self, ScriptCall};
use crate::upstream::worker_connection::{ExchangeError, StdoutSink};
use crate::upstream::worker_response;

/// Chunks in flight between the worker and the client.
const CHANNEL_DEPTH: usize = 8;

type HeadResult = Result<(CgiResponseHead, Bytes), Response<Body>>;

#[derive(Debug)]
enum Chunk {
    Data(Bytes),
    End,
    Failed(String),
}

/// What the exchange task owns of the request (it cannot borrow it).
struct OwnedCall {
    pool: String,
    request_id: String,
    method: Method,
    path: String,
    body: BufferedBody,
    /// The PARAMS content, encoded once.
    params: Vec<u8>,
}

pub(crate) async fn run(
    state: &Arc<State>,
    request: ScriptRequest<'_>,
    pool_name: &str,
) -> ScriptOutcome {
    let mut params = Vec::new();
    buffered::encode_params(&request, &mut params);
    let owned = OwnedCall {
        pool: pool_name.to_string(),
        request_id: request.request_id.to_string(),
        method: request.parts.method.clone(),
        path: request.parts.uri.path().to_string(),
        body: request.body,
        params,
    };
    let (head_tx, head_rx) = oneshot::channel();
    let (data_tx, data_rx) = mpsc::channel(CHANNEL_DEPTH);
    let state = state.clone();
    let task = tokio::spawn(async move {
        let params = |out: &mut Vec<u8>| out.extend_from_slice(&owned.params);
        let call = ScriptCall {
            pool: &owned.pool,
            request_id: &owned.request_id,
            method: &owned.method,
            path: &owned.path,
            body: &owned.body,
            request: &params,
        };
        let mut sink = StreamSink {
            head: BytesMut::new(),
            head_tx: Some(head_tx),
            data_tx,
            sent: 0,
            max: state.spec().limits.max_response_bytes,
            discarding: false,
        };
        match worker_call::call(&state, &call, &mut sink).await {
            Ok(()) => sink.end().await,
            Err(e) => sink.fail(&e).await,
        }
    });
    // Until the head arrives the task belongs to this request: a client that goes away while the
    // request waits for a slot or for the head takes the task with it (and leaves the queue), as
    // on the buffered path. From then on the task feeds the body.
    let mut task = AbortOnDrop(Some(task));
    let head = head_rx.await;
    task.detach();
    match head {
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

/// Aborts the task when dropped, unless detached first.
struct AbortOnDrop(Option<JoinHandle<()>>);

impl AbortOnDrop {
    fn detach(&mut self) {
        self.0 = None;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

/// Parses the head, then forwards the body through the channel.
struct StreamSink {
    head: BytesMut,
    head_tx: Option<oneshot::Sender<HeadResult>>,
    data_tx: mpsc::Sender<Chunk>,
    sent: u64,
    max: u64,
    /// The head was invalid and the client has its 502: the rest of the reply is read and
    /// dropped, as the buffered path does, so that the worker ends the request normally.
    discarding: bool,
}

impl StdoutSink for StreamSink {
    async fn write(&mut self, data: &[u8]) -> Result<(), ExchangeError> {
        self.sent += data.len() as u64;
        if self.sent > self.max {
            return Err(ExchangeError::TooLarge { limit: self.max });
        }
        if self.discarding {
            return Ok(());
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
            Ok(Some((head, _))) if head.status.is_informational() => {
                // Never a final answer (see `worker_response::from_buffer`).
                warn!(
                    status = head.status.as_u16(),
                    "worker answered with an informational status"
                );
                self.reject(head_tx)
            }
            Ok(Some((head, len))) => {
                let rest = self.head.split_off(len).freeze();
                head_tx
                    .send(Ok((head, rest)))
                    .map_err(|_| ExchangeError::ClientGone)
            }
            Err(worker_response::InvalidHead) => self.reject(head_tx),
        }
    }

    fn started(&self) -> bool {
        self.sent > 0
    }

    /// A streamed reply goes to the client as it comes: once begun, it cannot start over.
    fn restart(&mut self) -> bool {
        !self.started()
    }
}

impl StreamSink {
    /// Answers 502 for an unusable head and drops the rest of the reply.
    fn reject(&mut self, head_tx: oneshot::Sender<HeadResult>) -> Result<(), ExchangeError> {
        self.discarding = true;
        self.head = BytesMut::new();
        head_tx
            .send(Err(worker_response::invalid_head()))
            .map_err(|_| ExchangeError::ClientGone)
    }

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

    async fn fail(mut self, error: &ScriptError) {
        match self.head_tx.take() {
            Some(head_tx) => {
                let _ = head_tx.send(Err(error.response()));
            }
            None => {
                let _ = self.data_tx.send(Chunk::Failed(error.to_string())).await;
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
