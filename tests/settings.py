"""Settings for the test suite: the real settings, with test-only defaults filled in.

Everything still comes from the environment, so ``POSTGRES_DB=...`` runs the same suite on
PostgreSQL. Local data goes to a throw-away directory.
"""

import atexit
import os
import shutil
import tempfile

_data_dir = tempfile.mkdtemp(prefix="mediastore-tests-")
atexit.register(shutil.rmtree, _data_dir, ignore_errors=True)

os.environ["MEDIASTORE_ENV_FILE"] = ""  # a developer's .env must not steer the tests
os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-not-a-secret")
os.environ["MEDIASTORE_DATA_DIR"] = _data_dir  # never a real data directory
os.environ.pop("MEDIASTORE_STORAGE_ROOT", None)
os.environ["MEDIASTORE_RAM_DIR"] = os.path.join(_data_dir, "ram")  # not the host's /dev/shm

from mediastore.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The production storage needs collectstatic's manifest before any page can name a static file;
# the test client renders pages without one. Live-server tests (tests/deploy/) run bin/start, which
# collects with the real setting.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# WhiteNoise warns at every start of the middleware when the directory is missing.
STATIC_ROOT.mkdir(exist_ok=True)  # noqa: F405
# The SQLite test database lives in memory, one per process (so one per pytest-xdist worker), as
# Django makes it for its own sqlite3 engine. pytest-django knows that engine by its name only:
# for mediastore.sqlite_backend it named each xdist worker's database "test_<path>_gw0", a file
# that cannot be opened.
if DATABASES["default"]["ENGINE"] == "mediastore.sqlite_backend":  # noqa: F405
    DATABASES["default"].setdefault("TEST", {})["NAME"] = ":memory:"  # noqa: F405
