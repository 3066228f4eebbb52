"""Shared fixtures: users, tokens and an HTTP client that speaks JSON with a bearer token."""

from __future__ import annotations

import json as jsonlib
import os
from pathlib import Path

import pytest
from django.test import Client

from tests.support.s3 import s3_bucket, s3_server  # noqa: F401  (fixtures)
from tests.support.xdist_live import pytest_xdist_make_scheduler  # noqa: F401  (hook: -n keeps live tests apart)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In the PostgreSQL run of a bin/test that also runs the suite on SQLite, skip the tests marked
    ``any_database``: their outcome does not depend on the suite's database, and they ran there."""
    if not (os.environ.get("POSTGRES_DB") and os.environ.get("MEDIASTORE_SUITE_RUNS_ON_SQLITE")):
        return
    skip = pytest.mark.skip(reason="any_database: not the suite's database; bin/test ran it on SQLite")
    for item in items:
        if item.get_closest_marker("any_database"):
            item.add_marker(skip)


class ApiClient:
    """django.test.Client with JSON bodies and an optional bearer token, for /api/ calls."""

    def __init__(self, token: str | None = None) -> None:
        self.client = Client()
        self.token = token

    def request(self, method: str, path: str, json=None, *, token: str | None = None, **extra):
        headers = dict(extra.pop("headers", {}))
        bearer = token if token is not None else self.token
        if bearer:
            headers.setdefault("Authorization", f"Bearer {bearer}")
        kwargs = {}
        if json is not None:
            kwargs = {"data": jsonlib.dumps(json), "content_type": "application/json"}
        response = self.client.generic(method, path, headers=headers, **kwargs, **extra)
        if response.streaming and response.get("Content-Type", "").startswith("application/json"):
            # Streamed JSON (downloads, dumps): .json() reads the stream once, as a client would.
            cache: list[bytes] = []

            def read_json():
                if not cache:
                    cache.append(b"".join(response.streaming_content))
                return jsonlib.loads(cache[0])

            response.json = read_json
        return response

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.request("POST", path, json, **kw)

    def put(self, path, json=None, **kw):
        return self.request("PUT", path, json, **kw)

    def patch(self, path, json=None, **kw):
        return self.request("PATCH", path, json, **kw)

    def delete(self, path, json=None, **kw):
        return self.request("DELETE", path, json, **kw)

    def put_content(self, pid: str, data: bytes, content_type: str = "application/octet-stream", **headers):
        """``PUT /api/media/{pid}/content`` with raw bytes (and extra headers such as If-Match)."""
        headers = {"Authorization": f"Bearer {self.token}", **headers}
        return self.client.put(
            f"/api/media/{pid}/content", data=data, content_type=content_type, headers=headers
        )


PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def fresh_cache():
    """Every test starts with empty login-failure counters (the cache is files under the test run's
    data directory), so tests that log in or fail to many times are not throttled by earlier ones."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def user(django_user_model):
    """A user in the ``admins`` group: may do everything through the API (not a superuser)."""
    from tests.permissions_support import role

    alice = django_user_model.objects.create_user(username="alice", password=PASSWORD)
    alice.groups.add(role("admins"))
    return alice


@pytest.fixture
def token(user) -> str:
    response = ApiClient().post("/api/login", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 200, response.content
    return response.json()["token"]


@pytest.fixture
def api(token) -> ApiClient:
    return ApiClient(token)


@pytest.fixture
def anon() -> ApiClient:
    return ApiClient()


@pytest.fixture
def id_types(api):
    """Identifier types most tests need: a free-form one, a DOI-ish one and a strict one."""
    for name, pattern in [("local", ""), ("doi", r"10\.\d{4,9}/\S+"), ("bin", r"D\d{8}T\d{6}_IFCB\d{3}")]:
        assert api.post("/api/identifier", {"name": name, "pattern": pattern}).status_code == 200


DICT_STORE = {"type": "DictStore", "bucket": "tests"}


def media_body(pid: str | None = "m1", **over) -> dict:
    body = {"pid_type": "local", "store_config": DICT_STORE, "identifiers": {}, "metadata": {}, "tags": []}
    if pid is not None:
        body["pid"] = pid
    body.update(over)
    return body


def create_media(api: ApiClient, pid: str = "m1", **over) -> dict:
    """``POST /api/media`` with ``media_body(pid, **over)``; the created media (asserts 200)."""
    response = api.post("/api/media", media_body(pid, **over))
    assert response.status_code == 200, response.content
    return response.json()


def error_message(response, status: int = 422) -> str:
    """The sentence of a rule violation or conflict, ``{"detail": [{"error": "..."}]}`` (bulk
    answers add ``index`` and ``pid`` beside ``error``), after checking the status and the shape."""
    assert response.status_code == status, response.content
    body = response.json()
    assert list(body) == ["detail"] and isinstance(body["detail"][0]["error"], str), body
    return body["detail"][0]["error"]


@pytest.fixture
def storage_root(settings, tmp_path: Path) -> Path:
    """A storage root of the test's own (``MEDIASTORE_STORAGE_ROOT``) for local stores."""
    root = tmp_path / "root"
    root.mkdir()
    settings.MEDIASTORE_STORAGE_ROOT = str(root)
    return root
