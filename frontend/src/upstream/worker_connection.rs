//! A connection to one worker slot over its Unix socket, and the exchange of one request on it,
//! in the pool's protocol: FastCGI (`fastcgi_client`) or HTTP/1.1 (`http_client`), each a
//! connection kept for request after request, or uwsgi (`uwsgi_client`, one connection a
//! request).
//!
//! Either way the request is written while the response is read, so a worker that starts
//! answering before it has read all of its input can never deadlock against us. The response
//! goes to a [`StdoutSink`] as CGI output (headers, blank line, body) as it arrives: normally a
//! [`ResponseBuffer`](crate::upstream::response_buffer::ResponseBuffer) that takes it as fast as
//! the worker writes it, so the worker is free again as soon as its answer ends, whatever the
//! client's pace; for unbuffered routes, a channel to the client.

use std::io;
use std::path::Path;

use bytes::BytesMut;
use protocol::control::WorkerProtocol;
use protocol::fcgi::{DecodeError, ProtocolStatus, RequestUsage};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::http::body::BufferedBody;
use crate::runtime_layout::current_event_loop;
use crate::upstream::{fastcgi_client, http_client, http_request, uwsgi_client};

/// Room made in the read buffer before each read.
pub(super) const READ_CHUNK: usize = 64 * 1024;
/// A request body held in memory up to this size goes out in the same write as the request head
/// (one syscall and one wakeup of the worker for the whole request); a larger one follows in
/// writes of its own, so the write buffer kept per connection stays small.
pub(super) const INLINE_BODY: usize = 16 * 1024;
/// Buffers that grew past this for one exchange (a large body or reply) are not kept.
const KEEP_BUFFER: usize = 256 * 1024;

/// A connection to one worker slot, with the buffers its exchanges reuse.
#[derive(Debug)]
pub(crate) struct WorkerConnection {
    protocol: WorkerProtocol,
    stream: UnixStream,
    /// The per-core event loop `stream` is registered with (`runtime_layout::current_event_loop`).
    event_loop: u32,
    /// The worker is asked to keep the connection for the next request (see
    /// `PoolDispatchSpec::keep_connections`); when not, the exchange's connection is not reused.
    keep: bool,
    /// The request being sent, in the pool's protocol.
    out: Vec<u8>,
    /// Bytes received from the worker and not yet handled.
    input: BytesMut,
    /// The request's CGI variables, when the pool's protocol is not made of them (HTTP).
    cgi: Vec<u8>,
    /// An exchange started and has not returned: its future was dropped midway (the client went
    /// away), so the worker may still be answering that request on this connection.
    interrupted: bool,
}

/// How an exchange ended.
#[derive(Debug)]
pub(crate) struct WorkerReply {
    /// Whether the connection can carry another request.
    pub reusable: bool,
    /// What the request cost, if the worker said (paddock's own PHP worker does).
    pub usage: Option<RequestUsage>,
}

/// Where the FCGI_STDOUT stream (CGI headers, blank line, body) goes as it arrives.
pub(crate) trait StdoutSink {
    /// Takes the next piece; an error ends the exchange.
    fn write(
        &mut self,
        data: &[u8],
    ) -> impl std::future::Future<Output = Result<(), ExchangeError>>;
    /// Whether any byte has been taken (decides whether a failed request may be retried).
    fn started(&self) -> bool;
    /// Forgets every byte taken, so that another worker's reply can be taken instead; `false`
    /// when some have already left for the client and cannot be taken back.
    fn restart(&mut self) -> bool;
}

