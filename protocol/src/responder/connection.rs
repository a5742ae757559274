//! One FastCGI connection: a reader thread that follows the protocol and the acceptor thread that
//! runs the handler for each complete request.
//!
//! The reader keeps reading while a handler runs, so it can answer GET_VALUES, refuse a second
//! request with CANT_MPX_CONN and raise a request's abort flag the moment ABORT_REQUEST (or the end
//! of the connection) arrives. Both threads write through one [`Writer`] that sends each batch of
//! records in a single locked `write_all`, so records never interleave.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::request::{Request, Response};
use super::{ConnectionError, Settings};
use crate::fcgi::{self, Decoded, ProtocolStatus, Record, Role};

/// Bytes asked of the kernel per read.
const READ_CHUNK: usize = 64 * 1024;
/// The app status reported when a handler panics.
const PANIC_STATUS: u32 = 255;

/// The write half of a connection, shared by the reader and the handler.
#[derive(Debug)]
pub(super) struct Writer {
    stream: Mutex<UnixStream>,
}

impl Writer {
    pub(super) fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        lock(&self.stream).write_all(bytes)
    }

    /// Ends the connection in both directions, which also wakes the reader's blocked `read`.
    fn shutdown(&self) {
        // Already shut down or reset by the peer: nothing left to do either way.
        let _ = lock(&self.stream).shutdown(Shutdown::Both);
    }
}

/// A poisoned lock only means a handler panicked while holding it; the data (a socket, an id)
/// is still consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The request that owns the connection, from its BEGIN_REQUEST until its END_REQUEST.
#[derive(Debug)]
struct Active {
    id: u16,
    aborted: Arc<AtomicBool>,
}

#[derive(Debug)]
struct Shared {
    writer: Writer,
    active: Mutex<Option<Active>>,
}

impl Shared {
    /// Sets the active request's abort flag, if there is one.
    fn abort_active(&self) {
        if let Some(active) = lock(&self.active).as_ref() {
            active.aborted.store(true, Ordering::Release);
        }
    }
}

/// Serves every request of one connection, one at a time, until the peer closes it or a request
/// without FCGI_KEEP_CONN ends.
pub(super) fn serve_connection<H>(
    stream: UnixStream,
    settings: &Settings,
    handler: &H,
) -> Result<(), ConnectionError>
where
    H: Fn(&Request, &mut Response<'_>) -> u32 + Sync,
{
    let read_half = stream.try_clone().map_err(ConnectionError::Read)?;
    let shared = Shared {
        writer: Writer {
            stream: Mutex::new(stream),
        },
        active: Mutex::new(None),
    };
    let (to_handler, requests) = mpsc::channel();
    std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut reader = Reader {
                shared: &shared,
                settings,
                to_handler,
                incoming: None,
                handed_over: 0,
                reply: Vec::new(),
            };
            let result = reader.run(read_half);
            // Whatever ended the reading ends the request in progress too.
            shared.abort_active();
            if result.is_err() {
                shared.writer.shutdown();
            }
            result
        });
        let served = run_handlers(&shared, &requests, handler);
        shared.writer.shutdown();
        let read = reader.join().unwrap_or(Ok(()));
        served.and(read)
    })
}

