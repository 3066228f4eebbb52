"""Answers for failures that are no fault of the request: JSON under /api/, one more try for reads.

The database really going away mid-request is tested live (tests/deploy/test_edges_live.py); here
the pieces that decide the answer are checked one by one.
"""

from __future__ import annotations

import json

from django.db import OperationalError
from django.http import HttpResponse
from django.test import RequestFactory

from mediastore.dbretry import RetryReadsMiddleware, database_unavailable
from mediastore.urls import server_error


def test_an_unhandled_error_under_api_is_a_json_500():
    """Regression: a request that failed unexpectedly got Django's HTML 500 page, which no client
    of the API can read."""
    response = server_error(RequestFactory().get("/api/media/x"))
    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    assert "server's log" in json.loads(response.content)["detail"]


def test_an_unhandled_error_of_a_page_is_django_s_page():
    response = server_error(RequestFactory().get("/admin/"))
    assert response.status_code == 500 and b"<h1>Server Error (500)</h1>" in response.content


def test_a_lost_database_is_a_503_with_retry_after():
    response = database_unavailable(RequestFactory().get("/api/media/x"), OperationalError("gone"))
    assert response.status_code == 503 and response["Retry-After"] == "1"
    assert json.loads(response.content) == {
        "detail": "the database could not be reached (OperationalError); try again shortly"
    }


def downstream(answers: list[HttpResponse]):
    calls = []

    def get_response(request):
        calls.append(request.method)
        return answers[len(calls) - 1]

    return get_response, calls


def lost(request) -> HttpResponse:
    return database_unavailable(request, OperationalError("server closed the connection"))


def test_a_read_that_lost_its_database_runs_once_more(transactional_db):
    request = RequestFactory().get("/api/media/x")
    get_response, calls = downstream([lost(request), HttpResponse("fine")])
    response = RetryReadsMiddleware(get_response)(request)
    assert (response.status_code, response.content, calls) == (200, b"fine", ["GET", "GET"])


def test_a_read_is_tried_twice_at_most(transactional_db):
    request = RequestFactory().get("/api/media/x")
    get_response, calls = downstream([lost(request), lost(request), HttpResponse("never")])
    assert RetryReadsMiddleware(get_response)(request).status_code == 503
    assert calls == ["GET", "GET"]


def test_a_write_that_lost_its_database_is_not_run_again(transactional_db):
    request = RequestFactory().post("/api/media", data=b"{}", content_type="application/json")
    get_response, calls = downstream([lost(request), HttpResponse("never")])
    assert RetryReadsMiddleware(get_response)(request).status_code == 503
    assert calls == ["POST"]


def test_other_503s_are_not_retried(transactional_db):
    request = RequestFactory().get("/api/stats")
    get_response, calls = downstream([HttpResponse(status=503), HttpResponse("never")])
    assert RetryReadsMiddleware(get_response)(request).status_code == 503
    assert calls == ["GET"]


def test_only_a_unique_violation_is_a_409():
    """Regression: every IntegrityError was answered 409 "uniqueness", so a coding bug (a NOT NULL
    or foreign key violation) looked like a client's conflict; it stays a 500 now."""
    import psycopg.errors
    import pytest
    from django.db import IntegrityError

    from mediastore.api import _integrity

    request = RequestFactory().post("/api/media")
    for duplicate in (IntegrityError("UNIQUE constraint failed: media_media.pid"), IntegrityError("dup")):
        if str(duplicate) == "dup":  # PostgreSQL: psycopg's error is the cause Django chains
            duplicate.__cause__ = psycopg.errors.UniqueViolation("duplicate key value")
        assert _integrity(request, duplicate).status_code == 409
    for bug in (IntegrityError("NOT NULL constraint failed: media_media.pid"), IntegrityError("fk")):
        if str(bug) == "fk":
            bug.__cause__ = psycopg.errors.ForeignKeyViolation("violates foreign key constraint")
        with pytest.raises(IntegrityError):
            _integrity(request, bug)


def test_a_protected_delete_names_what_blocks_it(db):
    from django.contrib.auth.models import Group
    from django.db.models import ProtectedError

    from mediastore.api import blockers_message

    groups = [Group.objects.create(name=f"blocker-{i}") for i in range(7)]
    message = blockers_message(ProtectedError("protected", set(groups)))
    assert message == (
        "still used by 7 groups (blocker-0, blocker-1, blocker-2, blocker-3, blocker-4 and 2 more): "
        "delete or change those first"
    )


def test_failpoints_are_an_error_of_check_deploy(settings):
    from mediastore.checks import failpoints_in_production

    settings.MEDIASTORE_FAILPOINTS = {}
    assert failpoints_in_production() == []
    settings.MEDIASTORE_FAILPOINTS = {"content.before_switch": "crash"}
    [error] = failpoints_in_production()
    assert error.id == "mediastore.E001" and "content.before_switch" in error.msg


def test_a_host_not_served_is_a_json_400_and_one_warning_line(client, settings, caplog):
    """Regression: a request with a Host header outside DJANGO_ALLOWED_HOSTS (scanners send them
    all day) got an HTML 400 under /api/ and logged a whole traceback at ERROR."""
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = ["data.example.org"]
    with caplog.at_level("INFO"):
        response = client.get("/api/hello", HTTP_HOST="scanner.example")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert "DJANGO_ALLOWED_HOSTS" in json.loads(response.content)["detail"]
    [record] = [r for r in caplog.records if r.name == "django.security.DisallowedHost"]
    assert record.levelname == "WARNING" and record.exc_info is None
    assert "scanner.example" in record.getMessage()
    page = client.get("/admin/", HTTP_HOST="scanner.example")
    assert page.status_code == 400 and page["Content-Type"].startswith("text/html")
