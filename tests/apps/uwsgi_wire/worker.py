"""A uwsgi-protocol worker for paddock's tests of the protocol itself (tests/tests/apps/uwsgi_wire.rs).

It serves the listening socket paddock hands it as fd 0, one connection per request as uWSGI
does, on PADDOCK_THREADS threads, and answers by path, some of them wrongly on purpose:

- /vars…: the request's variables and the body's length and SHA-1, as JSON;
- /teapot: 418 with its reason phrase and two Set-Cookie headers;
- /no-length: a body without Content-Length, ended by closing the connection;
- /truncated: Content-Length 100 and only 10 bytes, then the connection closed;
- /garbage: something that is not an HTTP response.

Each answer starts with HTTP/1.1 and names the worker's pid in X-Worker-Pid.
"""

import hashlib
import json
import os
import socket
import struct
import threading


def receive_exactly(conn, size):
    data = b""
    while len(data) < size:
        chunk = conn.recv(min(65536, size - len(data)))
        if not chunk:
            raise ConnectionError("the request ended early")
        data += chunk
    return data


def read_request(conn):
    header = receive_exactly(conn, 4)
    modifier1, size, modifier2 = struct.unpack("<BHB", header)
    assert (modifier1, modifier2) == (0, 0), header
    block = receive_exactly(conn, size)
    variables = {}
    at = 0
    while at < size:
        parts = []
        for _ in range(2):
            (length,) = struct.unpack_from("<H", block, at)
            parts.append(block[at + 2 : at + 2 + length].decode("latin-1"))
            at += 2 + length
        variables[parts[0]] = parts[1]
    body = receive_exactly(conn, int(variables.get("CONTENT_LENGTH") or 0))
    return variables, body


def answer(conn, variables, body):
    path = variables.get("PATH_INFO", "")
    pid = str(os.getpid()).encode()
    if path.startswith("/vars"):
        payload = json.dumps(
            {
                "vars": variables,
                "body_length": len(body),
                "body_sha1": hashlib.sha1(body).hexdigest(),
            }
        ).encode()
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Worker-Pid: " + pid
            + b"\r\nContent-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload
        )
    elif path == "/teapot":
        conn.sendall(
            b"HTTP/1.1 418 I'm a teapot\r\nX-Worker-Pid: " + pid
            + b"\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 5\r\n\r\nshort"
        )
    elif path == "/no-length":
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Worker-Pid: " + pid + b"\r\n\r\n")
        for i in range(3):
            conn.sendall(b"part %d\n" % i)
    elif path == "/truncated":
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nX-Worker-Pid: " + pid + b"\r\nContent-Length: 100\r\n\r\n"
            + b"x" * 10
        )
    else:
        conn.sendall(b"this is not HTTP\r\n\r\n")


def serve(listener):
    while True:
        conn, _ = listener.accept()
        with conn:
            try:
                variables, body = read_request(conn)
            except ConnectionError:
                continue
            answer(conn, variables, body)


def main():
    listener = socket.socket(fileno=0)
    threads = [
        threading.Thread(target=serve, args=(listener,), daemon=True)
        for _ in range(int(os.environ.get("PADDOCK_THREADS", "1")))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main()
