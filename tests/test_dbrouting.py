"""The read-replica routing (mediastore/dbrouting.py) in process: which requests it may route, how
it reads a WAL position a client sends back, and that without a replica it adds nothing. The replica
itself, with real PostgreSQL streaming, is tests/deploy/test_read_replica_live.py."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from mediastore.dbrouting import HEADER, REPLICA, ReplicaRouter, parse_lsn, replica_route
from tests.conftest import create_media


@pytest.mark.parametrize(
    "text, value",
    [
        ("0/3000000", 0x3000000),
        ("16/B374D848", (0x16 << 32) | 0xB374D848),
        ("FFFFFFFF/FFFFFFFF", (1 << 64) - 1),
    ],
)
def test_a_wal_position_is_read_as_postgresql_writes_it(text, value):
    assert parse_lsn(text) == value


@pytest.mark.parametrize("text", ["", "0", "/1", "1/", "x/1", "1/2/3", "123456789/1", " ", "1 /2x"])
def test_anything_else_a_client_sends_back_is_ignored(text):
    assert parse_lsn(text) is None


@pytest.mark.parametrize(
    "method, path, routed",
    [
        ("POST", "/api/media/search", True),
        ("GET", "/api/media", True),
        ("GET", "/api/media/dump", True),
        ("POST", "/api/media/read", True),
        ("GET", "/api/events", True),
        ("GET", "/api/stats", True),
        ("POST", "/api/download/archive", True),
        ("GET", "/api/media/m1", False),  # one media: the primary, as every other read
        ("POST", "/api/media", False),
        ("PATCH", "/api/media/search", False),
        ("GET", "/api/media/search/x", False),
        ("GET", "/api/tokens", False),
    ],
)
def test_only_the_read_only_routes_may_be_served_by_the_replica(method, path, routed):
    request = RequestFactory().generic(method, path)
    assert replica_route(request) is routed


def test_the_router_never_migrates_the_replica_and_sends_writes_to_the_primary():
    router = ReplicaRouter()
    assert router.allow_migrate(REPLICA, "media") is False
    assert router.allow_migrate("default", "media") is True
    assert router.db_for_write(None) is None
    assert router.db_for_read(None) is None  # outside a routed request


@pytest.mark.django_db
def test_without_a_replica_a_write_costs_no_statement_and_names_no_position(api, id_types, settings):
    assert "replica" not in settings.DATABASES
    create_media(api, "before")
    with CaptureQueriesContext(connection) as queries:
        response = api.post("/api/media/search", {"pid": "before"})
    assert response.status_code == 200 and HEADER not in response.headers
    assert not any("wal_lsn" in query["sql"] for query in queries.captured_queries)
    response = api.post(
        "/api/media",
        {"pid": "after", "pid_type": "local", "store_config": {"type": "DictStore", "bucket": "t"}},
    )
    assert response.status_code == 200 and HEADER not in response.headers
