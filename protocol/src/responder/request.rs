//! What a handler gets (a complete [`Request`]) and where it writes its answer ([`Response`]).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::connection::Writer;
use crate::fcgi::{self, ProtocolStatus, RecordType, Role};

/// One complete request: its PARAMS decoded, its STDIN (and, for the FILTER role, DATA) fully
/// received.
#[derive(Debug)]
pub struct Request {
    pub(super) id: u16,
    pub(super) role: Role,
    pub(super) keep_conn: bool,
    pub(super) nth_on_connection: u32,
    pub(super) params: BTreeMap<Vec<u8>, Vec<u8>>,
    pub(super) stdin: Vec<u8>,
    pub(super) data: Vec<u8>,
    pub(super) aborted: Arc<AtomicBool>,
}

impl Request {
    /// The FastCGI request id (unique on its connection while the request is active).
    pub fn id(&self) -> u16 {
        self.id
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether the web server asked to keep the connection open after this request.
    pub fn keep_conn(&self) -> bool {
        self.keep_conn
    }

    /// 1 for the first request served on its connection, 2 for the next (FCGI_KEEP_CONN), and
    /// so on: shows whether a web server reuses its connections.
    pub fn nth_on_connection(&self) -> u32 {
        self.nth_on_connection
    }

    /// A parameter as text; `None` when absent or not valid UTF-8.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.param_bytes(name.as_bytes())
            .and_then(|value| std::str::from_utf8(value).ok())
    }

    /// A parameter's raw bytes. When the web server sent a name twice, the last value wins.
    pub fn param_bytes(&self, name: &[u8]) -> Option<&[u8]> {
        self.params.get(name).map(Vec::as_slice)
    }

    /// Every parameter, sorted by name.
    pub fn params(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.params
            .iter()
            .map(|(name, value)| (name.as_slice(), value.as_slice()))
    }

    /// The request body (the complete FCGI_STDIN stream).
    pub fn stdin(&self) -> &[u8] {
        &self.stdin
    }

    /// The FILTER role's file data (the FCGI_DATA stream); empty for other roles.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// True once the web server sent ABORT_REQUEST for this request or closed the connection. A
    /// long-running handler should poll it and return early; its output is then discarded by the
    /// web server anyway.
    pub fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::Acquire)
    }
}

/// Output buffered before it is sent as one STDOUT record; big enough that a typical page is one
/// record, small enough that a streaming handler's output leaves promptly.
const FLUSH_AT: usize = 32 * 1024;

/// The handler's output. Writing to it (it is [`Write`]) goes to FCGI_STDOUT: the CGI response
/// head, a blank line, then the body. [`Response::stderr`] goes to FCGI_STDERR, which web servers
/// log.
#[derive(Debug)]
pub struct Response<'c> {
    writer: &'c Writer,
    request_id: u16,
    stdout: Vec<u8>,
    record: Vec<u8>,
    wrote_stderr: bool,
    /// The first write error; later writes are skipped, the END_REQUEST is not attempted.
    failed: Option<io::ErrorKind>,
}

impl<'c> Response<'c> {
    pub(super) fn new(writer: &'c Writer, request_id: u16) -> Self {
        Self {
            writer,
            request_id,
            stdout: Vec::with_capacity(FLUSH_AT),
            record: Vec::with_capacity(FLUSH_AT + 64),
            wrote_stderr: false,
            failed: None,
        }
    }

    /// Sends `bytes` on FCGI_STDERR right away (after any buffered stdout, to keep the order).
    pub fn stderr(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.flush_stdout()?;
        self.wrote_stderr = true;
        self.send(|record, id| fcgi::encode_stream(record, RecordType::Stderr, id, bytes))
    }

    fn flush_stdout(&mut self) -> io::Result<()> {
        if self.stdout.is_empty() {
            return Ok(());
        }
        let stdout = std::mem::take(&mut self.stdout);
        let sent = self.send(|record, id| {
            fcgi::encode_stream(record, RecordType::Stdout, id, &stdout);
        });
        self.stdout = stdout;
        self.stdout.clear();
        sent
    }

    /// Encodes with `encode` into the reusable record buffer and writes it in one piece, so
    /// records from this response never interleave with the connection's management replies.
    fn send(&mut self, encode: impl FnOnce(&mut Vec<u8>, u16)) -> io::Result<()> {
        if let Some(kind) = self.failed {
            return Err(kind.into());
        }
        self.record.clear();
        encode(&mut self.record, self.request_id);
        self.writer.write_all(&self.record).inspect_err(|e| {
            self.failed = Some(e.kind());
        })
    }

    /// Ends the streams and the request: flushes stdout, writes the empty STDOUT (and, if used,
    /// STDERR) end records and the END_REQUEST carrying `app_status`, in one write.
    pub(super) fn finish(mut self, app_status: u32) -> io::Result<()> {
        self.flush_stdout()?;
        let wrote_stderr = self.wrote_stderr;
        self.send(|record, id| {
            fcgi::encode_stream_end(record, RecordType::Stdout, id);
            if wrote_stderr {
                fcgi::encode_stream_end(record, RecordType::Stderr, id);
            }
            fcgi::encode_end_request(record, id, app_status, ProtocolStatus::RequestComplete);
        })
    }
}

impl Write for Response<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(kind) = self.failed {
            return Err(kind.into());
        }
        self.stdout.extend_from_slice(buf);
        if self.stdout.len() >= FLUSH_AT {
            self.flush_stdout()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_stdout()
    }
}