/// Runs the handler for each request the reader completes.
fn run_handlers<H>(
    shared: &Shared,
    requests: &Receiver<Request>,
    handler: &H,
) -> Result<(), ConnectionError>
where
    H: Fn(&Request, &mut Response<'_>) -> u32 + Sync,
{
    for request in requests {
        let mut response = Response::new(&shared.writer, request.id);
        let outcome = catch_unwind(AssertUnwindSafe(|| handler(&request, &mut response)));
        // The request stops being active before its END_REQUEST leaves, so the peer's next
        // BEGIN_REQUEST (sent only after it reads that END_REQUEST) always finds the connection free.
        *lock(&shared.active) = None;
        let panicked = outcome.is_err();
        response
            .finish(outcome.unwrap_or(PANIC_STATUS))
            .map_err(ConnectionError::Write)?;
        if !request.keep_conn || panicked {
            return Ok(());
        }
    }
    Ok(())
}

/// A request whose streams are still arriving.
#[derive(Debug)]
struct Incoming {
    id: u16,
    role: Role,
    keep_conn: bool,
    params: Stream,
    stdin: Stream,
    data: Stream,
    aborted: Arc<AtomicBool>,
}

#[derive(Debug, Default)]
struct Stream {
    bytes: Vec<u8>,
    ended: bool,
}

impl Stream {
    /// Appends one record's content; an empty record ends the stream. Content after the end is
    /// ignored, as for any record of an inactive stream.
    fn push(&mut self, content: &[u8], limit: usize) -> Result<(), usize> {
        if self.ended {
            return Ok(());
        }
        if content.is_empty() {
            self.ended = true;
            return Ok(());
        }
        if self.bytes.len() + content.len() > limit {
            return Err(limit);
        }
        self.bytes.extend_from_slice(content);
        Ok(())
    }
}

impl Incoming {
    /// Whether every stream the role uses has ended. An AUTHORIZER gets no body, so PARAMS is
    /// enough; a FILTER also gets the file on DATA after STDIN.
    fn is_complete(&self) -> bool {
        match self.role {
            Role::Authorizer => self.params.ended,
            Role::Filter => self.params.ended && self.stdin.ended && self.data.ended,
            _ => self.params.ended && self.stdin.ended,
        }
    }
}

/// The protocol side of a connection.
struct Reader<'s> {
    shared: &'s Shared,
    settings: &'s Settings,
    to_handler: Sender<Request>,
    incoming: Option<Incoming>,
    /// Requests handed to the handler so far on this connection.
    handed_over: u32,
    /// Reused for every reply the reader writes itself.
    reply: Vec<u8>,
}

/// The request streams an application receives.
#[derive(Debug, Clone, Copy)]
enum StreamKind {
    Params,
    Stdin,
    Data,
}

/// What to do after a record.
enum Next {
    Continue,
    /// The connection is finished (an aborted request without FCGI_KEEP_CONN).
    Close,
}

