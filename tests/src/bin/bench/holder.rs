//! Holds thousands of client connections open against a server while the load runs:
//! idle keep-alive connections (one request answered, then silence, reopened if the server closes
//! them) and stalled clients (half a request head, then silence — slowloris; reopened when the
//! server gives up on them, as an attacker would). Runs on its own thread with a single-threaded
//! tokio runtime; stopping it drops the runtime, which closes every socket.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Semaphore};
use tokio_rustls::TlsConnector;

/// How many connections may be in their set-up phase at once (so the server's accept backlog is
/// not flooded and every connect completes).
const SETUP_CONCURRENCY: usize = 200;
/// Longest a connection set-up (connect, TLS, first request) may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`Holder::wait_established`] waits when no further connection opens.
const NO_PROGRESS: Duration = Duration::from_secs(8);
/// Pause before reopening a connection that the server closed or that failed.
const REOPEN_DELAY: Duration = Duration::from_secs(1);

/// What to hold.
#[derive(Debug, Clone)]
pub(crate) struct HoldSpec {
    pub addr: SocketAddr,
    /// TLS client configuration, for an HTTPS server.
    pub tls: Option<Arc<ClientConfig>>,
    /// Idle keep-alive connections: each requests `idle_path` once (none if it is empty: connect
    /// and TLS handshake only), then stays silent.
    pub idle: usize,
    pub idle_path: String,
    /// Clients that send half of a request head for `stall_path` and stop.
    pub stalled: usize,
    pub stall_path: String,
}

#[derive(Debug, Default)]
struct Counters {
    idle_open: AtomicUsize,
    stalled_open: AtomicUsize,
    idle_closed_by_server: AtomicUsize,
    stalled_closed_by_server: AtomicUsize,
    setup_failures: AtomicUsize,
}

/// A snapshot of the holder's connections.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct HoldState {
    pub idle_open: usize,
    pub stalled_open: usize,
    pub idle_closed_by_server: usize,
    pub stalled_closed_by_server: usize,
    pub setup_failures: usize,
}

impl HoldState {
    pub(crate) fn to_json(self) -> serde_json::Value {
        serde_json::json!({
            "idle_open": self.idle_open,
            "stalled_open": self.stalled_open,
            "idle_closed_by_server": self.idle_closed_by_server,
            "stalled_closed_by_server": self.stalled_closed_by_server,
            "setup_failures": self.setup_failures,
        })
    }

    pub(crate) fn describe(self) -> String {
        format!(
            "{} idle open, {} stalled open; closed by the server: {} idle, {} stalled; {} set-ups failed",
            self.idle_open,
            self.stalled_open,
            self.idle_closed_by_server,
            self.stalled_closed_by_server,
            self.setup_failures
        )
    }
}

