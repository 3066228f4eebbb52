"""One test per private internal behind ``mediastore.compat`` (and per framework hook we rely on):
each fails, naming the internal, when Django, psycopg or gunicorn change what we use. Run this first
after upgrading any of them."""

from __future__ import annotations

import inspect
import io

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models.signals import post_delete, pre_delete
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from media.models import Media
from mediastore import compat
from mediastore.permissions import PERMISSIONS_ATTRIBUTE
from tests.conftest import create_media

pytestmark = pytest.mark.django_db


def test_raw_delete_is_one_statement_without_signals():
    """QuerySet._raw_delete(using): one DELETE, no pre/post_delete, the count of rows returned."""
    for name in ("gone-1", "gone-2", "kept"):
        Group.objects.create(name=name)
    signalled: list[str] = []

    def receiver(sender, instance, **kwargs):
        signalled.append(instance.name)

    pre_delete.connect(receiver, sender=Group)
    post_delete.connect(receiver, sender=Group)
    try:
        with CaptureQueriesContext(connection) as queries:
            deleted = compat.raw_delete(Group.objects.filter(name__startswith="gone-"))
    finally:
        pre_delete.disconnect(receiver, sender=Group)
        post_delete.disconnect(receiver, sender=Group)

    assert deleted == 2, "QuerySet._raw_delete no longer returns the number of rows deleted"
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["DELETE"]
    assert signalled == [], "QuerySet._raw_delete sends delete signals now"
    left = Group.objects.filter(name__in=["gone-1", "gone-2", "kept"]).values_list("name", flat=True)
    assert list(left) == ["kept"]


def test_drop_request_body_releases_the_bytes_django_kept():
    """HttpRequest._body (the cache behind .body) and ._stream (what .read() serves once .body was
    read): after dropping them, neither gives the bytes back."""
    body = b'{"base64": "QUJD"}'
    request = RequestFactory().post("/api/upload", data=body, content_type="application/json")
    assert request.body == body
    assert request._body is request.body, "HttpRequest.body is no longer cached in _body"
    assert isinstance(request._stream, io.BytesIO), "HttpRequest._stream is not a BytesIO after .body"

    compat.drop_request_body(request)

    assert request.body == b"", "HttpRequest.body no longer reads _body"
    assert request.read() == b"", "HttpRequest.read() no longer reads _stream"


def test_raw_connection_is_the_db_api_connection():
    """DatabaseWrapper.connection: the driver's connection, with what we use of it."""
    connection.ensure_connection()
    raw = compat.raw_connection(connection)
    if connection.vendor == "postgresql":
        import psycopg

        assert isinstance(raw, psycopg.Connection)
        assert hasattr(raw, "prepare_threshold") and raw.fileno() > 0
        assert raw.info.transaction_status is not None
    else:
        import sqlite3

        assert isinstance(raw, sqlite3.Connection)


def test_replace_cursor_runs_django_statements_on_our_cursor():
    """CursorWrapper.cursor: the wrapper delegates execute/fetch to it, logging still applies, and
    leaving the block closes it."""
    with CaptureQueriesContext(connection) as queries, connection.cursor() as wrapper:
        ours = compat.raw_connection(connection).cursor()
        compat.replace_cursor(wrapper, ours)
        wrapper.execute("SELECT 40 + 2")  # no parameters: sqlite3's own cursor takes ? not %s
        assert wrapper.fetchone()[0] == 42
        assert wrapper.cursor is ours, "CursorWrapper no longer keeps its DB-API cursor as .cursor"
    assert len(queries.captured_queries) == 1, "a replaced cursor's statements are not logged"
    with pytest.raises(Exception):  # noqa: B017,PT011 (psycopg and sqlite3 raise their own kinds)
        ours.execute("SELECT 1")  # closed with the wrapper


