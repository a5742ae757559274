//! Worker responses held by the front end, so that the worker is free at FCGI_END_REQUEST and the
//! client is served at its own pace.
//!
//! The first `response_memory` bytes stay in memory (the CGI head is always among them: it may not
//! exceed 64 KiB, and `response_memory` is at least that); the rest goes to an unnamed temporary
//! file (gone when dropped, even after a crash). A response over `max_response` ends the exchange
//! with an error, which the caller answers with 502. The client's body then streams from memory
//! and then from the file, 64 KiB at a time.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use protocol::control::LimitsSpec;
use tokio::io::{AsyncRead, AsyncSeekExt, AsyncWriteExt, ReadBuf};

use crate::upstream::worker_connection::{ExchangeError, StdoutSink};
use crate::upstream::worker_response::MAX_RESPONSE_HEAD;

const FILE_CHUNK: usize = 64 * 1024;

/// Collects one worker response.
#[derive(Debug)]
pub(crate) struct ResponseBuffer<'a> {
    limits: &'a LimitsSpec,
    memory: BytesMut,
    spill: Option<(tokio::fs::File, u64)>,
    /// The blank line ending the CGI head has arrived.
    head_complete: bool,
}

/// A complete worker response: the in-memory start, then the spilled rest if any.
#[derive(Debug)]
pub(crate) struct BufferedResponse {
    /// Still a `BytesMut`: [`SpooledBody::new`] drops the head from it before freezing, which
    /// costs nothing, where slicing a frozen `Bytes` would allocate its shared header.
    pub memory: BytesMut,
    pub spill: Option<(tokio::fs::File, u64)>,
}

impl<'a> ResponseBuffer<'a> {
    pub(crate) fn new(limits: &'a LimitsSpec) -> Self {
        Self {
            limits,
            memory: BytesMut::new(),
            spill: None,
            head_complete: false,
        }
    }

    fn len(&self) -> u64 {
        self.memory.len() as u64 + self.spill.as_ref().map_or(0, |s| s.1)
    }

    /// Ends collection; the file (if any) is rewound for reading.
    pub(crate) async fn finish(self) -> io::Result<BufferedResponse> {
        let spill = match self.spill {
            None => None,
            Some((mut file, len)) => {
                file.flush().await?;
                file.rewind().await?;
                Some((file, len))
            }
        };
        Ok(BufferedResponse {
            memory: self.memory,
            spill,
        })
    }
}

impl StdoutSink for ResponseBuffer<'_> {
    async fn write(&mut self, data: &[u8]) -> Result<(), ExchangeError> {
        let limit = self.limits.max_response_bytes;
        if self.len() + data.len() as u64 > limit {
            return Err(ExchangeError::TooLarge { limit });
        }
        let room = (self.limits.response_memory_bytes as usize).saturating_sub(self.memory.len());
        let (to_memory, rest) = if self.spill.is_some() {
            (&[][..], data)
        } else {
            data.split_at(room.min(data.len()))
        };
        self.memory.extend_from_slice(to_memory);
        if !self.head_complete {
            // A worker that never ends its head (endless headers) is cut off at the head limit,
            // not after max_response bytes.
            self.head_complete = has_blank_line(&self.memory);
            if !self.head_complete && self.memory.len() >= MAX_RESPONSE_HEAD {
                return Err(ExchangeError::HeadTooLarge {
                    limit: MAX_RESPONSE_HEAD,
                });
            }
        }
        if rest.is_empty() {
            return Ok(());
        }
        if self.spill.is_none() {
            let file =
                tempfile::tempfile_in(&self.limits.temp_dir).map_err(ExchangeError::Spool)?;
            self.spill = Some((tokio::fs::File::from_std(file), 0));
        }
        let (file, len) = self.spill.as_mut().expect("just created");
        file.write_all(rest).await.map_err(ExchangeError::Spool)?;
        *len += rest.len() as u64;
        Ok(())
    }

    fn started(&self) -> bool {
        !self.memory.is_empty()
    }

    /// Nothing of a buffered reply reaches the client before the worker ends it: a reply cut
    /// off by the worker's death is dropped whole (its spill file with it).
    fn restart(&mut self) -> bool {
        self.memory.clear();
        self.spill = None;
        self.head_complete = false;
        true
    }
}

/// The client-facing body of a buffered response: bytes from memory, then from the file.
#[derive(Debug)]
pub(crate) struct SpooledBody {
    memory: Option<Bytes>,
    file: Option<tokio::fs::File>,
    /// File bytes not yet sent.
    remaining: u64,
    buf: Vec<u8>,
}

