"""Media endpoints through HTTP: create, read, update, delete, one at a time and in bulk."""

from urllib.parse import quote

import pytest

from media.models import Media, MediaEvent, TaggedMedia
from tests.conftest import DICT_STORE, create_media, error_message, media_body

pytestmark = pytest.mark.django_db

BIN = "D20240101T000000_IFCB001"


# --- create and get -------------------------------------------------------------------------


def test_create_returns_the_media_and_get_reads_it(api, id_types):
    body = create_media(api, "m1", identifiers={"bin": BIN}, metadata={"a": {"b": 1}}, tags=["y", "x", "y"])
    assert body["pid"] == "m1" and body["pid_type"] == "local"
    assert body["store_status"] == "PENDING"
    assert body["identifiers"] == {"bin": BIN}
    assert body["metadata"] == {"a": {"b": 1}}
    assert body["tags"] == ["x", "y"]
    assert body["store_config"]["type"] == "DictStore" and body["store_config"]["s3_url"] == ""
    assert body["version"] == "1" and body["mark"] > 0
    assert "store_key" not in body
    assert api.get("/api/media/m1").json() == body
    media = Media.objects.get(pid="m1")
    assert sorted(media.tags.names()) == ["x", "y"]
    assert media.store_key


def test_missing_pid_is_minted(api, id_types):
    one = api.post("/api/media", media_body(None)).json()
    two = api.post("/api/media", media_body(None)).json()
    assert one["pid"] and two["pid"] and one["pid"] != two["pid"]


def test_minted_pid_that_cannot_match_the_pattern_is_422(api, id_types):
    response = api.post("/api/media", media_body(None, pid_type="bin"))
    assert "give a pid" in error_message(response)


@pytest.mark.parametrize(
    "over,sentence",
    [
        ({"pid_type": "nope"}, "bad pid_type: nope"),
        ({"identifiers": {"nope": "1"}}, "bad identifier_type: nope"),
    ],
)
def test_contract_sentences(api, id_types, over, sentence):
    response = api.post("/api/media", media_body("m1", **over))
    assert response.status_code == 422
    assert response.json() == {"detail": [{"error": sentence}]}
    assert not Media.objects.exists()


def test_repeated_pid_type_identifier_must_equal_the_pid_and_is_dropped(api, id_types):
    body = create_media(api, "m1", identifiers={"local": "m1", "bin": BIN})
    assert body["identifiers"] == {"bin": BIN}
    response = api.post("/api/media", media_body("m2", identifiers={"local": "other"}))
    assert error_message(response).startswith("duplicate pid_type in identifiers DO NOT MATCH: ")


def test_patterns_are_checked_with_full_match(api, id_types):
    response = api.post("/api/media", media_body("m1", identifiers={"bin": BIN + "x"}))
    assert "does not match the pattern of identifier type 'bin'" in error_message(response)
    response = api.post("/api/media", media_body("not-a-doi", pid_type="doi"))
    assert response.status_code == 422
    assert create_media(api, "10.1234/abc.def", pid_type="doi")["pid"] == "10.1234/abc.def"


def test_identifier_value_that_is_a_number_is_a_schema_422(api, id_types):
    response = api.post("/api/media", media_body("m1", identifiers={"bin": 5}))
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == "Input should be a valid string"


@pytest.mark.parametrize(
    "pid", ["", " lead", "trail ", "a\nb", "x" * 513, "dump", "read", "update/tags", "a/history", "b/content"]
)
def test_bad_pids_are_422(api, id_types, pid):
    assert api.post("/api/media", media_body(pid)).status_code == 422


def test_existing_pid_is_409(api, id_types):
    create_media(api, "m1")
    response = api.post("/api/media", media_body("m1"))
    assert "already exists" in error_message(response, 409)


