"""S3 like production uses it, against a real moto server: a store configuration is probed when it
is created or its S3 configuration changes (422 naming what failed, nothing saved, ``?probe=false``
to skip), and per-configuration region and addressing style reach the requests botocore sends (seen
by a loopback HTTP proxy that records them, not by mocking the client)."""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from stores.models import S3Config, StoreConfig
from tests.conftest import error_message
from tests.support.ports import free_port

pytestmark = pytest.mark.django_db


def s3cfg(api, s3_server, **over) -> dict:
    body = {
        "url": s3_server.url,
        "access_key": s3_server.access_key,
        "secret_key": s3_server.secret_key,
        **over,
    }
    response = api.post("/api/s3cfg", body)
    assert response.status_code == 200, response.content
    return response.json()


def bucket_store(bucket: str, url: str) -> dict:
    return {"type": "BucketStore", "bucket": bucket, "s3_url": url}


def test_a_good_bucket_store_is_probed_and_created(api, s3_server, s3_bucket):
    s3cfg(api, s3_server)
    response = api.post("/api/store", bucket_store(f"{s3_bucket}/probed", s3_server.url))
    assert response.status_code == 200, response.content
    assert StoreConfig.objects.filter(pk=response.json()["pk"]).exists()
    # the probe took its object away again
    assert s3_server.client().list_objects_v2(Bucket=s3_bucket).get("KeyCount", 0) == 0


@pytest.mark.parametrize(
    "keys,code",
    [
        ({"access_key": "AKIAWRONGWRONGWRONG0"}, "InvalidAccessKeyId"),
        ({"secret_key": "not-the-secret"}, "SignatureDoesNotMatch"),
    ],
)
def test_wrong_keys_are_422_naming_the_s3_error_and_nothing_is_saved(api, s3_server, s3_bucket, keys, code):
    access_key, secret_key = s3_server.create_credentials()
    s3cfg(api, s3_server, **{"access_key": access_key, "secret_key": secret_key, **keys})
    store = bucket_store(s3_bucket, s3_server.url)
    with s3_server.enforce_auth():
        response = api.post("/api/store", store)
        message = error_message(response)
        assert code in message and "probe" in message, message
        assert not StoreConfig.objects.exists()
        skipped = api.post("/api/store?probe=false", store)
    assert skipped.status_code == 200, skipped.content
    assert StoreConfig.objects.filter(pk=skipped.json()["pk"]).exists()


def test_a_missing_bucket_is_422_and_probe_false_creates_it_anyway(api, s3_server):
    s3cfg(api, s3_server)
    store = bucket_store("no-such-bucket-anywhere", s3_server.url)
    message = error_message(api.post("/api/store", store))
    assert "S3 bucket 'no-such-bucket-anywhere' does not exist" in message, message
    assert not StoreConfig.objects.exists()
    assert api.post("/api/store?probe=false", store).status_code == 200


def test_the_servers_setting_decides_when_the_request_does_not(api, s3_server, settings):
    settings.MEDIASTORE_PROBE_STORES = False
    s3cfg(api, s3_server)
    store = bucket_store("no-such-bucket-either", s3_server.url)
    assert "does not exist" in error_message(api.post("/api/store?probe=true", store))
    assert api.post("/api/store", store).status_code == 200


def test_an_endpoint_that_refuses_connections_is_422(api):
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    assert api.post("/api/s3cfg", {"url": url, "access_key": "a", "secret_key": "b"}).status_code == 200
    message = error_message(api.post("/api/store", bucket_store("bkt", url)))
    assert "unreachable (connection refused)" in message, message
    assert not StoreConfig.objects.exists()


def test_a_local_store_that_cannot_be_written_is_422(api, storage_root):
    """A ZipStore whose file is there but no zip archive: its probe cannot write a member."""
    (storage_root / "not-a.zip").write_bytes(b"this is not a zip archive\n" * 10)
    message = error_message(api.post("/api/store", {"type": "ZipStore", "bucket": "not-a.zip"}))
    assert "zip store 'not-a.zip' could not write" in message and "not a zip file" in message, message
    assert not StoreConfig.objects.exists()
    assert api.post("/api/store?probe=false", {"type": "ZipStore", "bucket": "not-a.zip"}).status_code == 200


