//! The PROXY protocol (v1 text and v2 binary, as HAProxy defines them) on listeners that opt in:
//! a load balancer in front of paddock sends one header naming the real client before any byte of
//! TLS or HTTP. Parsing is the `ppp` crate's; this module only reads exactly the header's bytes
//! from the socket (so nothing of the TLS or HTTP stream is consumed) and maps the result.
//!
//! On such a listener every connection must start with a header: one without it is closed. The
//! header is believed from any peer, so such a listener must be reachable only by the proxy.
//! `LOCAL` (v2 health checks) and `UNKNOWN` (v1) headers keep the socket's peer address.

use std::net::SocketAddr;

use ppp::{v1, v2, HeaderResult};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The v2 signature.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v1 header, CRLF included.
const V1_MAX: usize = 107;
/// The largest v2 header paddock reads (addresses plus a few TLVs).
const V2_MAX: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyHeaderError {
    #[error("reading the PROXY header failed: {0}")]
    Read(#[from] std::io::Error),
    #[error("the connection does not start with a PROXY protocol header")]
    Missing,
    #[error("invalid PROXY protocol header: {0}")]
    Invalid(String),
}

/// Reads the header; returns the client's address, or `None` to keep the socket's peer.
pub(crate) async fn read_header(
    stream: &mut TcpStream,
) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let mut header = vec![0u8; 12];
    stream.read_exact(&mut header).await?;
    if header == V2_SIGNATURE {
        let mut fixed = [0u8; 4];
        stream.read_exact(&mut fixed).await?;
        let len = usize::from(u16::from_be_bytes([fixed[2], fixed[3]]));
        if 16 + len > V2_MAX {
            return Err(ProxyHeaderError::Invalid(format!("{len}-byte v2 header")));
        }
        header.extend_from_slice(&fixed);
        header.resize(16 + len, 0);
        stream.read_exact(&mut header[16..]).await?;
    } else if header.starts_with(b"PROXY ") {
        while !header.ends_with(b"\r\n") {
            if header.len() >= V1_MAX {
                return Err(ProxyHeaderError::Invalid("v1 header too long".into()));
            }
            header.push(stream.read_u8().await?);
        }
    } else {
        return Err(ProxyHeaderError::Missing);
    }
    match HeaderResult::parse(&header) {
        HeaderResult::V1(Ok(parsed)) => Ok(match parsed.addresses {
            v1::Addresses::Tcp4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
            v1::Addresses::Tcp6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
            v1::Addresses::Unknown => None,
        }),
        HeaderResult::V2(Ok(parsed)) => Ok(match (parsed.command, parsed.addresses) {
            (v2::Command::Proxy, v2::Addresses::IPv4(a)) => {
                Some(SocketAddr::from((a.source_address, a.source_port)))
            }
            (v2::Command::Proxy, v2::Addresses::IPv6(a)) => {
                Some(SocketAddr::from((a.source_address, a.source_port)))
            }
            _ => None,
        }),
        HeaderResult::V1(Err(e)) => Err(ProxyHeaderError::Invalid(e.to_string())),
        HeaderResult::V2(Err(e)) => Err(ProxyHeaderError::Invalid(e.to_string())),
    }
}
