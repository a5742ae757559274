//! Codec tests: round trips, incremental decoding, padding, splitting and malformed input.

use super::*;

/// Decodes exactly one record that fills `bytes`.
fn decode_one(bytes: &[u8]) -> Record<'_> {
    match decode_record(bytes).expect("valid record") {
        Decoded::Record { record, consumed } => {
            assert_eq!(consumed, bytes.len(), "record should fill the buffer");
            record
        }
        Decoded::NeedMore { at_least } => panic!("incomplete record, needs {at_least}"),
    }
}

/// Decodes every record in `bytes`, asserting that it ends on a record boundary.
fn decode_all(mut bytes: &[u8]) -> Vec<Record<'_>> {
    let mut records = Vec::new();
    while !bytes.is_empty() {
        match decode_record(bytes).expect("valid record") {
            Decoded::Record { record, consumed } => {
                records.push(record);
                bytes = &bytes[consumed..];
            }
            Decoded::NeedMore { at_least } => panic!("trailing partial record, needs {at_least}"),
        }
    }
    records
}

/// Feeds every prefix of `bytes` and checks that only the full buffer yields a record, and that
/// `at_least` never promises more than the record needs.
fn assert_needs_every_byte(bytes: &[u8]) {
    for end in 0..bytes.len() {
        match decode_record(&bytes[..end]) {
            Ok(Decoded::NeedMore { at_least }) => {
                assert!(
                    at_least > end,
                    "prefix {end}: at_least {at_least} makes no progress"
                );
                assert!(
                    at_least <= bytes.len(),
                    "prefix {end}: at_least {at_least} overshoots"
                );
                if end >= HEADER_LEN {
                    assert_eq!(at_least, bytes.len(), "prefix {end}: header known");
                }
            }
            other => panic!("prefix {end} of {}: {other:?}", bytes.len()),
        }
    }
    decode_one(bytes);
}

/// Every record type, with odd content lengths so that padding is exercised.
fn sample_records() -> Vec<Record<'static>> {
    vec![
        Record::BeginRequest {
            request_id: 1,
            role: Role::Responder,
            keep_conn: true,
        },
        Record::BeginRequest {
            request_id: 0xfffe,
            role: Role::Filter,
            keep_conn: false,
        },
        Record::BeginRequest {
            request_id: 7,
            role: Role::Other(0x1234),
            keep_conn: true,
        },
        Record::AbortRequest { request_id: 513 },
        Record::EndRequest {
            request_id: 2,
            app_status: 0xdead_beef,
            protocol_status: ProtocolStatus::RequestComplete,
        },
        Record::EndRequest {
            request_id: 2,
            app_status: 1,
            protocol_status: ProtocolStatus::Overloaded,
        },
        Record::EndRequest {
            request_id: 2,
            app_status: 0,
            protocol_status: ProtocolStatus::Other(200),
        },
        Record::Params {
            request_id: 3,
            content: b"\x0b\x02SERVER_PORT80",
        },
        Record::Params {
            request_id: 3,
            content: b"",
        },
        Record::Stdin {
            request_id: 3,
            content: b"a=1&b=2",
        },
        Record::Stdout {
            request_id: 3,
            content: b"Status: 200\r\n\r\nhello",
        },
        Record::Stderr {
            request_id: 3,
            content: b"PHP Warning",
        },
        Record::Data {
            request_id: 3,
            content: b"12345678",
        },
        Record::GetValues {
            content: b"\x0e\x00FCGI_MAX_CONNS",
        },
        Record::GetValuesResult {
            content: b"\x0e\x0fFCGI_MAX_CONNS",
        },
        Record::UnknownType { record_type: 200 },
        Record::Unrecognised {
            record_type: 42,
            request_id: 0,
            content: b"xyz",
        },
        Record::Unrecognised {
            record_type: 0,
            request_id: 9,
            content: b"",
        },
    ]
}

#[test]
fn record_types_round_trip_through_u8() {
    for byte in 0..=u8::MAX {
        assert_eq!(RecordType::from_u8(byte).as_u8(), byte);
    }
    assert_eq!(RecordType::from_u8(1), RecordType::BeginRequest);
    assert_eq!(RecordType::from_u8(11), RecordType::UnknownType);
    assert_eq!(RecordType::from_u8(12), RecordType::Other(12));
    assert!(RecordType::GetValues.is_management());
    assert!(!RecordType::Stdout.is_management());
    assert!(RecordType::Data.is_stream());
}

