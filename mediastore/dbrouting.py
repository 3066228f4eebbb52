"""Reads from a PostgreSQL streaming replica, with read-your-writes (docs/scaling.md).

With ``POSTGRES_REPLICA_HOST`` set, settings add the database alias ``replica`` (the primary's
database, user and password unless ``POSTGRES_REPLICA_*`` say otherwise) and ``ReplicaRouter``.
Without it nothing here runs: ``ReplicaReadsMiddleware`` passes every request straight on, the
router answers "default" for everything, and no request pays a round trip for it.

Which requests read from the replica: the read-only routes of ``REPLICA_ROUTES`` (searches, lists,
dumps, the events feed, ``/api/stats``, archives of a search). The middleware decides once per
request, before the view runs; everything else, every write, and every query inside a transaction
(``atomic`` on the primary) goes to the primary. The bearer token's row is read by
``mediastore.rowfetch`` on the primary connection, so a revoked token stops at once everywhere.

Read your writes: after a write request (any other method than GET/HEAD/OPTIONS, outside
``REPLICA_ROUTES``) answered below 400, the middleware reads ``pg_current_wal_lsn()`` on the
primary, which is at or past that write's commit record, and

- answers it in the header ``X-Mediastore-Read-After``; a client that sends it back (or passes it on
  to another client) has its next reads served by a replica only once that replica has replayed it;
- remembers it for ``PIN_SECONDS`` in the cache under the caller's credential (its bearer token, or
  its session cookie), so the same token's reads wait for it without the client doing anything.
  The cache is Redis when ``MEDIASTORE_REDIS_URL`` is set, the only way this holds across hosts.

A read needing position ``L`` goes to the replica only when its last checked replay position is at
least ``L``; otherwise it goes to the primary. The replica's state (replay position, lag, whether it
streams) is checked at most once per ``HEALTH_SECONDS`` per process, by one thread while the others
use the last result; a replica that does not answer, is not in recovery, has no WAL receiver
streaming, or lags more than ``MEDIASTORE_REPLICA_MAX_LAG_S`` serves no reads until a later check
says otherwise. A read that fails on the replica is run again on the primary (the routes are
read-only, so running one twice is safe); streamed bodies already started cannot be.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import logging
import re
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.signals import request_finished
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from prometheus_client import Counter

log = logging.getLogger(__name__)

REPLICA = "replica"
HEADER = "X-Mediastore-Read-After"
HEALTH_SECONDS = 1.0
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# (method, path) of the read-only routes the replica may serve; any other request reads the primary.
REPLICA_ROUTES = [
    (methods, re.compile(pattern))
    for methods, pattern in (
        ({"GET", "HEAD"}, r"^/api/media$"),
        ({"GET", "HEAD"}, r"^/api/media/dump$"),
        ({"POST"}, r"^/api/media/search$"),
        ({"POST"}, r"^/api/media/read$"),
        ({"GET", "HEAD"}, r"^/api/events$"),
        ({"GET", "HEAD"}, r"^/api/stats$"),
        ({"GET", "HEAD", "POST"}, r"^/api/download/archive$"),
    )
]

READS = Counter(
    "mediastore_db_reads",
    "Requests of the replica-eligible routes, by the database that served them (primary, replica) and "
    "why the primary did (own_write, lagging, unavailable, failed_over; '' for the replica).",
    ["database", "reason"],
)

_reads_from: contextvars.ContextVar[str] = contextvars.ContextVar(
    "mediastore_reads_from", default=DEFAULT_DB_ALIAS
)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


def pin_seconds() -> int:
    """How long a write's position is remembered per credential: past it, a replica that is within
    MEDIASTORE_REPLICA_MAX_LAG_S has replayed every commit that old."""
    return max(60, 4 * settings.MEDIASTORE_REPLICA_MAX_LAG_S)


def parse_lsn(text: str | None) -> int | None:
    """``16/B374D848`` as a number; None for anything else (an echoed header is client input)."""
    if not text:
        return None
    high, slash, low = text.strip().partition("/")
    if not slash or not (0 < len(high) <= 8 and 0 < len(low) <= 8):
        return None
    try:
        return (int(high, 16) << 32) | int(low, 16)
    except ValueError:
        return None


def reading_alias() -> str:
    """The alias this request's reads go to now: the replica only when the request was routed
    there and no transaction is open on the primary."""
    alias = _reads_from.get()
    if alias == REPLICA and connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return DEFAULT_DB_ALIAS
    return alias


class ReplicaRouter:
    """``db_for_read``: the replica for the requests the middleware routed there (outside
    transactions); the primary (None: the default) for everything else. Migrations never run on
    the replica (it is read-only; it gets them by replication)."""

    def db_for_read(self, model, **hints) -> str | None:
        alias = reading_alias()
        return alias if alias == REPLICA else None

    def db_for_write(self, model, **hints) -> str | None:
        return None

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True  # the same database, replicated

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints) -> bool:
        return db != REPLICA


class _ReadConnection:
    """``django.db.connection`` for raw reads (the search's SQL): the connection of the alias the
    request reads from (``reading_alias``)."""

    def __getattr__(self, name: str):
        return getattr(connections[reading_alias()], name)


read_connection = _ReadConnection()


@dataclass(frozen=True)
class ReplicaState:
    usable: bool
    replay_lsn: int = 0
    reason: str = "unavailable"


class ReplicaHealth:
    """The replica's state as last checked in this process (at most every HEALTH_SECONDS)."""

    def __init__(self) -> None:
        self.state = ReplicaState(False)
        self.checked = 0.0
        self.lock = threading.Lock()

    def current(self) -> ReplicaState:
        if time.monotonic() - self.checked >= HEALTH_SECONDS and self.lock.acquire(blocking=False):
            try:
                self.refresh()
            finally:
                self.lock.release()
        return self.state

    def failed(self) -> None:
        """A query on the replica failed: no more reads there until the next check says so."""
        self.state = ReplicaState(False)
        self.checked = time.monotonic()

    def refresh(self) -> None:
        before = self.state
        try:
            self.state = self.check()
        except DatabaseError as exc:
            close_replica()
            self.state = ReplicaState(False)
            if before.usable:
                log.warning("the replica %s serves no reads: %s", replica_address(), exc)
        self.checked = time.monotonic()
        if self.state.usable != before.usable or self.state.reason != before.reason:
            if self.state.usable:
                log.info("the replica %s serves reads again", replica_address())
            elif self.state.reason != "unavailable":
                log.warning("the replica %s serves no reads: %s", replica_address(), self.state.reason)

    def check(self) -> ReplicaState:
        with connections[REPLICA].cursor() as cursor:
            cursor.execute(
                "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,"
                " EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'),"
                " CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
                " ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 1e9) END"
            )
            in_recovery, replay, streaming, lag = cursor.fetchone()
        if not in_recovery:
            return ReplicaState(False, reason="not a standby (pg_is_in_recovery() is false)")
        if not streaming:
            return ReplicaState(False, reason="its WAL receiver is not streaming from the primary")
        if float(lag) > settings.MEDIASTORE_REPLICA_MAX_LAG_S:
            return ReplicaState(False, reason="lagging")
        return ReplicaState(True, parse_lsn(replay) or 0, reason="")


health = ReplicaHealth()


def close_replica() -> None:
    """Drop this thread's replica connection (broken, or of a replica that failed)."""
    with contextlib.suppress(DatabaseError):
        connections[REPLICA].close()


def replica_address() -> str:
    database = settings.DATABASES[REPLICA]
    return f"{database['HOST']}:{database['PORT']}"


def credential_key(request: HttpRequest) -> str | None:
    """The cache key of the caller's write position: its bearer token or its session, hashed."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    secret = token.strip() if scheme.lower() == "bearer" else ""
    if not secret:
        secret = request.COOKIES.get(settings.SESSION_COOKIE_NAME, "")
        if not secret:
            return None
        secret = "session:" + secret
    return "read-after:" + hashlib.sha256(secret.encode()).hexdigest()[:40]


def replica_route(request: HttpRequest) -> bool:
    path = request.path_info
    return any(request.method in methods and pattern.match(path) for methods, pattern in REPLICA_ROUTES)


def current_lsn() -> str | None:
    """The primary's WAL position now (at or past every commit so far); None when not reachable."""
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()::text")
            return cursor.fetchone()[0]
    except DatabaseError as exc:
        log.warning("could not read the primary's WAL position after a write: %s", exc)
        return None


class ReplicaReadsMiddleware:
    """Routes the reads of ``REPLICA_ROUTES`` to the replica when it may serve them, and records
    the position of each write (module docstring). Outside ``RetryReadsMiddleware``, so a read
    retried there stays on the database chosen here."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not replica_configured():
            return self.get_response(request)
        _reads_from.set(DEFAULT_DB_ALIAS)
        if replica_route(request):
            return self.read(request)
        response = self.get_response(request)
        if request.method not in SAFE_METHODS and response.status_code < 400:
            lsn = current_lsn()
            if lsn is not None:
                response[HEADER] = lsn
                key = credential_key(request)
                if key is not None:
                    cache.set(key, lsn, pin_seconds())
        return response

    def needed_lsn(self, request: HttpRequest) -> int:
        needed = parse_lsn(request.headers.get(HEADER)) or 0
        key = credential_key(request)
        if key is not None:
            needed = max(needed, parse_lsn(cache.get(key)) or 0)
        return needed

    def read(self, request: HttpRequest) -> HttpResponse:
        state = health.current()
        if not state.usable:
            return self.on_primary(request, state.reason)
        if state.replay_lsn < self.needed_lsn(request):
            return self.on_primary(request, "own_write")
        # Reset when the response is closed (request_finished), so a streamed body reads there too.
        _reads_from.set(REPLICA)
        response = self.get_response(request)
        if response.status_code >= 500 and not getattr(response, "streaming", False):
            _reads_from.set(DEFAULT_DB_ALIAS)
            health.failed()  # rechecked within HEALTH_SECONDS; until then the primary serves
            close_replica()
            log.warning(
                "%s %s failed on the replica; answered from the primary", request.method, request.path
            )
            return self.on_primary(request, "failed_over")
        READS.labels("replica", "").inc()
        return response

    def on_primary(self, request: HttpRequest, reason: str) -> HttpResponse:
        READS.labels("primary", reason if reason in REASONS else "unavailable").inc()
        return self.get_response(request)


REASONS = {"own_write", "failed_over", "lagging"}


@receiver(request_finished)
def reads_from_primary_again(**kwargs) -> None:
    """The end of a request (its body sent, streamed ones too): this thread reads the primary."""
    _reads_from.set(DEFAULT_DB_ALIAS)
