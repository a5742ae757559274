//! The access log: one line per request, in the NCSA combined format (what Apache and nginx write
//! and what log tools read) or as JSON, to a file or to standard output.
//!
//! A request is logged when its response body is finished or dropped, so the byte count is what
//! was really handed to the connection. Lines go through a bounded queue to a writer thread that
//! owns the file: a slow disk never blocks a request (if the queue is full the line is dropped
//! and counted), and `SIGUSR1` (via `ToFrontend::ReopenLogs`) makes the thread reopen the file
//! after logrotate moved it.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use protocol::control::{AccessLogFormat, AccessLogSpec};
use tracing::{error, info, warn};

use crate::http::response::Body;

/// Lines waiting for the writer thread; beyond this, lines are dropped rather than block.
const QUEUE: usize = 16 * 1024;

enum Message {
    Line(String),
    Reopen,
}

#[derive(Debug)]
pub(crate) struct AccessLog {
    format: AccessLogFormat,
    tx: SyncSender<Message>,
    dropped: AtomicU64,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Message::Line(_) => "Line",
            Message::Reopen => "Reopen",
        })
    }
}

impl AccessLog {
    /// Opens the file (an error here stops the start: a log that cannot be written should be
    /// noticed) and starts the writer thread.
    pub(crate) fn open(spec: &AccessLogSpec) -> io::Result<Arc<Self>> {
        let sink = Sink::open(spec.path.as_deref())?;
        let (tx, rx) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("paddock-access-log".into())
            .spawn(move || write_lines(sink, rx))?;
        Ok(Arc::new(Self {
            format: spec.format,
            tx,
            dropped: AtomicU64::new(0),
        }))
    }

    pub(crate) fn reopen(&self) {
        let _ = self.tx.send(Message::Reopen);
    }

    fn write(&self, entry: &Entry) {
        let line = match self.format {
            AccessLogFormat::Combined => entry.combined(),
            AccessLogFormat::Json => entry.json(),
        };
        match self.tx.try_send(Message::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if dropped.is_power_of_two() {
                    warn!(dropped, "access log queue full: lines dropped");
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

enum Sink {
    Stdout(io::BufWriter<io::Stdout>),
    File(io::BufWriter<File>, PathBuf),
}

impl Sink {
    fn open(path: Option<&Path>) -> io::Result<Sink> {
        Ok(match path {
            None => Sink::Stdout(io::BufWriter::new(io::stdout())),
            Some(path) => Sink::File(
                io::BufWriter::new(OpenOptions::new().create(true).append(true).open(path)?),
                path.to_path_buf(),
            ),
        })
    }

    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Sink::Stdout(w) => w,
            Sink::File(w, _) => w,
        }
    }
}

fn write_lines(mut sink: Sink, rx: Receiver<Message>) {
    let mut next = rx.recv();
    while let Ok(message) = next {
        match message {
            Message::Line(line) => {
                let _ = sink.writer().write_all(line.as_bytes());
            }
            Message::Reopen => {
                let _ = sink.writer().flush();
                if let Sink::File(_, path) = &sink {
                    let path = path.clone();
                    match Sink::open(Some(&path)) {
                        Ok(reopened) => {
                            sink = reopened;
                            info!(path = %path.display(), "access log reopened");
                        }
                        Err(e) => {
                            error!(path = %path.display(), error = %e, "cannot reopen the access log; still writing to the old file")
                        }
                    }
                }
            }
        }
        next = match rx.try_recv() {
            Ok(message) => Ok(message),
            Err(TryRecvError::Empty) => {
                // Nothing queued: make what was written visible before waiting.
                let _ = sink.writer().flush();
                rx.recv()
            }
            Err(TryRecvError::Disconnected) => break,
        };
    }
    let _ = sink.writer().flush();
}

/// What is known about a request when its response starts.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub time: SystemTime,
    pub client: IpAddr,
    pub method: String,
    pub target: String,
    pub version: &'static str,
    pub status: u16,
    pub bytes: u64,
    pub referer: Option<String>,
    pub user_agent: Option<String>,
    pub host: Option<String>,
    pub site: String,
    pub request_id: String,
    pub started: Instant,
    /// False when the body did not reach its end (client gone, failure mid-stream).
    pub complete: bool,
}

impl Entry {
    /// `%h - - [%d/%b/%Y:%H:%M:%S +0000] "%r" %>s %b "%{Referer}i" "%{User-Agent}i"`.
    fn combined(&self) -> String {
        let quoted = |v: &Option<String>| v.as_deref().map_or("-".to_string(), escape_combined);
        let bytes = if self.bytes == 0 {
            "-".to_string()
        } else {
            self.bytes.to_string()
        };
        format!(
            "{client} - - [{time}] \"{method} {target} {version}\" {status} {bytes} \"{referer}\" \"{agent}\"\n",
            client = self.client,
            time = clf_time(self.time),
            method = escape_combined(&self.method),
            target = escape_combined(&self.target),
            version = self.version,
            status = self.status,
            referer = quoted(&self.referer),
            agent = quoted(&self.user_agent),
        )
    }

