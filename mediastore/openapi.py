"""The error answers of every operation, written into the OpenAPI document.

Routers declare their success answers; the errors an operation can give come from the
cross-cutting layers (token check, permissions, JSON parsing, rules, stores), so they are listed
here in one table and added to the document, each with its body schema, so generated clients and
schemathesis know them. ``tests/deploy/test_schemathesis.py`` checks against a live server that
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

# status -> (description, body schema or None for no body)
ANSWERS: dict[int, tuple[str, dict | None]] = {
    400: (
        "The body is not valid JSON (a syntax error, or NaN/Infinity), or a streamed body ended "
        "before its Content-Length or last chunk; nothing changed.",
        TEXT,
    ),
    401: (
        "No valid bearer token (missing, unknown, revoked, or its user inactive): "
        '`{"detail": "Unauthorized"}`; or an expired one: `{"detail": "token expired at <time>"}`.',
        TEXT,
    ),
    404: ("The named object does not exist.", TEXT),
    408: (
        "The body stopped arriving (no byte for MEDIASTORE_BODY_TIMEOUT_S), or one sent without a valid "
        "token did not arrive whole within MEDIASTORE_ANON_BODY_TIMEOUT_S; nothing was kept.",
        TEXT,
    ),
    409: ("Conflict: duplicate, still referenced, no bytes stored, or changed concurrently.", ITEMS),
    410: ("Gone: the events after this cursor were pruned; start again without `after`.", TEXT),
    411: (
        "Length unknown: no Content-Length and no chunked framing, or a JSON body sent chunked.",
        TEXT,
    ),
    412: ("If-Match / If-None-Match does not hold; nothing changed.", TEXT),
    413: ("The JSON body (MEDIASTORE_MAX_UPLOAD_MB) or its metadata is too large.", EITHER),
    415: ("The body is not JSON (send Content-Type: application/json).", EITHER),
    422: ("The input breaks a rule or does not match the schema; nothing changed.", ITEMS),
    429: ("Too many failed logins; retry after the Retry-After header's seconds.", TEXT),
    502: ("The storage backend failed or is unreachable; nothing changed.", TEXT),
    501: ("A Transfer-Encoding other than chunked (gzip, deflate); nothing was read or stored.", TEXT),
    503: (
        "A service it needs (the database, or the failed-login counters) is unreachable for now; "
        "retry after the Retry-After header's seconds. Reads were already tried a second time.",
        TEXT,
    ),
    507: ("The store is full; nothing changed.", TEXT),
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
    ("POST", "/api/upload"): {409, *STORAGE_WRITE},
    ("POST", "/api/upload/{pid}/complete"): {409, *STORAGE_READ},
    ("GET", "/api/download/url/{pid}"): {409, *STORAGE_READ},
    ("POST", "/api/download/urls"): set(),
    ("GET", "/api/download/{pid}"): {409, *STORAGE_READ},
    ("GET", "/api/media/{pid}/content"): {409, *STORAGE_READ},
    ("PUT", "/api/media/{pid}/content"): {400, 408, 409, 411, 412, 501, *STORAGE_WRITE},
    ("GET", "/api/media/{pid}/verify"): {409, *STORAGE_READ},
    ("POST", "/api/media"): {404, 409},
    ("POST", "/api/media/create"): {404, 409},
    ("PATCH", "/api/media/{pid}"): {409, *STORAGE_WRITE},
    ("POST", "/api/media/{pid}/revert"): {409},
    ("GET", "/api/events"): {410},
}


def errors_of(method: str, path: str, operation: dict) -> set[int]:
    """The error statuses of one operation: 401 and 503 (the database) unless public, 404 for a
    named object, 422 for any input, 400/408/411/413/415 for a JSON body, plus its entry in EXTRA."""
    codes = set(EXTRA.get((method, path), set()))
    if operation.get("security"):
        codes |= {401, 503}
    if "{" in path:
        codes.add(404)
    has_json = "application/json" in operation.get("requestBody", {}).get("content", {})
    if has_json:
        codes |= {400, 408, 411, 413, 415}
    if has_json or operation.get("parameters") or "{" in path:
        codes.add(422)
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
                description, body = ANSWERS[code]
                responses[code] = {"description": description}
                if body is not None:
                    responses[code]["content"] = {"application/json": {"schema": body}}
    return schema
