"""Token hygiene: purge_tokens deletes expired tokens; the admin list shows age, last use, expiry."""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from mediastore.models import ApiToken
from tests.conftest import ApiClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def tokens(user):
    """Three of alice's tokens: fresh and unused, old and used, expired; clear tokens by name."""
    now = timezone.now()
    clear = {}
    for name in ("fresh", "old", "expired"):
        row, clear[name] = ApiToken.objects.issue(user)
    ApiToken.objects.filter(prefix=clear["old"][:8]).update(
        created=now - timedelta(days=3, seconds=5), last_used=now - timedelta(hours=2, seconds=5)
    )
    ApiToken.objects.filter(prefix=clear["expired"][:8]).update(
        created=now - timedelta(days=40), expires=now - timedelta(days=10)
    )
    ApiToken.objects.filter(prefix=clear["fresh"][:8]).update(expires=now + timedelta(days=30))
    return clear


def purge(*args: str) -> str:
    out = StringIO()
    call_command("purge_tokens", *args, stdout=out)
    return out.getvalue()


def test_purge_tokens_deletes_only_expired_tokens(tokens):
    assert purge() == "Deleted 1 expired token(s).\n"
    assert sorted(row.prefix for row in ApiToken.objects.all()) == sorted(
        [tokens["fresh"][:8], tokens["old"][:8]]
    )
    for name in ("fresh", "old"):
        assert ApiClient(tokens[name]).get("/api/identifier/list").status_code == 200
    assert purge() == "Deleted 0 expired token(s).\n"


def test_purge_tokens_dry_run_deletes_nothing(tokens):
    assert purge("--dry-run") == "1 expired token(s) would be deleted (dry run).\n"
    assert ApiToken.objects.count() == 3


def test_a_token_expiring_now_is_expired_for_the_api_and_the_purge(user):
    row, clear = ApiToken.objects.issue(user)
    ApiToken.objects.filter(pk=row.pk).update(expires=timezone.now())
    assert ApiClient(clear).get("/api/identifier/list").status_code == 401
    assert purge() == "Deleted 1 expired token(s).\n"


@pytest.fixture
def admin_client_logged(client, django_user_model):
    django_user_model.objects.create_superuser("root", "root@example.org", "pw")
    client.login(username="root", password="pw")
    return client


def rows(page: str) -> dict[str, str]:
    """Each result row's HTML, keyed by the token prefix shown in it."""
    found = {}
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", page, flags=re.S):
        for prefix in re.findall(r">([A-Za-z0-9_-]{8})<", row):
            found[prefix] = row
    return found


def test_admin_token_list_shows_age_last_use_and_expiry(admin_client_logged, tokens):
    response = admin_client_logged.get("/admin/mediastore/apitoken/")
    assert response.status_code == 200
    page = response.content.decode()
    for header in ("Age", "Last use", "Expired"):
        assert f">{header}<" in page
    listed = rows(page)
    fresh, old, expired = (listed[tokens[name][:8]] for name in ("fresh", "old", "expired"))
    assert "never" in fresh and 'alt="False"' in fresh
    assert "3\xa0days" in old and "2\xa0hours ago" in old and 'alt="False"' in old
    assert "1\xa0month" in expired and 'alt="True"' in expired


def test_admin_token_list_filters_expired_tokens(admin_client_logged, tokens):
    expired = rows(admin_client_logged.get("/admin/mediastore/apitoken/?expired=yes").content.decode())
    assert set(expired) == {tokens["expired"][:8]}
    valid = rows(admin_client_logged.get("/admin/mediastore/apitoken/?expired=no").content.decode())
    assert set(valid) == {tokens["fresh"][:8], tokens["old"][:8]}
