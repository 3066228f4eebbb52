"""Issue 30 item 3: the admin's media list searches as the API does (the same parameters, the same
matches as GET /api/media), keeps every filter in its URL and shows capped facets."""

from __future__ import annotations

import pytest

from media import admin_search
from tests.conftest import create_media

pytestmark = pytest.mark.django_db

LIST = "/admin/media/media/"


@pytest.fixture
def admin_client_logged(client, django_user_model):
    django_user_model.objects.create_superuser("root", "root@example.org", "pw")
    client.login(username="root", password="pw")
    return client


@pytest.fixture
def some_media(api, id_types):
    assert api.post("/api/identifier", {"name": "filename", "pattern": ""}).status_code == 200
    for n in range(12):
        create_media(
            api,
            f"D2024{n:02d}_IFCB{n % 3}" if n % 4 else f"other-{n}",
            identifiers={"filename": f"f{n}.roi"} if n % 2 else {},
            metadata={"sample": {"depth": n}, "kind": "even" if n % 2 == 0 else "odd"},
            tags=["raw"] + (["good"] if n % 3 == 0 else []) + (["x"] if n == 5 else []),
        )


def listed(client, query: str) -> list[str]:
    """Every pid the list matches for ``query`` (all pages), in pk order."""
    response = client.get(f"{LIST}?{query}")
    assert response.status_code == 200, response.content[:300]
    return list(response.context["cl"].queryset.order_by("pk").values_list("pid", flat=True))


def api_listed(api, query: str) -> list[str]:
    response = api.get(f"/api/media?{query}&limit=1000")
    assert response.status_code == 200, response.content
    return [item["pid"] for item in response.json()["items"]]


@pytest.mark.parametrize(
    "query",
    [
        "tags=good",
        "tags_all=raw&tags_all=good",
        "pid=D2024*",
        "pid=D2024??_IFCB1",
        "identifier=*.roi",
        "identifiers=filename=f1*",
        "metadata=sample.depth:gte:5",
        "metadata=kind:eq:odd&metadata=sample.depth:lt:9&tags=raw",
        "pid_type=local&store_status=PENDING",
        "created_after=2000-01-01&updated_before=2999-01-01",
        "tags=nosuchtag",
    ],
)
def test_list_finds_what_the_api_finds(admin_client_logged, api, some_media, query):
    found = listed(admin_client_logged, query)
    assert found == api_listed(api, query)
    assert found or query == "tags=nosuchtag"


def test_three_filters_stay_in_the_page_links(admin_client_logged, some_media):
    """Every filter is in the URL: the page's own links (sorting, facets) carry them along."""
    query = "pid=D2024*&tags_all=raw&metadata=kind:eq:odd"
    page = admin_client_logged.get(f"{LIST}?{query}").content.decode()
    # the form shows each value given, ready to change
    assert 'name="pid" id="search-pid-0" value="D2024*"' in page
    assert 'value="kind:eq:odd"' in page and 'name="tags_all" id="search-tags_all-0" value="raw"' in page
    # a facet link narrows further and keeps the rest
    assert "?pid=D2024%2A&amp;tags_all=raw&amp;tags_all=good&amp;metadata=kind%3Aeq%3Aodd" in page


def test_a_bad_filter_is_said_and_lists_nothing(admin_client_logged, api, some_media):
    response = admin_client_logged.get(f"{LIST}?metadata=sample.depth:bigger:5")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="api-search-error"' in page and "is not &#x27;path:op[:value]&#x27;" in page
    assert list(response.context["cl"].queryset) == []
    # the API refuses the same filter with the same sentence
    assert api.get("/api/media?metadata=sample.depth:bigger:5").status_code == 422


def test_the_search_box_is_the_api_identifier_filter(admin_client_logged, api, some_media):
    assert listed(admin_client_logged, "q=f1") == api_listed(api, "identifier=*f1*")
    assert listed(admin_client_logged, "q=*.roi") == api_listed(api, "identifier=*.roi")
    assert listed(admin_client_logged, "q=IFCB2") == api_listed(api, "identifier=*IFCB2*")


def test_facets_count_tags_and_pid_types_of_the_filtered_list(admin_client_logged, some_media):
    response = admin_client_logged.get(f"{LIST}?pid=D2024*")
    facets = response.context["facets"]
    assert not facets.more and facets.scanned == 9
    tags = {f.value: f.count for f in facets.tags}
    # D2024 media are n in 1..11 without 4 and 8: good for 3, 6, 9; x for 5
    assert tags == {"raw": 9, "good": 3, "x": 1}
    assert [(f.value, f.count) for f in facets.pid_types] == [("local", 9)]
    page = response.content.decode()
    assert 'id="media-facets"' in page and '<span class="count">9</span>' in page


def test_facets_stop_counting_at_their_cap(admin_client_logged, some_media, monkeypatch):
    """At a million media the facets read no more than FACET_SCAN matches: the counts are then
    lower bounds, shown with "+"."""
    monkeypatch.setattr(admin_search, "FACET_SCAN", 5)
    response = admin_client_logged.get(LIST)
    facets = response.context["facets"]
    assert facets.more and facets.scanned == 5
    assert {f.value: f.count for f in facets.tags}["raw"] == 5
    page = response.content.decode()
    assert '<span class="count">5+</span>' in page and "Counted over the first 5 matches" in page


def test_repeated_filters_stay_in_the_sort_and_page_links(admin_client_logged, some_media):
    page = admin_client_logged.get(
        f"{LIST}?tags_all=raw&tags_all=good&metadata=sample.depth:gte:1"
    ).content.decode()
    # a column's sort link keeps every value of a repeated filter
    assert "?metadata=sample.depth%3Agte%3A1&amp;o=1&amp;tags_all=raw&amp;tags_all=good" in page
    # and so do the search box's hidden fields, and the sidebar form's fields
    for value in ("raw", "good"):
        assert f'<input type="hidden" name="tags_all" value="{value}">' in page
    assert 'name="tags_all" id="search-tags_all-1" value="good"' in page


def test_the_row_count_stops_at_the_api_cap(admin_client_logged, some_media, settings):
    """The list counts its rows as the API's X-Total-Count does, no further than
    MEDIASTORE_SEARCH_COUNT_CAP (a million rows are not counted for every page)."""
    settings.MEDIASTORE_SEARCH_COUNT_CAP = 5
    response = admin_client_logged.get(f"{LIST}?tags=raw")
    assert response.context["cl"].result_count == 5
    assert "At least 5 media: counting stopped there" in response.content.decode()
    response = admin_client_logged.get(f"{LIST}?tags=good")
    assert response.context["cl"].result_count == 4 and 'id="count-note"' not in response.content.decode()
