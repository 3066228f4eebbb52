"""POST /api/media/{pid}/revert: restores pid, pid_type, identifiers, metadata and tags of an
earlier revision through today's rules, never the byte fields, and is recorded as a revert."""

import hashlib

import pytest

from media.models import Media
from tests.conftest import error_message, media_body

pytestmark = pytest.mark.django_db

BYTE_FIELDS = ("store_config", "store_status", "size", "checksum", "content_type")


@pytest.fixture
def local_store(storage_root):
    return lambda name: {"type": "FilesystemStore", "bucket": name}


def put_bytes(api, pid: str, data: bytes, content_type: str = "application/octet-stream"):
    response = api.put_content(pid, data, content_type)
    assert response.status_code == 200, response.content
    return response.json()


def test_revert_restores_record_fields_and_never_the_bytes(api, id_types, local_store):
    """The bug: the admin's revert restored store key, status, size and checksum blindly, which could
    point a READY media at bytes that are not there."""
    ids = {"bin": "D20240101T000000_IFCB001"}
    body = media_body("m1", store_config=local_store("a"), tags=["old"], metadata={"a": 1}, identifiers=ids)
    assert api.post("/api/media", body).status_code == 200
    api.put("/api/media/update/tags", [{"pid": "m1", "tags": ["new", "newer"]}])
    api.put("/api/media/update/metadata", [{"pid": "m1", "data": {"b": 2}}])
    api.put("/api/media/update/identifiers", [{"pid": "m1", "identifiers": {}}])
    put_bytes(api, "m1", b"first bytes")
    assert api.patch("/api/media/m1", {"store_config": local_store("b")}).status_code == 204
    put_bytes(api, "m1", b"second bytes", "text/plain")
    before = api.get("/api/media/m1").json()
    key_before = Media.objects.get(pid="m1").store_key
    assert before["version"] == "7" and before["store_config"]["bucket"] == "b"

    response = api.post("/api/media/m1/revert", {"version": 1})

    assert response.status_code == 200, response.content
    after = response.json()
    assert after == api.get("/api/media/m1").json()
    assert after["tags"] == ["old"] and after["metadata"] == {"a": 1}
    assert after["identifiers"] == ids
    assert {f: after[f] for f in BYTE_FIELDS} == {f: before[f] for f in BYTE_FIELDS}
    assert after["store_status"] == "READY"
    assert after["checksum"] == "sha256:" + hashlib.sha256(b"second bytes").hexdigest()
    assert Media.objects.get(pid="m1").store_key == key_before
    assert after["version"] == "8" and after["mark"] > before["mark"]
    assert api.get("/api/media/m1/verify").json()["ok"] is True
    assert b"".join(api.get("/api/media/m1/content").streaming_content) == b"second bytes"
    # the tag search sees the restored tags (taggit rows follow)
    assert [m["pid"] for m in api.post("/api/media/search", {"tags": ["old"]}).json()] == ["m1"]
    assert api.post("/api/media/search", {"tags": ["new"]}).json() == []


def test_revert_is_in_the_history_with_user_and_reason(api, id_types):
    api.post("/api/media", media_body("m1", tags=["a"]))
    api.put("/api/media/update/tags", [{"pid": "m1", "tags": ["b"]}])
    api.post("/api/media/m1/revert", {"version": 1})
    history = api.get("/api/media/m1/history").json()
    assert [e["version"] for e in history] == ["3", "2", "1"]
    latest = history[0]
    assert latest["user"] == "alice" and latest["action"] == "changed"
    assert latest["reason"] == "revert to version 1"
    assert latest["changes"] == [{"field": "tags", "old": ["b"], "new": ["a"]}]
    assert history[1]["reason"] is None


def test_revert_restores_an_earlier_pid_and_pid_type(api, id_types):
    api.post("/api/media", media_body("10.1234/x.1", pid_type="doi"))
    assert api.patch("/api/media/10.1234/x.1", {"new_pid": "plain", "pid_type": "local"}).status_code == 204
    response = api.post("/api/media/plain/revert", {"version": 1})
    assert response.status_code == 200, response.content
    assert (response.json()["pid"], response.json()["pid_type"]) == ("10.1234/x.1", "doi")
    assert api.get("/api/media/plain").status_code == 404
    # a pid with slashes routes to the revert endpoint too
    assert api.post("/api/media/10.1234/x.1/revert", {"version": 2}).json()["pid"] == "plain"


def test_unknown_pid_and_unknown_version_are_404_and_say_which(api, id_types):
    api.post("/api/media", media_body("m1"))
    response = api.post("/api/media/nope/revert", {"version": 1})
    assert response.status_code == 404 and response.json() == {"detail": "Media 'nope' not found"}
    response = api.post("/api/media/m1/revert", {"version": 5})
    assert response.status_code == 404 and response.json() == {"detail": "Media 'm1' version '5' not found"}
    assert api.post("/api/media/m1/revert", {"version": 0}).status_code == 422
    assert api.post("/api/media/m1/revert", {}).status_code == 422


def test_revert_that_breaks_todays_pid_rules_is_422_and_changes_nothing(api, id_types):
    api.post("/api/media", media_body("D20240101T000000_IFCB001", pid_type="local"))
    api.patch("/api/media/D20240101T000000_IFCB001", {"new_pid": "m2"})
    # today the pid_type of version 1 demands another pattern
    api.put("/api/identifier", {"name": "local", "pattern": r"m\d"})
    response = api.post("/api/media/m2/revert", {"version": 1})
    assert "does not match the pattern" in error_message(response)
    media = api.get("/api/media/m2").json()
    assert media["version"] == "2" and media["pid"] == "m2"


def test_revert_to_a_pid_another_media_has_now_is_409(api, id_types):
    api.post("/api/media", media_body("m1"))
    api.patch("/api/media/m1", {"new_pid": "m2"})
    api.post("/api/media", media_body("m1"))
    response = api.post("/api/media/m2/revert", {"version": 1})
    assert error_message(response, 409) == "media with pid 'm1' already exists"
    assert api.get("/api/media/m2").json()["version"] == "2"


def test_revert_to_the_current_values_records_nothing(api, id_types):
    api.post("/api/media", media_body("m1"))
    response = api.post("/api/media/m1/revert", {"version": 1})
    assert response.status_code == 200 and response.json()["version"] == "1"
    assert len(api.get("/api/media/m1/history").json()) == 1


def test_pids_ending_in_revert_are_refused(api, id_types):
    response = api.post("/api/media", media_body("a/revert"))
    assert "reserved" in error_message(response)
