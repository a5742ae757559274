//! Human-friendly sizes (`"16MiB"`, `"64k"`, `1048576`) and durations (`"30s"`, `"250ms"`, `60`).
//!
//! Operators copy values from nginx and php-fpm configs, so both the bare-number and the suffixed
//! spellings are accepted. Bare numbers mean bytes and seconds.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// A byte count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

/// A time span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Duration(pub std::time::Duration);

fn split_number(text: &str) -> Option<(u64, &str)> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let number = text[..digits].parse().ok()?;
    Some((number, text[digits..].trim()))
}

/// Parses `"16MiB"`, `"16M"`, `"512k"`, `"100"`. K/M/G are binary multiples, as in nginx.
pub fn parse_size(text: &str) -> Option<u64> {
    let (number, suffix) = split_number(text)?;
    let multiplier: u64 = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(multiplier)
}

/// Parses `"500us"`, `"250ms"`, `"30s"`, `"5m"`, `"1h"`, `"60"` (seconds).
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let (number, suffix) = split_number(text)?;
    let micros: u64 = match suffix {
        "us" | "µs" => 1,
        "ms" => 1_000,
        "" | "s" => 1_000_000,
        "m" | "min" => 60_000_000,
        "h" => 3_600_000_000,
        _ => return None,
    };
    Some(std::time::Duration::from_micros(
        number.checked_mul(micros)?,
    ))
}

struct UnitVisitor {
    what: &'static str,
    parse: fn(&str) -> Option<u64>,
    from_integer: fn(u64) -> u64,
}

impl Visitor<'_> for UnitVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v)
            .map(self.from_integer)
            .map_err(|_| E::custom(format!("expected {}, found a negative number", self.what)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok((self.from_integer)(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        (self.parse)(v).ok_or_else(|| E::custom(format!("expected {}, found {v:?}", self.what)))
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UnitVisitor {
            what: "a size such as 1048576, \"512KiB\" or \"16MiB\"",
            parse: parse_size,
            from_integer: |bytes| bytes,
        })
        .map(Size)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UnitVisitor {
            what: "a duration such as 30, \"30s\", \"250ms\", \"500us\" or \"5m\"",
            parse: |text| parse_duration(text).map(|d| d.as_micros() as u64),
            from_integer: |seconds| seconds.saturating_mul(1_000_000),
        })
        .map(|micros| Duration(std::time::Duration::from_micros(micros)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("64KiB"), Some(65_536));
        assert_eq!(parse_size("16M"), Some(16 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("12 parsecs"), None);
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("99999999999999999999G"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("250ms"),
            Some(std::time::Duration::from_millis(250))
        );
        assert_eq!(
            parse_duration("500us"),
            Some(std::time::Duration::from_micros(500))
        );
        assert_eq!(
            parse_duration("30"),
            Some(std::time::Duration::from_secs(30))
        );
        assert_eq!(
            parse_duration("5m"),
            Some(std::time::Duration::from_secs(300))
        );
        assert_eq!(parse_duration("soon"), None);
    }
}
