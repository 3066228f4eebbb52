"""The admin: every model is there, media history shows, the S3 secret is never displayed."""

import pytest

from media.models import Media
from stores.models import S3Config
from tests.conftest import media_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_logged(client, django_user_model):
    django_user_model.objects.create_superuser("root", "root@example.org", "pw")
    client.login(username="root", password="pw")
    return client


@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        "/admin/media/media/",
        "/admin/media/media/?store_status__exact=PENDING",
        "/admin/media/media/?q=D2024",
        "/admin/identifiers/identifiertype/",
        "/admin/stores/storeconfig/",
        "/admin/stores/s3config/",
        "/admin/mediastore/apitoken/",
        "/admin/taggit/tag/",
    ],
)
def test_admin_pages_answer(admin_client_logged, api, id_types, url):
    api.post("/api/media", media_body("m1", identifiers={"bin": "D20240101T000000_IFCB001"}, tags=["t"]))
    response = admin_client_logged.get(url)
    assert response.status_code == 200


def test_admin_search_finds_identifier_values(admin_client_logged, api, id_types):
    api.post("/api/media", media_body("m1", identifiers={"bin": "D20240101T000000_IFCB001"}))
    api.post("/api/media", media_body("m2"))
    page = admin_client_logged.get("/admin/media/media/?q=IFCB001").content.decode()
    assert ">m1<" in page and ">m2<" not in page


def test_media_history_page_shows_changes(admin_client_logged, api, id_types):
    api.post("/api/media", media_body("m1"))
    api.patch("/api/media/update/tags", [{"pid": "m1", "tags": ["hello"]}])
    pk = Media.objects.get(pid="m1").pk
    response = admin_client_logged.get(f"/admin/media/media/{pk}/history/")
    assert response.status_code == 200
    assert "alice" in response.content.decode()


def test_s3_secret_is_never_displayed(admin_client_logged):
    cfg = S3Config.objects.create(url="http://s3.test", access_key="AK", secret_key="top-secret-value")
    for url in ("/admin/stores/s3config/", f"/admin/stores/s3config/{cfg.pk}/change/"):
        assert "top-secret-value" not in admin_client_logged.get(url).content.decode()


def test_s3_secret_kept_when_left_empty_and_changed_when_given(admin_client_logged):
    cfg = S3Config.objects.create(url="http://s3.test", access_key="AK", secret_key="old")
    url = f"/admin/stores/s3config/{cfg.pk}/change/"
    response = admin_client_logged.post(url, {"url": "http://s3.test", "access_key": "AK2", "secret_key": ""})
    assert response.status_code == 302
    cfg.refresh_from_db()
    assert (cfg.access_key, cfg.secret_key) == ("AK2", "old")
    admin_client_logged.post(url, {"url": "http://s3.test", "access_key": "AK2", "secret_key": "new"})
    cfg.refresh_from_db()
    assert cfg.secret_key == "new"


def test_tokens_can_be_revoked_in_admin(admin_client_logged, api, token):
    from mediastore.models import ApiToken

    row = ApiToken.objects.get()
    response = admin_client_logged.post(
        "/admin/mediastore/apitoken/", {"action": "revoke", "_selected_action": [row.pk]}
    )
    assert response.status_code == 302
    assert api.get("/api/identifier/list").status_code == 401


def test_admin_edit_of_tags_is_recorded_in_tag_list_and_history(admin_client_logged, api, id_types):
    api.post("/api/media", media_body("m1"))
    media = Media.objects.get(pid="m1")
    response = admin_client_logged.post(
        f"/admin/media/media/{media.pk}/change/",
        {
            "pid": "m1",
            "pid_type": "local",
            "identifiers": "{}",
            "metadata": "{}",
            "content_type": "",
            "tags": "a, b",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert api.get("/api/media/m1").json()["tags"] == ["a", "b"]
    history = api.get("/api/media/m1/history").json()
    assert any(c["field"] == "tags" and c["new"] == ["a", "b"] for c in history[0]["changes"])


def test_admin_edit_applies_pid_rules(admin_client_logged, api, id_types):
    api.post("/api/media", media_body("m1"))
    media = Media.objects.get(pid="m1")
    response = admin_client_logged.post(
        f"/admin/media/media/{media.pk}/change/",
        {
            "pid": "m1",
            "pid_type": "doi",
            "identifiers": "{}",
            "metadata": "{}",
            "content_type": "",
            "tags": "",
        },
    )
    assert response.status_code == 200  # form shown again with the error
    assert "does not match the pattern" in response.content.decode()
    assert Media.objects.get(pk=media.pk).pid_type_id == "local"


def test_admin_delete_goes_through_the_service(admin_client_logged, api, id_types):
    api.post("/api/media", media_body("m1"))
    media = Media.objects.get(pid="m1")
    response = admin_client_logged.post(f"/admin/media/media/{media.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Media.objects.exists()
    assert api.get("/api/media/m1/history").json()[0]["action"] == "deleted"
