"""Static files served by gunicorn itself (WhiteNoise), debug off, no nginx in front.

Regression: without nginx, a production server (DJANGO_DEBUG=false) answered 404 for every
/static/ file, so Swagger UI was a blank page and the admin had no style. Now bin/start collects
the files with content-hashed names and gzip variants, and WhiteNoise serves them.
"""

from __future__ import annotations

import gzip
import re

import pytest

from tests.support.processes import fetch

pytestmark = pytest.mark.e2e

HASHED = re.compile(r"\.[0-9a-f]{12}\.(?:css|js)$")
ONE_YEAR = 365 * 24 * 3600
TYPES = {".css": "text/css", ".js": "text/javascript"}


def _static_urls(base: str, page: str) -> list[str]:
    response = fetch(f"{base}{page}", timeout=30)
    assert response.status_code == 200, response.text[:2000]
    urls = re.findall(r'(?:href|src)="(/static/[^"]+\.(?:css|js))"', response.text)
    assert urls, response.text[:2000]
    return urls


def _max_age(response) -> int:
    match = re.search(r"max-age=(\d+)", response.headers.get("Cache-Control", ""))
    return int(match.group(1)) if match else 0


@pytest.mark.parametrize("page", ["/api/docs", "/admin/login/"])
def test_the_pages_static_files_answer_with_their_type(bare_gunicorn, page):
    base = bare_gunicorn["base"]
    urls = _static_urls(base, page)
    if page == "/api/docs":
        names = " ".join(urls)
        assert "swagger-ui-bundle." in names and "swagger-ui." in names and ".css" in names, urls
    else:
        assert any(u.startswith("/static/admin/css/") for u in urls), urls
    for url in urls:
        assert HASHED.search(url), f"{url}: not a content-hashed name (collectstatic's manifest)"
        response = fetch(f"{base}{url}", headers={"Accept-Encoding": "identity"}, timeout=30)
        assert response.status_code == 200, url
        suffix = url[url.rindex(".") :]
        assert response.headers["Content-Type"].split(";")[0] == TYPES[suffix], url
        assert int(response.headers["Content-Length"]) == len(response.content) > 0, url


def test_compressed_variant_and_long_caching_for_hashed_names(bare_gunicorn):
    base = bare_gunicorn["base"]
    bundle = next(u for u in _static_urls(base, "/api/docs") if "swagger-ui-bundle." in u)
    plain = fetch(f"{base}{bundle}", headers={"Accept-Encoding": "identity"}, timeout=30)
    assert "Content-Encoding" not in plain.headers
    assert _max_age(plain) >= ONE_YEAR and "immutable" in plain.headers["Cache-Control"]

    with fetch(f"{base}{bundle}", headers={"Accept-Encoding": "gzip, br"}, stream=True, timeout=30) as packed:
        assert packed.status_code == 200
        assert packed.headers["Content-Encoding"] == "gzip"
        assert "Accept-Encoding" in packed.headers["Vary"]
        assert _max_age(packed) >= ONE_YEAR
        wire = packed.raw.read(decode_content=False)
    assert len(wire) < len(plain.content) / 2
    assert gzip.decompress(wire) == plain.content


def test_unhashed_names_are_served_but_not_cached_for_long(bare_gunicorn):
    """Code that builds a static URL without the manifest (the admin's calendar icons from
    ``__admin_media_prefix__``) still finds the file; it may change at the next deployment, so
    browsers keep it only briefly."""
    base = bare_gunicorn["base"]
    response = fetch(f"{base}/static/admin/img/icon-calendar.svg", timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("image/svg+xml")
    assert 0 < _max_age(response) < ONE_YEAR and "immutable" not in response.headers.get("Cache-Control", "")


def test_a_missing_static_file_is_404(bare_gunicorn):
    assert fetch(f"{bare_gunicorn['base']}/static/ninja/no-such-file.js", timeout=30).status_code == 404


def test_gunicorn_without_collectstatic_serves_the_pages_with_their_files():
    """Issue 33: ``gunicorn mediastore.wsgi`` right after ``pip install`` (no bin/start, so no
    collectstatic) answered a bare 500 "Missing staticfiles manifest entry" for every admin page and
    /api/docs. Now the pages name their files unhashed, gunicorn serves them from the installed apps,
    and the log says once per worker to run collectstatic."""
    import os

    from tests.support.processes import http_ok
    from tests.support.servers import (
        ThrowAwayDatabase,
        make_workdir,
        migrated_site,
        remove_workdir,
        start_app,
    )

    workdir = make_workdir("mediastore-nocollect-")
    database = ThrowAwayDatabase() if os.environ.get("POSTGRES_DB") else None
    try:
        env = migrated_site(workdir, database)
        base = f"http://{env['GUNICORN_BIND']}"
        assert not (workdir / "static").exists() or not any((workdir / "static").iterdir())
        app = start_app(workdir, env, via_start_script=False)
        try:
            app.wait_until(lambda: http_ok(f"{base}/api/health"))
            for page in ("/api/docs", "/admin/login/"):
                urls = _static_urls(base, page)
                assert any(url.endswith(".css") for url in urls), urls
                for url in urls:
                    response = fetch(f"{base}{url}", timeout=30)
                    assert response.status_code == 200, url
                    suffix = url[url.rindex(".") :]
                    assert response.headers["Content-Type"].split(";")[0] == TYPES[suffix], url
        finally:
            app.stop()
        log = app.log()
    finally:
        remove_workdir(workdir)
        if database is not None:
            database.drop()
    assert "Missing staticfiles manifest entry" not in log, log
    assert "manage.py collectstatic" in log, log
