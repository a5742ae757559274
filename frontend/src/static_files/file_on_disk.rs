//! Which file, in which version, a static answer sends: for a connection that can send it from
//! the page cache itself.
//!
//! Why: a file above the in-memory cache's limit is read by tower-http in 256 KiB chunks on
//! tokio's blocking pool and copied into the socket, one thread hand-off and two copies per
//! chunk, where nginx sends the file with sendfile(2) and was ahead on 1 MiB files
//! (docs/benchmarks.md, scenario 1b). A plain HTTP/1.1 connection on the direct path
//! (`conn::http1_direct`) can do what nginx does: such an answer carries a [`FileOnDisk`], and
//! that connection opens the file, checks that it is still the version the answer's headers
//! describe, sends it with sendfile(2) and leaves tower-http's body unread. Every other
//! connection (TLS, HTTP/2, hyper's path) ignores the record and streams the body as before.

use std::fs::{File, Metadata};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::header::{HeaderMap, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, ETAG};
use http::{Response, StatusCode};

use super::file_cache::{self, Identity};
use crate::http::access_log::SentBeside;
use crate::http::response::Body;

/// The file a whole-file answer sends, in the version its headers describe (a response
/// extension).
#[derive(Debug, Clone)]
pub(crate) struct FileOnDisk {
    path: PathBuf,
    identity: Identity,
    len: u64,
    /// What was sent beside the body, for the access log (`http::access_log`).
    pub sent: Arc<SentBeside>,
}

impl FileOnDisk {
    /// The record for `response` if it is a whole-file `200` that sends `meta`'s version of
    /// `path` as it is: not a range, not a precompressed sibling, not a file that changed
    /// between the router's look at it and tower-http's (then the headers are tower-http's
    /// version, and `meta` is not).
    pub(crate) fn for_answer(
        path: &Path,
        meta: &Metadata,
        response: &Response<Body>,
    ) -> Option<Self> {
        let headers = response.headers();
        let whole = response.status() == StatusCode::OK
            && !headers.contains_key(CONTENT_RANGE)
            && !headers.contains_key(CONTENT_ENCODING);
        let same_version =
            length(headers) == Some(meta.len()) && *headers.get(ETAG)? == file_cache::etag(meta)?;
        (whole && same_version).then(|| Self {
            path: path.to_path_buf(),
            identity: Identity::of(meta),
            len: meta.len(),
            sent: Arc::default(),
        })
    }

    /// The answer's length.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The file, opened, if it is still the version the answer describes (`None` otherwise:
    /// the caller then sends the answer's own body).
    pub(crate) fn open(&self) -> Option<File> {
        let file = File::open(&self.path).ok()?;
        let meta = file.metadata().ok()?;
        (Identity::of(&meta) == self.identity).then_some(file)
    }
}

/// The one `Content-Length` of an answer.
pub(crate) fn length(headers: &HeaderMap) -> Option<u64> {
    let mut lengths = headers.get_all(CONTENT_LENGTH).iter();
    let length = lengths.next()?.to_str().ok()?.parse().ok()?;
    lengths.next().is_none().then_some(length)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::response::full;

    fn answer(status: StatusCode, headers: &[(&'static str, String)]) -> Response<Body> {
        let mut response = Response::new(full(""));
        *response.status_mut() = status;
        for (name, value) in headers {
            response
                .headers_mut()
                .insert(*name, value.parse().expect("a header value"));
        }
        response
    }

    #[test]
    fn only_a_whole_answer_of_the_version_looked_at_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.bin");
        std::fs::write(&path, vec![7u8; 5000]).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        let etag = file_cache::etag(&meta)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let whole = [
            ("content-length", "5000".to_owned()),
            ("etag", etag.clone()),
        ];
        let on_disk = FileOnDisk::for_answer(&path, &meta, &answer(StatusCode::OK, &whole))
            .expect("a whole answer");
        assert_eq!(on_disk.len(), 5000);
        assert!(on_disk.open().is_some());

        let partial = answer(StatusCode::PARTIAL_CONTENT, &whole);
        assert!(FileOnDisk::for_answer(&path, &meta, &partial).is_none());
        let mut sibling = whole.to_vec();
        sibling.push(("content-encoding", "gzip".to_owned()));
        let sibling = answer(StatusCode::OK, &sibling);
        assert!(FileOnDisk::for_answer(&path, &meta, &sibling).is_none());
        let other = [
            ("content-length", "5000".to_owned()),
            ("etag", "\"1-2\"".into()),
        ];
        let other = answer(StatusCode::OK, &other);
        assert!(FileOnDisk::for_answer(&path, &meta, &other).is_none());

        // Rewritten since: the record no longer opens it.
        std::fs::write(&path, vec![8u8; 5001]).unwrap();
        assert!(on_disk.open().is_none());
    }
}
