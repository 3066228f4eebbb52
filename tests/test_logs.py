"""Log formatting (mediastore/logs.py): the client address on Django's lines about a request, JSON
lines that parse, and a log format nobody can misspell silently. Live gunicorn and nginx:
tests/deploy/test_client_address_logs.py and tests/deploy/test_nginx_e2e.py."""

from __future__ import annotations

import json
import logging

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory
from django.utils.log import log_response

from mediastore.logs import JsonLineFormatter, TextFormatter, log_format


@pytest.fixture
def captured():
    """The records django.request emits, kept as they are."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def unauthorized(captured, **meta) -> logging.LogRecord:
    from django.http import JsonResponse

    request = RequestFactory().get("/api/media/x", HTTP_AUTHORIZATION="Bearer secret-token", **meta)
    log_response(
        "%s: %s", "Unauthorized", request.path, response=JsonResponse({}, status=401), request=request
    )
    return captured[-1]


@pytest.mark.parametrize(
    "meta,client",
    [
        ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.9"}, "203.0.113.9"),
        ({"REMOTE_ADDR": "198.51.100.4", "HTTP_X_FORWARDED_FOR": "6.6.6.6"}, "198.51.100.4"),
    ],
)
def test_json_line_names_the_client_and_never_the_request_headers(captured, meta, client):
    line = JsonLineFormatter().format(unauthorized(captured, **meta))
    data = json.loads(line)
    assert data["message"] == "Unauthorized: /api/media/x"
    assert (data["client"], data["method"], data["path"], data["status_code"]) == (
        client,
        "GET",
        "/api/media/x",
        401,
    )
    assert (data["level"], data["logger"]) == ("WARNING", "django.request")
    assert "request" not in data and "secret-token" not in line


def test_text_line_ends_with_the_client(captured):
    record = unauthorized(captured, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    line = TextFormatter().format(record)
    assert line.endswith("[WARNING] django.request: Unauthorized: /api/media/x client=203.0.113.9")
    other = logging.LogRecord("x", logging.INFO, __file__, 1, "no request here", None, None)
    assert "client=" not in TextFormatter().format(other)


@pytest.mark.parametrize(
    "value,expected", [("", "text"), ("json", "json"), ("JSON", "json"), ("text", "text")]
)
def test_log_format(monkeypatch, value, expected):
    monkeypatch.setenv("MEDIASTORE_LOG_FORMAT", value)
    assert log_format() == expected


def test_an_unknown_log_format_stops_the_start(monkeypatch):
    monkeypatch.setenv("MEDIASTORE_LOG_FORMAT", "jsonl")
    with pytest.raises(ImproperlyConfigured, match="MEDIASTORE_LOG_FORMAT"):
        log_format()
