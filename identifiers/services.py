"""Writes of identifier types."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import transaction

from identifiers.models import IdentifierType
from identifiers.rules import check_name, compile_pattern
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
    id_type = IdentifierType(name=name, pattern=pattern)
    id_type._history_user = user
    id_type.save(force_insert=True)
    return id_type


@transaction.atomic
def identifier_type_update(*, name: str, pattern: str, user: User | None) -> None:
    """Change the pattern of a type. Applies to writes from now on; stored values are not re-checked."""
    compile_pattern(pattern)
    id_type = IdentifierType.objects.select_for_update().filter(pk=name).first()
    if id_type is None:
        raise NotFound("IdentifierType", name)
    id_type.pattern = pattern
    id_type._history_user = user
    id_type.save()


@transaction.atomic
def identifier_type_delete(*, name: str, user: User | None) -> None:
    """Delete a type unless a media uses it as pid_type or as an identifier key (Conflict)."""
    from media.models import Media

    id_type = identifier_type_get(name)
    if Media.objects.filter(pid_type_id=name).exists():
        raise Conflict(f"identifier type '{name}' is the pid_type of existing media")
    if Media.objects.filter(identifiers__has_key=name).exists():
        raise Conflict(f"identifier type '{name}' is used as an identifier key of existing media")
    id_type._history_user = user
    id_type.delete()
