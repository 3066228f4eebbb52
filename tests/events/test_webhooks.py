"""/api/webhooks: subscriptions are for admins, their secret is shown once and stored encrypted,
and targets that could reach the server's own network are refused (server-side request forgery).

Names are resolved through ``socket.getaddrinfo``, which these tests replace in-process with a
table (the OS resolver, not our code), so no query and no traffic leaves the machine.
"""

from __future__ import annotations

import socket

import pytest
from django.db import connection

from events.models import WebhookSubscription
from tests.conftest import PASSWORD, ApiClient
from tests.permissions_support import role
from tests.support.receiver import Receiver

pytestmark = pytest.mark.django_db

PUBLIC_ADDRESS = "93.184.216.34"  # resolved, never connected to


@pytest.fixture
def dns(monkeypatch):
    """``names[host] = address`` answers for that host; other names do not resolve."""
    names: dict[str, str] = {}

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        family = socket.AF_INET6 if ":" in names[host] else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (names[host], port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


def as_role(django_user_model, name: str) -> ApiClient:
    user = django_user_model.objects.create_user(username=f"u-{name}", password=PASSWORD)
    user.groups.add(role(name))
    token = ApiClient().post("/api/login", {"username": f"u-{name}", "password": PASSWORD}).json()["token"]
    return ApiClient(token)


def test_only_admins_manage_webhooks(api, django_user_model, dns):
    dns["hooks.example.org"] = PUBLIC_ADDRESS
    created = api.post("/api/webhooks", {"url": "https://hooks.example.org/in"})
    assert created.status_code == 200, created.content
    ident = created.json()["id"]
    for name in ("readers", "writers"):
        client = as_role(django_user_model, name)
        for method, path in [
            ("GET", "/api/webhooks"),
            ("POST", "/api/webhooks"),
            ("GET", f"/api/webhooks/{ident}"),
            ("PATCH", f"/api/webhooks/{ident}"),
            ("DELETE", f"/api/webhooks/{ident}"),
            ("GET", f"/api/webhooks/{ident}/deliveries"),
            ("POST", f"/api/webhooks/{ident}/test"),
            ("POST", f"/api/webhooks/{ident}/redeliver"),
            ("POST", f"/api/webhooks/{ident}/secret"),
        ]:
            response = client.request(method, path, {"url": "https://hooks.example.org/x", "cursor": 1})
            assert response.status_code == 403, (name, method, path, response.status_code)
            assert (
                "events." in response.json()["detail"] and "webhooksubscription" in response.json()["detail"]
            )
    assert WebhookSubscription.objects.count() == 1


def test_the_secret_is_shown_once_and_stored_encrypted(api, dns):
    dns["hooks.example.org"] = PUBLIC_ADDRESS
    body = {"url": "https://hooks.example.org/in", "types": ["media.created"], "tags": ["x"]}
    created = api.post("/api/webhooks", body).json()
    secret = created["secret"]
    assert len(secret) >= 40
    assert created["types"] == ["media.created"] and created["tags"] == ["x"] and created["active"] is True
    shown = api.get(f"/api/webhooks/{created['id']}").json()
    assert "secret" not in shown and secret not in str(shown)
    assert secret not in str(api.get("/api/webhooks").json())
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT secret FROM {WebhookSubscription._meta.db_table}")
        [(stored,)] = cursor.fetchall()
    assert secret not in stored and stored.startswith("fernet:")


def test_patch_and_delete(api, id_types, dns):
    dns["hooks.example.org"] = PUBLIC_ADDRESS
    ident = api.post("/api/webhooks", {"url": "https://hooks.example.org/in"}).json()["id"]
    changed = api.patch(f"/api/webhooks/{ident}", {"active": False, "pid_types": ["doi"], "tags": ["a", "b"]})
    assert changed.status_code == 200, changed.content
    assert changed.json()["active"] is False and changed.json()["pid_types"] == ["doi"]
    assert changed.json()["tags"] == ["a", "b"] and changed.json()["url"] == "https://hooks.example.org/in"
    assert api.patch(f"/api/webhooks/{ident}", {"types": ["media.nonsense"]}).status_code == 422
    bad_type = api.patch(f"/api/webhooks/{ident}", {"pid_types": ["nope"]})
    assert bad_type.status_code == 422 and bad_type.json()["detail"][0]["error"] == "bad pid_type: nope"
    refused = api.patch(f"/api/webhooks/{ident}", {"url": "https://169.254.169.254/"})
    assert refused.status_code == 422
    assert api.get(f"/api/webhooks/{ident}").json()["url"] == "https://hooks.example.org/in"
    assert api.delete(f"/api/webhooks/{ident}").status_code == 204
    assert api.get(f"/api/webhooks/{ident}").status_code == 404
    assert api.delete(f"/api/webhooks/{ident}").status_code == 404
    assert api.patch(f"/api/webhooks/{ident}", {"active": True}).status_code == 404


@pytest.mark.parametrize(
    ("url", "resolves_to", "says"),
    [
        ("http://127.0.0.1:9/hook", None, "http:// webhook targets are only allowed"),
        ("https://127.0.0.1/hook", None, "127.0.0.1, which is not a public address"),
        ("http://169.254.169.254/latest/meta-data", None, "http:// webhook targets are only allowed"),
        ("https://169.254.169.254/latest/meta-data", None, "169.254.169.254, which is not a public"),
        ("https://[::1]/hook", None, "::1, which is not a public address"),
        ("https://[fd00:ec2::254]/", None, "not a public address"),
        ("https://internal.example.org/hook", "10.0.0.1", "resolves to 10.0.0.1"),
        ("https://cgnat.example.org/hook", "100.64.1.1", "resolves to 100.64.1.1"),
        ("https://mapped.example.org/hook", "::ffff:192.168.1.1", "not a public address"),
        # 6to4 and Teredo embedding a non-public IPv4 (a 6to4 relay reaches 127.0.0.1; prober finding).
        ("https://[2002:7f00:1::]/hook", None, "2002:7f00:1::, which is not a public address"),
        ("https://sixtofour.example.org/hook", "2002:a9fe:a9fe::1", "not a public address"),
        ("https://teredo.example.org/hook", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "not a public address"),
        ("https://zero.example.org/hook", "0.0.0.0", "not a public address"),
        ("https://multicast.example.org/hook", "224.0.0.1", "not a public address"),
        ("https://nowhere.example.org/hook", "", "does not resolve"),
        ("ftp://hooks.example.org/hook", None, "must be an absolute https:// URL"),
        ("https://user:pw@hooks.example.org/hook", None, "must not carry credentials"),
        ("/relative", None, "must be an absolute https:// URL"),
    ],
)
def test_targets_that_could_reach_inside_are_refused(api, dns, url, resolves_to, says):
    dns["hooks.example.org"] = PUBLIC_ADDRESS
    if resolves_to:
        dns[url.split("/")[2]] = resolves_to
    response = api.post("/api/webhooks", {"url": url})
    assert response.status_code == 422, response.content
    assert says in response.json()["detail"][0]["error"]
    assert not WebhookSubscription.objects.exists()


def test_the_allow_list_admits_named_hosts_and_networks(api, dns, settings):
    dns["internal.example.org"] = "10.0.0.1"
    dns["lab.example.org"] = "192.168.7.7"
    settings.MEDIASTORE_WEBHOOK_ALLOW_HOSTS = ["127.0.0.1", "internal.example.org", "192.168.0.0/16"]
    for url in [
        "http://127.0.0.1:9/hook",
        "http://internal.example.org/hook",
        "https://lab.example.org/hook",  # its address is in a listed network
    ]:
        assert api.post("/api/webhooks", {"url": url}).status_code == 200, url
    # http:// needs the host itself listed: a listed network covers the address, not the name
    assert api.post("/api/webhooks", {"url": "http://lab.example.org/hook"}).status_code == 422
    # a name is matched exactly: no other name, no suffix
    dns["other.internal.example.org"] = "10.0.0.2"
    assert api.post("/api/webhooks", {"url": "https://other.internal.example.org/"}).status_code == 422


def test_deliveries_list_keeps_the_last_hundred(api, settings):
    settings.MEDIASTORE_WEBHOOK_ALLOW_HOSTS = ["127.0.0.1"]
    with Receiver() as receiver:
        ident = api.post("/api/webhooks", {"url": receiver.url}).json()["id"]
        for _ in range(103):
            sent = api.post(f"/api/webhooks/{ident}/test")
            assert sent.status_code == 200 and sent.json()["ok"] is True, sent.content
    deliveries = api.get(f"/api/webhooks/{ident}/deliveries").json()
    assert len(deliveries) == 100 and len(receiver.received) == 103
    ids = [received.headers["X-Mediastore-Delivery"] for received in receiver.received]
    assert [d["delivery_id"] for d in deliveries] == ids[::-1][:100]  # newest first
    assert all(d["type"] == "webhook.test" and d["status"] == 200 and d["cursor"] is None for d in deliveries)


def test_the_admin_lists_and_edits_subscriptions_without_their_secret(api, dns, django_user_model):
    from django.test import Client

    dns["hooks.example.org"] = PUBLIC_ADDRESS
    created = api.post("/api/webhooks", {"url": "https://hooks.example.org/in"}).json()
    admin = django_user_model.objects.create_superuser(username="root", password=PASSWORD)
    browser = Client()
    browser.force_login(admin)
    listing = browser.get("/admin/events/webhooksubscription/")
    assert listing.status_code == 200 and "hooks.example.org" in listing.content.decode()
    page = browser.get(f"/admin/events/webhooksubscription/{created['id']}/change/")
    assert page.status_code == 200 and created["secret"] not in page.content.decode()
    form = {
        "url": "https://169.254.169.254/",
        "types": '["media.created"]',
        "pid_types": "[]",
        "tags": "[]",
        "active": "on",
        "deliveries-TOTAL_FORMS": "0",
        "deliveries-INITIAL_FORMS": "0",
    }
    refused = browser.post(f"/admin/events/webhooksubscription/{created['id']}/change/", form)
    assert refused.status_code == 200 and "not a public address" in refused.content.decode()
    bad_type = browser.post(
        f"/admin/events/webhooksubscription/{created['id']}/change/",
        {**form, "url": "https://hooks.example.org/new", "types": '["nonsense"]'},
    )
    assert bad_type.status_code == 200 and "unknown event types" in bad_type.content.decode()
    saved = browser.post(
        f"/admin/events/webhooksubscription/{created['id']}/change/",
        {**form, "url": "https://hooks.example.org/new"},
    )
    assert saved.status_code == 302, saved.content.decode()[:2000]
    shown = api.get(f"/api/webhooks/{created['id']}").json()
    assert shown["url"] == "https://hooks.example.org/new" and shown["types"] == ["media.created"]
    assert browser.get("/admin/events/webhooksubscription/add/").status_code == 403
