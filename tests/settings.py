"""Settings for the test suite: the real settings, with test-only defaults filled in.

Everything still comes from the environment, so ``POSTGRES_DB=...`` runs the same suite on
PostgreSQL. Local data goes to a throw-away directory.
"""

import os
import tempfile

os.environ["MEDIASTORE_ENV_FILE"] = ""  # a developer's .env must not steer the tests
os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-not-a-secret")
os.environ.setdefault("MEDIASTORE_DATA_DIR", tempfile.mkdtemp(prefix="mediastore-tests-"))
os.environ.pop("MEDIASTORE_STORAGE_ROOT", None)

from mediastore.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
