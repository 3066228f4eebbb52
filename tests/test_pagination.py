"""The JSON of list answers (``mediastore.pagination.dumps``) says exactly what ninja's encoder says."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from ninja.responses import NinjaJSONEncoder

from mediastore.pagination import dumps


def ninja(value) -> object:
    return json.loads(json.dumps(value, cls=NinjaJSONEncoder))


def test_datetimes_read_as_ninja_writes_them():
    """Milliseconds cut (not rounded), no fraction when there is none, UTC as "Z", other offsets and
    naive values kept; checked on fixed edge cases and on random moments."""
    rng = random.Random(34)
    zones = [UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30)), None]
    moments = [
        datetime(2026, 12, 7, 12, 0, 0, 0, tzinfo=UTC),
        datetime(2026, 12, 7, 12, 0, 0, 999, tzinfo=UTC),
        datetime(2026, 12, 7, 12, 0, 0, 999_999, tzinfo=UTC),
        datetime(2026, 12, 7, 12, 0, 0, 1_000),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=-5))),
        datetime(9999, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC),
    ]
    for _ in range(2000):
        zone = rng.choice(zones)
        moments.append(
            datetime(2000, 1, 1, tzinfo=zone)
            + timedelta(seconds=rng.randrange(10**9), microseconds=rng.choice([0, rng.randrange(10**6)]))
        )
    body = [{"created": moment, "n": i} for i, moment in enumerate(moments)]
    assert json.loads(dumps(body)) == ninja(body)


def test_other_values_go_through_ninjas_encoder():
    body = {"d": Decimal("1.50"), "day": datetime(2026, 1, 2, tzinfo=UTC).date(), "big": 2**70}
    assert json.loads(dumps(body)) == ninja(body)
