//! The master's end of the control channel: a non-blocking socketpair end driven by mio, with an
//! input buffer for partial frames and an output buffer for what the socket could not take yet.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;

use protocol::control::{decode_frame, encode_frame, FrameError, ToFrontend, ToMaster};

#[derive(Debug)]
pub(crate) struct ControlChannel {
    stream: mio::net::UnixStream,
    input: Vec<u8>,
    output: Vec<u8>,
}

impl ControlChannel {
    pub(crate) fn new(stream: UnixStream) -> io::Result<Self> {
        stream.set_nonblocking(true)?;
        Ok(Self {
            stream: mio::net::UnixStream::from_std(stream),
            input: Vec::new(),
            output: Vec::new(),
        })
    }

    pub(crate) fn source(&mut self) -> &mut mio::net::UnixStream {
        &mut self.stream
    }

    /// Queues a message and writes as much as the socket takes now.
    pub(crate) fn send(&mut self, message: &ToFrontend) -> io::Result<()> {
        encode_frame(message, &mut self.output).map_err(io::Error::other)?;
        self.flush()
    }

    /// True while queued bytes wait for the socket to become writable.
    pub(crate) fn wants_write(&self) -> bool {
        !self.output.is_empty()
    }

    pub(crate) fn flush(&mut self) -> io::Result<()> {
        while !self.output.is_empty() {
            match self.stream.write(&self.output) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.output.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads what is available and returns the complete messages; `Ok(None)` means the peer closed.
    pub(crate) fn receive(&mut self) -> io::Result<Option<Vec<ToMaster>>> {
        let mut chunk = [0u8; 8192];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Ok(None),
                Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let mut messages = Vec::new();
        let mut used = 0;
        while let Some((message, len)) =
            decode_frame::<ToMaster>(&self.input[used..]).map_err(frame_error)?
        {
            messages.push(message);
            used += len;
        }
        self.input.drain(..used);
        Ok(Some(messages))
    }
}

fn frame_error(e: FrameError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}
