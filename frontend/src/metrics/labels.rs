//! Mapping request facts onto bounded label values.

use http::{Method, StatusCode, Version};

/// The `method` label: the standard methods by name, anything else as `other` (a client can send
/// any token as a method; it must not create new series).
pub(crate) fn method(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// The `status_class` label: `1xx` … `5xx`.
pub(crate) fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The `protocol` label of a connection, from the version of a request on it.
pub(crate) fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_2 => PROTOCOL_HTTP2,
        Version::HTTP_3 => PROTOCOL_HTTP3,
        _ => PROTOCOL_HTTP1,
    }
}

pub(crate) const PROTOCOL_HTTP1: &str = "http1";
pub(crate) const PROTOCOL_HTTP2: &str = "http2";
pub(crate) const PROTOCOL_HTTP3: &str = "http3";
/// A connection whose protocol is not known yet: no request arrived so far (cleartext) or the TLS
/// handshake is still running.
pub(crate) const PROTOCOL_PENDING: &str = "pending";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method(&Method::GET), "GET");
        assert_eq!(method(&Method::from_bytes(b"PROPFIND").unwrap()), "other");
        assert_eq!(method(&Method::from_bytes(b"X-ANYTHING").unwrap()), "other");
    }

    #[test]
    fn status_classes() {
        assert_eq!(status_class(StatusCode::OK), "2xx");
        assert_eq!(status_class(StatusCode::MOVED_PERMANENTLY), "3xx");
        assert_eq!(status_class(StatusCode::NOT_FOUND), "4xx");
        assert_eq!(status_class(StatusCode::GATEWAY_TIMEOUT), "5xx");
        assert_eq!(status_class(StatusCode::SWITCHING_PROTOCOLS), "1xx");
    }
}