def test_unknown_media_is_404_not_500(api, id_types):
    response = api.get("/api/media/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "Media 'nope' not found"}
    assert api.patch("/api/media/nope", {}).status_code == 404
    assert api.delete("/api/media/nope").status_code == 404
    assert api.get("/api/media/nope/history").status_code == 404


@pytest.mark.parametrize("pid", ["10.1234/abc.def", "urn:x:y", "a/b/c.d", "dumpy", "x/history/y", "%41_*?"])
def test_pids_with_slashes_colons_dots_route_everywhere(api, id_types, pid):
    create_media(api, pid)
    path = quote(pid, safe="/:")  # as a client builds the URL
    assert api.get(f"/api/media/{path}").json()["pid"] == pid
    assert api.patch(f"/api/media/{path}", {"pid_type": "local"}).status_code == 204
    assert api.get(f"/api/media/{path}/history").json()[0]["pid"] == pid
    assert api.post("/api/media/read", [pid]).json()[0]["pid"] == pid
    assert api.delete(f"/api/media/{path}").status_code == 204
    assert not Media.objects.filter(pid=pid).exists()


def test_store_config_must_be_valid(api, id_types):
    response = api.post("/api/media", media_body("m1", store_config={"type": "Nope", "bucket": "x"}))
    assert response.status_code == 422
    assert response.json() == {"detail": [{"error": 'type "Nope" not supported.'}]}
    response = api.post(
        "/api/media", media_body("m1", store_config={"type": "FilesystemStore", "bucket": "../../x"})
    )
    assert response.status_code == 422
    assert not Media.objects.exists()


# --- bulk create and read -------------------------------------------------------------------


def test_bulk_create_all_or_nothing(api, id_types):
    items = [media_body(f"m{i}") for i in range(3)] + [media_body("bad", pid_type="nope")]
    response = api.post("/api/media/create", items)
    assert response.status_code == 422
    assert response.json() == {"detail": [{"error": "bad pid_type: nope", "index": 3, "pid": "bad"}]}
    assert not Media.objects.exists()
    response = api.post("/api/media/create", [media_body("a"), media_body("b"), media_body("a")])
    assert response.status_code == 409
    assert response.json()["detail"][0]["index"] == 2
    assert not Media.objects.exists()
    created = api.post("/api/media/create", [media_body("a", tags=["t"]), media_body("b")])
    assert created.status_code == 200
    assert [m["pid"] for m in created.json()] == ["a", "b"]
    assert created.json()[0]["tags"] == ["t"]
    response = api.post("/api/media/create", [media_body("c"), media_body("a")])
    assert response.status_code == 409
    assert response.json()["detail"][0] == {
        "error": "media with pid 'a' already exists",
        "index": 1,
        "pid": "a",
    }
    assert not Media.objects.filter(pid="c").exists()


def test_read_and_dump(api, id_types):
    for pid in ("a", "b", "c"):
        create_media(api, pid)
    assert [m["pid"] for m in api.post("/api/media/read", ["c", "x", "a", "c"]).json()] == ["c", "a"]
    assert [m["pid"] for m in api.get("/api/media/dump").json()] == ["a", "b", "c"]


@pytest.mark.parametrize("path", ["/api/media/read", "/api/media/delete"])
def test_absent_body_means_empty_list(api, id_types, path):
    create_media(api, "a")
    response = api.post(path)
    assert response.status_code == 200, response.content
    assert response.json() in ([], {"successes": [], "failures": []})
    assert Media.objects.filter(pid="a").exists()


# --- single updates -------------------------------------------------------------------------


def test_patch_renames_retypes_and_restores(api, id_types):
    before = create_media(api, "m1", identifiers={"bin": BIN})
    assert (
        api.patch("/api/media/m1", {"pid": "ignored", "new_pid": "10.1234/x", "pid_type": "doi"}).status_code
        == 204
    )
    after = api.get("/api/media/10.1234/x").json()
    assert after["pid_type"] == "doi" and after["version"] == "2" and after["mark"] > before["mark"]
    assert api.get("/api/media/m1").status_code == 404
    store = api.post("/api/store", {"type": "DictStore", "bucket": "other"}).json()
    assert api.patch("/api/media/10.1234/x", {"store_config": store["pk"]}).status_code == 204
    assert api.get("/api/media/10.1234/x").json()["store_config"] == store
    assert api.patch("/api/media/10.1234/x", {"store_config": DICT_STORE}).status_code == 204
    assert api.get("/api/media/10.1234/x").json()["store_config"]["bucket"] == "tests"


def test_empty_patch_changes_nothing(api, id_types):
    before = create_media(api, "m1")
    assert api.patch("/api/media/m1", {}).status_code == 204
    assert api.get("/api/media/m1").json() == before


def test_patch_checks_rules(api, id_types):
    create_media(api, "m1")
    create_media(api, "m2")
    cases = [
        ({"pid_type": "doi"}, 422),  # m1 does not match the doi pattern
        ({"pid_type": "nope"}, 422),
        ({"new_pid": "m2"}, 409),
        ({"new_pid": ""}, 422),
        ({"store_config": 999999}, 404),
        ({"store_config": {"type": "X", "bucket": "y"}}, 422),
    ]
    for body, status in cases:
        response = api.patch("/api/media/m1", body)
        assert response.status_code == status, (body, response.content)
    assert api.get("/api/media/m1").json()["version"] == "1"


def test_bulk_patch_pairs_pids_with_medias(api, id_types):
    create_media(api, "a")
    create_media(api, "b")
    response = api.patch(
        "/api/media/update",
        {"pids": ["a", "b", "zz"], "medias": [{"new_pid": "a2"}, {"new_pid": "b2"}, {"new_pid": "z2"}]},
    )
    assert response.status_code == 200
    assert response.json() == {
        "successes": ["a", "b"],
        "failures": [{"pid": "zz", "error": "NotFound", "msg": "Media 'zz' not found"}],
    }
    assert set(Media.objects.values_list("pid", flat=True)) == {"a2", "b2"}
    response = api.patch("/api/media/update", {"pids": ["a2"], "medias": []})
    assert response.status_code == 422


# --- bulk updates ---------------------------------------------------------------------------


def test_tags_add_and_replace(api, id_types):
    create_media(api, "a", tags=["x"])
    create_media(api, "b")
    response = api.patch(
        "/api/media/update/tags", [{"pid": "a", "tags": ["y"]}, {"pid": "nope", "tags": ["y"]}]
    )
    assert response.json()["successes"] == ["a"]
    assert response.json()["failures"][0]["error"] == "NotFound"
    assert api.get("/api/media/a").json()["tags"] == ["x", "y"]
    assert sorted(Media.objects.get(pid="a").tags.names()) == ["x", "y"]
    api.put("/api/media/update/tags", [{"pid": "a", "tags": ["z"]}, {"pid": "b", "tags": ["z", "w"]}])
    assert api.get("/api/media/a").json()["tags"] == ["z"]
    assert sorted(Media.objects.get(pid="b").tags.names()) == ["w", "z"]
    assert TaggedMedia.objects.count() == 3
    response = api.put("/api/media/update/tags", [{"pid": "a", "tags": [""]}])
    assert response.json()["failures"][0]["error"] == "ValidationError"


def test_identifiers_replace(api, id_types):
    create_media(api, "a", identifiers={"bin": BIN})
    response = api.put(
        "/api/media/update/identifiers",
        [
            {"pid": "a", "identifiers": {"doi": "10.1234/x"}},
            {"pid": "a", "identifiers": {"nope": "1"}},
            {"pid": "a", "identifiers": {"local": "other"}},
        ],
    )
    body = response.json()
    assert body["successes"] == ["a"]
    assert [f["msg"] for f in body["failures"]] == [
        "bad identifier_type: nope",
        "duplicate pid_type in identifiers DO NOT MATCH: local='other' but pid='a'",
    ]
    assert api.get("/api/media/a").json()["identifiers"] == {"doi": "10.1234/x"}


def test_storekeys(api, id_types):
    create_media(api, "a")
    create_media(api, "b")
    response = api.put(
        "/api/media/update/storekeys",
        [
            {"pid": "a", "store_key": "dir/obj.bin"},
            {"pid": "b", "store_key": "dir/obj.bin"},
            {"pid": "b", "store_key": "../etc/passwd"},
            {"pid": "b", "store_key": "/etc/passwd"},
            {"pid": "b", "store_key": ""},
        ],
    )
    body = response.json()
    assert body["successes"] == ["a"]
    assert [f["error"] for f in body["failures"]] == ["Conflict"] + ["ValidationError"] * 3
    assert Media.objects.get(pid="a").store_key == "dir/obj.bin"


def test_metadata_operations(api, id_types):
    create_media(api, "a", metadata={"keep": 1, "a": {"b": {"c": 1}, "n": [1]}})

    def metadata():
        return api.get("/api/media/a").json()["metadata"]

    def call(method, **item):
        response = api.request(method, "/api/media/update/metadata", [{"pid": "a", **item}])
        assert response.status_code == 200
        return response.json()

    call("PUT", keys=["a", "b", "d"], data={"e": 2})
    assert metadata()["a"]["b"] == {"c": 1, "d": {"e": 2}}
    call("PUT", keys=["x", "y"], data=[1, 2])
    assert metadata()["x"] == {"y": [1, 2]}
    call("PATCH", data={"top": True})
    assert metadata()["top"] is True and metadata()["keep"] == 1
    call("PATCH", keys=["a", "b"], data={"c": 5})
    assert metadata()["a"]["b"] == {"c": 5, "d": {"e": 2}}
    call("DELETE", keys=["a", "b", "d"])
    assert metadata()["a"]["b"] == {"c": 5}
    failed = call("DELETE", keys=["a", "missing"])
    assert failed["failures"][0]["error"] == "NotFound"
    failed = call("PUT", keys=["a", "n", "z"], data=1)
    assert failed["failures"][0]["msg"] == "metadata at 'a.n' is not an object"
    failed = call("PUT", data=[1])
    assert failed["failures"][0]["error"] == "ValidationError"
    call("PUT", data={"fresh": 1})
    assert metadata() == {"fresh": 1}
    call("DELETE")
    assert metadata() == {}


def test_update_items_fail_on_their_own(api, id_types):
    create_media(api, "a")
    response = api.patch(
        "/api/media/update/metadata",
        [
            {"pid": "a", "data": {"k": 1}},
            {"pid": "missing", "data": {}},
            {"pid": "a", "data": "not an object"},
        ],
    )
    body = response.json()
    assert body["successes"] == ["a"] and len(body["failures"]) == 2
    assert api.get("/api/media/a").json()["metadata"] == {"k": 1}


# --- delete ---------------------------------------------------------------------------------


def test_bulk_delete(api, id_types):
    create_media(api, "a")
    create_media(api, "b")
    response = api.post("/api/media/delete", ["a", "nope", "b"])
    assert response.json() == {
        "successes": ["a", "b"],
        "failures": [{"pid": "nope", "error": "NotFound", "msg": "Media 'nope' not found"}],
    }
    assert not Media.objects.exists()


def test_a_delete_leaves_the_history_and_event_of_the_media_as_it_was(api, id_types):
    """``DELETE /api/media/{pid}`` is a one-item ``POST /api/media/delete`` (content.deletes), which
    writes its rows in one go (tests/media/test_query_budget.py) instead of through ``Model.delete()``
    and simple-history's signal. What it leaves must be what those would: a "deleted" history row
    of the deleting user and the media's last version, no tag links, and one ``media.deleted``
    event carrying the media as it was. (Until issue 32 the two endpoints had two implementations,
    kept equal by comparing them here.)"""
    for pid in ("one", "bulk1", "bulk2"):
        create_media(api, pid, tags=["x", "y"], metadata={"k": pid})
        assert api.patch("/api/media/update/metadata", [{"pid": pid, "data": {"v": 2}}]).status_code == 200
    response = api.delete("/api/media/one")
    assert response.status_code == 204 and response.content == b""
    body = api.post("/api/media/delete", ["bulk1", "bulk2", "bulk1"]).json()
    assert body["successes"] == ["bulk1", "bulk2"]
    assert body["failures"] == [{"pid": "bulk1", "error": "NotFound", "msg": "Media 'bulk1' not found"}]
    assert not Media.objects.exists() and not Media.tags.through.objects.exists()

    for pid in ("one", "bulk1", "bulk2"):
        history = api.get(f"/api/media/{pid}/history").json()  # newest first
        assert [entry["action"] for entry in history] == ["deleted", "changed", "created"]
        assert history[0]["user"] == "alice"
        assert history[0]["version"] == history[1]["version"] == "2"
        assert history[0]["changes"] == []
        event = MediaEvent.objects.get(pid=pid, type="media.deleted")
        assert (event.version, event.user) == (2, "alice")
        assert event.media["tags"] == ["x", "y"] and event.media["metadata"] == {"k": pid, "v": 2}
    assert api.delete("/api/media/one").json() == {"detail": "Media 'one' not found"}


# --- search (tags only here; the full search has its own tests) -----------------------------


def test_search_by_any_tag_returns_each_media_once(api, id_types):
    create_media(api, "a", tags=["x", "y"])
    create_media(api, "b", tags=["y"])
    create_media(api, "c", tags=["z"])
    found = api.post("/api/media/search", {"tags": ["x", "y"]}).json()
    assert [m["pid"] for m in found] == ["a", "b"]


# --- marks and versions ---------------------------------------------------------------------


def test_mark_grows_across_all_media_and_version_counts_revisions(api, id_types):
    a1 = create_media(api, "a")
    b1 = create_media(api, "b")
    assert b1["mark"] > a1["mark"]
    api.patch("/api/media/update/tags", [{"pid": "a", "tags": ["t"]}])
    a2 = api.get("/api/media/a").json()
    assert a2["mark"] > b1["mark"] and a2["version"] == "2"
    api.put("/api/media/update/metadata", [{"pid": "a", "data": {"x": 1}}])
    assert api.get("/api/media/a").json()["version"] == "3"
    assert api.get("/api/media/b").json()["version"] == "1"


def test_nulls_from_the_published_clients_optional_fields_mean_defaults(api, id_types):
    """The published schemas package declares these Optional, so its model_dump() may send null."""
    body = media_body("n1", identifiers=None, metadata=None, tags=None)
    body["store_config"] = {"type": "DictStore", "bucket": "tests", "s3_url": None}
    created = api.post("/api/media", body)
    assert created.status_code == 200, created.content
    assert created.json()["identifiers"] == {} and created.json()["tags"] == []
    patch = {"pid": "n1", "new_pid": None, "pid_type": None, "store_config": None}
    assert api.patch("/api/media/n1", patch).status_code == 204
    result = api.put("/api/media/update/metadata", [{"pid": "n1", "keys": None, "data": None}]).json()
    assert result["successes"] == ["n1"]
    assert api.get("/api/media/n1").json()["metadata"] == {}
