"""Answers for a database that went away mid-request: 503 with a message, and one more try for
reads.

A PostgreSQL connection can break under a request (the server restarted, a failover, an operator's
``pg_terminate_backend``): Django raises ``OperationalError`` or ``InterfaceError``. Such an error
says nothing about the request, so the API answers 503 ``{"detail": ...}`` with ``Retry-After``
(``database_unavailable``), and ``RetryReadsMiddleware`` runs a GET or HEAD once more on a new
connection before answering it: a read changes nothing, so running it twice is safe. Writes are
not retried here: whether their commit reached the database is unknown, and the client decides.
"""

from __future__ import annotations

import logging

from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse

log = logging.getLogger(__name__)

RETRY_AFTER_S = 1
SAFE_METHODS = ("GET", "HEAD")


def database_unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
    """503 for a database error that is no fault of the request."""
    log.error("database unavailable during %s %s: %s", request.method, request.path, exc)
    response = JsonResponse(
        {"detail": f"the database could not be reached ({type(exc).__name__}); try again shortly"},
        status=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )
    response.database_lost = True  # read by RetryReadsMiddleware
    return response


class RetryReadsMiddleware:
    """Runs a GET or HEAD answered by ``database_unavailable`` once more, after closing the
    broken connections (Django opens new ones at the next query). Innermost in MIDDLEWARE, so that
    only the view runs again. Inside a transaction (the test suite's) nothing is retried: closing
    its connection would end it."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.method in SAFE_METHODS and getattr(response, "database_lost", False):
            if not any(conn.in_atomic_block for conn in connections.all(initialized_only=True)):
                for conn in connections.all(initialized_only=True):
                    conn.close()
                log.info("retrying %s %s on a new database connection", request.method, request.path)
                response = self.get_response(request)
        return response
