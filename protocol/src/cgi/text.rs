//! Small allocation-free text helpers for building meta-variables.

use std::fmt::{self, Write as _};
use std::net::IpAddr;

/// Bytes that must never reach a worker inside a variable: CR and LF could forge lines in
/// anything that logs or re-emits the value, and NUL truncates C strings (`/a.php\0.jpg`).
pub(crate) fn contains_forbidden(bytes: &[u8]) -> bool {
    memchr::memchr3(b'\r', b'\n', 0, bytes).is_some()
}

/// Length of `bytes` once every forbidden byte is replaced by its three-byte `%XX` escape.
pub(crate) fn escaped_len(bytes: &[u8]) -> usize {
    bytes.len() + 2 * memchr::memchr3_iter(b'\r', b'\n', 0, bytes).count()
}

/// Appends `bytes`, percent-escaping forbidden bytes. Escaping rather than dropping keeps the
/// value recognisable in logs while guaranteeing it names no real file.
pub(crate) fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut rest = bytes;
    while let Some(at) = memchr::memchr3(b'\r', b'\n', 0, rest) {
        out.extend_from_slice(&rest[..at]);
        let escape: &[u8] = match rest[at] {
            b'\r' => b"%0D",
            b'\n' => b"%0A",
            _ => b"%00",
        };
        out.extend_from_slice(escape);
        rest = &rest[at + 1..];
    }
    out.extend_from_slice(rest);
}

/// A fixed-capacity text buffer on the stack, big enough for any IP address or integer.
pub(crate) struct StackText {
    buf: [u8; 48],
    len: usize,
}

impl StackText {
    fn new() -> Self {
        Self {
            buf: [0; 48],
            len: 0,
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub(crate) fn number(value: u64) -> Self {
        let mut text = Self::new();
        // Writing to StackText only fails on overflow, and 20 digits always fit.
        let _ = write!(text, "{value}");
        text
    }

    /// The address without brackets or zone; IPv4-mapped IPv6 addresses (what a dual-stack
    /// listener reports for IPv4 clients) are shown as plain IPv4 so allow-lists in
    /// applications match.
    pub(crate) fn ip(ip: IpAddr) -> Self {
        let mut text = Self::new();
        // The longest IPv6 text form is 45 bytes, within capacity.
        let _ = write!(text, "{}", ip.to_canonical());
        text
    }
}

impl fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let slot = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}
