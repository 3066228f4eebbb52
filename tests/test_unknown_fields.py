"""Request bodies refuse fields their schema does not list (issue 33, item 1).

Regression: ``PATCH /api/media/update/metadata`` with ``"metadata"`` (the field is ``data``)
answered 200 ``{"successes": [pid]}`` and changed nothing, and ``PATCH /api/media/{pid}`` with
``"tags"`` answered 204 and the tags stayed: unknown fields were dropped without a word. Now every
object of every JSON body, nested ones too, is checked against the live OpenAPI document, except
the fields known clients send (``mediastore.schema_utils.CLIENT_SENT_FIELDS``), which are accepted.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from media.models import Media
from mediastore.schema_utils import CLIENT_SENT_FIELDS, RequestSchema
from tests.conftest import DICT_STORE, PASSWORD, create_media, media_body

pytestmark = pytest.mark.django_db

UNKNOWN = "unknown_field_x"
API_DOCS = Path(__file__).resolve().parent.parent / "docs" / "api.md"

# A body each operation with a JSON body accepts in the state the `world` fixture makes.
BODIES: dict[str, object] = {
    "POST /api/login": {"username": "alice", "password": PASSWORD},
    "POST /api/tokens": {"name": "script", "scopes": ["read"], "expires_in": 60},
    "POST /api/identifier": {"name": "other", "pattern": ""},
    "PUT /api/identifier": {"name": "local", "pattern": ""},
    "POST /api/s3cfg": {"url": "https://s3.other.example.org", "access_key": "a", "secret_key": "s"},
    "PUT /api/s3cfg/{pk}": {"url": "https://s3.example.org", "access_key": "a2", "secret_key": "s2"},
    "POST /api/store": dict(DICT_STORE),
    "POST /api/upload": {"mediadata": media_body("u1"), "base64": "aGk=", "content_type": "text/plain"},
    "POST /api/media": media_body("m2"),
    "POST /api/media/create": [media_body("m2"), media_body("m3")],
    "PATCH /api/media/update": {
        "pids": ["m1"],
        "medias": [{"pid_type": "local", "store_config": DICT_STORE}],
    },
    "PATCH /api/media/update/tags": [{"pid": "m1", "tags": ["x"]}],
    "PUT /api/media/update/tags": [{"pid": "m1", "tags": ["x"]}],
    "PUT /api/media/update/storekeys": [{"pid": "m1", "store_key": "elsewhere"}],
    "PUT /api/media/update/identifiers": [{"pid": "m1", "identifiers": {"doi": "10.1234/x"}}],
    "PUT /api/media/update/metadata": [{"pid": "m1", "keys": ["a"], "data": {"b": 1}}],
    "PATCH /api/media/update/metadata": [{"pid": "m1", "data": {"b": 1}}],
    "DELETE /api/media/update/metadata": [{"pid": "m1", "keys": ["keep"]}],
    "POST /api/media/search": {"tags": ["t"], "metadata": [{"path": "keep", "op": "exists"}]},
    "POST /api/media/{pid}/revert": {"version": 1},
    "POST /api/download/archive": {"tags": ["t"], "metadata": [{"path": "keep", "op": "exists"}]},
    "PATCH /api/media/{pid}": {"new_pid": "m9", "store_config": DICT_STORE},
    "POST /api/media/{pid}/replicas": {"store_config": {"type": "DictStore", "bucket": "copies"}},
    "PATCH /api/store/{pk}": {"default_ttl": 3600},
    "POST /api/media/{pid}/hold": {"until": None, "reason": "audit", "freeze": False},
    "POST /api/trash/restore": {"pids": ["gone"]},
    "POST /api/rules": {
        "name": "r",
        "match": {"tags": ["t"]},
        "copies": [{"type": "DictStore", "bucket": "c"}],
    },
    "POST /api/webhooks": {"url": "http://127.0.0.1:9/other", "types": ["media.created"], "tags": ["t"]},
    "PATCH /api/webhooks/{id}": {"active": False, "pid_types": ["local"]},
    "POST /api/webhooks/{id}/redeliver": {"cursor": 1},
    "PUT /api/quotas": {"store": None, "user": "alice", "max_bytes": 10**9, "max_media": None},
}
# Bodies of operations that need an S3 multipart upload in progress: an unknown field is refused
# (checked here) before anything looks at the media; tests/content/test_multipart.py accepts them.
S3_BODIES: dict[str, object] = {
    "POST /api/upload/{pid}/parts": {"parts": [1]},
    "POST /api/upload/{pid}/complete": {"parts": [{"part_number": 1, "etag": '"abc"'}]},
}
# Bodies that are lists of pids: no object to put a field into.
PID_LISTS = {"POST /api/media/read", "POST /api/media/delete", "POST /api/download/urls"}


@pytest.fixture
def document(anon) -> dict:
    response = anon.get("/api/openapi.json")
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def world(api, id_types, settings) -> dict[str, str]:
    """A media `m1` (tagged, with metadata and bytes), a store, an S3 configuration and a webhook
    (to a loopback port nothing is sent to); the path parameters."""
    create_media(api, "m1", tags=["t"], metadata={"keep": 1})
    assert api.put_content("m1", b"bytes").status_code == 200  # a replica needs them
    s3cfg = api.post("/api/s3cfg", {"url": "https://s3.example.org", "access_key": "a", "secret_key": "s"})
    assert s3cfg.status_code == 200, s3cfg.content
    settings.MEDIASTORE_WEBHOOK_ALLOW_HOSTS = ["127.0.0.1"]
    webhook = api.post("/api/webhooks", {"url": "http://127.0.0.1:9/hook"})
    assert webhook.status_code == 200, webhook.content
    store = api.get("/api/media/m1").json()["store_config"]["pk"]
    return {
        "pid": "m1",
        "pk": str(s3cfg.json()["pk"]),
        "id": str(webhook.json()["id"]),
        "store_pk": str(store),
    }


def json_body_operations(document: dict) -> dict[str, dict]:
    """``"METHOD path"`` -> the request body's JSON schema, for every operation with a JSON body."""
    found = {}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                found[f"{method.upper()} {path}"] = content["application/json"]["schema"]
    return found


