"""HTTP Range header parsing for content downloads (RFC 9110, single byte ranges)."""

from __future__ import annotations

import re

RANGE_RE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")


class Unsatisfiable(Exception):
    """The range lies wholly past the end of the content: answer 416."""


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte positions a Range header asks for, or None to send all.

    Multiple ranges and malformed headers are ignored (the whole content is sent, which RFC 9110
    allows); ``bytes=-N`` means the last N bytes. Raises Unsatisfiable for a range past the end.
    """
    match = RANGE_RE.match(header or "")
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix range: the last N bytes
        length = int(last)
        if length == 0:
            raise Unsatisfiable
        return max(size - length, 0), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # invalid: ignored
    if start >= size:
        raise Unsatisfiable
    return start, min(end, size - 1)
