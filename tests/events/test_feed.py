"""GET /api/events: one event per change of a media, written with the change, read in order.

The feed is what pipeline services follow instead of polling dump; these pin every event type
and field, one event per media on the bulk endpoints, paging with ``next``, the types filter,
long-poll parameters, 410 after pruning, and who may read it.
"""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from media.models import MediaEvent
from tests.conftest import PASSWORD, ApiClient, media_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def local_store(storage_root):
    return lambda name: {"type": "FilesystemStore", "bucket": name}


def feed(api, **params) -> dict:
    query = "&".join(
        f"{key}={v}" for key, value in params.items() for v in (value if isinstance(value, list) else [value])
    )
    response = api.get(f"/api/events?{query}")
    assert response.status_code == 200, response.content
    return response.json()


def all_events(api, **params) -> list[dict]:
    return feed(api, limit=1000, **params)["items"]


def put_bytes(api, pid: str, data: bytes, content_type: str = "text/plain") -> None:
    response = api.put_content(pid, data, content_type)
    assert response.status_code == 200, response.content


def test_every_kind_of_change_is_one_event_with_the_media_as_the_api_answers_it(api, id_types, local_store):
    seen = []  # (expected type, expected changed, the media as GET answers after the change)

    def step(kind, changed, response, pid="m1"):
        assert response.status_code in (200, 204), response.content
        seen.append((kind, changed, api.get(f"/api/media/{pid}").json()))

    step("media.created", [], api.post("/api/media", media_body("m1", store_config=local_store("a"))))
    step("media.tags_changed", ["tags"], api.put("/api/media/update/tags", [{"pid": "m1", "tags": ["x"]}]))
    step(
        "media.updated",
        ["metadata"],
        api.put("/api/media/update/metadata", [{"pid": "m1", "data": {"a": 1}}]),
    )
    step(
        "media.updated",
        ["identifiers"],
        api.put("/api/media/update/identifiers", [{"pid": "m1", "identifiers": {"doi": "10.1234/a"}}]),
    )
    put_bytes(api, "m1", b"first bytes")
    seen.append(
        (
            "media.bytes_stored",
            ["checksum", "content_type", "size", "store_status"],
            api.get("/api/media/m1").json(),
        )
    )
    put_bytes(api, "m1", b"other bytes")  # same size and type: only the checksum changes
    seen.append(("media.bytes_stored", ["checksum"], api.get("/api/media/m1").json()))
    step(
        "media.moved",
        ["store_config", "store_key"],
        api.patch("/api/media/m1", {"store_config": local_store("b")}),
    )
    step("media.updated", ["pid"], api.patch("/api/media/m1", {"new_pid": "m2"}), pid="m2")
    step(
        "media.reverted",
        ["metadata", "pid", "tags", "identifiers"],
        api.post("/api/media/m2/revert", {"version": 1}),
    )
    as_it_was = seen[-1][2]
    assert api.delete("/api/media/m1").status_code == 204

    events = all_events(api)

    assert len(events) == len(seen) + 1
    for event, (kind, changed, media) in zip(events, seen, strict=False):
        assert event["type"] == kind
        assert event["changed"] == sorted(changed), kind
        assert event["media"] == media, kind
        assert (event["pid"], event["mark"], event["version"]) == (
            media["pid"],
            media["mark"],
            int(media["version"]),
        )
        assert event["user"] == "alice"
    deleted = events[-1]
    assert deleted["type"] == "media.deleted" and deleted["changed"] == []
    assert deleted["media"] == as_it_was and deleted["pid"] == "m1"
    assert (deleted["mark"], deleted["version"]) == (as_it_was["mark"], int(as_it_was["version"]))
    cursors = [int(event["cursor"]) for event in events]
    assert cursors == sorted(set(cursors))
    assert [event["version"] for event in events[:-1]] == list(range(1, len(seen) + 1))
    assert set(events[0]) == {"cursor", "type", "pid", "mark", "version", "user", "time", "changed", "media"}


def test_bulk_endpoints_write_one_event_per_changed_media_and_none_for_failures(api, id_types):
    pids = [f"b{i}" for i in range(5)]
    assert api.post("/api/media/create", [media_body(pid) for pid in pids]).status_code == 200
    items = [{"pid": pid, "tags": ["t"]} for pid in pids] + [{"pid": "nope", "tags": ["t"]}]
    assert api.patch("/api/media/update/tags", items).json()["failures"][0]["pid"] == "nope"
    assert api.patch("/api/media/update/tags", items[:2]).status_code == 200  # changes nothing
    # all or nothing: a duplicate makes the whole create fail, and no event is written
    assert api.post("/api/media/create", [media_body("c1"), media_body("b0")]).status_code == 409
    assert api.post("/api/media/delete", ["b0", "b1", "nope"]).status_code == 200

    events = all_events(api)

    kinds = [(event["type"], event["pid"]) for event in events]
    assert kinds == (
        [("media.created", pid) for pid in pids]
        + [("media.tags_changed", pid) for pid in pids]
        + [("media.deleted", "b0"), ("media.deleted", "b1")]
    )
    assert MediaEvent.objects.count() == 12


