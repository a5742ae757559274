"""Serves a WSGI application over FastCGI on the socket paddock hands its workers as fd 0.

    python3 fcgi_serve.py MODULE:ATTRIBUTE

Run by a paddock pool (deploy/examples/flask.toml, docs/wsgi-apps.md); it needs flup from the
Python package registry (pip install flup==1.0.3, in a virtual environment).

flup's WSGIServer, run without a bind address, accepts on fd 0 (the FastCGI convention) and gives
each connection a thread of its own from its thread pool. paddock keeps one connection open per
slot, `threads` (PADDOCK_THREADS) of them per worker, and never has more requests in flight.

Two settings of flup's pool matter, and their defaults are wrong for this:
- minSpare: flup counts a thread idle until it has taken its job, so a burst of connections can
  all be queued for threads that each then keep a connection of their own for good, and the rest
  wait forever (seen: 6 of 64 concurrent requests hung until request_timeout with the default of
  one spare). Keeping `threads` spare threads gives every connection paddock may open at once a
  thread.
- maxThreads stays unbounded: flup closes a connection it has no thread for, which would fail a
  request that paddock had every right to send. paddock's slots are the bound.
"""

import importlib
import os
import sys

from flup.server.fcgi import WSGIServer


def load(target):
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute or "application")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: fcgi_serve.py MODULE:ATTRIBUTE")
    # The application's directory is the working directory (the pool's working_directory).
    sys.path.insert(0, ".")
    app = load(sys.argv[1])
    threads = int(os.environ.get("PADDOCK_THREADS", "8"))
    server = WSGIServer(
        app,
        multithreaded=True,
        multiplexed=False,
        minSpare=threads,
        maxSpare=2 * threads,
    )
    # Exits on SIGTERM (paddock's graceful stop) once the accept loop notices it.
    server.run()


if __name__ == "__main__":
    main()
