"""Checks of identifier type names, patterns and values."""

from __future__ import annotations

import re
from functools import lru_cache

from mediastore.errors import RuleViolation

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise RuleViolation(
            f"bad identifier type name {name!r}: use 1-64 letters, digits, '_', '.', ':' or '-', "
            "starting with a letter or digit"
        )
    return name


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The compiled regex of a pattern; RuleViolation when it is not a valid regular expression."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise RuleViolation(f"invalid pattern {pattern!r}: {exc}") from None


def matches(pattern: str, value: str) -> bool:
    """True when ``value`` fully matches ``pattern``; an empty pattern accepts anything."""
    return not pattern or compile_pattern(pattern).fullmatch(value) is not None


def check_value(type_name: str, pattern: str, value: str, what: str) -> None:
    """Raise RuleViolation unless ``value`` fully matches the pattern of type ``type_name``."""
    if not matches(pattern, value):
        raise RuleViolation(
            f"{what} {value!r} does not match the pattern of identifier type '{type_name}': {pattern}"
        )