#[derive(Debug)]
pub(crate) struct Holder {
    spec: HoldSpec,
    counters: Arc<Counters>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl Holder {
    pub(crate) fn start(spec: HoldSpec) -> Holder {
        let counters = Arc::new(Counters::default());
        let (stop, stopped) = oneshot::channel();
        let thread = {
            let spec = Arc::new(spec.clone());
            let counters = counters.clone();
            std::thread::Builder::new()
                .name("holder".into())
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("holder runtime");
                    runtime.block_on(hold(spec, counters, stopped));
                    // Dropping the runtime cancels every task and closes every socket.
                })
                .expect("start the holder thread")
        };
        Holder {
            spec,
            counters,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub(crate) fn state(&self) -> HoldState {
        let c = &self.counters;
        HoldState {
            idle_open: c.idle_open.load(Ordering::Relaxed),
            stalled_open: c.stalled_open.load(Ordering::Relaxed),
            idle_closed_by_server: c.idle_closed_by_server.load(Ordering::Relaxed),
            stalled_closed_by_server: c.stalled_closed_by_server.load(Ordering::Relaxed),
            setup_failures: c.setup_failures.load(Ordering::Relaxed),
        }
    }

    /// Waits until every connection is open, or no more opened for [`NO_PROGRESS`] (a server
    /// that cannot take them all), or `limit` passed; returns the state then.
    pub(crate) fn wait_established(&self, limit: Duration) -> HoldState {
        let deadline = Instant::now() + limit;
        let (mut last_open, mut last_progress) = (0, Instant::now());
        loop {
            let state = self.state();
            let open = state.idle_open + state.stalled_open;
            if open > last_open {
                (last_open, last_progress) = (open, Instant::now());
            }
            let complete =
                state.idle_open >= self.spec.idle && state.stalled_open >= self.spec.stalled;
            let stuck = last_progress.elapsed() > NO_PROGRESS;
            if complete || stuck || Instant::now() > deadline {
                return state;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Closes every connection.
    pub(crate) fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn hold(spec: Arc<HoldSpec>, counters: Arc<Counters>, stopped: oneshot::Receiver<()>) {
    let gate = Arc::new(Semaphore::new(SETUP_CONCURRENCY));
    // Stalled clients first: they are the attack; the idle ones arrive on top.
    for _ in 0..spec.stalled {
        tokio::spawn(keep_stalled(spec.clone(), counters.clone(), gate.clone()));
    }
    for _ in 0..spec.idle {
        tokio::spawn(keep_idle(spec.clone(), counters.clone(), gate.clone()));
    }
    let _ = stopped.await;
}

async fn connect(spec: &HoldSpec) -> std::io::Result<Box<dyn Io>> {
    let tcp = TcpStream::connect(spec.addr).await?;
    tcp.set_nodelay(true)?;
    match &spec.tls {
        None => Ok(Box::new(tcp)),
        Some(config) => {
            let name = ServerName::try_from("localhost").expect("server name");
            let tls = TlsConnector::from(config.clone())
                .connect(name, tcp)
                .await?;
            Ok(Box::new(tls))
        }
    }
}

/// Connects, sends one request and reads its whole (Content-Length framed) response.
async fn open_idle(spec: &HoldSpec) -> std::io::Result<Box<dyn Io>> {
    let mut stream = connect(spec).await?;
    if spec.idle_path.is_empty() {
        return Ok(stream);
    }
    let request = format!("GET {} HTTP/1.1\r\nHost: localhost\r\n\r\n", spec.idle_path);
    stream.write_all(request.as_bytes()).await?;
    let mut received = Vec::with_capacity(2048);
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        received.extend_from_slice(&buf[..n]);
        if let Some(end) = find(&received, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).to_ascii_lowercase();
            if !head.starts_with("http/1.1 200") {
                return Err(std::io::Error::other(format!(
                    "status {}",
                    head.lines().next().unwrap_or("")
                )));
            }
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if received.len() >= end + 4 + length {
                return Ok(stream);
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Returns when the server closes the connection (or it fails).
async fn until_closed(stream: &mut Box<dyn Io>) {
    let mut buf = [0u8; 512];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

async fn keep_idle(spec: Arc<HoldSpec>, counters: Arc<Counters>, gate: Arc<Semaphore>) {
    loop {
        let permit = gate.acquire().await.expect("gate");
        let opened = tokio::time::timeout(SETUP_TIMEOUT, open_idle(&spec)).await;
        drop(permit);
        match opened {
            Ok(Ok(mut stream)) => {
                counters.idle_open.fetch_add(1, Ordering::Relaxed);
                until_closed(&mut stream).await;
                counters.idle_open.fetch_sub(1, Ordering::Relaxed);
                counters
                    .idle_closed_by_server
                    .fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                counters.setup_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(REOPEN_DELAY).await;
    }
}

async fn keep_stalled(spec: Arc<HoldSpec>, counters: Arc<Counters>, gate: Arc<Semaphore>) {
    loop {
        let permit = gate.acquire().await.expect("gate");
        let opened = tokio::time::timeout(SETUP_TIMEOUT, async {
            let mut stream = connect(&spec).await?;
            let half = format!(
                "GET {} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: paddock-bench\r\n",
                spec.stall_path
            );
            stream.write_all(half.as_bytes()).await?;
            std::io::Result::Ok(stream)
        })
        .await;
        drop(permit);
        match opened {
            Ok(Ok(mut stream)) => {
                counters.stalled_open.fetch_add(1, Ordering::Relaxed);
                until_closed(&mut stream).await;
                counters.stalled_open.fetch_sub(1, Ordering::Relaxed);
                counters
                    .stalled_closed_by_server
                    .fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                counters.setup_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(REOPEN_DELAY).await;
    }
}
