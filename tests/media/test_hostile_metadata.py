"""Metadata limits (depth, size) on every path that writes metadata, search paths of bounded length,
and stored metadata from before the limits that the admin and the API must still handle."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

import pytest
from django.db import connection
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from media.models import Media
from tests.conftest import error_message, media_body

pytestmark = pytest.mark.django_db


def nested(depth: int, leaf=1) -> dict:
    """An object whose objects nest ``depth`` levels (the outer one is level 1)."""
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def upload_body(pid: str, metadata) -> dict:
    return {"mediadata": media_body(pid, metadata=metadata), "base64": base64.b64encode(b"x").decode()}


# --- depth ------------------------------------------------------------------------------------


WRITES = {
    "create": lambda api, m: api.post("/api/media", media_body("new", metadata=m)),
    "bulk create": lambda api, m: api.post(
        "/api/media/create", [media_body("n1"), media_body("n2", metadata=m)]
    ),
    "upload": lambda api, m: api.post("/api/upload", upload_body("new", m)),
}


@pytest.mark.parametrize("write", WRITES)
def test_metadata_deeper_than_the_limit_is_422_on_create_paths(api, id_types, write):
    """Regression: metadata 900 levels deep was accepted by the API and crashed the JSON encoder
    (RecursionError, 500); what was stored before could not be shown in the admin."""
    assert WRITES[write](api, nested(64)).status_code == 200
    Media.objects.all().delete()
    response = WRITES[write](api, nested(65))
    assert response.status_code == 422, response.content
    error = response.json()["detail"][0]
    assert (
        "nested more than 64 levels" in error["error"] and "MEDIASTORE_MAX_METADATA_DEPTH" in error["error"]
    )
    if write == "bulk create":
        assert (error["index"], error["pid"]) == (1, "n2")
    response = WRITES[write](api, nested(900))
    assert response.status_code == 422
    assert not Media.objects.exists()


def test_lists_count_as_levels(api, id_types):
    value: object = 1
    for _ in range(64):
        value = [value]
    assert api.post("/api/media", media_body("m1", metadata={"x": value})).status_code == 422
    assert api.post("/api/media", media_body("m2", metadata={"x": value[0]})).status_code == 200


@pytest.mark.parametrize(
    ("method", "item", "expect_ok"),
    [
        ("PUT", {"data": nested(64)}, True),
        ("PUT", {"data": nested(65)}, False),
        ("PUT", {"data": nested(500)}, False),
        ("PUT", {"keys": ["k"] * 10, "data": nested(54)}, True),
        ("PUT", {"keys": ["k"] * 10, "data": nested(55)}, False),
        ("PUT", {"keys": ["k"] * 10_000, "data": 1}, False),
        ("PATCH", {"data": {"x": nested(63)}}, True),
        ("PATCH", {"data": {"x": nested(64)}}, False),
        ("PATCH", {"keys": ["a"] * 40, "data": nested(30)}, False),
    ],
)
def test_metadata_updates_refuse_results_deeper_than_the_limit(api, id_types, method, item, expect_ok):
    api.post("/api/media", media_body("m1", metadata={"keep": 1}))
    response = api.request(method, "/api/media/update/metadata", [{"pid": "m1", **item}])
    assert response.status_code == 200
    body = response.json()
    if expect_ok:
        assert body == {"successes": ["m1"], "failures": []}
    else:
        assert body["successes"] == []
        [failure] = body["failures"]
        assert failure["error"] == "ValidationError" and "levels deep" in failure["msg"]
        assert Media.objects.get(pid="m1").metadata == {"keep": 1}


def test_depth_limit_comes_from_the_setting(api, id_types, settings):
    settings.MEDIASTORE_MAX_METADATA_DEPTH = 3
    assert api.post("/api/media", media_body("m1", metadata=nested(3))).status_code == 200
    response = api.post("/api/media", media_body("m2", metadata=nested(4)))
    assert "more than 3 levels" in error_message(response)


# --- size -------------------------------------------------------------------------------------


def test_metadata_larger_than_the_limit_is_413_on_every_write(api, id_types, settings):
    settings.MEDIASTORE_MAX_METADATA_KB = 2
    fits = {"s": "x" * (2048 - len('{"s":""}'))}
    too_big = {"s": "x" * (2049 - len('{"s":""}'))}
    assert len(json.dumps(fits, separators=(",", ":"))) == 2048
    assert api.post("/api/media", media_body("m1", metadata=fits)).status_code == 200
    for write in WRITES.values():
        response = write(api, too_big)
        error = error_message(response, 413)
        assert "over the limit of 2 KB" in error and "MEDIASTORE_MAX_METADATA_KB" in error
    assert list(Media.objects.values_list("pid", flat=True)) == ["m1"]
    api.post("/api/media", media_body("m2"))
    updates = [
        ("PUT", {"pid": "m2", "data": too_big}),
        ("PUT", {"pid": "m2", "keys": ["k"], "data": too_big["s"]}),
        ("PATCH", {"pid": "m2", "data": too_big}),
    ]
    for method, item in updates:
        body = api.request(method, "/api/media/update/metadata", [item]).json()
        assert body["successes"] == [] and "over the limit" in body["failures"][0]["msg"]
    # A merge that makes stored metadata grow past the limit fails too.
    body = api.patch("/api/media/update/metadata", [{"pid": "m1", "data": {"more": "y"}}]).json()
    assert body["successes"] == [] and "over the limit" in body["failures"][0]["msg"]
    assert Media.objects.get(pid="m2").metadata == {}


def test_size_counts_utf8_bytes_of_compact_json(api, id_types, settings):
    settings.MEDIASTORE_MAX_METADATA_KB = 1
    # 400 three-byte characters: 1200 bytes of UTF-8, though only 400 characters.
    assert api.post("/api/media", media_body("m1", metadata={"s": "€" * 400})).status_code == 413
    spaced = {f"k{i}": i for i in range(100)}  # ~1 KB with json.dumps' spaces, ~0.9 KB compact
    assert api.post("/api/media", media_body("m2", metadata=spaced)).status_code == 200


def compact_size(value) -> int:
    """``check_limits``' measure: the UTF-8 bytes of json.dumps' compact text."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass"))


