"""The error answers of every operation, written into the OpenAPI document.

Routers declare their success answers; the errors an operation can give come from the
cross-cutting layers (token check, permissions, JSON parsing, rules, stores), so they are listed
here in one table and added to the document, each with its body schema, so generated clients and
schemathesis know them, and an example body in that shape (without one Swagger UI showed
`{"detail": [{}]}`). ``tests/deploy/test_schemathesis.py`` checks against a live server that
every answer given is listed, and ``tests/test_api_answers.py`` pins the cases it found.
"""

from __future__ import annotations

TEXT = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
ITEMS = {
    "type": "object",
    "properties": {"detail": {"type": "array", "items": {"type": "object"}}},
    "required": ["detail"],
}
EITHER = {
    "type": "object",
    "properties": {"detail": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]}},
    "required": ["detail"],
}


def text(sentence: str) -> dict:
    return {"detail": sentence}


def items(sentence: str) -> dict:
    return {"detail": [{"error": sentence}]}


# Two shapes share 422 (and 413): a rule's sentence, or pydantic's account of a body that does not fit
# the schema; Swagger UI offers a menu of the two.
RULE_OR_SCHEMA = {
    "examples": {
        "rule": {
            "summary": "A rule refused the input",
            "value": items("bad pid_type: isbn"),
        },
        "schema": {
            "summary": "The body does not fit the schema",
            "value": {
                "detail": [
                    {
                        "type": "string_type",
                        "loc": ["body", "payload", "name"],
                        "msg": "Input should be a valid string",
                    }
                ]
            },
        },
    }
}

# status -> (description, body schema or None for no body, what Swagger UI shows as the example body:
# a media type object's ``example`` or ``examples``). The sentences are ones the server gives.
ANSWERS: dict[int, tuple[str, dict | None, dict]] = {
    400: (
        "The body is not valid JSON (a syntax error, or NaN/Infinity), or a streamed body ended "
        "before its Content-Length or last chunk; nothing changed.",
        TEXT,
        {"example": text("Cannot parse request body")},
    ),
    401: (
        "No valid bearer token (missing, unknown, revoked, or its user inactive): "
        '`{"detail": "Unauthorized"}`; or an expired one: `{"detail": "token expired at <time>"}`.',
        TEXT,
        {"example": text("Unauthorized")},
    ),
    404: ("The named object does not exist.", TEXT, {"example": text("Media '10.1234/demo.9' not found")}),
    408: (
        "The body stopped arriving (no byte for MEDIASTORE_BODY_TIMEOUT_S), or one sent without a valid "
        "token did not arrive whole within MEDIASTORE_ANON_BODY_TIMEOUT_S; nothing was kept.",
        TEXT,
        {
            "example": text(
                "the request body stopped arriving: no byte for 30 seconds (MEDIASTORE_BODY_TIMEOUT_S)"
            )
        },
    ),
    409: (
        "Conflict: duplicate, still referenced, no bytes stored, or changed concurrently.",
        ITEMS,
        {"example": items("still referenced by other objects; delete those first")},
    ),
    410: (
        "Gone: the events after this cursor were pruned; start again without `after`.",
        TEXT,
        {
            "example": text(
                "events after cursor 12 were pruned (kept: from 40); start again without `after` "
                "(and resynchronise from GET /api/media/dump)"
            )
        },
    ),
    411: (
        "Length unknown: no Content-Length and no chunked framing, or a JSON body sent chunked.",
        TEXT,
        {
            "example": text(
                "a JSON body needs a Content-Length; this one was sent chunked (Transfer-Encoding: chunked). "
                "Only PUT /api/media/{pid}/content takes chunked bodies"
            )
        },
    ),
    412: (
        "If-Match / If-None-Match does not hold; nothing changed.",
        TEXT,
        {"example": text("media '10.1234/demo.1' already has bytes with ETag \"b94d27b9…\" (If-None-Match)")},
    ),
    413: (
        "The JSON body (MEDIASTORE_MAX_UPLOAD_MB) or its metadata is too large.",
        EITHER,
        {
            "example": text(
                "request body of 120.0 MB is over the limit of 100 MB; raise MEDIASTORE_MAX_UPLOAD_MB to "
                "accept it, or stream the bytes with PUT /api/media/{pid}/content"
            )
        },
    ),
    414: (
        "URI too long: the request line is over the HTTP server's limit (gunicorn: 4094 bytes), answered by "
        "the server itself (not JSON). Send long searches as POST /api/media/search.",
        None,
        {},
    ),
    415: (
        "The body is not JSON (send Content-Type: application/json).",
        EITHER,
        {
            "example": text(
                "this endpoint reads JSON, not application/x-www-form-urlencoded: send the body with "
                "'Content-Type: application/json' (curl: -H 'Content-Type: application/json', or --json)"
            )
        },
    ),
    422: ("The input breaks a rule or does not match the schema; nothing changed.", ITEMS, RULE_OR_SCHEMA),
    429: (
        "Too many failed logins; retry after the Retry-After header's seconds.",
        TEXT,
        {
            "example": text(
                "too many failed logins for this username or from this address; try again in 42 seconds"
            )
        },
    ),
    502: (
        "The storage backend failed or is unreachable; nothing changed.",
        TEXT,
        {"example": text("S3 bucket 'products' does not exist at https://s3.example.org")},
    ),
    501: (
        "A Transfer-Encoding other than chunked (gzip, deflate); nothing was read or stored.",
        TEXT,
        {
            "example": text(
                "Transfer-Encoding gzip is not supported; send the bytes as they are (with Content-Length "
                "or Transfer-Encoding: chunked). Nothing was stored."
            )
        },
    ),
    503: (
        "A service it needs (the database, or the failed-login counters) is unreachable for now; "
        "retry after the Retry-After header's seconds. Reads were already tried a second time.",
        TEXT,
        {"example": text("the database could not be reached (OperationalError); try again shortly")},
    ),
    423: (
        "The media is on hold (POST /api/media/{pid}/hold): this change is refused until the hold ends "
        "or is released; the answer names the hold and its reason. Nothing changed.",
        ITEMS,
        {
            "example": items(
                "media '10.1234/demo.1' is on hold (until released; reason: litigation 2026-14): it cannot "
                "be deleted; an administrator releases it with DELETE /api/media/10.1234/demo.1/hold"
            )
        },
    ),
    507: (
        "The store is full, or the write would take a quota past its limit (the body then names the "
        "quota, `unit`, `limit`, `used` and `requested`); nothing changed.",
        TEXT,
        {
            "example": text(
                "FilesystemStore 'products' could not write object 'a1b2…': No space left on device; "
                "the server's storage is full"
            )
        },
    ),
}

