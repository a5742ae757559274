//! Idle HTTP/1.1 connections parked outside hyper, so they cost almost nothing.
//!
//! Why: a hyper HTTP/1 connection keeps its read buffer (8 KiB, allocated at the first read) and
//! its write buffer for as long as the connection lives. With 10,000 idle keep-alive clients that
//! was about 17 KiB each (docs/benchmarks.md, scenario 4), where nginx frees its buffers between
//! requests and holds an idle connection in half a kilobyte. paddock does the same: when a
//! connection falls idle, hyper's connection object is dropped, the task waits for the socket to
//! become readable with nothing allocated but the socket itself, and a fresh hyper connection
//! serves the next request.
//!
//! hyper has no "park" call, so [`ParkingIo`] (the socket as hyper sees it) ends hyper's
//! connection by answering a read with end-of-file, which hyper treats as the client closing an
//! idle connection and completes cleanly; `Connection::into_parts` then returns the socket. That
//! answer is only given when closing hyper's side loses nothing:
//! - the socket has nothing to read right now (hyper's read would block);
//! - no request is in flight and no byte of a new one was read since the last response ended
//!   ([`Activity::is_idle`]), and at least one request was served on this hyper connection. A
//!   request counts as in flight from the moment hyper hands it to the service, not from the
//!   first poll of the service's future: in between, hyper may already read again;
//! - the last bytes hyper was given end a request head (`\r\n\r\n`): hyper parses every complete
//!   head before it reads again, so it holds no partial request. A connection whose last request
//!   had a body stays in hyper until its next bodiless request (conservative, never wrong);
//! - no write to the client is blocked ([`Activity::write_blocked`], noted by the socket wrapper
//!   under any TLS layer), so no response bytes wait to be sent.
//!
//! Any bytes hyper still reports as unread are handed back through [`ParkingIo::unread`].

use std::io;
use std::os::fd::BorrowedFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::conn::client_socket::ClientSocket;
use crate::conn::deadlines::{Activity, WatchedIo};
use crate::metrics::connections::CountingStream;

/// The end of a request head; a buffer that ends with it holds no partial head.
const HEAD_END: [u8; 4] = *b"\r\n\r\n";

/// The client connection as one hyper HTTP/1 connection sees it (see the module docs).
#[derive(Debug)]
pub(crate) struct ParkingIo<I> {
    inner: I,
    activity: Arc<Activity>,
    /// Bytes read before this hyper connection existed, given to it first.
    unread: Bytes,
    /// The last four bytes given to hyper.
    tail: [u8; 4],
    /// Requests answered when this hyper connection started.
    requests_at_start: u64,
    parked: bool,
}

impl<I> ParkingIo<I> {
    /// `requests_at_start`: the connection's requests before this hyper connection's first.
    pub(crate) fn new(
        inner: I,
        activity: Arc<Activity>,
        unread: Bytes,
        requests_at_start: u64,
    ) -> Self {
        Self {
            inner,
            activity,
            unread,
            tail: [0; 4],
            requests_at_start,
            parked: false,
        }
    }

    /// Whether this hyper connection ended because it was parked (not because the client left).
    pub(crate) fn parked(&self) -> bool {
        self.parked
    }

    pub(crate) fn into_inner(self) -> I {
        self.inner
    }

    fn remember(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(4);
        self.tail.rotate_left(n);
        self.tail[4 - n..].copy_from_slice(&bytes[bytes.len() - n..]);
    }

    fn may_park(&self) -> bool {
        self.tail == HEAD_END
            && !self.activity.write_blocked()
            && self.activity.requests() > self.requests_at_start
            && self.activity.is_idle()
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for ParkingIo<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.parked {
            return Poll::Ready(Ok(()));
        }
        if !this.unread.is_empty() {
            let n = this.unread.len().min(buf.remaining());
            let chunk = this.unread.split_to(n);
            buf.put_slice(&chunk);
            this.remember(&chunk);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Pending if this.may_park() => {
                this.parked = true;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Ok(())) => {
                this.remember(&buf.filled()[before..]);
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for ParkingIo<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A client stream a connection can park on: the plain socket or TLS over it. Waiting for the
/// next request reads the stream itself (`conn::http1_session`), so TLS data rustls already
/// holds is seen without asking the socket.
pub(crate) trait Parkable: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// The plain socket under the stream, which may sleep outside tokio while the connection is
    /// long idle (`conn::client_socket`); `None` over TLS, whose state dwarfs the registration.
    fn client_socket(&mut self) -> Option<&mut ClientSocket> {
        None
    }

    /// Sends up to `len` bytes of `file` from `*offset` with sendfile(2), counted as written
    /// like every other write; only where [`Parkable::client_socket`] is `Some` (under TLS the
    /// records are made in paddock, so the bytes must pass through it).
    fn poll_send_file(
        &mut self,
        _cx: &mut Context<'_>,
        _file: BorrowedFd<'_>,
        _offset: &mut u64,
        _len: usize,
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(io::ErrorKind::Unsupported.into()))
    }
}

pub(crate) type PlainStream = WatchedIo<CountingStream<ClientSocket>>;

impl Parkable for PlainStream {
    fn client_socket(&mut self) -> Option<&mut ClientSocket> {
        Some(self.get_mut().get_mut())
    }

    fn poll_send_file(
        &mut self,
        cx: &mut Context<'_>,
        file: BorrowedFd<'_>,
        offset: &mut u64,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        let counted = self.get_mut();
        let sent = counted.get_mut().poll_send_file(cx, file, offset, len);
        if let Poll::Ready(Ok(bytes)) = sent {
            counted.count_sent(bytes as u64);
        }
        sent
    }
}

impl Parkable for tokio_rustls::server::TlsStream<PlainStream> {}

#[cfg(test)]
mod tests;
