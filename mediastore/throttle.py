"""Login throttling: failed logins are counted per username and per client address.

``MEDIASTORE_LOGIN_RATE`` (default ``10/m``) failures for one username, or from one client address,
within a window that starts at the first counted failure, and further logins for that username or
from that address are refused with 429 and ``Retry-After`` until the window ends; the password is
not checked then, and refused attempts are not counted. Only failures count: a successful login
clears its username's count (the user has shown the password) but not its address's, so nobody can
wipe an address's count by logging in to an account of their own between guesses.

Counters live in Django's default cache (``settings.CACHES``: Redis when ``MEDIASTORE_REDIS_URL``
is set, else files every worker on the host shares), using only ``add``, ``get`` and ``incr``. The
key of a window's count carries the window's start, so a count never outlives its window even
where ``incr`` rewrites the entry's expiry.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from redis.exceptions import RedisError

from mediastore import forwarded
from mediastore.errors import ServiceUnavailable, TooManyRequests


def client_address(request: HttpRequest) -> str:
    """The request's client address: ``REMOTE_ADDR``, or behind a trusted proxy
    (``MEDIASTORE_TRUSTED_PROXIES``) the right-most untrusted ``X-Forwarded-For`` entry
    (mediastore/forwarded.py)."""
    return forwarded.client_address(
        request.META.get("REMOTE_ADDR", ""),
        request.META.get("HTTP_X_FORWARDED_FOR", ""),
        settings.MEDIASTORE_TRUSTED_PROXIES,
    )


@dataclass(frozen=True)
class FailureCounter:
    """Failed logins of one username or one address, in the current window."""

    key: str

    @property
    def start_key(self) -> str:
        return f"{self.key}:since"

    def count_key(self, since_ms: int) -> str:
        return f"{self.key}:{since_ms}"

    def wait_seconds(self, now: float) -> int | None:
        """Seconds until this counter's window ends when it is at the limit, else None."""
        limit, window = settings.MEDIASTORE_LOGIN_RATE
        since_ms = cache.get(self.start_key)
        if since_ms is None or cache.get(self.count_key(since_ms), 0) < limit:
            return None
        return max(1, math.ceil(since_ms / 1000 + window - now))

    def record(self, now: float) -> None:
        window = settings.MEDIASTORE_LOGIN_RATE[1]
        cache.add(self.start_key, int(now * 1000), window)
        since_ms = cache.get(self.start_key, int(now * 1000))  # another worker's earlier start wins
        count_key = self.count_key(since_ms)
        cache.add(count_key, 0, window)
        try:
            cache.incr(count_key)
        except ValueError:  # expired between add and incr
            cache.add(count_key, 1, window)

    def clear(self) -> None:
        cache.delete(self.start_key)


def username_counter(username: str) -> FailureCounter:
    # Hashed: keeps usernames out of the cache and any character out of the key.
    digest = hashlib.sha256(username.casefold().encode("utf-8")).hexdigest()
    return FailureCounter(f"login-failures:username:{digest}")


def address_counter(request: HttpRequest) -> FailureCounter:
    return FailureCounter(f"login-failures:address:{client_address(request)}")


@contextlib.contextmanager
def counters() -> Iterator[None]:
    """Fail closed: when the counters cannot be read or written (Redis down, the cache folder not
    writable), logins are refused with 503 instead of going unthrottled, and instead of a 500."""
    try:
        yield
    except (OSError, RedisError) as exc:
        raise ServiceUnavailable(
            "login is unavailable for a moment: the failed-login counters cannot be reached "
            f"({type(exc).__name__}); try again shortly"
        ) from None


def check_login_allowed(request: HttpRequest, username: str) -> None:
    """Raise TooManyRequests (429, Retry-After) when the username or the address is at the limit."""
    now = time.time()
    with counters():
        waits = [
            wait
            for counter in (username_counter(username), address_counter(request))
            if (wait := counter.wait_seconds(now)) is not None
        ]
    if waits:
        retry_after = max(waits)
        raise TooManyRequests(
            f"too many failed logins for this username or from this address; try again in "
            f"{retry_after} seconds",
            retry_after=retry_after,
        )


def record_login_failure(request: HttpRequest, username: str) -> None:
    now = time.time()
    with counters():
        username_counter(username).record(now)
        address_counter(request).record(now)


def record_login_success(username: str) -> None:
    with counters():
        username_counter(username).clear()