/// An exchange failed. `response_started` tells whether any response byte had arrived, which
/// decides whether the request may be retried on another worker.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    #[error("worker closed the connection before ending the request")]
    Closed { response_started: bool },
    #[error("reading from the worker failed: {source}")]
    Read {
        source: io::Error,
        response_started: bool,
    },
    #[error("worker broke the protocol: {0}")]
    Protocol(String),
    #[error("worker response exceeds the {limit}-byte limit")]
    TooLarge { limit: u64 },
    #[error("worker refused the request ({0:?})")]
    Refused(ProtocolStatus),
    #[error("cannot store the worker response: {0}")]
    Spool(io::Error),
    #[error("the client went away while the response streamed")]
    ClientGone,
    #[error("worker sent no end of its CGI header block within {limit} bytes")]
    HeadTooLarge { limit: usize },
    #[error("the request cannot be sent in the pool's protocol: {0}")]
    Unsendable(String),
}

impl ExchangeError {
    pub(crate) fn response_started(&self) -> bool {
        match self {
            ExchangeError::Closed { response_started }
            | ExchangeError::Read {
                response_started, ..
            } => *response_started,
            ExchangeError::Refused(_) => false,
            ExchangeError::Protocol(_)
            | ExchangeError::TooLarge { .. }
            | ExchangeError::Spool(_)
            | ExchangeError::ClientGone
            | ExchangeError::HeadTooLarge { .. }
            // Not sent, but sending it again cannot help.
            | ExchangeError::Unsendable(_) => true,
        }
    }

    /// Whether the worker itself misbehaved (broke the protocol, sent a reply without end, or
    /// abandoned a reply it had started), so that the process must be replaced rather than
    /// merely its connection. A worker that closes before answering is not counted: php-cgi does
    /// that at its request limit, and the request is retried.
    pub(crate) fn worker_is_broken(&self) -> bool {
        match self {
            ExchangeError::Protocol(_)
            | ExchangeError::TooLarge { .. }
            | ExchangeError::HeadTooLarge { .. } => true,
            ExchangeError::Closed { response_started }
            | ExchangeError::Read {
                response_started, ..
            } => *response_started,
            ExchangeError::Refused(_)
            | ExchangeError::Spool(_)
            | ExchangeError::ClientGone
            | ExchangeError::Unsendable(_) => false,
        }
    }
}

impl From<DecodeError> for ExchangeError {
    fn from(e: DecodeError) -> Self {
        ExchangeError::Protocol(e.to_string())
    }
}

/// The buffers of a closed connection, kept for the slot's next one: a uwsgi worker closes the
/// connection after every answer, and a fresh 64 KiB read buffer for each request costs a
/// malloc and a consolidating free (malloc's share of the front end's samples under the Flask
/// benchmark: 6.5 % with fresh buffers, 5.5 % with kept ones).
#[derive(Debug, Default)]
pub(crate) struct SpareBuffers {
    out: Vec<u8>,
    input: BytesMut,
}

impl WorkerConnection {
    /// Connects to `socket`, reusing `spare` buffers if there are any. Never waits: see
    /// [`connect_unix`].
    pub(crate) fn connect(
        socket: &Path,
        protocol: WorkerProtocol,
        keep: bool,
        spare: Option<SpareBuffers>,
    ) -> io::Result<Self> {
        let SpareBuffers { out, input } = spare.unwrap_or_default();
        Ok(Self {
            protocol,
            stream: connect_unix(socket)?,
            event_loop: current_event_loop(),
            keep,
            out,
            input,
            cgi: Vec::new(),
            interrupted: false,
        })
    }

    /// Whether the connection is watched by another thread's event loop than the caller's.
    pub(crate) fn on_another_event_loop(&self) -> bool {
        let here = current_event_loop();
        here != 0 && here != self.event_loop
    }

    /// The connection watched by the caller's event loop (two `epoll_ctl`), so that the worker's
    /// replies wake only the thread that waits for them.
    pub(crate) fn moved_to_this_event_loop(self) -> io::Result<Self> {
        let stream = UnixStream::from_std(self.stream.into_std()?)?;
        Ok(Self {
            stream,
            event_loop: current_event_loop(),
            ..self
        })
    }

    /// Whether the worker was asked to keep this connection for the next request.
    pub(crate) fn keeps(&self) -> bool {
        self.keep
    }

