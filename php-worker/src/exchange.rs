//! The request in flight: its body for PHP to read, and PHP's output framed as FastCGI records.
//!
//! PHP calls back into the worker (through `ffi`) from deep inside a request, so the exchange
//! lives in a thread-local slot for the duration of the request: the worker puts it there with
//! [`begin`] and takes it back with [`take`]. The worker has one thread, so the slot is simply
//! "the current request".
//!
//! Output is gathered into one STDOUT record of up to [`FLUSH_AT`] bytes, so a typical page
//! leaves in one `write` together with the end of the request; `flush()` in a script sends what
//! is gathered at once. The record is built in place in the send buffer (its header reserved in
//! front, filled in when it leaves), so PHP's output is copied once and a worker touches one
//! buffer's worth of memory for it, not two.

use std::cell::RefCell;
use std::io::Write;
use std::os::unix::net::UnixStream;

use nix::time::{clock_gettime, ClockId};
use protocol::fcgi::{self, ProtocolStatus, RecordType, RequestUsage, HEADER_LEN, MAX_CONTENT_LEN};

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
    /// What goes out next: a STDOUT record being gathered, its header reserved at the start
    /// and its content after it (see [`fcgi::seal_stream_record`]).
    out: Vec<u8>,
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
            // Room for a whole gathered record from the start: no growth per page.
            out: {
                let mut out = Vec::with_capacity(HEADER_LEN + FLUSH_AT + 64);
                out.resize(HEADER_LEN, 0);
                out
            },
            wrote_stderr: false,
            ended: false,
            broken: false,
            cpu_at_start: process_cpu_us(),
        }
    }

    /// Empties `out` down to the reserved header of the next STDOUT record.
    fn restart_record(&mut self) {
        self.out.clear();
        self.out.resize(HEADER_LEN, 0);
    }

    fn gathered(&self) -> usize {
        self.out.len() - HEADER_LEN
    }

    /// Output for STDOUT; false once the web server is gone.
    pub(crate) fn write(&mut self, mut bytes: &[u8]) -> bool {
        if self.ended {
            return true;
        }
        // Taken in pieces that keep the gathered record within one record's limit: a piece
        // that reaches FLUSH_AT is sent before the next is taken.
        while !bytes.is_empty() {
            let room = MAX_CONTENT_LEN - self.gathered();
            let (now, later) = bytes.split_at(bytes.len().min(room));
            self.out.extend_from_slice(now);
            bytes = later;
            if self.gathered() >= FLUSH_AT && !self.flush() {
                return false;
            }
        }
        !self.broken
    }

    /// Sends the gathered output now.
    pub(crate) fn flush(&mut self) -> bool {
        if self.ended || self.gathered() == 0 {
            return !self.broken;
        }
        fcgi::seal_stream_record(&mut self.out, 0, RecordType::Stdout, self.id);
        self.send();
        self.restart_record();
        !self.broken
    }

    fn send(&mut self) {
        if !self.broken && self.stream.write_all(&self.out).is_err() {
            self.broken = true;
        }
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
        let mut line = message.to_vec();
        line.push(b'\n');
        self.out.clear();
        fcgi::encode_stream(&mut self.out, RecordType::Stderr, self.id, &line);
        self.wrote_stderr = true;
        self.send();
        self.restart_record();
    }

    /// Ends the response now (fastcgi_finish_request): output, stream ends and END_REQUEST in
    /// one write. The script may run on; what it writes afterwards is discarded.
    pub(crate) fn finish_early(&mut self) {
        if self.ended {
            return;
        }
        fcgi::seal_stream_record(&mut self.out, 0, RecordType::Stdout, self.id);
        fcgi::encode_stream_end(&mut self.out, RecordType::Stdout, self.id);
        if self.wrote_stderr {
            fcgi::encode_stream_end(&mut self.out, RecordType::Stderr, self.id);
        }
        // What the request cost, for the front end's metrics and status page (up to here when
        // the script ends the response early and runs on).
        let process_cpu_us = process_cpu_us();
        let usage = RequestUsage {
            cpu_us: process_cpu_us.saturating_sub(self.cpu_at_start),
            peak_memory_bytes: crate::ffi::request_peak_memory(),
            process_cpu_us,
        };
        usage.encode(&mut self.out, self.id);
        fcgi::encode_end_request(&mut self.out, self.id, 0, ProtocolStatus::RequestComplete);
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

#[cfg(test)]
mod tests {
    use std::io::Read;

    use protocol::fcgi::{decode_record, Decoded, Record};

    use super::*;

    /// The STDOUT contents of every record on `wire`, checked to be padded to 8 bytes.
    fn stdout_records(wire: &[u8]) -> Vec<Vec<u8>> {
        let mut at = 0;
        let mut records = Vec::new();
        while at < wire.len() {
            let Ok(Decoded::Record { record, consumed }) = decode_record(&wire[at..]) else {
                panic!("a whole record at byte {at}");
            };
            assert_eq!(consumed % 8, 0, "records are padded to 8 bytes");
            let Record::Stdout { content, .. } = record else {
                panic!("only STDOUT records: {record:?}");
            };
            records.push(content.to_vec());
            at += consumed;
        }
        records
    }

    #[test]
    fn output_leaves_in_records_of_at_most_flush_at_with_nothing_lost() {
        let (ours, mut theirs) = UnixStream::pair().expect("socket pair");
        let mut exchange = Exchange::new(ours, 5, Vec::new());
        let output: Vec<u8> = (0..200_000u32).map(|i| (i % 249) as u8).collect();
        // Small writes, then one larger than a record can hold.
        for piece in output[..20_000].chunks(3_000) {
            assert!(exchange.write(piece));
        }
        assert!(exchange.write(&output[20_000..]));
        assert!(exchange.flush());
        drop(exchange);
        let mut wire = Vec::new();
        theirs.read_to_end(&mut wire).expect("read");
        let records = stdout_records(&wire);
        assert!(records
            .iter()
            .all(|r| !r.is_empty() && r.len() <= MAX_CONTENT_LEN));
        assert!(records[..records.len() - 1]
            .iter()
            .all(|r| r.len() >= FLUSH_AT));
        assert_eq!(records.concat(), output);
    }

    #[test]
    fn a_flush_with_nothing_gathered_sends_nothing() {
        let (ours, mut theirs) = UnixStream::pair().expect("socket pair");
        let mut exchange = Exchange::new(ours, 1, Vec::new());
        assert!(exchange.flush());
        assert!(exchange.write(b"hello"));
        assert!(exchange.flush());
        assert!(exchange.flush());
        drop(exchange);
        let mut wire = Vec::new();
        theirs.read_to_end(&mut wire).expect("read");
        assert_eq!(stdout_records(&wire), vec![b"hello".to_vec()]);
    }
}
