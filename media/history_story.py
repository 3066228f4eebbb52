"""A media's history told as a story, for its admin page: each revision with who, when and how
(API, admin, ingest, import, revert, replica repair, ...), and what changed field by field, nested
metadata keys included. Reads ``media.history.history_entries``, the changes the API lists too.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from media.history import history_entries
from media.models import Media
from stores.models import StoreConfig

# How a revision was made, from the change reason its writer recorded (media.history's rows):
# (reason prefix, label). The writers: content.ingest, importer.plan.IMPORT_REASON,
# media.services.media_revert, content.replication, content.replicas (promote), tus.services and
# this project's admin (ADMIN_REASON). A revision without a reason was made through the API.
ADMIN_REASON = "admin: edited on the media page"
IMPORT_REASON = "imported from the earlier server"
HOW = [
    ("revert to version", "revert"),
    ("ingest: ", "ingest"),
    (IMPORT_REASON, "import"),
    ("repaired from a GOOD replica", "replica repair"),
    ("promote: ", "replica promoted"),
    ("tus upload", "resumable upload"),
    ("admin:", "admin"),
]
# At most this many lines per revision and this many revisions are shown (the History page and
# GET /api/media/{pid}/history have every one).
MAX_LINES, MAX_REVISIONS = 200, 100
JSON_FIELDS = {"metadata", "identifiers"}
MAX_DIFF_DEPTH = 32  # keys deeper than this are compared as one value (bounds the recursion)
BYTE_FIELDS = {"size", "checksum", "content_type", "store_key", "store_status"}


def how(reason: str | None) -> str:
    """The label of the way a revision was made, from its change reason."""
    for prefix, label in HOW:
        if reason and reason.startswith(prefix):
            return label
    return "API" if not reason else "other"


def shown(value: Any) -> str:
    """A field value as text for the history pages: strings as they are, datetimes (a hold, an
    expiry) as ISO 8601 text, JSON for the rest."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    except RecursionError:  # stored before MEDIASTORE_MAX_METADATA_DEPTH existed
        return "(nested too deeply to show)"


def json_diff(old: Any, new: Any, path: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """Key by key, what differs between two JSON values: lines of ``path`` (dotted keys), ``change``
    ("added", "removed", "changed"), ``old`` and ``new`` as text. Objects are compared key by key at
    every depth; anything else (lists included) as a whole value."""
    if isinstance(old, dict) and isinstance(new, dict) and len(path) < MAX_DIFF_DEPTH:
        lines = []
        for key in sorted(set(old) | set(new)):
            here = (*path, key)
            if key not in old:
                lines.append(line(here, "added", None, new[key]))
            elif key not in new:
                lines.append(line(here, "removed", old[key], None))
            elif old[key] != new[key]:
                lines.extend(json_diff(old[key], new[key], here))
        return lines
    if old == new:
        return []
    return [line(path, "changed", old, new)]


def line(path: tuple[str, ...], change: str, old: Any, new: Any) -> dict[str, str]:
    return {"path": ".".join(path) or "(whole value)", "change": change, "old": shown(old), "new": shown(new)}


def field_lines(field: str, old: Any, new: Any, stores: dict[int, str]) -> list[dict[str, str]]:
    """The lines of one changed field (``old`` None for a creation)."""
    if field in JSON_FIELDS:
        return [{"field": field, **item} for item in json_diff(old or {}, new or {})]
    if field == "tags":
        before, after = set(old or []), set(new or [])
        return [
            *(
                {"field": "tags", "path": tag, "change": "added", "old": "—", "new": tag}
                for tag in sorted(after - before)
            ),
            *(
                {"field": "tags", "path": tag, "change": "removed", "old": tag, "new": "—"}
                for tag in sorted(before - after)
            ),
        ]
    if field == "store_config":
        old, new = (stores.get(v, v) if v is not None else None for v in (old, new))
    change = "added" if old in (None, "") else "removed" if new in (None, "") else "changed"
    label = {"size": "bytes (size)", "checksum": "bytes (checksum)"}.get(field, field.replace("_", " "))
    return [{"field": label, "path": "", "change": change, "old": shown(old), "new": shown(new)}]


def media_story(media: Media) -> list[dict[str, Any]]:
    """Newest first, the revisions of ``media`` (at most MAX_REVISIONS): ``version``, ``when``,
    ``user``, ``how``, ``reason``, ``action``, ``lines`` (field, path, change, old, new),
    ``more`` (lines left out) and ``history_id``. Revisions older than an import happened on the
    earlier server: their ``how`` says so."""
    entries = history_entries({media.pk})
    store_ids = {
        c[k] for e in entries for c in e["changes"] if c["field"] == "store_config" for k in ("old", "new")
    }
    stores = {
        s.pk: f"{s.type} {s.bucket} (#{s.pk})" for s in StoreConfig.objects.filter(pk__in=store_ids - {None})
    }
    imported_at = min((e["history_id"] for e in entries if e["reason"] == IMPORT_REASON), default=None)
    story = []
    for entry in entries[:MAX_REVISIONS]:
        lines = [
            item for c in entry["changes"] for item in field_lines(c["field"], c["old"], c["new"], stores)
        ]
        if entry["action"] == "created":  # every field from nothing: only those with a value
            lines = [item for item in lines if item["new"] not in ("—", "", "[]", "{}")]
        label = how(entry["reason"])
        if imported_at is not None and entry["history_id"] < imported_at:
            label = "earlier server"
        story.append(
            {
                **{k: entry[k] for k in ("history_id", "version", "when", "user", "reason", "action")},
                "how": label,
                "lines": lines[:MAX_LINES],
                "more": max(len(lines) - MAX_LINES, 0),
                "bytes_changed": any(c["field"] in BYTE_FIELDS for c in entry["changes"]),
            }
        )
    return story
