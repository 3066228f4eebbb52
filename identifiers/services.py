"""Writes of identifier types."""

from __future__ import annotations

import json

from django.db import transaction

from identifiers.models import IdentifierType
from identifiers.rules import check_name, compile_pattern, matches
from mediastore.errors import Conflict, NotFound


def identifier_type_get(name: str) -> IdentifierType:
    try:
        return IdentifierType.objects.get(pk=name)
    except IdentifierType.DoesNotExist:
        raise NotFound("IdentifierType", name) from None


@transaction.atomic
def identifier_type_create(*, name: str, pattern: str) -> IdentifierType:
    """Create a type; the same name and pattern again is a no-op, another pattern a Conflict."""
    check_name(name)
    compile_pattern(pattern)
    existing = IdentifierType.objects.select_for_update().filter(pk=name).first()
    if existing is not None:
        if existing.pattern != pattern:
            raise Conflict(
                f"identifier type '{name}' exists with another pattern ({existing.pattern!r}); "
                "use PUT /api/identifier to change it"
            )
        return existing
    return IdentifierType.objects.create(name=name, pattern=pattern)


def stored_mismatches(
    name: str, pattern: str, *, batch: int = 2000, examples: int = 5
) -> tuple[int, list[dict]]:
    """How many stored values of type ``name`` do not fully match ``pattern``, and the first few.

    Looks at the pids of media whose pid_type is ``name`` and at the values ``identifiers[name]``,
    reading the table in batches of ``batch`` rows by pk (memory stays bounded whatever its size);
    RE2 decides each value, in time linear in its length. Examples are
    ``{"pid": <media pid>, "field": "pid" | "identifiers", "value": <the value>}``.
    """
    from django.db.models import F
    from django.db.models.fields.json import KeyTextTransform

    from media.models import Media

    count, found = 0, []
    sources = [
        ("pid", Media.objects.filter(pid_type_id=name).values_list("pk", "pid", F("pid"))),
        (
            "identifiers",
            Media.objects.filter(identifiers__has_key=name)
            .annotate(identifier_value=KeyTextTransform(name, "identifiers"))
            .values_list("pk", "pid", "identifier_value"),
        ),
    ]
    for field, rows in sources:
        last = 0
        while True:
            chunk = list(rows.filter(pk__gt=last).order_by("pk")[:batch])
            for _, pid, value in chunk:
                value = value if isinstance(value, str) else json.dumps(value)
                if not matches(pattern, value):
                    count += 1
                    if len(found) < examples:
                        found.append({"pid": pid, "field": field, "value": value})
            if len(chunk) < batch:
                break
            last = chunk[-1][0]
    return count, found


@transaction.atomic
def identifier_type_update(*, name: str, pattern: str, force: bool = False) -> None:
    """Change the pattern of a type.

    Unless ``force``, the values already stored under this type (pids of media with this pid_type,
    identifier values under this key) must all fully match the new pattern, else Conflict with
    their ``count`` and a few ``examples``. With ``force`` the change applies anyway; those values
    stay as they are until they are next written.
    """
    compile_pattern(pattern)
    itype = IdentifierType.objects.select_for_update().filter(pk=name).first()
    if itype is None:
        raise NotFound("IdentifierType", name)
    if itype.pattern == pattern:
        return
    if pattern and not force:
        count, examples = stored_mismatches(name, pattern)
        if count:
            shown = ", ".join(f"{e['field']} {e['value']!r} of media {e['pid']!r}" for e in examples)
            raise Conflict(
                f"{count} stored value(s) of identifier type '{name}' would not match the new pattern "
                f"{pattern!r}, e.g. {shown}; change them first, or pass ?force=true to change the "
                "pattern anyway",
                count=count,
                examples=examples,
            )
    itype.pattern = pattern
    itype.save(update_fields=["pattern"])


@transaction.atomic
def identifier_type_delete(*, name: str) -> None:
    """Delete a type unless a media uses it as pid_type or as an identifier key (Conflict)."""
    from media.models import Media

    identifier_type_get(name)
    if Media.objects.filter(pid_type_id=name).exists():
        raise Conflict(f"identifier type '{name}' is the pid_type of existing media")
    if Media.objects.filter(identifiers__has_key=name).exists():
        raise Conflict(f"identifier type '{name}' is used as an identifier key of existing media")
    IdentifierType.objects.filter(pk=name).delete()
