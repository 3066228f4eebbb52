"""Reading the earlier server's database, read-only, with plain SQL.

The earlier server (Django app label ``mediastore``, Django's default table names) generated its
migrations at start-up, so a database may lack some of them; this module reads the tables that are
there (never the migration records) and says which optional ones are missing. The same queries run
on SQLite (opened with ``mode=ro``) and PostgreSQL (``default_transaction_read_only=on``).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from django.utils.dateparse import parse_datetime

REQUIRED_TABLES = ("mediastore_media", "mediastore_storeconfig")
OPTIONAL_TABLES = (
    "mediastore_identifiertype",
    "mediastore_s3config",
    "mediastore_historicalmedia",
    "taggit_tag",
    "taggit_taggeditem",
    "django_content_type",
    "auth_user",
    "authtoken_token",
)


class SourceError(Exception):
    """The source cannot be opened or lacks a table no import can do without."""


@dataclass
class OldUser:
    id: int
    username: str
    password: str
    is_superuser: bool
    is_staff: bool
    is_active: bool
    email: str
    first_name: str
    last_name: str
    date_joined: dt.datetime | None
    last_login: dt.datetime | None


@dataclass
class OldHistory:
    media_id: int
    history_id: int
    pid: str
    pid_type: str
    store_config_id: int | None
    store_key: str
    store_status: str
    identifiers: Any
    metadata: Any
    date: dt.datetime
    reason: str | None
    type: str
    user_id: int | None


@dataclass
class OldMedia:
    id: int
    pid: str
    pid_type: str
    store_config_id: int
    store_key: str
    store_status: str
    identifiers: Any
    metadata: Any
    tags: list[str] = field(default_factory=list)


@dataclass
class Snapshot:
    """Everything read from the source, in plain Python values."""

    identifier_types: list[tuple[str, str]]
    s3_configs: dict[int, tuple[str, str, str]]  # id -> (url, access key, secret key)
    store_configs: dict[int, tuple[str, str, int | None]]  # id -> (type, bucket, s3cfg id)
    media: list[OldMedia]
    history: dict[int, list[OldHistory]]  # old media id -> rows in history_id order
    users: dict[int, OldUser]
    tokens: list[tuple[str, int, dt.datetime | None]]  # (key, user id, created)
    missing_tables: list[str]


def _json(value: Any) -> Any:
    """A JSON column's value: text on SQLite, already decoded on PostgreSQL."""
    if isinstance(value, str | bytes):
        return json.loads(value)
    return value


