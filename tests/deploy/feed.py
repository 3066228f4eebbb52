"""A changes-feed consumer for the live tests: follows ``GET /api/events`` the way docs/events.md tells
a client to (pass ``next`` back as ``after``, long-poll with ``wait``)."""

from __future__ import annotations

import threading
import time

from tests.support.servers import Server

DEADLINE_SECONDS = 300


def follow_feed(
    server: Server, stop: threading.Event, seen: list[dict], errors: list, *, limit: int = 25, wait: int = 1
) -> None:
    """Follow the feed from the oldest event, appending every item to ``seen``, until ``stop`` is
    set; then once more until a page comes back empty (everything committed before ``stop`` was set
    has then been read). An error answer is appended to ``errors`` and ends it."""
    session = server.client()
    after = None
    deadline = time.monotonic() + DEADLINE_SECONDS
    draining = False
    while time.monotonic() < deadline:
        params = {"limit": limit, "wait": wait}
        if after is not None:
            params["after"] = after
        response = session.get(f"{server.base}/api/events", params=params, timeout=60)
        if response.status_code != 200:
            errors.append(("feed", response.status_code, response.text[:300]))
            return
        page = response.json()
        seen.extend(page["items"])
        after = page["next"]
        if draining and not page["items"]:
            return
        draining = stop.is_set()
        if "Retry-After" in response.headers and not draining:
            stop.wait(min(int(response.headers["Retry-After"]), wait))
    errors.append(("feed", "still following after the deadline"))
