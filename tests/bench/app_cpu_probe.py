"""The Flask test app wrapped to count the CPU time its own threads spend inside each request
(time.thread_time_ns() around the WSGI call and the body's iteration), so that a stack's CPU per
request can be split into the application's part and the application server's part around it.

    uwsgi ... --chdir tests/bench --module app_cpu_probe:app
    curl http://HOST/__app_cpu    # {"pid": ..., "requests": N, "cpu_ns": T} of the process that answers

Each process counts for itself; ask until every pid has answered (docs/benchmarks.md, "What
stands in the way", item 6).
"""

import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "apps", "flask_app"))

from app import app as flask_app  # noqa: E402

_lock = threading.Lock()
_requests = 0
_cpu_ns = 0


def app(environ, start_response):
    global _requests, _cpu_ns
    if environ.get("PATH_INFO") == "/__app_cpu":
        with _lock:
            body = json.dumps({"pid": os.getpid(), "requests": _requests, "cpu_ns": _cpu_ns})
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body.encode()]
    start = time.thread_time_ns()
    answer = flask_app(environ, start_response)
    try:
        body = b"".join(answer)
    finally:
        if hasattr(answer, "close"):
            answer.close()
    spent = time.thread_time_ns() - start
    with _lock:
        _requests += 1
        _cpu_ns += spent
    return [body]