STORAGE_READ = {502}
STORAGE_WRITE = {502, 507}

# Errors beyond the ones every operation of its kind has (see ``errors_of``).
EXTRA: dict[tuple[str, str], set[int]] = {
    ("POST", "/api/login"): {429, 503},
    ("POST", "/api/identifier"): {409},
    ("PUT", "/api/identifier"): {404, 409},
    ("DELETE", "/api/identifier/{name}"): {409},
    ("POST", "/api/s3cfg"): {409},
    ("PUT", "/api/s3cfg/{pk}"): {409},
    ("DELETE", "/api/s3cfg/{pk}"): {409},
    ("POST", "/api/store"): {404},
    ("DELETE", "/api/store/{pk}"): {409},
    ("POST", "/api/upload"): {409, 423, *STORAGE_WRITE},
    ("POST", "/api/upload/{pid}/complete"): {409, 423, 507, *STORAGE_READ},
    ("POST", "/api/upload/{pid}/parts"): {409, *STORAGE_READ},
    ("DELETE", "/api/upload/{pid}"): {409, 423, *STORAGE_WRITE},
    ("GET", "/api/download/url/{pid}"): {409, *STORAGE_READ},
    ("POST", "/api/download/urls"): set(),
    ("GET", "/api/download/archive"): {413},
    ("GET", "/api/download/{pid}"): {409, *STORAGE_READ},
    ("GET", "/api/media/{pid}/content"): {409, *STORAGE_READ},
    ("PUT", "/api/media/{pid}/content"): {400, 408, 409, 411, 412, 423, 501, *STORAGE_WRITE},
    ("GET", "/api/media/{pid}/verify"): {409, *STORAGE_READ},
    ("GET", "/api/media/{pid}/preview"): {*STORAGE_READ},
    ("POST", "/api/media"): {404, 409, 507},
    ("POST", "/api/media/create"): {404, 409, 507},
    ("POST", "/api/media/{pid}/revert"): {409, 423},
    ("GET", "/api/events"): {410},
    ("POST", "/api/media/{pid}/replicas"): {409},
    ("DELETE", "/api/media/{pid}/replicas/{store_pk}"): {409, 423},
    ("POST", "/api/media/{pid}/replicas/{store_pk}/promote"): {409, 423, 507, *STORAGE_READ},
    ("POST", "/api/rules"): {409},
    ("POST", "/api/webhooks/{id}/redeliver"): {410},
    ("PUT", "/api/quotas"): {404},
    # lifecycle: 423 for a held media (mediastore.errors.Locked)
    ("DELETE", "/api/media/{pid}"): {423},
    ("PATCH", "/api/media/{pid}"): {409, 423, *STORAGE_WRITE},
    ("POST", "/api/trash/{pid}/restore"): {409, 507, *STORAGE_READ},
    ("POST", "/api/trash/restore"): {507},
}


def errors_of(method: str, path: str, operation: dict) -> set[int]:
    """The error statuses of one operation: 401 and 503 (the database) unless public, 404 for a
    named object, 414 and 422 for any input, 400/408/411/413/415 for a JSON body, plus its entry in EXTRA."""
    codes = set(EXTRA.get((method, path), set()))
    if operation.get("security"):
        codes |= {401, 503}
    if "{" in path:
        codes.add(404)
    has_json = "application/json" in operation.get("requestBody", {}).get("content", {})
    if has_json:
        codes |= {400, 408, 411, 413, 415}
    if has_json or operation.get("parameters") or "{" in path:
        codes |= {414, 422}
    return codes


def document_errors(schema: dict) -> dict:
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if (method.upper(), path) in {("GET", "/api/hello"), ("GET", "/api/health")}:
                continue
            responses = operation.setdefault("responses", {})
            for code in sorted(errors_of(method.upper(), path, operation)):
                if code in responses or str(code) in responses:
                    continue
                description, body, example = ANSWERS[code]
                responses[code] = {"description": description}
                if body is not None:
                    responses[code]["content"] = {"application/json": {"schema": body, **example}}
    return schema
