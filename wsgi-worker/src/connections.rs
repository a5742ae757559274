//! The process's connections, shared by its threads: whichever thread is free takes the next
//! request of whichever connection has one.
//!
//! Every connection (and the listening socket) is in one epoll set, armed for one event at a time
//! (`EPOLLONESHOT`), so a connection's request goes to exactly one thread, and a connection is
//! looked at again only once its answer is out. A thread that has just answered asks the set for
//! the next request: when the front end sent one ahead (`send_ahead`, on a connection of its
//! own) while every thread was busy, it is there already and the thread goes on without
//! sleeping, the way an application server behind nginx finds the next connection waiting in
//! its backlog. Without requests sent ahead, each request still costs one `recv`, one `write`
//! and the epoll calls, all without the GIL.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Mutex, MutexGuard, PoisonError};

use protocol::responder::accept_error_is_transient;
use protocol::responder::request_reader::{Incoming, Reader};
use rustix::event::epoll::{self, CreateFlags, Event, EventData, EventFlags};
use rustix::io::Errno;

/// The epoll token of the listening socket; a connection's is its slot's index.
const LISTENER: u64 = u64::MAX;

/// A kept connection and the bytes read from it but not yet decoded.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) stream: UnixStream,
    reader: Reader,
    slot: usize,
}

impl Connection {
    /// Bytes of a next request already read (it came right behind the one just answered): the
    /// epoll set would not report them.
    pub(crate) fn has_buffered(&self) -> bool {
        self.reader.has_buffered()
    }

    /// Its next request, read whole; `None` at its end or when it broke the protocol (logged).
    pub(crate) fn read_request(&mut self) -> Option<Incoming> {
        match self.reader.next_request(&mut self.stream) {
            Ok(incoming) => incoming,
            Err(e) => {
                if e.kind() == io::ErrorKind::InvalidData {
                    eprintln!("paddock-wsgi: bad FastCGI connection: {e}");
                }
                None
            }
        }
    }
}

#[derive(Debug)]
enum Slot {
    Free,
    /// A thread has its connection: it answers the request and hands it back.
    Serving,
    Waiting(Connection),
}

#[derive(Debug)]
pub(crate) struct Connections {
    epoll: OwnedFd,
    listener: UnixListener,
    slots: Mutex<Vec<Slot>>,
    /// What GET_VALUES reports: the requests the process runs at once.
    max_conns: u16,
}

impl Connections {
    pub(crate) fn new(listener: UnixListener, max_conns: u16) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        let epoll = epoll::create(CreateFlags::CLOEXEC)?;
        epoll::add(&epoll, &listener, EventData::new_u64(LISTENER), armed())?;
        Ok(Self {
            epoll,
            listener,
            slots: Mutex::new(Vec::new()),
            max_conns,
        })
    }

    /// The connection back once its answer is out: it waits for its next request.
    pub(crate) fn wait_for_next(&self, connection: Connection) {
        let slot = connection.slot;
        // Armed under the lock, and put back before the lock is released: a thread that gets the
        // connection's next request at once must find it in its slot, or the event would be lost
        // with the request.
        let mut slots = lock(&self.slots);
        let rearm = epoll::modify(
            &self.epoll,
            &connection.stream,
            EventData::new_u64(slot as u64),
            armed(),
        );
        slots[slot] = match rearm {
            Ok(()) => Slot::Waiting(connection),
            Err(_) => Slot::Free,
        };
    }

    /// Drops a connection the thread had (a broken answer, a failed write).
    pub(crate) fn close(&self, connection: Connection) {
        lock(&self.slots)[connection.slot] = Slot::Free;
        // Closing the socket also takes it out of the epoll set.
        drop(connection);
    }

    /// The next complete request of any connection, with its connection, waiting for one as long
    /// as it takes. An error only when the epoll set itself fails.
    pub(crate) fn next_request(&self) -> io::Result<(Connection, Incoming)> {
        let mut events = [Event {
            flags: EventFlags::empty(),
            data: EventData::new_u64(0),
        }];
        loop {
            match epoll::wait(&self.epoll, &mut events[..], None) {
                Ok(0) | Err(Errno::INTR) => continue,
                Ok(_) => {}
                Err(e) => return Err(e.into()),
            }
            let token = events[0].data.u64();
            if token == LISTENER {
                self.accept_waiting();
                continue;
            }
            let Some(mut connection) = self.take(token as usize) else {
                continue;
            };
            match connection.read_request() {
                Some(incoming) => return Ok((connection, incoming)),
                None => self.close(connection),
            }
        }
    }

    /// Accepts every connection waiting, each armed for its first request, then the listener
    /// again.
    fn accept_waiting(&self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if let Err(e) = self.register(stream) {
                        eprintln!("paddock-wsgi: cannot take a connection: {e}");
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if accept_error_is_transient(&e) => break,
                Err(e) => {
                    eprintln!("paddock-wsgi: accept failed: {e}");
                    break;
                }
            }
        }
        if let Err(e) = epoll::modify(
            &self.epoll,
            &self.listener,
            EventData::new_u64(LISTENER),
            armed(),
        ) {
            eprintln!("paddock-wsgi: cannot watch the listening socket again: {e}");
        }
    }

    fn register(&self, stream: UnixStream) -> io::Result<()> {
        // Accepted sockets do not inherit the listener's O_NONBLOCK; requests are read blocking.
        let mut slots = lock(&self.slots);
        let slot = match slots.iter().position(|s| matches!(s, Slot::Free)) {
            Some(slot) => slot,
            None => {
                slots.push(Slot::Free);
                slots.len() - 1
            }
        };
        epoll::add(
            &self.epoll,
            &stream,
            EventData::new_u64(slot as u64),
            armed(),
        )?;
        slots[slot] = Slot::Waiting(Connection {
            stream,
            reader: Reader::serving(self.max_conns),
            slot,
        });
        Ok(())
    }

    fn take(&self, slot: usize) -> Option<Connection> {
        let mut slots = lock(&self.slots);
        let entry = slots.get_mut(slot)?;
        match std::mem::replace(entry, Slot::Serving) {
            Slot::Waiting(connection) => Some(connection),
            other => {
                *entry = other;
                None
            }
        }
    }
}

/// Readable (a request, or the end of the connection), once, until armed again.
fn armed() -> EventFlags {
    EventFlags::IN | EventFlags::ONESHOT
}

/// A poisoned lock only means a thread panicked while holding it; the slots stay consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
