//! One FastCGI exchange with a worker over a persistent Unix-socket connection.
//!
//! The request (BEGIN_REQUEST with FCGI_KEEP_CONN, PARAMS, STDIN) is written while the response is
//! read, so a worker that starts answering before it has read all of its input can never deadlock
//! against us. The response goes to a [`StdoutSink`] as it arrives: normally a
//! [`ResponseBuffer`](crate::upstream::response_buffer::ResponseBuffer) that takes it as fast as the worker
//! writes it, so the worker is free again as soon as END_REQUEST arrives, whatever the client's
//! pace; for unbuffered routes, a channel to the client.

use std::io;
use std::path::Path;

use bytes::{Buf, BytesMut};
use protocol::fcgi::{
    self, DecodeError, Decoded, ProtocolStatus, Record, RecordType, RequestUsage, Role,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::http::body::BufferedBody;

/// Every exchange uses this id: a connection carries one request at a time.
const REQUEST_ID: u16 = 1;
/// Room made in the read buffer before each read.
const READ_CHUNK: usize = 64 * 1024;
/// A request body held in memory up to this size goes out in the same write as the request head
/// (one syscall and one wakeup of the worker for the whole request); a larger one follows in
/// records of its own, so the write buffer kept per connection stays small.
const INLINE_BODY: usize = 16 * 1024;
/// Buffers that grew past this for one exchange (a large body or reply) are not kept.
const KEEP_BUFFER: usize = 256 * 1024;

/// A connection to one worker slot, with the buffers its exchanges reuse.
#[derive(Debug)]
pub(crate) struct FcgiConnection {
    stream: UnixStream,
    /// The records of the request being sent.
    out: Vec<u8>,
    /// Records received from the worker and not yet decoded.
    input: BytesMut,
    /// An exchange started and has not returned: its future was dropped midway (the client went
    /// away), so the worker may still be answering that request on this connection.
    interrupted: bool,
}

/// How an exchange ended.
#[derive(Debug)]
pub(crate) struct WorkerReply {
    /// Whether the connection can carry another request.
    pub reusable: bool,
    /// What the request cost, if the worker said (paddock's own PHP worker does).
    pub usage: Option<RequestUsage>,
}

/// Where the FCGI_STDOUT stream (CGI headers, blank line, body) goes as it arrives.
pub(crate) trait StdoutSink {
    /// Takes the next piece; an error ends the exchange.
    fn write(
        &mut self,
        data: &[u8],
    ) -> impl std::future::Future<Output = Result<(), ExchangeError>>;
    /// Whether any byte has been taken (decides whether a failed request may be retried).
    fn started(&self) -> bool;
    /// Forgets every byte taken, so that another worker's reply can be taken instead; `false`
    /// when some have already left for the client and cannot be taken back.
    fn restart(&mut self) -> bool;
}

/// An exchange failed. `response_started` tells whether any response byte had arrived, which
/// decides whether the request may be retried on another worker.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    #[error("worker closed the connection before ending the request")]
    Closed { response_started: bool },
    #[error("reading from the worker failed: {source}")]
    Read {
        source: io::Error,
        response_started: bool,
    },
    #[error("worker broke the FastCGI protocol: {0}")]
    Protocol(String),
    #[error("worker response exceeds the {limit}-byte limit")]
    TooLarge { limit: u64 },
    #[error("worker refused the request ({0:?})")]
    Refused(ProtocolStatus),
    #[error("cannot store the worker response: {0}")]
    Spool(io::Error),
    #[error("the client went away while the response streamed")]
    ClientGone,
    #[error("worker sent no end of its CGI header block within {limit} bytes")]
    HeadTooLarge { limit: usize },
}

impl ExchangeError {
    pub(crate) fn response_started(&self) -> bool {
        match self {
            ExchangeError::Closed { response_started }
            | ExchangeError::Read {
                response_started, ..
            } => *response_started,
            ExchangeError::Refused(_) => false,
            ExchangeError::Protocol(_)
            | ExchangeError::TooLarge { .. }
            | ExchangeError::Spool(_)
            | ExchangeError::ClientGone
            | ExchangeError::HeadTooLarge { .. } => true,
        }
    }

