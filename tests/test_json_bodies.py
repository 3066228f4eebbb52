"""Hostile JSON bodies are a 4xx on every JSON endpoint, never a 500 (mediastore/parser.py,
mediastore/middleware.py), and JSON endpoints refuse bodies of other media types with 415."""

from __future__ import annotations

import json

import pytest

from media.models import Media
from tests.conftest import error_message, media_body

pytestmark = pytest.mark.django_db


def send(api, method: str, path: str, body: bytes | str, content_type: str | None = "application/json"):
    headers = {"Authorization": f"Bearer {api.token}"}
    if content_type is None:  # Django's test client would otherwise name one
        return api.client.generic(method, path, data=body, headers=headers, CONTENT_TYPE="")
    return api.client.generic(method, path, data=body, content_type=content_type, headers=headers)


def create_text(metadata_json: str, pid: str = "m1") -> str:
    return json.dumps(media_body(pid)).replace('"metadata": {}', f'"metadata": {metadata_json}')


# --- numbers that overflow --------------------------------------------------------------------


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1.5e309", "123456789e999"])
def test_numbers_that_overflow_to_infinity_are_422(api, id_types, number):
    """Regression: `{"x": 1e400}` parsed to float('inf'); PostgreSQL refused it (500) and SQLite's
    JSON check failed as a misleading 409 "created concurrently"."""
    response = send(api, "POST", "/api/media", create_text(f'{{"x": {number}}}'))
    error = error_message(response)
    assert "too large" in error and number in error and "at 'metadata.x'" in error
    assert not Media.objects.exists()


def test_overflowing_number_error_names_where_it_is(api, id_types):
    body = "[" + json.dumps(media_body("m1")) + "," + create_text('{"a": [1, 2, {"b": 2e308}]}', "m2") + "]"
    response = send(api, "POST", "/api/media/create", body)
    assert "number 2e308 at '[1].metadata.a[2].b' is too large" in error_message(response)


def test_overflowing_numbers_are_422_in_updates_and_searches(api, id_types):
    api.post("/api/media", media_body("m1"))
    response = send(api, "PUT", "/api/media/update/metadata", '[{"pid": "m1", "data": {"x": 1e400}}]')
    assert response.status_code == 422
    response = send(
        api, "POST", "/api/media/search", '{"metadata": [{"path": "x", "op": "gt", "value": 1e400}]}'
    )
    assert response.status_code == 422
    assert Media.objects.get(pid="m1").metadata == {}


def test_large_finite_numbers_still_pass(api, id_types):
    response = send(api, "POST", "/api/media", create_text('{"x": 1.7976931348623157e308, "y": 1e-400}'))
    assert response.status_code == 200, response.content
    assert response.json()["metadata"] == {"x": 1.7976931348623157e308, "y": 0.0}


# --- duplicate keys ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "key"),
    [
        ("POST", "/api/media", '{"pid": "a", "pid": "b", "pid_type": "local", "store_config": {}}', "pid"),
        ("POST", "/api/media", create_text('{"k": 1, "z": {"deep": 1, "deep": 2}}'), "deep"),
        ("POST", "/api/identifier", '{"name": "t", "pattern": "a", "pattern": ".*"}', "pattern"),
        ("PUT", "/api/media/update/metadata", '[{"pid": "m", "data": {}, "data": {"x": 1}}]', "data"),
        ("POST", "/api/media/search", '{"tags": ["a"], "tags": ["b"]}', "tags"),
        ("POST", "/api/login", '{"username": "alice", "password": "x", "password": "y"}', "password"),
    ],
)
def test_duplicate_keys_are_422_naming_the_key(api, id_types, method, path, body, key):
    """Regression: a repeated key silently kept its last value (`{"pid": "a", "pid": "b"}` created
    `b`), so what a client meant was a guess."""
    response = send(api, method, path, body)
    assert f"duplicate key '{key}'" in error_message(response)
    assert not Media.objects.exists()


