"""Writes of identifier types."""

from __future__ import annotations

from django.db import transaction

from identifiers.models import IdentifierType
from identifiers.rules import check_name, compile_pattern
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


@transaction.atomic
def identifier_type_update(*, name: str, pattern: str) -> None:
    """Change the pattern of a type. Applies to writes from now on; stored values are not re-checked."""
    compile_pattern(pattern)
    if not IdentifierType.objects.filter(pk=name).update(pattern=pattern):
        raise NotFound("IdentifierType", name)


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