def test_an_upload_with_bytes_is_one_created_event_of_a_ready_media(api, id_types):
    body = {"mediadata": media_body("u1"), "base64": base64.b64encode(b"hello").decode()}
    assert api.post("/api/upload", body).status_code == 200
    [event] = all_events(api)
    assert event["type"] == "media.created"
    assert event["media"]["store_status"] == "READY" and event["media"]["size"] == 5
    assert event["media"] == api.get("/api/media/u1").json()


def test_paging_with_next_gives_every_event_once(api, id_types):
    for i in range(7):
        assert api.post("/api/media", media_body(f"p{i}")).status_code == 200
    got, after, pages = [], None, 0
    for _ in range(10):
        page = feed(api, limit=3, **({"after": after} if after is not None else {}))
        if not page["items"]:
            break
        pages += 1
        got += page["items"]
        after = page["next"]
        assert after == page["items"][-1]["cursor"]
    assert pages == 3
    assert [event["pid"] for event in got] == [f"p{i}" for i in range(7)]
    assert feed(api, after=after) == {"items": [], "next": after}
    assert api.post("/api/media", media_body("p7")).status_code == 200
    assert [event["pid"] for event in feed(api, after=after)["items"]] == ["p7"]


def test_types_filter_comma_list_or_repeated_and_next_skips_what_it_left_out(api, id_types):
    assert api.post("/api/media", media_body("f1")).status_code == 200
    api.put("/api/media/update/tags", [{"pid": "f1", "tags": ["t"]}])
    api.put("/api/media/update/metadata", [{"pid": "f1", "data": {"a": 1}}])
    api.put("/api/media/update/tags", [{"pid": "f1", "tags": []}])
    everything = all_events(api)

    one = feed(api, types="media.tags_changed")
    assert [event["version"] for event in one["items"]] == [2, 4]
    both = feed(api, types="media.created,media.updated")
    repeated = feed(api, types=["media.created", "media.updated"])
    assert both == repeated
    assert [event["type"] for event in both["items"]] == ["media.created", "media.updated"]
    assert one["next"] == both["next"] == everything[-1]["cursor"]
    nothing = feed(api, types="media.deleted")
    assert nothing["items"] == [] and nothing["next"] == everything[-1]["cursor"]


def test_an_empty_feed_answers_a_cursor_that_resumes(api, id_types):
    start = feed(api)
    assert start["items"] == []
    assert api.post("/api/media", media_body("e1")).status_code == 200
    assert [event["pid"] for event in feed(api, after=start["next"])["items"]] == ["e1"]


def test_wait_long_polls_and_returns_empty_when_nothing_arrives(api, id_types):
    start = feed(api)
    page = feed(api, after=start["next"], wait=1)
    assert page == {"items": [], "next": start["next"]}


def test_a_long_poll_without_a_free_waiting_place_answers_at_once_with_retry_after(api, id_types, settings):
    settings.MEDIASTORE_EVENTS_WAITERS = 0
    start = feed(api)
    response = api.get(f"/api/events?after={start['next']}&wait=30")
    assert response.status_code == 200
    assert response.json() == {"items": [], "next": start["next"]}
    assert response["Retry-After"] == "5"
    assert api.post("/api/media", media_body("w1")).status_code == 200
    found = api.get(f"/api/events?after={start['next']}&wait=30")  # events answer whatever the places
    assert [event["pid"] for event in found.json()["items"]] == ["w1"]
    assert "Retry-After" not in found


def test_a_long_poll_that_waited_gives_its_place_back(api, id_types, settings):
    settings.MEDIASTORE_EVENTS_WAITERS = 1
    start = feed(api)
    for _ in range(2):
        response = api.get(f"/api/events?after={start['next']}&wait=1")
        assert response.json() == {"items": [], "next": start["next"]}
        assert "Retry-After" not in response


@pytest.mark.parametrize(
    "query",
    ["after=abc", "after=-1", "limit=0", "limit=1001", "wait=31", "wait=-1", "types=media.exploded"],
)
def test_bad_parameters_are_422(api, query):
    response = api.get(f"/api/events?{query}")
    assert response.status_code == 422, response.content


