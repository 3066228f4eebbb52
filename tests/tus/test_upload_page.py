"""``/upload/``, the upload page for people, and the session (with its CSRF token) it uploads with
(tests/deploy/test_tus_browser.py drives it in Chromium)."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tests.conftest import PASSWORD
from tests.permissions_support import role
from tests.tus.test_tus_protocol import OFFSET_TYPE, TUS, metadata

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def tus_dir(settings, tmp_path):
    settings.MEDIASTORE_TUS_DIR = tmp_path / "tus"


def browser(username: str) -> Client:
    client = Client(enforce_csrf_checks=True)
    assert client.login(username=username, password=PASSWORD)
    return client


def test_the_page_needs_a_login_and_the_permission_to_add_media(user, django_user_model):
    answer = Client().get("/upload/")
    assert answer.status_code == 302 and answer["Location"].startswith("/admin/login/")
    reader = django_user_model.objects.create_user(username="rita", password=PASSWORD)
    reader.groups.add(role("readers"))
    assert browser("rita").get("/upload/").status_code == 403


def test_the_page_lists_stores_and_pid_types_and_is_linked(user, api, id_types, storage_root):
    api.post("/api/store", {"type": "FilesystemStore", "bucket": "page-store"})
    page = browser("alice").get("/upload/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "FilesystemStore page-store" in text and "<option>doi</option>" in text
    assert "tus-js-client-4.3.1/tus.min.js" in text
    assert 'href="/upload/"' in Client().get("/").content.decode()
    user.is_staff = True
    user.save()
    assert 'href="/upload/"' in browser("alice").get("/admin/").content.decode()


def test_a_session_uploads_with_its_csrf_token_and_not_without(user, api, id_types, storage_root):
    client = browser("alice")
    client.get("/upload/")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    entries = {
        "pid": "page.1",
        "pid_type": "local",
        "store": json.dumps({"type": "FilesystemStore", "bucket": "pg"}),
    }
    headers = {**TUS, "Upload-Length": "5", "Upload-Metadata": metadata(**entries)}
    refused = client.post("/api/tus/", headers=headers)
    assert refused.status_code == 403 and "X-CSRFToken" in refused.json()["detail"]
    created = client.post(
        "/api/tus/", data=b"hello", content_type=OFFSET_TYPE, headers={**headers, "X-CSRFToken": token}
    )
    assert created.status_code == 201 and created["Media-Location"] == "/api/media/page.1"
    assert api.get("/api/media/page.1").json()["size"] == 5


def test_a_method_override_needs_the_csrf_token_as_the_method_it_names(user, api, id_types, storage_root):
    """``X-HTTP-Method-Override`` is honoured on POST only, and the CSRF check goes by the method it
    names: a cross-site GET (or POST) that says DELETE cannot remove a logged-in user's upload."""
    client = browser("alice")
    client.get("/upload/")
    token = client.cookies["csrftoken"].value
    entries = {"pid_type": "local", "store": json.dumps({"type": "FilesystemStore", "bucket": "pg"})}
    headers = {**TUS, "Upload-Length": "5", "Upload-Metadata": metadata(**entries), "X-CSRFToken": token}
    url = client.post("/api/tus/", headers=headers)["Location"]
    delete = {**TUS, "X-HTTP-Method-Override": "DELETE"}
    assert client.get(url, headers=delete).status_code == 400
    refused = client.post(url, headers=delete)
    assert refused.status_code == 403 and "X-CSRFToken" in refused.json()["detail"]
    assert client.head(url, headers=TUS).status_code == 200
    assert client.post(url, headers={**delete, "X-CSRFToken": token}).status_code == 204
    assert client.head(url, headers=TUS).status_code == 404
