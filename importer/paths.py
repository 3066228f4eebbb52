"""``--map-path OLD=NEW``: which of our local stores an earlier server's absolute path becomes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PathMap:
    """Old absolute path prefixes and the bucket (a path below our storage root) each becomes.

    The longest prefix that matches at a path-component boundary wins, so ``/data=old`` maps
    ``/data/ifcb`` to ``old/ifcb`` while ``/data/ifcb=ifcb`` may still override it.
    """

    pairs: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, values: list[str]) -> PathMap:
        """From ``OLD=NEW`` strings; ValueError naming a malformed one."""
        pairs = []
        for value in values:
            old, sep, new = value.partition("=")
            if not sep or not old.strip() or not new.strip("/ "):
                raise ValueError(
                    f"--map-path takes OLD=NEW (an old absolute path, our bucket), got {value!r}"
                )
            pairs.append((old.rstrip("/") or "/", new.strip("/")))
        return cls(tuple(sorted(pairs, key=lambda pair: len(pair[0]), reverse=True)))

    def map(self, old_bucket: str) -> str | None:
        """Our bucket for the earlier server's ``old_bucket``, or None when no prefix covers it."""
        path = old_bucket.rstrip("/") or "/"
        for old, new in self.pairs:
            if path == old:
                return new
            if path.startswith(old.rstrip("/") + "/"):
                return f"{new}/{path[len(old.rstrip('/')) + 1 :]}"
        return None
