//! Small allocation-free text helpers for building meta-variables.

use std::fmt::{self, Write as _};
use std::net::IpAddr;

/// Bytes that must never reach a worker inside a variable: CR and LF could forge lines in
/// anything that logs or re-emits the value, and NUL truncates C strings (`/a.php\0.jpg`).
pub fn contains_forbidden(bytes: &[u8]) -> bool {
    if bytes.len() >= 64 {
        return memchr::memchr3(b'\r', b'\n', 0, bytes).is_some();
    }
    // Most values are a few dozen bytes, where memchr's set-up costs more than the search: look
    // at 8 bytes at a time instead, with the classic test for a zero byte in a word (exact: no
    // false positives), applied to the word itself and to it XORed with CR and LF.
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero_byte = |word: u64| word.wrapping_sub(ONES) & !word & HIGHS != 0;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        if has_zero_byte(word)
            | has_zero_byte(word ^ (ONES * u64::from(b'\r')))
            | has_zero_byte(word ^ (ONES * u64::from(b'\n')))
        {
            return true;
        }
    }
    words
        .remainder()
        .iter()
        .any(|&b| b == b'\r' || b == b'\n' || b == 0)
}

/// Length of `bytes` once every forbidden byte is replaced by its three-byte `%XX` escape.
pub(crate) fn escaped_len(bytes: &[u8]) -> usize {
    bytes.len() + 2 * memchr::memchr3_iter(b'\r', b'\n', 0, bytes).count()
}

/// Appends `bytes`, percent-escaping forbidden bytes. Escaping rather than dropping keeps the
/// value recognisable in logs while guaranteeing it names no real file.
pub fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
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
#[derive(Debug)]
pub struct StackText {
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

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn number(value: u64) -> Self {
        let mut text = Self::new();
        text.push_number(value);
        text
    }

    /// Appends the decimal digits of `value` (at most 20: always within capacity), without the
    /// formatting machinery, which costs more than the rest of a variable.
    fn push_number(&mut self, mut value: u64) {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        let digits = &digits[start..];
        self.buf[self.len..self.len + digits.len()].copy_from_slice(digits);
        self.len += digits.len();
    }

    /// The address without brackets or zone; IPv4-mapped IPv6 addresses (what a dual-stack
    /// listener reports for IPv4 clients) are shown as plain IPv4 so allow-lists in
    /// applications match.
    pub fn ip(ip: IpAddr) -> Self {
        let mut text = Self::new();
        match ip.to_canonical() {
            IpAddr::V4(v4) => {
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        text.buf[text.len] = b'.';
                        text.len += 1;
                    }
                    text.push_number(octet.into());
                }
            }
            // The longest IPv6 text form is 45 bytes, within capacity.
            v6 => {
                let _ = write!(text, "{v6}");
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_addresses_read_as_std_writes_them() {
        for n in [0, 7, 10, 65535, 1_000_000, u64::MAX] {
            assert_eq!(StackText::number(n).as_bytes(), n.to_string().as_bytes());
        }
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.200.3.255",
            "::1",
            "2001:db8::8a2e:370:7334",
            "::ffff:192.0.2.128",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let expected = ip.to_canonical().to_string();
            assert_eq!(StackText::ip(ip).as_bytes(), expected.as_bytes());
        }
    }

    #[test]
    fn forbidden_bytes_are_found_in_short_and_long_values() {
        for len in (0..=70).chain([200]) {
            // Every byte value but the three, including the neighbours of each and 0x80+.
            let clean: Vec<u8> = (0..len)
                .map(|i| [1, 9, 11, 12, 14, 0x0e, 0x7f, 0x80, 0x8a, 0x8d, 0xff, b'a'][i % 12])
                .collect();
            assert!(!contains_forbidden(&clean), "len {len}");
            for bad in [b'\r', b'\n', 0] {
                for at in 0..len {
                    let mut value = clean.clone();
                    value[at] = bad;
                    assert!(contains_forbidden(&value), "len {len} at {at}");
                }
            }
        }
    }
}
