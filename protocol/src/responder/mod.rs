//! A FastCGI responder: the application side of the protocol, for paddock's own workers and test
//! applications.
//!
//! This module is the one part of the crate that does I/O: it accepts connections on a Unix
//! listener with blocking std sockets and runs handlers on threads. It is behind the `responder`
//! cargo feature (off by default) so that the front end and the master, which only need the
//! sans-IO codec, never compile it. The protocol logic itself stays in [`crate::fcgi`]; this module
//! only drives it.
//!
//! # Model
//! [`Responder::threads`]`(n)` starts `n` acceptor threads on one listener. Each serves one
//! connection at a time, and one request at a time on it (FCGI_MPXS_CONNS is 0), so the process
//! runs at most `n` requests at once: paddock's "threaded" worker. With `n = 1` it is a prefork
//! worker. Each connection also has a reader thread that keeps following the protocol while the
//! handler runs:
//! - GET_VALUES is answered with `FCGI_MAX_CONNS` = `FCGI_MAX_REQS` = `n`, `FCGI_MPXS_CONNS` = 0;
//! - a BEGIN_REQUEST with another id while a request is active gets END_REQUEST(CANT_MPX_CONN);
//! - a role the responder does not serve gets END_REQUEST(UNKNOWN_ROLE) (only RESPONDER unless
//!   [`Responder::roles`] says otherwise);
//! - ABORT_REQUEST ends a request still arriving at once, and raises [`Request::is_aborted`] for
//!   one whose handler runs (so does the peer closing the connection);
//! - the connection is closed after a request without FCGI_KEEP_CONN;
//! - an unknown management record gets UNKNOWN_TYPE.
//!
//! Request bodies are buffered in memory up to [`Responder::max_body_len`] before the handler
//! runs, which suits the small test applications and the CGI runner this is for.
//!
//! # Layout
//! - `connection.rs` — the per-connection reader and handler loop.
//! - `request.rs` — [`Request`] (what the handler reads) and [`Response`] (where it writes).
//! - `error.rs` — [`ResponderError`], [`ConnectionError`].
//! - `notify.rs` — [`notify`]: `READY=1` to `$NOTIFY_SOCKET`, for pools with
//!   `readiness = "notify"`.
//! - `request_reader.rs` — [`request_reader::Reader`]: one request read whole on the thread that
//!   runs it, for workers that need no reader thread beside the handler (paddock's PHP and WSGI
//!   workers).

mod connection;
mod error;
mod notify;
mod request;
pub mod request_reader;

use std::io;
use std::os::fd::AsFd;
use std::os::unix::net::UnixListener;
use std::time::Duration;

pub use error::{ConnectionError, ResponderError};
pub use notify::notify;
pub use request::{Request, Response};

use crate::fcgi::Role;

/// Pause after an accept error that may clear up by itself (out of descriptors), so a busy loop
/// does not burn the CPU meanwhile.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);

/// Limits and settings every connection reads.
#[derive(Debug, Clone)]
struct Settings {
    threads: usize,
    roles: Vec<Role>,
    max_params_len: usize,
    max_body_len: usize,
}

type ErrorHook = Box<dyn Fn(&ConnectionError) + Send + Sync>;

