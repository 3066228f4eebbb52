"""BucketStore against moto's S3 server: prefixes, etags, multipart, presigned URLs and failures."""

from __future__ import annotations

import hashlib
import io
import threading

import pytest
import requests

from mediastore.errors import StorageError
from stores.backends import (
    ObjectNotFound,
    S3Params,
    build_backend,
)
from stores.backends.bucket import PART_SIZE, presigned_get_url, s3_client
from tests.stores.backends.conftest import TrickleStream, payload, s3_params
from tests.support.ports import free_port
from tests.support.s3 import S3Server

# -- S3 -----------------------------------------------------------------------------------------


def test_bucket_store_puts_keys_under_the_prefix(s3_server: S3Server, s3_bucket: str) -> None:
    backend = build_backend("BucketStore", f"{s3_bucket}/some/prefix", s3_params(s3_server))
    backend.put("dir/key.txt", b"prefixed")

    listing = s3_server.client().list_objects_v2(Bucket=s3_bucket)
    assert [item["Key"] for item in listing["Contents"]] == ["some/prefix/dir/key.txt"]
    body = s3_server.client().get_object(Bucket=s3_bucket, Key="some/prefix/dir/key.txt")["Body"].read()
    assert body == b"prefixed"


def test_bucket_store_etag_is_the_unquoted_s3_etag(s3_server: S3Server, s3_bucket: str) -> None:
    backend = build_backend("BucketStore", s3_bucket, s3_params(s3_server))
    backend.put("k", b"etag me")

    assert backend.etag("k") == hashlib.md5(b"etag me").hexdigest()
    with pytest.raises(ObjectNotFound):
        backend.etag("missing")


def test_bucket_store_put_stream_uses_multipart_for_big_objects(s3_server: S3Server, s3_bucket: str) -> None:
    backend = build_backend("BucketStore", s3_bucket, s3_params(s3_server))
    data = payload(PART_SIZE + 123_457, seed=5)

    written = backend.put_stream("big", TrickleStream(data, step=1 << 20))

    assert written == len(data)
    assert backend.get("big") == data
    assert "-2" in s3_server.client().head_object(Bucket=s3_bucket, Key="big")["ETag"]  # two parts
    assert s3_server.client().list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_bucket_store_presigned_put_then_get(s3_server: S3Server, s3_bucket: str) -> None:
    backend = build_backend("BucketStore", f"{s3_bucket}/pre", s3_params(s3_server))
    data = payload(70_000, seed=3)

    url = backend.presigned_put("upload.bin", 300, "application/octet-stream")
    response = requests.put(url, data=data, headers={"Content-Type": "application/octet-stream"}, timeout=30)

    assert response.status_code == 200
    assert backend.get("upload.bin") == data
    head = s3_server.client().head_object(Bucket=s3_bucket, Key="pre/upload.bin")
    assert head["ContentType"] == "application/octet-stream"


def test_bucket_store_presigned_get_serves_the_bytes(s3_server: S3Server, s3_bucket: str) -> None:
    backend = build_backend("BucketStore", s3_bucket, s3_params(s3_server))
    backend.put("download.bin", b"fetch me over plain HTTP")

    response = requests.get(backend.presigned_get("download.bin", 300), timeout=30)

    assert response.status_code == 200
    assert response.content == b"fetch me over plain HTTP"


AWKWARD_KEYS = ["plain.bin", "dir/sub/a b+c%d.txt", "ünï/çødé~!*'()=&$@,;:.bin", "x?y#z"]


