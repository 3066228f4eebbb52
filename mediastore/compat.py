"""Every use of a private or undocumented part of Django, psycopg or gunicorn, each behind one named
function here (``../shared/STYLE.md``: "Private attributes ... only behind one compatibility
module").

Django is pinned below 5.3 (pyproject.toml); an upgrade may change any of these without notice.
``tests/test_compat.py`` has one test per function that fails loudly, naming the internal, when the
framework changes it; run it first after an upgrade. Each function's docstring says which internal
it uses, why a public API does not do the job (docs/performance.md, "Private internals", has the
figures), and what breaks if it changes.

Not here, because they are public: ``Model._meta`` (Django's documented Model _meta API),
``Model.from_db`` (documented in "Customizing model loading"), django-simple-history's
``_history_user`` and ``_change_reason`` (its documented way of naming the user and the reason),
``HttpRequest.current_app``, and attributes of our own that we set on a request. Overriding
``is_usable`` in ``mediastore.postgresql_backend`` is subclassing a built-in backend, which Django
documents; that Django calls it before each request's first query (with ``CONN_HEALTH_CHECKS``) is
what tests/test_compat.py checks. Likewise ``mediastore.sqlite_backend`` overrides SQLite's
``_start_transaction_under_autocommit`` and ``_set_autocommit``, the hooks a backend implements for
``transaction.atomic``, to queue writers; that atomic begins and ends through them is checked there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.http import HttpRequest
from ninja import Schema
from ninja.schema import DjangoGetter
from pydantic import ModelWrapValidatorHandler, ValidationInfo, model_validator


def raw_delete(queryset: models.QuerySet) -> int:
    """Delete the rows of ``queryset`` in one ``DELETE`` statement, without collecting related
    objects and without signals; the number of rows deleted.

    Internal: ``QuerySet._raw_delete(using)``, what ``Collector`` itself uses for fast deletes.
    Why: ``QuerySet.delete()`` on media fetches the rows again and sends ``pre_delete`` /
    ``post_delete`` per row, and django-simple-history answers each ``post_delete`` with one insert:
    a bulk delete of n media costs 2n+ statements, and writes the history twice when the caller
    wrote it already (``content.deletes``). If it changes: bulk deletes of media fail (AttributeError
    or TypeError), they do not silently do something else.
    """
    return queryset._raw_delete(queryset.db)


def drop_request_body(request: HttpRequest) -> None:
    """Make Django let go of the raw bytes of a request body it has read: ``request.body`` and
    ``request.read()`` give ``b""`` from here on.

    Internal: ``HttpRequest._body`` (the cache behind the ``body`` property) and
    ``HttpRequest._stream`` (after ``body`` was read, a ``BytesIO`` over the same bytes, which
    ``read()`` serves). Why: Django keeps ``request.body`` for the whole request, so a base64
    upload of hundreds of MB would be held twice more than needed (mediastore.parser); there is no
    public way to release it. If it changes: the raw body stays in memory until the request ends
    (more memory per large upload, nothing wrong in the answers).
    """
    import io

    request._body = b""
    request._stream = io.BytesIO()


def raw_connection(connection: BaseDatabaseWrapper) -> Any:
    """The DB-API connection (a ``psycopg.Connection`` on PostgreSQL) under Django's wrapper, or
    None before the first query.

    Internal: ``DatabaseWrapper.connection``, an attribute Django's own backends use but do not
    document. Why: psycopg's per-connection ``prepare_threshold`` and the socket (``fileno()``) for
    a health check without a round trip are only there. If it changes: AttributeError at the first
    prepared read or health check (every request on PostgreSQL fails: loud).
    """
    return connection.connection


def run_as_statement(
    connection: BaseDatabaseWrapper,
    cursor: CursorWrapper,
    sql: str,
    params: Any,
    run: Callable[[str, Any, bool, dict], None],
    *,
    logged_as: str,
) -> None:
    """Run ``run(sql, params, False, context)``, work done on the DB-API connection where Django does
    not see it (a COPY, ``media.copyrows``), as Django runs one statement: through the connection's
    ``execute_wrapper``s (the metrics' statement count), with a DB-API error raised as Django's
    (``IntegrityError`` for a taken unique value), and recorded in the query log as ``logged_as``
    when queries are logged (``CaptureQueriesContext``, the statement budgets).

    Internal: ``DatabaseWrapper.execute_wrappers`` (the list ``execute_wrapper()`` appends to),
    ``wrap_database_errors``, ``queries_logged`` and ``queries_log``, which Django's own
    ``CursorDebugWrapper`` uses. Why: Django has no public way to run a statement it did not write
    through those, and COPY is not a statement ``cursor.execute`` can send. If it changes:
    AttributeError at the first COPY (bulk creates on PostgreSQL fail: loud); the compat test names
    the attribute.
    """
    import time
    from functools import partial

    context = {"connection": connection, "cursor": cursor}
    execute = run
    for wrapper in reversed(connection.execute_wrappers):
        execute = partial(wrapper, execute)
    started = time.monotonic()
    with connection.wrap_database_errors:
        execute(sql, params, False, context)
    if connection.queries_logged:
        connection.queries_log.append({"sql": logged_as, "time": f"{time.monotonic() - started:.3f}"})


def replace_cursor(wrapper: CursorWrapper, cursor: Any) -> None:
    """Make Django's ``wrapper`` run its statements on the DB-API ``cursor`` instead of the one
    Django opened (which is closed); query logging, ``execute_wrappers``, ``CaptureQueriesContext``
    and the statement budgets still see them, and leaving the ``with`` block closes ``cursor``.

    Internal: ``CursorWrapper.cursor``, the DB-API cursor the wrapper delegates to. Why: the
    prepared single-row reads (mediastore.rowfetch) need a psycopg cursor that binds parameters on
    the server; Django's ``OPTIONS={"server_side_binding": True}`` binds every statement of every
    connection on the server instead (figures in docs/performance.md). If it changes: the reads fail
    with AttributeError (loud), or, if Django stopped delegating to ``.cursor``, they run unprepared
    (tests/test_rowfetch.py and tests/test_compat.py fail).
    """
    client_bound, wrapper.cursor = wrapper.cursor, cursor
    client_bound.close()


def db_converters(field: models.Field, connection: BaseDatabaseWrapper) -> tuple[list[Callable], Any]:
    """The functions that turn this field's column value, as the database driver returns it, into
    the Python value the ORM gives (the backend's, e.g. dates and JSON on SQLite, then the field's
    ``from_db_value``), each called ``function(value, expression, connection)``; and the
    expression to pass them, as ``(functions, expression)``.

    Internal: ``Field.get_col``, ``DatabaseOperations.get_db_converters`` and
    ``Expression.get_db_converters``, what the SQL compiler calls. Why: the compiled single-row
    reads (mediastore.rowfetch) build model instances from rows they fetched themselves, with
    ``Model.from_db``, and must convert the values as the ORM would; ``QuerySet.raw()`` converts,
    but compiles its converters again on every call and cannot follow foreign keys.
    If it changes: TypeError/AttributeError at the first read of a token (every request: loud); a
    converter that silently went missing is caught by tests/test_compat.py comparing values with
    the ORM's.
    """
    expression = field.get_col(field.model._meta.db_table)
    return [
        *connection.ops.get_db_converters(expression),
        *expression.get_db_converters(connection),
    ], expression


def close_after_answer(start_response: Callable) -> bool:
    """Make gunicorn close the connection after this answer (``Connection: close``); False when not
    served by gunicorn (Django's test client, runserver).

    Internal: gunicorn's ``Response.force_close()``, reached as the object whose bound
    ``start_response`` gunicorn passes to the application. Why: an answer given before the body
    was read (401, 413, 408) must end its connection, or the unread rest of the body would be
    parsed as the next request; WSGI has no way to ask for that, and gunicorn drops a
    ``Connection`` header an application sets (hop-by-hop). If it changes: such connections
    stay open and the rest of the body is read as a request (a 400 for the client's next request,
    never another user's data); tests/test_compat.py and tests/deploy/test_slow_bodies.py fail.
    """
    force_close = getattr(getattr(start_response, "__self__", None), "force_close", None)
    if callable(force_close):
        force_close()
        return True
    return False


class SchemaValidatedOnce(Schema):
    """A ninja ``Schema`` for request bodies (JSON objects) that pydantic validates once, not twice.

    Internal: ninja's ``Schema._run_root_validator``, the wrap validator every ``Schema`` runs;
    defining a validator of the same name replaces it (pydantic keeps one validator per name,
    the subclass's). Ninja's validates a schema with ``extra="forbid"`` twice, on the data and then
    on a ``DjangoGetter`` of it (for ORM objects and ``resolve_*`` methods), and once more per level
    of nesting (4 validations of the ``store_config`` of each media of a bulk create). For a dict
    (a parsed JSON object) the second pass gives the same object as the first, so here a dict is
    validated once; anything else goes the way ninja goes. Why: profiles of ``POST
    /api/media/create`` (docs/performance.md, "Bulk create"). If it changes (ninja renames it):
    both validators run, every request schema is validated twice or more again (slower, the same
    answers); tests/test_compat.py fails.
    """

    @model_validator(mode="wrap")
    @classmethod
    def _run_root_validator(
        cls, values: Any, handler: ModelWrapValidatorHandler, info: ValidationInfo
    ) -> Any:
        if isinstance(values, dict):
            return handler(values)
        if cls.model_config.get("extra") == "forbid" or cls.model_config.get("validate_assignment", False):
            handler(values)
        return handler(DjangoGetter(values, cls, info.context))