/// A FastCGI application server. Build it, then call [`Responder::serve`].
pub struct Responder {
    listener: UnixListener,
    settings: Settings,
    on_connection_error: Option<ErrorHook>,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("listener", &self.listener)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Responder {
    /// Serves on `listener`, with one thread, the RESPONDER role, 1 MiB of PARAMS and 64 MiB of
    /// body at most.
    pub fn new(listener: UnixListener) -> Self {
        Self {
            listener,
            settings: Settings {
                threads: 1,
                roles: vec![Role::Responder],
                max_params_len: 1 << 20,
                max_body_len: 64 << 20,
            },
            on_connection_error: None,
        }
    }

    /// Serves on the listening socket the web server passed as fd 0 (`FCGI_LISTENSOCK_FILENO`),
    /// the way php-cgi, fcgiwrap and every libfcgi application are started. The descriptor is
    /// duplicated, so fd 0 itself stays open.
    pub fn from_listen_fd() -> Result<Self, ResponderError> {
        listen_fd().map(Self::new)
    }

    /// Number of acceptor threads, i.e. of requests served at once (at least 1).
    pub fn threads(mut self, threads: usize) -> Self {
        self.settings.threads = threads.max(1);
        self
    }

    /// The roles this application plays; a request for any other role is refused with
    /// UNKNOWN_ROLE.
    pub fn roles(mut self, roles: &[Role]) -> Self {
        self.settings.roles = roles.to_vec();
        self
    }

    /// Largest PARAMS stream accepted; a connection sending more is closed.
    pub fn max_params_len(mut self, bytes: usize) -> Self {
        self.settings.max_params_len = bytes;
        self
    }

    /// Largest STDIN (and DATA) stream accepted; a connection sending more is closed.
    pub fn max_body_len(mut self, bytes: usize) -> Self {
        self.settings.max_body_len = bytes;
        self
    }

    /// Called with every error that ends one connection early (for logging).
    pub fn on_connection_error(
        mut self,
        hook: impl Fn(&ConnectionError) + Send + Sync + 'static,
    ) -> Self {
        self.on_connection_error = Some(Box::new(hook));
        self
    }

    /// Serves requests until the listener fails; normally never returns.
    ///
    /// `handler` runs once per request, possibly on several threads at once (up to
    /// [`Responder::threads`]). It writes the CGI response (head, blank line, body) to the
    /// [`Response`] and returns the application status for END_REQUEST (0 for success). A
    /// handler that panics ends its request with status 255 and its connection.
    pub fn serve<H>(&self, handler: H) -> Result<(), ResponderError>
    where
        H: Fn(&Request, &mut Response<'_>) -> u32 + Sync,
    {
        let listeners = (0..self.settings.threads)
            .map(|_| self.listener.try_clone())
            .collect::<Result<Vec<_>, _>>()
            .map_err(ResponderError::CloneListener)?;
        std::thread::scope(|scope| {
            let acceptors: Vec<_> = listeners
                .into_iter()
                .map(|listener| scope.spawn(|| self.accept_loop(listener, &handler)))
                .collect();
            acceptors
                .into_iter()
                .map(|acceptor| acceptor.join().unwrap_or(Ok(())))
                .fold(Ok(()), Result::and)
        })
    }

    /// One acceptor thread: accept, serve that connection to its end, repeat.
    fn accept_loop<H>(&self, listener: UnixListener, handler: &H) -> Result<(), ResponderError>
    where
        H: Fn(&Request, &mut Response<'_>) -> u32 + Sync,
    {
        loop {
            let stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if accept_error_is_transient(&e) => {
                    std::thread::sleep(ACCEPT_RETRY_DELAY);
                    continue;
                }
                Err(e) => return Err(ResponderError::Accept(e)),
            };
            if let Err(e) = connection::serve_connection(stream, &self.settings, handler) {
                if let Some(hook) = &self.on_connection_error {
                    hook(&e);
                }
            }
        }
    }
}

/// The listening socket the web server passed as fd 0 (`FCGI_LISTENSOCK_FILENO`), duplicated so
/// that fd 0 itself stays open.
pub fn listen_fd() -> Result<UnixListener, ResponderError> {
    let fd = io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map_err(ResponderError::DuplicateListenFd)?;
    let listener = UnixListener::from(fd);
    // getsockname fails on anything but a socket, and reports the family, so this rejects a
    // terminal, a file, a pipe or a TCP socket.
    listener
        .local_addr()
        .map_err(ResponderError::ListenFdNotUnixSocket)?;
    Ok(listener)
}

/// Errors after which `accept` can succeed again: a signal, a connection reset before it was
/// accepted, or a temporary lack of descriptors or memory.
pub fn accept_error_is_transient(error: &io::Error) -> bool {
    use io::ErrorKind::{ConnectionAborted, Interrupted, WouldBlock};
    if matches!(error.kind(), Interrupted | ConnectionAborted | WouldBlock) {
        return true;
    }
    // EMFILE, ENFILE, ENOBUFS, ENOMEM on Linux.
    matches!(error.raw_os_error(), Some(24 | 23 | 105 | 12))
}
