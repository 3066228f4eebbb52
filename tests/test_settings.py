"""Settings come from the environment and fail loudly at start-up when they are wrong."""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError

ROOT = Path(__file__).resolve().parent.parent
PRINT = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.DEBUG, s.DATABASES['default']['ENGINE'])"
)


def run_settings(tmp_path, code: str = PRINT, **env):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "POSTGRES_", "MEDIASTORE_"))}
    base.update(
        DJANGO_SETTINGS_MODULE="mediastore.settings",
        MEDIASTORE_DATA_DIR=str(tmp_path),
        MEDIASTORE_ENV_FILE="",
    )
    base.update(env)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=base, capture_output=True, text=True)


@pytest.mark.parametrize(
    "word,expected", [("false", "False"), ("False", "False"), ("0", "False"), ("true", "True")]
)
def test_debug_is_parsed_as_a_boolean(tmp_path, word, expected):
    """The earlier server treated the string "false" as on."""
    result = run_settings(tmp_path, DJANGO_DEBUG=word, DJANGO_SECRET_KEY="k")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == expected


def test_unknown_debug_word_stops_start_up(tmp_path):
    result = run_settings(tmp_path, DJANGO_DEBUG="maybe", DJANGO_SECRET_KEY="k")
    assert result.returncode != 0
    assert "DJANGO_DEBUG='maybe' is not a boolean" in result.stderr


def test_no_secret_key_with_debug_off_stops_start_up(tmp_path):
    result = run_settings(tmp_path, DJANGO_DEBUG="false")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr
    assert run_settings(tmp_path).returncode != 0  # debug is off by default


def test_sqlite_by_default_postgres_when_postgres_db_is_set(tmp_path):
    assert "sqlite" in run_settings(tmp_path, DJANGO_SECRET_KEY="k").stdout
    assert (tmp_path / "db.sqlite3").parent.is_dir()
    assert "postgresql" in run_settings(tmp_path, DJANGO_SECRET_KEY="k", POSTGRES_DB="x").stdout


def test_env_file_is_read_without_overriding_the_environment(tmp_path):
    env_file = tmp_path / "test.env"
    env_file.write_text('# comment\nDJANGO_DEBUG="true"\nDJANGO_SECRET_KEY=from-file\n')
    result = run_settings(tmp_path, MEDIASTORE_ENV_FILE=str(env_file))
    assert result.stdout.split()[0] == "True"
    result = run_settings(tmp_path, MEDIASTORE_ENV_FILE=str(env_file), DJANGO_DEBUG="false")
    assert result.stdout.split()[0] == "False"


HOSTILE_ENV = (
    "DJANGO_DEBUG=true\nDJANGO_SECRET_KEY=from-a-developers-env\nPOSTGRES_DB=hostile\n"
    "WEB_CONCURRENCY=7\nMEDIASTORE_HOSTILE=read\n"
)
PROJECT_PARTS = [*django_settings.PROJECT_APPS, "tests", "gunicorn.conf.py"]


def project_copy_with_hostile_env(tmp_path: Path) -> Path:
    """A copy of the project whose ``.env`` (beside manage.py, where bin/dev writes it) turns debug
    on, sets a secret key, PostgreSQL and 7 gunicorn workers."""
    copy = tmp_path / "project"
    copy.mkdir()
    for part in PROJECT_PARTS:
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, copy / part)
    (copy / ".env").write_text(HOSTILE_ENV)
    return copy


def run_in(copy: Path, code: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "POSTGRES_", "MEDIASTORE_"))}
    base.pop("WEB_CONCURRENCY", None)
    base.update(env)
    return subprocess.run([sys.executable, "-c", code], cwd=copy, env=base, capture_output=True, text=True)


