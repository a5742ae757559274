//! The worker's threads: each takes the next request of any of the process's connections
//! (`connections.rs`), runs the application for it, and gives the connection back with its
//! answer.
//!
//! A thread is attached to Python for its whole life and lets go of the GIL for everything that
//! can wait: writing an answer, and waiting for and reading the next request, in one spell, so
//! that while one thread waits or writes, the others run the application.

use std::io::{self, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::ExitCode;

use protocol::responder::request_reader::Incoming;
use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::answer::Answer;
use crate::connections::{Connection, Connections};
use crate::environ;
use crate::start_response::{Head, StartResponse};
use crate::turns::Turns;

/// Serves on `listener` with `threads` threads; returns only if the threads' epoll set fails.
pub(crate) fn run(listener: UnixListener, app: &Py<PyAny>, threads: usize) -> ExitCode {
    let shared = match Python::attach(environ::Shared::new) {
        Ok(shared) => shared,
        Err(e) => {
            eprintln!("paddock-wsgi: cannot set up the environ: {e}");
            return ExitCode::FAILURE;
        }
    };
    let max_conns = u16::try_from(threads).unwrap_or(u16::MAX);
    let connections = match Connections::new(listener, max_conns) {
        Ok(connections) => connections,
        Err(e) => {
            eprintln!("paddock-wsgi: cannot watch the listening socket: {e}");
            return ExitCode::FAILURE;
        }
    };
    let application = Application {
        callable: app,
        environ: &shared,
        turns: Default::default(),
    };
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..threads)
            .map(|_| scope.spawn(|| serve(&connections, &application)))
            .collect();
        for thread in threads {
            if let Ok(Err(e)) = thread.join() {
                eprintln!("paddock-wsgi: a thread stopped: {e}");
            }
        }
    });
    ExitCode::FAILURE
}

/// The application, and what every request's environ shares.
struct Application<'a> {
    callable: &'a Py<PyAny>,
    environ: &'a environ::Shared,
    /// The order in which threads that have read a request ask for the GIL.
    turns: Turns,
}

/// The connection a thread has just answered on, and whether the front end keeps it.
struct Answered {
    connection: Connection,
    keep: bool,
}

/// One thread's life: the next request, its answer, the connection back; again.
fn serve(connections: &Connections, application: &Application<'_>) -> io::Result<()> {
    Python::attach(|py| {
        // The last answer's records not written yet.
        let mut unsent = Vec::new();
        let mut answered: Option<Answered> = None;
        loop {
            let (mut connection, incoming, turn) = py.detach(|| {
                let (connection, incoming) =
                    next_request(connections, answered.take(), &mut unsent)?;
                io::Result::Ok((connection, incoming, application.turns.take()))
            })?;
            // The GIL is this thread's now: the next thread in line may ask for it.
            drop(turn);
            let mut answer = Answer::new(incoming.id, std::mem::take(&mut unsent));
            let result = respond(
                py,
                application,
                &incoming,
                &mut answer,
                &mut connection.stream,
            );
            unsent = answer.into_buffer();
            if result.is_err() {
                unsent.clear();
                connections.close(connection);
                continue;
            }
            answered = Some(Answered {
                connection,
                keep: incoming.keep_conn,
            });
        }
    })
}

/// Without the GIL: the end of the last answer out, its connection back, and the next request.
fn next_request(
    connections: &Connections,
    answered: Option<Answered>,
    unsent: &mut Vec<u8>,
) -> io::Result<(Connection, Incoming)> {
    if let Some(Answered {
        mut connection,
        keep,
    }) = answered
    {
        let written = unsent.is_empty() || connection.stream.write_all(unsent).is_ok();
        unsent.clear();
        match (written && keep, connection.has_buffered()) {
            (false, _) => connections.close(connection),
            // A request right behind the one answered is already read: no event will come.
            (true, true) => match connection.read_request() {
                Some(incoming) => return Ok((connection, incoming)),
                None => connections.close(connection),
            },
            (true, false) => connections.wait_for_next(connection),
        }
    }
    connections.next_request()
}

/// Runs the application for one request and gathers its answer, whose end the caller writes. An
/// error before anything was written becomes a 500; after, the connection is ended so that the
/// front end sees the answer cut short (502) rather than taking a truncated body for a whole one.
fn respond(
    py: Python<'_>,
    application: &Application<'_>,
    incoming: &Incoming,
    answer: &mut Answer,
    stream: &mut UnixStream,
) -> io::Result<()> {
    match run_app(py, application, incoming, answer, stream) {
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
    Ok(())
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
    application: &Application<'_>,
    incoming: &Incoming,
    answer: &mut Answer,
    stream: &mut UnixStream,
) -> Result<(), Failure> {
    let start = Bound::new(py, StartResponse::default())?;
    let environ = environ::build(py, application.environ, incoming)?;
    let result = application.callable.bind(py).call1((environ, &start))?;
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
            PyTypeError::new_err(format!(
                "the application's iterable yielded a {}, not bytes (PEP 3333)",
                crate::app::type_name(&chunk)
            ))
        })?;
        take_head(start, answer)?;
        answer.body(bytes.as_bytes());
        // A whole answer waits to go out with the wait for the next request
        // (`next_request`); a streamed or large one goes as it comes.
        if !answer.is_ended() {
            send(py, answer, stream).map_err(Failure::Write)?;
        }
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