def test_a_cursor_beyond_the_newest_event_is_422(api, id_types):
    """Regression: a cursor the feed never gave was accepted, and the client waited for events
    numbered past it, missing the ones before."""
    assert api.post("/api/media", media_body("b1")).status_code == 200
    newest = feed(api)["next"]
    assert api.get(f"/api/events?after={newest}").status_code == 200
    response = api.get(f"/api/events?after={int(newest) + 1}&wait=5")
    assert response.status_code == 422
    assert f"beyond the newest event ({newest})" in response.json()["detail"][0]["error"]


def test_pruned_events_make_an_older_cursor_410(api, id_types):
    for i in range(4):
        assert api.post("/api/media", media_body(f"r{i}")).status_code == 200
    events = all_events(api)
    old = timezone.now() - timedelta(days=31)
    MediaEvent.objects.filter(pid__in=["r0", "r1"]).update(time=old)
    MediaEvent.objects.filter(pid="r3").update(time=old)  # old, but after a kept one: kept (a prefix goes)

    call_command("prune_events")

    assert list(MediaEvent.objects.values_list("pid", flat=True)) == ["r2", "r3"]
    assert [event["pid"] for event in all_events(api)] == ["r2", "r3"]
    gone = api.get(f"/api/events?after={events[0]['cursor']}")
    assert gone.status_code == 410, gone.content
    assert "pruned" in gone.json()["detail"]
    ok = feed(api, after=events[1]["cursor"])  # the consumer had seen r1: nothing it missed is gone
    assert [event["pid"] for event in ok["items"]] == ["r2", "r3"]

    call_command("prune_events", "--days", "0")
    assert MediaEvent.objects.count() == 0
    assert api.get(f"/api/events?after={events[2]['cursor']}").status_code == 410
    assert feed(api, after=events[3]["cursor"]) == {"items": [], "next": events[3]["cursor"]}
    assert feed(api) == {"items": [], "next": events[3]["cursor"]}


def test_with_a_relay_configured_prune_keeps_what_it_has_not_published(api, id_types, settings):
    """Pruning by age alone would delete events the AMQP relay never sent (broker down for longer
    than the retention): AMQP consumers would miss those changes for good."""
    for i in range(4):
        assert api.post("/api/media", media_body(f"p{i}")).status_code == 200
    MediaEvent.objects.update(time=timezone.now() - timedelta(days=31))
    MediaEvent.objects.filter(pid__in=["p0", "p1", "p3"]).update(published=timezone.now())
    settings.MEDIASTORE_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"

    call_command("prune_events")

    assert list(MediaEvent.objects.values_list("pid", flat=True)) == [
        "p2",
        "p3",
    ]  # p3 after p2: a prefix goes
    MediaEvent.objects.update(published=timezone.now())
    call_command("prune_events")
    assert MediaEvent.objects.count() == 0


def test_readers_may_follow_the_feed_others_may_not(django_user_model, api, id_types, anon):
    for name, group in [("reader", "readers"), ("nobody", None)]:
        user = django_user_model.objects.create_user(username=name, password=PASSWORD)
        if group:
            user.groups.add(Group.objects.get(name=group))
    tokens = {
        name: ApiClient().post("/api/login", {"username": name, "password": PASSWORD}).json()["token"]
        for name in ("reader", "nobody")
    }
    assert api.post("/api/media", media_body("v1")).status_code == 200
    reader = ApiClient(tokens["reader"]).get("/api/events")
    assert reader.status_code == 200 and reader.json()["items"][0]["pid"] == "v1"
    assert ApiClient(tokens["nobody"]).get("/api/events").status_code == 403
    assert anon.get("/api/events").status_code == 401


@pytest.mark.parametrize("extra", ["", "&types=media.created,media.tags_changed"])
def test_a_page_costs_the_same_statements_whatever_its_size(api, id_types, extra):
    """A page of 200 events reads them in one statement, as a page of 10 does (no query per event)."""
    assert api.post("/api/media/create", [media_body(f"q{i}") for i in range(220)]).status_code == 200
    start = feed(api, limit=1)["next"]
    counts = {}
    for limit in (10, 200):
        for after in ("", f"&after={start}"):
            with CaptureQueriesContext(connection) as queries:
                response = api.get(f"/api/events?limit={limit}{after}{extra}")
            assert response.status_code == 200 and len(response.json()["items"]) == limit
            counts[limit, after] = len(queries.captured_queries)
    # 5 today: the token and the user's permissions, the oldest event kept, the newest, the page.
    assert len(set(counts.values())) == 1 and max(counts.values()) <= 6, counts
