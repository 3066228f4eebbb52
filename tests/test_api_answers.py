"""Answers the schemathesis run (tests/deploy/test_schemathesis.py) found wrong or undocumented,
pinned here through the Django test client so the fast suite keeps them."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

EXAMPLE_PATH_VALUES = {"{pid}": "m1", "{pk}": "1", "{name}": "local"}


def operations(anon, predicate):
    schema = anon.get("/api/openapi.json").json()
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            if predicate(operation):
                yield method.upper(), path, operation


def concrete(path: str) -> str:
    for template, value in EXAMPLE_PATH_VALUES.items():
        path = path.replace(template, value)
    return path


def test_malformed_json_is_a_documented_400_on_every_json_operation(api, anon):
    """Bug: a body that is not JSON (`-d 'x'` with Content-Type: application/json) answers 400
    "Cannot parse request body", but no operation listed 400, so generated clients and
    schemathesis saw an undocumented status."""
    takes_json = list(
        operations(anon, lambda op: "application/json" in op.get("requestBody", {}).get("content", {}))
    )
    assert len(takes_json) > 10
    for method, path, operation in takes_json:
        response = api.client.generic(
            method,
            concrete(path),
            data=b"not json {",
            content_type="application/json",
            headers={"Authorization": f"Bearer {api.token}"},
        )
        assert response.status_code == 400, (method, path, response.content)
        assert response.json() == {"detail": "Cannot parse request body"}
        documented = operation["responses"]["400"]["content"]["application/json"]["schema"]
        assert documented["properties"]["detail"]["type"] == "string", (method, path)


@pytest.mark.parametrize(
    "method, url",
    [
        ("GET", "/api/media/a%0Ab"),
        ("PUT", "/api/media/a%0Ab/content"),
        ("GET", "/api/no-such-operation"),
    ],
)
def test_an_api_url_no_route_matches_answers_json_404(api, method, url):
    """Bug: a pid with a line break (`/api/media/a%0Ab`) matches no route (the path converter
    stops at line breaks), and Django answered its HTML "Not Found" page where the document
    promises a JSON 404 `{"detail": "..."}`."""
    response = api.request(method, url)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert isinstance(response.json()["detail"], str)


def test_a_url_outside_the_api_still_gets_the_html_404(anon):
    response = anon.client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
