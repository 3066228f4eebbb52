"""Resumable uploads in the admin: read-only list and detail for administrators (staff in the
group ``admins``), nothing to add or change, and terminating through ``tus.services.upload_terminate``
(the staging file goes with the row); staff without the permission get 403, other accounts the
login page."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from tests.permissions_support import staff
from tests.tus.test_tus_protocol import Tus, new_media, path_of, tus_dir  # noqa: F401  (fixture)
from tus.models import TusUpload
from tus.services import staging_path

pytestmark = pytest.mark.django_db

LIST = "/admin/tus/tusupload/"


@pytest.fixture
def uploads(token, api, id_types, storage_root) -> tuple[str, str]:
    """An unfinished upload of 1000 bytes with 400 sent, and a finished one: their ids."""
    tus = Tus(token)
    store = {"type": "FilesystemStore", "bucket": "tus-admin"}
    created = tus.create(1000, **new_media(store, "half.1"))
    assert created.status_code == 201, created.content
    half = path_of(created)
    assert tus.patch(half, 0, b"x" * 400).status_code == 204
    whole = tus.upload(b"all of it", **new_media(store, "whole.1"))
    return half.rsplit("/", 1)[1], whole.rsplit("/", 1)[1]


def test_administrators_see_the_list_and_the_detail_read_only(uploads):
    half, whole = uploads
    admin = staff("ada", "admins")
    page = admin.get(LIST)
    assert page.status_code == 200
    text = page.content.decode()
    assert half in text and whole in text and "alice" in text
    assert "400 of 1,000 bytes (40.0%)" in text and "new media half.1" in text
    assert "complete: media whole.1" in text and "waiting for the client" in text
    assert "delete_selected" not in text and 'value="terminate"' in text
    assert "/admin/tus/tusupload/add/" not in text
    detail = admin.get(f"{LIST}{half}/change/")
    assert detail.status_code == 200
    body = detail.content.decode()
    assert "400 of 1,000 bytes (40.0%)" in body and "tus-admin" in body
    assert 'name="_save"' not in body  # nothing to change
    assert admin.get(f"{LIST}add/").status_code == 403
    changed = admin.post(f"{LIST}{half}/change/", {"offset": "1000"})
    assert changed.status_code == 403
    assert TusUpload.objects.get(pk=half).offset == 400


def test_staff_without_the_permission_get_403_and_others_the_login(uploads, django_user_model):
    assert staff("wes", "writers").get(LIST).status_code == 403
    assert Client().get(LIST).status_code == 302
    django_user_model.objects.create_user("nora", password="pw")
    plain = Client()
    plain.force_login(django_user_model.objects.get(username="nora"))
    answer = plain.get(LIST)
    assert answer.status_code == 302 and "/admin/login/" in answer["Location"]
    assert plain.get(f"{LIST}{uploads[0]}/change/").status_code == 302


def test_terminate_removes_the_upload_and_its_staged_bytes_through_the_service(uploads, token, api):
    half, whole = uploads
    assert staging_path(half).stat().st_size == 400
    admin = staff("ada", "admins")
    # A PATCH sending meanwhile holds the upload: it is not terminated, the page says why.
    TusUpload.objects.filter(pk=half).update(lease_until=timezone.now() + timezone.timedelta(minutes=5))
    answer = admin.post(LIST, {"action": "terminate", "_selected_action": [half]}, follow=True)
    assert answer.status_code == 200
    assert "not terminated" in answer.content.decode() and "locked" in answer.content.decode()
    assert TusUpload.objects.filter(pk=half).exists() and staging_path(half).exists()
    TusUpload.objects.filter(pk=half).update(lease_until=None)
    answer = admin.post(LIST, {"action": "terminate", "_selected_action": [half, whole]}, follow=True)
    assert "Terminated 2 upload(s)." in answer.content.decode()
    assert not TusUpload.objects.exists() and not staging_path(half).exists()
    assert Tus(token).head(f"/api/tus/{half}").status_code == 404
    assert api.get("/api/media/whole.1").status_code == 200  # a finished upload's media stays


def test_the_delete_page_terminates_through_the_service(uploads):
    half, whole = uploads
    admin = staff("ada", "admins")
    assert admin.get(f"{LIST}{half}/delete/").status_code == 200  # the confirmation
    answer = admin.post(f"{LIST}{half}/delete/", {"post": "yes"})
    assert answer.status_code == 302 and answer["Location"] == LIST
    assert not TusUpload.objects.filter(pk=half).exists() and not staging_path(half).exists()
    assert staff("wes", "writers").post(f"{LIST}{whole}/delete/", {"post": "yes"}).status_code == 403
