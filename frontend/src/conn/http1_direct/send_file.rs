//! A large static file on the direct path: its head written, then the file sent from the page
//! cache with sendfile(2) (`static_files::file_on_disk` says why).
//!
//! Only over a plain socket (TLS makes its records in paddock, so the bytes must pass through
//! it), only for a GET whose answer is framed exactly as hyper would frame the file body: a
//! `200` with its standard reason, one `Content-Length` that is the file's, no other coding.
//! The file is opened here and checked to be the version the answer's headers describe;
//! otherwise the answer goes to hyper, which streams the answer's own body (and that body,
//! checking the same version, ends the connection rather than send other bytes).

use std::fs::File;
use std::future::poll_fn;
use std::os::fd::AsFd;
use std::time::Duration;

use http::header::{CONTENT_ENCODING, TRANSFER_ENCODING};
use http::{Response, StatusCode};
use tracing::debug;

use super::write_answer;
use crate::conn::deadlines::Expiry;
use crate::conn::parking::Parkable;
use crate::http::access_log::SentBeside;
use crate::http::response::Body;
use crate::static_files::file_on_disk::{self, FileOnDisk};

/// Most bytes asked of one sendfile(2) call. The socket is non-blocking, so a call sends what
/// its buffer takes and returns; the bound only keeps the count within `usize` on any target.
const MOST_PER_CALL: u64 = 4 << 20;

/// The file `response` sends, opened, when this connection can send it itself.
pub(super) fn sendable<I: Parkable>(
    io: &mut I,
    response: &Response<Body>,
) -> Option<(File, u64, std::sync::Arc<SentBeside>)> {
    let on_disk = response.extensions().get::<FileOnDisk>()?;
    let headers = response.headers();
    let framed_as_file = response.status() == StatusCode::OK
        && response
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .is_none()
        && !headers.contains_key(TRANSFER_ENCODING)
        && !headers.contains_key(CONTENT_ENCODING)
        && file_on_disk::length(headers) == Some(on_disk.len());
    if !framed_as_file || io.client_socket().is_none() {
        return None;
    }
    Some((on_disk.open()?, on_disk.len(), on_disk.sent.clone()))
}

/// Writes `head`, then `len` bytes of `file`, each wait for the socket bounded by `send`;
/// `false` if the client stopped taking them, the wait ran out or the file came up short.
/// Every byte of the file sent is added to `sent` (the access log's count).
pub(super) async fn send<I: Parkable>(
    io: &mut I,
    head: &[u8],
    file: &File,
    len: u64,
    send: Duration,
    sent: &SentBeside,
) -> bool {
    // Corked while the head and the file go out, as nginx's `tcp_nopush`: the head does not
    // leave alone in a small segment of its own.
    let corked = io
        .client_socket()
        .is_some_and(|s| s.set_corked(true).is_ok());
    let sending = async {
        match tokio::time::timeout(send, write_answer(io, head, &[])).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err(Expiry::Send.describe().to_owned()),
        }
        let mut offset = 0;
        while offset < len {
            let asked = (len - offset).min(MOST_PER_CALL) as usize;
            let once = poll_fn(|cx| io.poll_send_file(cx, file.as_fd(), &mut offset, asked));
            match tokio::time::timeout(send, once).await {
                Ok(Ok(bytes)) if bytes > 0 => sent.add(bytes as u64),
                // A file shorter than its answer (truncated meanwhile): as hyper does with a
                // short body, end the connection rather than let the client wait for the rest.
                Ok(Ok(_)) => return Err("the file ended before its length".to_owned()),
                Ok(Err(e)) => return Err(e.to_string()),
                // The same limit, and the same words, as for any other answer (`conn::drive`).
                Err(_) => return Err(Expiry::Send.describe().to_owned()),
            }
        }
        Ok(())
    };
    let outcome = sending.await;
    if corked {
        if let Some(socket) = io.client_socket() {
            let _ = socket.set_corked(false);
        }
    }
    match outcome {
        Ok(()) => {
            sent.finish();
            true
        }
        Err(reason) => {
            debug!(reason, "closing connection while sending a file");
            false
        }
    }
}
