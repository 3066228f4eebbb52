"""The OpenAPI document keeps the wire contract: the same paths, methods, parameters and field names
as the snapshot ``tests/fixtures/openapi.json`` (taken from the code before the issue-15 reshuffle,
then regenerated only for additions: ``GET /api/stats``, the search ``cursor`` parameter, the 411
of a JSON body sent chunked, the 503 of an unreachable database, the 408 of a body that stopped
arriving, the 414 of a request line too long, the JSON message of a 416, the 400/501 of a streamed
body cut short or in a transfer coding, ``keys`` of the metadata updates declared nullable,
``/api/tokens``, the replicas of a media (``/api/media/{pid}/replicas...``) and ``/api/rules``,
S3 direct multipart uploads (``multipart`` of ``POST /api/upload`` and its
answer, ``POST /api/upload/{pid}/parts``, the parts of ``.../complete``, ``DELETE /api/upload/{pid}``),
the ``probe`` parameter of ``GET /api/stats`` with the probe's ``probed_at`` and ``age_s``, and
``POST``/``GET /api/download/archive``, the webhook subscriptions (``/api/webhooks...``, a new
secret included), ``GET /api/media/{pid}/preview``, the quotas (``GET``/``PUT /api/quotas``,
``GET /api/usage``, ``owner`` in media answers, the 507 of a quota exceeded), the ``probe`` parameter of
``POST /api/store`` and ``PUT /api/s3cfg/{pk}`` with ``region`` and ``addressing_style`` of S3
configurations (whose keys became optional: the server's credential chain), and the lifecycle of
issue 27 (``expires_at`` and ``hold`` in the media answer, ``expires_at`` of create and PATCH,
``POST``/``DELETE /api/media/{pid}/hold``, ``PATCH /api/store/{pk}`` and ``default_ttl``,
``/api/trash...``, the 423 of a held media, also on removing a replica); a change that removes
or renames anything a client sends or reads must fail here).

Component (schema) names may change with a refactoring, so ``$ref``s are followed and only what a
client sees is compared: for every operation its parameters (where, name, required) and, for the
request body and every answer, the dotted names of the JSON fields (and which are required).
Descriptions and summaries are free to improve. A deliberate change of the contract replaces the
snapshot in the same commit (see ``write_snapshot`` below).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SNAPSHOT = Path(__file__).parent / "fixtures" / "openapi.json"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
MAX_DEPTH = 12  # deeper than any schema of ours; stops a self-referencing schema


def _resolve(doc: dict, schema: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = doc["components"]["schemas"][name]
    return schema


def _fields(doc: dict, schema: dict, prefix: str = "", depth: int = 0) -> set[str]:
    """Dotted field names below ``schema`` (``[]`` marks array items, ``!`` a required field)."""
    if depth > MAX_DEPTH:
        return set()
    schema = _resolve(doc, schema)
    found: set[str] = set()
    for combined in ("allOf", "anyOf", "oneOf"):
        for part in schema.get(combined, []):
            found |= _fields(doc, part, prefix, depth + 1)
    if "items" in schema:
        found |= _fields(doc, schema["items"], prefix + "[]", depth + 1)
    if isinstance(schema.get("additionalProperties"), dict):
        found |= _fields(doc, schema["additionalProperties"], prefix + "{}", depth + 1)
    required = set(schema.get("required", []))
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}.{name}" if prefix else name
        found.add(path + ("!" if name in required else ""))
        found |= _fields(doc, sub, path, depth + 1)
    return found


def _content(doc: dict, part: dict) -> dict[str, list[str]]:
    return {
        media_type: sorted(_fields(doc, body.get("schema", {})))
        for media_type, body in part.get("content", {}).items()
    }


def contract(doc: dict) -> dict[str, dict]:
    """What a client relies on, per ``METHOD path``, with component names resolved away."""
    operations: dict[str, dict] = {}
    for path, item in doc["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            parameters = sorted(
                f"{p['in']}:{p['name']}{'!' if p.get('required') else ''}"
                for p in (_resolve(doc, p) for p in operation.get("parameters", []))
            )
            body = operation.get("requestBody")
            if body is not None:
                body = {"required": body.get("required", False), **_content(doc, body)}
            answers = operation["responses"].items()
            operations[f"{method.upper()} {path}"] = {
                "parameters": parameters,
                "body": body,
                "responses": {status: _content(doc, answer) for status, answer in answers},
            }
    return operations


pytestmark = pytest.mark.django_db


@pytest.fixture
def live_document(anon) -> dict:
    """The document ``/api/openapi.json`` serves now."""
    response = anon.get("/api/openapi.json")
    assert response.status_code == 200
    return response.json()


def test_the_contract_extraction_sees_fields_through_refs():
    """The comparison below could pass vacuously if the extraction saw nothing; it must not."""
    snapshot = contract(json.loads(SNAPSHOT.read_text()))
    media_get = snapshot["GET /api/media/{pid}"]
    assert media_get["parameters"] == ["path:pid!"]
    answer = media_get["responses"]["200"]["application/json"]
    assert any(field.startswith("store_config.") for field in answer)
    assert len(snapshot) > 40


def test_paths_and_methods_are_those_of_the_snapshot(live_document):
    snapshot = json.loads(SNAPSHOT.read_text())
    assert sorted(contract(live_document)) == sorted(contract(snapshot))


def test_parameters_and_fields_are_those_of_the_snapshot(live_document):
    snapshot = contract(json.loads(SNAPSHOT.read_text()))
    live = contract(live_document)
    for operation, expected in snapshot.items():
        assert live.get(operation) == expected, operation


def write_snapshot() -> None:  # run by hand after a deliberate contract change
    """``DJANGO_SETTINGS_MODULE=tests.settings python -c 'import django; django.setup();
    from tests.test_openapi_contract import write_snapshot; write_snapshot()'``"""
    from django.test import Client

    doc = Client(HTTP_HOST="localhost").get("/api/openapi.json").json()
    SNAPSHOT.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
