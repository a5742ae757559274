//! Encoding records into a caller-owned buffer.
//!
//! Every function appends and never allocates beyond growing `out`, so a connection can keep one
//! write buffer and clear it after each flush.

use super::name_value::{encode_name_value, name_value_len};
use super::{ProtocolStatus, Record, RecordType, Role};
use super::{FLAG_KEEP_CONN, HEADER_LEN, MAX_CONTENT_LEN, NULL_REQUEST_ID, VERSION_1};

/// Padding that brings `content_len` to a multiple of 8, as the specification recommends so
/// that records stay aligned in the peer's buffers.
const fn padding_for(content_len: usize) -> usize {
    (8 - content_len % 8) % 8
}

/// A header. `content_len` must already be within [`MAX_CONTENT_LEN`].
fn header(
    record_type: RecordType,
    request_id: u16,
    content_len: usize,
    padding_len: usize,
) -> [u8; HEADER_LEN] {
    debug_assert!(content_len <= MAX_CONTENT_LEN && padding_len < 256);
    let [id_hi, id_lo] = request_id.to_be_bytes();
    let [len_hi, len_lo] = (content_len as u16).to_be_bytes();
    [
        VERSION_1,
        record_type.as_u8(),
        id_hi,
        id_lo,
        len_hi,
        len_lo,
        padding_len as u8,
        0,
    ]
}

/// Appends a header. `content_len` must already be within [`MAX_CONTENT_LEN`].
fn push_header(
    out: &mut Vec<u8>,
    record_type: RecordType,
    request_id: u16,
    content_len: usize,
    padding_len: usize,
) {
    out.extend_from_slice(&header(record_type, request_id, content_len, padding_len));
}

/// Appends `padding_len` zero bytes.
fn push_padding(out: &mut Vec<u8>, padding_len: usize) {
    out.resize(out.len() + padding_len, 0);
}

/// Appends one complete record with `content`, padded to a multiple of 8.
fn push_record(out: &mut Vec<u8>, record_type: RecordType, request_id: u16, content: &[u8]) {
    let padding = padding_for(content.len());
    out.reserve(HEADER_LEN + content.len() + padding);
    push_header(out, record_type, request_id, content.len(), padding);
    out.extend_from_slice(content);
    push_padding(out, padding);
}

/// Appends a BEGIN_REQUEST. `keep_conn` asks the application to leave the connection open after
/// the request so the pool can reuse it.
pub fn encode_begin_request(out: &mut Vec<u8>, request_id: u16, role: Role, keep_conn: bool) {
    let [role_hi, role_lo] = role.as_u16().to_be_bytes();
    let flags = if keep_conn { FLAG_KEEP_CONN } else { 0 };
    push_record(
        out,
        RecordType::BeginRequest,
        request_id,
        &[role_hi, role_lo, flags, 0, 0, 0, 0, 0],
    );
}

/// Appends an ABORT_REQUEST, which has no body.
pub fn encode_abort_request(out: &mut Vec<u8>, request_id: u16) {
    push_header(out, RecordType::AbortRequest, request_id, 0, 0);
}

/// Appends an END_REQUEST with the application's exit status and the protocol outcome.
pub fn encode_end_request(
    out: &mut Vec<u8>,
    request_id: u16,
    app_status: u32,
    status: ProtocolStatus,
) {
    let [a, b, c, d] = app_status.to_be_bytes();
    push_record(
        out,
        RecordType::EndRequest,
        request_id,
        &[a, b, c, d, status.as_u8(), 0, 0, 0],
    );
}

/// Splits `data` into records of at most 65535 content bytes, padded to a multiple of 8. Writes
/// nothing for empty data, because an empty stream record would end the stream; use
/// [`encode_stream_end`] for that.
pub fn encode_stream(out: &mut Vec<u8>, record_type: RecordType, request_id: u16, data: &[u8]) {
    let records = data.len().div_ceil(MAX_CONTENT_LEN);
    out.reserve(data.len() + records * (HEADER_LEN + 7));
    for chunk in data.chunks(MAX_CONTENT_LEN) {
        push_record(out, record_type, request_id, chunk);
    }
}

/// Like [`encode_stream`] for content that `fill` appends to the buffer it is given, so that it
/// needs no buffer of its own: written in place after a header reserved for it when it fits one
/// record (PARAMS nearly always do), moved into several records otherwise. Writes nothing when
/// `fill` appends nothing.
pub fn encode_stream_with(
    out: &mut Vec<u8>,
    record_type: RecordType,
    request_id: u16,
    fill: impl FnOnce(&mut Vec<u8>),
) {
    let header_at = out.len();
    let content_at = header_at + HEADER_LEN;
    out.resize(content_at, 0);
    fill(out);
    if out.len() - content_at <= MAX_CONTENT_LEN {
        seal_stream_record(out, header_at, record_type, request_id);
    } else {
        let content = out.split_off(content_at);
        out.truncate(header_at);
        encode_stream(out, record_type, request_id, &content);
    }
}

