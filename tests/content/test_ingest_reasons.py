"""History rows that manage.py ingest makes say so: reason ``ingest: <path>`` (issue 33, item 10c).

Regression: an ingested media's history rows had no reason, so its history could not tell bytes a
client uploaded from a file an operator ingested; imports already said "imported from the earlier
server" (tests/importer). Every way ingest writes is covered: a new media with its bytes, bytes
replaced (``--replace``), and ``--in-place``, new and registering a PENDING media.
"""

from __future__ import annotations

import pytest

from tests.content.test_ingest import ingest

pytestmark = pytest.mark.django_db(transaction=True)

ARGS = ["--pid-type", "local"]


def reason_for(path) -> str:
    """``ingest: <path>``, cut at the front to the 100 characters of a history reason when the
    temporary directory makes it longer (pytest-xdist's workers add ``popen-gw0/`` to it)."""
    whole = f"ingest: {path}"
    return whole if len(whole) <= 100 else "ingest: …" + whole[-(100 - len("ingest: …")) :]


def reasons(api, pid: str) -> list[str | None]:
    """The change reasons of the media's history, newest first."""
    response = api.get(f"/api/media/{pid}/history")
    assert response.status_code == 200, response.content
    return [entry["reason"] for entry in response.json()]


def test_every_history_row_of_ingest_names_the_file(api, ingest_stores, tmp_path):
    store = ingest_stores["FilesystemStore"]
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_bytes(b"first")
    ingest(str(source), *store, *ARGS)
    assert reasons(api, "a.txt") == [reason_for(source / "a.txt")]

    (source / "a.txt").write_bytes(b"second")
    ingest(str(source), *store, *ARGS, "--replace")
    assert reasons(api, "a.txt") == [reason_for(source / "a.txt")] * 2

    incoming = tmp_path / "root" / "products" / "incoming"
    incoming.mkdir(parents=True)
    (incoming / "c.dat").write_bytes(b"in place")
    ingest(str(incoming), *store, *ARGS, "--in-place")
    assert reasons(api, "c.dat") == [reason_for(incoming / "c.dat")]


def test_registering_a_pending_media_in_place(api, ingest_stores, tmp_path):
    """The media was made through the API and pointed at the file; ingest completes it with its
    reason and, no type having been declared, application/octet-stream (item 10b)."""
    store = {"type": "FilesystemStore", "bucket": "products"}
    created = api.post("/api/media", {"pid": "d.dat", "pid_type": "local", "store_config": store})
    assert created.status_code == 200, created.content
    keyed = api.put("/api/media/update/storekeys", [{"pid": "d.dat", "store_key": "waiting/d.dat"}])
    assert keyed.json()["successes"] == ["d.dat"]
    waiting = tmp_path / "root" / "products" / "waiting"
    waiting.mkdir(parents=True)
    (waiting / "d.dat").write_bytes(b"registered")
    ingest(str(waiting), *ingest_stores["FilesystemStore"], *ARGS, "--in-place")
    media = api.get("/api/media/d.dat").json()
    assert (media["store_status"], media["content_type"]) == ("READY", "application/octet-stream")
    assert reasons(api, "d.dat")[0] == reason_for(waiting / "d.dat")


def test_a_long_path_keeps_its_end(api, ingest_stores, tmp_path):
    deep = tmp_path / "src" / ("x" * 60) / ("y" * 60)
    deep.mkdir(parents=True)
    (deep / "deep-file.txt").write_bytes(b"deep")
    ingest(str(tmp_path / "src"), *ingest_stores["FilesystemStore"], *ARGS)
    [reason] = reasons(api, f"{'x' * 60}/{'y' * 60}/deep-file.txt")
    assert len(reason) == 100 and reason.startswith("ingest: …") and reason.endswith("y/deep-file.txt")
