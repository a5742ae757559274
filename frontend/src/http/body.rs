//! Buffering complete request bodies before dispatch.
//!
//! A worker must never wait on a slow upload: the front end reads the whole body first, in memory
//! up to `body_memory_bytes`, then into an unnamed temporary file (gone when dropped, even on a
//! crash). A body over `max_body_bytes` is refused with 413, and a declared Content-Length over the
//! limit is refused before a single byte is read (so no `100 Continue` is ever sent for it).

use std::io::{Seek, SeekFrom};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;

use crate::http::request_body::{ReadError, RequestBody};
use std::time::Duration;

use protocol::control::{LimitsSpec, TimeoutsSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// A request body held by the front end.
#[derive(Debug)]
pub(crate) enum BufferedBody {
    Memory(Bytes),
    File { file: std::fs::File, len: u64 },
}

/// Why a body could not be buffered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("request body exceeds the {limit}-byte limit")]
    TooLarge { limit: u64 },
    #[error("the body did not arrive before its deadline")]
    TimedOut,
    #[error("client failed while sending the body: {0}")]
    Client(#[from] ReadError),
    #[error("cannot spool the body to a temporary file: {0}")]
    Spool(#[from] std::io::Error),
}

impl BufferedBody {
    pub(crate) fn len(&self) -> u64 {
        match self {
            BufferedBody::Memory(bytes) => bytes.len() as u64,
            BufferedBody::File { len, .. } => *len,
        }
    }

    /// A reader that yields the body from the start in pieces (each use starts over, so a
    /// retried request sends the same bytes again).
    pub(crate) fn chunks(&self) -> std::io::Result<BodyChunks> {
        Ok(match self {
            BufferedBody::Memory(bytes) => BodyChunks::Memory(bytes.clone()),
            BufferedBody::File { file, .. } => {
                let mut copy = file.try_clone()?;
                copy.seek(SeekFrom::Start(0))?;
                BodyChunks::File(tokio::fs::File::from_std(copy), vec![0; 64 * 1024])
            }
        })
    }
}

/// Successive pieces of a [`BufferedBody`].
#[derive(Debug)]
pub(crate) enum BodyChunks {
    Memory(Bytes),
    File(tokio::fs::File, Vec<u8>),
}

impl BodyChunks {
    /// The next piece of at most `max` bytes, or `None` at the end.
    pub(crate) async fn next(&mut self, max: usize) -> std::io::Result<Option<Bytes>> {
        match self {
            BodyChunks::Memory(rest) => {
                if rest.is_empty() {
                    return Ok(None);
                }
                Ok(Some(rest.split_to(max.min(rest.len()))))
            }
            BodyChunks::File(file, buf) => {
                let limit = max.min(buf.len());
                let n = file.read(&mut buf[..limit]).await?;
                Ok((n > 0).then(|| Bytes::copy_from_slice(&buf[..n])))
            }
        }
    }
}

/// Reads the whole body of a request, enforcing the size limit and the deadline.
///
/// The deadline is `request_body` after the first read, plus one second for every
/// `request_body_min_rate` bytes received (as Apache's `RequestReadTimeout body=…,MinRate=…`): a
/// slow but steady upload finishes, a trickle that would hold the connection for hours does not.
pub(crate) async fn buffer(
    mut body: RequestBody,
    declared: Option<u64>,
    limits: &LimitsSpec,
    timeouts: &TimeoutsSpec,
) -> Result<BufferedBody, BodyError> {
    let limit = limits.max_body_bytes;
    if declared.is_some_and(|len| len > limit) {
        return Err(BodyError::TooLarge { limit });
    }
    let started = Instant::now();
    let base = Duration::from_millis(timeouts.request_body_ms);
    let deadline = |received: u64| match limits.request_body_min_rate {
        0 => started + base,
        rate => started + base + Duration::from_secs(received / rate),
    };
    let mut memory = BytesMut::new();
    let mut spool: Option<(tokio::fs::File, u64)> = None;
    loop {
        let received = memory.len() as u64 + spool.as_ref().map_or(0, |s| s.1);
        let Ok(frame) = tokio::time::timeout_at(deadline(received), body.frame()).await else {
            return Err(BodyError::TimedOut);
        };
        let Some(frame) = frame else { break };
        let Ok(data) = frame?.into_data() else {
            continue; // trailers carry nothing a CGI handler can see
        };
        let total = memory.len() as u64 + spool.as_ref().map_or(0, |s| s.1) + data.len() as u64;
        if total > limit {
            return Err(BodyError::TooLarge { limit });
        }
        match &mut spool {
            Some((file, len)) => {
                file.write_all(&data).await?;
                *len += data.len() as u64;
            }
            None if total > limits.body_memory_bytes => {
                let std_file = tempfile::tempfile_in(&limits.temp_dir)?;
                let mut file = tokio::fs::File::from_std(std_file);
                file.write_all(&memory).await?;
                file.write_all(&data).await?;
                spool = Some((file, total));
                memory = BytesMut::new();
            }
            None => memory.extend_from_slice(&data),
        }
    }
    match spool {
        None => Ok(BufferedBody::Memory(memory.freeze())),
        Some((mut file, len)) => {
            file.flush().await?;
            Ok(BufferedBody::File {
                file: file.into_std().await,
                len,
            })
        }
    }
}
