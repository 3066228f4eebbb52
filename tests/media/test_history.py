"""The audit history: who, when, what changed, tags included, readable after delete."""

import pytest

from media.models import Media
from tests.conftest import media_body

pytestmark = pytest.mark.django_db


def changes_of(entry):
    return {c["field"]: (c["old"], c["new"]) for c in entry["changes"]}


def test_history_records_user_action_and_changes(api, id_types, user):
    api.post("/api/media", media_body("m1", metadata={"a": 1}))
    api.put("/api/media/update/metadata", [{"pid": "m1", "keys": ["a"], "data": 2}])
    api.patch("/api/media/update/tags", [{"pid": "m1", "tags": ["t1"]}])
    api.patch("/api/media/m1", {"new_pid": "m2"})
    history = api.get("/api/media/m2/history").json()
    assert [e["action"] for e in history] == ["changed", "changed", "changed", "created"]
    assert [e["version"] for e in history] == ["4", "3", "2", "1"]
    assert all(e["user"] == "alice" for e in history)
    assert changes_of(history[0]) == {"pid": ("m1", "m2")}
    assert changes_of(history[1]) == {"tags": ([], ["t1"])}
    assert changes_of(history[2]) == {"metadata": ({"a": 1}, {"a": 2})}
    created = changes_of(history[3])
    assert created["pid"] == (None, "m1") and created["store_status"] == (None, "PENDING")
    marks = [e["mark"] for e in history]
    assert marks == sorted(marks, reverse=True)
    # the old pid finds the same history
    assert api.get("/api/media/m1/history").json() == history


def test_history_user_is_recorded_in_the_database(api, id_types, user):
    api.post("/api/media/create", [media_body("a"), media_body("b")])
    api.put("/api/media/update/tags", [{"pid": "a", "tags": ["x"]}])
    api.delete("/api/media/b")
    rows = Media.history.all()
    assert rows.count() == 4
    assert {row.history_user_id for row in rows} == {user.pk}


def test_history_of_a_deleted_media_stays_readable(api, id_types):
    api.post("/api/media", media_body("m1", tags=["t"]))
    assert api.delete("/api/media/m1").status_code == 204
    history = api.get("/api/media/m1/history").json()
    assert [e["action"] for e in history] == ["deleted", "created"]
    assert history[0]["user"] == "alice"


def test_changes_that_change_nothing_leave_no_history(api, id_types):
    api.post("/api/media", media_body("m1", tags=["t"]))
    api.patch("/api/media/update/tags", [{"pid": "m1", "tags": ["t"]}])
    api.patch("/api/media/m1", {})
    assert len(api.get("/api/media/m1/history").json()) == 1
