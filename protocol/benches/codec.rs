//! Codec benchmarks: encoding a typical request (PARAMS from a browser-like GET/POST, small STDIN)
//! and decoding a typical response (STDOUT of 1 KiB and of 64 KiB), with throughput from criterion
//! and heap allocations per request from a counting global allocator.
//!
//! Run: `cargo bench -p paddock-protocol --bench codec`. The allocation counts are printed first.

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;
use protocol::cgi::{encode_params, parse_response_head, CgiRequest};
use protocol::fcgi::{self, Decoded, ProtocolStatus, Record, RecordType, Role};

/// Counts heap allocations so the bench can report allocations per request.
#[allow(unsafe_code)]
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicU64, Ordering};

    pub(crate) static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

    pub(crate) struct Counting;

    // SAFETY: every call is forwarded unchanged to the system allocator, which upholds the
    // GlobalAlloc contract; the counter has no effect on the memory handed out.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            // SAFETY: the caller's guarantees for `layout` are passed on as they are.
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: `ptr` was allocated by `alloc` above, i.e. by System, with `layout`.
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            // SAFETY: as for dealloc; `new_size` is the caller's, passed on unchanged.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }
}

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

/// Allocations per call of `f`, averaged over many calls after a warm-up.
fn allocations_per_call(mut f: impl FnMut()) -> f64 {
    use std::sync::atomic::Ordering;
    for _ in 0..100 {
        f();
    }
    let calls = 10_000;
    let before = counting::ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..calls {
        f();
    }
    let after = counting::ALLOCATIONS.load(Ordering::Relaxed);
    (after - before) as f64 / f64::from(calls)
}

