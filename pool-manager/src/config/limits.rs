//! Defaults and checks for the client-facing limits, timeouts and HTTP/2 settings
//! (`[limits]`, `[timeouts]`, `[http2]`). Every default here is listed in docs/frontend.md.

use std::path::PathBuf;
use std::time::Duration;

use std::path::Path;

use protocol::control::{
    AccessLogFormat, AccessLogSpec, Http2Spec, IpNetwork, LimitsSpec, TimeoutsSpec,
};

use super::error::{invalid, Invalid};
use super::raw::{
    RawAccessLog, RawAccessLogFormat, RawClientAddress, RawHttp2, RawLimits, RawTimeouts,
};

pub(super) const DEFAULT_MAX_BODY: u64 = 16 << 20;
pub(super) const DEFAULT_BODY_MEMORY: u64 = 64 << 10;
pub(super) const DEFAULT_MAX_RESPONSE: u64 = 1 << 30;
pub(super) const DEFAULT_RESPONSE_MEMORY: u64 = 1 << 20;
pub(super) const DEFAULT_MAX_CONNECTIONS: usize = 16_384;
/// Off by default: behind a NAT or a load balancer many clients share one address.
pub(super) const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 0;
pub(super) const DEFAULT_MAX_REQUESTS_PER_CONNECTION: u64 = 1000;
pub(super) const DEFAULT_MAX_HEADER_SIZE: u64 = 64 << 10;
pub(super) const DEFAULT_MAX_HEADERS: usize = 100;
pub(super) const DEFAULT_MAX_URI: u64 = 8 << 10;
pub(super) const DEFAULT_REQUEST_BODY_MIN_RATE: u64 = 1 << 10;
pub(super) const DEFAULT_STATIC_CACHE_SIZE: u64 = 64 << 20;
pub(super) const DEFAULT_STATIC_CACHE_MAX_FILE: u64 = 256 << 10;

pub(super) const DEFAULT_TLS_HANDSHAKE: Duration = Duration::from_secs(10);
pub(super) const DEFAULT_REQUEST_HEADER: Duration = Duration::from_secs(30);
pub(super) const DEFAULT_REQUEST_BODY: Duration = Duration::from_secs(60);
pub(super) const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(75);
pub(super) const DEFAULT_SEND: Duration = Duration::from_secs(60);

pub(super) const DEFAULT_H2_MAX_CONCURRENT_STREAMS: u32 = 128;
pub(super) const DEFAULT_H2_MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;
pub(super) const DEFAULT_H2_MAX_LOCAL_ERROR_RESET_STREAMS: usize = 256;

/// The largest CGI head a worker may send; it always stays in memory.
const MIN_RESPONSE_MEMORY: u64 = 64 << 10;
/// hyper refuses a read buffer smaller than this for HTTP/1.1.
const MIN_HEADER_SIZE: u64 = 8 << 10;
const MAX_HEADER_SIZE: u64 = 1 << 20;

pub(super) fn limits(raw: &RawLimits, temp_dir: PathBuf) -> Result<LimitsSpec, Invalid> {
    let max_body = raw.max_body.map_or(DEFAULT_MAX_BODY, |s| s.0);
    let body_memory = raw.body_memory.map_or(DEFAULT_BODY_MEMORY, |s| s.0);
    if body_memory > max_body {
        return Err(invalid(
            &["limits", "body_memory"],
            format!("must not exceed limits.max_body ({max_body} bytes)"),
        ));
    }
    let max_response = raw.max_response.map_or(DEFAULT_MAX_RESPONSE, |s| s.0);
    let response_memory = raw.response_memory.map_or(DEFAULT_RESPONSE_MEMORY, |s| s.0);
    if response_memory < MIN_RESPONSE_MEMORY {
        return Err(invalid(
            &["limits", "response_memory"],
            "must be at least 64KiB (the largest CGI header block is kept in memory)",
        ));
    }
    if response_memory > max_response {
        return Err(invalid(
            &["limits", "response_memory"],
            format!("must not exceed limits.max_response ({max_response} bytes)"),
        ));
    }
    let max_connections = raw.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
    if max_connections == 0 {
        return Err(invalid(
            &["limits", "max_connections"],
            "must be at least 1",
        ));
    }
    let max_header = raw.max_header_size.map_or(DEFAULT_MAX_HEADER_SIZE, |s| s.0);
    if !(MIN_HEADER_SIZE..=MAX_HEADER_SIZE).contains(&max_header) {
        return Err(invalid(
            &["limits", "max_header_size"],
            "must be between 8KiB and 1MiB",
        ));
    }
    let max_headers = raw.max_headers.unwrap_or(DEFAULT_MAX_HEADERS);
    if !(1..=10_000).contains(&max_headers) {
        return Err(invalid(
            &["limits", "max_headers"],
            "must be between 1 and 10000",
        ));
    }
    let max_uri = raw.max_uri.map_or(DEFAULT_MAX_URI, |s| s.0);
    if max_uri < 256 || max_uri > max_header {
        return Err(invalid(
            &["limits", "max_uri"],
            "must be at least 256 bytes and at most limits.max_header_size",
        ));
    }
    let max_requests = raw
        .max_requests_per_connection
        .unwrap_or(DEFAULT_MAX_REQUESTS_PER_CONNECTION);
    if max_requests == 0 {
        return Err(invalid(
            &["limits", "max_requests_per_connection"],
            "must be at least 1",
        ));
    }
    Ok(LimitsSpec {
        max_body_bytes: max_body,
        body_memory_bytes: body_memory,
        max_response_bytes: max_response,
        response_memory_bytes: response_memory,
        temp_dir,
        max_connections,
        max_connections_per_ip: raw
            .max_connections_per_ip
            .unwrap_or(DEFAULT_MAX_CONNECTIONS_PER_IP),
        max_requests_per_connection: max_requests,
        max_header_bytes: max_header as u32,
        max_headers,
        max_uri_bytes: max_uri as usize,
        request_body_min_rate: raw
            .request_body_min_rate
            .map_or(DEFAULT_REQUEST_BODY_MIN_RATE, |s| s.0),
        static_cache_bytes: raw
            .static_cache_size
            .map_or(DEFAULT_STATIC_CACHE_SIZE, |s| s.0),
        static_cache_max_file_bytes: raw
            .static_cache_max_file
            .map_or(DEFAULT_STATIC_CACHE_MAX_FILE, |s| s.0),
    })
}