    /// Closes the connection, keeping its buffers for the next one.
    pub(crate) fn close(self) -> SpareBuffers {
        SpareBuffers {
            out: self.out,
            input: self.input,
        }
    }

    /// True when the worker has closed its end since the last exchange (php-cgi exiting after its
    /// request limit, a crash), or when the last exchange was abandoned midway: such a connection
    /// must not carry a request. (On an abandoned one, the worker's late answer to the old request
    /// would be read as the answer to the new one, and go to the wrong client.)
    pub(crate) fn is_stale(&self) -> bool {
        if self.interrupted {
            return true;
        }
        let mut probe = [0u8; 1];
        !matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Whether the last exchange was abandoned midway (its future dropped, or its client gone
    /// while the response streamed).
    pub(crate) fn interrupted(&self) -> bool {
        self.interrupted
    }

    /// The exchange ended because its client went away: the worker may still be answering.
    pub(crate) fn mark_interrupted(&mut self) {
        self.interrupted = true;
    }

    /// After an abandoned exchange: reads and throws away the rest of the worker's answer, so
    /// that whoever holds the worker's slot knows when the worker is free again. php-cgi does
    /// not stop a script whose client went away (it notices only when a write fails), so until
    /// then the worker is busy, and a request sent to it would wait unseen in its socket's
    /// backlog. Returns once the answer ends or the worker closes the connection.
    ///
    /// The write half is shut first: a worker still reading a request body then sees its end
    /// instead of waiting for the rest.
    pub(crate) async fn drain_abandoned(&mut self) -> io::Result<()> {
        let _ = self.stream.shutdown().await;
        match self.protocol {
            WorkerProtocol::Fastcgi => {
                fastcgi_client::drain(&mut self.stream, &mut self.input).await
            }
            // An HTTP worker keeps the connection after an answer, so the shut write side is
            // what makes it close the connection once it has answered.
            WorkerProtocol::Uwsgi | WorkerProtocol::Http => {
                uwsgi_client::drain(&mut self.stream, &mut self.input).await
            }
        }
    }

    /// Sends one request, written by `request` in the pool's protocol, and passes the whole
    /// reply to `stdout`; `fastcgi_id` is the request's FastCGI id (other protocols have none).
    pub(crate) async fn exchange(
        &mut self,
        fastcgi_id: u16,
        request: &dyn RequestWriter,
        body: &BufferedBody,
        stdout: &mut impl StdoutSink,
        on_stderr: impl FnMut(&[u8]),
    ) -> Result<WorkerReply, ExchangeError> {
        // Stays set if this future is dropped before the exchange ends.
        self.interrupted = true;
        self.out.clear();
        self.input.clear();
        self.cgi.clear();
        let buffers = Buffers {
            out: &mut self.out,
            input: &mut self.input,
            cgi: &mut self.cgi,
        };
        let result = match self.protocol {
            WorkerProtocol::Fastcgi => {
                fastcgi_client::send_and_receive(
                    &mut self.stream,
                    buffers,
                    self.keep,
                    fastcgi_id,
                    |out| request.cgi_params(out),
                    body,
                    stdout,
                    on_stderr,
                )
                .await
            }
            WorkerProtocol::Uwsgi => {
                let params = |out: &mut Vec<u8>| request.cgi_params(out);
                uwsgi_client::send_and_receive(&mut self.stream, buffers, params, body, stdout)
                    .await
            }
            WorkerProtocol::Http => {
                http_client::send_and_receive(
                    &mut self.stream,
                    buffers,
                    self.keep,
                    request,
                    body,
                    stdout,
                )
                .await
            }
        };
        let result = result.map(|reply| WorkerReply {
            reusable: reply.reusable && self.keep,
            ..reply
        });
        self.interrupted = false;
        if self.out.capacity() > KEEP_BUFFER {
            self.out = Vec::new();
        }
        if self.input.capacity() > KEEP_BUFFER {
            self.input = BytesMut::new();
        }
        if self.cgi.capacity() > KEEP_BUFFER {
            self.cgi = Vec::new();
        }
        result
    }
}

/// How one request is put on the wire in its pool's protocol.
pub(crate) trait RequestWriter: Sync {
    /// Appends the request's CGI meta-variables, FastCGI-encoded (name-value pairs): what
    /// FastCGI and uwsgi workers get.
    fn cgi_params(&self, out: &mut Vec<u8>);

    /// Appends the HTTP/1.1 request head an HTTP pool's worker gets, `Connection: close` unless
    /// the connection is `kept`; returns whether the request is a HEAD. `scratch` (empty) is
    /// room for the CGI variables the head is made from, where it is made from them.
    fn http_head(
        &self,
        kept: bool,
        out: &mut Vec<u8>,
        scratch: &mut Vec<u8>,
    ) -> Result<bool, String> {
        self.cgi_params(scratch);
        http_request::write_head(scratch, kept, out)
    }
}

/// A request known only by its CGI variables (a streamed request's, encoded beforehand).
impl<F: Fn(&mut Vec<u8>) + Sync> RequestWriter for F {
    fn cgi_params(&self, out: &mut Vec<u8>) {
        self(out)
    }
}

/// A connection's reused buffers, lent to one exchange (both empty at its start).
pub(super) struct Buffers<'a> {
    /// The request as it is sent.
    pub out: &'a mut Vec<u8>,
    /// The worker's bytes not yet handled.
    pub input: &'a mut BytesMut,
    /// Room for the request's CGI variables where they are not the request itself.
    pub cgi: &'a mut Vec<u8>,
}

/// Runs `read` (the worker's reply) while `write` (the request) goes out, until the reply has
/// been read: a worker that starts answering before it has read all of its input can then never
/// deadlock against us. Returns the reply and whether the whole request was written by then.
pub(super) async fn read_while_writing<T>(
    read: impl std::future::Future<Output = Result<T, ExchangeError>>,
    write: impl std::future::Future<Output = io::Result<()>>,
) -> (Result<T, ExchangeError>, bool) {
    tokio::pin!(read);
    tokio::pin!(write);
    let mut written = None;
    loop {
        tokio::select! {
            result = &mut write, if written.is_none() => written = Some(result.is_ok()),
            result = &mut read => return (result, written == Some(true)),
        }
    }
}

/// Writes a request whose head (in the pool's protocol) is `out`, then its raw `body`: the
/// usual request (no body, or a small form) in one write; a larger body in writes of its own.
/// (FastCGI frames the body in records instead: `fastcgi_client`.)
pub(super) async fn write_head_and_body(
    writer: &mut (impl AsyncWrite + Unpin),
    out: &mut Vec<u8>,
    body: &BufferedBody,
) -> io::Result<()> {
    match body {
        BufferedBody::Memory(bytes) if bytes.len() <= INLINE_BODY => {
            out.extend_from_slice(bytes);
            writer.write_all(out).await
        }
        _ => {
            writer.write_all(out).await?;
            let mut chunks = body.chunks()?;
            while let Some(chunk) = chunks.next(READ_CHUNK).await? {
                writer.write_all(&chunk).await?;
            }
            Ok(())
        }
    }
}

/// A connection to a Unix socket. A connect on a Unix socket succeeds or fails at once (it is
/// never in progress), so the socket goes to tokio already connected: tokio's own connect waits
/// for writability and asks the socket for its error, a `getsockopt` on every connection (every
/// request of a uwsgi pool). A full backlog is `WouldBlock`, as with tokio's connect.
fn connect_unix(socket: &Path) -> io::Result<UnixStream> {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?;
    rustix::net::connect(&fd, &SocketAddrUnix::new(socket)?)?;
    UnixStream::from_std(std::os::unix::net::UnixStream::from(fd))
}
