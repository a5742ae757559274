//! The body of a request as the service reads it: from hyper (HTTP/1.1 and HTTP/2) or from an
//! HTTP/3 stream. One enum rather than a boxed body, so that the common hyper case costs no
//! allocation and stays one static call.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::http3::RequestStreamBody;

/// Why a request body could not be read: the client failed or went away midway.
pub(crate) type ReadError = Box<dyn std::error::Error + Send + Sync>;

/// A request's body, whichever protocol carries it.
#[derive(Debug)]
pub(crate) enum RequestBody {
    Hyper(Incoming),
    /// A request read without hyper, which has no body (`conn::http1_direct`).
    Empty,
    Http3(RequestStreamBody),
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = ReadError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ReadError>>> {
        match self.get_mut() {
            RequestBody::Hyper(body) => Pin::new(body)
                .poll_frame(cx)
                .map_err(|e| Box::new(e) as ReadError),
            RequestBody::Http3(body) => Pin::new(body).poll_frame(cx),
            RequestBody::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Hyper(body) => body.is_end_stream(),
            RequestBody::Http3(body) => body.is_end_stream(),
            RequestBody::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Hyper(body) => body.size_hint(),
            RequestBody::Http3(body) => body.size_hint(),
            RequestBody::Empty => SizeHint::with_exact(0),
        }
    }
}
