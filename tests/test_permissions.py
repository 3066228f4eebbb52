"""Who may do what: every operation of the OpenAPI document, walked as five kinds of caller.

Regression: any account with a token could delete every media, store, identifier type and S3
configuration. Now each operation needs a Django model permission granted through the groups
readers, writers and admins; a new endpoint without an entry in mediastore/permissions.py fails
``test_every_operation_has_a_permission`` and is refused at run time.
"""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from mediastore.api import api as ninja_api
from mediastore.permissions import ACCOUNT, OPERATIONS, PUBLIC
from tests.conftest import PASSWORD, ApiClient
from tests.permissions_support import role as role_group

pytestmark = pytest.mark.django_db

ROLES = ["nobody", "readers", "writers", "admins"]
PARAMS = {"pid": "no-such-pid", "name": "no-such-type", "pk": "999999", "id": "999999", "store_pk": "999999"}


def operations() -> list[tuple[str, str]]:
    schema = ninja_api.get_openapi_schema()
    return [(method.upper(), path) for path, ops in schema["paths"].items() for method in ops]


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PARAMS[m.group(1)], path)


def expected_allowed(role: str, permission: str | None) -> bool:
    if permission in (None, PUBLIC, ACCOUNT):  # ACCOUNT: any account, with a login token
        return True
    if role == "nobody":
        return False
    return (
        Group.objects.get(name=role)
        .permissions.filter(
            content_type__app_label=permission.split(".")[0], codename=permission.split(".")[1]
        )
        .exists()
    )


@pytest.fixture
def clients(django_user_model):
    made = {}
    for role in ROLES:
        user = django_user_model.objects.create_user(username=f"u-{role}", password=PASSWORD)
        if role != "nobody":
            user.groups.add(role_group(role))
        token = (
            ApiClient().post("/api/login", {"username": f"u-{role}", "password": PASSWORD}).json()["token"]
        )
        made[role] = ApiClient(token)
    return made


def test_every_operation_has_a_permission():
    missing = [op for op in operations() if op not in OPERATIONS]
    assert not missing, f"operations without an entry in mediastore/permissions.py: {missing}"


def test_the_roles_grow_from_readers_to_admins():
    perms = {
        role: set(Group.objects.get(name=role).permissions.values_list("codename", flat=True))
        for role in ROLES[1:]
    }
    assert perms["readers"] < perms["writers"] < perms["admins"]
    assert all(code.startswith("view_") for code in perms["readers"])
    assert {"add_media", "change_media", "delete_media", "add_storeconfig"} <= perms["writers"]
    assert not {"add_identifiertype", "delete_storeconfig", "add_s3config"} & perms["writers"]


def test_the_permission_table_walks_every_operation(clients, anon):
    """Anonymous: 401 except public operations. Each role: 403 exactly where its group lacks the
    operation's permission (the body naming it); elsewhere the request reaches the operation."""
    table = []
    # Logout revokes the token it is called with: walk it last.
    for method, path in sorted(operations(), key=lambda op: op == ("POST", "/api/logout")):
        permission = OPERATIONS[(method, path)]
        url = concrete(path)
        body = {} if method in ("POST", "PUT", "PATCH") else None
        anonymous = anon.request(method, url, body)
        if permission == PUBLIC:
            assert anonymous.status_code != 401, (method, path)
        else:
            assert anonymous.status_code == 401, (method, path, anonymous.status_code)
        for role in ROLES:
            response = clients[role].request(method, url, body)
            allowed = expected_allowed(role, permission)
            table.append((role, method, path, response.status_code))
            if allowed:
                assert response.status_code != 403, (role, method, path, response.content[:200])
            else:
                assert response.status_code == 403, (role, method, path, response.status_code)
                assert permission in response.json()["detail"]
    assert len(table) == len(ROLES) * len(operations())


def test_a_reader_reads_but_cannot_write(clients, api, id_types):
    assert (
        api.post(
            "/api/media",
            {"pid": "r1", "pid_type": "local", "store_config": {"type": "DictStore", "bucket": "t"}},
        ).status_code
        == 200
    )
    reader = clients["readers"]
    assert reader.get("/api/media/r1").status_code == 200
    assert reader.post("/api/media/search", {"tags": []}).status_code == 200
    assert reader.delete("/api/media/r1").status_code == 403
    assert reader.post("/api/identifier", {"name": "x", "pattern": ""}).status_code == 403
    assert api.get("/api/media/r1").status_code == 200  # nothing was deleted


