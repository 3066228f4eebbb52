"""Wildcard patterns of search (``*`` any run, ``?`` one character, ``\\`` quotes the next one).

They become ``LIKE ... ESCAPE '\\'`` on PostgreSQL and ``GLOB`` on SQLite (whose ``LIKE`` ignores
ASCII case). Both are case-sensitive, match the whole value and count ``?`` as one character, not
one byte. A pattern without wildcards is plain equality.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Sql = tuple[str, list[Any]]


@dataclass(frozen=True)
class Wildcard:
    """A parsed wildcard pattern: a sequence of (is_wildcard, character)."""

    tokens: tuple[tuple[bool, str], ...]

    @classmethod
    def parse(cls, pattern: str) -> Wildcard:
        tokens, i = [], 0
        while i < len(pattern):
            char = pattern[i]
            if char == "\\" and i + 1 < len(pattern):
                tokens.append((False, pattern[i + 1]))
                i += 2
                continue
            tokens.append((char in "*?", char))
            i += 1
        return cls(tuple(tokens))

    @property
    def is_literal(self) -> bool:
        return not any(wild for wild, _ in self.tokens)

    @property
    def literal(self) -> str:
        return "".join(char for _, char in self.tokens)

    @property
    def prefix(self) -> str:
        """The literal text before the first wildcard ("" when the pattern starts with one)."""
        text = []
        for wild, char in self.tokens:
            if wild:
                break
            text.append(char)
        return "".join(text)

    @property
    def like(self) -> str:
        """For ``LIKE ... ESCAPE '\\'``: ``%``, ``_`` and ``\\`` of the text are escaped."""
        return "".join(
            ("%" if char == "*" else "_") if wild else ("\\" + char if char in "%_\\" else char)
            for wild, char in self.tokens
        )

    @property
    def glob(self) -> str:
        """For SQLite ``GLOB``, which has no escape character: literal ``*?[`` go in brackets."""
        return "".join(
            char if wild else (f"[{char}]" if char in "*?[" else char) for wild, char in self.tokens
        )


def text_matches(column_sql: str, vendor: str, wildcard: Wildcard) -> Sql:
    """SQL for "the text in ``column_sql`` matches ``wildcard``"."""
    if wildcard.is_literal:
        return f"{column_sql} = %s", [wildcard.literal]
    if vendor == "postgresql":
        return f"{column_sql} LIKE %s ESCAPE '\\'", [wildcard.like]
    return f"{column_sql} GLOB %s", [wildcard.glob]
