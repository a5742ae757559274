//! One uwsgi exchange (uWSGI's native protocol, a pool's `protocol = "uwsgi"`) on a new worker
//! connection, which the worker closes at the end of its answer.
//!
//! The request is one packet (the CGI variables, `protocol::uwsgi`) followed by the raw body; the
//! answer is an HTTP response, whose head is turned into CGI output (its status line into a
//! `Status:` header) so that it goes to the [`StdoutSink`] as any worker's CGI output does. The
//! end of the stream is the end of the answer, so a worker that dies mid-body is told from one
//! that has finished only by the `Content-Length` it sent (or its chunks, decoded on the way by
//! `answer_reader`): a body shorter than that is a failed exchange (retried like a FastCGI
//! worker's, if nothing reached the client); without either, the answer is whatever arrived (as
//! behind nginx's `uwsgi_pass`).

use std::io;

use bytes::BytesMut;
use protocol::fcgi;
use protocol::uwsgi;
use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;
use tracing::warn;

use crate::http::body::BufferedBody;
use crate::upstream::answer_reader;
use crate::upstream::worker_connection::{
    read_while_writing, write_head_and_body, Buffers, ExchangeError, StdoutSink, WorkerReply,
    READ_CHUNK,
};

/// uWSGI's default `--buffer-size`: the most bytes of variables it takes in a request.
const UWSGI_BUFFER_SIZE: usize = 4096;

/// Reads and throws away the rest of the answer, up to the connection's end.
pub(super) async fn drain(stream: &mut UnixStream, input: &mut BytesMut) -> io::Result<()> {
    loop {
        input.clear();
        input.reserve(READ_CHUNK);
        if stream.read_buf(input).await? == 0 {
            return Ok(());
        }
    }
}

/// Sends one request and passes the whole answer, as CGI output, to `stdout`.
pub(super) async fn send_and_receive(
    stream: &mut UnixStream,
    buffers: Buffers<'_>,
    params: impl FnOnce(&mut Vec<u8>),
    body: &BufferedBody,
    stdout: &mut impl StdoutSink,
) -> Result<WorkerReply, ExchangeError> {
    let (mut reader, mut writer) = stream.split();
    let Buffers { out, input, .. } = buffers;
    params(out);
    // A HEAD request's answer says the length of a body it does not carry.
    let head_request = request_method(out) == Some(&b"HEAD"[..]);
    uwsgi::params_to_packet(out).map_err(|e| ExchangeError::Unsendable(e.to_string()))?;
    let vars_len = out.len() - uwsgi::HEADER_LEN;
    let write = write_head_and_body(&mut writer, out, body);
    // The whole answer in: its connection's end need not be waited for (one read less a
    // request).
    let read = answer_reader::read_answer(&mut reader, input, stdout, head_request, || {});
    // A worker may answer without reading all of its input: the answer stands, and the
    // connection ends with it anyway.
    let result = read_while_writing(read, write).await.0;
    explain_refusal(&result, "variables", vars_len);
    result?;
    Ok(WorkerReply {
        reusable: false,
        usage: None,
    })
}

/// After an exchange that failed before any answer: if the request's `part` (its uwsgi
/// variables, or its HTTP head) took more than uWSGI's default `--buffer-size`, says that uWSGI
/// refuses such requests (closing the connection, saying so only in its own log).
pub(super) fn explain_refusal<T>(result: &Result<T, ExchangeError>, part: &str, len: usize) {
    if len > UWSGI_BUFFER_SIZE && result.as_ref().is_err_and(|e| !e.response_started()) {
        warn!(
            len,
            "the worker closed the connection without answering a request whose {part} take \
             {len} bytes: uWSGI refuses more than its --buffer-size ({UWSGI_BUFFER_SIZE} bytes \
             unless raised)"
        );
    }
}

/// The REQUEST_METHOD among FastCGI-encoded `params`.
pub(super) fn request_method(params: &[u8]) -> Option<&[u8]> {
    fcgi::name_values(params)
        .map_while(Result::ok)
        .find(|(name, _)| *name == b"REQUEST_METHOD")
        .map(|(_, value)| value)
}
