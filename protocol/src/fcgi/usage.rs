//! paddock's one extension to FastCGI: what a request cost its worker.
//!
//! paddock's own PHP worker (`builtin = "php"`) ends each request with a USAGE record, just
//! before END_REQUEST: the CPU time the request took, the most memory its script held, and the
//! worker process's CPU time so far (so that the front end can tell how much CPU a request
//! running now has used, from the process's clock alone). The type, 64, is outside the
//! specification's (1 to 11); no other FastCGI application sends it, and a web server that
//! does not know it may skip a request record of an unknown type.

use super::encode::encode_record;
use super::record::Record;

/// The USAGE record's type byte.
pub const USAGE_RECORD_TYPE: u8 = 64;

/// What one request cost its worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestUsage {
    /// CPU time (user and system) the worker spent on the request, in microseconds.
    pub cpu_us: u64,
    /// The most memory the script held at once (PHP's `memory_get_peak_usage()`), in bytes.
    pub peak_memory_bytes: u64,
    /// The worker process's CPU time since it started, when the request ended, in microseconds.
    pub process_cpu_us: u64,
}

const CONTENT_LEN: usize = 24;

impl RequestUsage {
    /// Appends the USAGE record of request `request_id` to `out`.
    pub fn encode(&self, out: &mut Vec<u8>, request_id: u16) {
        let mut content = [0u8; CONTENT_LEN];
        content[..8].copy_from_slice(&self.cpu_us.to_be_bytes());
        content[8..16].copy_from_slice(&self.peak_memory_bytes.to_be_bytes());
        content[16..].copy_from_slice(&self.process_cpu_us.to_be_bytes());
        encode_record(
            out,
            &Record::Unrecognised {
                record_type: USAGE_RECORD_TYPE,
                request_id,
                content: &content,
            },
        );
    }

    /// The usage a USAGE record's content carries; `None` if it is not one (a later version may
    /// append fields: what follows the known ones is ignored).
    pub fn decode(content: &[u8]) -> Option<Self> {
        let field = |i: usize| -> Option<u64> {
            Some(u64::from_be_bytes(
                content.get(i * 8..i * 8 + 8)?.try_into().ok()?,
            ))
        };
        Some(Self {
            cpu_us: field(0)?,
            peak_memory_bytes: field(1)?,
            process_cpu_us: field(2)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fcgi::{decode_record, Decoded};

    #[test]
    fn a_usage_record_decodes_to_what_was_encoded() {
        let usage = RequestUsage {
            cpu_us: 12_345,
            peak_memory_bytes: 8 << 20,
            process_cpu_us: u64::MAX,
        };
        let mut out = Vec::new();
        usage.encode(&mut out, 1);
        let Ok(Decoded::Record { record, consumed }) = decode_record(&out) else {
            panic!("not a record: {out:?}");
        };
        assert_eq!(consumed, out.len());
        let Record::Unrecognised {
            record_type,
            request_id,
            content,
        } = record
        else {
            panic!("{record:?}");
        };
        assert_eq!((record_type, request_id), (USAGE_RECORD_TYPE, 1));
        assert_eq!(RequestUsage::decode(content), Some(usage));
    }

    #[test]
    fn short_content_is_not_a_usage() {
        assert_eq!(RequestUsage::decode(&[0; 23]), None);
        assert!(RequestUsage::decode(&[0; 32]).is_some());
    }
}
