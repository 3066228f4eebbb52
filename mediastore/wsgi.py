"""WSGI entry point for gunicorn: ``gunicorn mediastore.wsgi``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediastore.settings")
application = get_wsgi_application()
