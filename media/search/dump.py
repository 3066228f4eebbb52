"""``GET /api/media/dump``: every media, streamed as one JSON array."""

from __future__ import annotations

import json
from collections.abc import Iterator

from django.utils import timezone
from ninja.responses import NinjaJSONEncoder

from media.lifecycle import not_expired_q
from media.schemas import MAX_OFFSET, media_out_dict
from media.selectors import media_queryset
from mediastore.errors import RuleViolation

DUMP_CHUNK = 500


def media_dump_chunks(*, limit: int | None = None, offset: int = 0) -> Iterator[str]:
    """Every media by pk (or ``limit`` of them after ``offset``) as JSON array text, in pieces.

    Rows come from a server-side cursor ``DUMP_CHUNK`` at a time and each is serialised with
    ``media_out_dict`` (the ``MediaOut`` shape) as the other endpoints do, so memory stays flat
    however large the table.
    """
    # Bounded above too: a huge slice overflowed SQLite's integers mid-stream (found by schemathesis).
    if limit is not None and not 0 <= limit <= MAX_OFFSET:
        raise RuleViolation(f"query parameter 'limit' must be from 0 to {MAX_OFFSET}")
    if not 0 <= offset <= MAX_OFFSET:
        raise RuleViolation(f"query parameter 'offset' must be from 0 to {MAX_OFFSET}")
    qs = media_queryset().filter(not_expired_q(timezone.now())).order_by("pk")  # expired: not served
    qs = qs[offset : offset + limit] if limit is not None else qs[offset:]

    def chunks() -> Iterator[str]:
        yield "["
        batch: list[str] = []
        first = True
        for media in qs.iterator(chunk_size=DUMP_CHUNK):
            batch.append(json.dumps(media_out_dict(media), cls=NinjaJSONEncoder))
            if len(batch) == DUMP_CHUNK:
                yield ("" if first else ",") + ",".join(batch)
                first, batch = False, []
        if batch:
            yield ("" if first else ",") + ",".join(batch)
        yield "]"

    return chunks()
