"""Who may call which API operation: one table from operation to Django model permission.

Every operation of the API is listed here with the model permission it requires (``None``: any
logged-in user; ``PUBLIC``: no token at all). The table is checked after the bearer token is
accepted (``mediastore.auth``), and an operation missing from it is refused, so a new endpoint is
closed until someone decides who may call it; a test walks the OpenAPI document and fails for an
operation without an entry. Permissions are Django's own (``app.codename``), granted through groups:
``ROLES`` is what the data migration gives the groups ``readers``, ``writers`` and ``admins``.
"""

from __future__ import annotations

import re

from django.http import HttpRequest

PUBLIC = "public"

VIEW_MEDIA, ADD_MEDIA, CHANGE_MEDIA, DELETE_MEDIA = (
    "media.view_media",
    "media.add_media",
    "media.change_media",
    "media.delete_media",
)
VIEW_STORE, ADD_STORE, DELETE_STORE = (
    "stores.view_storeconfig",
    "stores.add_storeconfig",
    "stores.delete_storeconfig",
)
VIEW_S3, ADD_S3, CHANGE_S3, DELETE_S3 = (
    "stores.view_s3config",
    "stores.add_s3config",
    "stores.change_s3config",
    "stores.delete_s3config",
)
VIEW_IDTYPE, ADD_IDTYPE, CHANGE_IDTYPE, DELETE_IDTYPE = (
    "identifiers.view_identifiertype",
    "identifiers.add_identifiertype",
    "identifiers.change_identifiertype",
    "identifiers.delete_identifiertype",
)

# (method, OpenAPI path) -> permission. Reading bytes is viewing the media, writing them changing it.
OPERATIONS: dict[tuple[str, str], str | None] = {
    ("POST", "/api/login"): PUBLIC,
    ("GET", "/api/hello"): PUBLIC,
    ("GET", "/api/health"): PUBLIC,
    ("POST", "/api/logout"): None,
    # identifier types
    ("GET", "/api/identifier/list"): VIEW_IDTYPE,
    ("GET", "/api/identifier/{name}"): VIEW_IDTYPE,
    ("POST", "/api/identifier"): ADD_IDTYPE,
    ("PUT", "/api/identifier"): CHANGE_IDTYPE,
    ("DELETE", "/api/identifier/{name}"): DELETE_IDTYPE,
    # S3 configurations (never with secrets)
    ("GET", "/api/s3cfgs"): VIEW_S3,
    ("GET", "/api/s3cfg/{pk}"): VIEW_S3,
    ("POST", "/api/s3cfg"): ADD_S3,
    ("PUT", "/api/s3cfg/{pk}"): CHANGE_S3,
    ("DELETE", "/api/s3cfg/{pk}"): DELETE_S3,
    # store configurations
    ("GET", "/api/stores"): VIEW_STORE,
    ("GET", "/api/store/{pk}"): VIEW_STORE,
    ("POST", "/api/store"): ADD_STORE,
    ("DELETE", "/api/store/{pk}"): DELETE_STORE,
    # bytes
    ("POST", "/api/upload"): ADD_MEDIA,
    ("POST", "/api/upload/{pid}/complete"): CHANGE_MEDIA,
    ("GET", "/api/download/url/{pid}"): VIEW_MEDIA,
    ("POST", "/api/download/urls"): VIEW_MEDIA,
    ("GET", "/api/download/{pid}"): VIEW_MEDIA,
    ("GET", "/api/media/{pid}/content"): VIEW_MEDIA,
    ("PUT", "/api/media/{pid}/content"): CHANGE_MEDIA,
    ("GET", "/api/media/{pid}/verify"): VIEW_MEDIA,
    # media records
    ("POST", "/api/media"): ADD_MEDIA,
    ("POST", "/api/media/create"): ADD_MEDIA,
    ("GET", "/api/media"): VIEW_MEDIA,
    ("POST", "/api/media/read"): VIEW_MEDIA,
    ("GET", "/api/media/dump"): VIEW_MEDIA,
    ("POST", "/api/media/search"): VIEW_MEDIA,
    ("GET", "/api/media/{pid}"): VIEW_MEDIA,
    ("GET", "/api/media/{pid}/history"): VIEW_MEDIA,
    ("PATCH", "/api/media/{pid}"): CHANGE_MEDIA,
    ("PATCH", "/api/media/update"): CHANGE_MEDIA,
    ("PATCH", "/api/media/update/tags"): CHANGE_MEDIA,
    ("PUT", "/api/media/update/tags"): CHANGE_MEDIA,
    ("PUT", "/api/media/update/storekeys"): CHANGE_MEDIA,
    ("PUT", "/api/media/update/identifiers"): CHANGE_MEDIA,
    ("PUT", "/api/media/update/metadata"): CHANGE_MEDIA,
    ("PATCH", "/api/media/update/metadata"): CHANGE_MEDIA,
    ("DELETE", "/api/media/update/metadata"): CHANGE_MEDIA,
    ("POST", "/api/media/{pid}/revert"): CHANGE_MEDIA,
    ("DELETE", "/api/media/{pid}"): DELETE_MEDIA,
    ("POST", "/api/media/delete"): DELETE_MEDIA,
    # changes feed
    ("GET", "/api/events"): VIEW_MEDIA,
    # operators' figures (the status page's, as JSON)
    ("GET", "/api/stats"): VIEW_MEDIA,
}

