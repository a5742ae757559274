//! One request's answer as FastCGI records, gathered so that it leaves in as few writes as it can.
//!
//! An answer whose length the application announced (`Content-Length`, which Flask and Django set
//! on every ordinary response) is sent whole, with its END_REQUEST, in one write the moment its
//! last byte is known: the front end is woken once, and the next request can come while the
//! application's `close()` still runs. An answer of unknown length is sent as it comes, each
//! chunk the application yields in its own write (a streamed response must reach the client as
//! it is produced), and ends when the application's iterable does.

use protocol::fcgi::{self, ProtocolStatus, RecordType};

use crate::start_response::Head;

/// Gathered bytes beyond this go out even before the answer is whole, so that a large body of a
/// known length is not held in memory.
const SEND_AT: usize = 256 * 1024;

#[derive(Debug)]
pub(crate) struct Answer {
    id: u16,
    /// Records gathered and not yet written.
    records: Vec<u8>,
    content_length: Option<u64>,
    body_gathered: u64,
    head_gathered: bool,
    /// Some of the answer was written: it can no longer be replaced by an error page.
    written: bool,
    ended: bool,
}

impl Answer {
    /// An answer to request `id`, gathered in `records` (a buffer kept from request to request).
    pub(crate) fn new(id: u16, mut records: Vec<u8>) -> Self {
        records.clear();
        Self {
            id,
            records,
            content_length: None,
            body_gathered: 0,
            head_gathered: false,
            written: false,
            ended: false,
        }
    }

    /// Everything gathered dropped, for an error page in its place (while nothing was written).
    pub(crate) fn restart(&mut self) {
        let records = std::mem::take(&mut self.records);
        *self = Self::new(self.id, records);
    }

    pub(crate) fn head(&mut self, head: &Head) {
        fcgi::encode_stream(&mut self.records, RecordType::Stdout, self.id, &head.bytes);
        self.content_length = head.content_length;
        self.head_gathered = true;
        self.end_if_complete();
    }

    pub(crate) fn has_head(&self) -> bool {
        self.head_gathered
    }

    /// Body bytes; what goes beyond the announced length is dropped (PEP 3333: the server must
    /// not send more than `Content-Length` says).
    pub(crate) fn body(&mut self, bytes: &[u8]) {
        if self.ended {
            return;
        }
        let room = self
            .content_length
            .map_or(u64::MAX, |length| length - self.body_gathered);
        let take = usize::try_from(room).map_or(bytes.len(), |room| room.min(bytes.len()));
        fcgi::encode_stream(
            &mut self.records,
            RecordType::Stdout,
            self.id,
            &bytes[..take],
        );
        self.body_gathered += take as u64;
        self.end_if_complete();
    }

    fn end_if_complete(&mut self) {
        if self.content_length == Some(self.body_gathered) {
            self.end();
        }
    }

    /// The end of the answer: STDOUT's end and END_REQUEST.
    pub(crate) fn end(&mut self) {
        if self.ended {
            return;
        }
        fcgi::encode_stream_end(&mut self.records, RecordType::Stdout, self.id);
        fcgi::encode_end_request(
            &mut self.records,
            self.id,
            0,
            ProtocolStatus::RequestComplete,
        );
        self.ended = true;
    }

    pub(crate) fn is_ended(&self) -> bool {
        self.ended
    }

    /// The records to write now, if the answer is whole, of unknown length, or large; empty
    /// otherwise. Taken records count as written.
    pub(crate) fn ready_bytes(&mut self) -> &[u8] {
        let now = self.ended
            || (self.content_length.is_none() && self.body_gathered > 0)
            || self.records.len() >= SEND_AT;
        if !now || self.records.is_empty() {
            return &[];
        }
        self.written = true;
        &self.records
    }

    /// After a write of [`Answer::ready_bytes`]'s bytes.
    pub(crate) fn sent(&mut self) {
        self.records.clear();
    }

    /// Whether an error page can still take the answer's place (nothing written yet).
    pub(crate) fn can_be_replaced(&self) -> bool {
        !self.written
    }

    /// The buffer back, for the connection's next request.
    pub(crate) fn into_buffer(self) -> Vec<u8> {
        self.records
    }
}

#[cfg(test)]
mod tests {
    use protocol::fcgi::{decode_record, Decoded, Record};

    use super::Answer;
    use crate::start_response::Head;

    /// The records in `bytes`, as (STDOUT content, ended) per record.
    fn records(mut bytes: &[u8]) -> Vec<String> {
        let mut seen = Vec::new();
        while !bytes.is_empty() {
            let Ok(Decoded::Record { record, consumed }) = decode_record(bytes) else {
                panic!("not a whole record");
            };
            seen.push(match record {
                Record::Stdout { content: [], .. } => "end of stdout".into(),
                Record::Stdout { content, .. } => String::from_utf8_lossy(content).into_owned(),
                Record::EndRequest { .. } => "end request".into(),
                other => format!("{other:?}"),
            });
            bytes = &bytes[consumed..];
        }
        seen
    }

    fn head(content_length: Option<u64>) -> Head {
        Head {
            bytes: b"Status: 200 OK\r\n\r\n".to_vec(),
            content_length,
        }
    }

    #[test]
    fn an_answer_of_known_length_goes_whole_with_its_end_once_its_last_byte_is_there() {
        let mut answer = Answer::new(1, Vec::new());
        answer.head(&head(Some(5)));
        answer.body(b"he");
        assert!(answer.ready_bytes().is_empty(), "not whole yet");
        answer.body(b"llo, and more than announced");
        assert_eq!(
            records(answer.ready_bytes()),
            [
                "Status: 200 OK\r\n\r\n",
                "he",
                "llo",
                "end of stdout",
                "end request"
            ]
        );
        answer.sent();
        answer.body(b"late");
        assert!(answer.ready_bytes().is_empty(), "nothing after the end");
        assert!(!answer.can_be_replaced());
    }

    #[test]
    fn an_answer_of_unknown_length_goes_out_chunk_by_chunk() {
        let mut answer = Answer::new(3, Vec::new());
        answer.head(&head(None));
        assert!(
            answer.ready_bytes().is_empty(),
            "the head waits for the first chunk"
        );
        answer.body(b"first");
        assert_eq!(
            records(answer.ready_bytes()),
            ["Status: 200 OK\r\n\r\n", "first"]
        );
        answer.sent();
        answer.end();
        assert_eq!(
            records(answer.ready_bytes()),
            ["end of stdout", "end request"]
        );
    }

    #[test]
    fn an_empty_body_of_length_zero_ends_with_the_head() {
        let mut answer = Answer::new(2, Vec::new());
        answer.head(&head(Some(0)));
        assert!(answer.is_ended());
        assert_eq!(
            records(answer.ready_bytes()),
            ["Status: 200 OK\r\n\r\n", "end of stdout", "end request"]
        );
    }
}
