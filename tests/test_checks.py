"""System checks (mediastore/checks.py, stores/checks.py) warn about production-looking settings
that do not hold up, and stay quiet otherwise."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks

from stores.models import StoreConfig

# The SQLite checks only read the engine's name; switching it does not touch the connection.
pytestmark = pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")


def ids(**kwargs) -> set[str]:
    return {message.id for message in run_checks(**kwargs)}


@pytest.fixture
def production_sqlite(settings, monkeypatch):
    settings.DEBUG = False
    settings.DATABASES = {**settings.DATABASES}
    settings.DATABASES["default"] = {**settings.DATABASES["default"], "ENGINE": "mediastore.sqlite_backend"}
    monkeypatch.delenv("POSTGRES_DB", raising=False)
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    return settings


def test_sqlite_with_several_workers_and_debug_off_warns(production_sqlite, monkeypatch):
    assert "mediastore.W001" in ids()  # gunicorn's default: 2 workers
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    [warning] = [m for m in run_checks() if m.id == "mediastore.W001"]
    assert "4 gunicorn workers" in warning.msg and "PostgreSQL" in warning.hint


def test_sqlite_with_one_worker_or_debug_on_or_postgresql_is_quiet(production_sqlite, monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "1")
    assert "mediastore.W001" not in ids()
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    production_sqlite.DEBUG = True
    assert "mediastore.W001" not in ids()
    production_sqlite.DEBUG = False
    production_sqlite.DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"
    assert "mediastore.W001" not in ids()


def test_an_empty_postgres_db_line_is_named(production_sqlite, monkeypatch):
    """Regression: dotenv's `POSTGRES_DB=` silently meant SQLite."""
    monkeypatch.setenv("POSTGRES_DB", "")
    assert "mediastore.W002" in ids()
    monkeypatch.delenv("POSTGRES_DB")
    assert "mediastore.W002" not in ids()


@pytest.mark.django_db
def test_ram_store_on_disk_without_redis_warns_only_when_one_is_configured(settings, tmp_path):
    from stores.checks import file_system_type

    settings.DEBUG = False
    settings.MEDIASTORE_REDIS_URL = ""
    settings.MEDIASTORE_RAM_DIR = tmp_path / "ram"
    disk = file_system_type(tmp_path)
    if disk in {"tmpfs", "ramfs"}:
        pytest.skip(f"the temp directory {tmp_path} is itself in RAM ({disk})")
    assert "stores.W002" not in ids(databases=["default"])  # no DictStore yet
    StoreConfig.objects.create(type="DictStore", bucket="scratch")
    assert "stores.W002" in ids(databases=["default"])
    assert "stores.W002" not in ids()  # without databases the table is not asked
    settings.MEDIASTORE_REDIS_URL = "redis://127.0.0.1:6379/0"
    assert "stores.W002" not in ids(databases=["default"])


@pytest.mark.django_db
def test_ram_store_directory_of_another_user_warns(settings, tmp_path, monkeypatch):
    import os

    settings.DEBUG = False
    settings.MEDIASTORE_REDIS_URL = ""
    settings.MEDIASTORE_RAM_DIR = tmp_path
    StoreConfig.objects.create(type="DictStore", bucket="scratch")
    monkeypatch.setattr(os, "geteuid", lambda: os.stat(tmp_path).st_uid + 1)
    assert "stores.W001" in ids(databases=["default"])


def test_file_system_type_of_dev_shm_is_tmpfs():
    from pathlib import Path

    from stores.checks import file_system_type

    if not Path("/dev/shm").is_dir():
        pytest.skip("no /dev/shm here")
    assert file_system_type(Path("/dev/shm/mediastore-ram-not-there-yet")) == "tmpfs"


def test_several_hosts_refuse_sqlite_and_warn_without_redis(production_sqlite, monkeypatch):
    """MEDIASTORE_HOSTS above 1 (docs/scaling.md): SQLite is one host's file (an error, so bin/start's
    migrate refuses to start); PostgreSQL without Redis counts logins per host (a warning)."""
    assert not {"mediastore.E002", "mediastore.W003"} & ids()
    production_sqlite.MEDIASTORE_HOSTS = 2
    [error] = [m for m in run_checks() if m.id == "mediastore.E002"]
    assert error.is_serious() and "MEDIASTORE_HOSTS is 2" in error.msg
    production_sqlite.DATABASES["default"]["ENGINE"] = "mediastore.postgresql_backend"
    production_sqlite.MEDIASTORE_REDIS_URL = ""
    assert ids() >= {"mediastore.W003"} and "mediastore.E002" not in ids()
    production_sqlite.MEDIASTORE_REDIS_URL = "redis://127.0.0.1:6379/0"
    assert not {"mediastore.E002", "mediastore.W003"} & ids()


@pytest.mark.django_db
def test_a_ram_store_without_redis_on_several_hosts_refuses_to_start(settings):
    settings.MEDIASTORE_REDIS_URL = ""
    settings.MEDIASTORE_HOSTS = 2
    assert "stores.E001" not in ids(databases=["default"])  # no RAM store configured
    StoreConfig.objects.create(type="DictStore", bucket="several-hosts")
    assert "stores.E001" in ids(databases=["default"])
    settings.MEDIASTORE_REDIS_URL = "redis://127.0.0.1:6379/0"
    assert "stores.E001" not in ids(databases=["default"])
    settings.MEDIASTORE_REDIS_URL = ""
    settings.MEDIASTORE_HOSTS = 1
    assert "stores.E001" not in ids(databases=["default"])
