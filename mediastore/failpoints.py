"""Failpoints: named places where a test can make a real server process fail on purpose.

``MEDIASTORE_FAILPOINTS`` (testing only; empty in production) lists ``name=action`` pairs, comma
separated. At ``hit(name)`` the action runs: ``crash`` ends the process at once, as a power cut or
an OOM kill would (no cleanup, no response), ``error`` raises a StorageError, ``delay`` sleeps up
to 50 ms (random) to widen a race window, ``slow`` sleeps 0.5 s (a transfer slowed down so that a
test can act while it runs). Unlisted names cost
one dictionary look-up. This lets the fault tests kill a real gunicorn worker between the two
phases of a byte write without mocking any of the code under test.
"""

from __future__ import annotations

import os
import random
import time

from django.conf import settings

from mediastore.errors import StorageError

ACTIONS = ("crash", "error", "delay", "slow")


def parse(spec: str) -> dict[str, str]:
    """``"a=crash,b=error"`` -> ``{"a": "crash", "b": "error"}``; ValueError for anything else."""
    points: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, action = item.partition("=")
        if not sep or not name or action not in ACTIONS:
            raise ValueError(f"bad failpoint {item!r}: use name=crash, name=error, name=delay or name=slow")
        points[name] = action
    return points


def hit(name: str) -> None:
    action = settings.MEDIASTORE_FAILPOINTS.get(name)
    if action == "crash":
        os._exit(70)
    if action == "error":
        raise StorageError(f"failpoint {name} (injected failure)")
    if action == "delay":
        time.sleep(random.uniform(0, 0.05))
    if action == "slow":
        time.sleep(0.5)
