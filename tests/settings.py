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