/// Request headers of a typical browser navigation (Firefox-like), 14 fields.
fn browser_headers() -> HeaderMap {
    let pairs = [
        ("host", "shop.example.test"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        (
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("accept-language", "en-GB,en;q=0.7,de;q=0.3"),
        ("accept-encoding", "gzip, deflate, br, zstd"),
        ("referer", "https://shop.example.test/cart"),
        ("content-type", "application/x-www-form-urlencoded"),
        ("content-length", "512"),
        ("origin", "https://shop.example.test"),
        (
            "cookie",
            "PHPSESSID=0123456789abcdef0123456789abcdef; lang=en; consent=1",
        ),
        ("upgrade-insecure-requests", "1"),
        ("sec-fetch-dest", "document"),
        ("sec-fetch-mode", "navigate"),
        ("sec-fetch-site", "same-origin"),
    ];
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    headers
}

/// What the front end writes for one request: BEGIN_REQUEST, PARAMS, the end of PARAMS, STDIN
/// and its end, into `out` (and the PARAMS body into `params`).
fn encode_request(headers: &HeaderMap, body: &[u8], params: &mut Vec<u8>, out: &mut Vec<u8>) {
    let request = CgiRequest {
        method: "POST",
        request_uri: "/index.php/checkout?step=2&lang=en",
        query_string: "step=2&lang=en",
        document_root: "/srv/www/shop",
        script_name: "/index.php",
        script_filename: Some("/srv/www/shop/index.php"),
        path_info: "/checkout",
        server_name: "shop.example.test",
        server_addr: SocketAddr::from(([192, 0, 2, 10], 443)),
        remote_addr: SocketAddr::from(([198, 51, 100, 7], 53422)),
        https: true,
        server_protocol: "HTTP/2.0",
        redirect_status: 200,
        content_length: body.len() as u64,
        headers,
        extra: &[("PADDOCK_REQUEST_ID", "5f3a9c1e-1234")],
    };
    encode_params(&request, params);
    fcgi::encode_begin_request(out, 1, Role::Responder, true);
    fcgi::encode_stream(out, RecordType::Params, 1, params);
    fcgi::encode_stream_end(out, RecordType::Params, 1);
    fcgi::encode_stream(out, RecordType::Stdin, 1, body);
    fcgi::encode_stream_end(out, RecordType::Stdin, 1);
}

/// A worker's complete answer: STDOUT (CGI head and a body of `body_len` bytes, in records of
/// at most 8 KiB as php-cgi writes them), the end of STDOUT, END_REQUEST.
fn response_bytes(body_len: usize) -> Vec<u8> {
    let mut stdout = b"Status: 200 OK\r\nContent-Type: text/html; charset=UTF-8\r\n\
        Cache-Control: no-store\r\nSet-Cookie: PHPSESSID=0123456789abcdef; path=/; HttpOnly\r\n\
        X-Powered-By: PHP/8.2\r\n\r\n"
        .to_vec();
    stdout.extend((0..body_len).map(|i| b"<p>paddock</p>\n"[i % 15]));
    let mut out = Vec::new();
    for chunk in stdout.chunks(8192) {
        fcgi::encode_stream(&mut out, RecordType::Stdout, 1, chunk);
    }
    fcgi::encode_stream_end(&mut out, RecordType::Stdout, 1);
    fcgi::encode_end_request(&mut out, 1, 0, ProtocolStatus::RequestComplete);
    out
}

/// Decodes every record of `wire` as the front end does, collecting STDOUT into `stdout`;
/// returns the app status.
fn decode_response(wire: &[u8], stdout: &mut Vec<u8>) -> u32 {
    let mut rest = wire;
    loop {
        match fcgi::decode_record(rest).expect("valid response") {
            Decoded::Record { record, consumed } => {
                rest = &rest[consumed..];
                match record {
                    Record::Stdout { content, .. } => stdout.extend_from_slice(content),
                    Record::EndRequest { app_status, .. } => return app_status,
                    _ => {}
                }
            }
            Decoded::NeedMore { .. } => panic!("truncated response"),
        }
    }
}

fn report_allocations(headers: &HeaderMap, body: &[u8]) {
    let (mut params, mut out) = (Vec::new(), Vec::new());
    let reused = allocations_per_call(|| {
        params.clear();
        out.clear();
        encode_request(headers, body, &mut params, &mut out);
        black_box(&out);
    });
    let fresh = allocations_per_call(|| {
        let (mut params, mut out) = (Vec::with_capacity(2048), Vec::new());
        encode_request(headers, body, &mut params, &mut out);
        black_box(&out);
    });
    println!("allocations per request, encode (buffers reused): {reused:.2}");
    println!("allocations per request, encode (fresh buffers): {fresh:.2}");
    for body_len in [1024, 64 * 1024] {
        let wire = response_bytes(body_len);
        let mut stdout = Vec::new();
        let records = allocations_per_call(|| {
            stdout.clear();
            black_box(decode_response(&wire, &mut stdout));
        });
        let with_head = allocations_per_call(|| {
            stdout.clear();
            decode_response(&wire, &mut stdout);
            black_box(parse_response_head(&stdout, 64 * 1024).unwrap());
        });
        println!(
            "allocations per response, decode {} KiB: records {records:.2}, records + CGI head {with_head:.2}",
            body_len / 1024
        );
    }
}

fn benches(c: &mut Criterion) {
    let headers = browser_headers();
    let body: Vec<u8> = (0..512).map(|i| b"a=1&b=two&"[i % 10]).collect();
    report_allocations(&headers, &body);

    let mut group = c.benchmark_group("encode_request");
    let (mut params, mut out) = (Vec::new(), Vec::new());
    encode_request(&headers, &body, &mut params, &mut out);
    group.throughput(Throughput::Bytes(out.len() as u64));
    println!(
        "encoded request: {} bytes ({} of PARAMS)",
        out.len(),
        params.len()
    );
    group.bench_function("params_and_small_stdin", |b| {
        b.iter(|| {
            params.clear();
            out.clear();
            encode_request(black_box(&headers), black_box(&body), &mut params, &mut out);
        })
    });
    group.finish();

    let mut group = c.benchmark_group("decode_response");
    for (name, body_len) in [("stdout_1KiB", 1024), ("stdout_64KiB", 64 * 1024)] {
        let wire = response_bytes(body_len);
        group.throughput(Throughput::Bytes(wire.len() as u64));
        let mut stdout = Vec::new();
        group.bench_function(name, |b| {
            b.iter(|| {
                stdout.clear();
                decode_response(black_box(&wire), &mut stdout);
                black_box(parse_response_head(&stdout, 64 * 1024).unwrap());
            })
        });
    }
    group.finish();
}

criterion_group!(codec, benches);
criterion_main!(codec);
