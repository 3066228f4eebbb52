"""Search (POST /api/media/search), listing (GET /api/media) and the streamed dump.

The suite runs on SQLite and on PostgreSQL (POSTGRES_DB=...), with the same expectations: every
filter must give the same answer on both.
"""

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from media.models import Media
from media.search import dump as search
from tests.conftest import DICT_STORE, media_body

pytestmark = pytest.mark.django_db


def create_many(api, bodies):
    response = api.post("/api/media/create", bodies)
    assert response.status_code == 200, response.content
    return response.json()


def find(api, body, status=200, **query):
    path = "/api/media/search" + (f"?{urlencode(query)}" if query else "")
    response = api.post(path, body)
    assert response.status_code == status, response.content
    return response


def pids(api, body) -> list[str]:
    return [m["pid"] for m in find(api, body).json()]


def listed(api, **params) -> dict:
    response = api.get("/api/media?" + urlencode(params, doseq=True))
    assert response.status_code == 200, response.content
    return response.json()


def error_of(response) -> str:
    assert response.status_code == 422, response.content
    body = response.json()
    assert list(body) == ["detail"] and list(body["detail"][0]) == ["error"], body
    return body["detail"][0]["error"]


# --- tags -----------------------------------------------------------------------------------


@pytest.fixture
def tagged(api, id_types):
    create_many(
        api,
        [
            media_body("a", tags=["x", "y"]),
            media_body("b", tags=["y"]),
            media_body("c", tags=["z"]),
            media_body("d", tags=["x", "y", "z"]),
            media_body("e"),
        ],
    )


def test_any_tag_each_media_once(api, tagged):
    assert pids(api, {"tags": ["x", "y"]}) == ["a", "b", "d"]
    assert pids(api, {"tags": ["nope", "z"]}) == ["c", "d"]
    assert pids(api, {"tags": ["nope"]}) == []


def test_null_filters_mean_not_given(api, tagged):
    """Clients whose search model has Optional fields send null for the ones they leave out."""
    body = {"tags": ["x"], "tags_all": None, "pid": None, "metadata": None, "limit": None, "order_by": None}
    assert pids(api, body) == ["a", "d"]
    assert pids(api, {"tags": None}) == []


def test_all_tags(api, tagged):
    assert pids(api, {"tags_all": ["x", "y"]}) == ["a", "d"]
    assert pids(api, {"tags_all": ["y", "y"]}) == ["a", "b", "d"]
    assert pids(api, {"tags_all": ["x", "nope"]}) == []
    assert pids(api, {"tags": ["z"], "tags_all": ["y"]}) == ["d"]


def test_no_filter_finds_nothing_but_empty_lists_beside_filters_are_ignored(api, tagged):
    """The earlier server answered [] for {"tags": []}; that stays, and {} means the same."""
    assert pids(api, {"tags": []}) == []
    assert pids(api, {}) == []
    assert find(api, {}).headers["X-Total-Count"] == "0"
    assert pids(api, {"tags": [], "pid": "?"}) == ["a", "b", "c", "d", "e"]
    assert pids(api, {"tags": [], "tags_all": [], "pid_type": [], "identifiers": {}, "pid": "[ab]"}) == []


# --- pid wildcards --------------------------------------------------------------------------

WILD_PIDS = ["abc", "aXc", "ABC", "a%c", "a_c", "a*c", "a?c", "a\\c", "a[b]c", "ab", "abcd", "aéc", "x.abc"]


@pytest.fixture
def wild(api, id_types):
    create_many(api, [media_body(pid) for pid in WILD_PIDS])


@pytest.mark.parametrize(
    "pattern,expected",
    [
        ("abc", ["abc"]),
        ("a?c", ["abc", "aXc", "a%c", "a_c", "a*c", "a?c", "a\\c", "aéc"]),
        ("a*", ["abc", "aXc", "a%c", "a_c", "a*c", "a?c", "a\\c", "a[b]c", "ab", "abcd", "aéc"]),
        ("*bc", ["abc", "x.abc"]),
        ("*b*", ["abc", "a[b]c", "ab", "abcd", "x.abc"]),
        ("A*", ["ABC"]),  # case-sensitive on both databases
        ("a%c", ["a%c"]),  # % and _ are ordinary characters
        ("a_c", ["a_c"]),
        ("a\\*c", ["a*c"]),
        ("a\\?c", ["a?c"]),
        ("a\\\\c", ["a\\c"]),
        ("a[b]*", ["a[b]c"]),
        ("a[b]c", ["a[b]c"]),
        ("*[*", ["a[b]c"]),
        ("??", ["ab"]),
        ("*", WILD_PIDS),
        ("", []),
    ],
)
def test_pid_wildcards(api, wild, pattern, expected):
    assert sorted(pids(api, {"pid": pattern})) == sorted(expected)


