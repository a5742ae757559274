//! A small blocking HTTP/1.1 client for tests that need exact control (keep-alive, raw bytes,
//! many concurrent connections) or a load loop, without pulling an HTTP stack into the tests.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One keep-alive connection.
#[derive(Debug)]
pub struct Connection {
    reader: BufReader<TcpStream>,
}

impl Connection {
    pub fn open(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            reader: BufReader::new(stream),
        })
    }

    pub fn stream(&mut self) -> &mut TcpStream {
        self.reader.get_mut()
    }

    /// Sends a request and reads its response.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Response> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
            if !headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            {
                head.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
            }
        }
        head.push_str("\r\n");
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        self.read_response(method == "HEAD")
    }

    /// Reads one response (Content-Length or chunked framing).
    pub fn read_response(&mut self, head_only: bool) -> io::Result<Response> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidData, format!("status line {line:?}"))
            })?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            if let Some((name, value)) = trimmed.split_once(':') {
                headers.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if head_only || status == 204 || status == 304 {
            return Ok(response);
        }
        if response
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            loop {
                line.clear();
                self.reader.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim(), 16)
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "chunk size"))?;
                if size == 0 {
                    line.clear();
                    self.reader.read_line(&mut line)?;
                    break;
                }
                let start = response.body.len();
                response.body.resize(start + size, 0);
                self.reader.read_exact(&mut response.body[start..])?;
                line.clear();
                self.reader.read_line(&mut line)?;
            }
        } else if let Some(length) = response.header("content-length") {
            let length: usize = length
                .parse()
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "content-length"))?;
            response.body.resize(length, 0);
            self.reader.read_exact(&mut response.body)?;
        }
        Ok(response)
    }
}

/// Outcome of a load run.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub ok: u64,
    /// Descriptions of failed requests (status or error), for assertion messages.
    pub failures: Vec<String>,
}

/// Runs `clients` threads, each sending `method path` with `body(n)` back to back on a keep-alive
/// connection (reconnecting if the server closes it) until `duration` has passed. Bounded in time.
pub fn load(
    addr: SocketAddr,
    clients: usize,
    duration: Duration,
    request: impl Fn(usize, u64) -> (String, String, Vec<u8>) + Send + Sync + Clone + 'static,
    accept: impl Fn(&Response) -> bool + Send + Sync + Clone + 'static,
) -> LoadReport {
    load_bounded(addr, clients, duration, u64::MAX, request, accept)
}

/// [`load`] of GETs alternating between a static file and a PHP script (`/static/hello.txt`,
/// `/sleep.php?ms=2`), every one of which must be answered 200: background traffic for tests
/// that change something under load (reload, upgrade).
pub fn mixed_load(addr: SocketAddr, clients: usize, duration: Duration) -> LoadReport {
    load(
        addr,
        clients,
        duration,
        |client, n| {
            let path = if (client + n as usize) % 2 == 0 {
                "/static/hello.txt"
            } else {
                "/sleep.php?ms=2"
            };
            ("GET".into(), path.into(), Vec::new())
        },
        |r| r.status == 200,
    )
}

/// Like [`load`], but each client stops after `per_client` requests (or at `duration`, whichever
/// comes first): for tests that need a number of requests rather than a time of load, so that a
/// busy machine makes them slower, not different.
pub fn load_bounded(
    addr: SocketAddr,
    clients: usize,
    duration: Duration,
    per_client: u64,
    request: impl Fn(usize, u64) -> (String, String, Vec<u8>) + Send + Sync + Clone + 'static,
    accept: impl Fn(&Response) -> bool + Send + Sync + Clone + 'static,
) -> LoadReport {
    let deadline = std::time::Instant::now() + duration;
    let threads: Vec<_> = (0..clients)
        .map(|client| {
            let request = request.clone();
            let accept = accept.clone();
            std::thread::spawn(move || {
                let mut report = LoadReport::default();
                let mut connection: Option<Connection> = None;
                let mut n = 0;
                while n < per_client && std::time::Instant::now() < deadline {
                    let conn = match &mut connection {
                        Some(conn) => conn,
                        None => match Connection::open(addr) {
                            Ok(conn) => connection.insert(conn),
                            Err(e) => {
                                report.failures.push(format!("connect: {e}"));
                                std::thread::sleep(Duration::from_millis(10));
                                continue;
                            }
                        },
                    };
                    let (method, path, body) = request(client, n);
                    n += 1;
                    match conn.request(&method, &path, &[], &body) {
                        Ok(response) if accept(&response) => {
                            report.ok += 1;
                            if response
                                .header("connection")
                                .is_some_and(|v| v.eq_ignore_ascii_case("close"))
                            {
                                connection = None;
                            }
                        }
                        Ok(response) => {
                            report.failures.push(format!(
                                "{method} {path}: {} {}",
                                response.status,
                                response.text()
                            ));
                            connection = None;
                        }
                        Err(e) => {
                            report.failures.push(format!("{method} {path}: {e}"));
                            connection = None;
                        }
                    }
                }
                report
            })
        })
        .collect();
    let mut total = LoadReport::default();
    for thread in threads {
        let report = thread.join().expect("load thread");
        total.ok += report.ok;
        total.failures.extend(report.failures);
    }
    total
}

/// `GET path` on a fresh connection to `addr`, in a thread of its own: join for the response.
/// For a request that must be under way (held on a worker, queued) while the test goes on.
pub fn get_in_background(addr: SocketAddr, path: &str) -> JoinHandle<io::Result<Response>> {
    let path = path.to_string();
    std::thread::spawn(move || Connection::open(addr)?.request("GET", &path, &[], b""))
}
