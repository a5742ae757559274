"""One HTTP/3 request with aioquic, a QUIC and HTTP/3 implementation independent of the one
paddock serves with: `h3_request.py PORT METHOD PATH [BODY_FILE]`. Prints the response as one JSON
line: status, headers, body length, SHA-1 and (for a small body) the body itself. The server's
certificate is not verified (the test listener's is generated at start)."""

import asyncio
import hashlib
import json
import ssl
import sys

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration


class Client(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.responses = {}
        self.waiting = {}

    def quic_event_received(self, event):
        for h3_event in self.h3.handle_event(event):
            if not isinstance(h3_event, (HeadersReceived, DataReceived)):
                continue
            response = self.responses.setdefault(h3_event.stream_id, {"headers": [], "body": b""})
            if isinstance(h3_event, HeadersReceived):
                response["headers"] += h3_event.headers
            else:
                response["body"] += h3_event.data
            if h3_event.stream_ended and h3_event.stream_id in self.waiting:
                self.waiting.pop(h3_event.stream_id).set_result(response)

    async def request(self, method, authority, path, body):
        stream_id = self._quic.get_next_available_stream_id()
        headers = [
            (b":method", method),
            (b":scheme", b"https"),
            (b":authority", authority),
            (b":path", path),
        ]
        if body:
            headers.append((b"content-type", b"application/octet-stream"))
        self.h3.send_headers(stream_id, headers, end_stream=not body)
        if body:
            self.h3.send_data(stream_id, body, end_stream=True)
        done = asyncio.get_running_loop().create_future()
        self.waiting[stream_id] = done
        self.transmit()
        return await done


async def main():
    port, method, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    body = open(sys.argv[4], "rb").read() if len(sys.argv) > 4 else b""
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN)
    config.verify_mode = ssl.CERT_NONE
    async with connect("127.0.0.1", port, configuration=config, create_protocol=Client) as client:
        authority = f"localhost:{port}".encode()
        response = await asyncio.wait_for(
            client.request(method.encode(), authority, path.encode(), body), 60
        )
    headers = {k.decode(): v.decode() for k, v in response["headers"]}
    data = response["body"]
    print(json.dumps({
        "status": int(headers.pop(":status")),
        "headers": headers,
        "length": len(data),
        "sha1": hashlib.sha1(data).hexdigest(),
        "body": data.decode(errors="replace") if len(data) < 65536 else None,
    }))


asyncio.run(main())
