"""WSGI entry point for gunicorn: ``gunicorn mediastore.wsgi``.

Request bodies are read with deadlines (mediastore/bodies.py), so slow clients cannot hold every
worker thread."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediastore.settings")
application = get_wsgi_application()

from mediastore.bodies import with_body_deadlines  # noqa: E402  (needs the settings configured)

application = with_body_deadlines(application)