def test_every_package_of_the_project_is_an_installed_app_in_the_import_contract():
    """settings.PROJECT_APPS is the one list of the project's apps (Django's INSTALLED_APPS, the
    copies below, tests/test_layers.py use it): it must name every top-level package of the
    repository (tests/ aside), and so must pyproject.toml's import-linter contract and package list.

    Regression: this module kept its own list, which lacked ``events``, ``importer`` and ``status``."""
    on_disk = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert set(django_settings.PROJECT_APPS) == on_disk
    assert set(django_settings.PROJECT_APPS) <= set(django_settings.INSTALLED_APPS)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert set(pyproject["tool"]["importlinter"]["root_packages"]) == on_disk
    for contract in pyproject["tool"]["importlinter"]["contracts"]:
        named = contract.get("layers", contract.get("ancestors", []))
        assert {app.strip() for entry in named for app in entry.split("|")} == on_disk, contract["name"]
    packaged = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    assert set(packaged) == {f"{app}*" for app in on_disk}


def test_a_project_copy_runs_its_own_apps(tmp_path):
    """The copies the tests below make hold every app: none is imported from the checkout instead
    (the editable install would find one that is missing, and a test would pass without it)."""
    copy = project_copy_with_hostile_env(tmp_path)
    code = (
        "import django; django.setup(); from django.apps import apps; "
        "print('\\n'.join(f'{a.name} {a.path}' for a in apps.get_app_configs()))"
    )
    result = run_in(copy, code, DJANGO_SETTINGS_MODULE="tests.settings")
    assert result.returncode == 0, result.stderr
    paths = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert set(django_settings.PROJECT_APPS) <= paths.keys()
    for app in django_settings.PROJECT_APPS:
        assert Path(paths[app]) == copy / app


def test_empty_env_file_variable_means_no_file(tmp_path):
    """Regression: ``MEDIASTORE_ENV_FILE=`` (empty) was taken as unset, so the settings still read
    the ``.env`` that bin/dev writes, and bin/test failed after bin/dev (debug on, a secret key)."""
    copy = project_copy_with_hostile_env(tmp_path)
    show = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.BASE_DIR, s.DEBUG, s.SECRET_KEY, s.DATABASES['default']['ENGINE'].rpartition('.')[2])"
    )
    common = {"DJANGO_SETTINGS_MODULE": "mediastore.settings", "MEDIASTORE_DATA_DIR": str(tmp_path)}
    # Unset: the project's .env is read (the copy is really the project that runs).
    read = run_in(copy, show, **common)
    assert read.returncode == 0, read.stderr
    assert read.stdout.split() == [str(copy), "True", "from-a-developers-env", "postgresql_backend"]
    # Empty: no file at all, so debug is off and, without a secret key, start-up stops.
    ignored = run_in(copy, show, MEDIASTORE_ENV_FILE="", **common)
    assert ignored.returncode != 0 and "DJANGO_SECRET_KEY is not set" in ignored.stderr
    ignored = run_in(copy, show, MEDIASTORE_ENV_FILE="", DJANGO_SECRET_KEY="k", **common)
    assert ignored.stdout.split() == [str(copy), "False", "k", "sqlite_backend"]

    gunicorn = "import runpy; print(runpy.run_path('gunicorn.conf.py')['workers'])"
    assert run_in(copy, gunicorn).stdout.strip() == "7"
    assert run_in(copy, gunicorn, MEDIASTORE_ENV_FILE="").stdout.strip() == "2"


def test_the_test_settings_never_read_a_developers_env(tmp_path):
    """The suite's own settings (and every subprocess that inherits their environment, such as the
    gunicorn servers of the deployment tests) ignore the .env beside manage.py."""
    copy = project_copy_with_hostile_env(tmp_path)
    code = (
        "import os, django; django.setup(); from django.conf import settings as s; "
        "print(s.BASE_DIR, s.DEBUG, s.DATABASES['default']['ENGINE'].rpartition('.')[2], "
        "repr(os.environ['MEDIASTORE_ENV_FILE']), 'MEDIASTORE_HOSTILE' in os.environ)"
    )
    result = run_in(copy, code, DJANGO_SETTINGS_MODULE="tests.settings")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(copy), "False", "sqlite_backend", "''", "False"]


def test_bad_numbers_stop_start_up(tmp_path):
    result = run_settings(tmp_path, DJANGO_SECRET_KEY="k", MEDIASTORE_MAX_UPLOAD_MB="lots")
    assert result.returncode != 0 and "MEDIASTORE_MAX_UPLOAD_MB='lots' is not a whole number" in result.stderr


