//! FastCGI 1.0 record codec, sans-IO.
//!
//! The front end speaks FastCGI to its workers over sockets it owns; this module only turns bytes
//! into [`Record`]s and back, so the same code serves the async front end, the tests' mock workers
//! and fuzzing, without any runtime.
//!
//! - [`decode_record`] takes one record from the front of a buffer, borrowing its content. A
//!   partial record is the normal [`Decoded::NeedMore`] outcome, not an error; only bytes that can
//!   never become a valid record give a [`DecodeError`].
//! - The `encode_*` functions append to a caller-owned `Vec<u8>` so a connection can reuse one
//!   write buffer for its whole life.
//! - [`name_values`] and [`encode_name_value`] handle the name-value pair bodies of PARAMS,
//!   GET_VALUES and GET_VALUES_RESULT.

mod decode;
mod encode;
mod error;
mod name_value;
mod record;
mod sequence;
mod usage;

pub use decode::{decode_record, Decoded};
pub use encode::{
    encode_abort_request, encode_begin_request, encode_end_request, encode_get_values,
    encode_get_values_result, encode_record, encode_stream, encode_stream_end, encode_stream_with,
    encode_unknown_type, seal_stream_record,
};
pub use error::DecodeError;
pub use name_value::{encode_name_value, encode_name_value_lengths, name_values, NameValues};
pub use record::{ProtocolStatus, Record, RecordType, Role};
pub use sequence::{ids_apart, sequenced_request_id};
pub use usage::{RequestUsage, USAGE_RECORD_TYPE};

/// The only protocol version that exists; anything else in a header is rejected.
pub const VERSION_1: u8 = 1;
/// Every record starts with a fixed 8-byte header.
pub const HEADER_LEN: usize = 8;
/// Content length is a 16-bit field, so one record carries at most this many content bytes.
pub const MAX_CONTENT_LEN: usize = 65535;
/// The file descriptor on which a FastCGI application expects its listening socket.
pub const LISTENSOCK_FILENO: i32 = 0;

/// Management records (GET_VALUES, GET_VALUES_RESULT, UNKNOWN_TYPE) always carry this request id.
pub const NULL_REQUEST_ID: u16 = 0;

/// The `FCGI_KEEP_CONN` bit of a BEGIN_REQUEST's flags byte.
pub(crate) const FLAG_KEEP_CONN: u8 = 1;

/// Well-known names for GET_VALUES queries.
pub mod values {
    /// Maximum concurrent transport connections the application accepts.
    pub const MAX_CONNS: &[u8] = b"FCGI_MAX_CONNS";
    /// Maximum concurrent requests the application accepts.
    pub const MAX_REQS: &[u8] = b"FCGI_MAX_REQS";
    /// "0" if the application does not multiplex connections, "1" if it does.
    pub const MPXS_CONNS: &[u8] = b"FCGI_MPXS_CONNS";
}

#[cfg(test)]
mod tests;