def test_pid_type_one_or_many(api, id_types):
    create_many(
        api,
        [
            media_body("l1"),
            media_body("10.1234/x", pid_type="doi"),
            media_body("D20240101T000000_IFCB001", pid_type="bin"),
        ],
    )
    assert pids(api, {"pid_type": "doi"}) == ["10.1234/x"]
    assert pids(api, {"pid_type": ["doi", "local"]}) == ["l1", "10.1234/x"]
    assert pids(api, {"pid_type": "nope"}) == []


# --- identifiers ----------------------------------------------------------------------------


@pytest.fixture
def identified(api, id_types):
    create_many(
        api,
        [
            media_body("m1", identifiers={"bin": "D20240101T000000_IFCB001", "doi": "10.1234/ab_c"}),
            media_body("m2", identifiers={"bin": "D20250101T000000_IFCB002"}),
            media_body("m3", identifiers={"doi": "10.1234/abXc"}),
            media_body("D20249999"),
        ],
    )


def test_identifiers_by_type(api, identified):
    assert pids(api, {"identifiers": {"bin": "D2024*"}}) == ["m1"]
    assert pids(api, {"identifiers": {"bin": "D20250101T000000_IFCB002"}}) == ["m2"]
    assert pids(api, {"identifiers": {"doi": "10.1234/ab_c"}}) == ["m1"]
    assert pids(api, {"identifiers": {"doi": "*ab_c"}}) == ["m1"]
    assert pids(api, {"identifiers": {"doi": "*ab?c"}}) == ["m1", "m3"]
    assert pids(api, {"identifiers": {"bin": "*", "doi": "*"}}) == ["m1"]
    assert pids(api, {"identifiers": {"local": "*"}}) == []


def test_identifier_matches_any_value_or_the_pid(api, identified):
    assert pids(api, {"identifier": "D2024*"}) == ["m1", "D20249999"]
    assert pids(api, {"identifier": "*IFCB00?"}) == ["m1", "m2"]
    assert pids(api, {"identifier": "10.1234/abXc"}) == ["m3"]
    assert pids(api, {"identifier": "m?"}) == ["m1", "m2", "m3"]
    assert pids(api, {"identifier": "*_c"}) == ["m1"]
    assert pids(api, {"identifier": "nothing*"}) == []


def test_identifiers_keys_must_be_type_names(api, identified):
    error = error_of(api.post("/api/media/search", {"identifiers": {'x"); DROP TABLE media_media; --': "*"}}))
    assert "identifiers" in error
    assert Media.objects.count() == 4


# --- metadata -------------------------------------------------------------------------------

META = {
    "n10": {"n": 10, "s": "b", "tags": ["red", "blue"], "deep": {"x": {"y": 1}}, "flag": True},
    "n9s": {"n": "9", "s": "B", "tags": ["red"], "deep": {"x": {"y": 2}}, "flag": False},
    "n95": {"n": 9.5, "s": "ab", "tags": [], "deep": {"x": {"y": "1"}}, "list": [{"k": 1}, {"k": 2}]},
    "ntrue": {"n": True, "s": "é", "tags": "red", "deep": {"x": None}, "nul": None},
    "nnull": {"n": None, "tags": [1, "1", 2.5, True, None], "odd.key": 5, "0": "zero"},
    "empty": {},
}


@pytest.fixture
def meta(api, id_types):
    create_many(api, [media_body(pid, metadata=metadata) for pid, metadata in META.items()])


def where(api, path, op, value=None, **more):
    condition = {"path": path, "op": op, **({} if value is None and op == "exists" else {"value": value})}
    return pids(api, {"metadata": [condition], **more})


def test_numbers_compare_as_numbers_and_strings_as_strings(api, meta):
    """{"n": 10} vs {"n": "9"} with gt 9: only numbers match, on SQLite and PostgreSQL alike."""
    assert where(api, "n", "gt", 9) == ["n10", "n95"]
    assert where(api, "n", "gte", 9.5) == ["n10", "n95"]
    assert where(api, "n", "lt", 10) == ["n95"]
    assert where(api, "n", "lte", 10) == ["n10", "n95"]
    assert where(api, "n", "gt", "10") == ["n9s"]  # "9" > "10" as strings
    assert where(api, "n", "lt", "9") == []
    assert where(api, "s", "gt", "B") == ["n10", "n95", "ntrue"]  # code point order: B < ab < b < é
    assert where(api, "s", "lt", "b") == ["n9s", "n95"]
    assert where(api, "s", "gte", "é") == ["ntrue"]


def test_eq_and_ne_keep_to_one_type(api, meta):
    assert where(api, "n", "eq", 10) == ["n10"]
    assert where(api, "n", "eq", 10.0) == ["n10"]
    assert where(api, "n", "eq", "9") == ["n9s"]
    assert where(api, "n", "eq", 9) == []
    assert where(api, "n", "eq", True) == ["ntrue"]
    assert where(api, "n", "eq", 1) == []  # true is not 1
    assert where(api, "n", "eq", None) == ["nnull"]
    assert where(api, "n", "ne", 10) == ["n95"]
    assert where(api, "n", "ne", "x") == ["n9s"]
    assert where(api, "flag", "ne", True) == ["n9s"]
    assert where(api, "flag", "eq", False) == ["n9s"]
    assert where(api, "s", "eq", "b") == ["n10"]  # case-sensitive
    assert where(api, "deep.x.y", "eq", 1) == ["n10"]
    assert where(api, ["deep", "x", "y"], "eq", "1") == ["n95"]
    assert where(api, ["odd.key"], "eq", 5) == ["nnull"]
    assert where(api, "0", "eq", "zero") == ["nnull"]


