//! One uwsgi exchange (uWSGI's native protocol, a pool's `protocol = "uwsgi"`) on a new worker
//! connection, which the worker closes at the end of its answer.
//!
//! The request is one packet (the CGI variables, `protocol::uwsgi`) followed by the raw body; the
//! answer is an HTTP response, whose status line becomes a CGI `Status:` header so that the rest
//! of the answer goes to the [`StdoutSink`] as any worker's CGI output does. The end of the
//! stream is the end of the answer: a worker that dies mid-body cannot be told from one that
//! has finished (as behind nginx's `uwsgi_pass`), except by the `Content-Length` it sent.

use std::io;

use bytes::{Buf, BytesMut};
use protocol::uwsgi::{self, StatusLine};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::http::body::BufferedBody;
use crate::upstream::worker_connection::{
    Buffers, ExchangeError, StdoutSink, WorkerReply, INLINE_BODY, READ_CHUNK,
};

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
    uwsgi::params_to_packet(out).map_err(|e| ExchangeError::Unsendable(e.to_string()))?;
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
        let mut status_seen = false;
        loop {
            input.reserve(READ_CHUNK);
            let started = stdout.started() || !input.is_empty();
            match reader.read_buf(input).await {
                Ok(0) if status_seen => return Ok(()),
                Ok(0) if input.is_empty() => {
                    return Err(ExchangeError::Closed {
                        response_started: false,
                    })
                }
                Ok(0) => {
                    return Err(ExchangeError::Protocol(
                        "the answer ended inside its status line".into(),
                    ))
                }
                Ok(_) => {}
                Err(source) => {
                    return Err(ExchangeError::Read {
                        source,
                        response_started: started,
                    })
                }
            }
            if !status_seen {
                match uwsgi::status_line_to_cgi(input) {
                    StatusLine::Incomplete => continue,
                    StatusLine::Invalid(line) => {
                        return Err(ExchangeError::Protocol(format!(
                            "the answer does not start with an HTTP status line: {:?}",
                            String::from_utf8_lossy(line)
                        )))
                    }
                    StatusLine::Complete {
                        cgi_header,
                        consumed,
                    } => {
                        stdout.write(&cgi_header).await?;
                        input.advance(consumed);
                        status_seen = true;
                    }
                }
            }
            if !input.is_empty() {
                stdout.write(input).await?;
                input.clear();
            }
        }
    };
    tokio::pin!(write);
    tokio::pin!(read);
    let mut write_done = false;
    loop {
        tokio::select! {
            // A worker may answer without reading all of its input: the answer stands, and the
            // connection ends with it anyway.
            _ = &mut write, if !write_done => write_done = true,
            result = &mut read => break result?,
        }
    }
    Ok(WorkerReply {
        reusable: false,
        usage: None,
    })
}
