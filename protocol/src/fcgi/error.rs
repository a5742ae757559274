//! Why bytes from a peer could not be a valid FastCGI record.

/// A record, or a name-value block, that violates FastCGI 1.0.
///
/// A connection that produced one of these is out of sync or talking to something that is not a
/// FastCGI peer; the caller should close it rather than try to resynchronise.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The header's version byte is not [`super::VERSION_1`].
    #[error("unsupported FastCGI version {0}")]
    UnsupportedVersion(u8),
    /// A BEGIN_REQUEST body must be exactly 8 bytes.
    #[error("BEGIN_REQUEST body is {0} bytes, expected 8")]
    BeginRequestBodyLength(u16),
    /// An END_REQUEST body must be exactly 8 bytes.
    #[error("END_REQUEST body is {0} bytes, expected 8")]
    EndRequestBodyLength(u16),
    /// An ABORT_REQUEST has no body.
    #[error("ABORT_REQUEST carries a {0}-byte body, expected none")]
    AbortRequestBodyNotEmpty(u16),
    /// An UNKNOWN_TYPE body must be exactly 8 bytes.
    #[error("UNKNOWN_TYPE body is {0} bytes, expected 8")]
    UnknownTypeBodyLength(u16),
    /// GET_VALUES, GET_VALUES_RESULT and UNKNOWN_TYPE belong to the connection and must use
    /// request id 0.
    #[error("management record type {record_type} carries request id {request_id}, expected 0")]
    ManagementRecordWithRequestId { record_type: u8, request_id: u16 },
    /// Request id 0 is reserved for management records; a request record cannot use it.
    #[error("request record type {record_type} carries the management request id 0")]
    RequestRecordWithoutRequestId { record_type: u8 },
    /// A name-value pair's length prefix or bytes run past the end of the content block.
    #[error("name-value pair truncated")]
    NameValueTruncated,
    /// A name-value pair's lengths add up to more than this platform can address.
    #[error("name-value pair length overflows")]
    NameValueLengthOverflow,
}
