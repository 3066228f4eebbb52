"""Finding media by a pid as clients write it.

New pids are stored in Unicode NFC (``identifiers.rules.clean_text``), but pids stored before may be
in another form (NFD, as macOS writes file names), and clients may write either. A lookup tries the
pid exactly as given first (an old NFD pid still opens its media, even beside an NFC twin), then its
NFC and NFD forms. ASCII pids, which have no other form, cost nothing more.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import TypeVar

from django.db import connection
from django.db.models import QuerySet
from django.db.models.functions import Collate

T = TypeVar("T")


def pid_forms(pid: str) -> tuple[str, ...]:
    """The pids to look for, in order: as given, NFC, NFD (each once)."""
    if pid.isascii():
        return (pid,)
    return tuple(dict.fromkeys((pid, unicodedata.normalize("NFC", pid), unicodedata.normalize("NFD", pid))))


def nfc(pid: str) -> str:
    return pid if pid.isascii() else unicodedata.normalize("NFC", pid)


def lookup_set(pids: Iterable[str]) -> set[str]:
    """Every form of these pids, for one ``pid__in`` query."""
    return {form for pid in pids for form in pid_forms(pid)}


def with_pids(queryset: QuerySet, pids: Iterable[str]) -> QuerySet:
    """``queryset`` filtered to the rows whose pid is one of ``pids`` (every form, ``lookup_set``).
    On PostgreSQL written ``pid COLLATE "C" IN (...)``, which only the ``media_pid_c`` B-tree
    answers: a plain ``pid IN (...)`` may be planned on the trigram GIN index, whose equality
    reads far more (docs/performance.md, "Bulk create"). Equal either way: a deterministic
    collation compares equal exactly the same strings."""
    pids = lookup_set(pids)
    if connection.vendor != "postgresql":
        return queryset.filter(pid__in=pids)
    return queryset.alias(pid_c=Collate("pid", "C")).filter(pid_c__in=pids)


def pick(found: dict[str, T], pid: str) -> T | None:
    """The entry of ``found`` (keyed by stored pid) that a lookup of ``pid`` finds, or None."""
    for form in pid_forms(pid):
        if form in found:
            return found[form]
    return None
