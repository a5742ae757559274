//! Reading one complete FastCGI request off a connection, answering the protocol's management
//! records on the way, on the thread that then runs it.
//!
//! For workers that read nothing while a request runs (a PHP worker between requests, a thread of
//! the WSGI worker): a plain blocking loop that reads as much as the kernel has (64 KiB at a time,
//! so a whole request usually arrives in one `read`), decodes every complete record and repeats
//! until PARAMS and STDIN have ended. No second thread and no hand-over, unlike
//! [`super::Responder`], whose reader thread keeps following the protocol while a handler runs.

use std::io::{self, Write};
use std::os::unix::net::UnixStream;

use rustix::buffer::spare_capacity;
use rustix::io::Errno;
use rustix::net::{recv, RecvFlags};

use crate::fcgi::{self, Decoded, ProtocolStatus, Record, Role};

const READ_CHUNK: usize = 64 * 1024;
/// Largest PARAMS stream accepted (paddock's front end sends a few KiB).
const MAX_PARAMS: usize = 1 << 20;

/// A request whose streams have all arrived.
#[derive(Debug)]
pub struct Incoming {
    /// Its FastCGI request id, for the records of the answer.
    pub id: u16,
    /// FCGI_KEEP_CONN: the connection carries the next request after this one.
    pub keep_conn: bool,
    /// The PARAMS stream, name-value pairs still encoded.
    pub params: Vec<u8>,
    /// The request body (STDIN).
    pub stdin: Vec<u8>,
}

#[derive(Debug)]
struct Partial {
    incoming: Incoming,
    params_ended: bool,
}

/// Bytes read but not yet decoded; kept across requests on a kept-alive connection.
#[derive(Debug)]
pub struct Reader {
    buf: Vec<u8>,
    start: usize,
    /// What GET_VALUES answers for `FCGI_MAX_CONNS` and `FCGI_MAX_REQS`: the requests the whole
    /// process serves at once.
    max_conns: u16,
}

impl Default for Reader {
    /// A reader for a worker that serves one request at a time.
    fn default() -> Self {
        Self::serving(1)
    }
}