    /// Whether the worker itself misbehaved (broke the protocol, sent a reply without end, or
    /// abandoned a reply it had started), so that the process must be replaced rather than
    /// merely its connection. A worker that closes before answering is not counted: php-cgi does
    /// that at its request limit, and the request is retried.
    pub(crate) fn worker_is_broken(&self) -> bool {
        match self {
            ExchangeError::Protocol(_)
            | ExchangeError::TooLarge { .. }
            | ExchangeError::HeadTooLarge { .. } => true,
            ExchangeError::Closed { response_started }
            | ExchangeError::Read {
                response_started, ..
            } => *response_started,
            ExchangeError::Refused(_) | ExchangeError::Spool(_) | ExchangeError::ClientGone => {
                false
            }
        }
    }
}

impl From<DecodeError> for ExchangeError {
    fn from(e: DecodeError) -> Self {
        ExchangeError::Protocol(e.to_string())
    }
}

impl FcgiConnection {
    pub(crate) async fn connect(socket: &Path) -> io::Result<Self> {
        Ok(Self {
            stream: UnixStream::connect(socket).await?,
            out: Vec::new(),
            input: BytesMut::new(),
            interrupted: false,
        })
    }

    /// True when the worker has closed its end since the last exchange (php-cgi exiting after its
    /// request limit, a crash), or when the last exchange was abandoned midway: such a connection
    /// must not carry a request. (On an abandoned one, the worker's late answer to the old request
    /// would be read as the answer to the new one, and go to the wrong client.)
    pub(crate) fn is_stale(&self) -> bool {
        if self.interrupted {
            return true;
        }
        let mut probe = [0u8; 1];
        !matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Whether the last exchange was abandoned midway (its future dropped, or its client gone
    /// while the response streamed).
    pub(crate) fn interrupted(&self) -> bool {
        self.interrupted
    }

    /// The exchange ended because its client went away: the worker may still be answering.
    pub(crate) fn mark_interrupted(&mut self) {
        self.interrupted = true;
    }

    /// After an abandoned exchange: reads and throws away the rest of the worker's answer, so
    /// that whoever holds the worker's slot knows when the worker is free again. php-cgi does
    /// not stop a script whose client went away (it notices only when a write fails), so until
    /// then the worker is busy, and a request sent to it would wait unseen in its socket's
    /// backlog. Returns once END_REQUEST arrives or the worker closes the connection.
    ///
    /// The write half is shut first: a worker still reading a request body then sees its end
    /// instead of waiting for the rest.
    pub(crate) async fn drain_abandoned(&mut self) -> io::Result<()> {
        let _ = self.stream.shutdown().await;
        loop {
            loop {
                let (consumed, end) = match fcgi::decode_record(&self.input) {
                    Ok(Decoded::NeedMore { .. }) => break,
                    Ok(Decoded::Record { record, consumed }) => {
                        (consumed, matches!(record, Record::EndRequest { .. }))
                    }
                    Err(e) => {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
                    }
                };
                self.input.advance(consumed);
                if end {
                    return Ok(());
                }
            }
            self.input.reserve(READ_CHUNK);
            if self.stream.read_buf(&mut self.input).await? == 0 {
                return Ok(());
            }
        }
    }

    /// Sends one request and passes the whole reply to `stdout`. `params` appends the request's
    /// PARAMS content (name-value pairs) to the buffer it is given: it is encoded straight into
    /// the connection's write buffer.
    pub(crate) async fn exchange(
        &mut self,
        params: impl FnOnce(&mut Vec<u8>),
        body: &BufferedBody,
        stdout: &mut impl StdoutSink,
        on_stderr: impl FnMut(&[u8]),
    ) -> Result<WorkerReply, ExchangeError> {
        // Stays set if this future is dropped before the exchange ends.
        self.interrupted = true;
        let result = self.send_and_receive(params, body, stdout, on_stderr).await;
        self.interrupted = false;
        if self.out.capacity() > KEEP_BUFFER {
            self.out = Vec::new();
        }
        if self.input.capacity() > KEEP_BUFFER {
            self.input = BytesMut::new();
        }
        result
    }

    async fn send_and_receive(
        &mut self,
        params: impl FnOnce(&mut Vec<u8>),
        body: &BufferedBody,
        stdout: &mut impl StdoutSink,
        mut on_stderr: impl FnMut(&[u8]),
    ) -> Result<WorkerReply, ExchangeError> {
        let (mut reader, mut writer) = self.stream.split();
        let out = &mut self.out;
        let input = &mut self.input;
        out.clear();
        input.clear();
        fcgi::encode_begin_request(out, REQUEST_ID, Role::Responder, true);
        fcgi::encode_stream_with(out, RecordType::Params, REQUEST_ID, params);
        fcgi::encode_stream_end(out, RecordType::Params, REQUEST_ID);
        let write = async {
            match body {
                // The usual case (no body, or a small form): the whole request in one write.
                BufferedBody::Memory(bytes) if bytes.len() <= INLINE_BODY => {
                    fcgi::encode_stream(out, RecordType::Stdin, REQUEST_ID, bytes);
                }
                _ => {
                    writer.write_all(out).await?;
                    let mut chunks = body.chunks()?;
                    while let Some(chunk) = chunks.next(fcgi::MAX_CONTENT_LEN).await? {
                        out.clear();
                        fcgi::encode_stream(out, RecordType::Stdin, REQUEST_ID, &chunk);
                        writer.write_all(out).await?;
                    }
                    out.clear();
                }
            }
            fcgi::encode_stream_end(out, RecordType::Stdin, REQUEST_ID);
            writer.write_all(out).await
        };
        let read = async {
            let mut usage = None;
            loop {
                // Decode every complete record in the buffer.
                loop {
                    let (end, consumed) = match fcgi::decode_record(input)? {
                        Decoded::NeedMore { .. } => break,
                        Decoded::Record { record, consumed } => match record {
                            Record::Stdout {
                                request_id,
                                content,
                            } => {
                                check_id(request_id)?;
                                stdout.write(content).await?;
                                (None, consumed)
                            }
                            Record::Stderr {
                                request_id,
                                content,
                            } => {
                                check_id(request_id)?;
                                if !content.is_empty() {
                                    on_stderr(content);
                                }
                                (None, consumed)
                            }
                            Record::EndRequest {
                                request_id,
                                protocol_status,
                                ..
                            } => {
                                check_id(request_id)?;
                                (Some(protocol_status), consumed)
                            }
                            Record::Unrecognised {
                                record_type: fcgi::USAGE_RECORD_TYPE,
                                request_id,
                                content,
                            } => {
                                check_id(request_id)?;
                                usage = RequestUsage::decode(content);
                                (None, consumed)
                            }
                            other => {
                                return Err(ExchangeError::Protocol(format!(
                                    "unexpected record from a worker: {other:?}"
                                )))
                            }
                        },
                    };
                    // Moves the start only: the buffer stays one allocation, reused.
                    input.advance(consumed);
                    if let Some(status) = end {
                        if status != ProtocolStatus::RequestComplete {
                            return Err(ExchangeError::Refused(status));
                        }
                        return Ok((input.is_empty(), usage));
                    }
                }
                input.reserve(READ_CHUNK);
                let started = stdout.started();
                match reader.read_buf(input).await {
                    Ok(0) => {
                        return Err(ExchangeError::Closed {
                            response_started: started,
                        })
                    }
                    Ok(_) => {}
                    Err(source) => {
                        return Err(ExchangeError::Read {
                            source,
                            response_started: started,
                        })
                    }
                }
            }
        };
        tokio::pin!(write);
        tokio::pin!(read);
        let mut write_result = None;
        let (clean_end, usage) = loop {
            tokio::select! {
                result = &mut write, if write_result.is_none() => write_result = Some(result),
                result = &mut read => break result?,
            }
        };
        // A worker may answer without reading all of its input (then the write fails or is still
        // pending): the reply stands, but the connection is no longer in a known state.
        let reusable = clean_end && matches!(write_result, Some(Ok(())));
        Ok(WorkerReply { reusable, usage })
    }
}

fn check_id(request_id: u16) -> Result<(), ExchangeError> {
    if request_id == REQUEST_ID {
        Ok(())
    } else {
        Err(ExchangeError::Protocol(format!(
            "record for request id {request_id}, expected {REQUEST_ID}"
        )))
    }
}
