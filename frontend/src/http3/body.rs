//! A request body read from an HTTP/3 request stream, as the service reads any body.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use h3::server::RequestStream;
use hyper::body::{Body, Frame};

use crate::http::request_body::ReadError;

/// The receiving half of an HTTP/3 request stream.
pub(crate) struct RequestStreamBody {
    stream: RequestStream<h3_quinn::RecvStream, Bytes>,
    ended: bool,
}

impl RequestStreamBody {
    pub(super) fn new(stream: RequestStream<h3_quinn::RecvStream, Bytes>) -> Self {
        Self {
            stream,
            ended: false,
        }
    }
}

impl std::fmt::Debug for RequestStreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestStreamBody")
            .field("stream", &self.stream.id())
            .field("ended", &self.ended)
            .finish()
    }
}

impl Body for RequestStreamBody {
    type Data = Bytes;
    type Error = ReadError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ReadError>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        match this.stream.poll_recv_data(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(Some(mut data))) => {
                let bytes = data.copy_to_bytes(data.remaining());
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Poll::Ready(Ok(None)) => {
                this.ended = true;
                Poll::Ready(None)
            }
            Poll::Ready(Err(e)) => {
                this.ended = true;
                Poll::Ready(Some(Err(Box::new(e))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }
}