def test_in(api, meta):
    assert where(api, "n", "in", [10, "9", None]) == ["n10", "n9s", "nnull"]
    assert where(api, "n", "in", [9]) == []
    assert where(api, "n", "in", []) == []


def test_exists(api, meta):
    assert where(api, "nul", "exists") == ["ntrue"]  # a JSON null is there
    assert where(api, "deep.x", "exists", True) == ["n10", "n9s", "n95", "ntrue"]
    assert where(api, "deep.x.y", "exists", False) == ["ntrue", "nnull", "empty"]
    assert where(api, "s.t", "exists") == []  # through a string


def test_contains_is_list_membership_or_sub_object(api, meta):
    assert where(api, "tags", "contains", "red") == ["n10", "n9s"]  # "red" itself is no list
    assert where(api, "tags", "contains", ["red", "blue"]) == ["n10"]
    assert where(api, "tags", "contains", []) == ["n10", "n9s", "n95", "nnull"]
    assert where(api, "tags", "contains", 1) == ["nnull"]
    assert where(api, "tags", "contains", "1") == ["nnull"]
    assert where(api, "tags", "contains", True) == ["nnull"]
    assert where(api, "tags", "contains", None) == ["nnull"]
    assert where(api, "tags", "contains", 2.5) == ["nnull"]
    assert where(api, "tags", "contains", 2) == []
    assert where(api, "deep", "contains", {"x": {"y": 1}}) == ["n10"]
    assert where(api, "deep", "contains", {"x": {}}) == ["n10", "n9s", "n95"]
    assert where(api, "deep", "contains", {}) == ["n10", "n9s", "n95", "ntrue"]
    assert pids(api, {"metadata": [{"path": "deep", "op": "contains", "value": {"x": None}}]}) == ["ntrue"]


def test_list_paths_index_lists(api, meta):
    assert where(api, ["tags", 0], "eq", "red") == ["n10", "n9s"]
    assert where(api, ["tags", 1], "exists") == ["n10", "nnull"]
    assert where(api, ["list", 1, "k"], "gte", 2) == ["n95"]
    assert where(api, ["list", 0], "contains", {"k": 1}) == ["n95"]
    assert where(api, "tags.0", "eq", "red") == []  # dotted: "0" is an object key
    assert where(api, ["tags", "0"], "exists") == []
    assert where(api, "0", "wildcard", "ze*") == ["nnull"]
    assert where(api, ["n", 0], "exists") == []  # a scalar is no list of one


def test_metadata_wildcard(api, meta):
    assert where(api, "s", "wildcard", "?") == ["n10", "n9s", "ntrue"]
    assert where(api, "s", "wildcard", "*b") == ["n10", "n95"]
    assert where(api, "n", "wildcard", "9*") == ["n9s"]  # the number 9.5 is no string


def test_conditions_combine_with_and(api, meta):
    body = {
        "metadata": [
            {"path": "tags", "op": "contains", "value": "red"},
            {"path": "n", "op": "gt", "value": 5},
        ]
    }
    assert pids(api, body) == ["n10"]
    assert pids(api, {**body, "pid": "n9*"}) == []


@pytest.mark.parametrize(
    "condition,named",
    [
        ({"path": "n", "op": "nope", "value": 1}, "metadata[0].op"),
        ({"path": "n", "op": "gt", "value": True}, "metadata[0]"),
        ({"path": "n", "op": "gt", "value": [1]}, "metadata[0]"),
        ({"path": "n", "op": "eq", "value": {"a": 1}}, "metadata[0]"),
        ({"path": "n", "op": "ne", "value": None}, "metadata[0]"),
        ({"path": "n", "op": "in", "value": 5}, "metadata[0]"),
        ({"path": "n", "op": "contains", "value": [[1]]}, "metadata[0]"),
        ({"path": "n", "op": "exists", "value": "yes"}, "metadata[0]"),
        ({"path": "n", "op": "wildcard", "value": 5}, "metadata[0]"),
        ({"path": "", "op": "exists"}, "metadata[0]"),
        ({"path": "a..b", "op": "exists"}, "metadata[0]"),
        ({"path": [], "op": "exists"}, "metadata[0]"),
        ({"path": ["a", -1], "op": "exists"}, "metadata[0]"),
        ({"path": ['a"b'], "op": "exists"}, "metadata[0]"),
        ({"path": 5, "op": "exists"}, "metadata[0].path"),
        ({"path": "n", "op": "eq", "value": 2**64}, "metadata[0]"),
        ({"path": "n", "op": "exists", "extra": 1}, "metadata[0].extra"),
        ({"op": "exists"}, "metadata[0].path"),
    ],
)
def test_malformed_conditions_are_422_naming_the_field(api, meta, condition, named):
    error = error_of(api.post("/api/media/search", {"metadata": [condition]}))
    assert f"'{named}'" in error, error


