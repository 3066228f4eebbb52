"""Settings, all read from the environment (names as in the ``dotenv`` template).

A ``.env`` file beside ``manage.py`` (or the file named by ``MEDIASTORE_ENV_FILE``; empty: none)
is read first, without overriding variables already set.
Development defaults are safe: debug is off unless ``DJANGO_DEBUG=true``, and with debug off the
server refuses to start without ``DJANGO_SECRET_KEY``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from mediastore import env
from mediastore.crypto import parse_keys as field_keys_parse
from mediastore.failpoints import parse as failpoints_parse
from mediastore.forwarded import DEFAULT_TRUSTED_PROXIES
from mediastore.logs import django_logging

BASE_DIR = Path(__file__).resolve().parent.parent
_env_file = env.env_file(BASE_DIR / ".env")
if _env_file is not None:
    env.load_dotenv(_env_file)

DEBUG = env.get_bool("DJANGO_DEBUG", False)

SECRET_KEY = env.get_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it (e.g. in .env) to a long random string; "
            "only with DJANGO_DEBUG=true does the server run with a throw-away development key."
        )
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env.get_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.get_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
for _origin in CSRF_TRUSTED_ORIGINS:
    if "://" not in _origin:
        raise ImproperlyConfigured(
            f"DJANGO_CSRF_TRUSTED_ORIGINS entry {_origin!r} needs a scheme, e.g. https://{_origin}"
        )

MEDIASTORE_DATA_DIR = Path(env.get_str("MEDIASTORE_DATA_DIR", str(BASE_DIR / "data"))).resolve()
MEDIASTORE_STORAGE_ROOT = Path(
    env.get_str("MEDIASTORE_STORAGE_ROOT", str(MEDIASTORE_DATA_DIR / "stores"))
).resolve()
# Keys encrypting S3 secret keys in the database, newest first (mediastore/crypto.py); empty: a key
# derived from SECRET_KEY.
try:
    MEDIASTORE_FIELD_KEYS = field_keys_parse(env.get_str("MEDIASTORE_FIELD_KEYS"))
except ValueError as exc:
    raise ImproperlyConfigured(f"MEDIASTORE_FIELD_KEYS: {exc}") from None
MEDIASTORE_TOKEN_TTL_HOURS = env.get_int("MEDIASTORE_TOKEN_TTL_HOURS", None, minimum=1)
MEDIASTORE_PRESIGN_SECONDS = env.get_int("MEDIASTORE_PRESIGN_SECONDS", 3600, minimum=1)
# Replicas (content.replication): whether the worker rewrites BAD and MISSING copies from a GOOD one,
# and how long a worker's claim on a copy lasts without renewal (a killed worker's is taken over then).
MEDIASTORE_AUTO_REPAIR = env.get_bool("MEDIASTORE_AUTO_REPAIR", True)
MEDIASTORE_REPLICA_LEASE_SECONDS = env.get_int("MEDIASTORE_REPLICA_LEASE_SECONDS", 300, minimum=2)
# S3 direct multipart uploads: how many part URLs POST /api/upload lists at once (more on request).
MEDIASTORE_MULTIPART_URLS = env.get_int("MEDIASTORE_MULTIPART_URLS", 1000, minimum=1)
# manage.py prune_events deletes change events older than this.
MEDIASTORE_EVENTS_RETENTION_DAYS = env.get_int("MEDIASTORE_EVENTS_RETENTION_DAYS", 30, minimum=0)
# Long polls of /api/events (?wait=) allowed to wait at once per server process (docs/events.md).
MEDIASTORE_EVENTS_WAITERS = env.get_int("MEDIASTORE_EVENTS_WAITERS", 2, minimum=0)
# manage.py relay_events publishes the change events to this RabbitMQ (unset: no relay; then
# prune_events also deletes events no relay published yet).
MEDIASTORE_AMQP_URL = env.get_str("MEDIASTORE_AMQP_URL")
if MEDIASTORE_AMQP_URL and not MEDIASTORE_AMQP_URL.startswith(("amqp://", "amqps://")):
    raise ImproperlyConfigured("MEDIASTORE_AMQP_URL must be an amqp:// or amqps:// URL")
MEDIASTORE_AMQP_EXCHANGE = env.get_str("MEDIASTORE_AMQP_EXCHANGE", "mediastore")
# false: declare the exchange transient, as the AMPLIfy project's amqp-utils consumers do (their
# subscribe declares it non-durable and the broker refuses a durable one of the same name).
MEDIASTORE_AMQP_EXCHANGE_DURABLE = env.get_bool("MEDIASTORE_AMQP_EXCHANGE_DURABLE", True)
# Webhooks (events.webhooks): hosts that targets may name although they resolve to loopback,
# private, link-local or other non-public addresses, and that may be reached over plain http://
# (names match the URL's host exactly; addresses and networks match its resolved address).
MEDIASTORE_WEBHOOK_ALLOW_HOSTS = env.get_list("MEDIASTORE_WEBHOOK_ALLOW_HOSTS", [])
# Failed attempts (in a row) of one event before its subscription is paused, the first retry's wait
# (doubling each time, with jitter, up to the maximum), and the bounds of one attempt.
MEDIASTORE_WEBHOOK_MAX_ATTEMPTS = env.get_int("MEDIASTORE_WEBHOOK_MAX_ATTEMPTS", 10, minimum=1)
MEDIASTORE_WEBHOOK_BACKOFF_MS = env.get_int("MEDIASTORE_WEBHOOK_BACKOFF_MS", 10_000, minimum=1)
MEDIASTORE_WEBHOOK_BACKOFF_MAX_MS = env.get_int("MEDIASTORE_WEBHOOK_BACKOFF_MAX_MS", 3_600_000, minimum=1)
MEDIASTORE_WEBHOOK_CONNECT_TIMEOUT_S = env.get_int("MEDIASTORE_WEBHOOK_CONNECT_TIMEOUT_S", 5, minimum=1)
MEDIASTORE_WEBHOOK_TIMEOUT_S = env.get_int("MEDIASTORE_WEBHOOK_TIMEOUT_S", 15, minimum=1)
MEDIASTORE_MAX_UPLOAD_MB = env.get_int("MEDIASTORE_MAX_UPLOAD_MB", 512, minimum=1)
# Deadlines of request bodies under gunicorn (mediastore/bodies.py): no byte for this many seconds
# is a 408 for any request; a body read before the request is authenticated (login) must arrive
# whole within the second.
MEDIASTORE_BODY_TIMEOUT_S = env.get_int("MEDIASTORE_BODY_TIMEOUT_S", 30, minimum=1)
MEDIASTORE_ANON_BODY_TIMEOUT_S = env.get_int("MEDIASTORE_ANON_BODY_TIMEOUT_S", 10, minimum=1)
# Resumable uploads (tus, /api/tus/): where their received bytes wait (shared by every host that
# serves the API), how long an upload lives after its last PATCH, the largest one accepted and how
# many unfinished uploads one user may have.
MEDIASTORE_TUS_DIR = Path(env.get_str("MEDIASTORE_TUS_DIR", str(MEDIASTORE_DATA_DIR / "tus"))).resolve()
MEDIASTORE_TUS_EXPIRY_HOURS = env.get_int("MEDIASTORE_TUS_EXPIRY_HOURS", 24, minimum=1)
MEDIASTORE_TUS_MAX_SIZE_GB = env.get_int("MEDIASTORE_TUS_MAX_SIZE_GB", 5120, minimum=1)
MEDIASTORE_TUS_MAX_OPEN = env.get_int("MEDIASTORE_TUS_MAX_OPEN", 100, minimum=1)
# Previews (content.previews): thumbnails and text excerpts of media, made on demand and kept in
# this directory of derived data (never in a media's store; safe to delete, each is made again).
# Images declaring more pixels, or media of more bytes, get no preview; a decode that takes longer
# than MEDIASTORE_PREVIEW_SECONDS is killed (it runs in a child process) and gets none either.
MEDIASTORE_PREVIEW_DIR = Path(
    env.get_str("MEDIASTORE_PREVIEW_DIR", str(MEDIASTORE_DATA_DIR / "previews"))
).resolve()
MEDIASTORE_PREVIEW_MAX_PIXELS = env.get_int("MEDIASTORE_PREVIEW_MAX_PIXELS", 50_000_000, minimum=1)
MEDIASTORE_PREVIEW_MAX_BYTES = env.get_int("MEDIASTORE_PREVIEW_MAX_BYTES", 64 * 1024 * 1024, minimum=1)
MEDIASTORE_PREVIEW_SECONDS = env.get_int("MEDIASTORE_PREVIEW_SECONDS", 10, minimum=1)
# Metadata limits, applied to every write of a media's metadata (422 too deep, 413 too large).
MEDIASTORE_MAX_METADATA_DEPTH = env.get_int("MEDIASTORE_MAX_METADATA_DEPTH", 64, minimum=1)
if MEDIASTORE_MAX_METADATA_DEPTH > 500:
    raise ImproperlyConfigured(
        "MEDIASTORE_MAX_METADATA_DEPTH must be at most 500: deeper JSON cannot be encoded and decoded "
        "reliably within Python's recursion limit"
    )
MEDIASTORE_MAX_METADATA_KB = env.get_int("MEDIASTORE_MAX_METADATA_KB", 1024, minimum=1)
# Most tags one media may carry (422 for a write that would leave it with more).
MEDIASTORE_MAX_TAGS = env.get_int("MEDIASTORE_MAX_TAGS", 1000, minimum=1)
# Days a deleted media stays in the recycle bin (record and bytes; GET /api/trash, restore) before
# manage.py purge_trash removes it for good; 0: deletes are final at once (no bin).
MEDIASTORE_TRASH_DAYS = env.get_int("MEDIASTORE_TRASH_DAYS", 7, minimum=0)
# Most media one archive of /api/download/archive (or one search answer of /api/download/urls) may
# hold (413 before any byte for more).
MEDIASTORE_ARCHIVE_MAX_MEDIA = env.get_int("MEDIASTORE_ARCHIVE_MAX_MEDIA", 100_000, minimum=1)
MEDIASTORE_REDIS_URL = env.get_str("MEDIASTORE_REDIS_URL")
# How many API hosts serve this deployment (docs/scaling.md): above 1, the checks refuse what only
# works on one host (SQLite, the RAM store in files) and warn about what is counted per host.
MEDIASTORE_HOSTS = env.get_int("MEDIASTORE_HOSTS", 1, minimum=1)
# A replica (POSTGRES_REPLICA_HOST) further behind the primary than this serves no reads.
MEDIASTORE_REPLICA_MAX_LAG_S = env.get_int("MEDIASTORE_REPLICA_MAX_LAG_S", 5, minimum=0)
MEDIASTORE_RAM_TTL_SECONDS = env.get_int("MEDIASTORE_RAM_TTL_SECONDS", None, minimum=1)
# Whether POST /api/store and PUT /api/s3cfg/{pk} probe the store(s) when the request has no ?probe=.
MEDIASTORE_PROBE_STORES = env.get_bool("MEDIASTORE_PROBE_STORES", True)
MEDIASTORE_SEARCH_COUNT_CAP = env.get_int("MEDIASTORE_SEARCH_COUNT_CAP", 10_000, minimum=1)
# Links to search pages starting this deep carry a keyset cursor (media/search/pages.py).
MEDIASTORE_SEARCH_CURSOR_FROM = env.get_int("MEDIASTORE_SEARCH_CURSOR_FROM", 1000, minimum=0)
# Metadata searches no index serves answer X-Search-Plan: seqscan from this many media on.
MEDIASTORE_SEARCH_SEQSCAN_ROWS = env.get_int("MEDIASTORE_SEARCH_SEQSCAN_ROWS", 100_000, minimum=0)
# Accounts that manage.py ensure_superuser and ensure_serviceuser create or update (bin/start runs
# both); an empty username means "none configured".
MEDIASTORE_SUPERUSER = {
    "username": env.get_str("DJANGO_SUPERUSER_USERNAME").strip(),
    "password": env.get_str("DJANGO_SUPERUSER_PASSWORD"),
    "email": env.get_str("DJANGO_SUPERUSER_EMAIL").strip(),
}
MEDIASTORE_SERVICEUSER = {
    "username": env.get_str("DJANGO_SERVICEUSER_USERNAME").strip(),
    "password": env.get_str("DJANGO_SERVICEUSER_PASSWORD"),
    "email": env.get_str("DJANGO_SERVICEUSER_EMAIL").strip(),
    "groups": env.get_list("DJANGO_SERVICEUSER_GROUPS", []),
}
# Failed logins allowed per username and per client address in a window (mediastore/throttle.py).
MEDIASTORE_LOGIN_RATE = env.get_rate("MEDIASTORE_LOGIN_RATE", "10/m")
# Peers whose X-Forwarded-For is believed when finding a client's address (nginx on this host).
MEDIASTORE_TRUSTED_PROXIES = env.get_networks("MEDIASTORE_TRUSTED_PROXIES", DEFAULT_TRUSTED_PROXIES)
# prometheus_client switches to multiprocess mode when the variable exists at all, even empty (as an
# empty line in an env file leaves it): empty means unset here (mediastore/metrics.py, gunicorn.conf.py).
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip():
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
# Client addresses (or networks) that may read /metrics without a token (mediastore/metrics.py).
MEDIASTORE_METRICS_ALLOW = env.get_networks("MEDIASTORE_METRICS_ALLOW", ["127.0.0.1", "::1"])
# Testing only: named places where a real server process fails on purpose (mediastore/failpoints.py).
try:
    MEDIASTORE_FAILPOINTS = failpoints_parse(env.get_str("MEDIASTORE_FAILPOINTS", ""))
except ValueError as exc:
    raise ImproperlyConfigured(f"MEDIASTORE_FAILPOINTS: {exc}") from None
MEDIASTORE_PROXIES = {
    scheme: value
    for scheme, value in (
        ("http", env.get_str("HTTP_PROXY") or env.get_str("http_proxy")),
        ("https", env.get_str("HTTPS_PROXY") or env.get_str("https_proxy")),
    )
    if value
}

# The project's own apps, each a top-level package: the one list of them (tests/test_settings.py
# holds it to the packages on disk and to the import-linter contract in pyproject.toml).
PROJECT_APPS = [
    "mediastore",
    "identifiers",
    "stores",
    "quotas",
    "media",
    "content",
    "events",
    "importer",
    "status",
    "tus",
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",
    "simple_history",
    "taggit",
    *PROJECT_APPS,
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "mediastore.staticfiles.StaticFilesMiddleware",  # WhiteNoise
    "mediastore.metrics.MetricsMiddleware",
    "mediastore.dbrouting.ReplicaReadsMiddleware",  # passes everything on when no replica is set
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "mediastore.middleware.JsonBodyLimitMiddleware",
    "mediastore.middleware.RejectNulMiddleware",
    "mediastore.middleware.MethodNotAllowedJsonMiddleware",
    "mediastore.middleware.BodyTimeoutMiddleware",  # before the CSRF check reads form bodies
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Innermost: a GET or HEAD whose database connection broke runs once more, view only.
    "mediastore.dbretry.RetryReadsMiddleware",
]

ROOT_URLCONF = "mediastore.urls"
WSGI_APPLICATION = "mediastore.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "mediastore" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

if env.get_str("POSTGRES_DB"):
    DATABASES = {
        "default": {
            "ENGINE": "mediastore.postgresql_backend",
            "NAME": env.get_str("POSTGRES_DB"),
            "USER": env.get_str("POSTGRES_USER", "postgres"),
            "PASSWORD": env.get_str("POSTGRES_PASSWORD"),
            "HOST": env.get_str("POSTGRES_HOST", "127.0.0.1"),
            "PORT": env.get_str("POSTGRES_PORT", "5432"),
            "CONN_MAX_AGE": env.get_int("POSTGRES_CONN_MAX_AGE", 60),
            "CONN_HEALTH_CHECKS": True,
        }
    }
    # A streaming replica for the read-only routes (mediastore/dbrouting.py, docs/scaling.md): the
    # primary's database, user and password unless set; its own connections, never migrated.
    if env.get_str("POSTGRES_REPLICA_HOST"):
        DATABASES["replica"] = {
            **DATABASES["default"],
            "HOST": env.get_str("POSTGRES_REPLICA_HOST"),
            "PORT": env.get_str("POSTGRES_REPLICA_PORT") or DATABASES["default"]["PORT"],
            "USER": env.get_str("POSTGRES_REPLICA_USER") or DATABASES["default"]["USER"],
            "PASSWORD": env.get_str("POSTGRES_REPLICA_PASSWORD") or DATABASES["default"]["PASSWORD"],
            # A replica that does not answer costs a request at most this long, once per second per
            # process (its health is checked then, and it serves no reads until it answers again).
            "OPTIONS": {"connect_timeout": 2},
            "TEST": {"MIRROR": "default"},
        }
        DATABASE_ROUTERS = ["mediastore.dbrouting.ReplicaRouter"]
elif env.get_str("POSTGRES_REPLICA_HOST"):
    raise ImproperlyConfigured(
        "POSTGRES_REPLICA_HOST names a PostgreSQL replica, but POSTGRES_DB is not set: a replica needs a "
        "PostgreSQL primary (docs/scaling.md)"
    )
else:
    MEDIASTORE_DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "mediastore.sqlite_backend",
            "NAME": MEDIASTORE_DATA_DIR / "db.sqlite3",
            # Kept open between requests, as on PostgreSQL: opening one (Django registers its SQL
            # functions, the PRAGMAs run) cost more than a whole single-media read (docs/performance.md).
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                # Writers wait in line for SQLite's write lock (mediastore/sqlite_backend/writequeue.py).
                "write_queue": env.get_bool("MEDIASTORE_SQLITE_WRITE_QUEUE", True),
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }


def _default_ram_dir() -> Path:
    """A RAM-backed folder named after this deployment (data directory and database), so the RAM
    store is shared by every worker of this deployment and by no other deployment on the host."""
    database = DATABASES["default"]
    identity = "\n".join(
        str(part)
        for part in (
            MEDIASTORE_DATA_DIR,
            # As named before mediastore.postgresql_backend existed, so the folder did not move.
            database["ENGINE"].replace("mediastore.postgresql_backend", "django.db.backends.postgresql"),
            database.get("HOST", ""),
            database.get("PORT", ""),
            database["NAME"],
        )
    )
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    return base / f"mediastore-ram-{hashlib.sha256(identity.encode()).hexdigest()[:16]}"


# The hot single-row reads (mediastore.rowfetch: the bearer token, one media) run as prepared
# statements on PostgreSQL: the token lookup took 1.4 ms to plan and 0.2 ms to run. Off for a
# connection pooler in transaction mode that cannot keep prepared statements.
MEDIASTORE_PG_PREPARED = env.get_bool("POSTGRES_PREPARED_STATEMENTS", True)

MEDIASTORE_RAM_DIR = Path(env.get_str("MEDIASTORE_RAM_DIR") or _default_ram_dir()).resolve()

# The cache holds the login-failure counters, so it must be one that every worker sees: Redis when
# configured (shared by all replicas too), else files under the data directory (shared by the workers
# of one host; mediastore/cache.py). Entries written by a read-then-write incr get the default
# timeout, which must outlast a whole throttling window.
_CACHE_TIMEOUT = max(300, MEDIASTORE_LOGIN_RATE[1])
if MEDIASTORE_REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": MEDIASTORE_REDIS_URL,
            "KEY_PREFIX": "mediastore-cache",
            "TIMEOUT": _CACHE_TIMEOUT,
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "mediastore.cache.FileCache",
            "LOCATION": str(MEDIASTORE_DATA_DIR / "cache"),
            "TIMEOUT": _CACHE_TIMEOUT,
            # Culling removes entries at random once there are this many; keep counters of an
            # attack on many usernames or addresses from being thrown away early.
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ModelBackend, answering from the permissions read with the bearer token (no query of its own).
AUTHENTICATION_BACKENDS = ["mediastore.permission_backend.PermissionBackend"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.get_str("DJANGO_STATIC_ROOT", str(MEDIASTORE_DATA_DIR / "static"))).resolve()
# WhiteNoise serves the collected files from gunicorn itself, so Swagger UI and the admin are styled
# with or without nginx in front. collectstatic (bin/start) gives each file a content-hashed name
# (cached for a year by browsers) and gzip and brotli variants. Started without it (gunicorn alone),
# pages name the files unhashed and they are served from the apps (mediastore/staticfiles.py).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "mediastore.staticfiles.HashedStaticFilesStorage"},
}

# Base64 bodies may be large; the limit users set is MEDIASTORE_MAX_UPLOAD_MB (checked in the API
# with a 413 naming the variable), so Django's own 2.5 MB cap must not answer first.
DATA_UPLOAD_MAX_MEMORY_SIZE = None
FILE_UPLOAD_MAX_MEMORY_SIZE = 4 * 1024 * 1024

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
USE_X_FORWARDED_HOST = env.get_bool("DJANGO_USE_X_FORWARDED_HOST", False)
# HTTPS behind nginx. Off unless set, so plain-HTTP development and tests are unaffected;
# docs/production.md gives the production values, with which `manage.py check --deploy` is silent.
# nginx.conf sends its own HSTS header (same max-age) and hides this one.
SECURE_HSTS_SECONDS = env.get_int("DJANGO_SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.get_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env.get_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = env.get_bool("DJANGO_SECURE_SSL_REDIRECT", False)
# Health checks (load balancers, the image's HEALTHCHECK) ask gunicorn itself over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^api/health$"]
if not SECURE_HSTS_PRELOAD:
    # check --deploy's reminder that the site "cannot be submitted to the browser preload list":
    # that list takes whole registrable domains (example.org and every subdomain, slow to undo),
    # a decision for the domain's owner, not a setting this server should nag about; set
    # DJANGO_SECURE_HSTS_PRELOAD=true once the domain is to be submitted.
    SILENCED_SYSTEM_CHECKS = ["security.W021"]
if not DEBUG:
    SESSION_COOKIE_SECURE = env.get_bool("DJANGO_SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE


# Text or JSON lines (MEDIASTORE_LOG_FORMAT), with the client's address on lines about a request
# (mediastore/logs.py).
LOGGING = django_logging(env.get_str("DJANGO_LOG_LEVEL", "INFO"))
