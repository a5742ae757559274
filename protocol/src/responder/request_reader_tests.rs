//! The one-thread request reader against a peer that writes records the way a web server does,
//! over a real socket pair.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use super::Reader;
use crate::fcgi::{self, Decoded, ProtocolStatus, Record, RecordType, Role};

/// A whole request: BEGIN_REQUEST, its PARAMS in two records, its body in two, both ends.
fn request(out: &mut Vec<u8>, id: u16, path: &[u8], body: &[u8]) {
    fcgi::encode_begin_request(out, id, Role::Responder, true);
    let mut params = Vec::new();
    fcgi::encode_name_value(&mut params, b"REQUEST_METHOD", b"POST");
    fcgi::encode_name_value(&mut params, b"PATH_INFO", path);
    let (first, second) = params.split_at(5);
    fcgi::encode_stream(out, RecordType::Params, id, first);
    fcgi::encode_stream(out, RecordType::Params, id, second);
    fcgi::encode_stream_end(out, RecordType::Params, id);
    let (first, second) = body.split_at(body.len() / 2);
    fcgi::encode_stream(out, RecordType::Stdin, id, first);
    fcgi::encode_stream(out, RecordType::Stdin, id, second);
    fcgi::encode_stream_end(out, RecordType::Stdin, id);
}

/// The reader's next request, which the test has sent.
fn next(reader: &mut Reader, server: &mut UnixStream) -> super::Incoming {
    reader.next_request(server).unwrap().expect("a request")
}

fn path_of(params: &[u8]) -> Vec<u8> {
    fcgi::name_values(params)
        .flatten()
        .find(|(name, _)| *name == b"PATH_INFO")
        .map(|(_, value)| value.to_vec())
        .unwrap_or_default()
}

/// Every record the reader wrote back to the peer.
fn replies(peer: &mut UnixStream) -> Vec<String> {
    peer.set_nonblocking(true).unwrap();
    let mut bytes = Vec::new();
    let _ = peer.read_to_end(&mut bytes);
    let mut seen = Vec::new();
    let mut rest = &bytes[..];
    while let Ok(Decoded::Record { record, consumed }) = fcgi::decode_record(rest) {
        seen.push(match record {
            Record::EndRequest {
                request_id,
                protocol_status,
                ..
            } => format!("end {request_id} {protocol_status:?}"),
            Record::GetValuesResult { content } => fcgi::name_values(content)
                .flatten()
                .map(|(n, v)| {
                    format!(
                        "{}={}",
                        String::from_utf8_lossy(n),
                        String::from_utf8_lossy(v)
                    )
                })
                .collect::<Vec<_>>()
                .join(" "),
            other => format!("{other:?}"),
        });
        rest = &rest[consumed..];
    }
    seen
}

#[test]
fn requests_in_several_records_are_read_whole_and_one_right_behind_is_kept() {
    let (mut server, mut peer) = UnixStream::pair().unwrap();
    let mut wire = Vec::new();
    request(&mut wire, 1, b"/first", b"first body");
    request(&mut wire, 2, b"/second", b"second body");
    peer.write_all(&wire).unwrap();
    drop(peer);

    let mut reader = Reader::serving(4);
    let first = next(&mut reader, &mut server);
    assert_eq!((first.id, first.keep_conn), (1, true));
    assert_eq!(path_of(&first.params), b"/first");
    assert_eq!(first.stdin, b"first body");
    assert!(
        reader.has_buffered(),
        "the second request was read with the first"
    );
    assert_eq!(reader.next_request_id(), Some(2));
    let second = next(&mut reader, &mut server);
    assert_eq!(path_of(&second.params), b"/second");
    assert_eq!(second.stdin, b"second body");
    assert!(!reader.has_buffered());
    assert!(
        reader.next_request(&mut server).unwrap().is_none(),
        "the peer's close between requests is the end"
    );
}

#[test]
fn management_records_and_a_second_request_id_are_answered_on_the_way() {
    let (mut server, mut peer) = UnixStream::pair().unwrap();
    let mut wire = Vec::new();
    fcgi::encode_get_values(&mut wire, &[b"FCGI_MAX_CONNS", b"FCGI_MPXS_CONNS"]);
    fcgi::encode_begin_request(&mut wire, 7, Role::Responder, false);
    // A second request while the first is open: this worker does not multiplex.
    fcgi::encode_begin_request(&mut wire, 8, Role::Responder, false);
    fcgi::encode_stream_end(&mut wire, RecordType::Params, 7);
    fcgi::encode_stream_end(&mut wire, RecordType::Stdin, 7);
    peer.write_all(&wire).unwrap();

    let mut reader = Reader::serving(8);
    let incoming = next(&mut reader, &mut server);
    assert_eq!((incoming.id, incoming.keep_conn), (7, false));
    assert_eq!(
        replies(&mut peer),
        [
            "FCGI_MAX_CONNS=8 FCGI_MPXS_CONNS=0".to_string(),
            format!("end 8 {:?}", ProtocolStatus::CantMpxConn),
        ]
    );
}

#[test]
fn a_request_aborted_before_it_ran_is_ended_and_the_next_one_read() {
    let (mut server, mut peer) = UnixStream::pair().unwrap();
    let mut wire = Vec::new();
    fcgi::encode_begin_request(&mut wire, 3, Role::Responder, true);
    fcgi::encode_abort_request(&mut wire, 3);
    request(&mut wire, 4, b"/after", b"xy");
    peer.write_all(&wire).unwrap();

    let mut reader = Reader::default();
    let incoming = next(&mut reader, &mut server);
    assert_eq!(incoming.id, 4);
    assert_eq!(
        replies(&mut peer),
        [format!("end 3 {:?}", ProtocolStatus::RequestComplete)]
    );
}
