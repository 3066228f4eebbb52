"""Swagger UI is served from local static files; the homepage links docs and admin."""

import re

import pytest
from django.contrib.staticfiles import finders

pytestmark = pytest.mark.django_db


def test_swagger_ui_uses_only_local_static_files(anon):
    page = anon.get("/api/docs").content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', page)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    assert any(a.endswith("swagger-ui.css") for a in assets)
    for asset in assets:
        assert asset.startswith("/static/"), asset  # no CDN: it must render without internet
        assert finders.find(asset.removeprefix("/static/")), f"{asset} is not a collected static file"


def test_schema_offers_the_bearer_authorize_button(anon):
    schema = anon.get("/api/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert {"type": "http", "scheme": "bearer"}.items() <= next(iter(schemes.values())).items()


def test_homepage_links_docs_and_admin(anon):
    response = anon.client.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'href="/api/docs"' in page and 'href="/admin/"' in page