FLOATS = [
    1e-07,
    5e-324,
    -2.2250738585072014e-308,
    -1.2345678901234567e-300,
    1e-05,
    0.0001,
    1e16,
    1e15,
    -0.0,
    0.1,
]


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(FLOATS), max_size=50))
@hypothesis_settings(max_examples=300, deadline=None)
def test_surely_within_never_passes_what_json_dumps_measures_over(values):
    """``check_limits`` skips json.dumps when orjson's text, times ``_JSON_LENGTH_RATIO``, is within
    the limit: that must never let through metadata json.dumps measures over it (floats are where
    the two spell numbers otherwise)."""
    from media.metadata import _surely_within

    for value in ({"v": values}, values, {"s": '€\n"\x01', "f": values[:1]}):
        size = compact_size(value)
        assert not _surely_within(value, size - 1)


def test_check_limits_measures_with_json_dumps_near_the_limit(settings):
    """Metadata near the limit is measured as before (json.dumps' compact UTF-8 bytes, the 413's
    figure), also where orjson refuses a value json.dumps writes (keys that are not strings)."""
    from media.metadata import check_limits
    from mediastore.errors import PayloadTooLarge

    settings.MEDIASTORE_MAX_METADATA_KB = 1
    check_limits({"s": "x" * (1024 - len('{"s":""}'))})
    with pytest.raises(PayloadTooLarge, match="metadata of 1 KB"):
        check_limits({"s": "x" * (1025 - len('{"s":""}'))})
    with pytest.raises(PayloadTooLarge):
        check_limits({1: "x" * 1100})
    check_limits({1: "x" * 10, "big": 2**70})


# --- stored before the limits -------------------------------------------------------------------