/// Completes a stream record built in place: `out[header_at..]` is [`HEADER_LEN`] reserved bytes
/// followed by the record's content, which runs to the end of `out`. Fills in the header and
/// appends the padding; removes the reserved header when no content followed it. Lets a writer
/// gather content straight into its send buffer, copied once.
///
/// # Panics
/// If the content is longer than [`MAX_CONTENT_LEN`] (the caller bounds what it gathers), or
/// `out` is shorter than `header_at + HEADER_LEN`.
pub fn seal_stream_record(
    out: &mut Vec<u8>,
    header_at: usize,
    record_type: RecordType,
    request_id: u16,
) {
    let content_at = header_at + HEADER_LEN;
    let content_len = out.len() - content_at;
    assert!(
        content_len <= MAX_CONTENT_LEN,
        "a record holds at most {MAX_CONTENT_LEN} bytes"
    );
    if content_len == 0 {
        out.truncate(header_at);
        return;
    }
    let padding = padding_for(content_len);
    out[header_at..content_at].copy_from_slice(&header(
        record_type,
        request_id,
        content_len,
        padding,
    ));
    push_padding(out, padding);
}

/// The empty record that ends a stream (PARAMS, STDIN, STDOUT, STDERR, DATA).
pub fn encode_stream_end(out: &mut Vec<u8>, record_type: RecordType, request_id: u16) {
    push_header(out, record_type, request_id, 0, 0);
}

/// Appends an UNKNOWN_TYPE answering a management record of type `record_type`.
pub fn encode_unknown_type(out: &mut Vec<u8>, record_type: u8) {
    push_record(
        out,
        RecordType::UnknownType,
        NULL_REQUEST_ID,
        &[record_type, 0, 0, 0, 0, 0, 0, 0],
    );
}

/// Appends one management record whose content is a list of name-value pairs, written straight
/// into `out` after a header whose length is computed up front.
///
/// # Panics
/// If the pairs need more than [`MAX_CONTENT_LEN`] bytes: management queries are a handful of
/// short, fixed names, so this is a caller bug rather than something a peer can cause.
fn push_pairs<'p>(
    out: &mut Vec<u8>,
    record_type: RecordType,
    pairs: impl Iterator<Item = (&'p [u8], &'p [u8])> + Clone,
) {
    let content_len: usize = pairs
        .clone()
        .map(|(name, value)| name_value_len(name, value))
        .sum();
    assert!(
        content_len <= MAX_CONTENT_LEN,
        "{record_type:?} content of {content_len} bytes does not fit one record"
    );
    let padding = padding_for(content_len);
    out.reserve(HEADER_LEN + content_len + padding);
    push_header(out, record_type, NULL_REQUEST_ID, content_len, padding);
    for (name, value) in pairs {
        encode_name_value(out, name, value);
    }
    push_padding(out, padding);
}

/// Appends a GET_VALUES asking for `names` (see [`super::values`]).
///
/// # Panics
/// If the encoded names exceed [`MAX_CONTENT_LEN`] bytes.
pub fn encode_get_values(out: &mut Vec<u8>, names: &[&[u8]]) {
    push_pairs(
        out,
        RecordType::GetValues,
        names.iter().map(|name| (*name, &[][..])),
    );
}

/// Appends a GET_VALUES_RESULT carrying `pairs`.
///
/// # Panics
/// If the encoded pairs exceed [`MAX_CONTENT_LEN`] bytes.
pub fn encode_get_values_result(out: &mut Vec<u8>, pairs: &[(&[u8], &[u8])]) {
    push_pairs(
        out,
        RecordType::GetValuesResult,
        pairs.iter().map(|(name, value)| (*name, *value)),
    );
}

/// Appends any [`Record`], the inverse of [`super::decode_record`]; mostly useful for mock peers
/// and tests that want to write what they read.
///
/// A stream record with empty content becomes the stream's end record; longer content is split as
/// by [`encode_stream`].
///
/// # Panics
/// If a GET_VALUES, GET_VALUES_RESULT or unrecognised record's content exceeds
/// [`MAX_CONTENT_LEN`] bytes, since those cannot be split.
pub fn encode_record(out: &mut Vec<u8>, record: &Record<'_>) {
    match *record {
        Record::BeginRequest {
            request_id,
            role,
            keep_conn,
        } => encode_begin_request(out, request_id, role, keep_conn),
        Record::AbortRequest { request_id } => encode_abort_request(out, request_id),
        Record::EndRequest {
            request_id,
            app_status,
            protocol_status,
        } => encode_end_request(out, request_id, app_status, protocol_status),
        Record::Params {
            request_id,
            content,
        }
        | Record::Stdin {
            request_id,
            content,
        }
        | Record::Stdout {
            request_id,
            content,
        }
        | Record::Stderr {
            request_id,
            content,
        }
        | Record::Data {
            request_id,
            content,
        } => {
            let record_type = record.record_type();
            if content.is_empty() {
                encode_stream_end(out, record_type, request_id);
            } else {
                encode_stream(out, record_type, request_id, content);
            }
        }
        Record::GetValues { content }
        | Record::GetValuesResult { content }
        | Record::Unrecognised { content, .. } => {
            assert!(
                content.len() <= MAX_CONTENT_LEN,
                "record content of {} bytes does not fit one record",
                content.len()
            );
            push_record(out, record.record_type(), record.request_id(), content);
        }
        Record::UnknownType { record_type } => encode_unknown_type(out, record_type),
    }
}
