"""``GET /api/health``: a public readiness check for load balancers and container health checks."""

from __future__ import annotations

import logging

from django.db import Error as DatabaseError
from django.db import connection
from django.http import HttpRequest
from ninja import Router, Schema, Status

logger = logging.getLogger(__name__)

router = Router(tags=["health"])


class HealthOut(Schema):
    status: str
    database: str


class UnavailableOut(Schema):
    status: str
    detail: str


@router.get(
    "/health",
    auth=None,
    response={200: HealthOut, 503: UnavailableOut},
    summary="Check that the server and its database answer",
)
def health(request: HttpRequest):
    """Readiness check, public: 200 `{"status": "ok", "database": "ok"}` when the database answers
    a `SELECT 1`; 503 `{"status": "unavailable", "detail": "..."}` when it does not. The Docker
    image's `HEALTHCHECK` and load balancers call it; it never needs a token."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        logger.warning("health check: database unreachable: %s", exc)
        return Status(503, {"status": "unavailable", "detail": "The database does not answer."})
    return Status(200, {"status": "ok", "database": "ok"})
