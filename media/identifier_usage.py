"""How media use identifier types: as ``pid_type`` and as keys of ``identifiers``.

Registered with ``identifiers.usage`` when the app starts, so identifier rules can check stored
values without importing media.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from django.db.models import F
from django.db.models.fields.json import KeyTextTransform

from media.models import Media


class MediaIdentifierUsage:
    def refusal_to_delete(self, name: str) -> str | None:
        if Media.objects.filter(pid_type_id=name).exists():
            return f"identifier type '{name}' is the pid_type of existing media"
        if Media.objects.filter(identifiers__has_key=name).exists():
            return f"identifier type '{name}' is used as an identifier key of existing media"
        return None

    def stored_values(self, name: str, *, batch: int) -> Iterator[tuple[str, str, str]]:
        """Pids of media of this pid_type, then values ``identifiers[name]``, by pk in batches."""
        sources = [
            ("pid", Media.objects.filter(pid_type_id=name).values_list("pk", "pid", F("pid"))),
            (
                "identifiers",
                Media.objects.filter(identifiers__has_key=name)
                .annotate(identifier_value=KeyTextTransform(name, "identifiers"))
                .values_list("pk", "pid", "identifier_value"),
            ),
        ]
        for field, rows in sources:
            last = 0
            while True:
                chunk = list(rows.filter(pk__gt=last).order_by("pk")[:batch])
                for _, pid, value in chunk:
                    yield pid, field, value if isinstance(value, str) else json.dumps(value)
                if len(chunk) < batch:
                    break
                last = chunk[-1][0]


USAGE = MediaIdentifierUsage()
