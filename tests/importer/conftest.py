"""An earlier server's site (database, files, S3 objects) to import, on SQLite or PostgreSQL."""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.contrib.auth.hashers import make_password

from tests.importer.earlier import EarlierDatabase

OLD_TOKEN = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"
ADMIN_PASSWORD = "old admin password"
SERVICE_PASSWORD = "old service password"
T0 = dt.datetime(2024, 3, 1, 10, 0, tzinfo=dt.UTC)
# The earlier server's default hasher; ours accepts it too (the test settings add it, see the tests).
OLD_HASHER = "pbkdf2_sha256"


@dataclass
class EarlierSite:
    url: str
    old_root: Path  # where the earlier server kept its local stores
    unmapped: str
    bytes: dict[str, bytes] = field(default_factory=dict)  # pid -> content of READY media
    keys: dict[str, str] = field(default_factory=dict)  # pid -> store key


def _connect(vendor: str, tmp_path: Path, request):
    if vendor == "sqlite":
        path = tmp_path / "earlier.sqlite3"
        conn = sqlite3.connect(path)
        return conn, f"sqlite://{path}"
    import psycopg

    from tests.support.servers import ThrowAwayDatabase

    database = ThrowAwayDatabase()
    database.create()
    request.addfinalizer(database.drop)
    p = database.params
    conn = psycopg.connect(dbname=database.name, **p)
    request.addfinalizer(conn.close)
    auth = f"{p['user']}:{p['password']}@" if p["password"] else f"{p['user']}@"
    return conn, f"postgres://{auth}{p['host']}:{p['port']}/{database.name}"


