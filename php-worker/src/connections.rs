//! The kept connections a worker serves, one request at a time, taking them in turn.
//!
//! The front end may keep more than one connection to a prefork worker: one for the request that
//! runs and one for a request sent ahead while every worker was busy (`ahead` in the front end's
//! dispatch). The request sent ahead waits in its socket until the running one has been answered;
//! the worker then finds it there and goes on without sleeping, where a worker with one connection
//! would sleep in `read` until the front end had read the answer and sent the next request. On
//! this kind of machine that sleep and wake-up is about half a worker's CPU on a small page.
//!
//! Still one request at a time (PHP here is not thread-safe): a connection is looked at only
//! between requests, and connections are taken in turn so that none waits behind another's
//! stream of requests.

use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};

use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::fcgi_conn::Reader;

/// Connections served at once. The front end keeps two at most (one running, one ahead); a
/// little room for one being replaced.
const MAX_CONNECTIONS: usize = 4;

/// A kept connection and the bytes read from it but not yet decoded.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) stream: UnixStream,
    pub(crate) reader: Reader,
}

#[derive(Debug, Default)]
pub(crate) struct Connections {
    open: Vec<Connection>,
    /// Where the next look for a request starts: the connection after the last one served.
    next: usize,
}

impl Connections {
    /// Waits until some connection has bytes of a request and takes it out to serve; give it back
    /// with [`Connections::put_back`] if it stays open.
    pub(crate) fn next_ready(&mut self, listener: &UnixListener) -> io::Result<Connection> {
        loop {
            if let Some(index) = self.find_ready() {
                self.next = index;
                return Ok(self.open.remove(index));
            }
            self.wait(listener)?;
        }
    }

    /// Back into its place in the turn, after the request it brought was answered.
    pub(crate) fn put_back(&mut self, connection: Connection) {
        let index = self.next.min(self.open.len());
        self.open.insert(index, connection);
        self.next = index + 1;
    }

    /// The first connection, in turn, with bytes already read or waiting in its socket; drops
    /// the ones the front end closed on the way.
    fn find_ready(&mut self) -> Option<usize> {
        let mut checked = 0;
        while checked < self.open.len() {
            let index = (self.next + checked) % self.open.len();
            let connection = &mut self.open[index];
            if connection.reader.has_buffered() {
                return Some(index);
            }
            match connection.reader.read_waiting(&connection.stream) {
                Ok(Some(0)) | Err(_) => {
                    self.open.remove(index);
                    if index < self.next {
                        self.next -= 1;
                    }
                    continue;
                }
                Ok(Some(_)) => return Some(index),
                Ok(None) => checked += 1,
            }
        }
        None
    }

    /// Sleeps until a connection has something to read or a new one arrives (accepted here).
    fn wait(&mut self, listener: &UnixListener) -> io::Result<()> {
        let accepting = self.open.len() < MAX_CONNECTIONS;
        let mut fds: Vec<PollFd<'_>> = self
            .open
            .iter()
            .map(|c| PollFd::new(c.stream.as_fd(), PollFlags::POLLIN))
            .collect();
        if accepting {
            fds.push(PollFd::new(listener.as_fd(), PollFlags::POLLIN));
        }
        match nix::poll::poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        let new_one = accepting
            && fds
                .last()
                .and_then(PollFd::revents)
                .is_some_and(|r| r.intersects(PollFlags::POLLIN));
        drop(fds);
        if new_one {
            match listener.accept() {
                Ok((stream, _)) => self.open.push(Connection {
                    stream,
                    reader: Reader::default(),
                }),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