def test_huge_number_in_json_is_422_not_500(api, meta):
    response = api.client.post(
        "/api/media/search",
        data='{"metadata": [{"path": "n", "op": "gt", "value": 1e999}]}',
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.token}"},
    )
    assert "metadata[0]" in error_of(response)


# --- other filters --------------------------------------------------------------------------


def test_status_store_and_dates(api, id_types):
    create_many(
        api,
        [
            media_body("p1"),
            media_body("p2", store_config={"type": "DictStore", "bucket": "other"}),
            media_body("p3"),
        ],
    )
    Media.objects.filter(pid="p3").update(store_status="READY")
    base = datetime(2024, 1, 1, tzinfo=UTC)
    for i, pid in enumerate(["p1", "p2", "p3"]):
        Media.objects.filter(pid=pid).update(
            created=base + timedelta(days=i), updated=base + timedelta(days=10 - i)
        )
    other = Media.objects.get(pid="p2").store_config_id
    assert pids(api, {"store_status": "READY"}) == ["p3"]
    assert pids(api, {"store_status": "PENDING"}) == ["p1", "p2"]
    assert pids(api, {"store_config": other}) == ["p2"]
    assert pids(api, {"created_after": "2024-01-02T00:00:00Z"}) == ["p2", "p3"]
    assert pids(api, {"created_before": "2024-01-02T00:00:00+00:00"}) == ["p1"]
    assert pids(api, {"created_after": "2024-01-01T12:00", "created_before": "2024-01-03"}) == ["p2"]
    assert pids(api, {"updated_after": "2024-01-10"}) == ["p1", "p2"]
    assert pids(api, {"updated_after": "2024-01-10T12:00:00+00:00"}) == ["p1"]
    assert pids(api, {"updated_before": "2024-01-11", "store_status": "PENDING"}) == ["p2"]


def test_unknown_filter_is_422_naming_it(api, id_types):
    assert "'tag'" in error_of(api.post("/api/media/search", {"tag": ["x"]}))
    assert "'limit'" in error_of(api.post("/api/media/search", {"tags": ["x"], "limit": 10001}))
    assert "'order_by'" in error_of(api.post("/api/media/search", {"tags": ["x"], "order_by": "size"}))
    assert "'created_after'" in error_of(api.post("/api/media/search", {"created_after": "yesterday"}))
    assert "'store_status'" in error_of(api.post("/api/media/search", {"store_status": "LOST"}))
    assert "'limit'" in error_of(api.post("/api/media/search?limit=-1", {"tags": ["x"]}))


def test_hostile_text_is_just_text(api, id_types):
    create_many(api, [media_body("a'b", metadata={"k'; --": "v'"})])
    assert pids(api, {"pid": "a'*"}) == ["a'b"]
    assert pids(api, {"identifier": "*'; DROP TABLE media_media; --"}) == []
    assert pids(api, {"metadata": [{"path": ["k'; --"], "op": "eq", "value": "v'"}]}) == ["a'b"]
    assert pids(api, {"metadata": [{"path": ["k'; --"], "op": "wildcard", "value": "v'*"}]}) == ["a'b"]
    assert Media.objects.count() == 1


# --- order, pages, headers ------------------------------------------------------------------


@pytest.fixture
def seven(api, id_types):
    names = ["b", "a", "B", "é", "c", "A", "d"]
    create_many(api, [media_body(pid, tags=["t"]) for pid in names])
    return names


def test_order_by(api, seven):
    assert pids(api, {"tags": ["t"]}) == seven
    assert pids(api, {"tags": ["t"], "order_by": "pid"}) == ["A", "B", "a", "b", "c", "d", "é"]
    assert pids(api, {"tags": ["t"], "order_by": "-pid"}) == ["é", "d", "c", "b", "a", "B", "A"]
    Media.objects.filter(pid="c").update(created=datetime(2000, 1, 1, tzinfo=UTC))
    assert pids(api, {"tags": ["t"], "order_by": "created"})[0] == "c"
    assert pids(api, {"tags": ["t"], "order_by": "-created"})[-1] == "c"
    api.put("/api/media/update/tags", [{"pid": "a", "tags": ["t", "u"]}])
    assert pids(api, {"tags": ["t"], "order_by": "-updated"})[0] == "a"


