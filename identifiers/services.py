"""Writes of identifier types."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import transaction

from identifiers import usage
from identifiers.models import IdentifierType
from identifiers.rules import check_name, compile_pattern, matches
from mediastore.errors import Conflict, NotFound

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def identifier_type_get(name: str) -> IdentifierType:
    try:
        return IdentifierType.objects.get(pk=name)
    except IdentifierType.DoesNotExist:
        raise NotFound("IdentifierType", name) from None


@transaction.atomic
def identifier_type_create(*, name: str, pattern: str, user: User | None) -> IdentifierType:
    """Create a type; the same name and pattern again is a no-op, another pattern a Conflict.

    ``user`` is recorded as the author in the audit history (as in every write below)."""
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
    itype = IdentifierType(name=name, pattern=pattern)
    itype._history_user = user
    itype.save(force_insert=True)
    return itype


def stored_mismatches(
    name: str, pattern: str, *, batch: int = 2000, examples: int = 5
) -> tuple[int, list[dict]]:
    """How many stored values of type ``name`` do not fully match ``pattern``, and the first few.

    The values come from the apps that store them (``identifiers.usage``: media's pids of that
    pid_type and values ``identifiers[name]``), read in batches of ``batch`` rows so memory stays
    bounded whatever the table's size; RE2 decides each value, in time linear in its length.
    Examples are ``{"pid": <media pid>, "field": "pid" | "identifiers", "value": <the value>}``.
    """
    count, found = 0, []
    for pid, field, value in usage.stored_values(name, batch=batch):
        if not matches(pattern, value):
            count += 1
            if len(found) < examples:
                found.append({"pid": pid, "field": field, "value": value})
    return count, found


@transaction.atomic
def identifier_type_update(*, name: str, pattern: str, force: bool = False, user: User | None) -> None:
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
    itype._history_user = user
    itype.save(update_fields=["pattern"])


@transaction.atomic
def identifier_type_delete(*, name: str, user: User | None) -> None:
    """Delete a type unless a media uses it as pid_type or as an identifier key (Conflict)."""
    itype = identifier_type_get(name)
    reason = usage.refusal_to_delete(name)
    if reason:
        raise Conflict(reason)
    itype._history_user = user
    itype.delete()
