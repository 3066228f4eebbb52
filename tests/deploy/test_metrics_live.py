"""/metrics from gunicorn with 2 workers: requests served by either worker are all counted,
whichever worker answers the scrape (prometheus_client's multiprocess mode, set up by
gunicorn.conf.py)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import fetch
from tests.support.servers import Server

pytestmark = pytest.mark.e2e

BATCH = 16
MAX_BATCHES = 10


@pytest.fixture(scope="module")
def server():
    server = Server("mediastore-metrics-", 2)
    try:
        yield server
    finally:
        server.close()


def hello_count(base: str) -> float:
    response = fetch(f"{base}/metrics")
    assert response.status_code == 200, response.text
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "mediastore_http_requests_total" and sample.labels == {
                "method": "GET",
                "route": "/api/hello",
                "status": "200",
            }:
                return sample.value
    return 0.0


def serving_pids(log: str) -> set[str]:
    return set(re.findall(r'"GET /api/hello HTTP/1\.1" 200 .* pid=<?(\d+)', log))


def test_requests_spread_over_workers_are_all_counted(server):
    sent = 0
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(MAX_BATCHES):  # new connections in parallel, until both workers served some
            statuses = list(pool.map(lambda _: fetch(f"{server.base}/api/hello").status_code, range(BATCH)))
            assert statuses == [200] * BATCH
            sent += BATCH
            if len(serving_pids(server.app.log())) >= 2:
                break
    assert len(serving_pids(server.app.log())) == 2, "one worker served every request; nothing to add up"

    counts = {hello_count(server.base) for _ in range(6)}  # scrapes land on either worker

    assert counts == {float(sent)}
