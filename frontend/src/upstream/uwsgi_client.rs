//! One uwsgi exchange (uWSGI's native protocol, a pool's `protocol = "uwsgi"`) on a new worker
//! connection, which the worker closes at the end of its answer.
//!
//! The request is one packet (the CGI variables, `protocol::uwsgi`) followed by the raw body; the
//! answer is an HTTP response, whose head is turned into CGI output (its status line into a
//! `Status:` header) so that it goes to the [`StdoutSink`] as any worker's CGI output does. The
//! end of the stream is the end of the answer, so a worker that dies mid-body is told from one
//! that has finished only by the `Content-Length` it sent: a body shorter than that is a failed
//! exchange (retried like a FastCGI worker's, if nothing reached the client); without one, the
//! answer is whatever arrived (as behind nginx's `uwsgi_pass`).

use std::io;

use bytes::{Buf, BytesMut};
use protocol::fcgi;
use protocol::uwsgi::{self, Head};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tracing::warn;

use crate::http::body::BufferedBody;
use crate::upstream::worker_connection::{
    read_while_writing, Buffers, ExchangeError, StdoutSink, WorkerReply, INLINE_BODY, READ_CHUNK,
};
use crate::upstream::worker_response::MAX_RESPONSE_HEAD;

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
    let Buffers { out, input } = buffers;
    params(out);
    // A HEAD request's answer says the length of a body it does not carry.
    let head_request = request_method(out) == Some(&b"HEAD"[..]);
    uwsgi::params_to_packet(out).map_err(|e| ExchangeError::Unsendable(e.to_string()))?;
    let vars_len = out.len() - uwsgi::HEADER_LEN;
    let write = async {
        match body {
            // The usual case (no body, or a small form): the whole request in one write.
            BufferedBody::Memory(bytes) if bytes.len() <= INLINE_BODY => {
                out.extend_from_slice(bytes);
                writer.write_all(out).await
            }
            _ => {
                writer.write_all(out).await?;
                let mut chunks = body.chunks()?;
                while let Some(chunk) = chunks.next(READ_CHUNK).await? {
                    writer.write_all(&chunk).await?;
                }
                Ok(())
            }
        }
    };
    let read = async {
        // None until the head has arrived; then the body bytes still to come, if the worker said.
        let mut body_left: Option<Option<u64>> = None;
        loop {
            input.reserve(READ_CHUNK);
            let started = stdout.started() || !input.is_empty();
            match reader.read_buf(input).await {
                Ok(0) => {
                    return match body_left {
                        Some(None | Some(0)) => Ok(()),
                        Some(Some(_)) | None if started => Err(ExchangeError::Closed {
                            response_started: true,
                        }),
                        _ => Err(ExchangeError::Closed {
                            response_started: false,
                        }),
                    }
                }
                Ok(_) => {}
                Err(source) => {
                    return Err(ExchangeError::Read {
                        source,
                        response_started: started,
                    })
                }
            }
            if body_left.is_none() {
                match uwsgi::parse_answer_head(input) {
                    Head::Incomplete if input.len() > MAX_RESPONSE_HEAD => {
                        return Err(ExchangeError::HeadTooLarge {
                            limit: MAX_RESPONSE_HEAD,
                        })
                    }
                    Head::Incomplete => continue,
                    Head::Invalid(why) => return Err(ExchangeError::Protocol(why)),
                    Head::Complete(head) => {
                        stdout.write(&head.cgi_head).await?;
                        input.advance(head.consumed);
                        let bodiless =
                            head_request || head.status < 200 || matches!(head.status, 204 | 304);
                        body_left = Some(if bodiless {
                            Some(0)
                        } else {
                            head.content_length
                        });
                    }
                }
            }
            // Bytes past the length the worker gave are not part of the answer.
            let take = match body_left {
                Some(Some(left)) => input.len().min(usize::try_from(left).unwrap_or(usize::MAX)),
                _ => input.len(),
            };
            if take > 0 {
                stdout.write(&input[..take]).await?;
                if let Some(Some(left)) = body_left.as_mut() {
                    *left -= take as u64;
                }
            }
            input.clear();
            // The whole answer is in: its connection's end need not be waited for (one read
            // less a request).
            if body_left == Some(Some(0)) {
                return Ok(());
            }
        }
    };
    // A worker may answer without reading all of its input: the answer stands, and the
    // connection ends with it anyway.
    let result = read_while_writing(read, write).await.0;
    if result.as_ref().is_err_and(|e| !e.response_started()) && vars_len > UWSGI_BUFFER_SIZE {
        // What uWSGI does with such a request, saying so only in its own log.
        warn!(
            vars_len,
            "the uwsgi worker closed the connection without answering a request whose variables \
             take {vars_len} bytes: uWSGI refuses more than its --buffer-size ({UWSGI_BUFFER_SIZE} \
             bytes unless raised)"
        );
    }
    result?;
    Ok(WorkerReply {
        reusable: false,
        usage: None,
    })
}

/// The REQUEST_METHOD among FastCGI-encoded `params`.
fn request_method(params: &[u8]) -> Option<&[u8]> {
    fcgi::name_values(params)
        .map_while(Result::ok)
        .find(|(name, _)| *name == b"REQUEST_METHOD")
        .map(|(_, value)| value)
}
