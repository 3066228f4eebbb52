"""The settings file docs/production.md gives for a bare-metal installation: every line explained,
every variable known to ``dotenv``, and ``manage.py check --deploy`` silent with it."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from cryptography.fernet import Fernet

from tests.deploy.test_config_files import documented
from tests.support.processes import REPO

DOCS = REPO / "docs" / "production.md"
HEADER = "# /etc/mediastore/mediastore.env"


def settings_block() -> dict[str, str]:
    """The ``KEY=value`` lines of the fenced block that starts with the settings file's path."""
    text = DOCS.read_text()
    block = re.search(r"```sh\n" + re.escape(HEADER) + r"\n(.*?)```", text, flags=re.DOTALL)
    assert block, f"docs/production.md has no block starting {HEADER!r}"
    lines = [line for line in block.group(1).splitlines() if line.strip()]
    pairs = dict(line.split("=", 1) for line in lines)
    assert len(pairs) == len(lines) > 10
    return pairs


def explained() -> str:
    """The first cells of the table that follows the block, joined."""
    text = DOCS.read_text()
    after = text[text.index(HEADER) :]
    table = re.search(r"\| variable \| why \|\n\|[-|]+\|\n((?:\|.*\|\n)+)", after)
    assert table
    return "\n".join(row.split("|")[1] for row in table.group(1).splitlines())


def test_every_setting_is_explained_and_known_to_dotenv():
    cells = explained()
    for name in settings_block():
        prefix = re.sub(r"_[A-Z]+$", "_*", name)  # DJANGO_SUPERUSER_PASSWORD -> DJANGO_SUPERUSER_*
        assert f"`{name}`" in cells or f"`{prefix}`" in cells, f"{name} has no reason in the table"
        assert name in documented(), f"{name} is not in dotenv"


def filled(value: str, name: str) -> str:
    """A value for a ``<...>`` placeholder, of the kind the docs tell the operator to make."""
    if not value.startswith("<"):
        return value
    if name == "DJANGO_SECRET_KEY":
        import secrets

        return secrets.token_urlsafe(50)
    if name == "MEDIASTORE_FIELD_KEYS":
        return Fernet.generate_key().decode()
    if name.endswith("EMAIL"):
        return "ops@example.org"
    return "a-password-for-the-test"


def check_deploy(tmp_path, settings: dict[str, str]) -> subprocess.CompletedProcess:
    """``manage.py check --deploy --fail-level WARNING`` with only ``settings`` (as a file named by
    MEDIASTORE_ENV_FILE, as the docs run it), nothing from the test run's own environment."""
    env_file = tmp_path / "mediastore.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    ours = ("DJANGO_", "MEDIASTORE_", "POSTGRES_", "GUNICORN_", "WEB_CONCURRENCY")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.update(MEDIASTORE_ENV_FILE=str(env_file), DJANGO_SETTINGS_MODULE="mediastore.settings")
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_silent_with_the_documented_settings(tmp_path):
    done = check_deploy(tmp_path, {k: filled(v, k) for k, v in settings_block().items()})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues (1 silenced)." in done.stdout, done.stdout + done.stderr


def test_check_deploy_still_warns_without_them(tmp_path):
    """Guards the test above: dropping the HTTPS lines brings Django's warnings back."""
    settings = {k: filled(v, k) for k, v in settings_block().items()}
    for name in ("DJANGO_SECURE_SSL_REDIRECT", "DJANGO_SECURE_HSTS_SECONDS"):
        del settings[name]
    done = check_deploy(tmp_path, settings)
    assert done.returncode != 0
    assert "security.W004" in done.stderr and "security.W008" in done.stderr, done.stderr
