"""GET /api/health: public, 200 with the database answering, 503 without."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection

pytestmark = pytest.mark.django_db


def test_health_is_public_and_reports_the_database(anon):
    response = anon.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_health_is_503_when_the_database_does_not_answer(anon, monkeypatch):
    def unreachable():
        raise OperationalError('connection to server at "db" failed: password authentication failed')

    monkeypatch.setattr(connection, "cursor", unreachable)
    response = anon.get("/api/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["detail"].endswith(".") and "password" not in body["detail"]
    assert set(body) == {"status", "detail"}
