"""Login throttling: failed logins are counted per username and per client address.

``MEDIASTORE_LOGIN_RATE`` (default ``10/m``) failures for one username, or from one client address,
within a window that starts at the first counted failure, and further logins for that username or
from that address are refused with 429 and ``Retry-After`` until the window ends; the password is
not checked then, and refused attempts are not counted. Only failures count: a successful login
clears its username's count (the user has shown the password) but not its address's, so nobody can
wipe an address's count by logging in to an account of their own between guesses.

Every attempt is counted as a failure *before* its password is checked (``reserve_login_attempt``)
and given back when it turns out a success or is refused. Reading the count first and adding to it
after the check let concurrent attempts all read a count under the limit: 40 logins sent at once had
their password checked up to 20 times against a limit of 10. With the count taken first by one
atomic increment, at most the limit's worth of attempts of one window get a number within it, so
the password is checked at most that often, however many arrive at once.

Counters live in Django's default cache (``settings.CACHES``: Redis when ``MEDIASTORE_REDIS_URL``
is set, else files every worker on the host shares), using only ``add``, ``get``, ``incr`` and
``decr``; Redis increments atomically, and ``mediastore.cache.FileCache`` holds a lock file around
``add`` and ``incr``. The key of a window's count carries the window's start, so a count never
outlives its window even where ``incr`` rewrites the entry's expiry.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

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

    def reserve(self, now: float) -> tuple[int, int]:
        """Count one more failure in the current window (starting one if there is none), in one
        atomic increment; returns the count including this one and the window's start (ms)."""
        window = settings.MEDIASTORE_LOGIN_RATE[1]
        for _ in range(3):
            cache.add(self.start_key, int(now * 1000), window)
            since_ms = cache.get(self.start_key, int(now * 1000))  # another worker's earlier start wins
            count_key = self.count_key(since_ms)
            cache.add(count_key, 0, window)
            try:
                return cache.incr(count_key), since_ms
            except ValueError:  # the window expired between add and incr: count in the next one
                continue
        # Three windows ended under our hands: the cache is not keeping entries; refuse the attempt.
        return settings.MEDIASTORE_LOGIN_RATE[0] + 1, since_ms

    def release(self, since_ms: int) -> None:
        """Give back a failure counted by ``reserve`` (the attempt was refused, or succeeded)."""
        with contextlib.suppress(ValueError):  # the window ended meanwhile, and its count with it
            cache.decr(self.count_key(since_ms))

    @staticmethod
    def wait_seconds(since_ms: int, now: float) -> int:
        """Seconds until the window that started at ``since_ms`` ends."""
        return max(1, math.ceil(since_ms / 1000 + settings.MEDIASTORE_LOGIN_RATE[1] - now))

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


@dataclass
class LoginAttempt:
    """A login counted as a failure of its username and its address before the password is checked
    (``reserve_login_attempt``). A wrong password leaves it counted; ``succeeded`` takes it back."""

    username: FailureCounter
    address: FailureCounter
    since_ms: dict[str, int] = field(default_factory=dict)  # counter key -> its window's start

    def succeeded(self) -> None:
        """The password was right: the username's failures are cleared, and this attempt is no
        longer counted against the address (the address's earlier failures stay)."""
        with counters():
            self.username.clear()
            self.address.release(self.since_ms[self.address.key])


def reserve_login_attempt(request: HttpRequest, username: str) -> LoginAttempt:
    """Count this attempt as a failure of ``username`` and of the request's address, atomically,
    before its password is checked; raise TooManyRequests (429, Retry-After) without counting it
    when that makes either count exceed ``MEDIASTORE_LOGIN_RATE``."""
    now = time.time()
    limit = settings.MEDIASTORE_LOGIN_RATE[0]
    attempt = LoginAttempt(username_counter(username), address_counter(request))
    waits = []
    with counters():
        for counter in (attempt.username, attempt.address):
            count, since_ms = counter.reserve(now)
            attempt.since_ms[counter.key] = since_ms
            if count > limit:
                waits.append(counter.wait_seconds(since_ms, now))
        if waits:
            for counter in (attempt.username, attempt.address):
                counter.release(attempt.since_ms[counter.key])
    if waits:
        retry_after = max(waits)
        raise TooManyRequests(
            f"too many failed logins for this username or from this address; try again in "
            f"{retry_after} seconds",
            retry_after=retry_after,
        )
    return attempt
