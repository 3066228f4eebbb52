"""Regression tests for the prober's findings (each test's docstring names the bug it guards)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from media.models import Media
from tests.conftest import create_media


@pytest.fixture
def staff(client, django_user_model):
    django_user_model.objects.create_superuser("root", "root@example.org", "pw")
    client.login(username="root", password="pw")
    return client


def test_admin_pages_of_held_or_expiring_media_render(api, id_types, staff):
    """Bug: the admin media page and its history page answered 500 (datetime not JSON serializable)
    for a media with a hold or an expiry; a frozen media's page must be read-only, its reason escaped."""
    later = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    create_media(api, "exp1", expires_at=later.isoformat())
    create_media(api, "held1")
    reason = "<script>alert(1)</script>"
    assert api.post("/api/media/held1/hold", {"reason": reason, "freeze": True}).status_code == 200
    for pid in ("exp1", "held1"):
        pk = Media.objects.get(pid=pid).pk
        for page in ("change", "history"):
            response = staff.get(f"/admin/media/media/{pk}/{page}/")
            assert response.status_code == 200, (pid, page)
            text = response.content.decode()
            assert "<script>alert(1)</script>" not in text
    pk = Media.objects.get(pid="held1").pk
    text = staff.get(f"/admin/media/media/{pk}/history/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    change = staff.get(f"/admin/media/media/{pk}/change/")
    assert change.context["has_change_permission"] is False
    assert 'name="_save"' not in change.content.decode()
    text = staff.get(f"/admin/media/media/{Media.objects.get(pid='exp1').pk}/history/").content.decode()
    assert later.isoformat() in text