pub(super) fn timeouts(raw: &RawTimeouts) -> Result<TimeoutsSpec, Invalid> {
    let ms = |key: &str, value: Option<super::units::Duration>, default: Duration| {
        let duration = value.map_or(default, |d| d.0);
        if duration.is_zero() {
            return Err(invalid(&["timeouts", key], "must be longer than zero"));
        }
        Ok(duration.as_millis() as u64)
    };
    Ok(TimeoutsSpec {
        tls_handshake_ms: ms("tls_handshake", raw.tls_handshake, DEFAULT_TLS_HANDSHAKE)?,
        request_header_ms: ms("request_header", raw.request_header, DEFAULT_REQUEST_HEADER)?,
        request_body_ms: ms("request_body", raw.request_body, DEFAULT_REQUEST_BODY)?,
        keepalive_ms: ms("keepalive", raw.keepalive, DEFAULT_KEEPALIVE)?,
        send_ms: ms("send", raw.send, DEFAULT_SEND)?,
    })
}

pub(super) fn http2(raw: &RawHttp2) -> Result<Http2Spec, Invalid> {
    let streams = raw
        .max_concurrent_streams
        .unwrap_or(DEFAULT_H2_MAX_CONCURRENT_STREAMS);
    if streams == 0 {
        return Err(invalid(
            &["http2", "max_concurrent_streams"],
            "must be at least 1",
        ));
    }
    Ok(Http2Spec {
        max_concurrent_streams: streams,
        max_pending_accept_reset_streams: raw
            .max_pending_accept_reset_streams
            .unwrap_or(DEFAULT_H2_MAX_PENDING_ACCEPT_RESET_STREAMS),
        max_local_error_reset_streams: raw
            .max_local_error_reset_streams
            .unwrap_or(DEFAULT_H2_MAX_LOCAL_ERROR_RESET_STREAMS),
    })
}

pub(super) fn access_log(
    raw: Option<&RawAccessLog>,
    base: &Path,
) -> Result<Option<AccessLogSpec>, Invalid> {
    let Some(raw) = raw else { return Ok(None) };
    let format = match raw.format {
        None | Some(RawAccessLogFormat::Combined) => AccessLogFormat::Combined,
        Some(RawAccessLogFormat::Json) => AccessLogFormat::Json,
    };
    let path = if raw.path.as_os_str() == "-" {
        None
    } else {
        let path = base.join(&raw.path);
        if !path.parent().is_some_and(Path::is_dir) {
            return Err(invalid(
                &["access_log", "path"],
                format!("the directory of {} does not exist", path.display()),
            ));
        }
        Some(path)
    };
    Ok(Some(AccessLogSpec { path, format }))
}

pub(super) fn trusted_proxies(raw: &RawClientAddress) -> Result<Vec<IpNetwork>, Invalid> {
    raw.trusted_proxies
        .iter()
        .map(|text| {
            IpNetwork::parse(text).ok_or_else(|| {
                invalid(
                    &["client_address", "trusted_proxies"],
                    format!("{text:?} is not an address or network such as 10.0.0.0/8 or ::1"),
                )
            })
        })
        .collect()
}