_READ = [VIEW_MEDIA, VIEW_STORE, VIEW_S3, VIEW_IDTYPE]
_WRITE = [*_READ, ADD_MEDIA, CHANGE_MEDIA, DELETE_MEDIA, ADD_STORE]
_ADMIN = [
    *_WRITE,
    "stores.change_storeconfig",
    DELETE_STORE,
    ADD_S3,
    CHANGE_S3,
    DELETE_S3,
    ADD_IDTYPE,
    CHANGE_IDTYPE,
    DELETE_IDTYPE,
]
# What the groups are given when they are created (migration mediastore 0002 holds a frozen copy).
ROLES: dict[str, list[str]] = {"readers": _READ, "writers": _WRITE, "admins": _ADMIN}

_CONVERTER = re.compile(r"<(?:[^:>]+:)?([^>]+)>")


def operation_of(request: HttpRequest) -> tuple[str, str]:
    """(method, OpenAPI path) of the operation a request was routed to."""
    route = getattr(request.resolver_match, "route", "") or ""
    return request.method or "", "/" + _CONVERTER.sub(r"{\1}", route)


def missing_permission(request: HttpRequest, user) -> str | None:
    """The permission ``user`` lacks for this request's operation, or None when allowed.

    An operation not in OPERATIONS is refused (named as such), so nothing is open by omission.
    """
    key = operation_of(request)
    if key not in OPERATIONS:
        return f"an entry for {key[0]} {key[1]} in mediastore/permissions.py (none is defined)"
    needed = OPERATIONS[key]
    if needed in (None, PUBLIC):
        return None
    if not user.is_superuser and not hasattr(user, "_perm_cache"):
        user._perm_cache = load_permissions(user)  # what ModelBackend caches, in one query not two
    return None if user.has_perm(needed) else needed


def permissions_column(vendor: str, user_alias: str = "t1") -> str:
    """SQL for one column: the user's ``app_label.codename`` permissions (direct or through a
    group) joined by commas, for the user row aliased ``user_alias``. The bearer-token lookup
    selects it with the token, so a request of a non-superuser costs one statement for both
    (docs/performance.md); codenames are identifiers and hold no commas."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission
    from django.contrib.contenttypes.models import ContentType

    q = connection_quote()
    user_model = get_user_model()
    direct = user_model._meta.get_field("user_permissions")
    groups = user_model._meta.get_field("groups")
    group_perms = Group._meta.get_field("permissions")
    label = f"ct.{q('app_label')} || '.' || p.{q('codename')}"
    aggregate = f"string_agg({label}, ',')" if vendor == "postgresql" else f"group_concat({label}, ',')"
    user_pk = f"{user_alias}.{q(user_model._meta.pk.column)}"
    return (
        f"(SELECT {aggregate} FROM {q(Permission._meta.db_table)} p "
        f"JOIN {q(ContentType._meta.db_table)} ct ON ct.{q('id')} = p.{q('content_type_id')} "
        f"WHERE p.{q('id')} IN ("
        f"SELECT {q(direct.m2m_reverse_name())} FROM {q(direct.m2m_db_table())} "
        f"WHERE {q(direct.m2m_column_name())} = {user_pk} "
        f"UNION SELECT gp.{q(group_perms.m2m_reverse_name())} FROM {q(group_perms.m2m_db_table())} gp "
        f"JOIN {q(groups.m2m_db_table())} ug ON ug.{q(groups.m2m_reverse_name())} = "
        f"gp.{q(group_perms.m2m_column_name())} "
        f"WHERE ug.{q(groups.m2m_column_name())} = {user_pk}))"
    )


def connection_quote():
    from django.db import connection

    return connection.ops.quote_name


def load_permissions(user) -> set[str]:
    """``app_label.codename`` of every permission the user has directly or through a group."""
    from django.db import connection

    sql = _PERMISSIONS_SQL.get(connection.vendor)
    if sql is None:
        sql = _PERMISSIONS_SQL[connection.vendor] = _permissions_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, [user.pk, user.pk])
        return {f"{app_label}.{codename}" for app_label, codename in cursor.fetchall()}


_PERMISSIONS_SQL: dict[str, str] = {}


def _permissions_sql() -> str:
    """``Permission.objects.filter(Q(user=user) | Q(group__user=user))`` as app_label, codename,
    compiled by the ORM once per process: it runs on every request of a non-superuser, and
    compiling it each time cost more than running it (docs/performance.md)."""
    from django.contrib.auth.models import Permission
    from django.db.models import Q

    marker = -987654321  # any value; the compiled parameters are replaced at run time
    query = (
        Permission.objects.filter(Q(user=marker) | Q(group__user=marker))
        .values_list("content_type__app_label", "codename")
        .distinct()
        .order_by()
        .query
    )
    sql, params = query.sql_with_params()
    assert list(params) == [marker, marker], params
    return sql


def document(schema: dict) -> dict:
    """Name each operation's permission in its Swagger description and document its 403."""
    forbidden = {
        "description": "Forbidden: the caller's groups lack the permission named in the description.",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"detail": {"type": "string"}},
                    "required": ["detail"],
                }
            }
        },
    }
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            needed = OPERATIONS.get((method.upper(), path), "an entry in mediastore/permissions.py")
            if needed == PUBLIC:
                continue
            who = "any logged-in user" if needed is None else f"`{needed}`"
            operation["description"] = f"{operation.get('description', '')}\n\n**Permission:** {who}".strip()
            responses = operation.setdefault("responses", {})
            if needed is not None and 403 not in responses and "403" not in responses:
                responses[403] = forbidden  # ninja keys responses by int; a str too would duplicate
    return schema
