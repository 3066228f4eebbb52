"""Swagger UI is served from local static files; the homepage links docs and admin."""

import json
import re

import pytest
from django.contrib.staticfiles import finders
from openapi_spec_validator import validate

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


def _refuse_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise ValueError(f"duplicate keys in one JSON object: {duplicates}")
    return dict(pairs)


def test_strict_json_parsing_refuses_a_repeated_key():
    with pytest.raises(ValueError, match="'200'"):
        json.loads('{"a": {"200": 1, "200": 2}}', object_pairs_hook=_refuse_duplicate_keys)


def test_openapi_document_has_no_duplicate_keys_and_is_valid(anon):
    """Regression: GET /api/media/{pid}/content listed its 200 answer twice (an integer key from
    ``response=`` and a string key from ``openapi_extra``), so the JSON held "200" twice and Swagger
    UI stopped with "Parser error: duplicated mapping key" instead of showing any operation."""
    response = anon.client.get("/api/openapi.json")
    assert response.status_code == 200
    schema = json.loads(response.content, object_pairs_hook=_refuse_duplicate_keys)
    validate(schema)  # raises OpenAPIValidationError with the path of whatever is wrong


def test_raw_content_download_documents_binary_answers(anon):
    schema = anon.get("/api/openapi.json").json()
    answers = schema["paths"]["/api/media/{pid}/content"]["get"]["responses"]
    assert {"200", "206", "304", "416"} <= answers.keys()
    for status in ("200", "206"):
        body = answers[status]["content"]["application/octet-stream"]["schema"]
        assert body == {"type": "string", "format": "binary"}


def test_error_answers_show_examples_in_their_documented_shape(anon):
    """Issue 33: Swagger UI showed `{"detail": [{}]}` as the body of every 409 and 422 (built from a
    schema that only says "a list of objects"). Each error answer mediastore/openapi.py lists has
    an example body now, valid for its schema, and 409/422 show the items scripts read."""
    import jsonschema

    from mediastore.openapi import ANSWERS

    schema = anon.get("/api/openapi.json").json()
    seen = set()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for code, answer in operation["responses"].items():
                content = answer.get("content", {}).get("application/json")
                if int(code) not in ANSWERS or content is None or content["schema"] != ANSWERS[int(code)][1]:
                    continue  # an answer the operation declares itself, with a schema of named fields
                examples = [content["example"]] if "example" in content else []
                examples += [named["value"] for named in content.get("examples", {}).values()]
                assert examples, f"{method.upper()} {path} {code}: no example"
                for example in examples:
                    jsonschema.validate(example, content["schema"])
                    if code in ("409", "422"):
                        assert example["detail"][0].keys() & {"error", "msg"}, example
                seen.add(code)
    assert {"409", "422", "401", "404"} <= seen
