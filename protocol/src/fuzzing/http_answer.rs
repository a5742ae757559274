//! Properties of a worker's HTTP answer: its head, and a chunked body that follows.

use crate::http_answer::{parse_answer_head, ChunkedBody, Head, Piece};

/// How a chunked body read ended, and the data it gave.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The last chunk was read; the bytes left after it.
    Ended {
        data: Vec<u8>,
        left: usize,
    },
    /// The input ran out before the last chunk.
    Incomplete(Vec<u8>),
    Broken,
}

/// Reads `body` as a chunked body arriving `step` bytes at a time.
fn dechunk(body: &[u8], step: usize) -> Outcome {
    let mut decoder = ChunkedBody::default();
    let (mut input, mut data, mut fed) = (Vec::new(), Vec::new(), 0);
    loop {
        match decoder.next(&input) {
            Err(_) => return Outcome::Broken,
            Ok(Piece::Data(range)) => {
                assert!(!range.is_empty() && range.end <= input.len(), "{range:?}");
                data.extend_from_slice(&input[range.clone()]);
                input.drain(..range.end);
            }
            Ok(Piece::Framing(n)) => {
                assert!(n > 0 && n <= input.len(), "framing of {n}");
                input.drain(..n);
            }
            Ok(Piece::End(n)) => {
                assert!(n <= input.len(), "end after {n}");
                assert!(decoder.is_done());
                input.drain(..n);
                return Outcome::Ended {
                    data,
                    left: body.len() - fed + input.len(),
                };
            }
            Ok(Piece::Incomplete) if fed == body.len() => return Outcome::Incomplete(data),
            Ok(Piece::Incomplete) => {
                let more = step.min(body.len() - fed);
                input.extend_from_slice(&body[fed..fed + more]);
                fed += more;
            }
        }
    }
}

/// The head parses or not without panicking, takes no byte beyond its own, and gives a CGI
/// head that starts with `Status:`. Whatever follows, read as a chunked body, gives the same
/// data and the same end whether it arrives at once or a byte at a time (as reads split it).
pub fn http_answer(data: &[u8]) {
    let body = match parse_answer_head(data) {
        Head::Complete(head) => {
            assert!(head.consumed <= data.len());
            assert!(head.cgi_head.starts_with(b"Status: "));
            assert!(!(head.chunked && head.content_length.is_some()));
            &data[head.consumed..]
        }
        Head::Incomplete | Head::Invalid(_) => data,
    };
    let whole = dechunk(body, body.len().max(1));
    let bytewise = dechunk(body, 1);
    if let (Outcome::Incomplete(a), Outcome::Incomplete(b)) = (&whole, &bytewise) {
        // A body cut short gives what it had, split or not.
        assert_eq!(a, b);
        return;
    }
    assert_eq!(whole, bytewise);
}