def _resolve(document: dict, schema: dict) -> tuple[dict, str | None]:
    name = None
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema, name


def objects_in(document: dict, schema: dict, body, at=()) -> list[tuple[tuple, str | None]]:
    """Where ``body`` holds an object that the schema describes field by field (not free-form
    metadata or identifiers), with the schema's component name: (path into the body, name)."""
    schema, name = _resolve(document, schema)
    for member in schema.get("anyOf", []):  # e.g. store_config: a pk or a store description
        member_schema, _ = _resolve(document, member)
        if isinstance(body, dict) and "properties" in member_schema:
            return objects_in(document, member, body, at)
    found = []
    if isinstance(body, list) and body and "items" in schema:
        found += objects_in(document, schema["items"], body[0], (*at, 0))
    if isinstance(body, dict) and "properties" in schema:
        found.append((at, name))
        for key, value in body.items():
            found += objects_in(document, schema["properties"][key], value, (*at, key))
    return found


def with_fields(body, at: tuple, fields: dict):
    body = copy.deepcopy(body)
    target = body
    for step in at:
        target = target[step]
    target.update(fields)
    return body


def call(api, operation: str, world: dict[str, str], body):
    method, path = operation.split(" ", 1)
    if path.startswith("/api/store/"):  # a store's pk, not the S3 configuration's
        path = path.replace("{pk}", world["store_pk"])
    path = re.sub(r"\{(\w+)\}", lambda m: world[m.group(1)], path)
    return api.request(method, path, body)


def test_every_operation_with_a_json_body_has_a_body_here(document):
    operations = json_body_operations(document)
    assert set(operations) == set(BODIES) | set(S3_BODIES) | PID_LISTS
    for operation in PID_LISTS:
        schema = operations[operation]
        assert {"type": "array", "items": {"type": "string"}} in [schema, *schema.get("anyOf", [])], operation


@pytest.mark.parametrize("operation", sorted(BODIES) + sorted(S3_BODIES))
def test_an_unknown_field_in_any_object_of_the_body_is_a_422_naming_it(api, world, document, operation):
    """For each object of the body (the top one, list items, nested store descriptions, metadata
    conditions): the body with ``unknown_field_x`` there is 422 naming it; the body as it is, with
    the fields known clients send added, is accepted (S3_BODIES: elsewhere)."""
    body = BODIES.get(operation) or S3_BODIES[operation]
    places = objects_in(document, json_body_operations(document)[operation], body)
    assert places, operation
    for at, _name in places:
        response = call(api, operation, world, with_fields(body, at, {UNKNOWN: 1}))
        assert response.status_code == 422, (operation, at, response.content)
        assert UNKNOWN in str(response.json()["detail"]), response.content
    if operation in S3_BODIES:
        return
    accepted = body
    for at, name in places:
        sent = CLIENT_SENT_FIELDS.get(name, {})
        accepted = with_fields(accepted, at, dict.fromkeys(sent, 1))
    response = call(api, operation, world, accepted)
    assert response.status_code < 300, (operation, accepted, response.content)


