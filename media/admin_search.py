"""The media list of the admin searching as the API does, and its facets.

``ApiSearchFilter`` reads the query parameters of ``GET /api/media`` (same names, same syntax:
``?tags_all=raw&pid=D2024*&metadata=sample.depth:gte:5``) from the changelist's URL, turns them into
the API's ``MediaSearch`` with the API's own parser (``media.search.params``) and filters the list by
the API's SQL conditions (``media.search.conditions_for``): one implementation of search, so the
list shows what ``GET /api/media/search`` finds for the same filters. Every filter lives in the URL,
so a search is a bookmark and the back button works.

``facets`` counts, for the media the list shows, how many carry each tag and each pid type. The cost
is bounded whatever the size of the table: the counts are taken over the first ``FACET_SCAN``
matches (in pk order), and shown as "n+" (at least n) when more match than that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import EmptyResultSet
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL
from django.utils.functional import cached_property
from taggit.models import Tag

from media.models import TaggedMedia
from media.schemas import MediaListQuery, MediaSearch
from media.search import conditions_for
from media.search.indexes import media_rows_estimate
from media.search.params import filters_from_query
from media.search.sql import TABLE
from media.search.wildcards import Wildcard
from mediastore.errors import MediastoreError

#: The query parameters of GET /api/media that the list takes (paging and order are the admin's).
PARAMETERS = (
    "pid",
    "identifier",
    "identifiers",
    "tags",
    "tags_all",
    "pid_type",
    "metadata",
    "store_status",
    "store_config",
    "created_after",
    "created_before",
    "updated_after",
    "updated_before",
)
#: Parameters that may be repeated (lists in the API).
REPEATED = ("identifiers", "tags", "tags_all", "pid_type", "metadata")

#: The lookups of the list's earlier sidebar filters, still accepted in the URL (old bookmarks).
OLD_LOOKUPS = ("pid_type__name__exact", "store_config__id__exact", "tags__id__exact", "store_status__exact")

#: Facets count over at most this many matches, so a list of a million media costs what one of
#: FACET_SCAN does (docs/performance.md has the figures).
FACET_SCAN = 10_000
#: At most this many tags are listed, the most frequent first.
FACET_TAGS = 25


def search_filters(params: dict[str, list[str]]) -> MediaSearch:
    """The ``MediaSearch`` of the changelist's parameters, through ``GET /api/media``'s parser (its
    rules, its error sentences); blank values (a form's empty fields) are left out. Raises
    ``RuleViolation`` as the API would answer 422."""
    given = {name: [v for v in params.get(name, []) if v.strip()] for name in PARAMETERS}
    given = {name: values for name, values in given.items() if values}
    query = MediaListQuery.model_validate(
        {name: values if name in REPEATED else values[-1] for name, values in given.items()}
    )
    return filters_from_query(query, given.keys())


def matching(queryset: QuerySet, filters: MediaSearch) -> QuerySet:
    """``queryset`` cut to the media matching ``filters`` by the API's SQL conditions."""
    where, params = conditions_for(filters).where()
    return queryset.filter(pk__in=RawSQL(f"SELECT {TABLE}.id FROM {TABLE} WHERE {where}", params))


def term_filters(term: str) -> MediaSearch:
    """The search box: the API's ``identifier`` filter (the pid or any identifier value). A term
    without wildcards matches as a part (``IFCB001`` is ``*IFCB001*``); with ``*`` or ``?`` it must
    match the whole value, as in the API."""
    term = term.strip()
    if not Wildcard.parse(term).is_literal:
        return MediaSearch(identifier=term)
    escaped = term.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")
    return MediaSearch(identifier=f"*{escaped}*")


class ApiSearchFilter(admin.ListFilter):
    """The sidebar's search form: the filters of ``GET /api/media`` (see the module)."""

    title = "search as the API does"
    template = "media/admin/search_filter.html"

    def __init__(self, request, params, model, model_admin) -> None:
        super().__init__(request, params, model, model_admin)
        for name in PARAMETERS:
            if name in params:
                self.used_parameters[name] = params.pop(name)
        self.error = ""
        self.filters: MediaSearch | None = None
        try:
            self.filters = search_filters(self.used_parameters)
        except MediastoreError as exc:
            self.error = exc.message

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str]:
        return list(PARAMETERS)

    def queryset(self, request, queryset):
        if self.filters is None:
            return queryset.none()
        if not any(self.used_parameters.values()):
            return queryset
        return matching(queryset, self.filters)

    def choices(self, changelist):
        """The form's fields: the values given, and one empty field more for each repeatable one."""
        fields = []
        for name in PARAMETERS:
            values = [v for v in self.used_parameters.get(name, []) if v.strip()]
            if name in REPEATED:
                values = [*values, ""]
            elif not values:
                values = [""]
            for n, value in enumerate(values):
                fields.append({"name": name, "value": value, "id": f"search-{name}-{n}", "first": n == 0})
        kept = [
            (key, value)
            for key, values in changelist.filter_params.items()  # every value of a repeated one
            if key not in PARAMETERS
            for value in values
        ]
        yield {"fields": fields, "kept": kept, "error": self.error, "help": HELP}


