//! One HTTP/1.1 exchange with a worker of a pool with `protocol = "http"` (uWSGI's `--protocol
//! http11`, or any HTTP server on the pool's socket), on a connection kept for the slot's next
//! request: per request, no `socket`, `connect`, `close` or poller registration, which were a
//! quarter of the front end's time on a uwsgi pool (docs/benchmarks.md).
//!
//! The request is the client's, rebuilt by `http_request`; the answer is read by
//! `answer_reader`. The connection carries the next request only when the answer said where it
//! ends, the whole request went out, and the worker did not say `Connection: close`.
//!
//! An answer with neither a length nor chunks (a streamed WSGI response, a redirect from an
//! application that sets no length) ends only when the connection does. uWSGI keeps an HTTP/1.1
//! connection open after such an answer all the same, waiting `--socket-timeout` (4 s) for the
//! next request. So once the head of such an answer has arrived and the whole request is out,
//! the write side is shut: uWSGI takes that as the client leaving and closes its end as soon as
//! the answer is done, which ends the body without the wait.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::sync::Notify;

use crate::http::body::BufferedBody;
use crate::upstream::worker_connection::{
    read_while_writing, write_head_and_body, Buffers, ExchangeError, RequestWriter, StdoutSink,
    WorkerReply,
};
use crate::upstream::{answer_reader, uwsgi_client};

/// Sends one request and passes the whole answer, as CGI output, to `stdout`.
pub(super) async fn send_and_receive(
    stream: &mut UnixStream,
    buffers: Buffers<'_>,
    keep: bool,
    request: &dyn RequestWriter,
    body: &BufferedBody,
    stdout: &mut impl StdoutSink,
) -> Result<WorkerReply, ExchangeError> {
    let Buffers { out, input, cgi } = buffers;
    let head_request = request
        .http_head(keep, out, cgi)
        .map_err(ExchangeError::Unsendable)?;
    let head_len = out.len();
    let (mut reader, mut writer) = stream.split();
    let sent = AtomicBool::new(false);
    let unframed = Notify::new();
    let write = async {
        write_head_and_body(&mut writer, out, body).await?;
        sent.store(true, Ordering::Relaxed);
        // Only for an answer that the end of the connection ends; otherwise this waits until
        // the answer has been read, and is dropped.
        unframed.notified().await;
        writer.shutdown().await
    };
    let read = answer_reader::read_answer(&mut reader, input, stdout, head_request, || {
        unframed.notify_one()
    });
    let result = read_while_writing(read, write).await.0;
    uwsgi_client::explain_refusal(&result, "head", head_len);
    let end = result?;
    Ok(WorkerReply {
        reusable: end.delimited && !end.close && sent.load(Ordering::Relaxed),
        usage: None,
    })
}

#[cfg(test)]
mod tests;
