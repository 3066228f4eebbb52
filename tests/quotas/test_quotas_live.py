"""Quotas against 8 concurrent writers through real gunicorn workers: a store's byte quota and an
account's media quota are never passed together, usage equals a recount afterwards, and the refused
writes left nothing in the stores. The failpoint widens each write's window between its quota check
and its commit (``events.before_commit=delay``, up to 50 ms), where writers that did not lock the
quota would both see room; ``quotas.after_lock=delay`` the window between two locks of quotas. Also
two opposite bulk moves, which could deadlock. Also runs docs/quotas.md's example as written."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.processes import REPO
from tests.support.servers import PASSWORD, SERVICE_USER, Server, login

pytestmark = pytest.mark.e2e

WRITERS, TRIES = 8, 3
SIZE = 1000
STORE_BYTES = 10 * SIZE  # the store quota: 10 of the 24 writes fit
ACCOUNT_MEDIA = 12  # the account quota: 12 of its 24 creates fit

CHECK = """
import json
from media.models import Media
from media.usage import recount
from quotas.models import Usage
from stores.models import StoreConfig
stores = {}
for store in StoreConfig.objects.all():
    stores[store.pk] = {
        "objects": sorted(o.key for o in store.backend().list_objects()),
        "keys": sorted(
            Media.objects.filter(store_config=store, store_status="READY").values_list("store_key", flat=True)
        ),
    }