HELP = {
    "pid": "wildcard: * any run, ? one character",
    "identifier": "wildcard over the pid and every identifier value",
    "identifiers": "type=wildcard, e.g. filename=*.roi",
    "tags": "any of these tags",
    "tags_all": "every one of these tags",
    "pid_type": "identifier type of the pid",
    "metadata": "path:op:value, e.g. sample.depth:gte:5",
    "store_status": "PENDING or READY",
    "store_config": "store configuration number",
    "created_after": "ISO 8601, e.g. 2024-01-31",
    "created_before": "ISO 8601 (strictly before)",
    "updated_after": "ISO 8601",
    "updated_before": "ISO 8601 (strictly before)",
}


class CappedPaginator(Paginator):
    """The list's paginator, whose count stops at ``MEDIASTORE_SEARCH_COUNT_CAP`` as the API's
    ``X-Total-Count`` does (``exact`` False beyond it), instead of counting a million rows for every
    page. Unfiltered on PostgreSQL beyond the cap, the count is the planner's estimate of the table's
    rows (``estimated``)."""

    exact = True
    estimated = False

    @cached_property
    def count(self) -> int:
        cap = settings.MEDIASTORE_SEARCH_COUNT_CAP
        counted = self.object_list.order_by().values("pk")[: cap + 1].count()
        if counted <= cap:
            return counted
        self.exact = False
        if connection.vendor == "postgresql" and not self.object_list.query.where:
            self.estimated = True
            return max(media_rows_estimate(), counted)
        return cap


@dataclass
class Facet:
    """One value of a facet: its count (``more``: at least that many) and the URL that narrows the
    list to it."""

    value: str
    count: int
    more: bool
    url: str
    chosen: bool = False


@dataclass
class Facets:
    scanned: int
    more: bool
    tags: list[Facet] = field(default_factory=list)
    pid_types: list[Facet] = field(default_factory=list)


def _url(params: dict[str, list[str]], name: str, value: str, *, replace: bool) -> str:
    query = {k: list(v) for k, v in params.items()}
    values = [] if replace else [v for v in query.get(name, []) if v.strip() and v != value]
    query[name] = [*values, value]
    return "?" + urlencode([(k, v) for k, vs in query.items() for v in vs])


def _facet_sql(queryset: QuerySet) -> tuple[str, list[Any]]:
    """One statement: ``('n', NULL, matches up to FACET_SCAN + 1)``, ``('p', pid type, count)`` per
    pid type and ``('t', tag, count)`` for the FACET_TAGS most frequent tags, over the first
    FACET_SCAN matches. The matches are collected first (a materialized CTE, at most FACET_SCAN + 1
    rows through the list's own query), then each one's tags are read through the tag links' index
    (a LATERAL lookup on PostgreSQL, so the planner cannot choose to scan every tag link instead)."""
    first, params = queryset.order_by("pk").values("pk", "pid_type")[: FACET_SCAN + 1].query.sql_with_params()
    tagged, tags = f'"{TaggedMedia._meta.db_table}"', f'"{Tag._meta.db_table}"'
    if connection.vendor == "postgresql":
        materialized = "MATERIALIZED "
        links = (
            f"CROSS JOIN LATERAL (SELECT tm.tag_id FROM {tagged} tm "
            "WHERE tm.content_object_id = f.id OFFSET 0) AS t"
        )
    else:
        materialized = ""
        links = f"JOIN {tagged} t ON t.content_object_id = f.id"
    sql = (
        f"WITH m(id, pid_type) AS {materialized}({first}), "
        f"f AS {materialized}(SELECT id, pid_type FROM m ORDER BY id LIMIT %s) "
        "SELECT 'n', NULL, count(*) FROM m "
        "UNION ALL SELECT 'p', pid_type, count(*) FROM f GROUP BY pid_type "
        "UNION ALL SELECT 't', tg.name, top.n FROM "
        f"(SELECT t.tag_id, count(*) AS n FROM f {links} "
        "GROUP BY t.tag_id ORDER BY n DESC, t.tag_id LIMIT %s) "
        f"AS top JOIN {tags} tg ON tg.id = top.tag_id"
    )
    return sql, [*params, FACET_SCAN, FACET_TAGS]


def facets(queryset: QuerySet, params: dict[str, list[str]]) -> Facets:
    """Counts per tag and per pid type among the media of ``queryset`` (the list as filtered), taken
    over its first ``FACET_SCAN`` media in pk order; ``more``: more media match, and every count is
    a lower bound. One statement (``_facet_sql``), whose cost is bounded by FACET_SCAN."""
    try:
        sql, sql_params = _facet_sql(queryset)
    except EmptyResultSet:  # the list is empty by construction (a refused filter)
        return Facets(scanned=0, more=False)
    with connection.cursor() as cursor:
        cursor.execute(sql, sql_params)
        rows = cursor.fetchall()
    scanned = next(n for kind, _, n in rows if kind == "n")
    more = scanned > FACET_SCAN
    chosen_tags = set(params.get("tags_all", []))
    chosen_types = set(params.get("pid_type", []))
    tag_rows = sorted(((name, n) for kind, name, n in rows if kind == "t"), key=lambda r: (-r[1], r[0]))
    type_rows = sorted(((name, n) for kind, name, n in rows if kind == "p"), key=lambda r: (-r[1], r[0]))
    return Facets(
        scanned=min(scanned, FACET_SCAN),
        more=more,
        tags=[
            Facet(name, n, more, _url(params, "tags_all", name, replace=False), name in chosen_tags)
            for name, n in tag_rows
        ],
        pid_types=[
            Facet(name, n, more, _url(params, "pid_type", name, replace=True), name in chosen_types)
            for name, n in type_rows
        ],
    )
