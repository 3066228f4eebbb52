"""S3 secret keys and bearer tokens never leave the server: not in an API answer, an admin page or a log.

One scenario goes through everything that touches an S3 configuration (create, list, get, update,
stores using it, uploads and downloads through a moto server that checks signatures, presigned
URLs, errors, the admin with its history pages) with every logger at DEBUG, SQL included, and
then greps all of it for the secrets and tokens.
"""

import base64
import contextlib
import json
import logging

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext

from stores.models import S3Config
from tests.conftest import PASSWORD, ApiClient, media_body

pytestmark = pytest.mark.django_db

LOGGERS = [
    None,
    "django",
    "django.request",
    "django.db.backends",
    "botocore",
    "boto3",
    "s3transfer",
    "urllib3",
]


class Recorder:
    """Collects the body of every response it is handed (streamed ones read to the end)."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, str]] = []

    def __call__(self, what: str, response, expect: int = 200):
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert response.status_code == expect, (what, response.status_code, body[:300])
        self.bodies.append((what, body.decode("utf-8", "replace")))
        return body


def test_no_secret_or_token_in_any_answer_page_or_log(api, token, s3_server, s3_bucket, admin_client, caplog):
    ak1, sk1 = s3_server.create_credentials()
    ak2, sk2 = s3_server.create_credentials()
    admin_secret = "admin-typed-secret-3c9a1f"
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    seen = Recorder()

    def json_of(what, response, expect=200):
        return json.loads(seen(what, response, expect))

    with CaptureQueriesContext(connection) as queries, contextlib.ExitStack() as signatures_checked:
        signatures_checked.enter_context(s3_server.enforce_auth())
        login = ApiClient().post("/api/login", {"username": "alice", "password": PASSWORD})
        assert login.status_code == 200  # the one answer that carries a token: the one it issues
        token2 = login.json()["token"]
        other = ApiClient(token2)

        url = s3_server.url
        cfg = json_of(
            "s3cfg create", api.post("/api/s3cfg", {"url": url, "access_key": ak1, "secret_key": sk1})
        )
        json_of(
            "s3cfg create again", api.post("/api/s3cfg", {"url": url, "access_key": ak1, "secret_key": sk1})
        )
        seen(
            "s3cfg conflict", api.post("/api/s3cfg", {"url": url, "access_key": ak1, "secret_key": "x"}), 409
        )
        seen(
            "s3cfg userinfo",
            api.post(
                "/api/s3cfg", {"url": f"http://{ak1}:{sk1}@h.test", "access_key": ak1, "secret_key": sk1}
            ),
            422,
        )
        seen("s3cfgs", api.get("/api/s3cfgs"))
        seen("s3cfg get", other.get(f"/api/s3cfg/{cfg['pk']}"))
        json_of("identifier", api.post("/api/identifier", {"name": "local", "pattern": ""}))

        store = {"type": "BucketStore", "bucket": f"{s3_bucket}/objects", "s3_url": url}
        seen("store create", api.post("/api/store", store))
        seen("stores", api.get("/api/stores"))
        data = b"bytes signed with a decrypted secret"
        body = {"mediadata": media_body("p1", store_config=store), "base64": base64.b64encode(data).decode()}
        seen("upload", api.post("/api/upload", body))
        assert base64.b64decode(json_of("download", api.get("/api/download/p1"))["base64"]) == data

        seen(
            "s3cfg update",
            api.put(f"/api/s3cfg/{cfg['pk']}", {"url": url, "access_key": ak2, "secret_key": sk2}),
            204,
        )
        put = api.client.generic(
            "PUT",
            "/api/media/p1/content",
            data=b"new bytes",
            content_type="text/plain",
            headers={"Authorization": f"Bearer {token}"},
        )
        seen("content put", put)
        assert seen("content get", api.get("/api/media/p1/content")) == b"new bytes"
        seen("verify", api.get("/api/media/p1/verify"))
        seen("media", api.get("/api/media/p1"))
        seen("history", api.get("/api/media/p1/history"))
        presigned = json_of("download url", api.get("/api/download/url/p1"))
        signatures_checked.close()  # moto answers presigned URLs with 500 while it checks signatures
        assert requests.get(presigned["presigned_get"], timeout=10).content == b"new bytes"
        pending = json_of(
            "presigned upload", api.post("/api/upload", {"mediadata": media_body("p2", store_config=store)})
        )
        assert requests.put(pending["presigned_put"], data=b"direct", timeout=10).status_code == 200
        seen("complete", api.post("/api/upload/p2/complete"))
        missing = {**store, "bucket": "no-such-bucket-here"}
        body = {"mediadata": media_body("p3", store_config=missing), "base64": "aGk="}
        seen("storage failure", api.post("/api/upload", body), 502)
        seen("wrong token", ApiClient("not-a-token").get("/api/s3cfgs"), 401)

        pk = cfg["pk"]
        seen(
            "admin add",
            admin_client.post(
                "/admin/stores/s3config/add/",
                {"url": "http://s3.other.test", "access_key": "AKADMIN", "secret_key": admin_secret},
            ),
            302,
        )
        seen(
            "admin add refused",
            admin_client.post(
                "/admin/stores/s3config/add/",
                {"url": "http://u:p@bad.test", "access_key": "AK", "secret_key": admin_secret},
            ),
        )
        seen(
            "admin change keep",
            admin_client.post(
                f"/admin/stores/s3config/{pk}/change/", {"url": url, "access_key": ak2, "secret_key": ""}
            ),
            302,
        )
        record = S3Config.history.filter(id=pk).order_by("-history_id").first()
        for page in (
            "/admin/stores/s3config/",
            f"/admin/stores/s3config/{pk}/change/",
            f"/admin/stores/s3config/{pk}/history/",
            f"/admin/stores/s3config/{pk}/history/{record.history_id}/",
            "/admin/stores/storeconfig/",
            "/admin/mediastore/apitoken/",
        ):
            seen(page, admin_client.get(page))
        assert ak2 in dict(seen.bodies)["/admin/stores/s3config/"]  # the pages do show the configuration
        seen("logout", other.post("/api/logout"), 204)

    assert S3Config.objects.get(pk=pk).secret_key == sk2  # the admin kept it; moto accepted it above
    logs = caplog.text + "\n".join(query["sql"] for query in queries.captured_queries)
    assert "stores_s3config" in logs and "PUT" in logs  # SQL and request logs were captured
    for needle in (sk1, sk2, admin_secret, token, token2):
        assert needle not in logs
        leaking = [what for what, text in seen.bodies if needle in text]
        assert leaking == []