@pytest.fixture
def deep_media(api, id_types):
    """A media whose metadata is 800 levels deep, written straight to the table as a server without
    the limit would have stored it. (Reading it back needs that many levels of Python's recursion
    limit, about 1000, on top of the request's own frames: 900 left no room for one more middleware.)"""
    api.post("/api/media", media_body("deep", metadata={"x": 1}))
    media = Media.objects.get(pid="deep")
    text = '{"a": ' * 800 + "1" + "}" * 800
    table = connection.ops.quote_name(Media._meta.db_table)
    cast = "::jsonb" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET metadata = %s{cast} WHERE id = %s", [text, media.pk])
    history = Media.history.model
    history_table = connection.ops.quote_name(history._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {history_table} SET metadata = %s{cast} WHERE id = %s", [text, media.pk])
    return media


@pytest.fixture
def admin_client_logged(client, django_user_model):
    django_user_model.objects.create_superuser("root", "root@example.org", "pw")
    client.login(username="root", password="pw")
    return client


def test_admin_renders_media_with_metadata_deeper_than_the_limit(admin_client_logged, deep_media):
    """Regression: the admin's change and history pages of a media whose metadata was stored 800
    (there: 900) levels deep crashed (RecursionError, 500)."""
    for page in ("change", "history"):
        response = admin_client_logged.get(f"/admin/media/media/{deep_media.pk}/{page}/")
        assert response.status_code == 200, page
    page = admin_client_logged.get(f"/admin/media/media/{deep_media.pk}/change/").content.decode()
    assert page.count("Nested deeper than MEDIASTORE_MAX_METADATA_DEPTH (64 levels)") == 1
    assert 'name="metadata"' not in page
    assert admin_client_logged.get("/admin/media/media/").status_code == 200
    # View-only: a save would have to write the deep metadata back (and into the history).
    form = {
        "pid": "deep",
        "pid_type": "local",
        "identifiers": "{}",
        "content_type": "text/x-deep",
        "tags": "",
    }
    response = admin_client_logged.post(f"/admin/media/media/{deep_media.pk}/change/", form)
    assert response.status_code == 403
    assert Media.objects.get(pk=deep_media.pk).content_type == ""


def test_admin_refuses_metadata_over_the_limits(admin_client_logged, api, id_types):
    api.post("/api/media", media_body("m1"))
    pk = Media.objects.get(pid="m1").pk
    form = {"pid": "m1", "pid_type": "local", "identifiers": "{}", "content_type": "", "tags": ""}
    for metadata, sentence in [
        (json.dumps(nested(65)), "levels deep"),
        ('{"a": ' * 5000 + "1" + "}" * 5000, "nested too deeply"),
        ('{"x": 1e400}', "finite"),
    ]:
        response = admin_client_logged.post(
            f"/admin/media/media/{pk}/change/", {**form, "metadata": metadata}
        )
        assert response.status_code == 200 and sentence in response.content.decode()
    assert Media.objects.get(pk=pk).metadata == {}


def test_api_handles_media_with_metadata_deeper_than_the_limit(api, deep_media):
    """Reading works; changes that would copy the deep metadata are refused; replacing or clearing
    it whole repairs it."""
    assert api.get("/api/media/deep").status_code == 200
    body = api.patch("/api/media/update/metadata", [{"pid": "deep", "data": {"y": 1}}]).json()
    assert body["successes"] == [] and "replace or clear it whole" in body["failures"][0]["msg"]
    body = api.put("/api/media/update/metadata", [{"pid": "deep", "data": {"y": 1}}]).json()
    assert body == {"successes": ["deep"], "failures": []}
    assert api.get("/api/media/deep").json()["metadata"] == {"y": 1}


# --- search paths -------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["list", "dotted"])
def test_search_path_longer_than_32_keys_is_422(api, id_types, form):
    """Regression: a metadata search path of 10,000 keys was a RecursionError (500)."""
    api.post("/api/media", media_body("m1", metadata=nested(32)))
    for keys, status in [(32, 200), (33, 422), (10_000, 422)]:
        path = ["a"] * keys if form == "list" else ".".join(["a"] * keys)
        response = api.post("/api/media/search", {"metadata": [{"path": path, "op": "exists"}]})
        assert response.status_code == status, (keys, response.content[:300])
        if status == 422:
            assert "at most 32" in error_message(response)
    response = api.get("/api/media?" + urlencode({"metadata": ".".join(["a"] * 10_000) + ":exists"}))
    assert "at most 32" in error_message(response)


def test_search_query_value_hostile_json_is_422_not_500(api, id_types):
    """Values of `GET /api/media?metadata=path:op:value` are read as JSON: deep or overflowing ones
    were a 500 (RecursionError) or compared with infinity."""
    for value in ["[" * 5000 + "]" * 5000, "1e400", '{"a": 1, "a": 2}']:
        response = api.get("/api/media?" + urlencode({"metadata": f"x:contains:{value}"}))
        assert response.status_code == 422, (value[:20], response.content[:300])
