//! The worker's threads: each accepts a connection, answers its requests one after another until
//! the front end closes it, and accepts the next.
//!
//! A thread is attached to Python for as long as it serves a connection, and lets go of the GIL
//! around every `recv` and `write`: while one thread waits for its next request or writes an
//! answer, the others run the application.

use std::io::{self, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::ExitCode;

use protocol::responder::request_reader::{Incoming, Reader};
use protocol::responder::{accept_error_is_transient, ACCEPT_RETRY_DELAY};
use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::answer::Answer;
use crate::environ;
use crate::start_response::{Head, StartResponse};

/// Serves on `listener` with `threads` threads until every one of them has failed to accept.
pub(crate) fn run(listener: UnixListener, app: &Py<PyAny>, threads: usize) -> ExitCode {
    let shared = match Python::attach(environ::Shared::new) {
        Ok(shared) => shared,
        Err(e) => {
            eprintln!("paddock-wsgi: cannot set up the environ: {e}");
            return ExitCode::FAILURE;
        }
    };
    let max_conns = u16::try_from(threads).unwrap_or(u16::MAX);
    let served = std::thread::scope(|scope| {
        let mut acceptors = Vec::with_capacity(threads);
        for _ in 0..threads {
            let listener = listener.try_clone()?;
            let shared = &shared;
            acceptors.push(scope.spawn(move || accept_loop(&listener, app, shared, max_conns)));
        }
        for acceptor in acceptors {
            if let Ok(Err(e)) = acceptor.join() {
                eprintln!("paddock-wsgi: accept failed: {e}");
            }
        }
        io::Result::Ok(())
    });
    if let Err(e) = served {
        eprintln!("paddock-wsgi: cannot start its threads: {e}");
    }
    ExitCode::FAILURE
}

fn accept_loop(
    listener: &UnixListener,
    app: &Py<PyAny>,
    shared: &environ::Shared,
    max_conns: u16,
) -> io::Result<()> {
    let mut buffer = Vec::new();
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if accept_error_is_transient(&e) => {
                std::thread::sleep(ACCEPT_RETRY_DELAY);
                continue;
            }
            Err(e) => return Err(e),
        };
        buffer = serve_connection(stream, app, shared, max_conns, buffer);
    }
}

/// Answers the requests of one connection until it ends; gives back the answer buffer.
fn serve_connection(
    mut stream: UnixStream,
    app: &Py<PyAny>,
    shared: &environ::Shared,
    max_conns: u16,
    mut buffer: Vec<u8>,
) -> Vec<u8> {
    let mut reader = Reader::serving(max_conns);
    Python::attach(|py| loop {
        let incoming = match py.detach(|| reader.next_request(&mut stream)) {
            Ok(Some(incoming)) => incoming,
            Ok(None) => return buffer,
            Err(e) => {
                eprintln!("paddock-wsgi: bad FastCGI connection: {e}");
                return buffer;
            }
        };
        let mut answer = Answer::new(incoming.id, buffer);
        let answered = respond(py, app, shared, &incoming, &mut answer, &mut stream);
        buffer = answer.into_buffer();
        if answered.is_err() || !incoming.keep_conn {
            return buffer;
        }
    })
}

/// Runs the application for one request and sends its answer. An error before anything was
/// written becomes a 500; after, the connection is ended so that the front end sees the answer
/// cut short (502) rather than taking a truncated body for a whole one.
fn respond(
    py: Python<'_>,
    app: &Py<PyAny>,
    shared: &environ::Shared,
    incoming: &Incoming,
    answer: &mut Answer,
    stream: &mut UnixStream,
) -> io::Result<()> {
    match run_app(py, app, shared, incoming, answer, stream) {
        Ok(()) => {}
        Err(Failure::Write(e)) => return Err(e),
        Err(Failure::App(error)) => {
            report(py, &error, incoming);
            if !answer.can_be_replaced() {
                return Err(io::ErrorKind::InvalidData.into());
            }
            answer.restart();
            let body = b"Internal Server Error\n";
            answer.head(&Head::plain("500 Internal Server Error", body.len()));
            answer.body(body);
        }
    }
    answer.end();
    send(py, answer, stream)
}

#[derive(Debug)]
enum Failure {
    /// The application raised, or broke the protocol (no `start_response`, a `str` for bytes).
    App(PyErr),
    /// The front end's connection failed.
    Write(io::Error),
}

impl From<PyErr> for Failure {
    fn from(error: PyErr) -> Self {
        Self::App(error)
    }
}

fn run_app(
    py: Python<'_>,
    app: &Py<PyAny>,
    shared: &environ::Shared,
    incoming: &Incoming,
    answer: &mut Answer,
    stream: &mut UnixStream,
) -> Result<(), Failure> {
    let start = Bound::new(py, StartResponse::default())?;
    let environ = environ::build(py, shared, incoming)?;
    let result = app.bind(py).call1((environ, &start))?;
    let drained = drain(py, &result, &start, answer, stream);
    // PEP 3333: close() is called however the iteration ended.
    let closed = match result.getattr_opt(intern!(py, "close")) {
        Ok(Some(close)) => close.call0().map(drop),
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    drained?;
    closed?;
    take_head(&start, answer)?;
    Ok(())
}

/// Takes the application's iterable to its end, sending as the answer allows.
fn drain(
    py: Python<'_>,
    result: &Bound<'_, PyAny>,
    start: &Bound<'_, StartResponse>,
    answer: &mut Answer,
    stream: &mut UnixStream,
) -> Result<(), Failure> {
    for chunk in result.try_iter()? {
        let chunk = chunk?;
        let bytes = chunk.cast::<PyBytes>().map_err(|_| {
            let kind = chunk
                .get_type()
                .name()
                .map_or_else(|_| "an object".into(), |name| name.to_string());
            PyTypeError::new_err(format!(
                "the application's iterable yielded a {kind}, not bytes (PEP 3333)"
            ))
        })?;
        take_head(start, answer)?;
        answer.body(bytes.as_bytes());
        send(py, answer, stream).map_err(Failure::Write)?;
    }
    Ok(())
}

/// Moves the head (once) and what `write` was given into the answer.
fn take_head(start: &Bound<'_, StartResponse>, answer: &mut Answer) -> PyResult<()> {
    let mut start = start.borrow_mut();
    if !answer.has_head() {
        if let Some(head) = start.take_head()? {
            answer.head(&head);
        }
    }
    let written = start.take_written();
    if !written.is_empty() {
        answer.body(&written);
    }
    Ok(())
}

/// Writes what the answer has ready, without the GIL.
fn send(py: Python<'_>, answer: &mut Answer, stream: &mut UnixStream) -> io::Result<()> {
    let bytes = answer.ready_bytes();
    if bytes.is_empty() {
        return Ok(());
    }
    py.detach(|| stream.write_all(bytes))?;
    answer.sent();
    Ok(())
}

/// The application's error with its traceback, and the request it happened in, to stderr
/// (paddock's log).
fn report(py: Python<'_>, error: &PyErr, incoming: &Incoming) {
    let mut uri = String::new();
    for (name, value) in protocol::fcgi::name_values(&incoming.params).flatten() {
        if name == b"REQUEST_URI" {
            uri = String::from_utf8_lossy(value).into_owned();
        }
    }
    eprintln!("paddock-wsgi: the application failed on {uri}:");
    error.print(py);
}
