//! The kept connections a worker serves, one request at a time, the earliest sent first.
//!
//! The front end may keep more than one connection to a prefork worker: one for the request that
//! runs and up to two for requests sent ahead while every worker was busy (`places ahead` in the
//! front end's dispatch). A request sent ahead waits in its socket until the ones before it have
//! been answered; the worker then finds it there and goes on without sleeping, where a worker
//! with one connection would sleep in `read` until the front end had read the answer and sent
//! the next request. On this kind of machine that sleep and wake-up is about half a worker's CPU
//! on a small page.
//!
//! Still one request at a time (PHP here is not thread-safe): a connection is looked at only
//! between requests. When requests wait on two connections, the one the front end sent first
//! runs first: the front end numbers a worker's requests in its FastCGI request ids, and starts
//! each one's deadline when the one before it ends, so running them in another order would start
//! a deadline while the request still waits (the numbering is
//! `protocol::fcgi::sequenced_request_id`).

use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use protocol::fcgi;

use protocol::responder::request_reader::Reader;

/// Connections served at once. The front end keeps three at most (one running, two ahead); a
/// little room for one being replaced.
const MAX_CONNECTIONS: usize = 5;

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
    /// The FastCGI id of the last request taken.
    last_id: Option<u16>,
}

impl Connections {
    /// Waits until some connection has bytes of a request and takes it out to serve; give it back
    /// with [`Connections::put_back`] if it stays open.
    pub(crate) fn next_ready(&mut self, listener: &UnixListener) -> io::Result<Connection> {
        loop {
            let mut found = self.find_ready();
            // Not the request after the last one: that one may wait on a connection the front end
            // opened while this worker was busy, still in the listening socket's backlog.
            if found.is_some_and(|(_, id)| !self.follows_last(id))
                && self.accept_waiting(listener)?
            {
                found = self.find_ready();
            }
            if let Some((index, id)) = found {
                self.next = index;
                self.last_id = id.or(self.last_id);
                return Ok(self.open.remove(index));
            }
            self.wait(listener)?;
        }
    }

    /// Whether a request with `id` comes right after the last one taken, or repeats its id (a
    /// pool without places ahead numbers every request 1).
    fn follows_last(&self, id: Option<u16>) -> bool {
        match (self.last_id, id) {
            (Some(last), Some(id)) => fcgi::ids_apart(last, id) <= 1,
            _ => false,
        }
    }

    /// Accepts the connections waiting in the listening socket's backlog, without waiting; true
    /// if there was one.
    fn accept_waiting(&mut self, listener: &UnixListener) -> io::Result<bool> {
        let mut accepted = false;
        while self.open.len() < MAX_CONNECTIONS {
            let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
            match nix::poll::poll(&mut fds, PollTimeout::ZERO) {
                Ok(0) => break,
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            accepted |= self.accept(listener)?;
        }
        Ok(accepted)
    }

    /// Accepts one connection the listener has (it must have one, or this waits); false if
    /// interrupted.
    fn accept(&mut self, listener: &UnixListener) -> io::Result<bool> {
        match listener.accept() {
            Ok((stream, _)) => {
                self.open.push(Connection {
                    stream,
                    reader: Reader::default(),
                });
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Back into its place in the turn, after the request it brought was answered.
    pub(crate) fn put_back(&mut self, connection: Connection) {
        let index = self.next.min(self.open.len());
        self.open.insert(index, connection);
        self.next = index + 1;
    }

    /// The connection whose waiting request was sent first (the earliest id), among those with
    /// bytes already read or waiting in their sockets, and that id; drops the ones the front end
    /// closed on the way. Connections are looked at in turn from the one after the last served
    /// (which decides between requests whose ids are not known yet), and the look stops at the
    /// request right after the last one.
    fn find_ready(&mut self) -> Option<(usize, Option<u16>)> {
        let mut chosen: Option<(usize, Option<u16>)> = None;
        let mut checked = 0;
        while checked < self.open.len() {
            let index = (self.next + checked) % self.open.len();
            let connection = &mut self.open[index];
            let ready = connection.reader.has_buffered()
                || match connection.reader.read_waiting(&connection.stream) {
                    Ok(Some(0)) | Err(_) => {
                        self.open.remove(index);
                        if index < self.next {
                            self.next -= 1;
                        }
                        chosen = chosen.map(|(i, id)| (if i > index { i - 1 } else { i }, id));
                        continue;
                    }
                    Ok(Some(_)) => true,
                    Ok(None) => false,
                };
            if ready {
                let id = self.open[index].reader.next_request_id();
                if self.follows_last(id) {
                    // The request right after the last one: none can come before it.
                    return Some((index, id));
                }
                if chosen.is_none_or(|(_, best)| sent_before(id, best)) {
                    chosen = Some((index, id));
                }
            }
            checked += 1;
        }
        chosen
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
            self.accept(listener)?;
        }
        Ok(())
    }
}

/// Whether a request with id `a` was sent before one with id `b` (ids wrap at 65535, requests
/// waiting at once are a few apart). An unknown id (its header not read yet) comes last.
fn sent_before(a: Option<u16>, b: Option<u16>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (1..32_768).contains(&fcgi::ids_apart(a, b)),
        (Some(_), None) => true,
        (None, _) => false,
    }
}

#[cfg(test)]
mod order_tests {
    use super::sent_before;

    #[test]
    fn the_earlier_id_goes_first_also_across_the_wrap() {
        assert!(sent_before(Some(7), Some(8)));
        assert!(!sent_before(Some(8), Some(7)));
        assert!(!sent_before(Some(8), Some(8)));
        // 65535 is followed by 1.
        assert!(sent_before(Some(65535), Some(1)));
        assert!(sent_before(Some(65534), Some(2)));
        assert!(!sent_before(Some(1), Some(65535)));
        assert!(sent_before(Some(3), None));
        assert!(!sent_before(None, Some(3)));
        assert!(!sent_before(None, None));
    }
}
