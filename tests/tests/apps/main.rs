//! Real Python applications in threaded pools: Debian's Flask and Django served by flup
//! (`deploy/examples/wsgi/fcgi_serve.py`), and Flask also by Debian's uWSGI, in FastCGI mode and
//! over its own uwsgi protocol and HTTP/1.1, behind an application mount, end to end over
//! HTTP/1.1, TLS and HTTP/2; thread safety under 64 clients with the slot accounting checked; faults (a hung
//! thread, a SIGKILLed process, recycling) under load; and the uwsgi protocol's edges against a
//! worker that answers wrongly on purpose (`uwsgi_wire`); a uWSGI server and a gunicorn paddock
//! does not start, as external pools over uwsgi and HTTP (`external_uwsgi`, `external_http`);
//! what HTTP pools add, kept connections (`http_pool`); and requests sent ahead to busy granian
//! workers (`send_ahead`).
//!
//! Each test does nothing, saying why, when Debian's python3-flask or python3-django is missing
//! (CI installs them); flup comes from the package registry into a cached venv (`harness::wsgi`).

mod django_admin;
mod external_http;
mod external_uwsgi;
mod faults;
mod flask_site;
mod http_pool;
mod send_ahead;
mod support;
mod thread_safety;
mod uwsgi_readiness;
mod uwsgi_wire;
mod wsgi_worker;
