"""Resumable uploads (tus) through real gunicorn with 4 workers, with tuspy, a maintained tus client
from PyPI: interrupted and resumed by a new client, a connection cut mid-PATCH, two PATCHes at once.

The issue asks for 200 MiB in 5 MiB chunks; on the shared CI box this sends 40 MiB in 5 MiB chunks
(the same code paths: several S3 parts, several PATCHes per worker). The 200 MiB upload and the
server's memory during it are measured by bench/bench_tus.py.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import subprocess
import threading
import time

import pytest
import requests
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError
from tusclient.storage.filestorage import FileStorage

from tests.deploy.readme import doc_example
from tests.support.processes import REPO
from tests.support.proxy import CuttingProxy
from tests.support.servers import Server

pytestmark = pytest.mark.e2e

MIB = 1 << 20
SIZE = 40 * MIB
CHUNK = 5 * MIB


@pytest.fixture(scope="module")
def server(s3_server):
    app = Server("mediastore-tus-", 4)
    try:
        app.add_s3(s3_server)
        yield app
    finally:
        app.close()


@pytest.fixture(scope="module")
def payload(tmp_path_factory):
    path = tmp_path_factory.mktemp("tus") / "payload.bin"
    with open(path, "wb") as out:
        for _ in range(SIZE // MIB):
            out.write(os.urandom(MIB))
    return path


def store_of(store_type: str, s3_server, bucket: str) -> dict:
    if store_type == "BucketStore":
        return {"type": "BucketStore", "bucket": f"{bucket}/tus", "s3_url": s3_server.url}
    return {"type": "FilesystemStore", "bucket": "tus-live"}


def uploader(server, base: str, path, pid: str, store: dict, storage: FileStorage):
    client = tus_client.TusClient(f"{base}/api/tus/", headers=dict(server.session.headers))
    metadata = {
        "pid": pid,
        "pid_type": "pidtype",
        "store": json.dumps(store),
        "filetype": "application/x-test",
    }
    return client.uploader(
        file_path=str(path), chunk_size=CHUNK, metadata=metadata, store_url=True, url_storage=storage
    )


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(MIB), b""):
            digest.update(block)
    return digest.hexdigest()


def assert_media_is(server, pid: str, path) -> None:
    media = server.media(pid)
    assert media["store_status"] == "READY" and media["size"] == SIZE
    assert media["checksum"] == f"sha256:{sha256_of(path)}"
    assert hashlib.sha256(server.content(pid)).hexdigest() == sha256_of(path)
    assert server.verify(pid)["ok"] is True


@pytest.mark.parametrize("store_type", ["FilesystemStore", "BucketStore"])
def test_tuspy_stops_halfway_and_a_new_client_resumes(
    server, payload, s3_server, s3_bucket, tmp_path, store_type
):
    store = store_of(store_type, s3_server, s3_bucket)
    pid = f"tus-resumed-{store_type}"
    storage = FileStorage(str(tmp_path / "urls.json"))
    first = uploader(server, server.base, payload, pid, store, storage)
    first.upload(stop_at=SIZE // 2)
    assert first.offset == SIZE // 2
    assert server.session.get(f"{server.base}/api/media/{pid}", timeout=30).status_code == 404
    second = uploader(server, server.base, payload, pid, store, storage)  # the URL from the storage
    assert second.url == first.url and second.offset == SIZE // 2
    second.upload()
    assert_media_is(server, pid, payload)


def test_a_connection_cut_mid_patch_keeps_what_arrived_and_the_upload_resumes(server, payload, tmp_path):
    """The proxy cuts the first PATCH's connection after 3 MiB (headers included): the bytes that
    reached the server count, the client resumes from the offset HEAD gives, and the result is intact."""
    proxy = CuttingProxy(int(server.base.rsplit(":", 1)[1]), cut_after=3 * MIB)
    try:
        storage = FileStorage(str(tmp_path / "urls.json"))
        store = {"type": "FilesystemStore", "bucket": "tus-cut"}
        first = uploader(server, proxy.url, payload, "tus-cut", store, storage)
        with pytest.raises(TusCommunicationError):
            first.upload()
        assert proxy.cuts == 1
        # The client saw the reset at once; the server is still reading what reached it. Until it
        # has, the upload is locked (a PATCH would be 409): wait for that, as a client's retry would.
        with open(payload, "rb") as handle:
            url = storage.get_item(first.fingerprinter.get_fingerprint(handle))
        head = {"Tus-Resumable": "1.0.0", **server.session.headers}
        for _ in range(100):
            if requests.head(url, headers=head, timeout=30).headers["Upload-Offset"] != "0":
                break
            time.sleep(0.3)
        second = uploader(server, proxy.url, payload, "tus-cut", store, storage)
        assert 3 * MIB - 4096 < second.offset < 3 * MIB  # all that arrived, less the PATCH's headers
        second.upload()
    finally:
        proxy.close()
    assert_media_is(server, "tus-cut", payload)


def test_two_patches_at_once_one_is_409_and_the_bytes_are_intact(server, payload):
    """A PATCH that holds the upload (its body half sent) makes another PATCH 409 on any worker;
    once it finishes, the upload completes with the right bytes."""
    data = payload.read_bytes()
    auth = server.session.headers["Authorization"]
    headers = {"Tus-Resumable": "1.0.0", "Authorization": auth}
    metadata = ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}"
        for key, value in {
            "pid": "tus-race",
            "pid_type": "pidtype",
            "store": '{"type": "FilesystemStore", "bucket": "race"}',
        }.items()
    )
    created = requests.post(
        f"{server.base}/api/tus/",
        headers={**headers, "Upload-Length": str(SIZE), "Upload-Metadata": metadata},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    path = created.headers["Location"].removeprefix(server.base)
    half_sent, others_done = threading.Event(), threading.Event()
    answers: dict[str, int] = {}

    def body():
        yield data[: 8 * MIB]
        half_sent.set()
        others_done.wait(60)
        yield data[8 * MIB :]

    def slow_patch():
        port = int(server.base.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        patch_headers = {
            **headers,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
            "Content-Length": str(SIZE),
        }
        conn.request("PATCH", path, body=body(), headers=patch_headers)
        answers["slow"] = conn.getresponse().status
        conn.close()

    thread = threading.Thread(target=slow_patch)
    thread.start()
    try:
        assert half_sent.wait(60)
        statuses = []
        for _ in range(4):  # whichever worker takes it, the upload is locked
            other = requests.patch(
                f"{server.base}{path}",
                data=data[:MIB],
                headers={**headers, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
                timeout=60,
            )
            statuses.append(other.status_code)
            assert "locked" in other.json()["detail"]
        assert statuses == [409] * 4
    finally:
        others_done.set()
        thread.join(120)
    assert answers["slow"] == 204
    assert_media_is(server, "tus-race", payload)


PAGE = "docs/resumable-uploads.md"


def doc_shell_example(section: str) -> str:
    text = (REPO / PAGE).read_text().split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return text.split("```sh\n")[1].split("```", 1)[0]


def test_the_readme_examples_run_as_written(server, tmp_path, monkeypatch):
    """docs/resumable-uploads.md: the tuspy example, then the curl-only one, each uploads big.nc
    (12 MiB and a bit: three PATCHes) into the store `products` as the pid big.nc."""
    data = os.urandom(12 * MIB + 12345)
    (tmp_path / "big.nc").write_bytes(data)
    server.session.post(f"{server.base}/api/identifier", json={"name": "filename", "pattern": ""}, timeout=30)
    monkeypatch.chdir(tmp_path)
    code = doc_example(PAGE, 0, ["MS", "TOKEN"])
    token = server.session.headers["Authorization"].removeprefix("Bearer ")
    exec(compile(code, PAGE, "exec"), {"MS": server.base, "TOKEN": token})
    media = server.media("big.nc")
    assert media["checksum"] == f"sha256:{hashlib.sha256(data).hexdigest()}" and media["tags"] == [
        "cruise-42"
    ]
    assert server.content("big.nc") == data
    assert server.session.delete(f"{server.base}/api/media/big.nc", timeout=30).status_code == 204

    script = doc_shell_example("With curl only")
    env = {**os.environ, "MS": server.base, "A": f"Authorization: {server.session.headers['Authorization']}"}
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["size"] == len(data)
    assert server.content("big.nc") == data


def test_the_readme_s3_multipart_example_runs_as_written(server, s3_server, s3_bucket, tmp_path, monkeypatch):
    """docs/resumable-uploads.md "S3 direct multipart": parts PUT to presigned URLs with requests,
    then completed."""
    data = os.urandom(17 * MIB + 321)
    (tmp_path / "big.nc").write_bytes(data)
    server.session.post(f"{server.base}/api/identifier", json={"name": "filename", "pattern": ""}, timeout=30)
    monkeypatch.chdir(tmp_path)
    code = doc_example(PAGE, 1, ["MS", "TOKEN", "STORE"])
    store = {"type": "BucketStore", "bucket": s3_bucket, "s3_url": s3_server.url}
    token = server.session.headers["Authorization"].removeprefix("Bearer ")
    exec(compile(code, PAGE, "exec"), {"MS": server.base, "TOKEN": token, "STORE": store})
    media = server.media("big-s3.nc")
    assert media["store_status"] == "READY" and media["size"] == len(data)
    assert media["checksum"] == f"sha256:{hashlib.sha256(data).hexdigest()}"
    assert server.content("big-s3.nc") == data
