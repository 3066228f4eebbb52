"""The API's URL index (mediastore/routing.py): every path resolves to what Django's own walk over
the same patterns finds, with far fewer patterns tried, and a path no pattern takes is still a 404
listing them all."""

from __future__ import annotations

import itertools
import re

import pytest
from django.urls import Resolver404, URLPattern, URLResolver, get_resolver, reverse
from django.urls.resolvers import RoutePattern

from mediastore.routing import ANY_SEGMENT, IndexedResolver, route_segments

# Values for each converter of a route: plain ones, ones equal to other routes' literal segments (a
# pid "search" or "create/content"), with slashes, with dots and spaces.
CONVERTER_VALUES = [
    "x",
    "12",
    "search",
    "create",
    "content",
    "10.1234/demo.1",
    "a/b/content",
    "media",
    "replicas/3",
    "a b",
    "history/",
    "update/tags",
]


def api_resolver() -> IndexedResolver:
    found = [p for p in get_resolver().url_patterns if isinstance(p, IndexedResolver)]
    assert len(found) == 1, "the API's patterns are served by one IndexedResolver"
    return found[0]


def plain_copy(resolver: URLResolver) -> URLResolver:
    """Django's own resolver over the same patterns, with the same prefix and names."""
    return URLResolver(
        resolver.pattern,
        resolver.urlconf_name,
        resolver.default_kwargs,
        resolver.app_name,
        resolver.namespace,
    )


def sample_paths(patterns) -> list[str]:
    """For every route of ``patterns``: its text with each converter replaced by sample values."""
    paths = set()
    for pattern in patterns:
        route = str(pattern.pattern)
        holes = re.findall(r"<[^>]+>", route)
        for values in itertools.product(
            CONVERTER_VALUES[:6] if len(holes) > 1 else CONVERTER_VALUES, repeat=len(holes)
        ):
            text = route
            for hole, value in zip(holes, values, strict=True):
                text = text.replace(hole, value, 1)
            paths.add(text)
    return sorted(paths)


def test_the_api_has_its_routes_on_the_index():
    resolver = api_resolver()
    assert str(resolver.pattern) == "api/"
    assert len(resolver.url_patterns) > 60
    assert all(
        isinstance(p, URLPattern) and isinstance(p.pattern, RoutePattern) for p in resolver.url_patterns
    )


def test_every_path_resolves_as_django_would_resolve_it(monkeypatch):
    indexed = api_resolver()
    plain = plain_copy(indexed)

    def no_full_walk(path):
        raise AssertionError(f"{path}: the index left out the route that takes it")

    paths = sample_paths(indexed.url_patterns)
    paths += ["", "nothing", "media/", "media//x", "tokens/", "/media/x", "media/x/", "hello/x", "MEDIA/x"]
    assert len(paths) > 300
    found = 0
    for path in paths:
        full = "api/" + path
        try:
            expected = plain.resolve(full)
        except Resolver404:
            with pytest.raises(Resolver404):
                indexed.resolve(full)
            continue
        with monkeypatch.context() as patched:
            patched.setattr(indexed, "full_walk", no_full_walk)
            got = indexed.resolve(full)
        found += 1
        assert (got.func, got.args, got.kwargs, got.url_name, got.route, got.namespaces) == (
            expected.func,
            expected.args,
            expected.kwargs,
            expected.url_name,
            expected.route,
            expected.namespaces,
        ), path
    assert found > 250


def test_a_media_read_tries_only_the_routes_that_can_take_it():
    match = get_resolver().resolve("/api/media/10.1234/demo.1")
    assert match.view_name == "api:media_get"
    tried_in_api = [t for t in match.tried if str(t[0].pattern) == "api/"]
    assert 1 <= len(tried_in_api) <= 3  # the media/<path:pid> routes, not the 64 before them
    full = plain_copy(api_resolver()).resolve("api/media/10.1234/demo.1")
    assert len(full.tried) > 50


def test_a_path_no_route_takes_is_a_404_listing_every_route():
    with pytest.raises(Resolver404) as caught:
        api_resolver().resolve("api/no-such-thing/here")
    assert len(caught.value.args[0]["tried"]) == len(api_resolver().url_patterns)


def test_reversing_is_unchanged():
    assert reverse("api:media_get", kwargs={"pid": "10.1234/demo.1"}) == "/api/media/10.1234/demo.1"
    assert reverse("api:hello") == "/api/hello"


@pytest.mark.parametrize(
    "route, segments",
    [
        ("media/<path:pid>", ("media", ANY_SEGMENT)),
        ("media/<path:pid>/content", ("media", "content")),
        ("media/search", ("media", "search")),
        ("media", ("media", "media")),
        ("", ("", "")),
        ("<path:pid>", (ANY_SEGMENT, ANY_SEGMENT)),
        ("pre<int:n>/x", (ANY_SEGMENT, "x")),
        ("a/b<int:n>", ("a", ANY_SEGMENT)),
        ("a/<int:n>/", ("a", "")),
    ],
)
def test_what_a_route_fixes(route, segments):
    from django.urls import path

    assert route_segments(path(route, lambda request: None)) == segments


def test_a_regular_expression_route_may_match_anything():
    from django.urls import re_path

    assert route_segments(re_path(r"^media/x$", lambda request: None)) == (ANY_SEGMENT, ANY_SEGMENT)
