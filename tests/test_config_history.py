"""Audit history of configuration: identifier types, store and S3 configurations, with their author."""

import pytest
from django.db import connection

from identifiers.models import IdentifierType
from stores.models import S3Config, StoreConfig
from tests.conftest import DICT_STORE, media_body

pytestmark = pytest.mark.django_db

SECRET = "history-must-never-see-this-secret-5b0e"


def trail(model, **lookup) -> list[tuple[str, str | None]]:
    """(history_type, author username) of the history rows of ``model``, oldest first."""
    rows = (
        model.history.filter(**lookup).order_by("history_date", "history_id").select_related("history_user")
    )
    return [(row.history_type, row.history_user.username if row.history_user else None) for row in rows]


def test_identifier_type_changes_are_recorded_with_their_author(api, user):
    assert api.post("/api/identifier", {"name": "doi", "pattern": ""}).status_code == 200
    assert api.post("/api/identifier", {"name": "doi", "pattern": ""}).status_code == 200  # no-op
    assert api.put("/api/identifier", {"name": "doi", "pattern": r"10\.\d+/\S+"}).status_code == 204
    assert api.delete("/api/identifier/doi").status_code == 204
    assert trail(IdentifierType, name="doi") == [("+", "alice"), ("~", "alice"), ("-", "alice")]
    patterns = list(
        IdentifierType.history.filter(name="doi").order_by("history_id").values_list("pattern", flat=True)
    )
    assert patterns == ["", r"10\.\d+/\S+", r"10\.\d+/\S+"]


def test_s3_config_changes_are_recorded_without_the_secret(api, user):
    body = {"url": "http://s3.example.test", "access_key": "AK1", "secret_key": SECRET}
    pk = api.post("/api/s3cfg", body).json()["pk"]
    assert (
        api.put(f"/api/s3cfg/{pk}", {**body, "access_key": "AK2", "secret_key": SECRET + "-2"}).status_code
        == 204
    )
    assert api.delete(f"/api/s3cfg/{pk}").status_code == 204
    assert trail(S3Config, id=pk) == [("+", "alice"), ("~", "alice"), ("-", "alice")]
    assert [row.access_key for row in S3Config.history.filter(id=pk).order_by("history_id")] == [
        "AK1",
        "AK2",
        "AK2",
    ]

    table = S3Config.history.model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")
        columns = [col[0] for col in cursor.description]
        rows = cursor.fetchall()
    assert len(rows) == 3
    assert not [name for name in columns if "secret" in name]
    assert not [value for row in rows for value in row if isinstance(value, str) and SECRET in value]
    assert not [value for row in rows for value in row if isinstance(value, str) and "fernet:" in value]


def test_store_config_changes_are_recorded_with_their_author(api, user, id_types):
    pk = api.post("/api/store", {"type": "DictStore", "bucket": "audited"}).json()["pk"]
    api.post("/api/store", {"type": "DictStore", "bucket": "audited"})  # got, not created
    assert api.delete(f"/api/store/{pk}").status_code == 204
    assert trail(StoreConfig, id=pk) == [("+", "alice"), ("-", "alice")]

    assert api.post("/api/media", media_body("m1")).status_code == 200  # creates DICT_STORE on the fly
    created = StoreConfig.objects.get(type=DICT_STORE["type"], bucket=DICT_STORE["bucket"])
    assert trail(StoreConfig, id=created.pk) == [("+", "alice")]


def test_admin_changes_are_recorded_and_the_history_pages_show_the_author(api, user, admin_client):
    api.post("/api/identifier", {"name": "local", "pattern": ""})
    response = admin_client.post(
        "/admin/identifiers/identifiertype/local/change/", {"name": "local", "pattern": "x+"}
    )
    assert response.status_code == 302
    assert trail(IdentifierType, name="local") == [("+", "alice"), ("~", "admin")]
    pk = api.post(
        "/api/s3cfg", {"url": "http://s3.example.test", "access_key": "AK", "secret_key": SECRET}
    ).json()["pk"]
    store = api.post("/api/store", {"type": "DictStore", "bucket": "shown"}).json()["pk"]
    for url in (
        "/admin/identifiers/identifiertype/local/history/",
        f"/admin/stores/s3config/{pk}/history/",
        f"/admin/stores/storeconfig/{store}/history/",
    ):
        page = admin_client.get(url)
        assert page.status_code == 200
        assert "alice" in page.content.decode()
