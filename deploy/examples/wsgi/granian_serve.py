"""Serves a WSGI application with granian, over HTTP/1.1, on the socket paddock hands its workers
as fd 0: one process of `threads` Python threads per paddock worker, no granian supervisor.

    python3 granian_serve.py MODULE:ATTRIBUTE

Run by a threaded paddock pool with `protocol = "http"` (deploy/examples/flask-granian.toml,
docs/wsgi-apps.md); it needs granian from the Python package registry
(pip install granian==2.8.7, in a virtual environment made with --system-site-packages so that
Debian's Flask or Django are the ones imported).

granian's command line binds a socket of its own and starts a supervisor that forks its workers;
paddock is the supervisor here and owns the socket. So this runs granian's server class in this
one process with two of its steps replaced: the listening socket is the inherited fd 0 instead of
one it binds, and the check that refuses to run threads as workers on a Python with a GIL is
skipped (that check guards granian's free-threading support, which only decides how its workers
are started: as threads of this process rather than forked processes; one worker makes it moot).
Both steps are private to granian, so the version is pinned, and a granian whose class lacks them
stops this program at once with a message rather than serving wrongly.

The settings that matter behind paddock:
- threads: PADDOCK_THREADS, which paddock sets to the pool's `threads`, so that every slot's kept
  connection has a Python thread to run on (granian's `blocking_threads`);
- idle kept connections: granian's HTTP/1.1 server closes a connection that waits for its next
  request longer than its header timeout (30 s by default). A request paddock sends at that very
  moment would be lost, and a POST is never sent twice, so the timeout is an hour: paddock, not
  the worker, decides when a slot's connection ends (as with uWSGI's --socket-timeout 3600);
- readiness: with NOTIFY_SOCKET set (a pool with `readiness = "notify"`), READY=1 is sent there
  once the application is imported and the socket is granian's, so that paddock hands this
  worker requests only then (systemd's notify protocol, as uWSGI speaks it);
- HTTP/1.1 only, no WebSockets, no access log (paddock's access log has every request).
"""

import os
import socket
import sys

from granian._granian import SocketHolder
from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.server import MTServer

INHERITED_SOCKET = 0
IDLE_CONNECTION_MS = 3_600_000


class InheritedSocketServer(MTServer):
    """granian's in-process server, listening on the socket paddock passed as fd 0."""

    def _init_shared_socket(self):
        self._shd = SocketHolder(INHERITED_SOCKET, True, self.backlog)
        self._sfd = INHERITED_SOCKET
        self._ssp = None

    def _check_gil(self):
        pass

    def serve(self):
        # MTServer.serve only warns that free threading is experimental and refuses options
        # that are not used here; the server's own serve follows.
        super(MTServer, self).serve()


def tell_ready():
    """READY=1 to $NOTIFY_SOCKET, if paddock (or systemd) gave one; '@' is the abstract namespace."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.sendto(b"READY=1", address)


def main():
    if len(sys.argv) != 2 or ":" not in sys.argv[1]:
        sys.exit("usage: granian_serve.py MODULE:ATTRIBUTE")
    for step in ("_init_shared_socket", "_check_gil", "_serve"):
        if not hasattr(MTServer, step):
            sys.exit(f"granian_serve.py: this granian has no MTServer.{step}; install granian==2.8.7")
    threads = int(os.environ.get("PADDOCK_THREADS", "8"))
    server = InheritedSocketServer(
        sys.argv[1],
        interface=Interfaces.WSGI,
        workers=1,
        blocking_threads=threads,
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(header_read_timeout=IDLE_CONNECTION_MS),
        websockets=False,
        log_level="warning",
    )
    # Startup hooks run after the application is imported and the socket taken, just before
    # the worker starts accepting on it.
    server.on_startup(tell_ready)
    server.serve()


if __name__ == "__main__":
    main()