def _time(value: Any) -> dt.datetime | None:
    """A datetime column's value, timezone-aware (Django keeps naive UTC text in SQLite)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_datetime(value)
        if value is None:
            return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


class Source:
    """A read-only connection to the earlier server's database, from a URL:
    ``sqlite:///abs/path/db.sqlite3`` or ``postgres://user:pass@host:port/db``."""

    def __init__(self, url: str) -> None:
        self.url = url
        parts = urlsplit(url)
        if parts.scheme == "sqlite":
            # sqlite:///abs/path and SQLAlchemy's sqlite:////abs/path both name /abs/path.
            path = Path("/" + unquote(parts.netloc + parts.path).lstrip("/"))
            if not path.is_file():
                raise SourceError(f"no SQLite database at {path}")
            self.vendor = "sqlite"
            try:
                self.conn: Any = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
                self.conn.execute("SELECT 1 FROM sqlite_master").fetchall()
            except sqlite3.Error as exc:
                raise SourceError(f"cannot open {path} read-only: {exc}") from None
        elif parts.scheme in ("postgres", "postgresql"):
            import psycopg

            self.vendor = "postgresql"
            try:
                options = "-c default_transaction_read_only=on"
                self.conn = psycopg.connect(url, options=options, connect_timeout=10)
                # Every kind is read in one transaction that sees one snapshot (and can write nothing).
                self.conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                self.conn.read_only = True
            except psycopg.Error as exc:
                raise SourceError(f"cannot connect to {self.safe_url}: {exc}") from None
        else:
            raise SourceError(f"--source must be sqlite:///path or postgres://..., got {self.safe_url}")
        self.tables = self._tables()
        missing = [name for name in REQUIRED_TABLES if name not in self.tables]
        if missing:
            names = ", ".join(missing)
            raise SourceError(f"{self.safe_url} has no table {names}: is it the earlier server's database?")

    @property
    def safe_url(self) -> str:
        """The URL without its password, for messages."""
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        return self.url.replace(f":{parts.password}@", ":***@", 1)

    def close(self) -> None:
        self.conn.close()

    def _tables(self) -> set[str]:
        if self.vendor == "sqlite":
            sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
        else:
            sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        return {row[0] for row in self.rows(sql)}

    def rows(self, sql: str, params: tuple = ()) -> Iterator[tuple]:
        if self.vendor == "postgresql":
            sql = sql.replace("?", "%s")
        cursor = self.conn.cursor()
        try:
            cursor.execute(sql, params)
            yield from cursor
        finally:
            cursor.close()

    def has(self, table: str) -> bool:
        return table in self.tables

    # -- the kinds -------------------------------------------------------------------------------

    def read(self) -> Snapshot:
        """Read every kind at once (one consistent transaction on PostgreSQL)."""
        stores = "SELECT id, type, bucket, s3cfg_id FROM mediastore_storeconfig ORDER BY id"
        return Snapshot(
            identifier_types=self.identifier_types(),
            s3_configs=self.s3_configs(),
            store_configs={row[0]: (row[1], row[2], row[3]) for row in self.rows(stores)},
            media=self.media(),
            history=self.history(),
            users=self.users(),
            tokens=self.tokens(),
            missing_tables=[name for name in OPTIONAL_TABLES if not self.has(name)],
        )

    def identifier_types(self) -> list[tuple[str, str]]:
        if not self.has("mediastore_identifiertype"):
            return []
        sql = "SELECT name, pattern FROM mediastore_identifiertype ORDER BY id"
        return [(name, pattern or "") for name, pattern in self.rows(sql)]

    def s3_configs(self) -> dict[int, tuple[str, str, str]]:
        if not self.has("mediastore_s3config"):
            return {}
        sql = "SELECT id, url, access_key, secret_key FROM mediastore_s3config ORDER BY id"
        return {row[0]: (row[1], row[2], row[3]) for row in self.rows(sql)}

    def tags(self) -> dict[int, list[str]]:
        """Tag names per old media id, of the tagged items that point at ``mediastore | media``."""
        if not (self.has("taggit_tag") and self.has("taggit_taggeditem")):
            return {}
        sql = "SELECT i.object_id, t.name FROM taggit_taggeditem i JOIN taggit_tag t ON t.id = i.tag_id"
        params: tuple = ()
        if self.has("django_content_type"):
            sql += (
                " WHERE i.content_type_id IN (SELECT id FROM django_content_type"
                " WHERE app_label = 'mediastore' AND model = 'media')"
            )
        tags: dict[int, list[str]] = defaultdict(list)
        for object_id, name in self.rows(sql + " ORDER BY i.id", params):
            tags[int(object_id)].append(name)
        return tags

    def media(self) -> list[OldMedia]:
        tags = self.tags()
        sql = (
            "SELECT id, pid, pid_type, store_config_id, store_key, store_status, identifiers, metadata"
            " FROM mediastore_media ORDER BY id"
        )
        return [
            OldMedia(
                id=row[0],
                pid=row[1],
                pid_type=row[2],
                store_config_id=row[3],
                store_key=row[4] or "",
                store_status=row[5],
                identifiers=_json(row[6]),
                metadata=_json(row[7]),
                tags=tags.get(row[0], []),
            )
            for row in self.rows(sql)
        ]

    def history(self) -> dict[int, list[OldHistory]]:
        if not self.has("mediastore_historicalmedia"):
            return {}
        sql = (
            "SELECT id, history_id, pid, pid_type, store_config_id, store_key, store_status, identifiers,"
            " metadata, history_date, history_change_reason, history_type, history_user_id"
            " FROM mediastore_historicalmedia ORDER BY history_id"
        )
        history: dict[int, list[OldHistory]] = defaultdict(list)
        for row in self.rows(sql):
            history[row[0]].append(
                OldHistory(
                    media_id=row[0],
                    history_id=row[1],
                    pid=row[2],
                    pid_type=row[3],
                    store_config_id=row[4],
                    store_key=row[5] or "",
                    store_status=row[6],
                    identifiers=_json(row[7]),
                    metadata=_json(row[8]),
                    date=_time(row[9]),
                    reason=row[10],
                    type=row[11],
                    user_id=row[12],
                )
            )
        return dict(history)

    def users(self) -> dict[int, OldUser]:
        if not self.has("auth_user"):
            return {}
        sql = (
            "SELECT id, username, password, is_superuser, is_staff, is_active, email, first_name, last_name,"
            " date_joined, last_login FROM auth_user ORDER BY id"
        )
        return {
            row[0]: OldUser(
                id=row[0],
                username=row[1],
                password=row[2] or "",
                is_superuser=bool(row[3]),
                is_staff=bool(row[4]),
                is_active=bool(row[5]),
                email=row[6] or "",
                first_name=row[7] or "",
                last_name=row[8] or "",
                date_joined=_time(row[9]),
                last_login=_time(row[10]),
            )
            for row in self.rows(sql)
        }

    def tokens(self) -> list[tuple[str, int, dt.datetime | None]]:
        if not self.has("authtoken_token"):
            return []
        sql = "SELECT key, user_id, created FROM authtoken_token ORDER BY created"
        return [(key, user_id, _time(created)) for key, user_id, created in self.rows(sql)]