def test_pages_with_total_and_next_link(api, seven):
    first = find(api, {"tags": ["t"], "limit": 3})
    assert [m["pid"] for m in first.json()] == seven[:3]
    assert first.headers["X-Total-Count"] == "7"
    assert first.headers["X-Total-Count-Exact"] == "true"
    link = first.headers["Link"]
    assert link.startswith("<http://testserver/api/media/search?") and link.endswith('>; rel="next"')
    url = link[1 : link.index(">")]
    assert parse_qs(urlsplit(url).query) == {"offset": ["3"], "limit": ["3"]}
    # The same body POSTed to the link URL: its offset/limit win over the body's.
    second = api.post(url.removeprefix("http://testserver"), {"tags": ["t"], "limit": 3})
    assert [m["pid"] for m in second.json()] == seven[3:6]
    last = find(api, {"tags": ["t"], "limit": 3, "offset": 6})
    assert [m["pid"] for m in last.json()] == seven[6:]
    assert last.headers["X-Total-Count"] == "7" and "Link" not in last.headers
    beyond = find(api, {"tags": ["t"], "offset": 50})
    assert beyond.json() == [] and beyond.headers["X-Total-Count"] == "7"
    only_count = find(api, {"tags": ["t"], "limit": 0})
    assert only_count.json() == [] and only_count.headers["X-Total-Count"] == "7"
    assert "Link" in only_count.headers
    one_page = find(api, {"tags": ["t"]})
    assert len(one_page.json()) == 7 and "Link" not in one_page.headers


def test_count_stops_at_the_cap_and_says_so(api, seven, settings):
    """The cap was read once at import, so changing the setting had no effect until a restart."""
    settings.MEDIASTORE_SEARCH_COUNT_CAP = 4
    response = find(api, {"tags": ["t"], "limit": 2})
    assert response.headers["X-Total-Count"] == "4" and response.headers["X-Total-Count-Exact"] == "false"
    response = find(api, {"tags": ["t"], "limit": 2, "offset": 4})  # counts at least past this page
    assert response.headers["X-Total-Count"] == "7" and response.headers["X-Total-Count-Exact"] == "true"
    response = find(api, {"tags": ["t"]})  # one page shows the total: no count needed
    assert response.headers["X-Total-Count"] == "7" and response.headers["X-Total-Count-Exact"] == "true"


def test_search_items_have_the_media_shape(api, id_types):
    create_many(api, [media_body("m1", tags=["t"], metadata={"a": 1}, identifiers={"doi": "10.1234/x"})])
    assert find(api, {"tags": ["t"]}).json() == [api.get("/api/media/m1").json()]


def test_query_count_does_not_grow_with_matches(api, id_types):
    stores = [DICT_STORE, {"type": "DictStore", "bucket": "s2"}]

    def bodies(prefix, n):
        return [
            media_body(f"{prefix}{i}", store_config=stores[i % 2], tags=["t", prefix], metadata={"i": i})
            for i in range(n)
        ]

    def queries(body, expected):
        with CaptureQueriesContext(connection) as ctx:
            response = find(api, body)
        assert len(response.json()) == expected
        return len(ctx.captured_queries)

    counts = []
    for n in (10, 100):
        create_many(api, bodies(f"q{n}-", n))
        body = {
            "tags": [f"q{n}-"],
            "tags_all": ["t"],
            "pid": f"q{n}-*",
            "identifier": "q*",
            "metadata": [{"path": "i", "op": "gte", "value": 0}],
        }
        counts.append(queries({**body, "limit": 5}, 5))
        counts.append(queries(body, n))
    many_pages_10, one_page_10, many_pages_100, one_page_100 = counts
    assert many_pages_10 == many_pages_100 and one_page_10 == one_page_100, counts
    # A page that shows everything needs no COUNT; on PostgreSQL neither does this one, whose
    # statement collects every match first and counts them (media.search.pages).
    assert one_page_10 == many_pages_10 - (connection.vendor != "postgresql"), counts


# --- GET /api/media -------------------------------------------------------------------------


def test_list_without_filters_pages_through_everything(api, seven):
    page = listed(api, limit=3)
    assert page["count"] == 7 and page["count_exact"] is True and page["previous"] is None
    assert [m["pid"] for m in page["items"]] == seven[:3]
    seen = [m["pid"] for m in page["items"]]
    while page["next"]:
        response = api.get(page["next"].removeprefix("http://testserver"))
        page = response.json()
        seen += [m["pid"] for m in page["items"]]
    assert seen == seven
    assert parse_qs(urlsplit(page["previous"]).query) == {"offset": ["3"], "limit": ["3"]}
    assert page["items"][0] == api.get("/api/media/d").json()


