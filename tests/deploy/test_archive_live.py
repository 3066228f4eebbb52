"""POST/GET /api/download/archive through gunicorn (issue 28): 300 media, about 30 MiB, in a
FilesystemStore, an S3 bucket (moto) and a SqliteStore, downloaded as zip and as tar over a real
socket; Python's zipfile and tarfile open them and every member's SHA-256 equals the manifest and
the store's record. Objects deleted behind the server's back while the zip is being sent end up in
errors.txt, and the archive completes. (The 2,000-media, 600 MiB run with the server's memory
measured is bench/archive.py.)"""

from __future__ import annotations

import hashlib
import json
import random
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.support.servers import Server

pytestmark = pytest.mark.e2e

COUNT = 300


@pytest.fixture(scope="module")
def server(s3_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("archive-root")
    srv = Server("mediastore-archive-", 2, MEDIASTORE_STORAGE_ROOT=str(root))
    srv.add_s3(s3_server)
    srv.root = root
    try:
        yield srv
    finally:
        srv.close()


def test_zip_and_tar_of_three_store_types_through_gunicorn(server, s3_server, s3_bucket, tmp_path):
    stores = [
        {"type": "FilesystemStore", "bucket": "products"},
        {"type": "BucketStore", "bucket": f"{s3_bucket}/archive", "s3_url": s3_server.url},
        {"type": "SqliteStore", "bucket": "products.sqlite"},
    ]
    rng = random.Random("archive-live")
    payloads: dict[str, bytes] = {}
    for i in range(COUNT):
        pid = f"cruise42/{stores[i % 3]['type']}/img{i:03d}.png"
        data = rng.randbytes(20_000 + 600 * i)  # sizes all different: the victims are found by size
        server.create(pid, stores[i % 3], tags=["diatom"])
        response = server.session.put(f"{server.base}/api/media/{pid}/content", data=data, timeout=60)
        assert response.status_code == 200, response.text
        payloads[pid] = data
    records = {}
    for start in range(0, COUNT, 100):
        page = server.session.get(
            f"{server.base}/api/media", params={"tags": "diatom", "limit": 100, "offset": start}, timeout=60
        )
        records.update({media["pid"]: media for media in page.json()["items"]})
    assert len(records) == COUNT and sum(map(len, payloads.values())) > 30_000_000

    # zip, with a FilesystemStore file and an S3 object deleted behind the server's back mid-stream
    victims = [
        f"cruise42/FilesystemStore/img{COUNT - 3:03d}.png",
        f"cruise42/BucketStore/img{COUNT - 2:03d}.png",
    ]
    zip_path = tmp_path / "all.zip"
    with server.session.post(
        f"{server.base}/api/download/archive", json={"tags": ["diatom"]}, stream=True, timeout=300
    ) as response:
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"] == "application/zip"
        pieces = response.iter_content(256 * 1024)
        with zip_path.open("wb") as out:
            out.write(next(pieces))
            delete_behind_the_servers_back(
                server.root, s3_server, s3_bucket, [len(payloads[v]) for v in victims]
            )
            for piece in pieces:
                out.write(piece)
    with zipfile.ZipFile(zip_path) as archive:
        assert archive.testzip() is None
        found = {name: archive.read(name) for name in archive.namelist()}
    check(found, payloads, records, missing=victims)

    # tar, by GET with query parameters, flat
    tar_path = tmp_path / "all.tar"
    with server.session.get(
        f"{server.base}/api/download/archive",
        params={"tags": "diatom", "format": "tar", "layout": "flat"},
        stream=True,
        timeout=300,
    ) as response:
        assert response.status_code == 200, response.text
        with tar_path.open("wb") as out:
            for piece in response.iter_content(256 * 1024):
                out.write(piece)
    with tarfile.open(tar_path, "r:") as archive:
        found = {info.name: archive.extractfile(info).read() for info in archive.getmembers()}
    check(found, payloads, records, missing=victims, flat=True)


def delete_behind_the_servers_back(root: Path, s3_server, bucket: str, sizes: list[int]) -> None:
    """Remove the objects of these sizes from the FilesystemStore's directory and the bucket."""
    removed = 0
    for path in (root / "products").rglob("*"):
        if path.is_file() and path.stat().st_size in sizes:
            path.unlink()
            removed += 1
    client = s3_server.client()
    for item in client.list_objects_v2(Bucket=bucket, Prefix="archive/").get("Contents", []):
        if item["Size"] in sizes:
            client.delete_object(Bucket=bucket, Key=item["Key"])
            removed += 1
    assert removed == 2


def check(found: dict[str, bytes], payloads: dict[str, bytes], records: dict, *, missing, flat=False) -> None:
    """Every media but the ``missing`` ones is a member whose SHA-256 equals the manifest's and the
    record's; the missing ones are in errors.txt (and neither in the archive nor the manifest)."""
    manifest = {name: digest for digest, name in (line.split("  ", 1) for line in lines(found, "manifest"))}
    errors = dict(line.split("\t", 1) for line in lines(found, "errors"))
    assert set(errors) == set(missing) and all("missing" in reason for reason in errors.values()), errors
    assert [m["pid"] for m in json.loads(found["media.json"])] == list(payloads)
    for pid, data in payloads.items():
        member = "data/" + (pid.replace("/", "%2F") if flat else pid)
        if pid in missing:
            assert member not in found and member not in manifest
            continue
        digest = hashlib.sha256(found[member]).hexdigest()
        assert digest == hashlib.sha256(data).hexdigest() == manifest[member]
        assert records[pid]["checksum"] == f"sha256:{digest}"


def lines(found: dict[str, bytes], what: str) -> list[str]:
    name = {"manifest": "manifest-sha256.txt", "errors": "errors.txt"}[what]
    return found[name].decode().splitlines()
