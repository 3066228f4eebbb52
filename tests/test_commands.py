"""Management commands that used to claim success when nothing happened."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command


def test_manage_py_test_points_to_bin_test():
    """Regression: `manage.py test` ran Django's runner, found none of the pytest suite and said
    "Ran 0 tests ... OK"."""
    with pytest.raises(CommandError, match="use bin/test") as raised:
        call_command("test")
    assert raised.value.returncode == 1


ACCOUNTS = {
    "MEDIASTORE_SUPERUSER": {"username": "root-admin", "password": "pw-123456", "email": "a@example.org"},
    "MEDIASTORE_SERVICEUSER": {"username": "pipeline", "password": "pw-654321", "email": "", "groups": []},
}


@pytest.mark.django_db
def test_start_steps_migrates_makes_both_accounts_and_collects_static_files(settings, tmp_path):
    """bin/start's steps in one process: what the four commands did one by one."""
    settings.STATIC_ROOT = tmp_path / "static"
    for name, account in ACCOUNTS.items():
        setattr(settings, name, account)
    out = io.StringIO()
    call_command("start_steps", stdout=out, stderr=io.StringIO())
    assert "No migrations to apply." in out.getvalue()  # migrate ran (the test database is migrated)
    users = get_user_model().objects
    admin, pipeline = users.get(username="root-admin"), users.get(username="pipeline")
    assert admin.is_superuser and admin.is_staff and admin.check_password("pw-123456")
    assert not pipeline.is_staff and pipeline.check_password("pw-654321")
    assert list(pipeline.groups.values_list("name", flat=True)) == ["admins"]
    assert (tmp_path / "static" / "admin" / "css" / "base.css").is_file()


@pytest.mark.django_db
def test_start_steps_stops_at_the_first_step_that_fails(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path / "static"
    for name, account in ACCOUNTS.items():
        setattr(settings, name, account)
    settings.MEDIASTORE_SUPERUSER = {**ACCOUNTS["MEDIASTORE_SUPERUSER"], "password": ""}
    with pytest.raises(CommandError, match="DJANGO_SUPERUSER_PASSWORD"):
        call_command("start_steps", stdout=io.StringIO(), stderr=io.StringIO())
    assert not get_user_model().objects.filter(username__in=["root-admin", "pipeline"]).exists()
    assert not (tmp_path / "static").exists()
