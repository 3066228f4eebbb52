"""The audit history of a media, as a list of changes with old and new values."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.db.models import Model
from simple_history.utils import get_change_reason_from_object

from media import copyrows
from media.copyrows import insert
from media.models import Media
from media.pids import pid_forms
from mediastore.errors import NotFound

# (name shown to users, attribute of the historical row)
TRACKED_FIELDS = [
    ("pid", "pid"),
    ("pid_type", "pid_type_id"),
    ("store_config", "store_config_id"),
    ("store_key", "store_key"),
    ("store_status", "store_status"),
    ("identifiers", "identifiers"),
    ("metadata", "metadata"),
    ("tags", "tag_list"),
    ("size", "size"),
    ("checksum", "checksum"),
    ("content_type", "content_type"),
    ("expires_at", "expires_at"),
    ("hold_since", "hold_since"),
    ("hold_until", "hold_until"),
    ("hold_reason", "hold_reason"),
    ("hold_freeze", "hold_freeze"),
]
ACTIONS = {"+": "created", "~": "changed", "-": "deleted"}


def history_row(media: Media, **history):
    """An unsaved history row of ``media`` as it is now: the fields its history keeps (not those
    excluded from it, such as the fixity results), with ``history`` (``history_date``,
    ``history_type``, ... or a field to record otherwise) on top. For writers that insert history
    rows in bulk instead of through simple-history's signals."""
    historical, kept = history_model()
    fields = {name: getattr(media, name) for name in kept}
    return historical(**{**fields, **history})


@cache
def history_model() -> tuple[type[Model], tuple[str, ...]]:
    """Media's history model and the attributes of Media its rows keep, looked up once: every
    ``Media.history`` builds a new manager class (simple-history), which ``history_row`` would
    otherwise pay per row."""
    historical = Media.history.model
    kept = {f.attname for f in historical._meta.fields}
    return historical, tuple(f.attname for f in Media._meta.fields if f.attname in kept)


class CreatedRow:
    """The values of the "created" history row of a media, for a COPY (``media.copyrows.insert``
    reads the row's fields as attributes): the media's own, copied from its instance dictionary
    when the row is made (plain attribute reads, not a Python ``__getattr__`` call per field;
    anything not there is read through to the media), and the history's."""

    def __init__(self, media: Media, date, user_id, reason: str) -> None:
        self.__dict__.update(media.__dict__)
        self.media = media
        self.history_date = date
        self.history_user_id = user_id
        self.history_change_reason = reason
        self.history_type = "+"

    def __getattr__(self, name: str):
        return getattr(self.media, name)


def insert_created(objs: list[Media], *, user, date, reason: str) -> None:
    """The "created" history rows of new media, as simple-history's ``bulk_history_create(objs,
    default_user=user, default_date=date, default_change_reason=reason)`` makes them (an object's
    own ``_history_user``, ``_history_date`` and ``_change_reason`` first), inserted in one
    statement (``media.copyrows``); nothing when ``SIMPLE_HISTORY_ENABLED`` is off. With COPY the
    rows are never built as model instances (``CreatedRow``: the values alone)."""
    if not getattr(settings, "SIMPLE_HISTORY_ENABLED", True):
        return
    historical, _kept = history_model()
    fields = [
        (
            getattr(obj, "_history_date", date),
            getattr(obj, "_history_user", user or historical.get_default_history_user(obj)),
            get_change_reason_from_object(obj) or reason,
        )
        for obj in objs
    ]
    if copyrows.copy_enabled():  # looked up here: tests patch it off in copyrows
        rows = [
            CreatedRow(obj, when, getattr(who, "pk", None), why)
            for obj, (when, who, why) in zip(objs, fields, strict=True)
        ]
        insert(historical, rows, with_pk=False)
        return
    instances = [
        history_row(obj, history_date=when, history_user=who, history_change_reason=why, history_type="+")
        for obj, (when, who, why) in zip(objs, fields, strict=True)
    ]
    insert(historical, instances)


def media_history(pid: str) -> list[dict]:
    """Newest first, every recorded change of the media that has, or had, this pid.

    Looked up through the history table, so a deleted media's history stays readable and a renamed
    media's history includes the time before the rename. Two queries whatever the length.
    """
    for form in pid_forms(pid):  # as given first, then its other Unicode forms
        ids = set(Media.history.model.objects.filter(pid=form).values_list("id", flat=True))
        if ids:
            return history_entries(ids)
    raise NotFound("Media", pid)


def history_entries(media_ids: set[int]) -> list[dict]:
    """Newest first, every history row of these media (by pk) with the fields each changed, old and
    new (all tracked fields, old None, for a creation). One query; the API and the admin both show
    this."""
    historical = Media.history.model
    rows = historical.objects.filter(id__in=media_ids).select_related("history_user").order_by("history_id")
    previous: dict[int, object] = {}
    entries = []
    for row in rows:
        before = previous.get(row.id)
        changes = []
        if row.history_type != "-":
            for name, attr in TRACKED_FIELDS:
                new = getattr(row, attr)
                old = getattr(before, attr) if before is not None else None
                if before is None or old != new:
                    changes.append({"field": name, "old": old, "new": new})
        entries.append(
            {
                "history_id": row.history_id,
                "when": row.history_date,
                "user": row.history_user.get_username() if row.history_user else None,
                "action": ACTIONS[row.history_type],
                "pid": row.pid,
                "version": str(row.version),
                "mark": row.mark,
                "reason": row.history_change_reason or None,
                "changes": changes,
            }
        )
        previous[row.id] = row
    entries.reverse()
    return entries
