"""Throw-away PostgreSQL databases, created on the server the POSTGRES_* variables name (or the
local one) and dropped with everything in them. No pytest here: ``servers.ThrowAwayDatabase``
skips or fails a test when the server is unreachable; the benchmarks report it."""

from __future__ import annotations

import os
import uuid

from tests.support.processes import HarnessError


class DatabaseUnavailable(HarnessError):
    """The PostgreSQL server cannot be reached (or refuses to create a database)."""


def pg_params() -> dict[str, str]:
    """Where the throw-away databases are created: the POSTGRES_* of the environment, or local."""
    return {
        "host": os.environ.get("POSTGRES_HOST") or "127.0.0.1",
        "port": os.environ.get("POSTGRES_PORT") or "5432",
        "user": os.environ.get("POSTGRES_USER") or "postgres",
        "password": os.environ.get("POSTGRES_PASSWORD") or "",
    }


class PostgresDatabase:
    """A database named ``<prefix><random>``: ``create()``, use ``env()``, then ``drop()``."""

    def __init__(self, prefix: str = "mediastore_e2e_") -> None:
        self.params = pg_params()
        self.name = f"{prefix}{uuid.uuid4().hex[:12]}"

    def _admin(self):
        import psycopg

        return psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=5, **self.params)

    def create(self) -> None:
        """Raises DatabaseUnavailable when the server cannot be reached."""
        import psycopg

        try:
            with self._admin() as conn:
                conn.execute(f'CREATE DATABASE "{self.name}"')
        except psycopg.OperationalError as exc:
            where = f"{self.params['host']}:{self.params['port']}"
            raise DatabaseUnavailable(f"PostgreSQL at {where} unreachable: {exc}") from None

    def admin_sql(self, *statements: str) -> None:
        """Run statements as the administrating user, outside this database (roles, ownership)."""
        with self._admin() as conn:
            for statement in statements:
                conn.execute(statement)

    def drop(self) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def env(self) -> dict[str, str]:
        """The POSTGRES_* variables that point a server at this database."""
        p = self.params
        return {
            "POSTGRES_DB": self.name,
            "POSTGRES_HOST": p["host"],
            "POSTGRES_PORT": p["port"],
            "POSTGRES_USER": p["user"],
            "POSTGRES_PASSWORD": p["password"],
        }


def admin_connection():
    """A connection to the ``postgres`` database of the server ``pg_params`` names (autocommit)."""
    import psycopg

    return psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=5, **pg_params())


def ensure_bench_database(name: str, reload: bool) -> bool:
    """Create the benchmark database ``name`` when missing (dropped first with ``reload``); True
    when it is new. Kept between runs (loading a million media takes minutes), so the name must
    say ``bench``: nothing else is ever dropped here."""
    if "bench" not in name:
        raise HarnessError(f"refusing to use database {name!r}: its name must contain 'bench'")
    with admin_connection() as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and reload:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
            return True
    return False


def django_on(name: str) -> None:
    """Set Django up in this process on the PostgreSQL database ``name`` (the benchmarks that time
    queries and the test client in-process): production settings, debug off so that no query log
    grows in memory, no ``.env`` read."""
    import tempfile

    os.environ["POSTGRES_DB"] = name
    os.environ.setdefault("POSTGRES_USER", "postgres")
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-not-a-secret")
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver,localhost"
    os.environ["DJANGO_DEBUG"] = "false"
    os.environ["MEDIASTORE_ENV_FILE"] = ""
    os.environ.setdefault("DJANGO_STATIC_ROOT", tempfile.mkdtemp(prefix="bench-static-"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediastore.settings")
    import django

    django.setup()
