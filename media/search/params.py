"""``GET /api/media``'s query parameters, read into the ``MediaSearch`` of ``POST /api/media/search``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from media.schemas import METADATA_OPS, MediaListQuery, MediaSearch
from mediastore.errors import RuleViolation
from mediastore.parser import loads as strict_json

_METADATA_PARAM = re.compile(rf"(?P<path>.+?):(?P<op>{'|'.join(METADATA_OPS)})(?::(?P<value>.*))?", re.DOTALL)


def _metadata_param(text: str) -> dict[str, Any]:
    """``a.b:gte:5`` -> a condition; the value is JSON when it parses, else text (always text for
    ``wildcard``); no value: ``exists`` means true, other ops compare with null."""
    match = _METADATA_PARAM.fullmatch(text)
    if match is None:
        ops = ", ".join(METADATA_OPS)
        raise RuleViolation(f"query parameter 'metadata': {text!r} is not 'path:op[:value]' (op: {ops})")
    value: Any = match["value"]
    if value is not None and match["op"] != "wildcard":
        try:
            value = strict_json(value)  # 1e400, duplicate keys, deep nesting: 422
        except ValueError:
            pass
    return {"path": match["path"], "op": match["op"], "value": value}


def _identifiers_param(items: list[str]) -> dict[str, str]:
    identifiers = {}
    for item in items:
        type_name, sep, pattern = item.partition("=")
        if not sep:
            raise RuleViolation(f"query parameter 'identifiers': {item!r} is not 'type=wildcard'")
        identifiers[type_name] = pattern
    return identifiers


def filters_from_query(
    query: MediaListQuery, given: Iterable[str], *, extra: Iterable[str] = ()
) -> MediaSearch:
    """The ``MediaSearch`` of ``GET /api/media``'s parameters; unknown parameter names are a 422.
    ``extra``: the names of further parameters of ``query``'s own (not filters)."""
    extra = set(extra)
    known = [*MediaListQuery.model_fields, *sorted(extra)]
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise RuleViolation(f"unknown query parameter '{unknown[0]}'; known: {', '.join(known)}")
    fields = query.model_dump(exclude={"metadata", "identifiers", "cursor", *extra}, exclude_defaults=True)
    return MediaSearch.model_validate(
        {
            **fields,
            "metadata": [_metadata_param(text) for text in query.metadata],
            "identifiers": _identifiers_param(query.identifiers),
        }
    )
