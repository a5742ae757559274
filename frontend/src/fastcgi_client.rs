//! One FastCGI exchange with a worker over a persistent Unix-socket connection.
//!
//! The request (BEGIN_REQUEST with FCGI_KEEP_CONN, PARAMS, STDIN) is written while the response is
//! read, so a worker that starts answering before it has read all of its input can never deadlock
//! against us. The response is read as fast as the worker writes it; the worker is free again as soon
//! as END_REQUEST arrives, whatever the client's pace.

use std::io;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use protocol::fcgi::{self, DecodeError, Decoded, ProtocolStatus, Record, RecordType, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::body::BufferedBody;

/// The largest CGI header block accepted from a worker. The reply is refused as soon as this
/// much stdout holds no blank line, instead of buffering a header block that never ends.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// Every exchange uses this id: a connection carries one request at a time.
const REQUEST_ID: u16 = 1;
const READ_CHUNK: usize = 64 * 1024;

/// A connection to one worker slot.
#[derive(Debug)]
pub struct FcgiConnection {
    stream: UnixStream,
}

/// What the worker answered.
#[derive(Debug)]
pub struct WorkerReply {
    /// The complete FCGI_STDOUT stream: CGI headers, blank line, body.
    pub stdout: Bytes,
    /// Whether the connection can carry another request.
    pub reusable: bool,
}

/// An exchange failed. `response_started` tells whether any response byte had arrived, which
/// decides whether the request may be retried on another worker.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
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
    #[error("worker sent no end of its CGI header block within {limit} bytes")]
    HeadTooLarge { limit: usize },
}

impl ExchangeError {
    pub fn response_started(&self) -> bool {
        match self {
            ExchangeError::Closed { response_started }
            | ExchangeError::Read {
                response_started, ..
            } => *response_started,
            ExchangeError::Refused(_) => false,
            ExchangeError::Protocol(_)
            | ExchangeError::TooLarge { .. }
            | ExchangeError::HeadTooLarge { .. } => true,
        }
    }

    /// Whether the worker itself misbehaved (broke the protocol, sent a reply without end, or
    /// abandoned a reply it had started), so that the process must be replaced rather than
    /// merely its connection. A worker that closes before answering is not counted: php-cgi does
    /// that at its request limit, and the request is retried.
    pub fn worker_is_broken(&self) -> bool {
        match self {
            ExchangeError::Protocol(_)
            | ExchangeError::TooLarge { .. }
            | ExchangeError::HeadTooLarge { .. } => true,
            ExchangeError::Closed { response_started }
            | ExchangeError::Read {
                response_started, ..
            } => *response_started,
            ExchangeError::Refused(_) => false,
        }
    }
}

impl From<DecodeError> for ExchangeError {
    fn from(e: DecodeError) -> Self {
        ExchangeError::Protocol(e.to_string())
    }
}

impl FcgiConnection {
    pub async fn connect(socket: &Path) -> io::Result<Self> {
        Ok(Self {
            stream: UnixStream::connect(socket).await?,
        })
    }

    /// True when the worker has closed its end since the last exchange (php-cgi exiting after its
    /// request limit, a crash): such a connection must not carry a request.
    pub fn is_stale(&self) -> bool {
        let mut probe = [0u8; 1];
        !matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Sends one request and reads the whole reply.
    pub async fn exchange(
        &mut self,
        params: &[u8],
        body: &BufferedBody,
        max_response: u64,
        mut on_stderr: impl FnMut(&[u8]),
    ) -> Result<WorkerReply, ExchangeError> {
        let (mut reader, mut writer) = self.stream.split();
        let write = async {
            let mut head = Vec::with_capacity(params.len() + 64);
            fcgi::encode_begin_request(&mut head, REQUEST_ID, Role::Responder, true);
            fcgi::encode_stream(&mut head, RecordType::Params, REQUEST_ID, params);
            fcgi::encode_stream_end(&mut head, RecordType::Params, REQUEST_ID);
            writer.write_all(&head).await?;
            let mut record = Vec::with_capacity(fcgi::MAX_CONTENT_LEN + 16);
            let mut chunks = body.chunks()?;
            while let Some(chunk) = chunks.next(fcgi::MAX_CONTENT_LEN).await? {
                record.clear();
                fcgi::encode_stream(&mut record, RecordType::Stdin, REQUEST_ID, &chunk);
                writer.write_all(&record).await?;
            }
            record.clear();
            fcgi::encode_stream_end(&mut record, RecordType::Stdin, REQUEST_ID);
            writer.write_all(&record).await
        };
        let read = async {
            let mut input = BytesMut::with_capacity(READ_CHUNK);
            let mut stdout = BytesMut::new();
            let mut head_complete = false;
            loop {
                // Decode every complete record in the buffer.
                loop {
                    let (end, consumed) = match fcgi::decode_record(&input)? {
                        Decoded::NeedMore { .. } => break,
                        Decoded::Record { record, consumed } => match record {
                            Record::Stdout {
                                request_id,
                                content,
                            } => {
                                check_id(request_id)?;
                                if stdout.len() as u64 + content.len() as u64 > max_response {
                                    return Err(ExchangeError::TooLarge {
                                        limit: max_response,
                                    });
                                }
                                stdout.extend_from_slice(content);
                                if !head_complete {
                                    head_complete = has_blank_line(&stdout);
                                    if !head_complete && stdout.len() >= MAX_RESPONSE_HEAD {
                                        return Err(ExchangeError::HeadTooLarge {
                                            limit: MAX_RESPONSE_HEAD,
                                        });
                                    }
                                }
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
                            other => {
                                return Err(ExchangeError::Protocol(format!(
                                    "unexpected record from a worker: {other:?}"
                                )))
                            }
                        },
                    };
                    let _ = input.split_to(consumed);
                    if let Some(status) = end {
                        if status != ProtocolStatus::RequestComplete {
                            return Err(ExchangeError::Refused(status));
                        }
                        return Ok((stdout.freeze(), input.is_empty()));
                    }
                }
                input.reserve(READ_CHUNK);
                let started = !stdout.is_empty();
                match reader.read_buf(&mut input).await {
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
        let (stdout, clean_end) = loop {
            tokio::select! {
                result = &mut write, if write_result.is_none() => write_result = Some(result),
                result = &mut read => break result?,
            }
        };
        // A worker may answer without reading all of its input (then the write fails or is still
        // pending): the reply stands, but the connection is no longer in a known state.
        let reusable = clean_end && matches!(write_result, Some(Ok(())));
        Ok(WorkerReply { stdout, reusable })
    }
}

/// Whether a CGI header block has ended (an empty line, CRLF or bare LF) in `stdout`.
fn has_blank_line(stdout: &[u8]) -> bool {
    let window = &stdout[..stdout.len().min(MAX_RESPONSE_HEAD)];
    window.starts_with(b"\n")
        || window.starts_with(b"\r\n")
        || window.windows(2).any(|w| w == b"\n\n")
        || window.windows(3).any(|w| w == b"\n\r\n")
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
