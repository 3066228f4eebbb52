"""Where networks and clients fail, through real gunicorn workers, sockets and the suite's database.

Regressions (issue "Trust at the edges"):
- a client that declared ``Content-Length: 2000000``, sent 500,000 bytes and closed had its prefix
  stored: the media became READY with 500,000 bytes and a checksum of the prefix, so ``verify``
  said OK; a chunked body cut short answered an HTML 500;
- requests that locked a media together with a join to its store lost the row while a move
  switched the store: DELETE answered 404 and the media stayed, bulk tag updates said NotFound;
- a delete racing a download answered 502 "stored bytes missing";
- ``Transfer-Encoding: gzip, chunked`` was stored undecoded;
- connections the database terminated answered Django's HTML 500 and left orphan objects.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import requests

from tests.support.servers import Server
from tests.support.servers import sha256_label as sha

pytestmark = pytest.mark.e2e

ORIGINAL = os.urandom(300_000) + b"original"
DECLARED = 2_000_000
SENT = 500_000


@pytest.fixture(scope="module")
def server(s3_server):
    srv = Server("mediastore-edges-", 2)
    srv.add_s3(s3_server)
    try:
        yield srv
    finally:
        srv.close()


def store_of(store_type: str, name: str, s3_server, s3_bucket: str) -> dict:
    if store_type == "BucketStore":
        return {"type": store_type, "bucket": f"{s3_bucket}/{name}", "s3_url": s3_server.url}
    return {"type": store_type, "bucket": name}


def raw_request(server: Server, head: str, body_parts: list[bytes], *, half_close: bool) -> bytes | None:
    """Send a request head and these body parts over a plain socket, then close the sending side
    (``half_close``: the answer is read and returned) or the whole socket (None)."""
    port = int(server.base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head.encode())
        for part in body_parts:
            sock.sendall(part)
        if not half_close:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            return None
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def put_head(server: Server, pid: str, framing: str) -> str:
    auth = server.session.headers["Authorization"]
    return (
        f"PUT /api/media/{pid}/content HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n"
        f"Content-Type: application/octet-stream\r\n{framing}Connection: close\r\n\r\n"
    )


def assert_unchanged(server: Server, pid: str) -> None:
    media = server.media(pid)
    assert (media["store_status"], media["size"], media["checksum"]) == (
        "READY",
        len(ORIGINAL),
        sha(ORIGINAL),
    )
    assert server.content(pid) == ORIGINAL
    assert server.verify(pid)["ok"] is True


def orphans_line(server: Server, bucket_part: str) -> str:
    listed = server.manage("collect_orphans", "--older-than", "0", "--list")
    return next(line for line in listed.splitlines() if bucket_part in line)


@pytest.mark.parametrize("store_type", ["FilesystemStore", "BucketStore"])
@pytest.mark.parametrize(
    "cut", ["length-half-closed", "length-closed", "chunked-half-closed", "chunked-closed"]
)
def test_a_body_cut_short_changes_nothing(server, s3_server, s3_bucket, store_type, cut):
    name = f"cut-{store_type.lower()}-{cut}"
    pid = f"cut-{store_type}-{cut}"
    server.create(pid, store_of(store_type, name, s3_server, s3_bucket))
    assert server.session.put(f"{server.base}/api/media/{pid}/content", data=ORIGINAL, timeout=60).ok
    data = os.urandom(SENT)
    if cut.startswith("length"):
        head = put_head(server, pid, f"Content-Length: {DECLARED}\r\n")
        parts = [data[: SENT // 2], data[SENT // 2 :]]
    else:  # two whole chunks, then a chunk that says 100,000 bytes and stops after 10
        head = put_head(server, pid, "Transfer-Encoding: chunked\r\n")
        parts = [b"%x\r\n%s\r\n" % (len(p), p) for p in (data[:200_000], data[200_000:])]
        parts.append(b"%x\r\n" % 100_000 + b"0123456789")
    answer = raw_request(server, head, parts, half_close=cut.endswith("half-closed"))
    if answer is not None:  # the client can still read: a 400 that says what happened, as JSON
        status_line, _, rest = answer.partition(b"\r\n")
        assert b" 400 " in status_line, answer[:500]
        assert b"application/json" in rest and b"nothing was stored" in rest, answer[:800]
    time.sleep(0.5)  # the worker finishes the request after the client went away
    assert_unchanged(server, pid)
    assert ": 0 orphans" in orphans_line(server, name)
    assert "Traceback" not in server.app.log()


def test_gzip_transfer_coding_is_501_and_stores_nothing(server, s3_server, s3_bucket):
    pid = "coding-gzip"
    server.create(pid, store_of("FilesystemStore", "coding", s3_server, s3_bucket))
    assert server.session.put(f"{server.base}/api/media/{pid}/content", data=ORIGINAL, timeout=60).ok
    body = b"gzipped?"
    answer = raw_request(
        server,
        put_head(server, pid, "Transfer-Encoding: gzip, chunked\r\n"),
        [b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)],
        half_close=True,
    )
    assert answer is not None and b" 501 " in answer.partition(b"\r\n")[0], answer
    assert b"gzip" in answer
    assert_unchanged(server, pid)


@pytest.fixture(scope="module")
def racing():
    """A server whose transactions that record events wait up to 50 ms before they commit (the
    row locks held that long), and whose reads wait as long between reading a media and opening
    its bytes: the windows where the races below used to go wrong, made wide enough to hit."""
    srv = Server(
        "mediastore-races-", 4, MEDIASTORE_FAILPOINTS="events.before_commit=delay,content.before_read=delay"
    )
    try:
        yield srv
    finally:
        srv.close()


ROUNDS = 10
PER_ROUND = 4


def test_deletes_and_tag_updates_racing_moves_see_the_media(racing):
    """Every DELETE of a media that exists answers 204 and removes it, and every tag update finds
    its media, whatever moves run at the same time."""
    server = racing
    stores = [
        {"type": "FilesystemStore", "bucket": "racing-a"},
        {"type": "HashdirStore", "bucket": "racing-b"},
    ]
    sessions = [server.client() for _ in range(2 * PER_ROUND)]
    moves, deletes, tags = [], [], []
    for round_no in range(ROUNDS):
        pids = [f"racing-{round_no}-{i}" for i in range(PER_ROUND)]
        for pid in pids:
            server.create(pid, stores[round_no % 2])
            assert server.session.put(f"{server.base}/api/media/{pid}/content", data=b"x" * 20_000).ok
        start = threading.Barrier(2 * PER_ROUND)

        def move(i: int, pids=pids, start=start, target=stores[(round_no + 1) % 2]) -> None:
            start.wait(timeout=30)
            response = sessions[i].patch(f"{server.base}/api/media/{pids[i]}", json={"store_config": target})
            moves.append(response.status_code)

        def delete_or_tag(i: int, pids=pids, start=start, round_no=round_no) -> None:
            start.wait(timeout=30)
            time.sleep(0.005 * (i + round_no % 3))
            session = sessions[PER_ROUND + i]
            if i % 2 == 0:
                deletes.append(session.delete(f"{server.base}/api/media/{pids[i]}").status_code)
            else:
                body = [{"pid": pids[i], "tags": [f"round-{round_no}"]}]
                response = session.patch(f"{server.base}/api/media/update/tags", json=body)
                tags.append((response.status_code, response.json().get("failures")))

        with ThreadPoolExecutor(2 * PER_ROUND) as pool:
            futures = [pool.submit(move, i) for i in range(PER_ROUND)]
            futures += [pool.submit(delete_or_tag, i) for i in range(PER_ROUND)]
            for future in futures:
                future.result(timeout=120)
        for i, pid in enumerate(pids):
            if i % 2 == 0:
                assert server.session.get(f"{server.base}/api/media/{pid}").status_code == 404
            else:
                assert f"round-{round_no}" in server.media(pid)["tags"]
                assert server.verify(pid)["ok"] is True
    assert set(deletes) == {204}, deletes
    assert set(moves) <= {204, 404, 409}, moves
    assert all(status == 200 and not failures for status, failures in tags), tags


def test_a_download_racing_a_delete_is_200_or_404(racing):
    server = racing
    store = {"type": "FilesystemStore", "bucket": "download-delete"}
    readers = [server.client() for _ in range(3)]
    deleter = server.client()
    seen: list[tuple[str, int]] = []
    for round_no in range(15):
        pid = f"dl-del-{round_no}"
        server.create(pid, store)
        assert server.session.put(f"{server.base}/api/media/{pid}/content", data=ORIGINAL).ok
        start = threading.Barrier(len(readers) + 1)

        def read(k: int, pid=pid, start=start) -> None:
            start.wait(timeout=30)
            path = ("content", "verify", "download")[k]
            for _ in range(40):  # until the media is gone
                url = (
                    f"{server.base}/api/{'download/' + pid if path == 'download' else f'media/{pid}/{path}'}"
                )
                response = readers[k].get(url, timeout=60)
                seen.append((path, response.status_code))
                if response.status_code == 200 and path == "content":
                    assert response.content == ORIGINAL
                if response.status_code != 200:
                    break

        def delete(pid=pid, start=start, pause=0.01 * (round_no % 4)) -> int:
            start.wait(timeout=30)
            time.sleep(pause)
            return deleter.delete(f"{server.base}/api/media/{pid}").status_code

        with ThreadPoolExecutor(len(readers) + 1) as pool:
            futures = [pool.submit(read, k) for k in range(len(readers))]
            deleted = pool.submit(delete)
            for future in futures:
                future.result(timeout=120)
            assert deleted.result(timeout=120) == 204
    assert {status for _, status in seen} <= {200, 404}, [s for s in seen if s[1] not in (200, 404)]


def test_a_lost_database_connection_answers_json_and_leaves_no_orphans(server, s3_server, s3_bucket):
    """The database ends the server's connections every 0.3 s while clients write and read: every
    answer is JSON, every acknowledged write is stored whole, and no object is left unreferenced."""
    if server.database is None:
        pytest.skip("PostgreSQL only: SQLite has no connection to lose")
    name = "db-loss"
    store = store_of("FilesystemStore", name, s3_server, s3_bucket)
    pids = [f"dbloss-{i}" for i in range(6)]
    for pid in pids:
        server.create(pid, store)
    stop = threading.Event()
    kills = []

    def terminate() -> None:
        with psycopg.connect(**server.database.params, dbname="postgres", autocommit=True) as conn:
            for _ in range(60):
                if stop.wait(0.3):
                    break
                killed = conn.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (server.database.name,),
                ).fetchone()[0]
                kills.append(killed)

    answers: list[tuple[str, int, str, bytes]] = []
    acknowledged: dict[str, bytes] = {}

    sessions = [server.client() for _ in range(4)]  # logged in before the connections start dying

    def client(k: int) -> None:
        session = sessions[k]
        for i in range(25):
            pid = pids[(k + i) % len(pids)]
            body = f"client {k} write {i} ".encode() + os.urandom(20_000)
            response = session.put(f"{server.base}/api/media/{pid}/content", data=body, timeout=60)
            answers.append(
                ("PUT", response.status_code, response.headers.get("Content-Type", ""), response.content)
            )
            if response.status_code == 200:
                acknowledged[pid] = body
            response = session.get(f"{server.base}/api/media/{pid}", timeout=60)
            answers.append(
                ("GET", response.status_code, response.headers.get("Content-Type", ""), response.content)
            )

    killer = threading.Thread(target=terminate)
    killer.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            for future in [pool.submit(client, k) for k in range(4)]:
                future.result(timeout=300)
    finally:
        stop.set()
        killer.join(timeout=30)
    assert sum(kills) > 0, "no connection was terminated: the test tested nothing"
    for method, status, content_type, content in answers:
        assert status != 500, (method, content[:300])
        if status >= 400:
            assert content_type.startswith("application/json"), (method, status, content[:300])
            assert b'"detail"' in content, (method, status, content[:300])
    failed_reads = [status for method, status, *_ in answers if method == "GET" and status != 200]
    assert len(failed_reads) <= len(answers) // 20, failed_reads  # a read is tried twice
    for pid in pids:
        media = server.media(pid)
        if media["store_status"] == "READY":
            stored = server.content(pid)
            assert (media["size"], media["checksum"]) == (len(stored), sha(stored))
            assert server.verify(pid)["ok"] is True
    assert ": 0 orphans" in orphans_line(server, name)


def test_a_presigned_url_cannot_change_the_bytes_after_completion(server, s3_server, s3_bucket):
    """Regression: the URL kept working after completion and overwrote the READY bytes in place
    (the media kept its first checksum, downloads returned other bytes, verify failed)."""
    store = store_of("BucketStore", "final", s3_server, s3_bucket)
    body = {"mediadata": {"pid": "final-1", "pid_type": "pidtype", "store_config": store}}
    url = server.session.post(f"{server.base}/api/upload", json=body, timeout=30).json()["presigned_put"]
    with requests.Session() as s3:
        s3.trust_env = False
        assert s3.put(url, data=ORIGINAL, timeout=60).status_code == 200
        assert server.session.post(f"{server.base}/api/upload/final-1/complete", timeout=60).ok
        assert s3.put(url, data=b"written after completion", timeout=60).status_code == 200
    assert_unchanged(server, "final-1")


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_keys_null_means_keys_empty_on_every_metadata_update(server, s3_server, s3_bucket, method):
    store = store_of("FilesystemStore", "keys-null", s3_server, s3_bucket)
    metadata = {"a": {"b": 1}, "c": 2}
    results = []
    for keys in ("null", "[]", "absent"):
        pid = f"keys-{method}-{keys}"
        server.create(pid, store, metadata=metadata)
        item = {"pid": pid, "data": {"new": True}}
        if keys != "absent":
            item["keys"] = None if keys == "null" else []
        response = getattr(server.session, method)(
            f"{server.base}/api/media/update/metadata", json=[item], timeout=30
        )
        assert response.status_code == 200 and response.json()["successes"] == [pid], response.text
        results.append(server.media(pid)["metadata"])
    assert results[0] == results[1] == results[2], results


def test_pids_differing_only_by_unicode_normalisation_are_one_media(server, s3_server, s3_bucket):
    store = store_of("FilesystemStore", "unicode", s3_server, s3_bucket)

    def create(pid: str):
        body = {"pid": pid, "pid_type": "pidtype", "store_config": store}
        return server.session.post(f"{server.base}/api/media", json=body, timeout=30)

    nfc, nfd = "caf\u00e9-1", "cafe\u0301-1"
    assert create(nfc).status_code == 200
    again = create(nfd)
    assert again.status_code == 409, again.text
    assert server.media(nfd)["pid"] == nfc
    for bad, name in (("evil\u202e-1", "U+202E"), ("zero\u200b-1", "U+200B")):
        refused = create(bad)
        assert refused.status_code == 422 and name in refused.text, refused.text
