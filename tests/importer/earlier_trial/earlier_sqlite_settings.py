# The earlier server's own settings, with its SQLite file under $WORK instead of /db/db.sqlite3.
import os

from config.settings import *  # noqa: F403

DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": f"{os.environ['WORK']}/sqlite/db.sqlite3"}
}