@pytest.mark.django_db
def test_ensure_superuser_is_idempotent(django_user_model, settings, capsys):
    settings.MEDIASTORE_SUPERUSER = {"username": "root", "password": "pw-1", "email": "root@example.org"}
    call_command("ensure_superuser")
    call_command("ensure_superuser")
    assert "superuser 'root': created" in capsys.readouterr().out.splitlines()[0]
    user = django_user_model.objects.get(username="root")
    assert user.is_superuser and user.is_staff and user.check_password("pw-1")
    assert django_user_model.objects.count() == 1
    settings.MEDIASTORE_SUPERUSER = {**settings.MEDIASTORE_SUPERUSER, "password": "pw-2"}
    call_command("ensure_superuser")
    user.refresh_from_db()
    assert user.check_password("pw-2")


@pytest.mark.django_db
def test_ensure_serviceuser_from_flags(django_user_model, settings):
    settings.MEDIASTORE_SERVICEUSER = {"username": "", "password": "", "email": "", "groups": []}
    call_command("ensure_serviceuser", "--username", "svc", "--password", "pw")
    call_command("ensure_serviceuser", "--username", "svc", "--password", "pw")
    user = django_user_model.objects.get(username="svc")
    assert user.is_active and not user.is_staff and not user.is_superuser and user.check_password("pw")
    with pytest.raises(CommandError, match="PASSWORD"):
        call_command("ensure_serviceuser", "--username", "svc2")


def test_every_variable_the_code_reads_is_documented_in_dotenv():
    """dotenv is the public list of settings: a variable read in code but missing there is a defect."""
    import re

    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / "dotenv").read_text(), re.M))
    sources = [ROOT / "mediastore" / "settings.py", ROOT / "gunicorn.conf.py"]
    read = set()
    for source in sources:
        read |= set(re.findall(r'env\.get_\w+\(\s*"([A-Z][A-Z0-9_]+)"', source.read_text()))
        read |= set(re.findall(r'os\.environ(?:\.get)?[\[(]\s*"([A-Z][A-Z0-9_]+)"', source.read_text()))
    read -= {"http_proxy", "https_proxy"}
    assert len(read) > 20
    assert read - documented == set()


def ram_dir(tmp_path, **env) -> str:
    code = "import django; django.setup(); from django.conf import settings as s; print(s.MEDIASTORE_RAM_DIR)"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "POSTGRES_", "MEDIASTORE_"))}
    base.update(DJANGO_SETTINGS_MODULE="mediastore.settings", MEDIASTORE_ENV_FILE="", DJANGO_SECRET_KEY="k")
    base.update(MEDIASTORE_DATA_DIR=str(tmp_path), **env)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=base, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_ram_store_directory_is_named_after_the_deployment(tmp_path):
    """Two deployments on one host (other data directory or other database) never share RAM store
    objects; the workers of one deployment always compute the same directory."""
    one, other = tmp_path / "one", tmp_path / "other"
    default = ram_dir(one)
    assert default == ram_dir(one)
    assert default.startswith("/dev/shm/mediastore-ram-" if Path("/dev/shm").is_dir() else "/")
    assert ram_dir(other) != default
    assert ram_dir(one, POSTGRES_DB="a") != ram_dir(one, POSTGRES_DB="b")
    assert ram_dir(one, MEDIASTORE_RAM_DIR=str(tmp_path / "mine")) == str(tmp_path / "mine")
    assert not Path(default).exists()  # naming it creates nothing


def test_the_accounts_come_from_the_environment_through_settings(tmp_path):
    """ensure_superuser/ensure_serviceuser read settings (which read the environment and .env once,
    in mediastore/settings.py), not os.environ on their own."""
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.MEDIASTORE_SUPERUSER['username'], s.MEDIASTORE_SERVICEUSER['groups'])"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "POSTGRES_", "MEDIASTORE_"))}
    base.update(DJANGO_SETTINGS_MODULE="mediastore.settings", MEDIASTORE_ENV_FILE="", DJANGO_SECRET_KEY="k")
    base.update(
        MEDIASTORE_DATA_DIR=str(tmp_path),
        DJANGO_SUPERUSER_USERNAME=" boss ",
        DJANGO_SERVICEUSER_GROUPS="readers, writers",
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=base, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "boss ['readers', 'writers']"