impl SpooledBody {
    /// The body after the first `skip` bytes (the CGI head) of `response`.
    pub(crate) fn new(response: BufferedResponse, skip: usize) -> Self {
        let (file, remaining) = match response.spill {
            Some((file, len)) => (Some(file), len),
            None => (None, 0),
        };
        let mut memory = response.memory;
        memory.advance(skip);
        Self {
            memory: Some(memory.freeze()).filter(|b| !b.is_empty()),
            file,
            remaining,
            buf: Vec::new(),
        }
    }
}

impl HttpBody for SpooledBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        if let Some(bytes) = this.memory.take() {
            return Poll::Ready(Some(Ok(Frame::data(bytes))));
        }
        let Some(file) = this.file.as_mut() else {
            return Poll::Ready(None);
        };
        if this.remaining == 0 {
            this.file = None;
            return Poll::Ready(None);
        }
        let want = FILE_CHUNK.min(this.remaining as usize);
        this.buf.resize(want, 0);
        let mut read = ReadBuf::new(&mut this.buf);
        match Pin::new(file).poll_read(cx, &mut read) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) => {
                let n = read.filled().len();
                if n == 0 {
                    // The file is shorter than what was written: never end the body quietly.
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the spooled response ended early",
                    ))));
                }
                this.remaining -= n as u64;
                Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(
                    &this.buf[..n],
                )))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.memory.is_none() && self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.memory.as_ref().map_or(0, |b| b.len() as u64) + self.remaining)
    }
}

/// Whether the CGI head (within its size limit) has ended: a blank line, CRLF or bare LF.
/// Walks line by line and stops at the head's end: a whole-buffer search for "\n\n" would
/// read every byte of a body that only has CRLF blank lines in its head (6 % of the front
/// end's CPU on a 10 KiB PHP page).
fn has_blank_line(stdout: &[u8]) -> bool {
    protocol::cgi::response_head_end(stdout, MAX_RESPONSE_HEAD).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn limits(memory: u64, max: u64) -> LimitsSpec {
        LimitsSpec {
            max_body_bytes: 0,
            body_memory_bytes: 0,
            max_response_bytes: max,
            response_memory_bytes: memory,
            temp_dir: std::env::temp_dir(),
            max_connections: 1,
            max_connections_per_ip: 0,
            max_requests_per_connection: 1,
            max_header_bytes: 8192,
            max_headers: 10,
            max_uri_bytes: 256,
            request_body_min_rate: 0,
            static_cache_bytes: 0,
            static_cache_max_file_bytes: 0,
        }
    }

    #[tokio::test]
    async fn spills_past_the_memory_threshold_and_streams_back_in_order() {
        let limits = limits(10, 1 << 20);
        let mut buffer = ResponseBuffer::new(&limits);
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        for piece in data.chunks(7000) {
            buffer.write(piece).await.unwrap();
        }
        let response = buffer.finish().await.unwrap();
        assert_eq!(response.memory.len(), 10);
        assert_eq!(response.spill.as_ref().unwrap().1, 200_000 - 10);
        let body = SpooledBody::new(response, 4);
        assert_eq!(body.size_hint().exact(), Some(200_000 - 4));
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], &data[4..]);
    }

    /// A reply cut off by a dead worker (here half spilled to disk) is forgotten whole: the
    /// second worker's reply is all that remains, and the limits count it alone.
    #[tokio::test]
    async fn a_restarted_buffer_keeps_only_the_second_reply() {
        let limits = limits(10, 100);
        let mut buffer = ResponseBuffer::new(&limits);
        buffer
            .write(b"Status: 200\r\n\r\nfirst worker, cut off")
            .await
            .unwrap();
        assert!(buffer.started());
        assert!(buffer.restart());
        assert!(!buffer.started());
        let second = b"Content-Type: text/plain\r\n\r\n".repeat(3);
        // 36 + 84 bytes would pass the 100-byte limit: only the second reply counts.
        buffer.write(&second).await.unwrap();
        let response = buffer.finish().await.unwrap();
        let body = SpooledBody::new(response, 0);
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], &second[..]);
    }

    #[tokio::test]
    async fn over_the_maximum_is_an_error() {
        let limits = limits(10, 100);
        let mut buffer = ResponseBuffer::new(&limits);
        buffer.write(&[0; 60]).await.unwrap();
        assert!(matches!(
            buffer.write(&[0; 60]).await,
            Err(ExchangeError::TooLarge { limit: 100 })
        ));
    }
}
