//! One FastCGI exchange on a worker connection that stays open for the next request.
//!
//! The request is BEGIN_REQUEST (with FCGI_KEEP_CONN unless the pool keeps no connections),
//! PARAMS and STDIN; the reply is STDOUT and STDERR records, paddock's own usage record from its
//! PHP worker, and END_REQUEST.

use std::io;

use bytes::{Buf, BytesMut};
use protocol::fcgi::{self, Decoded, ProtocolStatus, Record, RecordType, RequestUsage, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::http::body::BufferedBody;
use crate::upstream::worker_connection::{
    read_while_writing, Buffers, ExchangeError, StdoutSink, WorkerReply, INLINE_BODY, READ_CHUNK,
};

/// Reads and throws away records up to the END_REQUEST of the request in progress, or to the
/// connection's end.
pub(super) async fn drain(stream: &mut UnixStream, input: &mut BytesMut) -> io::Result<()> {
    loop {
        loop {
            let (consumed, end) = match fcgi::decode_record(input) {
                Ok(Decoded::NeedMore { .. }) => break,
                Ok(Decoded::Record { record, consumed }) => {
                    (consumed, matches!(record, Record::EndRequest { .. }))
                }
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
            };
            input.advance(consumed);
            if end {
                return Ok(());
            }
        }
        input.reserve(READ_CHUNK);
        if stream.read_buf(input).await? == 0 {
            return Ok(());
        }
    }
}

/// Sends one request as `request_id` and passes the whole reply to `stdout`; `params` is encoded
/// straight into the connection's write buffer. A connection carries one request at a time; the
/// id tells a worker with several connections which request came first (see
/// [`crate::upstream::dispatch::Lease::fastcgi_id`]).
#[allow(clippy::too_many_arguments)]
pub(super) async fn send_and_receive(
    stream: &mut UnixStream,
    buffers: Buffers<'_>,
    keep: bool,
    request_id: u16,
    params: impl FnOnce(&mut Vec<u8>),
    body: &BufferedBody,
    stdout: &mut impl StdoutSink,
    mut on_stderr: impl FnMut(&[u8]),
) -> Result<WorkerReply, ExchangeError> {
    let (mut reader, mut writer) = stream.split();
    let Buffers { out, input, .. } = buffers;
    fcgi::encode_begin_request(out, request_id, Role::Responder, keep);
    fcgi::encode_stream_with(out, RecordType::Params, request_id, params);
    fcgi::encode_stream_end(out, RecordType::Params, request_id);
    let write = async {
        match body {
            // The usual case (no body, or a small form): the whole request in one write.
            BufferedBody::Memory(bytes) if bytes.len() <= INLINE_BODY => {
                fcgi::encode_stream(out, RecordType::Stdin, request_id, bytes);
            }
            _ => {
                writer.write_all(out).await?;
                let mut chunks = body.chunks()?;
                while let Some(chunk) = chunks.next(fcgi::MAX_CONTENT_LEN).await? {
                    out.clear();
                    fcgi::encode_stream(out, RecordType::Stdin, request_id, &chunk);
                    writer.write_all(out).await?;
                }
                out.clear();
            }
        }
        fcgi::encode_stream_end(out, RecordType::Stdin, request_id);
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
                            request_id: id,
                            content,
                        } => {
                            check_id(id, request_id)?;
                            stdout.write(content).await?;
                            (None, consumed)
                        }
                        Record::Stderr {
                            request_id: id,
                            content,
                        } => {
                            check_id(id, request_id)?;
                            if !content.is_empty() {
                                on_stderr(content);
                            }
                            (None, consumed)
                        }
                        Record::EndRequest {
                            request_id: id,
                            protocol_status,
                            ..
                        } => {
                            check_id(id, request_id)?;
                            (Some(protocol_status), consumed)
                        }
                        Record::Unrecognised {
                            record_type: fcgi::USAGE_RECORD_TYPE,
                            request_id: id,
                            content,
                        } => {
                            check_id(id, request_id)?;
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
    let (read_result, written) = read_while_writing(read, write).await;
    let (clean_end, usage) = read_result?;
    // A worker may answer without reading all of its input (then the write fails or is still
    // pending): the reply stands, but the connection is no longer in a known state.
    let reusable = clean_end && written;
    Ok(WorkerReply { reusable, usage })
}

fn check_id(got: u16, expected: u16) -> Result<(), ExchangeError> {
    if got == expected {
        Ok(())
    } else {
        Err(ExchangeError::Protocol(format!(
            "record for request id {got}, expected {expected}"
        )))
    }
}
