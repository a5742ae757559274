"""The test app as a worker that speaks HTTP runs it (a pool with protocol = "http").

Such a worker sees paddock as any application server sees the reverse proxy in front of it: the
client's address, the scheme and the mount's prefix come in X-Forwarded-For, X-Forwarded-Proto
and X-Forwarded-Prefix, which werkzeug's ProxyFix applies, trusting one proxy (paddock).
"""

from werkzeug.middleware.proxy_fix import ProxyFix

from app import app

app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_prefix=1)
