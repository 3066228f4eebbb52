"""/metrics: Prometheus text format that the reference parser reads, counting known requests by
route pattern, bytes, statements, media and verify checks; refused outside MEDIASTORE_METRICS_ALLOW
unless a token with mediastore.view_metrics comes along.

These run in one process (no PROMETHEUS_MULTIPROC_DIR); counters are process-wide, so each test
compares a scrape before with one after. tests/deploy/test_metrics_live.py checks gunicorn's workers.
"""

from __future__ import annotations

import base64
import io

import pytest
from django.core.management import call_command
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from mediastore import env
from tests.conftest import PASSWORD, ApiClient, media_body

pytestmark = pytest.mark.django_db


def scrape(client: Client | None = None, **extra) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of one scrape of /metrics."""
    response = (client or Client()).get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def requests_of(samples, route: str, status: str = "200", method: str = "GET") -> float:
    key = ("mediastore_http_requests_total", (("method", method), ("route", route), ("status", status)))
    return samples.get(key, 0.0)


def test_counts_a_known_request_by_route_pattern(api, id_types):
    assert api.post("/api/media", media_body("a/b.c")).status_code == 200
    before = scrape()
    for _ in range(3):
        assert api.get("/api/media/a/b.c").status_code == 200
    assert api.get("/api/media/nope").status_code == 404
    after = scrape()

    assert requests_of(after, "/api/media/{pid}") - requests_of(before, "/api/media/{pid}") == 3
    assert requests_of(after, "/api/media/{pid}", "404") - requests_of(before, "/api/media/{pid}", "404") == 1
    assert not any("a/b.c" in str(labels) or "nope" in str(labels) for _, labels in after)  # no raw paths
    latency = (
        "mediastore_http_request_duration_seconds_count",
        (("method", "GET"), ("route", "/api/media/{pid}")),
    )
    assert after[latency] - before.get(latency, 0) == 4
    queries = ("mediastore_db_queries_total", (("route", "/api/media/{pid}"),))
    assert after[queries] - before.get(queries, 0) >= 4  # token lookup and media read, each time


def test_bytes_media_and_verify_figures(api, id_types):
    before = scrape()
    data = b"0123456789"
    body = {"mediadata": media_body("up"), "base64": base64.b64encode(data).decode()}
    assert api.post("/api/upload", body).status_code == 200
    assert api.put_content("up", data * 2).status_code == 200
    assert b"".join(api.get("/api/media/up/content").streaming_content) == data * 2
    assert api.post("/api/media", media_body("pending")).status_code == 200
    call_command("verify", "--no-progress", stdout=io.StringIO())
    after = scrape()

    def delta(name, labels=()):
        return after.get((name, labels), 0) - before.get((name, labels), 0)

    assert delta("mediastore_bytes_uploaded_total") == 30
    assert delta("mediastore_bytes_downloaded_total") == 20
    assert after[("mediastore_media", (("status", "READY"),))] == 1
    assert after[("mediastore_media", (("status", "PENDING"),))] == 1
    assert after[("mediastore_media_verify_failed", ())] == 0
    assert delta("mediastore_verify_media_total", (("result", "ok"),)) == 1
    assert delta("mediastore_verify_bytes_total") == 20


def test_refused_from_an_address_not_allowed(db):
    response = Client().get("/metrics", REMOTE_ADDR="203.0.113.5")
    assert response.status_code == 403 and b"MEDIASTORE_METRICS_ALLOW" in response.content
    # A client cannot claim loopback: X-Forwarded-For counts only from a trusted proxy.
    forged = Client().get("/metrics", REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert forged.status_code == 403
    # Through nginx on this host (a trusted proxy) the client's own address is what counts.
    proxied = Client().get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert proxied.status_code == 403


def test_allowed_networks_come_from_the_setting(db, settings, monkeypatch):
    monkeypatch.setenv("MEDIASTORE_METRICS_ALLOW", "10.0.0.0/8")
    settings.MEDIASTORE_METRICS_ALLOW = env.get_networks("MEDIASTORE_METRICS_ALLOW", [])
    assert Client().get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert Client().get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_token_with_the_metrics_permission_is_allowed_from_anywhere(db, django_user_model):
    from django.contrib.auth.models import Permission

    monitor = django_user_model.objects.create_user(username="monitor", password=PASSWORD)
    django_user_model.objects.create_user(username="other", password=PASSWORD)
    monitor.user_permissions.add(Permission.objects.get(codename="view_metrics"))

    def token(name):
        return ApiClient().post("/api/login", {"username": name, "password": PASSWORD}).json()["token"]

    outside = {"REMOTE_ADDR": "203.0.113.5"}
    allowed = Client().get("/metrics", headers={"Authorization": f"Bearer {token('monitor')}"}, **outside)
    assert allowed.status_code == 200
    refused = Client().get("/metrics", headers={"Authorization": f"Bearer {token('other')}"}, **outside)
    assert refused.status_code == 403
    assert Client().get("/metrics", headers={"Authorization": "Bearer wrong"}, **outside).status_code == 403


def test_a_token_scrapes_only_with_the_scope_read_or_admin_and_while_it_lives(db, django_user_model):
    """The token's scopes apply to /metrics as to the API; an expired token is refused, not a 500."""
    from datetime import timedelta

    from django.contrib.auth.models import Permission
    from django.utils import timezone

    from mediastore.models import ApiToken

    monitor = django_user_model.objects.create_user(username="monitor", password=PASSWORD)
    monitor.user_permissions.add(Permission.objects.get(codename="view_metrics"))
    outside = {"REMOTE_ADDR": "203.0.113.5"}

    def status(scopes: list[str], expires=None) -> int:
        _, clear = ApiToken.objects.issue(monitor, name="scrape", scopes=scopes, expires=expires)
        return Client().get("/metrics", headers={"Authorization": f"Bearer {clear}"}, **outside).status_code

    assert status(["read"]) == 200 and status(["admin"]) == 200
    assert status(["write", "delete"]) == 403
    assert status(["read"], expires=timezone.now() - timedelta(seconds=1)) == 403


def uploaded(samples) -> float:
    return samples.get(("mediastore_bytes_uploaded_total", ()), 0.0)


def test_each_uploaded_byte_counts_once_for_base64_and_a_streamed_put(api, id_types):
    """mediastore_bytes_uploaded_total grows by the bytes an upload stores: once for a new media
    by base64, once for the base64 bytes of a PENDING media, once for each streamed PUT (a new
    media's bytes and replaced ones). tests/tus/ checks the same for resumable uploads."""
    data = b"0123456789" * 7

    def grows_by(call) -> float:
        before = uploaded(scrape())
        call()
        return uploaded(scrape()) - before

    def base64_upload(pid):
        body = {"mediadata": media_body(pid), "base64": base64.b64encode(data).decode()}
        assert api.post("/api/upload", body).status_code == 200

    assert grows_by(lambda: base64_upload("new")) == len(data)
    assert api.post("/api/media", media_body("pending")).status_code == 200
    assert grows_by(lambda: base64_upload("pending")) == len(data)
    assert grows_by(lambda: base64_upload("pending")) == 0  # a repeat stores nothing
    assert api.post("/api/media", media_body("raw")).status_code == 200
    assert grows_by(lambda: api.put_content("raw", data)) == len(data)
    assert grows_by(lambda: api.put_content("raw", data[:5])) == 5