def test_changing_an_s3_config_probes_its_stores(api, s3_server, s3_bucket):
    access_key, secret_key = s3_server.create_credentials()
    pk = s3cfg(api, s3_server, access_key=access_key, secret_key=secret_key)["pk"]
    store = api.post("/api/store", bucket_store(s3_bucket, s3_server.url)).json()
    wrong = {"url": s3_server.url, "access_key": access_key, "secret_key": "rotated-wrongly"}
    with s3_server.enforce_auth():
        response = api.put(f"/api/s3cfg/{pk}", wrong)
        message = error_message(response)
        assert f"store {store['pk']}" in message and "SignatureDoesNotMatch" in message, message
        assert S3Config.objects.get(pk=pk).secret_key == secret_key  # nothing changed
        assert api.put(f"/api/s3cfg/{pk}?probe=false", wrong).status_code == 204
    assert S3Config.objects.get(pk=pk).secret_key == "rotated-wrongly"


def test_one_key_without_the_other_is_422(api, s3_server):
    for keys in ({"access_key": "only"}, {"secret_key": "only"}):
        message = error_message(api.post("/api/s3cfg", {"url": s3_server.url, **keys}))
        assert "both access_key and secret_key, or neither" in message


def test_a_config_without_keys_uses_the_credential_chain(api, s3_server, s3_bucket, monkeypatch):
    """In this process: keys from AWS_* (the live test does the same through gunicorn)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    response = api.post("/api/s3cfg", {"url": s3_server.url})
    assert response.status_code == 200
    assert S3Config.objects.get().access_key == "" and S3Config.objects.get().secret_key_encrypted == ""
    assert api.post("/api/store", bucket_store(s3_bucket, s3_server.url)).status_code == 200


class RecordingProxy:
    """An HTTP proxy on loopback that records each request (method, host, path, Authorization) and
    forwards it to moto path-style, so a virtual-host request (``bucket.host``, which no DNS
    resolves here) still reaches the bucket."""

    def __init__(self, target: str, bucket: str) -> None:
        self.seen: list[tuple[str, str, str, str]] = []
        target_port = urlsplit(target).port
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                url = urlsplit(self.path)
                proxy.seen.append((self.command, url.netloc, url.path, self.headers.get("Authorization", "")))
                path = url.path
                if url.hostname.startswith(f"{bucket}."):
                    path = f"/{bucket}{path}"
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "proxy-connection")
                }
                upstream = http.client.HTTPConnection("127.0.0.1", target_port, timeout=30)
                upstream.request(self.command, path + (f"?{url.query}" if url.query else ""), body, headers)
                answer = upstream.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                upstream.close()

            do_GET = do_PUT = do_DELETE = do_HEAD = do_POST = _forward

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("style", ["path", "virtual"])
def test_region_and_addressing_style_reach_the_requests(api, s3_server, s3_bucket, settings, style):
    proxy = RecordingProxy(s3_server.url, s3_bucket)
    settings.MEDIASTORE_PROXIES = {"http": proxy.url}
    endpoint = f"http://s3.mediastore.test:{urlsplit(s3_server.url).port}"
    try:
        s3cfg(api, s3_server, url=endpoint, region="eu-west-3", addressing_style=style)
        assert api.post("/api/store", bucket_store(f"{s3_bucket}/styled", endpoint)).status_code == 200
    finally:
        proxy.close()
    assert [method for method, *_ in proxy.seen] == ["PUT", "GET", "DELETE"]  # the probe
    for _method, host, path, authorization in proxy.seen:
        if style == "path":
            assert host.startswith("s3.mediastore.test:") and path.startswith(f"/{s3_bucket}/styled/")
        else:
            assert host.startswith(f"{s3_bucket}.s3.mediastore.test:") and path.startswith("/styled/")
        assert "/eu-west-3/s3/aws4_request" in authorization
    assert api.get("/api/s3cfgs").json()[0]["addressing_style"] == style