@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:9000", "http://127.0.0.1:9000/", "https://s3.example.org/base/path"]
)
def test_presigned_get_url_is_the_url_botocore_signs(endpoint: str) -> None:
    """Our signing shortcut gives byte for byte what ``generate_presigned_url`` gives."""
    params = S3Params(url=endpoint, access_key="AKIDEXAMPLE", secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCY")
    client = s3_client(params)
    for key in AWKWARD_KEYS:
        for _attempt in range(3):  # both must fall in the same second (X-Amz-Date)
            theirs = client.generate_presigned_url(
                "get_object", Params={"Bucket": "my-bucket", "Key": key}, ExpiresIn=600
            )
            ours = presigned_get_url(client, params, "my-bucket", key, 600)
            if theirs.split("X-Amz-Date=")[1][:16] == ours.split("X-Amz-Date=")[1][:16]:
                break
        assert ours == theirs, key


def test_presigned_get_reaches_each_awkward_key(s3_server: S3Server, s3_bucket: str) -> None:
    """The path of the URL names the right object, under a prefix with a space. (The signature is
    checked against botocore's above: moto's server answers 500 to any presigned GET, botocore's
    own included, while it enforces authentication.)"""
    backend = build_backend("BucketStore", f"{s3_bucket}/pre fix", s3_params(s3_server))
    for index, key in enumerate(AWKWARD_KEYS):
        backend.put(key, f"bytes {index}".encode())
    for index, key in enumerate(AWKWARD_KEYS):
        response = requests.get(backend.presigned_get(key, 300), timeout=30)
        assert response.status_code == 200, (key, response.text[:300])
        assert response.content == f"bytes {index}".encode()


def test_bucket_store_missing_bucket_is_a_storage_error(s3_server: S3Server) -> None:
    backend = build_backend("BucketStore", "no-such-bucket-here", s3_params(s3_server))
    expected = f"S3 bucket 'no-such-bucket-here' does not exist at {s3_server.url}"

    for call in (
        lambda: backend.put("k", b"x"),
        lambda: backend.put_stream("k", io.BytesIO(b"x")),
        lambda: backend.get("k"),
        lambda: backend.iter_bytes("k"),
        lambda: backend.exists("k"),
        lambda: backend.size("k"),
        lambda: backend.delete("k"),
    ):
        with pytest.raises(StorageError) as caught:
            call()
        assert caught.value.message == expected


def test_bucket_store_unreachable_endpoint_is_a_storage_error_without_secrets() -> None:
    port = free_port()  # free a moment ago: nobody listens on it
    params = S3Params(url=f"http://127.0.0.1:{port}", access_key="AKIDUNREACHABLE", secret_key="s3cr3t-v4lue")
    backend = build_backend("BucketStore", "bucket", params)

    for call in (
        lambda: backend.put("k", b"x"),
        lambda: backend.get("k"),
        lambda: backend.iter_bytes("k"),
        lambda: backend.exists("k"),
    ):
        with pytest.raises(StorageError) as caught:
            call()
        assert (
            caught.value.message == f"S3 endpoint http://127.0.0.1:{port} is unreachable (connection refused)"
        )
        assert "s3cr3t-v4lue" not in str(caught.value)
        assert "AKIDUNREACHABLE" not in str(caught.value)
        assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_bucket_store_endpoint_credentials_in_the_url_are_not_shown() -> None:
    port = free_port()
    params = S3Params(url=f"http://user:hunter2@127.0.0.1:{port}", access_key="a", secret_key="b")

    with pytest.raises(StorageError) as caught:
        build_backend("BucketStore", "bucket", params).get("k")

    assert "hunter2" not in str(caught.value)


def test_bucket_store_malformed_endpoint_is_a_storage_error() -> None:
    backend = build_backend("BucketStore", "bucket", S3Params("not a url at all", "a", "secret-b"))

    with pytest.raises(StorageError) as caught:
        backend.get("k")

    assert caught.value.message == "S3 endpoint not a url at all is not a valid URL"


def test_s3_clients_are_made_once_per_endpoint_and_credentials(settings) -> None:
    settings.MEDIASTORE_PROXIES = {}
    params = S3Params("http://127.0.0.1:9", "access", "secret")
    clients: list[object] = []
    barrier = threading.Barrier(4)

    def make() -> None:
        barrier.wait()
        clients.append(s3_client(S3Params("http://127.0.0.1:9", "access", "secret")))

    threads = [threading.Thread(target=make) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(clients) == 4 and all(client is clients[0] for client in clients)
    assert s3_client(params) is clients[0]
    assert s3_client(S3Params("http://127.0.0.1:9", "access", "other secret")) is not clients[0]
    settings.MEDIASTORE_PROXIES = {"http": "http://proxy.invalid:3128"}
    assert s3_client(params) is not clients[0]  # other proxies, other client


def test_bucket_store_refused_credentials_are_a_storage_error(s3_server: S3Server, s3_bucket: str) -> None:
    """Moto accepts any credentials unless told to check them; ``enforce_auth`` makes it check."""
    access_key, secret_key = s3_server.create_credentials()
    good = build_backend("BucketStore", s3_bucket, s3_params(s3_server, secret_key, access_key))
    wrong_secret = build_backend(
        "BucketStore", s3_bucket, s3_params(s3_server, "wrong-" + secret_key, access_key)
    )
    unknown_key = build_backend(
        "BucketStore", s3_bucket, s3_params(s3_server, secret_key, "AKIAUNKNOWN000000000")
    )
    refused = f"S3 endpoint {s3_server.url} refused the credentials of this store"

    with s3_server.enforce_auth():
        good.put("k", b"authorised")
        assert good.get("k") == b"authorised"
        for backend in (wrong_secret, unknown_key):
            for call in (lambda b=backend: b.put("k", b"x"), lambda b=backend: b.get("k")):
                with pytest.raises(StorageError) as caught:
                    call()
                assert caught.value.message.startswith(refused)
                # the S3 error code where S3 sends one (a GET's 403 has a body, a HEAD's has none)
                assert caught.value.message in (
                    refused,
                    f"{refused} (InvalidAccessKeyId)",
                    f"{refused} (SignatureDoesNotMatch)",
                )
                assert secret_key not in str(caught.value)


def test_s3_part_size_grows_with_the_size_hint() -> None:
    """S3 allows 10 000 parts: without growing parts, streamed objects stopped at about 78 GiB."""
    from stores.backends.bucket import MAX_PARTS, part_size_for

    assert part_size_for(None) == PART_SIZE == part_size_for(10)
    for size in (PART_SIZE * MAX_PARTS, PART_SIZE * MAX_PARTS + 1, 500 << 30, 5 << 40):
        part = part_size_for(size)
        assert part >= PART_SIZE and part % (1 << 20) == 0
        assert -(-size // part) <= MAX_PARTS


def test_presigned_get_with_an_endpoint_that_is_not_a_base_url_is_refused() -> None:
    """An endpoint with a query string would put the bucket and key inside that query."""
    params = S3Params(url="http://127.0.0.1:9/base?x=1", access_key="a", secret_key="b")
    with pytest.raises(StorageError):
        build_backend("BucketStore", "my-bucket", params).presigned_get("key.bin", 60)
