"""`keys: null` in the metadata updates means exactly what `keys: []` and leaving `keys` out mean, and
the OpenAPI document says so.

The published schemas (amplify-schemas) declare `keys` Optional with `[]` as default, so their
clients may send null; the document declared a plain array, so a client generated from it could not
know that null replaces (PUT) or clears (DELETE) the whole metadata.
"""

from __future__ import annotations

import pytest

from media.models import Media
from tests.conftest import create_media

pytestmark = pytest.mark.django_db

STORED = {"keep": 1, "a": {"b": {"c": 1}, "n": [1, 2]}, "s": "text"}
DATA = {"x": {"y": [1, 2]}, "keep": 2}
KEYS = {"null": {"keys": None}, "empty": {"keys": []}, "absent": {}}


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("PUT", DATA),  # the whole metadata replaced by data
        ("PATCH", {**STORED, **DATA}),  # data shallow-merged into the whole metadata
        ("DELETE", {}),  # the whole metadata cleared
    ],
)
def test_keys_null_means_the_same_as_empty_and_absent(api, id_types, method, expected):
    for name in KEYS:
        create_media(api, name, metadata=STORED)
    items = [{"pid": name, **keys, "data": DATA} for name, keys in KEYS.items()]
    body = api.request(method, "/api/media/update/metadata", items).json()
    assert body == {"successes": list(KEYS), "failures": []}
    results = {name: api.get(f"/api/media/{name}").json()["metadata"] for name in KEYS}
    assert results == {name: expected for name in KEYS}
    assert {m.version for m in Media.objects.all()} == {2}


def test_data_null_means_an_empty_object(api, id_types):
    for pid in ("null", "empty"):
        create_media(api, pid, metadata=STORED)
    items = [{"pid": "null", "keys": ["a"], "data": None}, {"pid": "empty", "keys": ["a"], "data": {}}]
    assert api.put("/api/media/update/metadata", items).json()["failures"] == []
    assert api.get("/api/media/null").json()["metadata"] == {**STORED, "a": {}}
    assert api.get("/api/media/empty").json()["metadata"] == {**STORED, "a": {}}


def test_the_document_says_keys_may_be_null_and_means_empty(anon):
    doc = anon.get("/api/openapi.json").json()
    keys = doc["components"]["schemas"]["UpdateMetadata"]["properties"]["keys"]
    kinds = [part.get("type") for part in keys.get("anyOf", [keys])]
    assert sorted(kinds) == ["array", "null"], keys
    assert "`null`" in keys["description"] and "same as `[]`" in keys["description"]
    assert "keys" not in doc["components"]["schemas"]["UpdateMetadata"].get("required", [])