def test_every_request_object_of_the_document_refuses_other_fields(document):
    """The document says so too (``additionalProperties: false``), for generated clients."""
    for operation, schema in json_body_operations(document).items():
        for at, name in objects_in(document, schema, BODIES.get(operation) or S3_BODIES.get(operation, [])):
            target, _ = _resolve(document, document["components"]["schemas"][name] if name else schema)
            assert target.get("additionalProperties") is False, (operation, at, name)


def test_the_misnamed_metadata_field_changes_nothing_and_says_why(api, id_types):
    create_media(api, "m1", metadata={"keep": 1})
    response = api.patch("/api/media/update/metadata", [{"pid": "m1", "metadata": {"x": 1}}])
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["type"] == "extra_forbidden" and error["loc"] == ["body", "payload", 0, "metadata"]
    assert error["msg"].startswith("Unknown field 'metadata'")
    assert Media.objects.get(pid="m1").metadata == {"keep": 1}


def test_tags_in_a_single_media_patch_are_refused_and_the_tags_stay(api, id_types):
    create_media(api, "m1", tags=["a"])
    response = api.patch("/api/media/m1", {"tags": ["b"]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "payload", "tags"]
    assert api.get("/api/media/m1").json()["tags"] == ["a"]


def test_an_unknown_key_of_a_store_given_as_a_union_member_is_named_without_validator_names(api, id_types):
    """``MediaPatch.store_config`` is a pk or a store description; the error's ``loc`` is the field's
    path, without pydantic's ``function-wrap[...]`` for the union member."""
    create_media(api, "m1")
    response = api.patch("/api/media/m1", {"store_config": {**DICT_STORE, "buckett": "x"}})
    assert response.status_code == 422
    locs = [error["loc"] for error in response.json()["detail"]]
    assert ["body", "payload", "store_config", "buckett"] in locs
    assert not any("function" in str(part) for loc in locs for part in loc)


def test_a_store_as_listed_is_taken_back_as_store_config(api, id_types):
    """amplify-storage-utils' MediaStore posts an entry of ``GET /api/stores`` (with ``pk`` and
    ``s3_url``) as the upload's ``store_config``; the store it names is used, its pk ignored."""
    made = api.post("/api/store", {"type": "DictStore", "bucket": "pipeline"}).json()
    [listed] = [s for s in api.get("/api/stores").json() if s["pk"] == made["pk"]]
    assert set(listed) == {"pk", "type", "bucket", "s3_url"}
    mediadata = {"pid": "p1", "pid_type": "local", "store_config": listed}
    upload = api.post("/api/upload", {"mediadata": mediadata})
    assert upload.status_code == 200, upload.content
    assert api.get("/api/media/p1").json()["store_config"] == listed
    wrong_pk = {**listed, "pk": made["pk"] + 100}  # ignored: type and bucket name the store
    assert api.post("/api/media", media_body("p2", store_config=wrong_pk)).json()["store_config"] == listed


def _request_schemas() -> dict[str, type]:
    found, todo = {}, [RequestSchema]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            found[sub.__name__] = sub
            todo.append(sub)
    return found


def test_the_fields_known_clients_send_are_documented(document):
    """Each accepted-and-ignored field is not a real field of its schema, and the schema's Swagger
    description and docs/api.md name it."""
    schemas = _request_schemas()
    readme = " ".join(API_DOCS.read_text().split())  # unwrapped
    readme = readme.split("Fields known clients send are accepted and ignored", 1)[1].split(" - **", 1)[0]
    for name, fields in CLIENT_SENT_FIELDS.items():
        assert name in schemas, f"{name} is not a RequestSchema"
        description = document["components"]["schemas"][name]["description"]
        for field in fields:
            assert field not in schemas[name].model_fields, (name, field)
            assert f"`{field}` is accepted and ignored" in description, (name, field)
            assert f"`{field}`" in readme, (name, field)
