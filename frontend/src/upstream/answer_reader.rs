//! Reads a worker's HTTP answer (uwsgi and HTTP pools) and passes it, as CGI output, to a
//! [`StdoutSink`]: the head first (its status line as a `Status:` header), then the body as it
//! arrives, framed by its `Content-Length`, by chunks (decoded here), or by the end of the
//! connection.

use bytes::{Buf, BytesMut};
use protocol::http_answer::{self, ChunkedBody, Head, Piece};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::upstream::worker_connection::{ExchangeError, StdoutSink, READ_CHUNK};
use crate::upstream::worker_response::MAX_RESPONSE_HEAD;

/// How an answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct AnswerEnd {
    /// The answer said where it ends (a length, the last chunk, or no body at all), so the
    /// connection is where the worker's next answer would start; `false` when the end of the
    /// connection was the end of the body.
    pub delimited: bool,
    /// The worker said `Connection: close`.
    pub close: bool,
}

/// How the body after the head ends.
enum Framing {
    Length(u64),
    Chunked(ChunkedBody),
    UntilClose,
}

/// Reads one answer from `reader` into `stdout`, with `input` (empty at the start) as the read
/// buffer; bytes past a delimited answer are left in it. `head_request`: the request was a
/// HEAD, whose answer has no body whatever its headers say. `on_unframed` runs once the head
/// shows a body that only the end of the connection ends.
pub(super) async fn read_answer(
    reader: &mut (impl AsyncRead + Unpin),
    input: &mut BytesMut,
    stdout: &mut impl StdoutSink,
    head_request: bool,
    on_unframed: impl FnOnce(),
) -> Result<AnswerEnd, ExchangeError> {
    let mut on_unframed = Some(on_unframed);
    // None until the head has arrived; then how the body ends, and whether the worker closes.
    let mut body: Option<(Framing, bool)> = None;
    loop {
        if body.is_none() {
            match http_answer::parse_answer_head(input) {
                Head::Incomplete if input.len() > MAX_RESPONSE_HEAD => {
                    return Err(ExchangeError::HeadTooLarge {
                        limit: MAX_RESPONSE_HEAD,
                    })
                }
                Head::Incomplete => {}
                Head::Invalid(why) => return Err(ExchangeError::Protocol(why)),
                // An interim answer (100 Continue, 103 Early Hints) comes before the real one.
                Head::Complete(head) if matches!(head.status, 100 | 102 | 103) => {
                    input.advance(head.consumed);
                    continue;
                }
                Head::Complete(head) => {
                    stdout.write(&head.cgi_head).await?;
                    input.advance(head.consumed);
                    let bodiless =
                        head_request || head.status < 200 || matches!(head.status, 204 | 304);
                    let framing = match (bodiless, head.chunked, head.content_length) {
                        (true, _, _) => Framing::Length(0),
                        (false, true, _) => Framing::Chunked(ChunkedBody::default()),
                        (false, false, Some(length)) => Framing::Length(length),
                        (false, false, None) => {
                            if let Some(hook) = on_unframed.take() {
                                hook();
                            }
                            Framing::UntilClose
                        }
                    };
                    body = Some((framing, head.close));
                }
            }
        }
        if let Some((framing, close)) = body.as_mut() {
            if pass_body(framing, input, stdout).await? {
                return Ok(AnswerEnd {
                    delimited: true,
                    close: *close,
                });
            }
        }
        input.reserve(READ_CHUNK);
        let started = stdout.started() || !input.is_empty();
        match reader.read_buf(input).await {
            Ok(0) => {
                return match &body {
                    Some((Framing::UntilClose, _)) => Ok(AnswerEnd {
                        delimited: false,
                        close: true,
                    }),
                    // A body shorter than it said: the worker died mid-answer.
                    _ => Err(ExchangeError::Closed {
                        response_started: started,
                    }),
                };
            }
            Ok(_) => {}
            Err(source) => {
                return Err(ExchangeError::Read {
                    source,
                    response_started: started,
                })
            }
        }
    }
}

/// Passes the body bytes in `input` to `stdout`, dropping them and any framing from `input`;
/// true once the body has ended.
async fn pass_body(
    framing: &mut Framing,
    input: &mut BytesMut,
    stdout: &mut impl StdoutSink,
) -> Result<bool, ExchangeError> {
    match framing {
        Framing::Length(left) => {
            // Bytes past the length the worker gave are not part of the answer.
            let take = input
                .len()
                .min(usize::try_from(*left).unwrap_or(usize::MAX));
            if take > 0 {
                stdout.write(&input[..take]).await?;
                input.advance(take);
                *left -= take as u64;
            }
            Ok(*left == 0)
        }
        Framing::Chunked(chunks) => loop {
            match chunks.next(input).map_err(ExchangeError::Protocol)? {
                Piece::Data(range) => {
                    stdout.write(&input[range.clone()]).await?;
                    input.advance(range.end);
                }
                Piece::Framing(n) => input.advance(n),
                Piece::End(n) => {
                    input.advance(n);
                    return Ok(true);
                }
                Piece::Incomplete => return Ok(false),
            }
        },
        Framing::UntilClose => {
            if !input.is_empty() {
                stdout.write(input).await?;
                input.clear();
            }
            Ok(false)
        }
    }
}