def build_site(vendor: str, tmp_path: Path, request, s3_server, bucket: str) -> EarlierSite:
    """Two users (a superuser, a service user with a token), four identifier types (one with a
    pattern RE2 refuses), an S3 config, five store configs (filesystem with files, SQLite store,
    S3 BucketStore, DictStore, a filesystem store nobody maps), seven media with shared tags, and a
    history with updates and a deleted media."""
    conn, url = _connect(vendor, tmp_path, request)
    db = EarlierDatabase(conn, vendor)
    old_root = tmp_path / "old-server"
    files, sqlite_file = old_root / "files", old_root / "objects.sqlite3"
    files.mkdir(parents=True)
    site = EarlierSite(url=url, old_root=old_root, unmapped="/var/lib/elsewhere/store")

    media_type = db.insert("django_content_type", app_label="mediastore", model="media")
    user_type = db.insert("django_content_type", app_label="auth", model="user")
    admin = db.insert(
        "auth_user",
        username="admin",
        password=make_password(ADMIN_PASSWORD, hasher=OLD_HASHER),
        is_superuser=True,
        is_staff=True,
        is_active=True,
        email="admin@example.org",
        first_name="",
        last_name="",
        date_joined=T0,
    )
    service = db.insert(
        "auth_user",
        username="svc",
        password=make_password(SERVICE_PASSWORD, hasher=OLD_HASHER),
        is_superuser=False,
        is_staff=False,
        is_active=True,
        email="",
        first_name="Instrument",
        last_name="Pipeline",
        date_joined=T0,
    )
    db.insert("authtoken_token", key=OLD_TOKEN, user_id=service, created=T0)
    # A tagged item of another model with the id of a media: must not become that media's tag.
    db.tag("not-a-media-tag", object_id=1, content_type=user_type)

    for name, pattern in [("local", ""), ("bin", r"D\d{8}T\d{6}_IFCB\d{3}"), ("sample", r"S(?=\d)\d+")]:
        db.insert("mediastore_identifiertype", name=name, pattern=pattern)
    s3cfg = db.insert(
        "mediastore_s3config", url=s3_server.url, access_key="old-access", secret_key="old-secret"
    )
    fs = db.insert("mediastore_storeconfig", type="FilesystemStore", bucket=str(files), s3cfg_id=None)
    sq = db.insert("mediastore_storeconfig", type="SqliteStore", bucket=str(sqlite_file), s3cfg_id=None)
    s3 = db.insert("mediastore_storeconfig", type="BucketStore", bucket=bucket, s3cfg_id=s3cfg)
    ram = db.insert("mediastore_storeconfig", type="DictStore", bucket="ram", s3cfg_id=None)
    lost = db.insert("mediastore_storeconfig", type="FilesystemStore", bucket=site.unmapped, s3cfg_id=None)

    store_objects = sqlite3.connect(sqlite_file)
    store_objects.execute("CREATE TABLE IF NOT EXISTS objects (key TEXT PRIMARY KEY, data BLOB)")
    specs = [
        # pid, pid_type, store, status, identifiers, metadata, tags, bytes (None: none stored)
        (
            "D20240301T100000_IFCB001",
            "bin",
            fs,
            "READY",
            {"sample": "S17"},
            {"cruise": {"leg": 2}},
            ["plankton", "shared"],
            b"\x00ifcb roi bytes\xff" * 100,
        ),
        ("fs-missing", "local", fs, "READY", {}, {}, ["shared"], None),
        ("in-sqlite", "local", sq, "READY", {}, {"n": 3}, [], b"sqlite store bytes"),
        (
            "on-s3",
            "local",
            s3,
            "READY",
            {"bin": "D20240301T100000_IFCB002"},
            {},
            ["shared", "s3"],
            b"s3 bytes",
        ),
        ("in-ram", "local", ram, "READY", {}, {}, [], None),
        ("fs-pending", "local", fs, "PENDING", {}, {"draft": True}, [], None),
        ("lost-store", "local", lost, "READY", {}, {}, [], None),
    ]
    for number, (pid, pid_type, store, status, identifiers, metadata, tags, content) in enumerate(specs):
        key = f"0000000{number}-58cc-4372-a567-0e02b2c3d479"
        media_id = db.media(
            pid=pid,
            pid_type=pid_type,
            store=store,
            store_key=key,
            status=status,
            identifiers=identifiers,
            metadata=metadata,
            tags=tags,
            media_type=media_type,
        )
        state = dict(
            pid=pid,
            pid_type=pid_type,
            store_config_id=store,
            store_key=key,
            identifiers=identifiers,
        )
        created = T0 + dt.timedelta(minutes=number)
        if pid == "D20240301T100000_IFCB001":  # created PENDING, uploaded, then recalibrated
            db.history(media_id, "+", created, admin, store_status="PENDING", metadata={}, **state)
            db.history(
                media_id,
                "~",
                created + dt.timedelta(seconds=5),
                admin,
                store_status="READY",
                metadata={},
                **state,
            )
            db.history(
                media_id,
                "~",
                created + dt.timedelta(days=3),
                service,
                "recalibrated",
                store_status="READY",
                metadata=metadata,
                **state,
            )
        else:
            db.history(media_id, "+", created, service, store_status=status, metadata=metadata, **state)
        site.keys[pid] = key
        if content is None:
            continue
        site.bytes[pid] = content
        if store == fs:
            (files / key).write_bytes(content)
        elif store == sq:
            store_objects.execute("INSERT INTO objects (key, data) VALUES (?, ?)", (key, content))
        elif store == s3:
            s3_server.client().put_object(Bucket=bucket, Key=key, Body=content)
    store_objects.commit()
    store_objects.close()

    # A media created, renamed and deleted: only its history is left.
    gone = dict(
        pid_type="local",
        store_config_id=fs,
        store_key="deleted-key",
        store_status="PENDING",
        identifiers={},
        metadata={},
    )
    db.history(999, "+", T0, service, pid="gone-before", **gone)
    db.history(999, "~", T0 + dt.timedelta(hours=1), service, "renamed", pid="gone", **gone)
    db.history(999, "-", T0 + dt.timedelta(hours=2), admin, pid="gone", **gone)
    db.commit()
    return site


@pytest.fixture(params=["sqlite", "postgresql"])
def earlier_site(request, tmp_path, s3_server, s3_bucket, settings) -> EarlierSite:
    # Ours accepts the earlier server's PBKDF2 hashes (the test settings keep only MD5, for speed).
    settings.PASSWORD_HASHERS = [
        *settings.PASSWORD_HASHERS,
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]
    settings.MEDIASTORE_STORAGE_ROOT = tmp_path / "stores"  # our local stores, fresh for each test
    return build_site(request.param, tmp_path, request, s3_server, s3_bucket)
