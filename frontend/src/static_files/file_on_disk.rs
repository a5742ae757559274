//! A whole file too large for the in-memory cache, answered from its metadata: the answer
//! carries which file, in which version, it sends, and its body reads the file only if it is
//! polled.
//!
//! Why: such a file was answered by tower-http's `ServeFile`, which opens and stats it on
//! tokio's blocking pool (a thread hand-off before the answer exists), then reads it in 256 KiB
//! chunks there and copies them into the socket. nginx sends the file with sendfile(2) and was
//! ahead on 1 MiB files (docs/benchmarks.md, scenario 1b). Now the answer's head is made on the
//! event loop from the stat the router already did, with the headers a cached file gets (the
//! same as tower-http's); a plain HTTP/1.1 connection on the direct path
//! (`conn::http1_direct`) opens the file, checks that it is still that version and sends it
//! with sendfile(2), never polling the body. Every other connection (TLS, HTTP/2, hyper's path,
//! an answer a compression layer rewrote) polls the body, which opens and reads the file on the
//! blocking pool as tower-http did. Ranges and `If-Match` / `If-Unmodified-Since` still go to
//! tower-http.

use std::fs::{File, Metadata};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, CONTENT_LENGTH};
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::task::JoinHandle;

use super::file_cache::Identity;
use crate::http::access_log::SentBeside;
use crate::http::response::Body;

/// The reads of a file's body: tower-http's default of 64 KiB sends each through tokio's
/// blocking pool and back four times as often (1 MiB and 100 MiB files: +5-12 % req/s,
/// docs/benchmarks.md scenario 1b). One such buffer exists per body being read.
pub(crate) const FILE_CHUNK: usize = 256 * 1024;

/// The file a whole-file answer sends, in the version its headers describe (a response
/// extension).
#[derive(Debug, Clone)]
pub(crate) struct FileOnDisk {
    path: Arc<Path>,
    identity: Identity,
    len: u64,
    /// What was sent beside the body, for the access log (`http::access_log`).
    pub sent: Arc<SentBeside>,
}

impl FileOnDisk {
    /// `meta` is the version of `path` the answer's headers describe.
    pub(crate) fn new(path: &Path, meta: &Metadata) -> Self {
        Self {
            path: path.into(),
            identity: Identity::of(meta),
            len: meta.len(),
            sent: Arc::default(),
        }
    }

    /// The answer's length.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The file, opened, if it is still the version the answer describes (`None` otherwise).
    pub(crate) fn open(&self) -> Option<File> {
        open_version(&self.path, self.identity).ok()
    }

    /// The answer's body: the file read when it is polled, an error if by then it is no
    /// longer this version (the connection then ends, as for any body cut short).
    pub(crate) fn body(&self) -> Body {
        FileBody {
            state: State::Unopened(self.path.clone(), self.identity),
            left: self.len,
        }
        .boxed_unsync()
    }
}

fn open_version(path: &Path, identity: Identity) -> io::Result<File> {
    let file = File::open(path)?;
    if Identity::of(&file.metadata()?) == identity {
        Ok(file)
    } else {
        Err(io::Error::other(
            "the file changed after its answer was made",
        ))
    }
}

/// The one `Content-Length` of an answer.
pub(crate) fn length(headers: &HeaderMap) -> Option<u64> {
    let mut lengths = headers.get_all(CONTENT_LENGTH).iter();
    let length = lengths.next()?.to_str().ok()?.parse().ok()?;
    lengths.next().is_none().then_some(length)
}

struct FileBody {
    state: State,
    /// Bytes still to send: the file is read up to its length when the answer was made.
    left: u64,
}

enum State {
    Unopened(Arc<Path>, Identity),
    Opening(JoinHandle<io::Result<File>>),
    Reading(tokio::fs::File),
}

impl HttpBody for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        loop {
            if this.left == 0 {
                return Poll::Ready(None);
            }
            match &mut this.state {
                State::Unopened(path, identity) => {
                    let (path, identity): (PathBuf, _) = (path.to_path_buf(), *identity);
                    let opening =
                        tokio::task::spawn_blocking(move || open_version(&path, identity));
                    this.state = State::Opening(opening);
                }
                State::Opening(opening) => {
                    let opened = ready!(Pin::new(opening).poll(cx)).map_err(io::Error::other)?;
                    this.state = State::Reading(tokio::fs::File::from_std(opened?));
                }
                State::Reading(file) => {
                    let want = this.left.min(FILE_CHUNK as u64) as usize;
                    let mut chunk = BytesMut::with_capacity(want);
                    let read = ready!(tokio_util::io::poll_read_buf(
                        Pin::new(file),
                        cx,
                        &mut chunk
                    ))?;
                    if read == 0 {
                        return Poll::Ready(Some(Err(io::ErrorKind::UnexpectedEof.into())));
                    }
                    chunk.truncate(want);
                    this.left -= chunk.len() as u64;
                    return Poll::Ready(Some(Ok(Frame::data(chunk.freeze()))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[tokio::test]
    async fn the_body_reads_the_version_it_was_made_for_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.bin");
        let len = 3 * FILE_CHUNK + 17;
        std::fs::write(&path, pattern(len)).unwrap();
        let on_disk = FileOnDisk::new(&path, &std::fs::metadata(&path).unwrap());
        assert_eq!(on_disk.len(), len as u64);
        assert!(on_disk.open().is_some());
        let body = on_disk.body();
        assert_eq!(body.size_hint().exact(), Some(len as u64));
        let read = body.collect().await.unwrap().to_bytes();
        assert!(read[..] == pattern(len)[..]);

        // Rewritten since: neither the sender nor the body takes the new version.
        std::fs::write(&path, pattern(len + 1)).unwrap();
        assert!(on_disk.open().is_none());
        assert!(on_disk.body().collect().await.is_err());
    }

    #[tokio::test]
    async fn a_file_cut_short_ends_its_body_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.bin");
        std::fs::write(&path, pattern(2 * FILE_CHUNK)).unwrap();
        let mut on_disk = FileOnDisk::new(&path, &std::fs::metadata(&path).unwrap());
        // As if the file had been longer when the answer was made.
        on_disk.len += 1;
        let mut body = on_disk.body();
        let mut read = 0;
        let failed = loop {
            match body.frame().await {
                Some(Ok(frame)) => read += frame.into_data().unwrap().len(),
                Some(Err(e)) => break e,
                None => panic!("a short file ended its body cleanly"),
            }
        };
        assert_eq!(failed.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(read, 2 * FILE_CHUNK);
    }
}
