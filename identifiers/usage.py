"""Where identifier types are used, as reported by the apps that use them.

``identifiers`` stands below ``media`` and cannot look at media rows itself; instead each app that
stores identifier values registers a ``TypeUsage`` when it starts (``media`` does so in its
``AppConfig.ready``). The rules here ask every registered usage.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class TypeUsage(Protocol):
    def refusal_to_delete(self, name: str) -> str | None:
        """Why the type ``name`` cannot be deleted (a sentence), or None when nothing uses it."""

    def stored_values(self, name: str, *, batch: int) -> Iterator[tuple[str, str, str]]:
        """Every value stored under the type: ``(owner, field, value)``, read ``batch`` rows at a
        time so memory stays bounded."""


_USAGES: list[TypeUsage] = []


def register(usage: TypeUsage) -> None:
    if usage not in _USAGES:
        _USAGES.append(usage)


def refusal_to_delete(name: str) -> str | None:
    for usage in _USAGES:
        reason = usage.refusal_to_delete(name)
        if reason:
            return reason
    return None


def stored_values(name: str, *, batch: int) -> Iterator[tuple[str, str, str]]:
    for usage in _USAGES:
        yield from usage.stored_values(name, batch=batch)
