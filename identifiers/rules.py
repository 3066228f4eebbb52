"""Checks of identifier type names, patterns and values.

Patterns run on RE2 (the ``google-re2`` binding, module ``re2``): it matches in time linear in the
length of the value whatever the pattern, so no pattern a user sets can make a worker backtrack for
minutes (``(a+)+$`` against ``aaaa...ab`` did, with Python's ``re``). The price is RE2's syntax:
no backreferences, lookaround or possessive quantifiers, and ``\\d``, ``\\w``, ``\\s``, ``\\b`` are
ASCII (``\\pN``, ``\\pL`` are the Unicode classes). Such patterns are refused with a sentence saying so.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

import re2

from mediastore.errors import RuleViolation

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
# Characters that change how a value is shown without being seen: bidirectional controls
# (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C) make a pid read in another order than it
# is stored, zero-width ones (U+200B-U+200D, U+2060, U+FEFF) make two different pids look alike.
# Other characters that draw nothing (soft hyphen, combining grapheme joiner, Hangul fillers,
# Mongolian free variation selectors and vowel separator, invisible operators, the tag block) make
# two different pids look alike just as well.
INVISIBLE_RE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u2069\u3164\ufeff\uffa0\U000e0000-\U000e007f]"
)
MAX_PATTERN_LENGTH = 4096

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # RE2 would print every refused pattern to stderr


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise RuleViolation(
            f"bad identifier type name {name!r}: use 1-64 letters, digits, '_', '.', ':' or '-', "
            "starting with a letter or digit"
        )
    return name


def _python_accepts(pattern: str) -> bool:
    """Whether Python's ``re`` can parse the pattern; only used to word the refusal (nothing is
    ever matched with ``re``)."""
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Any:
    """The compiled RE2 regex of a pattern, as ``re2.compile`` returns it (cached per process).

    RuleViolation when the pattern is too long, not a regular expression, or uses a feature RE2
    cannot run in linear time."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise RuleViolation(f"pattern is longer than {MAX_PATTERN_LENGTH} characters")
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if isinstance(exc.args[0], bytes) else str(exc)
        if _python_accepts(pattern):
            raise RuleViolation(
                f"pattern {pattern!r} uses a feature the linear-time engine (RE2) does not support "
                f"(backreferences, lookaround, possessive quantifiers, \\Z, repetition counts over 1000, "
                f"...): {reason}"
            ) from None
        raise RuleViolation(f"invalid pattern {pattern!r}: {reason}") from None


def clean_text(value: str, what: str) -> str:
    """``value`` as stored: in Unicode NFC, so that values differing only in normalisation (an
    ``é`` as one code point or as ``e`` and a combining accent) are one value. RuleViolation naming
    the first bidirectional control or invisible (zero-width) character (``U+XXXX``). ASCII values, all the
    usual ones, return at once."""
    if value.isascii():
        return value
    found = INVISIBLE_RE.search(value)
    if found is not None:
        char = found.group()
        raise RuleViolation(
            f"{what} {value!r} contains U+{ord(char):04X} ({unicodedata.name(char, 'a format character')}): "
            "bidirectional controls and invisible characters are not allowed"
        )
    return unicodedata.normalize("NFC", value)


def matches(pattern: str, value: str) -> bool:
    """True when ``value`` fully matches ``pattern``; an empty pattern accepts anything."""
    if not pattern:
        return True
    try:
        return compile_pattern(pattern).fullmatch(value) is not None
    except UnicodeEncodeError:  # a lone surrogate: no stored value can hold one
        return False


def check_value(type_name: str, pattern: str, value: str, what: str) -> None:
    """Raise RuleViolation unless ``value`` fully matches the pattern of type ``type_name``."""
    if not matches(pattern, value):
        raise RuleViolation(
            f"{what} {value!r} does not match the pattern of identifier type '{type_name}': {pattern}"
        )
