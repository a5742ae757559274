//! Worker stdout/stderr, captured through a pipe and logged line by line with pool and pid.
//!
//! A worker that floods its stderr must not grow paddock's memory nor flood its log: lines are
//! cut at [`MAX_LINE`] bytes, a partial line is flushed once it reaches that size, and each worker
//! may log [`BURST`] bytes at once, then [`PER_SECOND`] a second. The pipe is always read at full
//! speed (so the worker never blocks on it); lines over the budget are counted and reported in
//! one summary line at most every [`SUMMARY_EVERY`].

use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use protocol::log_budget::LogBudget;

const MAX_LINE: usize = 4096;
const BURST: u64 = 256 * 1024;
const PER_SECOND: u64 = 64 * 1024;
const SUMMARY_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(crate) struct WorkerOutput {
    pipe: std::fs::File,
    pending: Vec<u8>,
    budget: LogBudget,
    /// Bytes left out and not yet reported, and when the last report was.
    dropped: u64,
    last_summary: Option<Instant>,
}

impl WorkerOutput {
    pub(crate) fn new(read_end: OwnedFd) -> io::Result<Self> {
        nix::fcntl::fcntl(
            &read_end,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )?;
        Ok(Self {
            pipe: std::fs::File::from(read_end),
            pending: Vec::new(),
            budget: LogBudget::new(BURST, PER_SECOND),
            dropped: 0,
            last_summary: None,
        })
    }

    pub(crate) fn source_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.pipe)
    }

    /// Reads what is available, calling `line` for each complete (or over-long) line. Returns false
    /// once the worker closed its end.
    pub(crate) fn drain(&mut self, mut line: impl FnMut(&str)) -> bool {
        let mut chunk = [0u8; 8192];
        let open = loop {
            match self.pipe.read(&mut chunk) {
                Ok(0) => {
                    self.flush(&mut line);
                    break false;
                }
                Ok(n) => {
                    self.pending.extend_from_slice(&chunk[..n]);
                    self.split_lines(&mut line);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break true,
                Err(_) => {
                    self.flush(&mut line);
                    break false;
                }
            }
        };
        self.dropped += self.budget.take_dropped();
        let now = Instant::now();
        let due = self
            .last_summary
            .is_none_or(|last| now.duration_since(last) >= SUMMARY_EVERY);
        if self.dropped > 0 && (due || !open) {
            line(&format!(
                "[worker output rate-limited: {} bytes not logged]",
                self.dropped
            ));
            self.dropped = 0;
            self.last_summary = Some(now);
        }
        open
    }

    fn split_lines(&mut self, line: &mut impl FnMut(&str)) {
        let mut start = 0;
        while let Some(offset) = self.pending[start..].iter().position(|&b| b == b'\n') {
            emit(&self.pending[start..start + offset], &mut self.budget, line);
            start += offset + 1;
        }
        self.pending.drain(..start);
        if self.pending.len() >= MAX_LINE {
            self.flush(line);
        }
    }

    fn flush(&mut self, line: &mut impl FnMut(&str)) {
        if !self.pending.is_empty() {
            emit(&self.pending, &mut self.budget, line);
            self.pending.clear();
        }
    }
}

fn emit(bytes: &[u8], budget: &mut LogBudget, line: &mut impl FnMut(&str)) {
    let bytes = &bytes[..bytes.len().min(MAX_LINE)];
    if !budget.allow(bytes.len() as u64, Instant::now()) {
        return;
    }
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end_matches('\r');
    if !text.is_empty() {
        line(text);
    }
}
