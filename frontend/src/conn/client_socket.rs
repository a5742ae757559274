//! A client's TCP socket that can leave tokio's I/O driver while its connection sleeps.
//!
//! Why: tokio keeps a registration for every socket it watches (`ScheduledIo`, 256 bytes in a
//! 128-byte-aligned block), the largest single part of an idle keep-alive connection after its
//! task. A connection idle for a while ([`crate::conn::idle_deadlines`], "deep parking") hands
//! its socket to its listener's own epoll set instead, where a socket costs the kernel's entry
//! and nothing in paddock, and takes it back from there when the client speaks again, the
//! connection's deadline passes or a stop comes. Busy connections never leave tokio: the move
//! costs two `epoll_ctl` calls each way.

use std::io;
use std::os::fd::BorrowedFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use rustix::event::epoll;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// The client socket: watched by tokio, or asleep in a listener's epoll set.
#[derive(Debug)]
pub(crate) struct ClientSocket(Place);

#[derive(Debug)]
enum Place {
    Tokio(TcpStream),
    Asleep(std::net::TcpStream),
    /// Lost while moving (a failed deregistration): every use is an error.
    Gone,
}

impl ClientSocket {
    pub(crate) fn new(stream: TcpStream) -> Self {
        Self(Place::Tokio(stream))
    }

    pub(crate) fn is_asleep(&self) -> bool {
        matches!(self.0, Place::Asleep(_))
    }

    /// Moves the socket out of tokio's driver into `epoll`, which reports it readable (once)
    /// with `key` as its data. Data that arrives during the move is reported all the same: the
    /// set is level-triggered.
    pub(crate) fn sleep_in(&mut self, epoll: BorrowedFd<'_>, key: u64) -> io::Result<()> {
        let Place::Tokio(_) = self.0 else {
            return Ok(());
        };
        let Place::Tokio(stream) = std::mem::replace(&mut self.0, Place::Gone) else {
            unreachable!("checked above");
        };
        let stream = stream.into_std()?;
        let flags = epoll::EventFlags::IN | epoll::EventFlags::RDHUP | epoll::EventFlags::ONESHOT;
        let added = epoll::add(epoll, &stream, epoll::EventData::new_u64(key), flags);
        self.0 = Place::Asleep(stream);
        if let Err(e) = added {
            // Still usable: tokio takes it back at the next use.
            self.wake_up(None)?;
            return Err(e.into());
        }
        Ok(())
    }

    /// Takes the socket back into tokio's driver, removing it from `epoll` first when given.
    pub(crate) fn wake_up(&mut self, epoll: Option<BorrowedFd<'_>>) -> io::Result<()> {
        let Place::Asleep(_) = self.0 else {
            return match self.0 {
                Place::Gone => Err(gone()),
                _ => Ok(()),
            };
        };
        let Place::Asleep(stream) = std::mem::replace(&mut self.0, Place::Gone) else {
            unreachable!("checked above");
        };
        if let Some(epoll) = epoll {
            // Absent only if never added; either way it is out of the set now.
            let _ = epoll::delete(epoll, &stream);
        }
        self.0 = Place::Tokio(TcpStream::from_std(stream)?);
        Ok(())
    }

    /// The socket under tokio, taken back from an epoll set first if it was asleep (without
    /// removing it there: a stale event only wakes a connection for nothing).
    fn tokio(&mut self) -> io::Result<Pin<&mut TcpStream>> {
        if self.is_asleep() {
            self.wake_up(None)?;
        }
        match &mut self.0 {
            Place::Tokio(stream) => Ok(Pin::new(stream)),
            _ => Err(gone()),
        }
    }
}

impl ClientSocket {
    /// Holds back partial TCP segments while `corked` (TCP_CORK), so that an answer's head and
    /// the start of a file sent after it leave in full segments; uncorking sends what is held.
    pub(crate) fn set_corked(&self, corked: bool) -> io::Result<()> {
        match &self.0 {
            Place::Tokio(stream) => Ok(rustix::net::sockopt::set_tcp_cork(stream, corked)?),
            Place::Asleep(stream) => Ok(rustix::net::sockopt::set_tcp_cork(stream, corked)?),
            Place::Gone => Err(gone()),
        }
    }

    /// Sends up to `len` bytes of `file` from `*offset` (which it advances) straight from the
    /// page cache with sendfile(2): no copy through paddock. `Ok(0)` means the file ended
    /// before `*offset + len`.
    pub(crate) fn poll_send_file(
        &mut self,
        cx: &mut Context<'_>,
        file: BorrowedFd<'_>,
        offset: &mut u64,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        let stream: &TcpStream = match self.tokio() {
            Ok(stream) => &*Pin::into_inner(stream),
            Err(e) => return Poll::Ready(Err(e)),
        };
        loop {
            if let Err(e) = std::task::ready!(stream.poll_write_ready(cx)) {
                return Poll::Ready(Err(e));
            }
            let sent = stream.try_io(Interest::WRITABLE, || {
                rustix::fs::sendfile(stream, file, Some(&mut *offset), len).map_err(Into::into)
            });
            match sent {
                // The readiness was stale (tokio cleared it): wait for the next.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return Poll::Ready(other),
            }
        }
    }
}

fn gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "client socket lost while parking",
    )
}

impl AsyncRead for ClientSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut().tokio() {
            Ok(stream) => stream.poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for ClientSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().tokio() {
            Ok(stream) => stream.poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut().tokio() {
            Ok(stream) => stream.poll_write_vectored(cx, bufs),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().tokio() {
            Ok(stream) => stream.poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut().tokio() {
            Ok(stream) => stream.poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}
