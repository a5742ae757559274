"""The WSGI application of the Django test site, for deploy/examples/wsgi/fcgi_serve.py."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testsite.settings")
application = get_wsgi_application()
