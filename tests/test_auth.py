"""Login, logout, bearer tokens, and the rule that every operation but a few needs a token."""

from datetime import timedelta

import pytest
from django.utils import timezone

from mediastore.models import ApiToken
from tests.conftest import PASSWORD, ApiClient, error_message

pytestmark = pytest.mark.django_db

PUBLIC_OPERATIONS = {("post", "/api/login"), ("get", "/api/hello"), ("get", "/api/health")}


def test_hello_is_public(anon):
    response = anon.get("/api/hello")
    assert response.status_code == 200
    assert response.json() == {"msg": "Hello, world!"}


def test_login_issues_a_new_working_token_each_time(user, anon):
    first = anon.post("/api/login", {"username": "alice", "password": PASSWORD}).json()["token"]
    second = anon.post("/api/login", {"username": "alice", "password": PASSWORD}).json()["token"]
    assert first != second
    for token in (first, second):
        assert ApiClient(token).get("/api/identifier/list").status_code == 200


def test_only_a_hash_of_the_token_is_stored(user, token):
    row = ApiToken.objects.get(user=user)
    assert row.key_hash != token and token not in row.key_hash
    assert row.prefix == token[:8]


@pytest.mark.parametrize(
    "body",
    [{"username": "alice", "password": "wrong"}, {"username": "nobody", "password": PASSWORD}],
)
def test_bad_credentials_are_401_with_the_contract_sentence(user, anon, body):
    response = anon.post("/api/login", body)
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid credentials"}


def test_inactive_user_cannot_log_in(user, anon):
    user.is_active = False
    user.save()
    assert anon.post("/api/login", {"username": "alice", "password": PASSWORD}).status_code == 401


def test_user_without_usable_password_cannot_log_in(user, anon):
    user.set_unusable_password()
    user.save()
    assert anon.post("/api/login", {"username": "alice", "password": ""}).status_code == 401
    assert anon.post("/api/login", {"username": "alice", "password": PASSWORD}).status_code == 401


def test_token_of_a_user_made_inactive_stops_working(user, api):
    user.is_active = False
    user.save()
    assert api.get("/api/identifier/list").status_code == 401


def test_logout_revokes_only_the_presented_token(user, anon):
    one = anon.post("/api/login", {"username": "alice", "password": PASSWORD}).json()["token"]
    two = anon.post("/api/login", {"username": "alice", "password": PASSWORD}).json()["token"]
    response = ApiClient(one).post("/api/logout")
    assert response.status_code == 204
    assert response.content == b""
    assert ApiClient(one).get("/api/identifier/list").status_code == 401
    assert ApiClient(two).get("/api/identifier/list").status_code == 200


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_scheme_word_is_case_insensitive(token, scheme):
    response = ApiClient().get("/api/identifier/list", headers={"Authorization": f"{scheme} {token}"})
    assert response.status_code == 200


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Token abc", "Bearer nonsense", "Basic YTpi"])
def test_bad_authorization_headers_are_401(user, header):
    response = ApiClient().get("/api/identifier/list", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json() == {"detail": "Unauthorized"}


def test_expired_token_is_refused(user, token):
    ApiToken.objects.filter(user=user).update(expires=timezone.now() - timedelta(seconds=1))
    assert ApiClient(token).get("/api/identifier/list").status_code == 401


def test_token_ttl_setting_sets_expiry(user, anon, settings):
    settings.MEDIASTORE_TOKEN_TTL_HOURS = 2
    anon.post("/api/login", {"username": "alice", "password": PASSWORD})
    row = ApiToken.objects.get(user=user)
    assert row.expires is not None
    assert timedelta(hours=1, minutes=59) < row.expires - row.created <= timedelta(hours=2)


def test_last_used_is_recorded(user, api):
    assert ApiToken.objects.get(user=user).last_used is None
    api.get("/api/identifier/list")
    assert ApiToken.objects.get(user=user).last_used is not None


def test_docs_and_schema_are_public(anon):
    assert anon.get("/api/docs").status_code == 200
    assert anon.get("/api/openapi.json").status_code == 200


def _operations():
    from mediastore.api import api

    schema = api.get_openapi_schema()
    for path, methods in schema["paths"].items():
        for method in methods:
            yield method, path


def test_every_operation_but_login_and_hello_needs_a_token(user):
    """Walks the generated OpenAPI schema: a new endpoint without auth fails this test."""
    client = ApiClient()
    walked = 0
    for method, path in _operations():
        if (method, path) in PUBLIC_OPERATIONS:
            continue
        concrete = path.replace("{pid}", "some/pid").replace("{pk}", "1").replace("{name}", "x")
        concrete = concrete.replace("{id}", "1").replace("{store_pk}", "1")
        assert "{" not in concrete, f"unhandled path parameter in {path}"
        response = client.request(method.upper(), concrete, {})
        assert response.status_code == 401, f"{method.upper()} {path} answered {response.status_code}"
        assert response.json() == {"detail": "Unauthorized"}
        walked += 1
    assert walked >= 30


def test_openapi_operations_have_summaries_and_descriptions():
    from mediastore.api import api

    schema = api.get_openapi_schema()
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            assert op.get("summary"), f"{method} {path} has no summary"
            assert op.get("description"), f"{method} {path} has no description"


@pytest.mark.parametrize(
    "method,path,body",
    [
        ("GET", "/api/media/a%00b", None),
        ("GET", "/api/identifier/a%00b", None),
        ("POST", "/api/media/read", ["a\x00b"]),
        ("PUT", "/api/media/update/metadata", [{"pid": "a", "data": {"k": "v\x00"}}]),
        ("POST", "/api/identifier", {"name": "x", "pattern": "a\x00"}),
    ],
)
def test_nul_characters_are_a_clear_422_on_every_database(api, method, path, body):
    """PostgreSQL cannot store NUL: these were 500s there before the guard."""
    response = api.request(method, path, body)
    assert "NUL characters" in error_message(response)


def test_unpaired_surrogates_are_a_clear_422(api):
    """A lone surrogate cannot be encoded for any database: it was a 500."""
    response = api.client.post(
        "/api/media/read",
        data='["\\ud800x"]',
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.token}"},
    )
    assert response.status_code == 422
    ok = api.client.post(
        "/api/media/read",
        data='["\\ud83d\\ude00"]',
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.token}"},
    )
    assert ok.status_code == 200


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_number_constants_are_refused(api, id_types, constant):
    """Python's json accepts NaN; PostgreSQL's jsonb does not (it was a 500 there, a 409 on SQLite)."""
    body = (
        '{"pid": "a", "pid_type": "local", "store_config": {"type": "DictStore", "bucket": "x"}, '
        '"metadata": {"x": %s}}'
    )
    response = api.client.post(
        "/api/media",
        data=body % constant,
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.token}"},
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "Cannot parse request body"}
