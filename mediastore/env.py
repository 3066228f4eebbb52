"""Reading configuration from the environment, strictly.

Values that cannot be parsed stop the server at start-up with a sentence naming the variable,
instead of being guessed at (the earlier server took the string "false" for true).
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def load_dotenv(path: Path) -> None:
    """Load ``KEY=VALUE`` lines from ``path`` into os.environ, never overriding what is set.

    Blank lines and ``#`` comments are skipped; one pair of matching quotes around a value is removed.
    """
    if not path.is_file():
        return
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        name = name.removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        os.environ.setdefault(name, value)


def env_file(default: Path) -> Path | None:
    """The settings file to read: ``MEDIASTORE_ENV_FILE`` when set, ``default`` when unset, and
    none at all when it is set but empty (``MEDIASTORE_ENV_FILE=``), as the tests and the
    deployment tests use to keep a developer's ``.env`` out of their servers."""
    raw = os.environ.get("MEDIASTORE_ENV_FILE")
    if raw is None:
        return default
    raw = raw.strip()
    return Path(raw) if raw else None


def get_str(name: str, default: str = "") -> str:
    """The variable's value; an unset or empty one (``NAME=`` as in the dotenv template) is the default."""
    return os.environ.get(name, "").strip() or default


def get_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use true or false")


def get_int(name: str, default: int | None, minimum: int = 0) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}")
    return value


def get_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]
