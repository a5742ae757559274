//! Reading one complete FastCGI request off a connection, answering the protocol's management
//! records on the way.
//!
//! A prefork worker serves one request at a time and reads nothing while PHP runs, so this is a
//! plain blocking loop: read as much as the kernel has (64 KiB at a time, so a whole request
//! usually arrives in one `read`), decode every complete record, repeat until PARAMS and STDIN
//! have ended.

use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use protocol::fcgi::{self, Decoded, ProtocolStatus, Record, Role};

const READ_CHUNK: usize = 64 * 1024;
/// Largest PARAMS stream accepted (paddock's front end sends a few KiB).
const MAX_PARAMS: usize = 1 << 20;

/// A request whose streams have all arrived.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub(crate) id: u16,
    pub(crate) keep_conn: bool,
    pub(crate) params: Vec<u8>,
    pub(crate) stdin: Vec<u8>,
}

#[derive(Debug)]
struct Partial {
    incoming: Incoming,
    params_ended: bool,
}

/// Bytes read but not yet decoded; kept across requests on a kept-alive connection.
#[derive(Debug, Default)]
pub(crate) struct Reader {
    buf: Vec<u8>,
    start: usize,
}

impl Reader {
    /// Bytes read and not yet decoded: maybe a whole next request.
    pub(crate) fn has_buffered(&self) -> bool {
        self.start < self.buf.len()
    }

    /// The request id of the next record read, if its header has arrived: on a connection
    /// between two requests, the id of the request waiting there.
    pub(crate) fn next_request_id(&self) -> Option<u16> {
        let header = self.buf.get(self.start..self.start + 4)?;
        Some(u16::from_be_bytes([header[2], header[3]]))
    }

    /// Reads what the kernel already has for this connection without waiting: `None` when it has
    /// nothing, `Some(0)` at the end of the stream.
    pub(crate) fn read_waiting(&mut self, stream: &UnixStream) -> io::Result<Option<usize>> {
        // What was decoded goes first: a connection whose requests always arrive whole between
        // two requests would otherwise keep every byte it ever carried.
        self.buf.drain(..self.start);
        self.start = 0;
        match read_more(stream, &mut self.buf, libc::MSG_DONTWAIT) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The next complete request; `None` when the web server closed the connection.
    pub(crate) fn next_request(&mut self, stream: &mut UnixStream) -> io::Result<Option<Incoming>> {
        let mut partial: Option<Partial> = None;
        let mut reply = Vec::new();
        loop {
            while self.start < self.buf.len() {
                let (record, consumed) = match fcgi::decode_record(&self.buf[self.start..]) {
                    Ok(Decoded::Record { record, consumed }) => (record, consumed),
                    Ok(Decoded::NeedMore { .. }) => break,
                    Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
                };
                let done = on_record(record, &mut partial, &mut reply)?;
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
            match read_more(stream, &mut self.buf, 0) {
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
/// `flags` are recv(2)'s (`MSG_DONTWAIT` not to wait).
///
/// Read into the vector's spare capacity, not into zeroed space: zeroing 64 KiB before every
/// read would write every page of the buffer, and a worker keeps what it has written for life.
/// A request of a few KiB then costs its worker the pages it fills, not 64 KiB.
#[allow(unsafe_code)] // std has no stable read into uninitialised memory
fn read_more(stream: &UnixStream, buf: &mut Vec<u8>, flags: libc::c_int) -> io::Result<usize> {
    buf.reserve(READ_CHUNK);
    let spare = &mut buf.spare_capacity_mut()[..READ_CHUNK];
    loop {
        // SAFETY: `spare` is writable memory of `spare.len()` bytes owned by `buf`; recv(2)
        // writes at most that many bytes into it and returns how many it wrote.
        let n = unsafe {
            libc::recv(
                stream.as_raw_fd(),
                spare.as_mut_ptr().cast(),
                spare.len(),
                flags,
            )
        };
        if n >= 0 {
            let n = n as usize;
            // SAFETY: recv(2) initialised the first `n` bytes of the spare capacity.
            unsafe { buf.set_len(buf.len() + n) };
            return Ok(n);
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// Applies one record; true when the request is complete.
fn on_record(
    record: Record<'_>,
    partial: &mut Option<Partial>,
    reply: &mut Vec<u8>,
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
            let mut pairs: Vec<(&[u8], &[u8])> = Vec::new();
            for (name, _) in fcgi::name_values(content).flatten() {
                let value: &[u8] = match name {
                    b"FCGI_MAX_CONNS" | b"FCGI_MAX_REQS" => b"1",
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
