"""manage.py ensure_s3cfg, which bin/dev --s3 uses to register its local S3 endpoint."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from stores.models import S3Config

pytestmark = pytest.mark.django_db

URL = "http://127.0.0.1:9"


def ensure(capsys, url=URL, access="ak", secret="sk") -> str:
    call_command("ensure_s3cfg", "--url", url, "--access-key", access, "--secret-key", secret)
    return capsys.readouterr().out.strip()


def test_creates_then_leaves_alone_then_updates_the_keys(capsys, api):
    assert ensure(capsys) == f"S3 configuration for {URL}: created"
    assert ensure(capsys) == f"S3 configuration for {URL}: unchanged"
    assert ensure(capsys, secret="other") == f"S3 configuration for {URL}: keys updated"
    [cfg] = S3Config.objects.all()
    assert (cfg.access_key, cfg.secret_key) == ("ak", "other")
    # The API sees it as if POST /api/s3cfg had made it; the keys are never shown.
    assert api.get("/api/s3cfgs").json() == [
        {"pk": cfg.pk, "url": URL, "region": "us-east-1", "addressing_style": "path"}
    ]


def test_a_bad_url_is_a_command_error(capsys):
    with pytest.raises(CommandError, match="S3 url must be an http"):
        ensure(capsys, url="ftp://example.org")
    assert not S3Config.objects.exists()
