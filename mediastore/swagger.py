"""Swagger UI at ``/api/docs``: ninja's page and its local copy of Swagger UI (nothing is fetched from
a CDN), with settings for people who use it for an hour and a stylesheet that keeps an opened
operation within a screen or two. ``tests/deploy/test_browser.py`` checks both in Chromium."""

from __future__ import annotations

from ninja.openapi.docs import Swagger

SETTINGS = {
    # The token pasted into Authorize is kept in the browser (localStorage) across reloads, until
    # Logout in the Authorize dialog; without this every reload asked for it again.
    "persistAuthorization": True,
    # Operations are listed closed under their tags; the model trees below them (several screens)
    # are hidden, since every request body and answer shows its example and its schema in place.
    "docExpansion": "list",
    "defaultModelsExpandDepth": -1,
    "defaultModelRendering": "example",
}


class MediastoreSwagger(Swagger):
    """ninja's Swagger page plus ``mediastore/swagger.css`` (see the template)."""

    template = "mediastore/swagger.html"


docs = MediastoreSwagger(settings=SETTINGS)
