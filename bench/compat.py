"""Django's public ways against the private internals we keep (mediastore/compat.py), on
PostgreSQL, as ratios measured in one run (a script run by hand, not a test).

    python bench/compat.py                 # about 2 minutes
    python bench/compat.py --rounds 1 --calls 300

It creates its own database (``mediastore_bench_compat``, migrated, a user of the group admins
with a token and one media), then, in one child process per configuration and ``--rounds``
rounds interleaved so that the machine's load cancels, times:

- ``token``: p50 of the token lookup every request makes (``mediastore.auth.token_row``: the token, its
  user and the user's permissions in one statement);
- ``request``: p50 of a whole ``GET /api/media/{pid}`` through Django's test client (request signals,
  the health check or pool, the token lookup, the media read, the JSON);

for these configurations of the database connection:

- ``ours``: the shipped settings: ``mediastore.postgresql_backend`` (a health check without a
  round trip while the connection is idle and was checked < 5 s ago), persistent connections, the
  RowFetcher reads prepared on a server-binding cursor swapped into Django's wrapper
  (``compat.replace_cursor``);
- ``unprepared``: the same without preparing (``MEDIASTORE_PG_PREPARED=false``);
- ``server_binding``: Django's public option ``OPTIONS={"server_side_binding": True}`` with
  psycopg's ``prepare_threshold`` 5 (every statement bound on the server, prepared after 5 uses);
- ``django_check``: Django's own backend (``is_usable`` = ``SELECT 1`` before each request);
- ``pool`` / ``pool_unchecked``: Django 5.1's connection pool (``OPTIONS={"pool": ...}``, needs
  psycopg-pool), with our ``CONN_HEALTH_CHECKS`` (Django then gives the pool
  ``ConnectionPool.check_connection``: a round trip on every checkout) and without any check.

And, in this process: deleting 200 media rows with ``compat.raw_delete`` (one DELETE, as
``media.deletes`` does after writing the history itself) against ``QuerySet.delete()``.
Connection settings: POSTGRES_HOST/PORT/USER/PASSWORD. Prints ``name value`` lines and ratios;
docs/performance.md ("Private internals") has the latest figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.postgres import django_on, ensure_bench_database  # noqa: E402

DATABASE = "mediastore_bench_compat"
CONFIGS = ["ours", "unprepared", "server_binding", "django_check", "pool", "pool_unchecked"]
TOKEN_FILE = Path(tempfile.gettempdir()) / "mediastore-bench-compat-token"  # parent to children


def configure(name: str) -> None:
    """Change the default connection's settings before its first use (children only)."""
    from django.conf import settings
    from django.db import connections

    db = settings.DATABASES["default"]
    options = db.setdefault("OPTIONS", {})
    if name == "unprepared":
        settings.MEDIASTORE_PG_PREPARED = False
    elif name == "server_binding":
        settings.MEDIASTORE_PG_PREPARED = False
        options.update(server_side_binding=True, prepare_threshold=5)
    elif name == "django_check":
        db["ENGINE"] = "django.db.backends.postgresql"
    elif name in ("pool", "pool_unchecked"):
        db["ENGINE"] = "django.db.backends.postgresql"
        db["CONN_MAX_AGE"] = 0  # Django refuses persistent connections with a pool
        # With CONN_HEALTH_CHECKS (our setting) Django gives the pool ConnectionPool.check_connection.
        db["CONN_HEALTH_CHECKS"] = name == "pool"
        options["pool"] = {"min_size": 1, "max_size": 2}
    connections.close_all()
    del connections["default"]  # the next use builds a wrapper from the changed settings
    assert connections["default"].settings_dict["ENGINE"] == db["ENGINE"]


def child(name: str, calls: int) -> dict:
    django_on(DATABASE)
    configure(name)
    from django.core.signals import request_finished
    from django.test import Client

    from mediastore.auth import token_row

    token = TOKEN_FILE.read_text().strip()
    for _ in range(50):
        token_row(token)
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        token_row(token)
        times.append(time.perf_counter() - started)
    token_us = statistics.median(times) * 1e6

    request_finished.send(sender=None)  # as after a request: the pool takes its connection back
    client = Client(headers={"Authorization": f"Bearer {token}"})
    for _ in range(50):
        assert client.get("/api/media/bench-1").status_code == 200
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        client.get("/api/media/bench-1")
        times.append(time.perf_counter() - started)
    return {"token_us": token_us, "request_ms": statistics.median(times) * 1000}


