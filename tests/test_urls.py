"""The API's routes gathered by first segment (mediastore.urls.by_first_segment) resolve as ninja's
flat list does."""

from __future__ import annotations

import re

import pytest
from django.urls import resolve, reverse

from mediastore.api import api
from mediastore.urls import by_first_segment

FLAT = api.urls[0]


def sample(route: str) -> str:
    return "/api/" + re.sub(r"<(?:[^:>]+:)?[^>]+>", "x1", route)


# ninja's root view ("" under /api/) is answered by api_not_found, routed before the API on purpose
@pytest.mark.parametrize("pattern", [p for p in FLAT if str(p.pattern)], ids=lambda p: str(p.pattern))
def test_each_operation_resolves_to_the_view_and_route_of_the_flat_list(pattern):
    """The first of ninja's patterns that matches a path is the one that answers it: the same view
    (by name), the same route (the metrics' label and the permission table's key) and
    arguments (each call of ``api.urls`` makes new view objects: they are compared by name)."""
    path = sample(str(pattern.pattern))
    expected = next(p for p in FLAT if p.resolve(path[len("/api/") :]))
    match = resolve(path)
    assert match.view_name == f"api:{expected.name}"
    assert match.route == "api/" + str(expected.pattern)
    assert match.kwargs == expected.resolve(path[len("/api/") :]).kwargs
    if pattern.name:
        assert reverse(f"api:{pattern.name}", kwargs=match.kwargs) == path


def test_routes_that_share_a_first_segment_are_tried_only_inside_their_group():
    grouped = by_first_segment(FLAT)
    assert len(grouped) < len(FLAT) / 2
    media = next(p for p in grouped if str(p.pattern) == "media/")
    assert all(not str(p.pattern).startswith("media/") for p in media.url_patterns)
    assert sum(len(getattr(p, "url_patterns", [p])) for p in grouped) == len(FLAT)


def test_a_first_segment_that_is_not_literal_leaves_the_list_as_it_is():
    from django.urls import path

    def view(request):
        return None

    patterns = [path("a/b", view), path("<str:kind>/b", view), path("a/c", view)]
    assert by_first_segment(patterns) is patterns