def test_run_as_statement_is_seen_as_one_statement_by_wrappers_and_the_log():
    """execute_wrappers, wrap_database_errors, queries_logged/queries_log: work Django does not see
    is counted by an execute_wrapper, logged once, and its DB-API errors come back as Django's."""
    from django.db import IntegrityError

    seen = []

    def counting(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    def run(sql, params, many, context):
        raw = compat.raw_connection(connection).cursor()
        raw.execute(sql)
        raw.close()

    with connection.cursor() as cursor, connection.execute_wrapper(counting):
        with CaptureQueriesContext(connection) as queries:
            compat.run_as_statement(connection, cursor, "SELECT 1", None, run, logged_as="one -- 1 row")
        assert seen == ["SELECT 1"], "execute_wrappers did not see it"
        assert [q["sql"] for q in queries.captured_queries] == ["one -- 1 row"], "not in the query log"

        def fails(sql, params, many, context):
            raise connection.Database.IntegrityError("taken")

        with pytest.raises(IntegrityError):  # Django's, not the driver's
            compat.run_as_statement(connection, cursor, "x", None, fails, logged_as="x")


def test_db_converters_give_what_the_orm_gives(api, id_types):
    """Field.get_col, DatabaseOperations.get_db_converters and Expression.get_db_converters turn
    the driver's values into the ORM's (JSON, datetimes on SQLite)."""
    create_media(api, "conv", metadata={"a": [1, 2.5, None], "b": "é"}, tags=["t"])
    media = Media.objects.get(pid="conv")
    fields = [Media._meta.get_field(name) for name in ("metadata", "created", "store_status", "size")]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {Media._meta.db_table} WHERE id = %s", [media.pk])
        row = cursor.fetchone()
    converted = []
    for field, value in zip(fields, row, strict=True):
        functions, expression = compat.db_converters(field, connection)
        for function in functions:
            value = function(value, expression, connection)
        converted.append(value)
    assert converted == [media.metadata, media.created, media.store_status, media.size]


def test_django_asks_is_usable_before_a_kept_connections_first_query():
    """With CONN_HEALTH_CHECKS, Django calls connection.is_usable() before the first query after
    close_if_unusable_or_obsolete (the start of each request); mediastore.postgresql_backend
    overrides is_usable and relies on that."""
    wrapper = connections[DEFAULT_DB_ALIAS]  # the object itself, not the proxy
    wrapper.ensure_connection()
    calls: list[bool] = []
    enabled = wrapper.health_check_enabled
    wrapper.is_usable = lambda: calls.append(True) or True
    wrapper.health_check_enabled = True
    try:
        # What close_if_unusable_or_obsolete (run by the request_started signal) does first; not
        # called itself, since inside the test's transaction it would close the connection.
        wrapper.health_check_done = False
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT 1")
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        del wrapper.is_usable
        wrapper.health_check_enabled = enabled
    assert calls == [True], "Django no longer calls is_usable() once before a request's first query"
    reset = inspect.getsource(type(wrapper).close_if_unusable_or_obsolete)
    assert "self.health_check_done = False" in reset, "a new request no longer asks for a health check"
    if wrapper.vendor == "postgresql":
        from mediastore.postgresql_backend.base import DatabaseWrapper

        assert type(wrapper) is DatabaseWrapper


@pytest.mark.django_db(transaction=True)
def test_atomic_on_sqlite_begins_and_ends_through_the_backend_hooks_the_writer_queue_overrides():
    """transaction.atomic on SQLite begins its transaction with _start_transaction_under_autocommit()
    and ends it with _set_autocommit(True), after the commit: mediastore.sqlite_backend takes a
    writer's turn in the first and gives it back in the second."""
    wrapper = connections[DEFAULT_DB_ALIAS]
    if wrapper.vendor != "sqlite":
        pytest.skip("SQLite's hooks")
    from django.db import transaction

    calls: list[object] = []
    begin, set_autocommit = wrapper._start_transaction_under_autocommit, wrapper._set_autocommit
    wrapper._start_transaction_under_autocommit = lambda: calls.append("begin") or begin()
    wrapper._set_autocommit = lambda on: calls.append(("autocommit", on)) or set_autocommit(on)
    try:
        with transaction.atomic():
            Group.objects.create(name="hooked")
            calls.append("write")
    finally:
        del wrapper._start_transaction_under_autocommit, wrapper._set_autocommit
    assert calls == ["begin", "write", ("autocommit", True)], (
        "Django no longer begins and ends a SQLite transaction through these hooks: the writer queue "
        "would not be taken or not given back"
    )
    assert Group.objects.filter(name="hooked").exists(), "the transaction did not commit"


def test_close_after_answer_makes_gunicorn_close_the_connection():
    """gunicorn's Response.force_close(), reached through the bound start_response its workers pass."""
    from gunicorn.http.wsgi import Response
    from gunicorn.workers import gthread, sync

    class Request:
        version = (1, 1)

        def should_close(self):
            return False

    response = Response(Request(), None, None)
    response.response_length = 0
    assert not response.should_close()

    assert compat.close_after_answer(response.start_response) is True
    assert response.should_close(), "gunicorn's Response.force_close() no longer closes the connection"
    for worker in (gthread, sync):
        assert "resp.start_response" in inspect.getsource(worker), (
            f"gunicorn's {worker.__name__} no longer passes Response.start_response to the application"
        )
    assert compat.close_after_answer(lambda status, headers: None) is False


def test_permission_backend_answers_from_the_loaded_permissions(django_user_model):
    """The public replacement of ModelBackend's private _perm_cache: ``get_all_permissions`` of an
    authentication backend (documented) reads what the token's statement loaded, with no query."""
    user = django_user_model.objects.create_user(username="loaded")
    setattr(user, PERMISSIONS_ATTRIBUTE, {"media.view_media"})
    with CaptureQueriesContext(connection) as queries:
        assert user.has_perm("media.view_media")
        assert not user.has_perm("media.delete_media")
    assert queries.captured_queries == []

    plain = django_user_model.objects.get(username="loaded")  # a session's user: ModelBackend as usual
    plain.user_permissions.add(Permission.objects.get(codename="delete_media"))
    plain = django_user_model.objects.get(username="loaded")
    assert plain.has_perm("media.delete_media") and not plain.has_perm("media.view_media")


def test_request_schemas_validate_a_json_object_once():
    """ninja's ``Schema._run_root_validator`` is replaced by ``SchemaValidatedOnce``'s (same name):
    a JSON object is validated once at each level, while ninja's ``Schema`` validates one with
    ``extra="forbid"`` twice (and an ORM object still goes through ``DjangoGetter``)."""
    from ninja import Schema
    from pydantic import ConfigDict, field_validator

    assert "_run_root_validator" in Schema.__pydantic_decorators__.model_validators, (
        "ninja's Schema no longer has the wrap validator _run_root_validator that compat replaces"
    )
    calls = []

    def counted(cls, value):
        calls.append(value)
        return value

    class Inner(compat.SchemaValidatedOnce):
        model_config = ConfigDict(extra="forbid")
        name: str
        _count = field_validator("name")(classmethod(counted))

    class Outer(compat.SchemaValidatedOnce):
        model_config = ConfigDict(extra="forbid")
        inner: Inner

    class NinjaInner(Schema):
        model_config = ConfigDict(extra="forbid")
        name: str
        _count = field_validator("name")(classmethod(counted))

    assert Outer.model_validate({"inner": {"name": "a"}}).inner.name == "a"
    assert calls == ["a"], f"a nested JSON object was validated {len(calls)} times, not once"
    calls.clear()
    NinjaInner.model_validate({"name": "b"})
    assert calls == ["b", "b"], "ninja's Schema no longer validates twice: SchemaValidatedOnce may go"
    calls.clear()

    class Row:
        name = "c"

    assert Inner.model_validate(Row()).name == "c"  # attributes, as ninja reads them


# Private internals that must be reached through mediastore.compat only (a regular expression
# each, matched against the code of every app).
PRIVATE = {
    "QuerySet._raw_delete": r"\._raw_delete\(",
    "ModelBackend's _perm_cache": r"_perm_cache",
    "HttpRequest._body / _stream": r"request\._(body|stream)\b",
    "CursorWrapper.cursor swapped": r"\.cursor\s*=[^=]",
    "DatabaseWrapper.connection": r"connection\.connection\b",
    "Field.set_cached_value": r"\.set_cached_value\(",
    "get_db_converters": r"get_db_converters\(",
    "ninja's Schema._run_root_validator": r"def _run_root_validator\b",
    "gunicorn's force_close": r"force_close\(\)",
    "FileBasedCache internals": r"self\._(dir|createdir)\b",
}


def test_no_private_internal_is_used_outside_compat():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    found = []
    for app in settings.PROJECT_APPS:
        for path in sorted((root / app).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            if relative == "mediastore/compat.py" or "/migrations/" in relative:
                continue
            code = path.read_text()
            for name, pattern in PRIVATE.items():
                for match in re.finditer(pattern, code):
                    line = code.count("\n", 0, match.start()) + 1
                    found.append(f"{relative}:{line}: {name}")
    assert found == [], "use mediastore.compat instead:\n" + "\n".join(found)
