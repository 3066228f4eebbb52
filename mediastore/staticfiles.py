"""Static files with or without collectstatic.

``bin/start`` runs collectstatic, which writes every file into STATIC_ROOT under a content-hashed
name (cached by browsers for a year) with gzip and brotli variants, and a manifest that maps each
name to its hashed one. Whoever starts ``gunicorn mediastore.wsgi`` directly after ``pip install``
has no manifest, and Django's manifest storage then raises "Missing staticfiles manifest entry" for
every page that names a static file: a bare 500 for the admin and for Swagger UI. Here, without a
manifest, pages name the files as they are and gunicorn serves them from the installed apps
(uncompressed, cached briefly), and each worker says so in the log at start.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.staticfiles.storage import staticfiles_storage
from whitenoise.middleware import WhiteNoiseMiddleware
from whitenoise.storage import CompressedManifestStaticFilesStorage

log = logging.getLogger(__name__)


class HashedStaticFilesStorage(CompressedManifestStaticFilesStorage):
    """WhiteNoise's manifest storage (collectstatic makes hashed names and compressed variants);
    while STATIC_ROOT has no manifest, a file's URL is its own name instead of an error. A manifest
    that lacks a name (a file added since collectstatic ran) is still the error: that is a
    deployment to finish, not one that never collected."""

    manifest_missing = False

    def read_manifest(self) -> str | None:
        content = super().read_manifest()
        self.manifest_missing = content is None
        return content

    def save_manifest(self) -> None:
        super().save_manifest()
        self.manifest_missing = False

    def stored_name(self, name: str) -> str:
        if self.manifest_missing:
            return name
        return super().stored_name(name)


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise, serving STATIC_ROOT; and, while it has no manifest, the installed apps' files
    under their own names (as WhiteNoise does with debug on)."""

    def __init__(self, get_response=None, settings=settings) -> None:
        super().__init__(get_response, settings)
        if getattr(staticfiles_storage, "manifest_missing", False) and not self.use_finders:
            self.add_files_from_finders()
            log.warning(
                "No staticfiles manifest in STATIC_ROOT (%s): collectstatic has not run there. Serving "
                "static files from the installed apps as they are (not compressed, cached briefly); run "
                "`python manage.py collectstatic` (bin/start does) and restart.",
                settings.STATIC_ROOT,
            )
