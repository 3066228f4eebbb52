"""URL resolution of the API by a path's first and last segments, with Django's resolver doing the rest.

Django tries a list of URL patterns in order until one matches. The API has about 85 of them, and
``GET /api/media/{pid}`` is the 65th: on every request of it Django ran 58 pattern matches (each a
few Python calls) and built a list of every pattern tried, about 350 of the roughly 840 Python
calls a single read makes beyond ``GET /api/hello`` (docs/performance.md).

``IndexedResolver`` takes the place of the API's ``URLResolver`` and answers the same. What a
pattern can match is read from its route: a route whose text before its first ``<converter>``
holds a ``/`` matches only paths whose first segment is the text before that ``/``; a route with no
converter, only its own text; and a route's last segment, when it holds no converter, must be the
path's last segment. Any other pattern (a converter in that segment, a regular expression, a
nested include) may match any path. For each pair of a first and a last segment the resolver keeps
the patterns that can match such a path, in their order, as a plain resolver of its own, and
matches a request against that one only: ``media/{pid}`` against the three ``media/<path:pid>``
routes, not the 64 before them. So the first pattern that matches is the one Django's full walk
would find. When none matches, the full walk runs (its 404 lists every pattern tried, as before);
reversing URLs never uses the index."""

from __future__ import annotations

from functools import cached_property

from django.urls import Resolver404, URLPattern, URLResolver
from django.urls.resolvers import RoutePattern

#: A segment a route does not fix by literal text (it holds a converter): any path's may match it.
ANY_SEGMENT = None


def route_segments(pattern) -> tuple[str | None, str | None]:
    """The first and the last path segment of every path ``pattern`` can match, each
    ``ANY_SEGMENT`` when the route does not fix it by literal text."""
    if not isinstance(pattern, URLPattern) or not isinstance(pattern.pattern, RoutePattern):
        return ANY_SEGMENT, ANY_SEGMENT
    route = str(pattern.pattern)
    literal, converter, _ = route.partition("<")
    if "/" in literal:
        first = literal.partition("/")[0]
    else:
        first = ANY_SEGMENT if converter else literal
    last = route.rpartition("/")[2]
    return first, ANY_SEGMENT if "<" in last or ">" in last else last


class IndexedResolver(URLResolver):
    """A ``URLResolver`` (``path("api/", api.urls)``) that matches a path only against the
    patterns its first and last segments can reach; see the module's docstring."""

    @classmethod
    def replacing(cls, resolver: URLResolver) -> IndexedResolver:
        """This kind of resolver with everything ``resolver`` has (prefix, patterns, names)."""
        return cls(
            resolver.pattern,
            resolver.urlconf_name,
            resolver.default_kwargs,
            resolver.app_name,
            resolver.namespace,
        )

    @cached_property
    def _segment_routes(self) -> tuple[list[tuple[object, str | None, str | None]], set, set]:
        """Each pattern with the segments it fixes, and the first and last segments some route fixes."""
        listed = [(p, *route_segments(p)) for p in self.url_patterns]
        firsts = {first for _, first, _ in listed} - {ANY_SEGMENT}
        lasts = {last for _, _, last in listed} - {ANY_SEGMENT}
        return listed, firsts, lasts

    @cached_property
    def _segment_resolvers(self) -> dict[tuple[str | None, str | None], URLResolver]:
        return {}

    def _resolver_for(self, first: str, last: str) -> URLResolver:
        """A plain resolver like this one (same prefix and names) over the patterns that can match a
        path with these first and last segments, in their order; made once per pair of them."""
        routes, firsts, lasts = self._segment_routes
        key = (first if first in firsts else ANY_SEGMENT, last if last in lasts else ANY_SEGMENT)
        resolver = self._segment_resolvers.get(key)
        if resolver is None:
            patterns = [
                p
                for p, head, tail in routes
                if head in (key[0], ANY_SEGMENT) and tail in (key[1], ANY_SEGMENT)
            ]
            resolver = self._segment_resolvers[key] = URLResolver(
                self.pattern, patterns, self.default_kwargs, self.app_name, self.namespace
            )
        return resolver

    def resolve(self, path):
        path = str(path)
        match = self.pattern.match(path)
        if match:
            rest = match[0]
            try:
                return self._resolver_for(rest.partition("/")[0], rest.rpartition("/")[2]).resolve(path)
            except Resolver404:
                pass
        return self.full_walk(path)

    def full_walk(self, path):
        """Django's resolution over every pattern (what a path none of its candidates takes gets)."""
        return super().resolve(path)
