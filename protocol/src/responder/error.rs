//! Why the responder stopped serving, or dropped one connection.

use std::io;

use crate::fcgi::DecodeError;

/// A failure that ends [`super::Responder::serve`] or prevents building a responder.
#[derive(Debug, thiserror::Error)]
pub enum ResponderError {
    /// fd 0 could not be duplicated (it is closed, or the process is out of descriptors).
    #[error("cannot duplicate the listening socket on fd 0: {0}")]
    DuplicateListenFd(#[source] io::Error),
    /// fd 0 is open but is not a listening Unix-domain socket, so the process was not started as
    /// a FastCGI application.
    #[error("fd 0 is not a listening Unix socket: {0}")]
    ListenFdNotUnixSocket(#[source] io::Error),
    /// The listener could not be shared with another acceptor thread.
    #[error("cannot clone the listener for another acceptor thread: {0}")]
    CloneListener(#[source] io::Error),
    /// `accept` failed in a way retrying cannot fix (the listener is closed or invalid).
    #[error("accepting a connection failed: {0}")]
    Accept(#[source] io::Error),
}

/// Why one connection was closed early. The responder goes on serving other connections; these
/// are reported to the hook set with [`super::Responder::on_connection_error`].
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// Reading from the peer failed.
    #[error("reading from the FastCGI peer failed: {0}")]
    Read(#[source] io::Error),
    /// Writing to the peer failed (it went away mid-response).
    #[error("writing to the FastCGI peer failed: {0}")]
    Write(#[source] io::Error),
    /// The peer sent bytes that are not FastCGI.
    #[error("the FastCGI peer broke the protocol: {0}")]
    Decode(#[from] DecodeError),
    /// The PARAMS stream exceeded the configured limit.
    #[error("PARAMS stream exceeds {limit} bytes")]
    ParamsTooLarge { limit: usize },
    /// The STDIN (or DATA) stream exceeded the configured limit.
    #[error("request body stream exceeds {limit} bytes")]
    BodyTooLarge { limit: usize },
}
