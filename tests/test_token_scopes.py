"""What a scoped token may do: every operation of the OpenAPI document, for each scope and for a
`readers`, a `writers` and an `admins` account, on existing objects.

A token may do what both its account's permissions and its scopes allow (issue 24): elsewhere 403,
naming the permission the account lacks, or else the scope the token lacks. The tokens are made
directly (not through POST /api/tokens, which refuses a scope the account lacks), as a token made
before its account lost a group would be.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from mediastore.api import api as ninja_api
from mediastore.models import ApiToken
from mediastore.permissions import ACCOUNT, OPERATIONS, PUBLIC, SCOPE_PERMISSIONS, SCOPES, scopes_allowing
from tests.conftest import PASSWORD, ApiClient, create_media
from tests.permissions_support import role as role_group

pytestmark = pytest.mark.django_db

ROLES = ["readers", "writers", "admins"]


def operations() -> list[tuple[str, str]]:
    schema = ninja_api.get_openapi_schema()
    return [(method.upper(), path) for path, ops in schema["paths"].items() for method in ops]


def scope_allows_by_the_issue(scope: str, permission: str | None) -> bool:
    """The scopes as issue 24 defines them, written out apart from mediastore.permissions: read views
    media, stores, identifiers, events, stats; write adds and changes media and their bytes; delete
    deletes media; admin is everything the account may do; managing tokens needs admin."""
    if permission is None or scope == "admin":
        return True
    if permission == ACCOUNT:
        return False
    return {
        "read": permission.split(".")[1].startswith("view_"),
        "write": permission in {"media.add_media", "media.change_media"},
        "delete": permission == "media.delete_media",
    }[scope]


def account_allows(user, permission: str | None) -> bool:
    return permission in (None, ACCOUNT) or user.has_perm(permission)


@pytest.fixture
def world(api, id_types, django_user_model):
    """Objects for every path parameter, made by an admin: a media with bytes, its store, an S3
    configuration; and for each role a user with a spare token (for DELETE /api/tokens/{id})."""
    create_media(api, "m1")
    assert api.put_content("m1", b"some bytes").status_code == 200
    s3 = api.post("/api/s3cfg", {"url": "http://127.0.0.1:9", "access_key": "a", "secret_key": "b"})
    assert s3.status_code == 200, s3.content
    users = {}
    for role in ROLES:
        user = django_user_model.objects.create_user(username=f"u-{role}", password=PASSWORD)
        user.groups.add(role_group(role))
        users[role] = user
    return {
        "pid": "m1",
        "name": "local",
        "store": api.get("/api/stores").json()[0]["pk"],
        "s3": s3.json()["pk"],
        "users": users,
    }


def concrete(path: str, world: dict, spare_token_id: int) -> str:
    values = {"pid": world["pid"], "name": world["name"], "id": str(spare_token_id), "store_pk": "999999"}
    values["pk"] = str(world["s3"] if path.startswith("/api/s3cfg/") else world["store"])
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def excerpt(response) -> bytes:
    return b"(streamed)" if response.streaming else response.content[:300]


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("role", ROLES)
def test_each_scope_allows_exactly_what_it_and_the_account_allow(world, role, scope):
    user = world["users"][role]
    _, clear = ApiToken.objects.issue(user, name="matrix", scopes=[scope])
    spare, _ = ApiToken.objects.issue(user, name="spare")
    client = ApiClient(clear)
    walked = []
    # Deletes last, so the objects exist for the rest; logout (which revokes the token) at the very end.
    order = sorted(operations(), key=lambda op: (op == ("POST", "/api/logout"), op[0] == "DELETE"))
    for method, path in order:
        permission = OPERATIONS[(method, path)]
        if permission == PUBLIC:
            continue
        url = concrete(path, world, spare.pk)
        body = {} if method in ("POST", "PUT", "PATCH") else None
        response = client.request(method, url, body)
        by_account = account_allows(user, permission)
        by_scope = scope_allows_by_the_issue(scope, permission)
        where = (role, scope, method, path, response.status_code, excerpt(response))
        if by_account and by_scope:
            assert response.status_code not in (401, 403), where
            if (method, path) == ("GET", "/api/media/{pid}"):
                assert response.status_code == 200, where  # the objects exist: requests reach them
        else:
            assert response.status_code == 403, where
            detail = response.json()["detail"]
            if not by_account:
                assert permission in detail, where
            else:
                assert (
                    f"scope {scopes_allowing(permission)[0]!r}" in detail
                    and "this token has " + scope in detail
                )
                assert permission in detail or permission == ACCOUNT, where
        walked.append((method, path, by_account and by_scope))
    assert len(walked) == len([op for op in operations() if OPERATIONS[op] != PUBLIC]) > 40
    refused = [op for *op, allowed in walked if not allowed]
    assert len(refused) < len(walked)
    assert bool(refused) == ((role, scope) != ("admins", "admin")), refused  # the walk refuses something


def test_every_operation_has_a_scope_that_allows_it():
    for operation in operations():
        permission = OPERATIONS[operation]
        assert scopes_allowing(permission), operation
        for scope in SCOPES:
            if permission != PUBLIC:
                assert (scope in scopes_allowing(permission)) == scope_allows_by_the_issue(
                    scope, permission
                ), (
                    operation,
                    scope,
                )


def test_the_scopes_grant_what_the_issue_names():
    assert SCOPE_PERMISSIONS["write"] == {"media.add_media", "media.change_media"}
    assert SCOPE_PERMISSIONS["delete"] == {"media.delete_media"}
    assert {"media.view_media", "stores.view_storeconfig", "identifiers.view_identifiertype"} <= (
        SCOPE_PERMISSIONS["read"]
    )
    assert all(".view_" in permission for permission in SCOPE_PERMISSIONS["read"])
    assert SCOPE_PERMISSIONS["admin"] >= SCOPE_PERMISSIONS["read"] | SCOPE_PERMISSIONS["write"] | {ACCOUNT}


def test_a_token_loses_what_its_account_loses(django_user_model, api, id_types):
    """Scopes never add to the account: a write token of a user taken out of writers cannot write."""
    create_media(api, "m1")
    writer = django_user_model.objects.create_user(username="w", password=PASSWORD)
    writer.groups.add(role_group("writers"))
    _, clear = ApiToken.objects.issue(writer, name="uploads", scopes=["write"])
    assert ApiClient(clear).put_content("m1", b"one").status_code == 200
    writer.groups.clear()
    refused = ApiClient(clear).put_content("m1", b"two")
    assert refused.status_code == 403 and "media.change_media" in refused.json()["detail"]


def test_a_scoped_token_costs_no_more_statements_than_a_login_token(api, user, id_types):
    """The token, its user, the user's permissions and the token's scopes are one statement, which
    on GET /api/media/{pid} reads the media too (issue 34)."""
    create_media(api, "m1")
    _, clear = ApiToken.objects.issue(user, name="reader", scopes=["read"])
    counts = []
    for client in (api, ApiClient(clear), api, ApiClient(clear)):
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/api/media/m1").status_code == 200
        counts.append(len(captured.captured_queries))
    assert counts[2] == counts[3] == 1, counts  # after the first minute's last_used update of each