# --- nesting ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/media", b"[" * 100_000 + b"]" * 100_000),
        ("/api/media", b'{"a": ' * 100_000 + b"1" + b"}" * 100_000),
        ("/api/media/read", b"[" * 100_000 + b"]" * 100_000),
        (
            "/api/media/search",
            b'{"metadata": [{"path": "x", "op": "eq", "value": ' + b"[" * 50_000 + b"]" * 50_000 + b"}]}",
        ),
        # A NUL escape makes the NUL guard parse the body too.
        ("/api/media", b'{"pid": "\\u0000", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        ("/api/media", b'{"pid": "\\u0000", "x": ' + b"[" * 900 + b"]" * 900 + b"}"),
    ],
    ids=["list", "object", "read", "search", "nul-escape", "nul-escape-900"],
)
def test_very_deep_json_is_a_4xx(api, id_types, path, body):
    """Regression: a body nested 100,000 deep that also held a `\\u0000` escape crashed the NUL guard
    (RecursionError, 500); the parser's own failure was an unexplained 400."""
    response = send(api, "POST", path, body)
    assert 400 <= response.status_code < 500, response.content[:300]
    error = error_message(response)
    assert "nested too deeply" in error or "NUL" in error or "levels deep" in error, error


@pytest.mark.parametrize("frames", [0, 300, 700])
def test_the_depth_limit_is_the_same_at_any_stack_depth(frames):
    """Regression: the limit was wherever Python's recursion limit ran out, so a body 900 levels
    deep parsed in one place and was refused in another (one test passed alone and failed once the
    code around the parser grew)."""
    from mediastore.errors import RuleViolation
    from mediastore.limits import MAX_JSON_DEPTH
    from mediastore.parser import loads

    def at_depth(n: int, body: bytes):
        return at_depth(n - 1, body) if n else loads(body)

    deepest = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    value = at_depth(frames, deepest)
    for _ in range(MAX_JSON_DEPTH - 1):
        value = value[0]
    assert value == []
    too_deep = b'{"a": "]]]", "b": ' + b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH + b"}"
    with pytest.raises(RuleViolation, match=f"nested more than {MAX_JSON_DEPTH} levels deep"):
        at_depth(frames, too_deep)


def test_brackets_in_strings_do_not_count():
    import json

    from mediastore.limits import MAX_JSON_DEPTH
    from mediastore.parser import loads, nesting_over

    strings = ["[" * 2000 + "\\", '\\"' + "{" * 2000 + '"', "]" * 2000]
    text = json.dumps([strings, [[["x"]]]]).encode()
    assert loads(text) == [strings, [[["x"]]]]
    assert not nesting_over(text, MAX_JSON_DEPTH)
    hidden = json.dumps(["]" * 600]).encode()[:-1] + b", " + b"[" * 600 + b"]" * 600 + b"]"
    assert nesting_over(hidden, MAX_JSON_DEPTH)  # closers in a string cannot hide real depth


# --- content types ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
def test_json_endpoints_refuse_other_content_types_with_415(api, id_types, content_type):
    """Regression: a JSON body sent as `text/plain` was parsed anyway, and one sent the way `curl -d`
    sends without `-H` (form-urlencoded) was an unexplained 400."""
    body = json.dumps(media_body("m1"))
    response = send(api, "POST", "/api/media", body, content_type)
    assert response.status_code == 415, response.content
    detail = response.json()["detail"]
    assert "Content-Type: application/json" in detail and detail.endswith(")")
    assert ("no Content-Type" in detail) if content_type is None else (content_type.split(";")[0] in detail)
    assert not Media.objects.exists()


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "application/vnd.mediastore+json"]
)
def test_json_content_types_with_parameters_or_suffix_are_accepted(api, id_types, content_type):
    response = send(api, "POST", "/api/media", json.dumps(media_body("m1")), content_type)
    assert response.status_code == 200, response.content


def test_optional_list_bodies_may_still_be_absent(api):
    """The list endpoints take no body as an empty list, whatever the (absent) body is labelled."""
    assert send(api, "POST", "/api/media/read", b"", "text/plain").json() == []


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", None, "application/json"]
)
def test_raw_content_upload_takes_any_content_type(api, id_types, content_type):
    api.post("/api/media", media_body("m1"))
    response = send(api, "PUT", "/api/media/m1/content", b"a=b&c=d", content_type)
    assert response.status_code == 200, response.content
    assert response.json()["size"] == 7
    assert api.get("/api/media/m1/content").getvalue() == b"a=b&c=d"


def test_nul_guard_applies_with_charset_parameter(api):
    response = send(api, "POST", "/api/media/read", '["a\\u0000b"]', "application/json; charset=utf-8")
    assert "NUL" in error_message(response)


def test_swagger_and_readme_say_json_needs_its_content_type(api):
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()
    assert "415" in readme and "Content-Type: application/json" in readme
    assert "415" in api.get("/api/openapi.json").json()["info"]["description"]
