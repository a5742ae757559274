"""A small Flask application for the end-to-end tests (Debian's python3-flask): the pieces a real
application has (a rendered page, a form, a JSON API, uploads, a session cookie, a streamed
response, a slow endpoint), each answering with what a test can check exactly.

Served by deploy/examples/wsgi/fcgi_serve.py or uWSGI in a paddock threaded pool (through
behind_proxy.py when the worker speaks HTTP); several threads run these views at once.
"""

import hashlib
import os
import tempfile
import threading
import time

from flask import (
    Flask,
    Response,
    abort,
    jsonify,
    render_template,
    request,
    session,
    stream_with_context,
)

app = Flask(__name__)
# A fixed key: the test restarts workers and must keep its session valid across them.
app.secret_key = b"paddock-test-only-not-a-secret"

# Shared by the threads of one process: guarded, as a thread-safe application must.
_lock = threading.Lock()
_served = 0
# POST /api/orders appends here, so a test can prove that no POST ran twice.
ORDER_LOG = os.environ.get("ORDER_LOG", "")

# Longest a held request waits for its release file: far beyond any test's patience, but bounded,
# so that a thread of a test that died does not wait forever.
HOLD_LIMIT = 300.0


def _count():
    global _served
    with _lock:
        _served += 1
        return _served


def _wait_for(path):
    deadline = time.monotonic() + HOLD_LIMIT
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)


@app.route("/")
def home():
    visits = session.get("visits", 0) + 1
    session["visits"] = visits
    return render_template("home.html", visits=visits, script_name=request.script_root)


@app.route("/form", methods=["GET", "POST"])
def form():
    if request.method == "POST":
        name = request.form.get("name", "")
        colours = request.form.getlist("colour")
        return render_template("thanks.html", name=name, colours=colours)
    return render_template("form.html")


@app.route("/api/items/<int:item>")
def item(item):
    return jsonify(
        id=item,
        name=f"item {item}",
        pid=os.getpid(),
        thread=threading.get_ident(),
        served=_count(),
    )


@app.route("/api/client")
def client():
    """What the application was told about the request: the client's address, the scheme, where
    it is mounted, and paddock's request id (a variable of its own, or the X-Request-Id header a
    worker that speaks HTTP gets)."""
    return jsonify(
        remote_addr=request.remote_addr,
        scheme=request.scheme,
        script_root=request.script_root,
        path=request.path,
        request_id=request.environ.get("PADDOCK_REQUEST_ID")
        or request.headers.get("X-Request-Id"),
    )


@app.route("/api/echo", methods=["POST"])
def echo():
    data = request.get_json(force=False, silent=False)
    return jsonify(received=data, length=request.content_length)


@app.route("/api/whoami")
def whoami():
    """Echoes the caller's tag after some work of its own, so that a response given to the wrong
    request shows: the tag and its digest would not match the request."""
    tag = request.args.get("tag", "")
    digest = hashlib.sha1(tag.encode()).hexdigest()
    for _ in range(200):
        digest = hashlib.sha1(digest.encode()).hexdigest()
    return jsonify(tag=tag, digest=digest, pid=os.getpid(), cookie=request.cookies.get("who"))


@app.route("/api/orders", methods=["POST"])
def orders():
    order = request.form.get("id", "")
    if ORDER_LOG:
        # One short write with O_APPEND: lines from concurrent threads and processes never mix.
        with open(ORDER_LOG, "a") as log:
            log.write(f"{order} {os.getpid()}\n")
    # With `until`, the order is recorded and the answer waits: a test can kill the process
    # between the two and prove the order is not run a second time.
    until = request.args.get("until")
    if until:
        _wait_for(until)
    return jsonify(order=order, pid=os.getpid())


@app.route("/upload", methods=["POST"])
def upload():
    file = request.files.get("file")
    if file is None:
        abort(400)
    data = file.read()
    return jsonify(
        filename=file.filename,
        size=len(data),
        sha1=hashlib.sha1(data).hexdigest(),
        note=request.form.get("note"),
    )


@app.route("/login", methods=["POST"])
def login():
    session["user"] = request.form["user"]
    response = jsonify(user=session["user"])
    response.set_cookie("theme", "dark", httponly=True, samesite="Lax")
    return response


@app.route("/me")
def me():
    if "user" not in session:
        return jsonify(error="not logged in"), 401
    return jsonify(user=session["user"], theme=request.cookies.get("theme"))


@app.route("/stream")
def stream():
    """Chunks as the generator yields them; with `until`, the last waits for that file, so a test
    can see the first chunks arrive while the response is still being produced."""
    count = int(request.args.get("chunks", "5"))
    until = request.args.get("until")

    def chunks():
        for i in range(count):
            if until and i == count - 1:
                _wait_for(until)
            yield f"chunk {i} of {count}\n"

    return Response(stream_with_context(chunks()), mimetype="text/plain")


@app.route("/slow")
def slow():
    """Deliberately slow: `ms` milliseconds of sleep (a slow query), or until a file exists.

    With `started=DIR`, first leaves a file in DIR: a test counts them to know how many requests
    a thread runs, which the front end's accounting cannot tell (a request it has handed to a
    process may still be on its way there)."""
    started = request.args.get("started")
    if started:
        os.close(tempfile.mkstemp(dir=started)[0])
    until = request.args.get("until")
    if until:
        _wait_for(until)
    else:
        time.sleep(min(int(request.args.get("ms", "100")), 10_000) / 1000)
    return jsonify(pid=os.getpid(), thread=threading.get_ident())


@app.route("/hang")
def hang():
    """A thread that does not come back within any request timeout (until the test releases it or
    its process is killed)."""
    _wait_for(request.args["until"])
    return jsonify(pid=os.getpid())


@app.route("/boom")
def boom():
    raise RuntimeError("a bug in a view")