def test_a_refusal_names_the_groups_that_give_the_permission(clients, id_types):
    """Regression: a user already in readers was told to join "readers, writers or admins" to get
    media.add_media."""
    body = {"pid": "g1", "pid_type": "local", "store_config": {"type": "DictStore", "bucket": "t"}}
    detail = clients["readers"].post("/api/media", body).json()["detail"]
    assert detail == (
        "permission denied: this operation needs media.add_media: the groups admins or writers have it "
        "(your account is in readers); an administrator can add your account to one of them in the admin "
        "(/admin/auth/user/)"
    )
    detail = clients["writers"].post("/api/identifier", {"name": "x", "pattern": ""}).json()["detail"]
    assert (
        "needs identifiers.add_identifiertype: the group admins has it (your account is in writers)" in detail
    )
    detail = clients["nobody"].get("/api/media/g1").json()["detail"]
    assert "your account is in no group" in detail and "admins or readers or writers" in detail


def test_a_writer_writes_media_but_cannot_configure(clients, id_types):
    writer = clients["writers"]
    body = {"pid": "w1", "pid_type": "local", "store_config": {"type": "DictStore", "bucket": "new-store"}}
    assert writer.post("/api/media", body).status_code == 200  # creates the store on the fly
    assert writer.delete("/api/media/w1").status_code == 204
    store_pk = (
        writer.get("/api/stores").json()[0]["pk"]
        if isinstance(writer.get("/api/stores").json(), list)
        else None
    )
    if store_pk is not None:
        assert writer.delete(f"/api/store/{store_pk}").status_code == 403
    assert writer.delete("/api/identifier/local").status_code == 403
    assert (
        writer.post(
            "/api/s3cfg", {"url": "http://127.0.0.1:9", "access_key": "a", "secret_key": "b"}
        ).status_code
        == 403
    )


def test_openapi_names_each_operations_permission():
    schema = ninja_api.get_openapi_schema()
    operation = schema["paths"]["/api/media/{pid}"]["delete"]
    assert "**Permission:** `media.delete_media`" in operation["description"]
    assert 403 in operation["responses"] or "403" in operation["responses"]
    assert "Permission" not in schema["paths"]["/api/login"]["post"].get("description", "")


def test_ensure_serviceuser_puts_the_account_in_admins_by_default(settings, django_user_model):
    settings.MEDIASTORE_SERVICEUSER = {
        "username": "pipeline",
        "password": "pw-123456",
        "email": "",
        "groups": [],
    }
    call_command("ensure_serviceuser", stdout=io.StringIO())
    user = django_user_model.objects.get(username="pipeline")
    assert list(user.groups.values_list("name", flat=True)) == ["admins"] and not user.is_staff


def test_ensure_serviceuser_groups_from_options_and_settings(settings, django_user_model):
    settings.MEDIASTORE_SERVICEUSER = {
        "username": "instrument",
        "password": "pw-123456",
        "email": "",
        "groups": ["readers", "writers"],
    }
    call_command("ensure_serviceuser", stdout=io.StringIO())
    user = django_user_model.objects.get(username="instrument")
    assert sorted(user.groups.values_list("name", flat=True)) == ["readers", "writers"]
    call_command("ensure_serviceuser", "--group", "readers", stdout=io.StringIO())
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no such group"):
        call_command("ensure_serviceuser", "--group", "wizards", stdout=io.StringIO())


@pytest.mark.django_db(transaction=True)
def test_upgrade_puts_earlier_accounts_in_admins(django_user_model):
    """On the earlier server every account could do everything; migrating must keep that."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate([("mediastore", "0001_initial")])
    Group.objects.all().delete()  # as before the roles existed
    executor.loader.build_graph()
    old_user = django_user_model.objects.create_user(username="earlier", password=PASSWORD)
    inactive = django_user_model.objects.create_user(username="gone", password=PASSWORD, is_active=False)
    executor.migrate(executor.loader.graph.leaf_nodes())
    assert list(old_user.groups.values_list("name", flat=True)) == ["admins"]
    assert not inactive.groups.exists()
    token = ApiClient().post("/api/login", {"username": "earlier", "password": PASSWORD}).json()["token"]
    earlier = ApiClient(token)
    assert earlier.post("/api/identifier", {"name": "kept", "pattern": ""}).status_code == 200
    assert earlier.delete("/api/identifier/kept").status_code in (200, 204)
