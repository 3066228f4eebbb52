"""Path operations on JSON metadata for the bulk metadata endpoints. Pure functions: they return a
new object and never modify their input."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import orjson
from django.conf import settings

from mediastore.errors import NotFound, PayloadTooLarge, RuleViolation


def check_depth(value: Any, what: str = "metadata") -> None:
    """RuleViolation (422) when objects and lists in ``value`` nest deeper than
    ``MEDIASTORE_MAX_METADATA_DEPTH`` (``value`` itself is level 1) or a number is not finite.

    Iterative, and it stops at the first level too deep, so no nesting, however deep, can exhaust
    the stack here (``copy.deepcopy`` and ``json.dumps`` recurse: check before calling them).
    """
    max_depth = settings.MEDIASTORE_MAX_METADATA_DEPTH
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise RuleViolation(
                    f"{what} is nested more than {max_depth} levels deep (objects and lists); "
                    "the limit is MEDIASTORE_MAX_METADATA_DEPTH"
                )
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
        elif isinstance(item, float) and not math.isfinite(item):
            raise RuleViolation(f"{what} numbers must be finite (no NaN or Infinity)")


def check_limits(metadata: Any) -> None:
    """Raise unless ``metadata`` may be stored: ``check_depth``, then PayloadTooLarge (413) when its
    compact JSON is over ``MEDIASTORE_MAX_METADATA_KB``. Every write of a media's metadata calls it."""
    check_depth(metadata)
    limit_kb = settings.MEDIASTORE_MAX_METADATA_KB
    if _surely_within(metadata, limit_kb * 1024):
        return
    size = len(
        json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")
    )
    if size > limit_kb * 1024:
        raise PayloadTooLarge(
            f"metadata of {size / 1024:.0f} KB (as compact JSON) is over the limit of {limit_kb} KB; "
            "the limit is MEDIASTORE_MAX_METADATA_KB"
        )


# orjson's compact JSON against json.dumps' (``check_limits``' measure): the same text for strings,
# integers and the punctuation; a float may be spelled otherwise (``0.00001`` for ``1e-05``), but
# json.dumps' spelling takes at most 24 characters (``-1.2345678901234567e-308``) where orjson's
# takes at least 3 (``0.0``). So json.dumps' text is at most this many times as long as orjson's.
_JSON_LENGTH_RATIO = 9
# Types orjson would write where json.dumps refuses (or writes otherwise): raised, as json.dumps does.
_PASSTHROUGH = (
    orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS
)


def _surely_within(metadata: Any, limit: int) -> bool:
    """Whether ``metadata``'s compact JSON (as ``check_limits`` measures it) is surely no longer
    than ``limit`` bytes, from orjson's text (a twentieth of json.dumps' time) and
    ``_JSON_LENGTH_RATIO``; False when unsure, or when orjson refuses the value (keys that are not
    strings, integers beyond 64 bits, lone surrogates, times), which json.dumps then measures."""
    try:
        text = orjson.dumps(metadata, option=_PASSTHROUGH)
    except (TypeError, orjson.JSONEncodeError):
        return False
    return len(text) * _JSON_LENGTH_RATIO <= limit


def _walk(root: dict, keys: list[str], create: bool) -> dict:
    """The dict at ``keys[:-1]`` below ``root`` (creating dicts on the way when ``create``)."""
    node = root
    for depth, key in enumerate(keys[:-1]):
        if key not in node:
            if not create:
                raise NotFound("metadata key", ".".join(keys[: depth + 1]))
            node[key] = {}
        node = node[key]
        if not isinstance(node, dict):
            raise RuleViolation(f"metadata at '{'.'.join(keys[: depth + 1])}' is not an object")
    return node


def _need_object(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise RuleViolation(f"{what} must be a JSON object")
    return value


def put(metadata: dict, keys: list[str], data: Any) -> dict:
    """No keys: the whole metadata becomes ``data`` (an object). Keys: set the value at that path."""
    if not keys:
        return copy.deepcopy(_need_object(data, "data replacing the whole metadata"))
    result = copy.deepcopy(metadata)
    _walk(result, keys, create=True)[keys[-1]] = copy.deepcopy(data)
    return result


def merge(metadata: dict, keys: list[str], data: Any) -> dict:
    """Shallow-merge the object ``data`` into the metadata, or into the object at the path."""
    data = _need_object(data, "data to merge")
    result = copy.deepcopy(metadata)
    parent = _walk(result, keys, create=True) if keys else None
    if parent is None:
        result.update(copy.deepcopy(data))
        return result
    target = parent.setdefault(keys[-1], {})
    if not isinstance(target, dict):
        raise RuleViolation(f"metadata at '{'.'.join(keys)}' is not an object")
    target.update(copy.deepcopy(data))
    return result


def delete(metadata: dict, keys: list[str]) -> dict:
    """Remove the value at the path; no keys: clear the metadata to ``{}``."""
    if not keys:
        return {}
    result = copy.deepcopy(metadata)
    parent = _walk(result, keys, create=False)
    if keys[-1] not in parent:
        raise NotFound("metadata key", ".".join(keys))
    del parent[keys[-1]]
    return result
