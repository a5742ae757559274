//! Name-value pairs, the body format of PARAMS, GET_VALUES and GET_VALUES_RESULT.
//!
//! Each pair is a name length, a value length, then the name and value bytes. A length below 128
//! takes one byte; anything longer takes four, big-endian, with the top bit set as the marker.

use super::DecodeError;

/// Lengths below this fit the one-byte form.
const SHORT_LEN_LIMIT: usize = 128;
/// The four-byte form has 31 bits of length.
const LONG_LEN_MAX: usize = 0x7fff_ffff;
/// Marks a four-byte length.
const LONG_LEN_FLAG: u8 = 0x80;

/// Bytes needed for a length prefix.
const fn prefix_len(len: usize) -> usize {
    if len < SHORT_LEN_LIMIT {
        1
    } else {
        4
    }
}

/// Bytes one encoded pair occupies.
pub(crate) const fn name_value_len(name: &[u8], value: &[u8]) -> usize {
    prefix_len(name.len()) + prefix_len(value.len()) + name.len() + value.len()
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < SHORT_LEN_LIMIT {
        out.push(len as u8);
    } else {
        assert!(
            len <= LONG_LEN_MAX,
            "name-value length {len} exceeds 2^31-1"
        );
        let mut bytes = (len as u32).to_be_bytes();
        bytes[0] |= LONG_LEN_FLAG;
        out.extend_from_slice(&bytes);
    }
}

/// Appends just the two length prefixes of a pair; the caller then appends exactly `name_len`
/// name bytes and `value_len` value bytes. This lets callers write a value assembled from several
/// pieces (a joined header, an escaped string) without building it in a temporary buffer first.
///
/// # Panics
/// If a length exceeds 2^31-1, which the wire format cannot express.
pub fn encode_name_value_lengths(out: &mut Vec<u8>, name_len: usize, value_len: usize) {
    push_len(out, name_len);
    push_len(out, value_len);
}

/// Appends one name-value pair body (1-byte lengths below 128, else 4-byte with the high bit set).
///
/// # Panics
/// If a length exceeds 2^31-1, which the wire format cannot express.
pub fn encode_name_value(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.reserve(name_value_len(name, value));
    encode_name_value_lengths(out, name.len(), value.len());
    out.extend_from_slice(name);
    out.extend_from_slice(value);
}

/// Iterates the name-value pairs of a PARAMS/GET_VALUES content block; yields `Err` once on
/// truncation/overflow and then stops.
///
/// PARAMS is a stream: a pair may straddle two records. Callers concatenate the PARAMS contents up
/// to the empty end record before iterating.
pub fn name_values(content: &[u8]) -> NameValues<'_> {
    NameValues {
        rest: content,
        failed: false,
    }
}

/// Iterator returned by [`name_values`].
#[derive(Debug, Clone)]
pub struct NameValues<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> NameValues<'a> {
    /// Takes one length prefix off the front of `self.rest`.
    fn take_len(&mut self) -> Result<usize, DecodeError> {
        let (&first, tail) = self
            .rest
            .split_first()
            .ok_or(DecodeError::NameValueTruncated)?;
        if first & LONG_LEN_FLAG == 0 {
            self.rest = tail;
            return Ok(usize::from(first));
        }
        let (bytes, tail) = self
            .rest
            .split_first_chunk::<4>()
            .ok_or(DecodeError::NameValueTruncated)?;
        self.rest = tail;
        let len = u32::from_be_bytes(*bytes) & !(u32::from(LONG_LEN_FLAG) << 24);
        usize::try_from(len).map_err(|_| DecodeError::NameValueLengthOverflow)
    }

    fn take_pair(&mut self) -> Result<(&'a [u8], &'a [u8]), DecodeError> {
        let name_len = self.take_len()?;
        let value_len = self.take_len()?;
        let total = name_len
            .checked_add(value_len)
            .ok_or(DecodeError::NameValueLengthOverflow)?;
        if self.rest.len() < total {
            return Err(DecodeError::NameValueTruncated);
        }
        let (name, tail) = self.rest.split_at(name_len);
        let (value, tail) = tail.split_at(value_len);
        self.rest = tail;
        Ok((name, value))
    }
}

impl<'a> Iterator for NameValues<'a> {
    type Item = Result<(&'a [u8], &'a [u8]), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let pair = self.take_pair();
        if pair.is_err() {
            self.failed = true;
        }
        Some(pair)
    }
}

impl std::iter::FusedIterator for NameValues<'_> {}
