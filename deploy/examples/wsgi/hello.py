"""The smallest Flask application, for deploy/examples/flask.toml: a page and a JSON endpoint."""

from flask import Flask, jsonify

app = Flask(__name__)


@app.route("/")
def page():
    return (
        "<!doctype html><title>Hello</title>"
        '<link rel="stylesheet" href="/static/style.css"><h1>Hello from Flask</h1>'
    )


@app.route("/api/hello")
def hello():
    return jsonify(hello="world")
