"""MEDIASTORE_MAX_TAGS on every path that sets a media's tags.

Regression: nothing bounded the tags of a media; one update with 100,000 tags took 110 s, holding
the media's row lock (other updates of that media waited) while taggit created one tag at a time.
"""

from __future__ import annotations

import base64

import pytest
from taggit.models import Tag

from importer.plan import media_problem
from importer.source import OldMedia
from media.models import Media
from tests.conftest import error_message, media_body
from tests.media.test_tag_writes import stored_tags, tags

pytestmark = pytest.mark.django_db


@pytest.fixture
def limit_3(settings):
    settings.MEDIASTORE_MAX_TAGS = 3


def assert_names_the_limit(sentence: str, limit: int, count: int) -> None:
    assert f"at most {limit} tags" in sentence and "MEDIASTORE_MAX_TAGS" in sentence, sentence
    assert f"leave it with {count}" in sentence, sentence


def test_the_default_limit_is_1000(api, id_types):
    response = api.post("/api/media", media_body("m1", tags=tags(1001)))
    assert_names_the_limit(error_message(response), 1000, 1001)
    assert not Media.objects.exists() and not Tag.objects.exists()
    assert api.post("/api/media", media_body("m1", tags=tags(1000))).status_code == 200
    assert len(stored_tags("m1")) == 1000


CREATES = {
    "create": lambda api, t: api.post("/api/media", media_body("new", tags=t)),
    "bulk create": lambda api, t: api.post("/api/media/create", [media_body("n0"), media_body("n1", tags=t)]),
    "upload": lambda api, t: api.post(
        "/api/upload", {"mediadata": media_body("new", tags=t), "base64": base64.b64encode(b"x").decode()}
    ),
}


@pytest.mark.parametrize("write", CREATES)
def test_creates_with_more_tags_than_the_limit_are_422(api, id_types, limit_3, write):
    response = CREATES[write](api, ["a", "b", "c", "d"])
    assert_names_the_limit(error_message(response), 3, 4)
    if write == "bulk create":
        assert response.json()["detail"][0]["index"] == 1
    assert not Media.objects.exists() and not Tag.objects.exists()
    # A tag given twice counts once.
    assert CREATES[write](api, ["a", "b", "c", "c "]).status_code == 200


def test_replacing_tags_beyond_the_limit_fails_that_item_only(api, id_types, limit_3):
    for pid in ("m1", "m2"):
        assert api.post("/api/media", media_body(pid, tags=["keep"])).status_code == 200
    body = api.put(
        "/api/media/update/tags", [{"pid": "m1", "tags": tags(4)}, {"pid": "m2", "tags": tags(3)}]
    ).json()
    assert body["successes"] == ["m2"]
    [failure] = body["failures"]
    assert (failure["pid"], failure["error"]) == ("m1", "ValidationError")
    assert_names_the_limit(failure["msg"], 3, 4)
    assert stored_tags("m1") == ["keep"] and stored_tags("m2") == tags(3)
    assert Media.objects.get(pid="m1").version == 1


def test_adding_tags_counts_the_total_afterwards(api, id_types, limit_3):
    assert api.post("/api/media", media_body("m1", tags=["a", "b"])).status_code == 200
    body = api.patch("/api/media/update/tags", [{"pid": "m1", "tags": ["c", "d"]}]).json()
    assert body["successes"] == [] and body["failures"][0]["error"] == "ValidationError"
    assert_names_the_limit(body["failures"][0]["msg"], 3, 4)
    assert stored_tags("m1") == ["a", "b"]
    # Tags it has already do not count twice.
    body = api.patch("/api/media/update/tags", [{"pid": "m1", "tags": ["a", "b", "c"]}]).json()
    assert body == {"successes": ["m1"], "failures": []}
    assert stored_tags("m1") == ["a", "b", "c"]
    # Two items for one media: the second sees the first.
    body = api.patch(
        "/api/media/update/tags", [{"pid": "m1", "tags": []}, {"pid": "m1", "tags": ["d"]}]
    ).json()
    assert body["successes"] == ["m1"] and len(body["failures"]) == 1


def test_revert_to_more_tags_than_the_limit_is_422(api, id_types, settings):
    assert api.post("/api/media", media_body("m1", tags=tags(5))).status_code == 200
    assert api.put("/api/media/update/tags", [{"pid": "m1", "tags": ["x"]}]).json()["failures"] == []
    settings.MEDIASTORE_MAX_TAGS = 3
    response = api.post("/api/media/m1/revert", {"version": 1})
    assert_names_the_limit(error_message(response), 3, 5)
    assert stored_tags("m1") == ["x"]


def test_admin_refuses_more_tags_than_the_limit(api, id_types, client, django_user_model, limit_3):
    django_user_model.objects.create_superuser("root", "root@example.org", "pw")
    client.login(username="root", password="pw")
    api.post("/api/media", media_body("m1", tags=["a"]))
    pk = Media.objects.get(pid="m1").pk
    form = {"pid": "m1", "pid_type": "local", "identifiers": "{}", "metadata": "{}", "content_type": ""}
    response = client.post(f"/admin/media/media/{pk}/change/", {**form, "tags": "a, b, c, d"})
    assert response.status_code == 200  # the form again, with the error
    assert "at most 3 tags" in response.content.decode()
    assert stored_tags("m1") == ["a"]


def test_importer_reports_media_with_more_tags_than_the_limit(limit_3):
    old = OldMedia(1, "m1", "local", 1, "k1", "READY", {}, {}, tags=tags(4))
    problem = media_problem(old, {"local": ""})
    assert problem is not None
    assert_names_the_limit(problem, 3, 4)
