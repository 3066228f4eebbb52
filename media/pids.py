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


def pick(found: dict[str, T], pid: str) -> T | None:
    """The entry of ``found`` (keyed by stored pid) that a lookup of ``pid`` finds, or None."""
    for form in pid_forms(pid):
        if form in found:
            return found[form]
    return None