def test_list_filters_as_query_parameters(api, id_types):
    create_many(
        api,
        [
            media_body(
                "m1",
                tags=["x", "y"],
                metadata={"a": {"b": 5}, "s": "12:00"},
                identifiers={"doi": "10.1234/a"},
            ),
            media_body("10.9999/z", tags=["y"], metadata={"a": {"b": "5"}, "s": "x"}, pid_type="doi"),
            media_body("m3", tags=["z"], metadata={"a": {"b": 7}}),
        ],
    )

    def found(**params):
        return [m["pid"] for m in listed(api, **params)["items"]]

    assert found(tags=["x", "z"]) == ["m1", "m3"]
    assert found(tags_all=["x", "y"]) == ["m1"]
    assert found(pid="m*", order_by="-pid") == ["m3", "m1"]
    assert found(pid_type=["doi"]) == ["10.9999/z"]
    assert found(pid_type=["doi", "local"]) == ["m1", "10.9999/z", "m3"]
    assert found(identifiers="doi=10.1234/*") == ["m1"]
    assert found(identifier="10.????/*") == ["m1", "10.9999/z"]
    assert found(metadata="a.b:gte:5") == ["m1", "m3"]
    assert found(metadata='a.b:eq:"5"') == ["10.9999/z"]
    assert found(metadata=["a.b:gte:5", "a.b:lt:6"]) == ["m1"]
    assert found(metadata="s:eq:12:00") == ["m1"]
    assert found(metadata="s:wildcard:1*") == ["m1"]
    assert found(metadata="s:exists") == ["m1", "10.9999/z"]
    assert found(metadata="s:exists:false") == ["m3"]
    assert found(metadata='a.b:in:[7, "5"]') == ["10.9999/z", "m3"]
    assert listed(api, store_status="PENDING", limit=1)["count"] == 3


@pytest.mark.parametrize(
    "query,named",
    [
        ("tag=x", "'tag'"),
        ("metadata=a.b", "'metadata'"),
        ("metadata=a.b:between:1", "'metadata'"),
        ("metadata=a.b:gt:true", "'metadata[0]'"),
        ("identifiers=doi", "'identifiers'"),
        ("limit=20000", "'limit'"),
        ("limit=abc", "'limit'"),
        ("created_after=soon", "'created_after'"),
    ],
)
def test_list_refuses_bad_parameters_naming_them(api, id_types, query, named):
    assert named in error_of(api.get(f"/api/media?{query}"))


# --- dump -----------------------------------------------------------------------------------


def test_dump_streams_every_media_in_the_usual_shape(api, id_types):
    create_many(api, [media_body(f"m{i}", tags=["t"], metadata={"i": i}) for i in range(7)])
    response = api.get("/api/media/dump")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/json"
    body = json.loads(b"".join(response.streaming_content))
    assert [m["pid"] for m in body] == [f"m{i}" for i in range(7)]
    assert body[3] == api.get("/api/media/m3").json()


def test_dump_takes_limit_and_offset(api, id_types, monkeypatch):
    monkeypatch.setattr(search, "DUMP_CHUNK", 2)  # several pieces, joined right
    create_many(api, [media_body(f"m{i}") for i in range(5)])
    assert [m["pid"] for m in api.get("/api/media/dump").json()] == [f"m{i}" for i in range(5)]
    assert [m["pid"] for m in api.get("/api/media/dump?limit=2&offset=1").json()] == ["m1", "m2"]
    assert [m["pid"] for m in api.get("/api/media/dump?offset=4").json()] == ["m4"]
    assert api.get("/api/media/dump?limit=0").json() == []
    assert "'limit'" in error_of(api.get("/api/media/dump?limit=-1"))


def test_dump_of_nothing_is_an_empty_list(api):
    assert api.get("/api/media/dump").json() == []


def test_search_endpoints_are_documented(api):
    schema = api.get("/api/openapi.json").json()
    search_op = schema["paths"]["/api/media/search"]["post"]
    body_ref = search_op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    media_search = schema["components"]["schemas"][body_ref.rsplit("/", 1)[1]]
    assert {"tags", "tags_all", "pid", "identifiers", "identifier", "metadata", "limit"} <= set(
        media_search["properties"]
    )
    assert media_search["additionalProperties"] is False
    list_params = {p["name"] for p in schema["paths"]["/api/media"]["get"]["parameters"]}
    assert {"tags", "metadata", "identifiers", "limit", "offset", "order_by"} <= list_params
    dump = schema["paths"]["/api/media/dump"]["get"]
    assert "200" in dump["responses"] and dump["security"]
    assert api.get("/api/media/dump", token="").status_code == 401
    assert api.get("/api/media", token="").status_code == 401


@pytest.mark.parametrize(
    "query", ["limit=818883299116019351552", "offset=-1", "limit=-5", "offset=99999999999999999999"]
)
def test_dump_refuses_out_of_range_paging(api, query):
    """Found by schemathesis: a huge limit failed mid-stream on SQLite (datatype mismatch)."""
    assert api.get(f"/api/media/dump?{query}").status_code == 422


