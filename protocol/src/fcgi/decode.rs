//! Decoding one record from the front of a byte buffer.

use super::{DecodeError, ProtocolStatus, Record, RecordType, Role};
use super::{FLAG_KEEP_CONN, HEADER_LEN, NULL_REQUEST_ID, VERSION_1};

/// The result of looking at the front of a buffer.
#[derive(Debug)]
pub enum Decoded<'a> {
    /// A whole record; drop `consumed` bytes (header, content and padding) from the buffer.
    Record { record: Record<'a>, consumed: usize },
    /// The buffer holds only part of a record. `at_least` is the total buffer length needed
    /// before another call can make progress: 8 until the header is complete, then the whole
    /// record including padding. Callers can use it to size their next read.
    NeedMore { at_least: usize },
}

/// The fixed-size header, parsed but not yet checked against the record type.
struct Header {
    record_type: RecordType,
    request_id: u16,
    content_len: u16,
    padding_len: u8,
}

impl Header {
    /// Reads the fields after the version byte, which the caller has already checked; the
    /// reserved byte is ignored as the specification requires.
    fn parse(bytes: &[u8; HEADER_LEN]) -> Self {
        Self {
            record_type: RecordType::from_u8(bytes[1]),
            request_id: u16::from_be_bytes([bytes[2], bytes[3]]),
            content_len: u16::from_be_bytes([bytes[4], bytes[5]]),
            padding_len: bytes[6],
        }
    }

    fn total_len(&self) -> usize {
        HEADER_LEN + usize::from(self.content_len) + usize::from(self.padding_len)
    }

    /// Everything that can be checked from the header alone, so a malformed record is rejected
    /// as soon as its header arrives instead of after its body has been buffered.
    fn validate(&self) -> Result<(), DecodeError> {
        let ty = self.record_type;
        let raw_type = ty.as_u8();
        if ty.is_management() {
            if self.request_id != NULL_REQUEST_ID {
                return Err(DecodeError::ManagementRecordWithRequestId {
                    record_type: raw_type,
                    request_id: self.request_id,
                });
            }
        } else if !matches!(ty, RecordType::Other(_)) && self.request_id == NULL_REQUEST_ID {
            return Err(DecodeError::RequestRecordWithoutRequestId {
                record_type: raw_type,
            });
        }
        let len = self.content_len;
        match ty {
            RecordType::BeginRequest if len != 8 => Err(DecodeError::BeginRequestBodyLength(len)),
            RecordType::EndRequest if len != 8 => Err(DecodeError::EndRequestBodyLength(len)),
            RecordType::UnknownType if len != 8 => Err(DecodeError::UnknownTypeBodyLength(len)),
            RecordType::AbortRequest if len != 0 => Err(DecodeError::AbortRequestBodyNotEmpty(len)),
            _ => Ok(()),
        }
    }
}

/// Decodes one record from the front of `input` (which may hold a partial record, or several).
///
/// "Incomplete" is the normal [`Decoded::NeedMore`] outcome, never an error. `consumed` includes
/// padding. The version byte is checked as soon as it arrives and the rest of the header as soon
/// as all 8 bytes are there, so garbage is reported without waiting for a body that never comes.
pub fn decode_record(input: &[u8]) -> Result<Decoded<'_>, DecodeError> {
    if let Some(&version) = input.first() {
        if version != VERSION_1 {
            return Err(DecodeError::UnsupportedVersion(version));
        }
    }
    let Some(header_bytes) = input.first_chunk::<HEADER_LEN>() else {
        return Ok(Decoded::NeedMore {
            at_least: HEADER_LEN,
        });
    };
    let header = Header::parse(header_bytes);
    header.validate()?;
    let total = header.total_len();
    if input.len() < total {
        return Ok(Decoded::NeedMore { at_least: total });
    }
    let content = &input[HEADER_LEN..HEADER_LEN + usize::from(header.content_len)];
    let request_id = header.request_id;
    let record = match header.record_type {
        RecordType::BeginRequest => Record::BeginRequest {
            request_id,
            role: Role::from_u16(u16::from_be_bytes([content[0], content[1]])),
            keep_conn: content[2] & FLAG_KEEP_CONN != 0,
        },
        RecordType::AbortRequest => Record::AbortRequest { request_id },
        RecordType::EndRequest => Record::EndRequest {
            request_id,
            app_status: u32::from_be_bytes([content[0], content[1], content[2], content[3]]),
            protocol_status: ProtocolStatus::from_u8(content[4]),
        },
        RecordType::Params => Record::Params {
            request_id,
            content,
        },
        RecordType::Stdin => Record::Stdin {
            request_id,
            content,
        },
        RecordType::Stdout => Record::Stdout {
            request_id,
            content,
        },
        RecordType::Stderr => Record::Stderr {
            request_id,
            content,
        },
        RecordType::Data => Record::Data {
            request_id,
            content,
        },
        RecordType::GetValues => Record::GetValues { content },
        RecordType::GetValuesResult => Record::GetValuesResult { content },
        RecordType::UnknownType => Record::UnknownType {
            record_type: content[0],
        },
        RecordType::Other(record_type) => Record::Unrecognised {
            record_type,
            request_id,
            content,
        },
    };
    Ok(Decoded::Record {
        record,
        consumed: total,
    })
}
