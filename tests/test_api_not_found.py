"""Under /api/ every "no such operation" answer is JSON, with debug on or off (issue 33, item 10a).

Regression: with ``DJANGO_DEBUG=true`` an unknown /api/ path answered Django's technical 404 page
(HTML; ``handler404`` is only called with debug off), and a method a path does not take (``POST
/api/media/{pid}``) answered ninja's plain-text "Method not allowed" with debug on or off. The same
answers through gunicorn with debug off: tests/deploy/test_api_not_found_live.py.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture(params=[False, True], ids=["debug off", "debug on"])
def debug(request, settings) -> bool:
    settings.DEBUG = request.param
    return request.param


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/nope"), ("POST", "/api/nope/deeper"), ("GET", "/api/media/a%0Ab"), ("PUT", "/api/")],
)
def test_an_unknown_api_path_is_a_json_404(api, debug, method, path):
    response = api.request(method, path, {} if method != "GET" else None)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"].startswith("no API operation at '/api/")


def test_an_unknown_api_path_without_a_token_is_the_same_404(anon, debug):
    response = anon.get("/api/nope")
    assert response.status_code == 404 and response.json() == {"detail": "no API operation at '/api/nope'"}


@pytest.mark.parametrize(("method", "path"), [("POST", "/api/media/x/y/z/unknown"), ("DELETE", "/api/hello")])
def test_a_method_a_path_does_not_take_is_a_json_405_with_allow(api, debug, method, path):
    response = api.request(method, path, {} if method == "POST" else None)
    assert response.status_code == 405
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"].startswith(f"{method} is not allowed on '{path}'")
    assert response["Allow"] and method not in response["Allow"]


def test_pages_outside_the_api_keep_django_s_404(anon, settings):
    settings.DEBUG = False
    response = anon.get("/nope")
    assert response.status_code == 404 and not response["Content-Type"].startswith("application/json")


def test_unknown_paths_share_one_metrics_route_label():
    """The catch-all pattern resolves every unknown path; metrics still label them "(unmatched)",
    not by the raw path (one label value per route)."""
    from django.test import RequestFactory
    from django.urls import resolve

    from mediastore.metrics import UNMATCHED, route_of

    for path in ("/api/nope", "/api/"):
        request = RequestFactory().get(path)
        request.resolver_match = resolve(path)
        assert route_of(request) == UNMATCHED
