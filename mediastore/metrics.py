"""Prometheus metrics: the counters every app increments, the request middleware, and ``/metrics``.

Built on prometheus-client directly (not django-prometheus): that one counts database queries only
through its own database engines, which would replace our SQLite backend (mediastore.sqlite_backend)
and the PostgreSQL one, and labels requests by view name; its multiprocess support is this
library's anyway.

gunicorn runs several worker processes, each with its own counters. With ``PROMETHEUS_MULTIPROC_DIR``
set (gunicorn.conf.py sets and empties it before the workers start; ``child_exit`` marks a dead
worker's files), every process writes its values to files there and a scrape of any worker adds up
all of them. It must be set before this module is first imported. Without it (``manage.py
runserver``, tests) the values are the one process's. A management command run with the server's
``PROMETHEUS_MULTIPROC_DIR`` (``manage.py ingest`` / ``verify`` in the server's container) adds its
counts to what ``/metrics`` reports.

Figures from the database (media by status, verify failures) are not kept in processes: they are
computed at each scrape, by functions that higher apps register with ``register_scrape`` in their
``AppConfig.ready`` (this module is the ground floor and imports no app).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    Metric,
    generate_latest,
    multiprocess,
)

from mediastore.errors import TokenExpired
from mediastore.forwarded import parse_address
from mediastore.permissions import VIEW_METRICS, operation_of
from mediastore.throttle import client_address

PREFIX = "mediastore"

REQUESTS = Counter(
    f"{PREFIX}_http_requests",
    "HTTP requests answered, by route pattern and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    f"{PREFIX}_http_request_duration_seconds",
    "Time to answer (until the view returned; streamed bodies continue after), by route pattern.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
DB_QUERIES = Counter(
    f"{PREFIX}_db_queries", "Database statements run by requests, by route pattern.", ["route"]
)
# Counted once, where the API receives bytes from a client: a base64 upload once stored, a streamed PUT
# once switched to, a tus upload as its PATCHes arrive (not again when it completes). manage.py ingest
# counts in INGEST_BYTES instead.
BYTES_UPLOADED = Counter(f"{PREFIX}_bytes_uploaded", "Bytes of media content stored through the API.")
BYTES_DOWNLOADED = Counter(f"{PREFIX}_bytes_downloaded", "Bytes of media content streamed to clients.")
# manage.py ingest increments these (result: stored, skipped or failed).
INGEST_FILES = Counter(f"{PREFIX}_ingest_files", "Files handled by manage.py ingest, by result.", ["result"])
INGEST_BYTES = Counter(f"{PREFIX}_ingest_bytes", "Bytes stored by manage.py ingest.")
# manage.py verify (content.fixity): result ok or failed.
VERIFY_MEDIA = Counter(f"{PREFIX}_verify_media", "Media checked by manage.py verify, by result.", ["result"])
VERIFY_BYTES = Counter(f"{PREFIX}_verify_bytes", "Bytes read by manage.py verify.")
# The replication worker and verify --repair (content.replication): result good, repaired, failed.
REPLICA_COPIES = Counter(
    f"{PREFIX}_replica_copies",
    "Copies of media bytes written by replication and repairs, by result.",
    ["result"],
)
REPLICA_BYTES = Counter(f"{PREFIX}_replica_bytes", "Bytes copied by replication and repairs.")

UNMATCHED = "(unmatched)"
# URL name of the pattern that answers /api/ paths no operation matches (mediastore.urls).
API_NOT_FOUND = "api-not-found"

ScrapeFunction = Callable[[], Iterable[Metric]]
_scrape_functions: list[ScrapeFunction] = []


def register_scrape(function: ScrapeFunction) -> None:
    """Have ``function`` yield metric families (computed from the database) at every scrape."""
    if function not in _scrape_functions:
        _scrape_functions.append(function)


class _ScrapeCollector:
    def collect(self) -> Iterator[Metric]:
        for function in _scrape_functions:
            yield from function()


def counted(chunks: Iterator[bytes], counter: Counter) -> Iterator[bytes]:
    """``chunks`` passed through, adding each chunk's length to ``counter`` as it goes out; closing
    the result closes ``chunks`` (a streamed response closes its iterator)."""
    try:
        for chunk in chunks:
            counter.inc(len(chunk))
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def route_of(request: HttpRequest) -> str:
    """The route pattern a request was resolved to (``/api/media/{pid}``), never the raw path, so
    that the label takes as many values as there are routes."""
    match = getattr(request, "resolver_match", None)
    if match is None or match.url_name == API_NOT_FOUND:
        return UNMATCHED
    return operation_of(request)[1]


class MetricsMiddleware:
    """Counts each request by method, route and status, times it, and counts its database
    statements (``connection.execute_wrapper``). Sits below WhiteNoise: static files are not counted."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        statements = 0

        def count(execute, sql, params, many, context):
            nonlocal statements
            statements += 1
            return execute(sql, params, many, context)

        started = time.perf_counter()
        with connection.execute_wrapper(count):
            response = self.get_response(request)
        elapsed = time.perf_counter() - started
        route = route_of(request)
        method = request.method if request.method in KNOWN_METHODS else "other"
        REQUESTS.labels(method, route, str(response.status_code)).inc()
        LATENCY.labels(method, route).observe(elapsed)
        if statements:
            DB_QUERIES.labels(route).inc(statements)
        return response


KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def allowed(request: HttpRequest) -> bool:
    """Whether the request may read /metrics: it comes from an address in
    MEDIASTORE_METRICS_ALLOW (the client address as ``client_address`` finds it: REMOTE_ADDR, or
    X-Forwarded-For only when the peer is a trusted proxy), or carries a live bearer token of a user
    with the permission ``mediastore.view_metrics``, of the scope ``read`` or ``admin``."""
    address = parse_address(client_address(request))
    if address is not None and any(address in network for network in settings.MEDIASTORE_METRICS_ALLOW):
        return True
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    from mediastore.auth import token_allows, token_row  # auth imports the API machinery; only needed here

    try:
        row = token_row(token)
    except TokenExpired:
        return False
    return row is not None and token_allows(row, VIEW_METRICS)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """``GET /metrics``: the Prometheus text format; 403 for callers ``allowed`` refuses."""
    if not allowed(request):
        return HttpResponse(
            "403 Forbidden: /metrics is served to the addresses in MEDIASTORE_METRICS_ALLOW, or with a "
            "bearer token of a user with the permission mediastore.view_metrics.\n",
            status=403,
            content_type="text/plain; charset=utf-8",
        )
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes)
    else:
        processes = REGISTRY
    scraped = CollectorRegistry()
    scraped.register(_ScrapeCollector())
    return HttpResponse(
        generate_latest(processes) + generate_latest(scraped), content_type=CONTENT_TYPE_LATEST
    )