@pytest.mark.parametrize(
    "moment", ["2000-01-01T00:00:00+17:23", "2000-01-01T00:00:00.0-21:53", "0001-01-01T00:00:00+05:00"]
)
def test_dates_with_any_offset_are_answered_not_500(api, id_types, moment):
    """Found by schemathesis: PostgreSQL refuses offsets beyond 15:59 (500 before UTC conversion)."""
    create_many(api, [media_body("d1")])
    response = api.post("/api/media/search", {"created_after": moment})
    assert response.status_code in (200, 422), response.content
    if moment.startswith("2000"):
        assert [m["pid"] for m in response.json()] == ["d1"]
    listed = api.get(f"/api/media?{urlencode({'created_after': moment})}")
    assert listed.status_code in (200, 422), listed.content
    if moment.startswith("2000"):
        assert [m["pid"] for m in listed.json()["items"]] == ["d1"]


def test_fast_serialiser_gives_exactly_the_media_out_json(api, id_types, s3_server):
    """Search pages skip pydantic (media_out_dict); the JSON must not differ from MediaOut's."""
    from ninja.responses import NinjaJSONEncoder

    from media.schemas import MediaOut, media_out_dict

    api.post("/api/s3cfg", {"url": s3_server.url, "access_key": "a", "secret_key": "b"})
    bodies = [
        media_body("plain"),
        media_body(
            "rich",
            tags=["b", "a"],
            metadata={"x": [1, {"y": None}], "u": "ü"},
            identifiers={"doi": "10.1234/z"},
        ),
        media_body("s3", store_config={"type": "BucketStore", "bucket": "bkt/pre", "s3_url": s3_server.url}),
    ]
    create_many(api, bodies)
    api.post("/api/upload", {"mediadata": media_body("ready"), "base64": "aGVsbG8="})
    for media in Media.objects.select_related("store_config__s3cfg"):
        fast = json.dumps(media_out_dict(media), cls=NinjaJSONEncoder)
        slow = json.dumps(MediaOut.from_orm(media).model_dump(), cls=NinjaJSONEncoder)
        assert fast == slow
    found = api.post("/api/media/search", {"pid": "*"}).json()
    assert found == [api.get(f"/api/media/{m['pid']}").json() for m in found]
    assert len(found) == 4


def test_a_page_that_collects_every_match_first_counts_them_as_the_count_statement_does(api, seven, settings):
    """On PostgreSQL the statement of a page whose matches are collected first (here: an identifier
    filter) gives the capped count too, and no COUNT statement follows: the totals, their
    exactness and the links are the ones the COUNT statement gave, at the cap, past it, after an
    offset, past the end and through cursors."""
    body = {"tags": ["t"], "identifier": "*"}
    settings.MEDIASTORE_SEARCH_COUNT_CAP = 4
    for page, total, exact, shown in [
        ({"limit": 2}, "4", "false", seven[:2]),
        ({"limit": 2, "offset": 4}, "7", "true", seven[4:6]),  # counted at least past this page
        ({"limit": 3, "offset": 6}, "7", "true", seven[6:]),
        ({"offset": 50}, "7", "true", []),
        ({"limit": 0}, "4", "false", []),
    ]:
        response = find(api, {**body, **page})
        assert [m["pid"] for m in response.json()] == shown, page
        assert (response.headers["X-Total-Count"], response.headers["X-Total-Count-Exact"]) == (
            total,
            exact,
        ), page
        assert ("Link" in response.headers) == (int(page.get("offset", 0)) + len(shown) < 7), page
    settings.MEDIASTORE_SEARCH_COUNT_CAP = 10_000
    settings.MEDIASTORE_SEARCH_CURSOR_FROM = 0
    seen, url, totals = [], "/api/media/search", set()
    while url:
        response = api.post(url, {**body, "limit": 3})
        seen += [m["pid"] for m in response.json()]
        totals.add(response.headers["X-Total-Count"])
        link = response.headers.get("Link")
        url = link[1 : link.index(">")].removeprefix("http://testserver") if link else None
    assert seen == seven and totals == {"7"}


def test_deep_page_links_carry_a_cursor_that_continues_after_the_last_row(api, seven, settings):
    """Deep pages skipped `offset` rows through the whole order; links now carry a keyset cursor."""
    settings.MEDIASTORE_SEARCH_CURSOR_FROM = 0
    for order_by in (None, "pid", "-created"):
        body = {"tags": ["t"], "limit": 3, **({"order_by": order_by} if order_by else {})}
        expected = pids(api, {**body, "limit": 100})
        seen, url, totals = [], "/api/media/search", []
        for _ in range(5):
            response = api.post(url, body)
            seen += [m["pid"] for m in response.json()]
            totals.append(response.headers["X-Total-Count"])
            if "Link" not in response.headers:
                break
            link = response.headers["Link"]
            url = link[1 : link.index(">")].removeprefix("http://testserver")
            assert "cursor" in parse_qs(urlsplit(url).query)
        assert seen == expected and set(totals) == {"7"}, order_by
    page = listed(api, limit=3, tags="t")
    second = api.get(page["next"].removeprefix("http://testserver")).json()
    assert [m["pid"] for m in second["items"]] == seven[3:6] and second["count"] == 7
    cursor = parse_qs(urlsplit(page["next"]).query)["cursor"][0]
    assert "'cursor'" in error_of(api.post(f"/api/media/search?cursor={cursor}x", {"tags": ["t"]}))
    other_search = api.post(f"/api/media/search?cursor={cursor}", {"tags": ["t"], "order_by": "pid"})
    assert "another search" in error_of(other_search)


