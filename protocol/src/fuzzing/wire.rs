//! Properties of the FastCGI codec and the CGI response-head parser.

use http::header;

use crate::cgi::{parse_response_head, ResponseKind};
use crate::fcgi::{
    decode_record, encode_name_value, encode_record, name_values, Decoded, HEADER_LEN,
    MAX_CONTENT_LEN,
};

/// The largest record on the wire: header, content, 255 bytes of padding.
const MAX_RECORD_LEN: usize = HEADER_LEN + MAX_CONTENT_LEN + 255;

/// Decodes every record of `data`. For each: it used between a header and all of the input;
/// the prefix cut at a data-chosen point asks for more and never for more than the record; and
/// encoding the record then decoding it gives it back. An error must already show in the header.
pub fn record_decoder(data: &[u8]) {
    let split = data.first().map_or(0, |&b| usize::from(b));
    let mut rest = data;
    loop {
        match decode_record(rest) {
            Err(_) => {
                // Malformed input is reported from the header alone, without waiting for a body.
                let header = &rest[..rest.len().min(HEADER_LEN)];
                assert!(
                    decode_record(header).is_err(),
                    "error needs more than the header"
                );
                return;
            }
            Ok(Decoded::NeedMore { at_least }) => {
                assert!(at_least > rest.len() && at_least <= MAX_RECORD_LEN);
                return;
            }
            Ok(Decoded::Record { record, consumed }) => {
                assert!((HEADER_LEN..=rest.len()).contains(&consumed));
                let cut = split % consumed;
                match decode_record(&rest[..cut]) {
                    Ok(Decoded::NeedMore { at_least }) => {
                        assert!(at_least > cut && at_least <= consumed, "prefix {cut}");
                    }
                    other => panic!("prefix {cut} of a {consumed}-byte record gave {other:?}"),
                }
                let mut encoded = Vec::new();
                encode_record(&mut encoded, &record);
                match decode_record(&encoded) {
                    Ok(Decoded::Record {
                        record: again,
                        consumed,
                    }) => {
                        assert_eq!(again, record);
                        assert_eq!(consumed, encoded.len());
                    }
                    other => panic!("re-encoded {record:?} decoded as {other:?}"),
                }
                rest = &rest[consumed..];
            }
        }
    }
}

/// Decodes name-value pairs up to the first error; re-encoding them gives the same pairs, and
/// when the whole input was valid, the canonical encoding is no longer than it.
pub fn name_value_decoder(data: &[u8]) {
    let mut pairs = Vec::new();
    let mut iter = name_values(data);
    let mut failed = false;
    for pair in iter.by_ref() {
        match pair {
            Ok(pair) => pairs.push(pair),
            Err(_) => failed = true,
        }
    }
    assert!(iter.next().is_none(), "iterator must stay finished");
    let mut encoded = Vec::new();
    for (name, value) in &pairs {
        encode_name_value(&mut encoded, name, value);
    }
    let again: Vec<_> = name_values(&encoded)
        .collect::<Result<_, _>>()
        .expect("re-encoded pairs decode");
    assert_eq!(again, pairs);
    if !failed {
        assert!(encoded.len() <= data.len());
    }
}

const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// The first two bytes choose the head-size limit, the rest is a worker's STDOUT. A parsed head
/// has a valid status, no Status or hop-by-hop field, fits the limit, parses the same from its
/// own bytes, and any shorter prefix asks for more.
pub fn response_head(data: &[u8]) {
    let (limit, stdout) = data.split_at(data.len().min(2));
    let mut limit_bytes = [0u8; 2];
    limit_bytes[..limit.len()].copy_from_slice(limit);
    let max_head = 1 + usize::from(u16::from_be_bytes(limit_bytes));
    let (head, len) = match parse_response_head(stdout, max_head) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => {
            assert!(
                stdout.len() < max_head,
                "a full window must give a head or an error"
            );
            return;
        }
        Err(_) => return,
    };
    assert!(len <= stdout.len() && len <= max_head);
    assert!((100..=599).contains(&head.status.as_u16()));
    for (name, value) in &head.headers {
        assert!(name.as_str() != "status" && !HOP_BY_HOP.contains(&name.as_str()));
        assert!(!value
            .as_bytes()
            .iter()
            .any(|b| matches!(b, b'\r' | b'\n' | 0)));
    }
    match &head.kind {
        ResponseKind::LocalRedirect(path) => {
            assert!(path.starts_with('/') && !path.starts_with("//"));
            assert_eq!(head.headers.len(), 1);
        }
        ResponseKind::ClientRedirect => {
            assert!(head.headers.contains_key(header::LOCATION));
            assert!(head.status.is_redirection());
        }
        ResponseKind::Document => {}
    }
    let (again, again_len) = parse_response_head(&stdout[..len], max_head)
        .expect("the head alone parses")
        .expect("the head alone is complete");
    assert_eq!(again_len, len);
    assert_eq!(
        (again.status, &again.reason, &again.headers, &again.kind),
        (head.status, &head.reason, &head.headers, &head.kind)
    );
    let cut = usize::from(data.first().copied().unwrap_or(0)) % len;
    assert!(
        matches!(parse_response_head(&stdout[..cut], max_head), Ok(None)),
        "prefix {cut} of a {len}-byte head"
    );
}
