"""Who may call which API operation: one table from operation to Django model permission.

Every operation of the API is listed here with the model permission it requires (``None``: any
logged-in user; ``PUBLIC``: no token at all; ``ACCOUNT``: any logged-in user managing their own
tokens). The table is checked after the bearer token is accepted (``mediastore.auth``), and an
operation missing from it is refused, so a new endpoint is closed until someone decides who may call
it; a test walks the OpenAPI document and fails for an operation without an entry. Permissions are
Django's own (``app.codename``), granted through groups: ``ROLES`` is what the data migration gives
the groups ``readers``, ``writers`` and ``admins``.

A token also has scopes (``SCOPES``), and may do what both its account's permissions and its scopes
allow. Which permissions a scope allows is derived from this same table (``SCOPE_PERMISSIONS``), so
a new operation gets its scope from the permission it is given here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.http import HttpRequest

PUBLIC = "public"
# Where the permissions loaded with the token are kept on its user, for
# ``mediastore.permission_backend.PermissionBackend`` (an attribute of ours).
PERMISSIONS_ATTRIBUTE = "mediastore_permissions"
# Creating, listing and revoking one's own tokens: any logged-in user, but only with a token of the
# scope ``admin`` (login tokens are), so a token cannot mint one with more rights than itself.
ACCOUNT = "account"

VIEW_MEDIA, ADD_MEDIA, CHANGE_MEDIA, DELETE_MEDIA = (
    "media.view_media",
    "media.add_media",
    "media.change_media",
    "media.delete_media",
)
# Lifecycle: placing/releasing holds and purging the recycle bin are the administrators'.
HOLD_MEDIA, PURGE_MEDIA = "media.hold_media", "media.purge_media"
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

VIEW_RULE, ADD_RULE, DELETE_RULE = (
    "content.view_replicationrule",
    "content.add_replicationrule",
    "content.delete_replicationrule",
)

VIEW_WEBHOOK, ADD_WEBHOOK, CHANGE_WEBHOOK, DELETE_WEBHOOK = (
    "events.view_webhooksubscription",
    "events.add_webhooksubscription",
    "events.change_webhooksubscription",
    "events.delete_webhooksubscription",
)
VIEW_QUOTA, CHANGE_QUOTA = "quotas.view_quota", "quotas.change_quota"

# Probing the stores now (``?probe=true`` of GET /api/stats and /status/) writes to every store:
# administrators only (the group admins has it), with a token of the scope ``admin``.
PROBE_STORES = "stores.change_storeconfig"
# Not a model permission: who may scrape /metrics with a token (mediastore.models.ApiToken.Meta).
VIEW_METRICS = "mediastore.view_metrics"

# (method, OpenAPI path) -> permission. Reading bytes is viewing the media, writing them changing it.
OPERATIONS: dict[tuple[str, str], str | None] = {
    ("POST", "/api/login"): PUBLIC,
    ("GET", "/api/hello"): PUBLIC,
    ("GET", "/api/health"): PUBLIC,
    ("POST", "/api/logout"): None,  # with any token: a scoped token can always revoke itself
    ("POST", "/api/tokens"): ACCOUNT,
    ("GET", "/api/tokens"): ACCOUNT,
    ("DELETE", "/api/tokens/{id}"): ACCOUNT,
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
    ("PATCH", "/api/store/{pk}"): "stores.change_storeconfig",
    ("DELETE", "/api/store/{pk}"): DELETE_STORE,
    # bytes
    ("POST", "/api/upload"): ADD_MEDIA,
    ("POST", "/api/upload/{pid}/complete"): CHANGE_MEDIA,
    ("POST", "/api/upload/{pid}/parts"): ADD_MEDIA,
    ("DELETE", "/api/upload/{pid}"): DELETE_MEDIA,
    ("GET", "/api/download/url/{pid}"): VIEW_MEDIA,
    ("POST", "/api/download/urls"): VIEW_MEDIA,
    ("POST", "/api/download/archive"): VIEW_MEDIA,
    ("GET", "/api/download/archive"): VIEW_MEDIA,
    ("GET", "/api/download/{pid}"): VIEW_MEDIA,
    ("GET", "/api/media/{pid}/content"): VIEW_MEDIA,
    ("PUT", "/api/media/{pid}/content"): CHANGE_MEDIA,
    ("GET", "/api/media/{pid}/verify"): VIEW_MEDIA,
    # replicas: copies of a media's bytes are part of the media
    ("GET", "/api/media/{pid}/replicas"): VIEW_MEDIA,
    ("GET", "/api/media/{pid}/preview"): VIEW_MEDIA,
    ("POST", "/api/media/{pid}/replicas"): CHANGE_MEDIA,
    ("DELETE", "/api/media/{pid}/replicas/{store_pk}"): CHANGE_MEDIA,
    ("POST", "/api/media/{pid}/replicas/{store_pk}/promote"): CHANGE_MEDIA,
    # replication rules: admins manage them
    ("GET", "/api/rules"): VIEW_RULE,
    ("POST", "/api/rules"): ADD_RULE,
    ("DELETE", "/api/rules/{name}"): DELETE_RULE,
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
    # quotas (administrators) and usage (one's own; administrators everyone's, see quotas.api)
    ("GET", "/api/quotas"): VIEW_QUOTA,
    ("PUT", "/api/quotas"): CHANGE_QUOTA,
    ("GET", "/api/usage"): None,
    # lifecycle: holds (administrators), the recycle bin (deleters list and restore, admins purge)
    ("POST", "/api/media/{pid}/hold"): HOLD_MEDIA,
    ("DELETE", "/api/media/{pid}/hold"): HOLD_MEDIA,
    ("GET", "/api/trash"): DELETE_MEDIA,
    ("POST", "/api/trash/restore"): DELETE_MEDIA,
    ("POST", "/api/trash/{pid}/restore"): DELETE_MEDIA,
    ("DELETE", "/api/trash/{pid}"): PURGE_MEDIA,
    # changes feed
    ("GET", "/api/events"): VIEW_MEDIA,
    # webhook subscriptions: admins manage them (they send every change, and hold a secret)
    ("GET", "/api/webhooks"): VIEW_WEBHOOK,
    ("POST", "/api/webhooks"): ADD_WEBHOOK,
    ("GET", "/api/webhooks/{id}"): VIEW_WEBHOOK,
    ("PATCH", "/api/webhooks/{id}"): CHANGE_WEBHOOK,
    ("DELETE", "/api/webhooks/{id}"): DELETE_WEBHOOK,
    ("GET", "/api/webhooks/{id}/deliveries"): VIEW_WEBHOOK,
    ("POST", "/api/webhooks/{id}/test"): CHANGE_WEBHOOK,
    ("POST", "/api/webhooks/{id}/redeliver"): CHANGE_WEBHOOK,
    ("POST", "/api/webhooks/{id}/secret"): CHANGE_WEBHOOK,
    # operators' figures (the status page's, as JSON)
    ("GET", "/api/stats"): VIEW_MEDIA,
    # served outside the NinjaAPI by mediastore.metrics, which checks this entry with the token's scopes
    ("GET", "/metrics"): VIEW_METRICS,
}

_READ = [VIEW_MEDIA, VIEW_STORE, VIEW_S3, VIEW_IDTYPE, VIEW_RULE, "taggit.view_tag"]
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
    ADD_RULE,
    "content.change_replicationrule",
    DELETE_RULE,
    VIEW_WEBHOOK,
    ADD_WEBHOOK,
    CHANGE_WEBHOOK,
    DELETE_WEBHOOK,
    VIEW_QUOTA,
    "quotas.add_quota",
    CHANGE_QUOTA,
    "quotas.delete_quota",
    HOLD_MEDIA,
    PURGE_MEDIA,
    "tus.view_tusupload",
    "tus.delete_tusupload",
]
# What the groups are given when they are created (migration mediastore 0002 holds a frozen copy;
# content 0003 gives them the replication rules' permissions, events 0002 the webhooks', quotas 0002
# the quotas', media 0009 the lifecycle ones, tus 0002 the resumable uploads' in the admin, mediastore
# 0005 the tag list in the admin).
ROLES: dict[str, list[str]] = {"readers": _READ, "writers": _WRITE, "admins": _ADMIN}

READ, WRITE, DELETE, ADMIN = "read", "write", "delete", "admin"
# Narrowest first: a refusal names the first scope that would allow the operation.
SCOPES: tuple[str, ...] = (READ, WRITE, DELETE, ADMIN)


def permission_parts(permission: str) -> tuple[str, str]:
    """``("media", "change")`` for ``media.change_media``: the app and the action of a permission."""
    app_label, codename = permission.split(".", 1)
    return app_label, codename.partition("_")[0]


def derive_scope_permissions() -> dict[str, frozenset[str]]:
    """Each scope's permissions, from those OPERATIONS names: ``read`` every ``view`` permission
    (media, bytes, history, events, stats, stores, S3 configurations, identifier types, metrics);
    ``write`` adding and changing media (their records and bytes); ``delete`` deleting media;
    ``admin`` every permission and ``ACCOUNT`` (managing tokens)."""
    named = {p for p in OPERATIONS.values() if p not in (None, PUBLIC, ACCOUNT)}
    parts = {p: permission_parts(p) for p in named}
    return {
        READ: frozenset(p for p, (_, action) in parts.items() if action == "view"),
        WRITE: frozenset(
            p for p, (app, action) in parts.items() if app == "media" and action in ("add", "change")
        ),
        DELETE: frozenset(p for p, (app, action) in parts.items() if app == "media" and action == "delete"),
        ADMIN: frozenset({*named, ACCOUNT}),
    }


SCOPE_PERMISSIONS: dict[str, frozenset[str]] = derive_scope_permissions()

_CONVERTER = re.compile(r"<(?:[^:>]+:)?([^>]+)>")
_OPENAPI_PATHS: dict[str, str] = {}  # route pattern -> OpenAPI path


def operation_of(request: HttpRequest) -> tuple[str, str]:
    """(method, OpenAPI path) of the operation a request was routed to."""
    route = getattr(request.resolver_match, "route", "") or ""
    path = _OPENAPI_PATHS.get(route)
    if path is None:
        path = _OPENAPI_PATHS[route] = "/" + _CONVERTER.sub(r"{\1}", route)  # as many as there are routes
    return request.method or "", path


def missing_permission(request: HttpRequest, user) -> str | None:
    """The permission ``user`` lacks for this request's operation, or None when allowed.

    An operation not in OPERATIONS is refused (named as such), so nothing is open by omission.
    """
    key = operation_of(request)
    if key not in OPERATIONS:
        return f"an entry for {key[0]} {key[1]} in mediastore/permissions.py (none is defined)"
    needed = OPERATIONS[key]
    if needed in (None, PUBLIC, ACCOUNT):
        return None
    if not user.is_superuser and not hasattr(user, PERMISSIONS_ATTRIBUTE):
        # read by PermissionBackend: one query, not ModelBackend's two
        setattr(user, PERMISSIONS_ATTRIBUTE, load_permissions(user))
    return None if user.has_perm(needed) else needed


def groups_granting(permission: str) -> list[str]:
    """The names of the groups that have ``permission`` (``app.codename``), for a 403 that says
    who can give it (read only when a request is refused)."""
    from django.contrib.auth.models import Group

    app_label, codename = permission.split(".", 1)
    found = Group.objects.filter(
        permissions__content_type__app_label=app_label, permissions__codename=codename
    )
    return list(found.order_by("name").values_list("name", flat=True))


def scopes_allowing(permission: str | None) -> list[str]:
    """The scopes that allow an operation needing ``permission`` (an OPERATIONS value), narrowest
    first; every scope for one any logged-in user may call."""
    if permission in (None, PUBLIC):
        return list(SCOPES)
    return [scope for scope in SCOPES if permission in SCOPE_PERMISSIONS[scope]]


def scope_allows(scopes: Iterable[str], permission: str | None) -> bool:
    """Whether a token of these scopes may do what needs ``permission`` (its account permitting)."""
    return permission in (None, PUBLIC) or any(
        permission in SCOPE_PERMISSIONS.get(scope, ()) for scope in scopes
    )


def missing_scope(request: HttpRequest, scopes: Iterable[str]) -> str | None:
    """The permission of this request's operation that a token of ``scopes`` does not allow, or None.

    Checked after ``missing_permission``, so an operation missing from OPERATIONS never gets here.
    """
    needed = OPERATIONS[operation_of(request)]
    return None if scope_allows(scopes, needed) else needed


def what_needs(permission: str) -> str:
    """How a refusal names what an operation needs (``ACCOUNT`` is no Django permission)."""
    return "managing your own API tokens" if permission == ACCOUNT else f"the permission {permission}"


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
    """Name each operation's permission and token scopes in its Swagger description and document its
    403."""
    forbidden = {
        "description": "Forbidden: the caller's groups lack the permission, or the token lacks the scope, "
        "named in the description.",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"detail": {"type": "string"}},
                    "required": ["detail"],
                },
                "example": {
                    "detail": "permission denied: this operation needs media.change_media; an administrator "
                    "can grant it by adding your account to a group that has it (readers, writers or admins)"
                },
            }
        },
    }
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            needed = OPERATIONS.get((method.upper(), path), "an entry in mediastore/permissions.py")
            if needed == PUBLIC:
                continue
            if needed is None:
                who, scopes = "any logged-in user", "any"
            elif needed == ACCOUNT:
                who, scopes = "any logged-in user, for their own tokens", "`admin` (login tokens have it)"
            else:
                who = f"`{needed}`"
                scopes = " or ".join(f"`{scope}`" for scope in scopes_allowing(needed))
            operation["description"] = (
                f"{operation.get('description', '')}\n\n**Permission:** {who}\n\n**Token scope:** {scopes}"
            ).strip()
            responses = operation.setdefault("responses", {})
            if needed is not None and 403 not in responses and "403" not in responses:
                responses[403] = forbidden  # ninja keys responses by int; a str too would duplicate
    return schema
