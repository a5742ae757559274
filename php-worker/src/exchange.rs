//! The request in flight: its body for PHP to read, and PHP's output framed as FastCGI records.
//!
//! PHP calls back into the worker (through `ffi`) from deep inside a request, so the exchange
//! lives in a thread-local slot for the duration of the request: the worker puts it there with
//! [`begin`] and takes it back with [`take`]. The worker has one thread, so the slot is simply
//! "the current request".
//!
//! Output is gathered into one STDOUT record of up to [`FLUSH_AT`] bytes, so a typical page
//! leaves in one `write` together with the end of the request; `flush()` in a script sends what
//! is gathered at once.

use std::cell::RefCell;
use std::io::Write;
use std::os::unix::net::UnixStream;

use nix::time::{clock_gettime, ClockId};
use protocol::fcgi::{self, ProtocolStatus, RecordType, RequestUsage};

/// Output gathered before it is sent as a record.
const FLUSH_AT: usize = 32 * 1024;

thread_local! {
    static CURRENT: RefCell<Option<Exchange>> = const { RefCell::new(None) };
}

#[derive(Debug)]
pub(crate) struct Exchange {
    stream: UnixStream,
    id: u16,
    body: Vec<u8>,
    body_read: usize,
    stdout: Vec<u8>,
    record: Vec<u8>,
    wrote_stderr: bool,
    /// END_REQUEST already sent (fastcgi_finish_request): later output is discarded.
    ended: bool,
    /// A write failed: the web server is gone.
    broken: bool,
    /// The process's CPU clock when the request arrived, in microseconds.
    cpu_at_start: u64,
}

/// This process's CPU time (user and system) so far, in microseconds.
fn process_cpu_us() -> u64 {
    clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID).map_or(0, |t| {
        t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1_000
    })
}

impl Exchange {
    pub(crate) fn new(stream: UnixStream, id: u16, body: Vec<u8>) -> Exchange {
        Exchange {
            stream,
            id,
            body,
            body_read: 0,
            stdout: Vec::with_capacity(FLUSH_AT),
            record: Vec::with_capacity(FLUSH_AT + 64),
            wrote_stderr: false,
            ended: false,
            broken: false,
            cpu_at_start: process_cpu_us(),
        }
    }

    /// Output for STDOUT; false once the web server is gone.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> bool {
        if self.ended {
            return true;
        }
        self.stdout.extend_from_slice(bytes);
        if self.stdout.len() >= FLUSH_AT {
            return self.flush();
        }
        !self.broken
    }

    /// Sends the gathered output now.
    pub(crate) fn flush(&mut self) -> bool {
        if self.ended || self.stdout.is_empty() {
            return !self.broken;
        }
        self.record.clear();
        fcgi::encode_stream(&mut self.record, RecordType::Stdout, self.id, &self.stdout);
        self.stdout.clear();
        self.send()
    }

    fn send(&mut self) -> bool {
        if !self.broken && self.stream.write_all(&self.record).is_err() {
            self.broken = true;
        }
        !self.broken
    }

    pub(crate) fn read_body(&mut self, buffer: &mut [u8]) -> usize {
        let rest = &self.body[self.body_read..];
        let n = rest.len().min(buffer.len());
        buffer[..n].copy_from_slice(&rest[..n]);
        self.body_read += n;
        n
    }

    /// A message for the web server's error log (FCGI_STDERR), in order with the output.
    fn stderr(&mut self, message: &[u8]) {
        self.flush();
        self.record.clear();
        let mut line = message.to_vec();
        line.push(b'\n');
        fcgi::encode_stream(&mut self.record, RecordType::Stderr, self.id, &line);
        self.wrote_stderr = true;
        self.send();
    }

    /// Ends the response now (fastcgi_finish_request): output, stream ends and END_REQUEST in
    /// one write. The script may run on; what it writes afterwards is discarded.
    pub(crate) fn finish_early(&mut self) {
        if self.ended {
            return;
        }
        self.record.clear();
        fcgi::encode_stream(&mut self.record, RecordType::Stdout, self.id, &self.stdout);
        self.stdout.clear();
        fcgi::encode_stream_end(&mut self.record, RecordType::Stdout, self.id);
        if self.wrote_stderr {
            fcgi::encode_stream_end(&mut self.record, RecordType::Stderr, self.id);
        }
        // What the request cost, for the front end's metrics and status page (up to here when
        // the script ends the response early and runs on).
        let process_cpu_us = process_cpu_us();
        let usage = RequestUsage {
            cpu_us: process_cpu_us.saturating_sub(self.cpu_at_start),
            peak_memory_bytes: crate::ffi::request_peak_memory(),
            process_cpu_us,
        };
        usage.encode(&mut self.record, self.id);
        fcgi::encode_end_request(
            &mut self.record,
            self.id,
            0,
            ProtocolStatus::RequestComplete,
        );
        self.send();
        self.ended = true;
    }

    /// Ends the request (if the script did not already) and gives the connection back; `None`
    /// when the web server is gone.
    pub(crate) fn end(mut self) -> Option<UnixStream> {
        self.finish_early();
        (!self.broken).then_some(self.stream)
    }
}

pub(crate) fn begin(exchange: Exchange) {
    CURRENT.with(|slot| *slot.borrow_mut() = Some(exchange));
}

pub(crate) fn take() -> Option<Exchange> {
    CURRENT.with(|slot| slot.borrow_mut().take())
}

/// Runs `f` on the current exchange; `None` outside a request.
pub(crate) fn with<R>(f: impl FnOnce(&mut Exchange) -> R) -> Option<R> {
    CURRENT.with(|slot| slot.borrow_mut().as_mut().map(f))
}

/// A PHP log message: to the request's FCGI_STDERR while one is answering (php-cgi does the
/// same), to this process's stderr (the master's log) otherwise.
pub(crate) fn log(message: &[u8]) {
    let sent = with(|x| {
        if x.ended {
            return false;
        }
        x.stderr(message);
        true
    });
    if sent != Some(true) {
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(message);
        let _ = stderr.write_all(b"\n");
    }
}
