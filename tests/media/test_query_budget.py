"""Query counts of the read and bulk endpoints do not grow with the number of media.

The earlier server ran several queries per media row; these pin constant counts by measuring the
same call at 10 and at 200 media.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from media.models import MediaEvent
from tests.conftest import media_body

pytestmark = pytest.mark.django_db


def count_queries(call) -> tuple[int, object]:
    with CaptureQueriesContext(connection) as ctx:
        response = call()
        if response.streaming:  # a streamed answer runs its queries while it is read
            body = b"".join(response.streaming_content)
            assert body.startswith(b"[") and body.endswith(b"]")
    assert response.status_code == 200, response.content[:500]
    return len(ctx.captured_queries), response


def bodies(prefix: str, n: int) -> list[dict]:
    stores = [{"type": "DictStore", "bucket": "s1"}, {"type": "DictStore", "bucket": "s2"}]
    return [
        media_body(
            f"{prefix}{i}", store_config=stores[i % 2], tags=["a", "b"] if i % 2 else ["c"], metadata={"i": i}
        )
        for i in range(n)
    ]


@pytest.fixture
def warm(api, id_types):
    """Stores and tags exist already, so both sizes measure the same kind of work."""
    assert api.post("/api/media/create", bodies("warm", 4)).status_code == 200


def measure(api, make_call, sizes=(10, 200)):
    """Query counts of make_call(prefix, n) for fresh media, after one warm-up call that creates
    whatever tags and stores the call uses (their one-off creation is bounded by distinct names)."""
    assert api.post("/api/media/create", bodies("warmup-", 2)).status_code == 200
    assert make_call("warmup-", 2).status_code == 200
    counts = []
    for n in sizes:
        prefix = f"n{n}-"
        assert api.post("/api/media/create", bodies(prefix, n)).status_code == 200
        counts.append(count_queries(lambda p=prefix, k=n: make_call(p, k))[0])
    return counts


def test_bulk_create_is_constant(api, warm):
    counts = [
        count_queries(lambda n=n: api.post("/api/media/create", bodies(f"c{n}-", n)))[0] for n in (10, 200)
    ]
    assert counts[0] == counts[1], counts
    # 15 before the outbox (the token, its user and permissions are one statement); events add two
    # statements whatever n: the counter update, one insert; usage (quotas.services.charge) one to
    # look up the quotas that apply and one update per (store, owner) pair written (two stores here);
    # the recycle bin one (does it hold any media, whose pid or store key a new one would take).
    assert counts[0] <= 21
    events = MediaEvent.objects.filter(pid__startswith="c200-")
    assert events.count() == 200 and set(events.values_list("type", flat=True)) == {"media.created"}


def test_bulk_delete_is_constant(api, warm):
    counts = measure(
        api, lambda p, n: api.post("/api/media/delete", [f"{p}{i}" for i in range(n)] + ["nope"])
    )
    # the token, the locked read and its stores (media.selectors.media_locked), history rows, tag
    # links, rows, the two statements of events, the media's replicas (content.replicas: none here),
    # and the savepoint and its release (the test runs inside a transaction); usage: one update per
    # (store, owner) pair of the deleted media (two stores here); with the recycle bin
    # (MEDIASTORE_TRASH_DAYS > 0, the default) two more: binned media of the same pids, the bin's insert
    assert counts[0] == counts[1] <= 15, counts
    events = MediaEvent.objects.filter(pid__startswith="n200-", type="media.deleted")
    assert events.count() == 200


def test_read_is_constant(api, warm):
    counts = measure(api, lambda p, n: api.post("/api/media/read", [f"{p}{i}" for i in range(n)]))
    assert counts[0] == counts[1] <= 2, counts


def test_dump_is_constant(api, warm):
    counts = []
    for n in (10, 200):
        api.post("/api/media/create", bodies(f"d{n}-", n))
        counts.append(count_queries(lambda: api.get("/api/media/dump"))[0])
    assert counts[0] == counts[1] <= 3, counts


def test_get_one_is_a_small_constant(api, warm):
    n, _ = count_queries(lambda: api.get("/api/media/warm1"))
    assert n <= 2


@pytest.mark.parametrize(
    "method,path,item",
    [
        ("PATCH", "/api/media/update/tags", lambda pid: {"pid": pid, "tags": ["new", "b"]}),
        ("PUT", "/api/media/update/tags", lambda pid: {"pid": pid, "tags": ["z"]}),
        ("PUT", "/api/media/update/metadata", lambda pid: {"pid": pid, "keys": ["x"], "data": 1}),
        ("PATCH", "/api/media/update/metadata", lambda pid: {"pid": pid, "data": {"y": 2}}),
        ("DELETE", "/api/media/update/metadata", lambda pid: {"pid": pid, "keys": ["i"]}),
        (
            "PUT",
            "/api/media/update/identifiers",
            lambda pid: {"pid": pid, "identifiers": {"doi": "10.1234/x"}},
        ),
        ("PUT", "/api/media/update/storekeys", lambda pid: {"pid": pid, "store_key": f"k/{pid}"}),
    ],
)
def test_bulk_updates_are_constant(api, warm, method, path, item):
    counts = measure(api, lambda p, n: api.request(method, path, [item(f"{p}{i}") for i in range(n)]))
    assert counts[0] == counts[1], counts


def test_bulk_patch_is_constant(api, warm):
    def call(prefix, n):
        pids = [f"{prefix}{i}" for i in range(n)]
        medias = [
            {"new_pid": f"{pid}-renamed", "store_config": {"type": "DictStore", "bucket": "s3"}}
            for pid in pids
        ]
        return api.patch("/api/media/update", {"pids": pids, "medias": medias})

    counts = measure(api, call)
    assert counts[0] == counts[1], counts


def test_event_feed_page_is_constant(api, warm):
    """GET /api/events: one page costs the same statements whether it holds 10 or 200 events."""
    counts = []
    for n in (10, 200):
        assert api.post("/api/media/create", bodies(f"e{n}-", n)).status_code == 200
        newest = MediaEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
        n_queries, response = count_queries(
            lambda n=n, top=newest: api.get(f"/api/events?after={top - n}&limit={n}")
        )
        assert len(response.json()["items"]) == n
        counts.append(n_queries)
    # the token (with user and permissions), then the feed: the newest number, the page, the oldest
    # kept (pruning check)
    assert counts[0] == counts[1] <= 4, counts


def test_a_single_read_is_one_statement_with_the_token(api, id_types):
    """Issue 34: the token (with its user and permissions) and the media were two statements, two
    round trips to the database; GET /api/media/{pid} reads both in one."""
    created = api.post("/api/media", media_body("one-stmt", metadata={"k": [1, "x"]}))
    assert created.status_code == 200, created.content
    api.get("/api/media/one-stmt")  # the token's last_used is noted (a write) at most once a minute
    count, response = count_queries(lambda: api.get("/api/media/one-stmt"))
    assert count == 1
    assert response.json() == created.json()


def test_a_single_read_of_an_unknown_pid_or_with_a_bad_token_reads_nothing_for_the_caller(
    api, id_types, anon
):
    assert api.post("/api/media", media_body("known")).status_code == 200
    assert api.get("/api/media/unknown").status_code == 404
    refused = anon.get("/api/media/known", headers={"Authorization": "Bearer not-a-token"})
    assert refused.status_code == 401
    assert "known" not in refused.content.decode()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-tag page of PostgreSQL")
def test_a_search_by_one_tag_is_the_token_and_one_statement(api, id_types):
    """Issue 34: a search whose only filter is one tag was three statements (the token, the tag's id,
    the page); the page now names the tag itself, and reads it from the tag index in id order."""
    assert (
        api.post("/api/media/create", [media_body(f"t{i}", tags=["one", "x"]) for i in range(12)]).status_code
        == 200
    )
    assert (
        api.post("/api/media/create", [media_body(f"u{i}", tags=["x"]) for i in range(3)]).status_code == 200
    )
    api.post("/api/media/search", {"tags": ["one"]})  # the token's last_used noted at most once a minute
    count, response = count_queries(lambda: api.post("/api/media/search", {"tags": ["one"]}))
    assert count == 2
    assert [m["pid"] for m in response.json()] == [f"t{i}" for i in range(12)]
    assert response["X-Total-Count"] == "12"
    # The same statement serves an unknown tag: nothing, and no count is needed for a first page.
    count, response = count_queries(lambda: api.post("/api/media/search", {"tags_all": ["no-such-tag"]}))
    assert count == 2 and response.json() == [] and response["X-Total-Count"] == "0"
    # A page that is not the last counts the matches (with the tag named the same way).
    count, response = count_queries(lambda: api.post("/api/media/search", {"tags": ["one"], "limit": 5}))
    assert count == 3 and response["X-Total-Count"] == "12"
    assert [m["pid"] for m in response.json()] == [f"t{i}" for i in range(5)]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="tags as tag_list containment on PostgreSQL")
def test_a_search_by_tags_with_other_filters_looks_no_tag_up_first(api, id_types):
    """Issue 34: a search by several tags, or by tags with another filter, looked the tags' ids up in
    a statement of its own before the page; on PostgreSQL the tags are now containment in each
    media's tag_list, so it is the token and the page (and the count, for a page not the last)."""
    body = [
        media_body(f"t{i}", tags=["one", "x"] if i % 2 else ["x"], metadata={"i": i % 3}) for i in range(12)
    ]
    assert api.post("/api/media/create", body).status_code == 200
    api.post("/api/media/search", {"tags": ["one"]})  # the token's last_used noted at most once a minute
    # (search, its statements, its matches): a metadata condition adds the look-up of the metadata
    # paths that have their own index (media.search.indexes), as it does without tags.
    for search, statements, expected in [
        ({"tags": ["one", "nope"]}, 2, [f"t{i}" for i in range(1, 12, 2)]),
        ({"tags_all": ["one", "x"]}, 2, [f"t{i}" for i in range(1, 12, 2)]),
        ({"tags": ["x"], "metadata": [{"path": "i", "op": "eq", "value": 1}]}, 3, ["t1", "t4", "t7", "t10"]),
        ({"tags_all": ["one", "no-such-tag"], "pid": "t*"}, 2, []),
    ]:
        count, response = count_queries(lambda search=search: api.post("/api/media/search", search))
        assert count == statements, search
        assert [m["pid"] for m in response.json()] == expected, search
    count, response = count_queries(
        lambda: api.post("/api/media/search", {"tags_all": ["one", "x"], "limit": 2})
    )
    assert count == 3 and response["X-Total-Count"] == "6"
