"""The one NinjaAPI: routers, authentication, and the single mapping from errors to responses."""

from __future__ import annotations

import re

from django.db import IntegrityError, InterfaceError, OperationalError
from django.db.models import ProtectedError, RestrictedError
from django.http import HttpRequest
from ninja import NinjaAPI
from ninja.errors import HttpError

from content.api import router as transfer_router
from content.previews_api import router as previews_router
from content.replicas_api import router as replicas_router
from content.trash_api import router as trash_router
from events.api import router as events_router
from identifiers.api import router as identifiers_router
from media.api import router as media_router
from mediastore.auth import BearerToken
from mediastore.auth import router as auth_router
from mediastore.dbretry import database_unavailable
from mediastore.errors import MediastoreError
from mediastore.examples import document_examples
from mediastore.health import router as health_router
from mediastore.openapi import document_errors
from mediastore.parser import JsonParser
from mediastore.permissions import document as document_permissions
from mediastore.swagger import docs
from quotas.api import router as quotas_router
from status.api import router as status_router
from stores.api import router as stores_router

DESCRIPTION = """
Mediastore keeps data products ("media"): each has a primary ID (`pid`) of an identifier type,
more typed identifiers, JSON metadata, tags, and a store configuration saying where its bytes live.

**Start here:** `POST /api/login` with your username and password, copy the token, press
**Authorize** and paste it. Nothing can be created until identifier types exist
(`POST /api/identifier`). The examples that "Try it out" fills in work in turn on a new server
after the README's first steps (identifier types `doi` and `filename`, store 1 `products`, media
`10.1234/demo.1`).

Big files over links that break: resumable uploads with the tus 1.0 protocol at `/api/tus/`
(plain HTTP endpoints outside this document: docs/resumable-uploads.md describes them), or
S3 multipart uploads straight to a BucketStore (`POST /api/upload` with `multipart`).

Errors: rule violations are 422 `{"detail": [{"error": "..."}]}`, missing objects 404,
conflicts 409, storage failures 502 (507 when the store's disk is full, or when a write would
take a quota past its limit: the body names the quota, its limit and its use), a database that
cannot be reached 503 with `Retry-After` (reads are tried once more first). Every 5xx is JSON
`{"detail": "..."}`, and so is a path under `/api/` that no operation has (404) or a method its
path does not take (405, with `Allow`). Each operation names
the permission it needs; a logged-in user without it gets 403. Permissions come from the groups
`readers` (view everything), `writers` (readers + create, change and delete media and their
bytes) and `admins` (writers + identifier types, S3 configurations, store configurations),
managed in the admin. A token made with `POST /api/tokens` also has scopes (`read`, `write`,
`delete`, `admin`) and may do only what both its account and its scopes allow (each operation
names its scopes; login tokens have `admin`, every right of the account).

JSON bodies need `Content-Type: application/json`; another type, or none, is 415. They also need
a `Content-Length`: one sent chunked is 411. A key repeated in one object, a number beyond a
64-bit float (`1e400`) or nesting deeper than 512 levels is 422. A body (or an object in it) with a
field its schema does not list is 422 naming the field in `loc` and `msg` (search: `unknown search
filter '<name>'`), so a misspelt field never passes for success; the one exception is a store
description's `pk`, which is ignored (see `StoreConfigIn`).
Metadata may nest at most `MEDIASTORE_MAX_METADATA_DEPTH` levels (422) and be at most
`MEDIASTORE_MAX_METADATA_KB` as compact JSON (413). A media carries at most `MEDIASTORE_MAX_TAGS`
distinct tags (1000 by default): a write that would leave it with more is 422 and changes nothing.
"""


# How pydantic names a validator in an error's location: ``function-wrap[_run_root_validator()]``.
VALIDATOR_TAG = re.compile(r"function-(?:wrap|after|before|plain)\[.*\]")


