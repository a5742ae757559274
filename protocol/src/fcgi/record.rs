//! The typed vocabulary of FastCGI 1.0: record types, roles, protocol statuses and records.

/// The type byte of a record header.
///
/// Unknown values are kept as [`RecordType::Other`] rather than rejected: the protocol requires an
/// application to answer an unknown management record with UNKNOWN_TYPE, which it can only do if
/// decoding such a record succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    BeginRequest,
    AbortRequest,
    EndRequest,
    Params,
    Stdin,
    Stdout,
    Stderr,
    Data,
    GetValues,
    GetValuesResult,
    UnknownType,
    Other(u8),
}

impl RecordType {
    /// Maps a wire byte to a type; never fails.
    pub const fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::BeginRequest,
            2 => Self::AbortRequest,
            3 => Self::EndRequest,
            4 => Self::Params,
            5 => Self::Stdin,
            6 => Self::Stdout,
            7 => Self::Stderr,
            8 => Self::Data,
            9 => Self::GetValues,
            10 => Self::GetValuesResult,
            11 => Self::UnknownType,
            other => Self::Other(other),
        }
    }

    /// The wire byte. `Other(n)` gives `n` back even if `n` is a known type's value.
    pub const fn as_u8(self) -> u8 {
        match self {
            Self::BeginRequest => 1,
            Self::AbortRequest => 2,
            Self::EndRequest => 3,
            Self::Params => 4,
            Self::Stdin => 5,
            Self::Stdout => 6,
            Self::Stderr => 7,
            Self::Data => 8,
            Self::GetValues => 9,
            Self::GetValuesResult => 10,
            Self::UnknownType => 11,
            Self::Other(other) => other,
        }
    }

    /// Management records belong to the connection, not to a request, and use request id 0.
    pub const fn is_management(self) -> bool {
        matches!(
            self,
            Self::GetValues | Self::GetValuesResult | Self::UnknownType
        )
    }

    /// Stream records carry a byte stream split over records and ended by an empty record.
    pub const fn is_stream(self) -> bool {
        matches!(
            self,
            Self::Params | Self::Stdin | Self::Stdout | Self::Stderr | Self::Data
        )
    }
}

/// The role requested by a BEGIN_REQUEST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Responder,
    Authorizer,
    Filter,
    Other(u16),
}

impl Role {
    pub const fn from_u16(value: u16) -> Self {
        match value {
            1 => Self::Responder,
            2 => Self::Authorizer,
            3 => Self::Filter,
            other => Self::Other(other),
        }
    }

    pub const fn as_u16(self) -> u16 {
        match self {
            Self::Responder => 1,
            Self::Authorizer => 2,
            Self::Filter => 3,
            Self::Other(other) => other,
        }
    }
}

/// The protocol-level outcome reported in an END_REQUEST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolStatus {
    RequestComplete,
    CantMpxConn,
    Overloaded,
    UnknownRole,
    Other(u8),
}

impl ProtocolStatus {
    pub const fn from_u8(value: u8) -> Self {
        match value {
            0 => Self::RequestComplete,
            1 => Self::CantMpxConn,
            2 => Self::Overloaded,
            3 => Self::UnknownRole,
            other => Self::Other(other),
        }
    }

    pub const fn as_u8(self) -> u8 {
        match self {
            Self::RequestComplete => 0,
            Self::CantMpxConn => 1,
            Self::Overloaded => 2,
            Self::UnknownRole => 3,
            Self::Other(other) => other,
        }
    }
}

/// One decoded record. Stream and management contents borrow from the input buffer, so decoding
/// never copies payload bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record<'a> {
    BeginRequest {
        request_id: u16,
        role: Role,
        keep_conn: bool,
    },
    AbortRequest {
        request_id: u16,
    },
    EndRequest {
        request_id: u16,
        app_status: u32,
        protocol_status: ProtocolStatus,
    },
    /// An empty `content` ends the stream; the same holds for the other stream records.
    Params {
        request_id: u16,
        content: &'a [u8],
    },
    Stdin {
        request_id: u16,
        content: &'a [u8],
    },
    Stdout {
        request_id: u16,
        content: &'a [u8],
    },
    Stderr {
        request_id: u16,
        content: &'a [u8],
    },
    Data {
        request_id: u16,
        content: &'a [u8],
    },
    /// Name-value pairs with empty values; iterate them with [`super::name_values`].
    GetValues {
        content: &'a [u8],
    },
    /// Name-value pairs; iterate them with [`super::name_values`].
    GetValuesResult {
        content: &'a [u8],
    },
    /// The peer did not understand a management record of type `record_type`.
    UnknownType {
        record_type: u8,
    },
    /// A record whose type this crate does not know. With request id 0 it is a management record
    /// and the receiver should answer with UNKNOWN_TYPE; otherwise it may be ignored.
    Unrecognised {
        record_type: u8,
        request_id: u16,
        content: &'a [u8],
    },
}

impl Record<'_> {
    /// The type this record has on the wire.
    pub const fn record_type(&self) -> RecordType {
        match self {
            Self::BeginRequest { .. } => RecordType::BeginRequest,
            Self::AbortRequest { .. } => RecordType::AbortRequest,
            Self::EndRequest { .. } => RecordType::EndRequest,
            Self::Params { .. } => RecordType::Params,
            Self::Stdin { .. } => RecordType::Stdin,
            Self::Stdout { .. } => RecordType::Stdout,
            Self::Stderr { .. } => RecordType::Stderr,
            Self::Data { .. } => RecordType::Data,
            Self::GetValues { .. } => RecordType::GetValues,
            Self::GetValuesResult { .. } => RecordType::GetValuesResult,
            Self::UnknownType { .. } => RecordType::UnknownType,
            Self::Unrecognised { record_type, .. } => RecordType::Other(*record_type),
        }
    }

    /// The request this record belongs to; 0 for management records.
    pub const fn request_id(&self) -> u16 {
        match self {
            Self::BeginRequest { request_id, .. }
            | Self::AbortRequest { request_id }
            | Self::EndRequest { request_id, .. }
            | Self::Params { request_id, .. }
            | Self::Stdin { request_id, .. }
            | Self::Stdout { request_id, .. }
            | Self::Stderr { request_id, .. }
            | Self::Data { request_id, .. }
            | Self::Unrecognised { request_id, .. } => *request_id,
            Self::GetValues { .. } | Self::GetValuesResult { .. } | Self::UnknownType { .. } => {
                super::NULL_REQUEST_ID
            }
        }
    }
}