impl Reader {
    /// A reader for a worker whose process serves up to `max_conns` requests at once.
    pub fn serving(max_conns: u16) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            max_conns: max_conns.max(1),
        }
    }

    /// Bytes read and not yet decoded: maybe a whole next request.
    pub fn has_buffered(&self) -> bool {
        self.start < self.buf.len()
    }

    /// The request id of the next record read, if its header has arrived: on a connection
    /// between two requests, the id of the request waiting there.
    pub fn next_request_id(&self) -> Option<u16> {
        let header = self.buf.get(self.start..self.start + 4)?;
        Some(u16::from_be_bytes([header[2], header[3]]))
    }

    /// Reads what the kernel already has for this connection without waiting: `None` when it has
    /// nothing, `Some(0)` at the end of the stream.
    pub fn read_waiting(&mut self, stream: &UnixStream) -> io::Result<Option<usize>> {
        // What was decoded goes first: a connection whose requests always arrive whole between
        // two requests would otherwise keep every byte it ever carried.
        self.buf.drain(..self.start);
        self.start = 0;
        match read_more(stream, &mut self.buf, RecvFlags::DONTWAIT) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The next complete request; `None` when the web server closed the connection.
    pub fn next_request(&mut self, stream: &mut UnixStream) -> io::Result<Option<Incoming>> {
        let mut partial: Option<Partial> = None;
        let mut reply = Vec::new();
        loop {
            while self.start < self.buf.len() {
                let (record, consumed) = match fcgi::decode_record(&self.buf[self.start..]) {
                    Ok(Decoded::Record { record, consumed }) => (record, consumed),
                    Ok(Decoded::NeedMore { .. }) => break,
                    Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
                };
                let done = on_record(record, &mut partial, &mut reply, self.max_conns)?;
                self.start += consumed;
                if !reply.is_empty() {
                    stream.write_all(&reply)?;
                    reply.clear();
                }
                if done {
                    return Ok(partial.map(|p| p.incoming));
                }
            }
            self.buf.drain(..self.start);
            self.start = 0;
            let filled = self.buf.len();
            match read_more(stream, &mut self.buf, RecvFlags::empty()) {
                Ok(0) | Err(_) if partial.is_none() && filled == 0 => {
                    self.buf.clear();
                    return Ok(None);
                }
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Reads up to [`READ_CHUNK`] more bytes onto the end of `buf`; how many (0: end of stream).
/// `flags` are recv(2)'s (`DONTWAIT` not to wait).
///
/// Read into the vector's spare capacity, not into zeroed space: zeroing 64 KiB before every
/// read would write every page of the buffer, and a worker keeps what it has written for life.
/// A request of a few KiB then costs its worker the pages it fills, not 64 KiB.
fn read_more(stream: &UnixStream, buf: &mut Vec<u8>, flags: RecvFlags) -> io::Result<usize> {
    buf.reserve(READ_CHUNK);
    loop {
        match recv(stream, spare_capacity(buf), flags) {
            Ok((n, _)) => return Ok(n),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Applies one record; true when the request is complete.
fn on_record(
    record: Record<'_>,
    partial: &mut Option<Partial>,
    reply: &mut Vec<u8>,
    max_conns: u16,
) -> io::Result<bool> {
    let current = partial.as_ref().map(|p| p.incoming.id);
    match record {
        Record::BeginRequest {
            request_id,
            role,
            keep_conn,
        } => match current {
            Some(id) if id == request_id => {}
            Some(_) => end(reply, request_id, ProtocolStatus::CantMpxConn),
            None if role != Role::Responder => end(reply, request_id, ProtocolStatus::UnknownRole),
            None => {
                *partial = Some(Partial {
                    incoming: Incoming {
                        id: request_id,
                        keep_conn,
                        params: Vec::new(),
                        stdin: Vec::new(),
                    },
                    params_ended: false,
                });
            }
        },
        Record::AbortRequest { request_id } if current == Some(request_id) => {
            // Aborted before it ran: nothing to stop, only the end to confirm.
            end(reply, request_id, ProtocolStatus::RequestComplete);
            *partial = None;
        }
        Record::Params {
            request_id,
            content,
        } if current == Some(request_id) => {
            let p = partial.as_mut().expect("current request");
            if content.is_empty() {
                p.params_ended = true;
            } else if p.incoming.params.len() + content.len() > MAX_PARAMS {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "PARAMS larger than 1 MiB",
                ));
            } else {
                p.incoming.params.extend_from_slice(content);
            }
        }
        Record::Stdin {
            request_id,
            content,
        } if current == Some(request_id) => {
            let p = partial.as_mut().expect("current request");
            if content.is_empty() {
                return Ok(p.params_ended);
            }
            p.incoming.stdin.extend_from_slice(content);
        }
        Record::GetValues { content } => {
            let max_conns = max_conns.to_string();
            let mut pairs: Vec<(&[u8], &[u8])> = Vec::new();
            for (name, _) in fcgi::name_values(content).flatten() {
                let value: &[u8] = match name {
                    b"FCGI_MAX_CONNS" | b"FCGI_MAX_REQS" => max_conns.as_bytes(),
                    b"FCGI_MPXS_CONNS" => b"0",
                    _ => continue,
                };
                pairs.push((name, value));
            }
            fcgi::encode_get_values_result(reply, &pairs);
        }
        Record::Unrecognised {
            record_type,
            request_id: fcgi::NULL_REQUEST_ID,
            ..
        } => fcgi::encode_unknown_type(reply, record_type),
        // Anything else belongs to no active request: the specification says to ignore it.
        _ => {}
    }
    Ok(false)
}

fn end(reply: &mut Vec<u8>, id: u16, status: ProtocolStatus) {
    fcgi::encode_end_request(reply, id, 0, status);
}

#[cfg(test)]
#[path = "request_reader_tests.rs"]
mod tests;
