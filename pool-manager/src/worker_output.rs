//! Worker stdout/stderr, captured through a pipe and logged line by line with pool and pid.
//!
//! A worker that floods its stderr must not grow paddock's memory: lines are cut at
//! [`MAX_LINE`] bytes and a partial line is flushed once it reaches that size.

use std::io::{self, Read};
use std::os::fd::OwnedFd;

const MAX_LINE: usize = 4096;

#[derive(Debug)]
pub struct WorkerOutput {
    pipe: std::fs::File,
    pending: Vec<u8>,
}

impl WorkerOutput {
    pub fn new(read_end: OwnedFd) -> io::Result<Self> {
        nix::fcntl::fcntl(
            &read_end,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )?;
        Ok(Self {
            pipe: std::fs::File::from(read_end),
            pending: Vec::new(),
        })
    }

    pub fn source_fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.pipe)
    }

    /// Reads what is available, calling `line` for each complete (or over-long) line. Returns false
    /// once the worker closed its end.
    pub fn drain(&mut self, mut line: impl FnMut(&str)) -> bool {
        let mut chunk = [0u8; 8192];
        loop {
            match self.pipe.read(&mut chunk) {
                Ok(0) => {
                    self.flush(&mut line);
                    return false;
                }
                Ok(n) => {
                    self.pending.extend_from_slice(&chunk[..n]);
                    self.split_lines(&mut line);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(_) => {
                    self.flush(&mut line);
                    return false;
                }
            }
        }
    }

    fn split_lines(&mut self, line: &mut impl FnMut(&str)) {
        let mut start = 0;
        while let Some(offset) = self.pending[start..].iter().position(|&b| b == b'\n') {
            emit(&self.pending[start..start + offset], line);
            start += offset + 1;
        }
        self.pending.drain(..start);
        if self.pending.len() >= MAX_LINE {
            self.flush(line);
        }
    }

    fn flush(&mut self, line: &mut impl FnMut(&str)) {
        if !self.pending.is_empty() {
            emit(&self.pending, line);
            self.pending.clear();
        }
    }
}

fn emit(bytes: &[u8], line: &mut impl FnMut(&str)) {
    let bytes = &bytes[..bytes.len().min(MAX_LINE)];
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end_matches('\r');
    if !text.is_empty() {
        line(text);
    }
}
