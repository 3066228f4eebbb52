"""Path operations on JSON metadata for the bulk metadata endpoints. Pure functions: they return a
new object and never modify their input."""

from __future__ import annotations

import copy
from typing import Any

from mediastore.errors import NotFound, RuleViolation


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
