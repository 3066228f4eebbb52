"""HTTP Range header parsing for content downloads (RFC 9110, single byte ranges)."""

from __future__ import annotations

import re

RANGE_RE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")
# 2**64 has 20 digits: no stored size needs more. Longer numbers are refused before int() reads
# them, which for 4,300 digits and more raises ValueError (Python's integer string conversion limit).
MAX_POSITION_DIGITS = 20


class Unsatisfiable(Exception):
    """The range lies wholly past the end of the content, or names a position no content can
    have: answer 416."""


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte positions a Range header asks for, or None to send all.

    Multiple ranges and malformed headers are ignored (the whole content is sent, which RFC 9110
    allows); ``bytes=-N`` means the last N bytes, and a last position past the end is clipped to the
    end. Raises Unsatisfiable for a range past the end, a suffix range of empty content, and any
    position of more than ``MAX_POSITION_DIGITS`` digits.
    """
    match = RANGE_RE.match(header or "")
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if len(first) > MAX_POSITION_DIGITS or len(last) > MAX_POSITION_DIGITS:
        raise Unsatisfiable
    if not first:  # suffix range: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            raise Unsatisfiable
        return max(size - length, 0), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # invalid: ignored
    if start >= size:
        raise Unsatisfiable
    return start, min(end, size - 1)
