"""A bare WSGI application (no framework) that uses every corner of PEP 3333 and breaks its rules
on purpose, for the tests of paddock's own WSGI worker (tests/tests/apps/wsgi_worker.rs)."""

import hashlib
import json
import os
import sys

BIG = bytes(i * 7 % 251 for i in range(2 * 1024 * 1024))


def text(start_response, body, status="200 OK", headers=()):
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))] + list(headers))
    return [body]


class Closing:
    """An iterable whose close() leaves a mark, as PEP 3333 requires servers to call it."""

    def __init__(self, mark):
        self.mark = mark

    def __iter__(self):
        yield b"closing "
        yield b"body"

    def close(self):
        with open(self.mark, "w") as f:
            f.write("closed")


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/environ":
        body = environ["wsgi.input"].read()
        seen = {
            key: environ.get(key)
            for key in (
                "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE",
                "CONTENT_LENGTH", "REMOTE_ADDR", "SERVER_PROTOCOL", "HTTP_X_TEST",
                "wsgi.url_scheme", "wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once",
                "wsgi.input_terminated",
            )
        }
        seen["wsgi.version"] = list(environ["wsgi.version"])
        seen["body"] = body.decode("latin-1")
        seen["more"] = environ["wsgi.input"].read().decode()
        seen["errors_is_stderr"] = environ["wsgi.errors"] is sys.stderr
        seen["filesystem_encoding"] = sys.getfilesystemencoding()
        return text(start_response, json.dumps(seen).encode())
    if path == "/extensions":
        # Modules built as shared objects that are not linked against libpython: they load only
        # if the worker gives them the interpreter's symbols (paddock-wsgi links libpython in).
        loaded = {}
        for name in ("_json", "_hashlib", "_ssl", "_decimal", "_ctypes", "_sqlite3", "markupsafe._speedups"):
            try:
                module = __import__(name, fromlist=["_"])
                loaded[name] = getattr(module, "__file__", "") or ""
            except ImportError as error:
                loaded[name] = f"ImportError: {error}"
        loaded["sha256"] = hashlib.sha256(b"paddock").hexdigest()
        return text(start_response, json.dumps(loaded).encode())
    if path == "/raise-before":
        raise RuntimeError("raised before start_response")
    if path == "/no-start":
        return [b"a body without a head"]
    if path == "/str-body":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["a str where bytes belong"]
    if path == "/raise-midstream":
        def chunks():
            yield b"first\n"
            raise RuntimeError("raised after the first chunk")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return chunks()
    if path == "/write-callable":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"hello ")
        write(b"world")
        return [b"!"]
    if path == "/exc-info":
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("changed my mind")
        except ValueError:
            return text(
                lambda status, headers: start_response(status, headers, sys.exc_info()),
                b"replaced",
                "503 Service Unavailable",
            )
    if path == "/injection":
        return text(start_response, b"never", headers=[("X-Bad", "a\r\nSet-Cookie: evil=1")])
    if path == "/bad-status":
        return text(start_response, b"never", status="OK")
    if path == "/big":
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(BIG))),
                                  ("X-Sha1", hashlib.sha1(BIG).hexdigest())])
        return [BIG[i:i + 100000] for i in range(0, len(BIG), 100000)]
    if path == "/length-over":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"0123456789", b"more"]
    if path == "/closing":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Closing(environ["QUERY_STRING"].split("=", 1)[1])
    if path == "/pid":
        return text(start_response, str(os.getpid()).encode())
    return text(start_response, b"no such edge", status="404 Not Found")
