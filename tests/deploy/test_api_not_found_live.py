"""Unknown /api/ paths and methods through gunicorn with debug off answer JSON (issue 33, item 10a).

Regression: ``POST /api/media/x/y/z/unknown`` (a path whose route takes GET, PATCH and DELETE)
answered ninja's plain-text "Method not allowed". The debug-on answers are checked with the test
client (tests/test_api_not_found.py); here the production settings and a real server.
"""

from __future__ import annotations

import pytest

from tests.support.servers import Server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server():
    srv = Server("mediastore-not-found-", 1)
    try:
        yield srv
    finally:
        srv.close()


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/nope", 404),
        ("GET", "/api/", 404),
        ("DELETE", "/api/nope/deeper", 404),
        ("GET", "/api/media/a%0Ab", 404),  # a line break: no route carries it
        ("POST", "/api/media/x/y/z/unknown", 405),
        ("PUT", "/api/hello", 405),
    ],
)
def test_no_such_operation_is_json(server, method, path, status):
    response = server.session.request(method, server.base + path, json={}, timeout=30)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert isinstance(response.json()["detail"], str)
    if status == 405:
        assert method not in response.headers["Allow"] and response.headers["Allow"]