impl Reader<'_> {
    fn run(&mut self, mut stream: UnixStream) -> Result<(), ConnectionError> {
        let mut buf = Vec::with_capacity(READ_CHUNK);
        loop {
            let mut start = 0;
            while let Decoded::Record { record, consumed } = fcgi::decode_record(&buf[start..])? {
                start += consumed;
                if let Next::Close = self.on_record(record)? {
                    self.shared.writer.shutdown();
                    return Ok(());
                }
            }
            buf.drain(..start);
            let filled = buf.len();
            buf.resize(filled + READ_CHUNK, 0);
            let read = loop {
                match stream.read(&mut buf[filled..]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            };
            match read {
                Ok(0) => return Ok(()),
                Ok(n) => buf.truncate(filled + n),
                // Our own shutdown, or the peer resetting, after the last request: a normal end.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(()),
                Err(e) => return Err(ConnectionError::Read(e)),
            }
        }
    }

    fn on_record(&mut self, record: Record<'_>) -> Result<Next, ConnectionError> {
        match record {
            Record::BeginRequest {
                request_id,
                role,
                keep_conn,
            } => self.begin(request_id, role, keep_conn)?,
            Record::AbortRequest { request_id } => return self.abort(request_id),
            Record::Params {
                request_id,
                content,
            } => self.push(request_id, content, StreamKind::Params)?,
            Record::Stdin {
                request_id,
                content,
            } => self.push(request_id, content, StreamKind::Stdin)?,
            Record::Data {
                request_id,
                content,
            } => self.push(request_id, content, StreamKind::Data)?,
            Record::GetValues { content } => self.get_values(content)?,
            Record::Unrecognised {
                record_type,
                request_id: fcgi::NULL_REQUEST_ID,
                ..
            } => {
                self.reply.clear();
                fcgi::encode_unknown_type(&mut self.reply, record_type);
                self.send_reply()?;
            }
            // Records an application never receives, or an unknown type on a request: the
            // specification says to ignore what does not belong to an active request.
            _ => {}
        }
        Ok(Next::Continue)
    }

    fn begin(&mut self, id: u16, role: Role, keep_conn: bool) -> Result<(), ConnectionError> {
        let mut active = lock(&self.shared.active);
        let refusal = match active.as_ref() {
            // A repeated BEGIN_REQUEST for the request already running is ignored.
            Some(current) if current.id == id => return Ok(()),
            Some(_) => ProtocolStatus::CantMpxConn,
            None if !self.settings.roles.contains(&role) => ProtocolStatus::UnknownRole,
            None => {
                let aborted = Arc::new(AtomicBool::new(false));
                *active = Some(Active {
                    id,
                    aborted: aborted.clone(),
                });
                self.incoming = Some(Incoming {
                    id,
                    role,
                    keep_conn,
                    params: Stream::default(),
                    stdin: Stream::default(),
                    data: Stream::default(),
                    aborted,
                });
                return Ok(());
            }
        };
        drop(active);
        self.end_request(id, refusal)
    }

    fn abort(&mut self, id: u16) -> Result<Next, ConnectionError> {
        match self.incoming.take() {
            // Not yet handed to the handler: end it here.
            Some(incoming) if incoming.id == id => {
                *lock(&self.shared.active) = None;
                self.end_request(id, ProtocolStatus::RequestComplete)?;
                if !incoming.keep_conn {
                    return Ok(Next::Close);
                }
            }
            other => {
                self.incoming = other;
                if let Some(active) = lock(&self.shared.active).as_ref() {
                    if active.id == id {
                        active.aborted.store(true, Ordering::Release);
                    }
                }
            }
        }
        Ok(Next::Continue)
    }

    /// Appends stream content to the incoming request `id`, then hands the request over if that
    /// completed it.
    fn push(&mut self, id: u16, content: &[u8], kind: StreamKind) -> Result<(), ConnectionError> {
        let Some(incoming) = self.incoming.as_mut().filter(|i| i.id == id) else {
            return Ok(());
        };
        let (stream, limit) = match kind {
            StreamKind::Params => (&mut incoming.params, self.settings.max_params_len),
            StreamKind::Stdin => (&mut incoming.stdin, self.settings.max_body_len),
            StreamKind::Data => (&mut incoming.data, self.settings.max_body_len),
        };
        stream.push(content, limit).map_err(|limit| match kind {
            StreamKind::Params => ConnectionError::ParamsTooLarge { limit },
            StreamKind::Stdin | StreamKind::Data => ConnectionError::BodyTooLarge { limit },
        })?;
        if incoming.is_complete() {
            if let Some(incoming) = self.incoming.take() {
                self.hand_over(incoming)?;
            }
        }
        Ok(())
    }

    /// Decodes the PARAMS of a complete request and queues it for the handler.
    fn hand_over(&mut self, incoming: Incoming) -> Result<(), ConnectionError> {
        let mut params = BTreeMap::new();
        for pair in fcgi::name_values(&incoming.params.bytes) {
            let (name, value) = pair?;
            params.insert(name.to_vec(), value.to_vec());
        }
        self.handed_over += 1;
        let request = Request {
            id: incoming.id,
            nth_on_connection: self.handed_over,
            role: incoming.role,
            keep_conn: incoming.keep_conn,
            params,
            stdin: incoming.stdin.bytes,
            data: incoming.data.bytes,
            aborted: incoming.aborted,
        };
        // The handler side only hangs up after a request without FCGI_KEEP_CONN, and then the
        // connection is being shut down anyway.
        let _ = self.to_handler.send(request);
        Ok(())
    }

    /// Answers the variables this responder knows and leaves the others out, as the
    /// specification asks.
    fn get_values(&mut self, content: &[u8]) -> Result<(), ConnectionError> {
        let threads = self.settings.threads.to_string();
        let mut answers: Vec<(&[u8], &[u8])> = Vec::with_capacity(3);
        for pair in fcgi::name_values(content) {
            let (name, _) = pair?;
            let value = match name {
                fcgi::values::MAX_CONNS | fcgi::values::MAX_REQS => threads.as_bytes(),
                fcgi::values::MPXS_CONNS => b"0",
                _ => continue,
            };
            answers.push((name, value));
        }
        self.reply.clear();
        fcgi::encode_get_values_result(&mut self.reply, &answers);
        self.send_reply()
    }

    fn end_request(&mut self, id: u16, status: ProtocolStatus) -> Result<(), ConnectionError> {
        self.reply.clear();
        fcgi::encode_end_request(&mut self.reply, id, 0, status);
        self.send_reply()
    }

    fn send_reply(&self) -> Result<(), ConnectionError> {
        self.shared
            .writer
            .write_all(&self.reply)
            .map_err(ConnectionError::Write)
    }
}
