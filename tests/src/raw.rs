//! A raw HTTP/1.1 client over a plain TCP socket, for tests that need exact bytes on the wire
//! (ambiguous framing, slow clients, connection closes) that curl cannot produce.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// One parsed response.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Header lines, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client connection.
#[derive(Debug)]
pub struct RawConn {
    reader: BufReader<TcpStream>,
}

impl RawConn {
    pub fn connect(addr: SocketAddr) -> RawConn {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        RawConn {
            reader: BufReader::new(stream),
        }
    }

    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.reader.get_mut().write_all(bytes)
    }

    /// Sends a GET for `path` with `Host: localhost`.
    pub fn get(&mut self, path: &str) -> io::Result<()> {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
    }

    /// Reads one response (Content-Length, chunked, or to the close); `None` if the connection
    /// closed (or failed) before a status line arrived.
    pub fn read_response(&mut self) -> Option<RawResponse> {
        self.read(true)
    }

    /// Reads the status line and headers of a response that has no body (HEAD).
    pub fn read_head_response(&mut self) -> Option<RawResponse> {
        self.read(false)
    }

    fn read(&mut self, with_body: bool) -> Option<RawResponse> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let status = line.split_whitespace().nth(1)?.parse().ok()?;
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).ok()?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':')?;
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
        let mut response = RawResponse {
            status,
            headers,
            body: Vec::new(),
        };
        if !with_body {
            return Some(response);
        }
        if let Some(len) = response.header("content-length") {
            let mut body = vec![0; len.parse().ok()?];
            self.reader.read_exact(&mut body).ok()?;
            response.body = body;
        } else if response
            .header("transfer-encoding")
            .is_some_and(|te| te.contains("chunked"))
        {
            loop {
                let mut size = String::new();
                self.reader.read_line(&mut size).ok()?;
                let size = usize::from_str_radix(size.trim(), 16).ok()?;
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk).ok()?;
                chunk.truncate(size);
                if size == 0 {
                    break;
                }
                response.body.extend_from_slice(&chunk);
            }
        } else if status != 304 && status != 204 && !(100..200).contains(&status) {
            self.reader.read_to_end(&mut response.body).ok()?;
        }
        Some(response)
    }

    /// True when the server closes the connection (EOF or reset) within `within`, having sent
    /// nothing more; false when it stays open that long or sends bytes.
    pub fn closed_within(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.reader.get_ref().set_read_timeout(Some(left)).unwrap();
            let mut byte = [0u8; 1];
            return match self.reader.read(&mut byte) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    false
                }
                Err(_) => true,
            };
        }
    }
}