usage = {f"{r.store_id}:{r.owner}": [r.bytes, r.media] for r in Usage.objects.all() if r.bytes or r.media}
counted = {f"{s}:{o}": list(v) for (s, o), v in recount().items()}
print(json.dumps({"stores": stores, "usage": usage, "recount": counted}))
"""


@pytest.fixture(scope="module")
def server():
    srv = Server(
        "mediastore-quotas-", 3, MEDIASTORE_FAILPOINTS="events.before_commit=delay,quotas.after_lock=delay"
    )
    try:
        srv.manage(
            "shell",
            "-c",
            "from django.contrib.auth.models import User, Group; "
            f"writer = User.objects.create_user('writer', password={PASSWORD!r}); "
            "writer.groups.add(Group.objects.get(name='writers'))",
        )
        yield srv
    finally:
        srv.close()


def as_user(server: Server, name: str):
    session = login(server.base)
    session.headers.pop("Authorization")
    answer = session.post(
        f"{server.base}/api/login", json={"username": name, "password": PASSWORD}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    session.headers["Authorization"] = f"Bearer {answer.json()['token']}"
    return session


def store_of(server: Server, body: dict) -> int:
    answer = server.session.post(f"{server.base}/api/store", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["pk"]


def put_quota(server: Server, **body) -> None:
    quota = {"store": None, "user": None, "max_bytes": None, "max_media": None, **body}
    answer = server.session.put(f"{server.base}/api/quotas", json=quota, timeout=30)
    assert answer.status_code == 200, answer.text


def state(server: Server) -> dict:
    return json.loads(server.manage("shell", "-c", CHECK).strip().splitlines()[-1])


def race(jobs) -> list[tuple[int, dict]]:
    with ThreadPoolExecutor(WRITERS) as pool:
        return [future.result() for future in [pool.submit(job) for job in jobs]]


def test_eight_writers_never_pass_a_store_quota_or_an_account_quota(server):
    big = {"type": "FilesystemStore", "bucket": "quota-race-bytes"}
    many = {"type": "FilesystemStore", "bucket": "quota-race-count"}
    big_pk, many_pk = store_of(server, big), store_of(server, many)
    put_quota(server, store=big_pk, max_bytes=STORE_BYTES)
    put_quota(server, user="writer", max_media=ACCOUNT_MEDIA)
    # Half the store's writers fill PENDING media with PUT .../content (charged at the switch), half
    # create media with their bytes (charged at the insert).
    for n in range(WRITERS // 2 * TRIES):
        server.create(f"fill.{n}", big)
    data = base64.b64encode(os.urandom(SIZE)).decode()

    def store_writer(worker: int):
        def run():
            session, answers = server.client(), []
            for attempt in range(TRIES):
                if worker % 2:
                    pid = f"fill.{worker // 2 * TRIES + attempt}"
                    url = f"{server.base}/api/media/{pid}/content"
                    answer = session.put(url, data=os.urandom(SIZE), timeout=60)
                else:
                    body = {
                        "mediadata": {
                            "pid": f"up.{worker}.{attempt}",
                            "pid_type": "pidtype",
                            "store_config": big,
                        }
                    }
                    answer = session.post(
                        f"{server.base}/api/upload", json={**body, "base64": data}, timeout=60
                    )
                answers.append((answer.status_code, answer.json()))
            return answers

        return run

    def account_writer(worker: int):
        def run():
            session, answers = as_user(server, "writer"), []
            for attempt in range(TRIES):
                body = {"pid": f"w.{worker}.{attempt}", "pid_type": "pidtype", "store_config": many}
                answer = session.post(f"{server.base}/api/media", json=body, timeout=60)
                answers.append((answer.status_code, answer.json()))
            return answers

        return run

    answers = [a for run in race([store_writer(w) for w in range(WRITERS)]) for a in run]
    answers += [a for run in race([account_writer(w) for w in range(WRITERS)]) for a in run]
    store_answers, account_answers = answers[: WRITERS * TRIES], answers[WRITERS * TRIES :]
    assert {code for code, _ in answers} <= {200, 507}, answers
    # every write fits until the quota is full, so exactly as many as fit succeed: never more
    assert sum(code == 200 for code, _ in store_answers) == STORE_BYTES // SIZE
    assert sum(code == 200 for code, _ in account_answers) == ACCOUNT_MEDIA
    for code, body in answers:
        if code == 507:
            assert body["unit"] in {"bytes", "media"} and body["used"] <= body["limit"], body
            assert body["quota"]["store"] == big_pk or body["quota"]["user"] == "writer", body

    seen = state(server)
    assert seen["usage"] == seen["recount"]
    uploaded = sum(code == 200 and "status" in body for code, body in store_answers)  # new media
    assert seen["usage"][f"{big_pk}:{SERVICE_USER}"] == [STORE_BYTES, WRITERS // 2 * TRIES + uploaded]
    assert seen["usage"][f"{many_pk}:writer"] == [0, ACCOUNT_MEDIA]
    quotas = {
        (q["store"], q["user"]): q for q in server.session.get(f"{server.base}/api/quotas", timeout=30).json()
    }
    assert quotas[(big_pk, None)]["used_bytes"] == STORE_BYTES
    assert quotas[(None, "writer")]["used_media"] == ACCOUNT_MEDIA
    for pk in (big_pk, many_pk):  # the refused writes stored nothing: every object is a READY media's
        assert seen["stores"][str(pk)]["objects"] == seen["stores"][str(pk)]["keys"]
    assert len(seen["stores"][str(big_pk)]["objects"]) == STORE_BYTES // SIZE


def test_the_docs_example_runs_as_written(server):
    """docs/quotas.md "An example": 18 bytes fit the 20-byte quota, 8 more are a 507."""
    server.session.post(f"{server.base}/api/identifier", json={"name": "filename", "pattern": ""}, timeout=30)
    text = (REPO / "docs" / "quotas.md").read_text().split("\n## An example\n", 1)[1]
    script = text.split("```sh\n")[1].split("```", 1)[0].replace("MS=http://127.0.0.1:8000\n", "", 1)
    env = {
        **os.environ,
        "MS": server.base,
        "H": "Content-Type: application/json",
        "A": f"Authorization: {server.session.headers['Authorization']}",
    }
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    quota, stored, refused, usage, removed = lines
    assert json.loads(quota)["max_bytes"] == 20
    assert json.loads(stored)["status"] == "READY"
    body, code = refused.rsplit(" ", 1)
    assert code == "507" and json.loads(body)["requested"] == 8 and json.loads(body)["used"] == 18
    assert json.loads(usage) == [
        {"store": json.loads(quota)["store"], "user": SERVICE_USER, "bytes": 18, "media": 1}
    ]
    assert removed == "204"
    assert server.session.get(f"{server.base}/api/media/q.2", timeout=30).status_code == 404


def test_opposite_bulk_moves_of_two_accounts_media_do_not_deadlock(server):
    """Two bulk moves in opposite directions between two stores, each of media of two accounts with
    quotas of their own: each move used to lock the accounts' quotas as their media came up, one
    move alice's then bob's, the other bob's then alice's, and PostgreSQL broke the deadlock with a
    503. Now a bulk move locks every quota it may touch at once, in one order."""
    east = {"type": "DictStore", "bucket": "moves-east"}
    west = {"type": "DictStore", "bucket": "moves-west"}
    east_pk, west_pk = store_of(server, east), store_of(server, west)
    server.manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User, Group\n"
        "writers = Group.objects.get(name='writers')\n"
        "for name in ('alice', 'bob'):\n"
        f"    User.objects.create_user(name, password={PASSWORD!r}).groups.add(writers)",
    )
    accounts = {name: as_user(server, name) for name in ("alice", "bob")}
    for name in accounts:
        put_quota(server, user=name, max_media=1000)
    count = 20
    for side, store in (("e", east), ("w", west)):
        for n in range(count):
            # east's first media is alice's, west's is bob's: the moves meet the accounts in opposite orders
            owner = "alice" if (n % 2 == 0) == (side == "e") else "bob"
            body = {"pid": f"{side}.{n}", "pid_type": "pidtype", "store_config": store}
            answer = accounts[owner].post(f"{server.base}/api/media", json=body, timeout=30)
            assert answer.status_code == 200, answer.text

    def mover(side: str, first: int, second: int):
        def run():
            session, answers = server.client(), []
            for attempt in range(8):
                target = first if attempt % 2 == 0 else second
                body = {
                    "pids": [f"{side}.{n}" for n in range(count)],
                    "medias": [{"store_config": target}] * count,
                }
                answer = session.patch(f"{server.base}/api/media/update", json=body, timeout=60)
                answers.append((answer.status_code, answer.text[:300]))
            return answers

        return run

    answers = [a for run in race([mover("e", west_pk, east_pk), mover("w", east_pk, west_pk)]) for a in run]
    assert [a for a in answers if a[0] != 200] == []
    seen = state(server)
    assert seen["usage"] == seen["recount"]
    assert seen["usage"][f"{east_pk}:alice"] == [0, count // 2] and seen["usage"][f"{west_pk}:bob"] == [
        0,
        count // 2,
    ]