def test_fast_page_path_answers_what_the_schema_path_answers(api, id_types, settings):
    """Search and list pages are written from values() rows with orjson; every media must read
    exactly as GET /api/media/{pid} (ninja's schema path) gives it, whatever its JSON holds."""
    metadata = [
        {"big": 2**70, "neg": -(2**63), "f": 1e16, "tiny": 5e-324, "third": 1 / 3, "zero": -0.0},
        {"text": 'é 😀 \u2028 "quoted" \\ </script>', "nested": {"a": [1, [2, [3, {"b": None}]]]}},
        {"bools": [True, False, None], "empty": {}, "list": [], "n": 0},
        {},
    ]
    bodies = [
        media_body(f"v{i}", tags=["v", f"t{i}"], metadata=meta, identifiers={"doi": f"10.1234/v{i}"})
        for i, meta in enumerate(metadata)
    ]
    bodies.append(media_body("other-store", tags=["v"], store_config={"type": "DictStore", "bucket": "b2"}))
    create_many(api, bodies)
    api.put("/api/media/update/tags", [{"pid": "v3", "tags": ["v", "z", "a"]}])
    expected = [api.get(f"/api/media/{b['pid']}").json() for b in bodies]
    assert find(api, {"tags": ["v"]}).json() == expected
    assert listed(api, tags="v")["items"] == expected
    settings.MEDIASTORE_SEARCH_CURSOR_FROM = 0
    pages = [find(api, {"tags": ["v"], "limit": 2})]
    while "Link" in pages[-1].headers:
        link = pages[-1].headers["Link"]
        pages.append(api.post(link[1 : link.index(">")].removeprefix("http://testserver"), {"tags": ["v"]}))
    assert [m for page in pages for m in page.json()] == expected


def test_an_unknown_tag_makes_sql_that_matches_nothing(db):
    """The conditions of a search that cannot match say so in their SQL too, not only by a flag."""
    from media import search
    from media.schemas import MediaSearch

    body = {"tags": ["no-such-tag-anywhere", "nor-this-one"]}
    conditions = search.conditions_for(MediaSearch.model_validate(body))
    if connection.vendor == "postgresql":  # containment in tag_list: no tag is looked up first
        assert not conditions.empty and "tag_list" in conditions.where()[0]
        return
    assert conditions.empty
    assert conditions.where() == ("1 = 0", [])
    sql, params = search.count_sql(conditions, 10)
    assert "1 = 0" in sql


@pytest.mark.parametrize("prepared", [True, False])
def test_one_tag_pages_answer_what_the_general_search_answers(api, id_types, settings, prepared):
    """A search whose only filter is one tag takes its own statement on PostgreSQL (the tag index in
    id order, prepared unless ``MEDIASTORE_PG_PREPARED`` is off); the same tag next to one that
    does not exist takes the general way. Both must give the same pages, totals and links:
    expired media left out, held expired media kept, offsets, cursors and the last page."""
    settings.MEDIASTORE_PG_PREPARED = prepared
    settings.MEDIASTORE_SEARCH_CURSOR_FROM = 4
    bodies = [media_body(f"ot{i:02}", tags=["ot", f"x{i % 3}"] if i % 4 else ["other"]) for i in range(30)]
    create_many(api, bodies)
    gone = datetime.now(UTC) - timedelta(seconds=1)
    Media.objects.filter(pid__in=["ot01", "ot02"]).update(expires_at=gone)
    Media.objects.filter(pid="ot02").update(hold_since=gone - timedelta(days=1))  # held: still served
    one_body, general_body = {"tags": ["ot"]}, {"tags": ["ot", "no-such-tag-at-all"]}
    links = {(): 0, (5, 0): 4, (5, 5): 3, (7, 14): 0, (7, 7): 1, (50, 0): 0}  # 21 matches
    for paging, expected_links in links.items():
        query = dict(zip(("limit", "offset"), paging, strict=False))
        one, general = find(api, one_body, **query), find(api, general_body, **query)
        walked = 0
        while True:  # follow the links (offsets first, then cursors) side by side
            assert one.json() == general.json(), query
            assert one["X-Total-Count"] == general["X-Total-Count"], query
            assert ("Link" in one.headers) == ("Link" in general.headers), query
            if "Link" not in one.headers:
                break
            walked += 1
            one, general = (
                api.post(
                    r.headers["Link"][1 : r.headers["Link"].index(">")].removeprefix("http://testserver"), b
                )
                for r, b in ((one, one_body), (general, general_body))
            )
            assert one.status_code == general.status_code == 200, (one.content, general.content)
        assert walked == expected_links, query
    pids = [m["pid"] for m in find(api, one_body).json()]
    assert "ot01" not in pids and "ot02" in pids and len(pids) == 21