    fn json(&self) -> String {
        let mut line = serde_json::json!({
            "time": iso_time(self.time),
            "client": self.client.to_string(),
            "method": self.method,
            "target": self.target,
            "protocol": self.version,
            "status": self.status,
            "bytes": self.bytes,
            "referer": self.referer,
            "user_agent": self.user_agent,
            "host": self.host,
            "site": self.site,
            "request_id": self.request_id,
            "duration_ms": self.started.elapsed().as_secs_f64() * 1000.0,
            "complete": self.complete,
        })
        .to_string();
        line.push('\n');
        line
    }
}

/// Quotes and control characters escaped as Apache does, so a field cannot forge a line.
fn escape_combined(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn split_time(time: SystemTime) -> (i64, u32, u32, u64, u64, u64, u32) {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil((secs / 86_400) as i64);
    let rest = secs % 86_400;
    (
        year,
        month,
        day,
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis(),
    )
}

/// `10/Oct/2000:13:55:36 +0000` (UTC).
fn clf_time(time: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, s, _) = split_time(time);
    format!(
        "{d:02}/{}/{y}:{h:02}:{mi:02}:{s:02} +0000",
        MONTHS[mo as usize - 1]
    )
}

/// `2000-10-10T13:55:36.123Z`.
fn iso_time(time: SystemTime) -> String {
    let (y, mo, d, h, mi, s, ms) = split_time(time);
    format!("{y}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
}

/// Bytes of an answer sent beside its body (a file sent with sendfile(2), see
/// `static_files::file_on_disk`), which the log line counts as the body's.
#[derive(Debug, Default)]
pub(crate) struct SentBeside {
    bytes: AtomicU64,
    complete: AtomicBool,
}

impl SentBeside {
    pub(crate) fn add(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The whole answer was sent.
    pub(crate) fn finish(&self) {
        self.complete.store(true, Ordering::Relaxed);
    }
}

/// A response body that writes the request's log line when it is finished or dropped.
struct LoggedBody {
    inner: Body,
    log: Arc<AccessLog>,
    entry: Entry,
    beside: Option<Arc<SentBeside>>,
}

impl HttpBody for LoggedBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.entry.bytes += data.len() as u64;
                }
            }
            Poll::Ready(None) => self.entry.complete = true,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        if self.inner.is_end_stream() {
            self.entry.complete = true;
        }
        if let Some(beside) = &self.beside {
            self.entry.bytes += beside.bytes.load(Ordering::Relaxed);
            self.entry.complete |= beside.complete.load(Ordering::Relaxed);
        }
        self.log.write(&self.entry);
    }
}

/// Wraps `body` so that `entry` is logged when the response ends, with what was sent
/// `beside` the body.
pub(crate) fn log_body(
    body: Body,
    log: Arc<AccessLog>,
    entry: Entry,
    beside: Option<Arc<SentBeside>>,
) -> Body {
    LoggedBody {
        inner: body,
        log,
        entry,
        beside,
    }
    .boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_format_like_apache_and_iso_8601() {
        let t = UNIX_EPOCH + Duration::from_millis(971_186_136_123);
        assert_eq!(clf_time(t), "10/Oct/2000:13:55:36 +0000");
        assert_eq!(iso_time(t), "2000-10-10T13:55:36.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(iso_time(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn combined_line_escapes_quotes() {
        let entry = Entry {
            time: UNIX_EPOCH + Duration::from_secs(971_186_136),
            client: "192.0.2.1".parse().unwrap(),
            method: "GET".into(),
            target: "/a\"b".into(),
            version: "HTTP/1.1",
            status: 200,
            bytes: 2326,
            referer: None,
            user_agent: Some("curl/8 \"x\"".into()),
            host: None,
            site: "s".into(),
            request_id: "r".into(),
            started: Instant::now(),
            complete: true,
        };
        assert_eq!(
            entry.combined(),
            "192.0.2.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /a\\\"b HTTP/1.1\" 200 2326 \"-\" \"curl/8 \\\"x\\\"\"\n"
        );
    }
}