#[test]
fn roles_and_statuses_round_trip() {
    for value in [0, 1, 2, 3, 4, u16::MAX] {
        assert_eq!(Role::from_u16(value).as_u16(), value);
    }
    for value in 0..=u8::MAX {
        assert_eq!(ProtocolStatus::from_u8(value).as_u8(), value);
    }
    assert_eq!(ProtocolStatus::from_u8(3), ProtocolStatus::UnknownRole);
    assert_eq!(ProtocolStatus::from_u8(1), ProtocolStatus::CantMpxConn);
}

#[test]
fn every_record_round_trips() {
    for record in sample_records() {
        let mut out = Vec::new();
        encode_record(&mut out, &record);
        assert_eq!(out.len() % 8, 0, "{record:?} is not padded");
        assert_eq!(decode_one(&out), record);
        assert_eq!(decode_one(&out).request_id(), record.request_id());
    }
}

#[test]
fn every_record_decodes_from_every_prefix() {
    for record in sample_records() {
        let mut out = Vec::new();
        encode_record(&mut out, &record);
        assert_needs_every_byte(&out);
    }
}

#[test]
fn concatenated_records_decode_in_order() {
    let records = sample_records();
    let mut out = Vec::new();
    for record in &records {
        encode_record(&mut out, record);
    }
    assert_eq!(decode_all(&out), records);
    // A buffer that ends inside the second record still yields the first.
    let first_len = match decode_record(&out).unwrap() {
        Decoded::Record { consumed, .. } => consumed,
        Decoded::NeedMore { .. } => unreachable!(),
    };
    assert!(matches!(
        decode_record(&out[first_len..first_len + 3]),
        Ok(Decoded::NeedMore { at_least: 8 })
    ));
}

