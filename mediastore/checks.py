"""System checks (``manage.py check``; bin/start's ``migrate`` runs them at every start): settings
that work on a developer's machine but not in production, said at start-up instead of found out
later. Registered in ``MediastoreConfig.ready``; the RAM store's check is in stores/checks.py.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core.checks import Error, Warning, register

# As gunicorn.conf.py: WEB_CONCURRENCY workers, 2 when unset.
DEFAULT_WORKERS = 2


def gunicorn_workers() -> int:
    try:
        return max(1, int(os.environ.get("WEB_CONCURRENCY", "").strip() or DEFAULT_WORKERS))
    except ValueError:
        return DEFAULT_WORKERS  # gunicorn itself refuses it at start


def on_sqlite() -> bool:
    return "sqlite" in settings.DATABASES["default"]["ENGINE"]


@register()
def sqlite_in_production(app_configs=None, **kwargs) -> list[Warning]:
    """Debug off on SQLite: one writer at a time for every worker, one host only, and an empty
    ``POSTGRES_DB=`` line (the dotenv template once had one) chose it without anyone deciding."""
    if settings.DEBUG or not on_sqlite():
        return []
    problems = []
    database = settings.DATABASES["default"]["NAME"]
    if "POSTGRES_DB" in os.environ and not os.environ["POSTGRES_DB"].strip():
        problems.append(
            Warning(
                f"POSTGRES_DB is set but empty, so the database is SQLite ({database}).",
                hint="Name the PostgreSQL database in POSTGRES_DB, or remove the line to use SQLite "
                "on purpose (docs/production.md).",
                id="mediastore.W002",
            )
        )
    workers = gunicorn_workers()
    if workers > 1:
        problems.append(
            Warning(
                f"SQLite ({database}) with {workers} gunicorn workers (WEB_CONCURRENCY): their writes "
                "wait for each other, and only one host can serve this database.",
                hint="Use PostgreSQL in production (POSTGRES_DB and the other POSTGRES_* variables; "
                "docs/production.md), or WEB_CONCURRENCY=1 for a small single-host installation.",
                id="mediastore.W001",
            )
        )
    return problems


@register(deploy=True)
def failpoints_in_production(app_configs=None, **kwargs) -> list[Error]:
    """``MEDIASTORE_FAILPOINTS`` makes a server crash or fail on purpose (the fault tests): never
    in a deployment that ``manage.py check --deploy`` vets."""
    if not settings.MEDIASTORE_FAILPOINTS:
        return []
    return [
        Error(
            f"MEDIASTORE_FAILPOINTS is set ({', '.join(sorted(settings.MEDIASTORE_FAILPOINTS))}): these make "
            "the server crash or fail on purpose, for the fault tests only.",
            hint="Remove MEDIASTORE_FAILPOINTS from the environment and .env.",
            id="mediastore.E001",
        )
    ]


@register()
def several_hosts(app_configs=None, **kwargs) -> list[Error | Warning]:
    """``MEDIASTORE_HOSTS`` above 1 (docs/scaling.md): SQLite is one host's file, so the server
    refuses to start; without Redis the failed-login counters and the read-after positions of the
    replica routing are kept per host, which weakens both, so it warns."""
    hosts = settings.MEDIASTORE_HOSTS
    if hosts == 1:
        return []
    if on_sqlite():
        return [
            Error(
                f"MEDIASTORE_HOSTS is {hosts}, but the database is SQLite "
                f"({settings.DATABASES['default']['NAME']}), which only one host can use.",
                hint="Use PostgreSQL (POSTGRES_DB and the other POSTGRES_* variables, equal on every host).",
                id="mediastore.E002",
            )
        ]
    if settings.MEDIASTORE_REDIS_URL:
        return []
    return [
        Warning(
            f"MEDIASTORE_HOSTS is {hosts} without MEDIASTORE_REDIS_URL: each host counts failed logins "
            "on its own (a client gets MEDIASTORE_LOGIN_RATE on every host), and a client's reads after "
            "its writes are routed by what the host it reached remembers.",
            hint="Set MEDIASTORE_REDIS_URL, the same on every host (docs/scaling.md).",
            id="mediastore.W003",
        )
    ]