class MediastoreAPI(NinjaAPI):
    """NinjaAPI whose OpenAPI document names the permission and the error answers of every
    operation, and has example requests."""

    def get_openapi_schema(self, **kwargs):
        return document_examples(document_errors(document_permissions(super().get_openapi_schema(**kwargs))))

    def validation_error_from_error_contexts(self, error_contexts):
        """ninja's 422 ``{"detail": [{"type", "loc", "msg"}]}`` for a body that does not fit its
        schema, where an unknown field's ``msg`` names the field (pydantic's own, "Extra inputs are
        not permitted", leaves that to ``loc``, which clients printing ``msg`` do not show) and
        ``loc`` names no validator (pydantic puts ``function-wrap[...]`` into the path of a union
        member such as the store description of ``MediaPatch.store_config``)."""
        error = super().validation_error_from_error_contexts(error_contexts)
        for item in error.errors:
            item["loc"] = tuple(part for part in item["loc"] if not VALIDATOR_TAG.fullmatch(str(part)))
            if item.get("type") == "extra_forbidden":
                item["msg"] = f"Unknown field '{item['loc'][-1]}': this object has no such field"
        return error


api = MediastoreAPI(
    title="Mediastore API",
    version="1.0.0",
    description=DESCRIPTION,
    auth=BearerToken(),
    parser=JsonParser(),
    docs=docs,
    urls_namespace="api",
)

api.add_router("", auth_router)
api.add_router("", identifiers_router)
api.add_router("", stores_router)
api.add_router("", transfer_router)  # before media: its /media/{pid}/content must win over /media/{pid}
api.add_router("", replicas_router)  # before media, likewise for /media/{pid}/replicas
api.add_router("", previews_router)  # and /media/{pid}/preview
api.add_router("", media_router)
api.add_router("", trash_router)
api.add_router("", health_router)
api.add_router("", events_router)
api.add_router("", status_router)
api.add_router("", quotas_router)


@api.exception_handler(MediastoreError)
def _mediastore_error(request: HttpRequest, exc: MediastoreError):
    response = api.create_response(request, exc.body(), status=exc.status_code)
    for name, value in exc.headers.items():
        response[name] = value
    return response


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError):
    # ninja turns any error of the body parser into a 400 "Cannot parse request body"; the parser's
    # own domain errors (415 wrong media type, 422 duplicate keys, infinite numbers, deep nesting)
    # keep their answer.
    if isinstance(exc.__cause__, MediastoreError):
        return _mediastore_error(request, exc.__cause__)
    return api.create_response(request, {"detail": str(exc)}, status=exc.status_code)


@api.exception_handler(ProtectedError)
@api.exception_handler(RestrictedError)
def _still_referenced(request: HttpRequest, exc: ProtectedError | RestrictedError):
    return api.create_response(request, {"detail": [{"error": blockers_message(exc)}]}, status=409)


def blockers_message(exc: ProtectedError | RestrictedError, shown: int = 5) -> str:
    """A protected delete's 409 names what blocks it: how many of each kind, and a few of them."""
    blockers = exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects
    by_kind: dict[str, list[str]] = {}
    for obj in blockers:
        by_kind.setdefault(obj._meta.verbose_name_plural, []).append(str(obj))
    if not by_kind:
        return "still referenced by other objects; delete those first"
    parts = []
    for kind, names in sorted(by_kind.items()):
        listed = ", ".join(sorted(names)[:shown]) + (
            f" and {len(names) - shown} more" if len(names) > shown else ""
        )
        parts.append(f"{len(names)} {kind} ({listed})")
    return f"still used by {'; '.join(parts)}: delete or change those first"


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def _database_unavailable(request: HttpRequest, exc: Exception):
    # The connection broke (or the database refused it): 503, and reads run once more
    # (mediastore.dbretry).
    return database_unavailable(request, exc)


@api.exception_handler(IntegrityError)
def _integrity(request: HttpRequest, exc: IntegrityError):
    # Services check uniqueness first; this answers the race where two requests pass the check at
    # once. Any other integrity error (NOT NULL, a foreign key, a check) is a bug: it stays a 500.
    if not is_unique_violation(exc):
        raise exc
    return api.create_response(
        request, {"detail": [{"error": "conflicts with an existing object (uniqueness)"}]}, status=409
    )


def is_unique_violation(exc: IntegrityError) -> bool:
    """Whether the database refused a duplicate: PostgreSQL's SQLSTATE 23505 (psycopg's
    UniqueViolation, which Django chains as the cause), or SQLite's "UNIQUE constraint failed"."""
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) == "23505":
        return True
    return str(exc).startswith("UNIQUE constraint failed")
