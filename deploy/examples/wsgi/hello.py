"""The smallest Flask application, for deploy/examples/flask.toml and flask-uwsgi.toml: a page
and a JSON endpoint."""

import os

from flask import Flask, jsonify

app = Flask(__name__)

if os.environ.get("TRUST_X_FORWARDED") == "1":
    # Behind a pool with protocol = "http" (flask-uwsgi.toml), as behind any reverse proxy: the
    # client's address, the scheme and the mount's prefix come in X-Forwarded-* headers from
    # paddock, the one proxy trusted. Never set it where clients reach the app directly or over
    # FastCGI/uwsgi: they could then choose these headers themselves.
    from werkzeug.middleware.proxy_fix import ProxyFix

    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_prefix=1)


@app.route("/")
def page():
    return (
        "<!doctype html><title>Hello</title>"
        '<link rel="stylesheet" href="/static/style.css"><h1>Hello from Flask</h1>'
    )


@app.route("/api/hello")
def hello():
    return jsonify(hello="world")