def setup() -> None:
    ensure_bench_database(DATABASE, reload=True)
    django_on(DATABASE)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.contrib.auth.models import Group, Permission

    from mediastore import tokens
    from mediastore.permissions import ROLES

    group, _ = Group.objects.get_or_create(name="admins")
    for perm in ROLES["admins"]:
        app_label, codename = perm.split(".")
        group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username="bench", password="bench-password-123")
    user.groups.add(group)
    TOKEN_FILE.write_text(tokens.token_create(user=user, name="bench", scopes=["admin"], expires_in=None)[1])
    from django.test import Client

    client = Client(headers={"Authorization": f"Bearer {TOKEN_FILE.read_text().strip()}"})
    assert client.post(
        "/api/identifier", {"name": "local", "pattern": ""}, content_type="application/json"
    ).status_code in (200, 201)
    body = {
        "pid": "bench-1",
        "pid_type": "local",
        "store_config": {"type": "DictStore", "bucket": "bench"},
        "metadata": {"a": 1},
        "tags": ["x", "y"],
    }
    response = client.post("/api/media", body, content_type="application/json")
    assert response.status_code == 200, response.content


def deletes(rows: int, rounds: int) -> dict:
    """raw_delete against QuerySet.delete() of ``rows`` media (statements and ms), in this process."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from media.models import Media
    from mediastore.compat import raw_delete

    template = Media.objects.get(pid="bench-1")

    def make() -> list[int]:
        made = Media.objects.bulk_create(
            [
                Media(
                    pid=f"del-{time.monotonic_ns()}-{n}",
                    pid_type_id=template.pid_type_id,
                    store_config_id=template.store_config_id,
                    store_key=f"k-{time.monotonic_ns()}-{n}",
                    mark=template.mark,
                )
                for n in range(rows)
            ]
        )
        return [m.pk for m in made]

    found: dict[str, list[float]] = {"raw_delete": [], "queryset_delete": []}
    statements = {}
    for _ in range(rounds):
        for name in found:
            pks = make()
            with transaction.atomic(), CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                if name == "raw_delete":
                    raw_delete(Media.objects.filter(pk__in=pks))
                else:
                    Media.objects.filter(pk__in=pks).delete()
                found[name].append((time.perf_counter() - started) * 1000)
            statements[name] = len(queries.captured_queries)
    return {f"{name}_ms": statistics.median(values) for name, values in found.items()} | {
        f"{name}_statements": n for name, n in statements.items()
    }


def related(calls: int) -> tuple[float, float]:
    """Attaching the user to its token as RowFetcher does (assignment through the public descriptor)
    against the internal ``Field.set_cached_value``: microseconds per call, in this process."""
    from mediastore.auth import TOKEN_WITH_USER
    from mediastore.models import ApiToken, hash_token

    row = TOKEN_WITH_USER.first(hash_token(TOKEN_FILE.read_text().strip()))
    user, field = row.user, ApiToken._meta.get_field("user")
    found = []
    for attach in (lambda: setattr(row, "user", user), lambda: field.set_cached_value(row, user)):
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(calls):
                attach()
            best = min(best, (time.perf_counter() - started) / calls * 1e6)
        found.append(best)
    return found[0], found[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--child", choices=CONFIGS)
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated; ours first")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.calls)))
        return
    setup()
    configs = args.configs.split(",")
    results: dict[str, list[dict]] = {name: [] for name in configs}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for warm_up in CONFIGS[:1]:  # the first child after the setup runs on a cold server: not counted
        subprocess.run([sys.executable, __file__, "--child", warm_up, "--calls", "100"], check=False, env=env)
    for _ in range(args.rounds):
        for name in configs:
            done = subprocess.run(
                [sys.executable, __file__, "--child", name, "--calls", str(args.calls)],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            if done.returncode:
                print(f"{name}: failed\n{done.stderr[-2000:]}")
                continue
            results[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    base = {key: statistics.median(r[key] for r in results["ours"]) for key in ("token_us", "request_ms")}
    for name, runs in results.items():
        if not runs:
            continue
        token = statistics.median(r["token_us"] for r in runs)
        request = statistics.median(r["request_ms"] for r in runs)
        print(
            f"{name:15s} token {token:7.1f} us ({token / base['token_us']:.2f}x ours)   "
            f"GET /api/media/{{pid}} p50 {request:6.3f} ms ({request / base['request_ms']:.2f}x ours)"
        )
    assigned, cached = related(20000)
    print(f"related object: assigned {assigned:.2f} us, Field.set_cached_value {cached:.2f} us per read")
    figures = deletes(200, args.rounds)
    print(
        f"delete 200 media: raw_delete {figures['raw_delete_ms']:.1f} ms, "
        f"{figures['raw_delete_statements']} statement(s); QuerySet.delete() "
        f"{figures['queryset_delete_ms']:.1f} ms, {figures['queryset_delete_statements']} statements "
        f"({figures['queryset_delete_ms'] / figures['raw_delete_ms']:.1f}x)"
    )
    TOKEN_FILE.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