#[test]
fn encoders_write_the_specified_bytes() {
    let mut out = Vec::new();
    encode_begin_request(&mut out, 0x0102, Role::Responder, true);
    assert_eq!(out, [1, 1, 1, 2, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]);

    out.clear();
    encode_abort_request(&mut out, 5);
    assert_eq!(out, [1, 2, 0, 5, 0, 0, 0, 0]);

    out.clear();
    encode_end_request(&mut out, 5, 0x0102_0304, ProtocolStatus::CantMpxConn);
    assert_eq!(out, [1, 3, 0, 5, 0, 8, 0, 0, 1, 2, 3, 4, 1, 0, 0, 0]);

    out.clear();
    encode_stream_end(&mut out, RecordType::Stdin, 5);
    assert_eq!(out, [1, 5, 0, 5, 0, 0, 0, 0]);

    out.clear();
    encode_unknown_type(&mut out, 77);
    assert_eq!(out, [1, 11, 0, 0, 0, 8, 0, 0, 77, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn encoders_append_without_clearing() {
    let mut out = b"keep".to_vec();
    encode_stream(&mut out, RecordType::Stdout, 1, b"x");
    assert_eq!(&out[..4], b"keep");
    assert_eq!(out.len(), 4 + 16);
}

#[test]
fn stream_content_is_padded_to_eight() {
    for len in 1..=17usize {
        let data = vec![b'x'; len];
        let mut out = Vec::new();
        encode_stream(&mut out, RecordType::Stdout, 1, &data);
        let padding = (8 - len % 8) % 8;
        assert_eq!(out.len(), HEADER_LEN + len + padding, "len {len}");
        assert_eq!(usize::from(out[6]), padding);
        assert!(out[HEADER_LEN + len..].iter().all(|&b| b == 0));
        match decode_record(&out).unwrap() {
            Decoded::Record { record, consumed } => {
                assert_eq!(consumed, out.len());
                assert_eq!(
                    record,
                    Record::Stdout {
                        request_id: 1,
                        content: &data
                    }
                );
            }
            Decoded::NeedMore { .. } => panic!("incomplete"),
        }
    }
}

#[test]
fn decoder_accepts_any_padding_from_peers() {
    // Peers may pad however they like (up to 255 bytes), including not at all.
    for padding in [0u8, 3, 255] {
        let mut bytes = vec![1, 6, 0, 1, 0, 2, padding, 0, b'h', b'i'];
        bytes.resize(bytes.len() + usize::from(padding), 0xaa);
        assert_needs_every_byte(&bytes);
        assert_eq!(
            decode_one(&bytes),
            Record::Stdout {
                request_id: 1,
                content: b"hi"
            }
        );
    }
}

#[test]
fn empty_stream_writes_nothing() {
    let mut out = Vec::new();
    encode_stream(&mut out, RecordType::Params, 1, b"");
    assert!(out.is_empty());
}

#[test]
fn stream_of_exactly_max_content_fits_one_record() {
    let data: Vec<u8> = (0..MAX_CONTENT_LEN).map(|i| i as u8).collect();
    let mut out = Vec::new();
    encode_stream(&mut out, RecordType::Stdin, 9, &data);
    assert_eq!(out.len(), HEADER_LEN + MAX_CONTENT_LEN + 1);
    let records = decode_all(&out);
    assert_eq!(
        records,
        [Record::Stdin {
            request_id: 9,
            content: &data
        }]
    );
}

#[test]
fn stream_one_past_max_content_splits_in_two() {
    let data: Vec<u8> = (0..MAX_CONTENT_LEN + 1).map(|i| (i % 251) as u8).collect();
    let mut out = Vec::new();
    encode_stream(&mut out, RecordType::Stdout, 9, &data);
    let records = decode_all(&out);
    assert_eq!(
        records,
        [
            Record::Stdout {
                request_id: 9,
                content: &data[..MAX_CONTENT_LEN]
            },
            Record::Stdout {
                request_id: 9,
                content: &data[MAX_CONTENT_LEN..]
            },
        ]
    );
    assert_eq!(
        out.len(),
        (HEADER_LEN + MAX_CONTENT_LEN + 1) + (HEADER_LEN + 1 + 7)
    );
}

#[test]
fn large_record_reports_its_full_length_once_the_header_is_in() {
    let data = vec![7u8; MAX_CONTENT_LEN];
    let mut out = Vec::new();
    encode_stream(&mut out, RecordType::Stdout, 1, &data);
    for end in [HEADER_LEN, 1000, out.len() - 1] {
        assert!(matches!(
            decode_record(&out[..end]),
            Ok(Decoded::NeedMore { at_least }) if at_least == out.len()
        ));
    }
}

#[test]
fn management_records_round_trip() {
    let mut out = Vec::new();
    encode_get_values(
        &mut out,
        &[values::MAX_CONNS, values::MAX_REQS, values::MPXS_CONNS],
    );
    let Record::GetValues { content } = decode_one(&out) else {
        panic!("not GET_VALUES");
    };
    let names: Vec<_> = name_values(content).map(Result::unwrap).collect();
    assert_eq!(
        names,
        [
            (values::MAX_CONNS, &b""[..]),
            (values::MAX_REQS, &b""[..]),
            (values::MPXS_CONNS, &b""[..]),
        ]
    );

    out.clear();
    let long = vec![b'v'; 300];
    let pairs: [(&[u8], &[u8]); 2] = [(values::MAX_REQS, b"50"), (b"X_LONG", &long)];
    encode_get_values_result(&mut out, &pairs);
    assert_eq!(out.len() % 8, 0);
    assert_needs_every_byte(&out);
    let Record::GetValuesResult { content } = decode_one(&out) else {
        panic!("not GET_VALUES_RESULT");
    };
    let decoded: Vec<_> = name_values(content).map(Result::unwrap).collect();
    assert_eq!(decoded, pairs);

    out.clear();
    encode_get_values(&mut out, &[]);
    assert_eq!(decode_one(&out), Record::GetValues { content: b"" });
}

#[test]
#[should_panic(expected = "does not fit one record")]
fn oversized_get_values_result_panics() {
    let value = vec![0u8; MAX_CONTENT_LEN];
    encode_get_values_result(&mut Vec::new(), &[(b"A", &value)]);
}

#[test]
fn name_value_lengths_switch_form_at_128() {
    for (len, prefix) in [
        (0usize, 1usize),
        (1, 1),
        (127, 1),
        (128, 4),
        (129, 4),
        (70_000, 4),
    ] {
        let name = vec![b'n'; len];
        let value = vec![b'v'; len];
        let mut out = Vec::new();
        encode_name_value(&mut out, &name, &value);
        assert_eq!(out.len(), 2 * prefix + 2 * len, "len {len}");
        if prefix == 1 {
            assert_eq!(usize::from(out[0]), len);
        } else {
            assert_eq!(out[0] & 0x80, 0x80);
            let decoded = u32::from_be_bytes([out[0] & 0x7f, out[1], out[2], out[3]]);
            assert_eq!(decoded as usize, len);
        }
        let pairs: Vec<_> = name_values(&out).collect();
        assert_eq!(pairs, [Ok((&name[..], &value[..]))]);
    }
}

#[test]
fn name_value_mixed_lengths_decode() {
    let long_value = vec![b'x'; 128];
    let mut out = Vec::new();
    encode_name_value(&mut out, b"SHORT", &long_value);
    encode_name_value(&mut out, &long_value, b"");
    encode_name_value(&mut out, b"", b"");
    let pairs: Vec<_> = name_values(&out).map(Result::unwrap).collect();
    assert_eq!(
        pairs,
        [
            (&b"SHORT"[..], &long_value[..]),
            (&long_value[..], &b""[..]),
            (&b""[..], &b""[..]),
        ]
    );
}

#[test]
fn name_value_lengths_helper_matches_full_encoder() {
    let mut a = Vec::new();
    encode_name_value(&mut a, b"HTTP_HOST", &[b'h'; 200]);
    let mut b = Vec::new();
    encode_name_value_lengths(&mut b, 9, 200);
    b.extend_from_slice(b"HTTP_HOST");
    b.extend_from_slice(&[b'h'; 200]);
    assert_eq!(a, b);
}

#[test]
fn truncated_name_values_fail_once() {
    let mut good = Vec::new();
    encode_name_value(&mut good, b"NAME", b"value");
    encode_name_value(&mut good, b"LONG", &[b'v'; 200]);
    // Every strict prefix that cuts the second pair yields the first pair, then one error.
    let first_len = 2 + 4 + 5;
    for end in first_len + 1..good.len() {
        let items: Vec<_> = name_values(&good[..end]).collect();
        assert_eq!(
            items,
            [
                Ok((&b"NAME"[..], &b"value"[..])),
                Err(DecodeError::NameValueTruncated)
            ],
            "prefix {end}"
        );
    }
    // A cut inside the first pair gives only the error.
    for end in 1..first_len {
        let items: Vec<_> = name_values(&good[..end]).collect();
        assert_eq!(
            items,
            [Err(DecodeError::NameValueTruncated)],
            "prefix {end}"
        );
    }
    assert_eq!(name_values(b"").count(), 0);
}

#[test]
fn huge_declared_name_value_length_is_truncation() {
    let bytes = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, b'a'];
    let items: Vec<_> = name_values(&bytes).collect();
    assert_eq!(items.len(), 1);
    assert!(items[0].is_err());
}

/// A raw header followed by `content` and no padding.
fn raw(record_type: u8, request_id: u16, content: &[u8]) -> Vec<u8> {
    let mut bytes = vec![1, record_type];
    bytes.extend_from_slice(&request_id.to_be_bytes());
    bytes.extend_from_slice(&(content.len() as u16).to_be_bytes());
    bytes.extend_from_slice(&[0, 0]);
    bytes.extend_from_slice(content);
    bytes
}

#[test]
fn malformed_records_give_typed_errors() {
    let cases: Vec<(Vec<u8>, DecodeError)> = vec![
        (
            {
                let mut b = raw(6, 1, b"");
                b[0] = 2;
                b
            },
            DecodeError::UnsupportedVersion(2),
        ),
        (
            {
                let mut b = raw(6, 1, b"");
                b[0] = 0;
                b
            },
            DecodeError::UnsupportedVersion(0),
        ),
        (
            raw(1, 1, &[0, 1, 0, 0, 0, 0, 0]),
            DecodeError::BeginRequestBodyLength(7),
        ),
        (raw(1, 1, &[0; 9]), DecodeError::BeginRequestBodyLength(9)),
        (raw(1, 1, b""), DecodeError::BeginRequestBodyLength(0)),
        (raw(3, 1, &[0; 5]), DecodeError::EndRequestBodyLength(5)),
        (raw(3, 1, &[0; 16]), DecodeError::EndRequestBodyLength(16)),
        (raw(2, 1, b"x"), DecodeError::AbortRequestBodyNotEmpty(1)),
        (raw(11, 0, &[0; 1]), DecodeError::UnknownTypeBodyLength(1)),
        (
            raw(9, 4, b""),
            DecodeError::ManagementRecordWithRequestId {
                record_type: 9,
                request_id: 4,
            },
        ),
        (
            raw(10, 1, b""),
            DecodeError::ManagementRecordWithRequestId {
                record_type: 10,
                request_id: 1,
            },
        ),
        (
            raw(11, 2, &[1; 8]),
            DecodeError::ManagementRecordWithRequestId {
                record_type: 11,
                request_id: 2,
            },
        ),
    ];
    for (bytes, expected) in &cases {
        assert_eq!(
            decode_record(bytes).unwrap_err(),
            *expected,
            "input {bytes:?}"
        );
    }
    for record_type in 1..=8u8 {
        let content: &[u8] = if matches!(record_type, 1 | 3) {
            &[1; 8]
        } else {
            b""
        };
        assert_eq!(
            decode_record(&raw(record_type, 0, content)).unwrap_err(),
            DecodeError::RequestRecordWithoutRequestId { record_type },
        );
    }
}

#[test]
fn errors_are_reported_from_the_header_alone() {
    // A BEGIN_REQUEST announcing a 100-byte body fails before the body arrives.
    let mut header = raw(1, 1, b"");
    header[5] = 100;
    assert_eq!(
        decode_record(&header).unwrap_err(),
        DecodeError::BeginRequestBodyLength(100)
    );
    // A wrong version fails on the first byte.
    assert_eq!(
        decode_record(&[9]).unwrap_err(),
        DecodeError::UnsupportedVersion(9)
    );
}

#[test]
fn empty_input_needs_a_header() {
    assert!(matches!(
        decode_record(&[]),
        Ok(Decoded::NeedMore { at_least: 8 })
    ));
}

#[test]
fn begin_request_ignores_reserved_flag_bits() {
    let bytes = raw(1, 1, &[0, 2, 0xfe, 9, 9, 9, 9, 9]);
    assert_eq!(
        decode_one(&bytes),
        Record::BeginRequest {
            request_id: 1,
            role: Role::Authorizer,
            keep_conn: false
        }
    );
}

#[test]
fn stream_filled_in_place_matches_stream_from_a_slice() {
    for len in [
        0,
        1,
        7,
        8,
        9,
        1000,
        MAX_CONTENT_LEN,
        MAX_CONTENT_LEN + 1,
        200_000,
    ] {
        let content: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
        let mut expected = b"before".to_vec();
        encode_stream(&mut expected, RecordType::Params, 3, &content);
        let mut filled = b"before".to_vec();
        encode_stream_with(&mut filled, RecordType::Params, 3, |out| {
            out.extend_from_slice(&content)
        });
        assert_eq!(filled, expected, "{len} bytes");
    }
}

#[test]
fn a_record_sealed_in_place_is_the_record_encode_stream_makes() {
    for len in [0, 1, 7, 8, 9, 1000, MAX_CONTENT_LEN] {
        let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut expected = b"before".to_vec();
        encode_stream(&mut expected, RecordType::Stdout, 9, &content);
        let mut built = b"before".to_vec();
        let header_at = built.len();
        built.resize(header_at + HEADER_LEN, 0xAA);
        built.extend_from_slice(&content);
        seal_stream_record(&mut built, header_at, RecordType::Stdout, 9);
        assert_eq!(built, expected, "{len} bytes");
    }
}

#[test]
#[should_panic(expected = "a record holds at most")]
fn sealing_more_than_one_record_holds_panics() {
    let mut built = vec![0; HEADER_LEN + MAX_CONTENT_LEN + 1];
    seal_stream_record(&mut built, 0, RecordType::Stdout, 1);
}
