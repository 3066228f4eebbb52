"""The start-up lock (mediastore/startlock.py): API hosts started together run migrate, the
accounts and collectstatic one at a time on PostgreSQL. tests/deploy/test_two_hosts_live.py starts
two hosts at once through bin/start."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from mediastore import startlock
from tests.support.postgres import pg_params

postgresql_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="advisory locks of PostgreSQL"
)


def other_session():
    import psycopg

    return psycopg.connect(dbname=connection.settings_dict["NAME"], autocommit=True, **pg_params())


@pytest.mark.django_db
@postgresql_only
def test_a_host_waits_while_another_holds_the_lock_and_frees_it_after(monkeypatch):
    monkeypatch.setattr(startlock, "WAIT_SECONDS", 0)
    monkeypatch.setattr(startlock, "POLL_SECONDS", 0.01)
    with other_session() as other:
        assert other.execute("SELECT pg_try_advisory_lock(%s)", [startlock.LOCK_KEY]).fetchone()[0]
        with pytest.raises(CommandError, match="another host held the start-up lock"):
            with startlock.one_host_at_a_time():
                pytest.fail("entered while another session held the lock")
        other.execute("SELECT pg_advisory_unlock(%s)", [startlock.LOCK_KEY])
        with startlock.one_host_at_a_time():
            held = other.execute("SELECT pg_try_advisory_lock(%s)", [startlock.LOCK_KEY]).fetchone()[0]
        assert held is False, "the lock is held inside the block"
        assert other.execute("SELECT pg_try_advisory_lock(%s)", [startlock.LOCK_KEY]).fetchone()[0]
        other.execute("SELECT pg_advisory_unlock(%s)", [startlock.LOCK_KEY])


@pytest.mark.django_db
def test_one_host_at_a_time_runs_the_command_it_names():
    out = io.StringIO()
    call_command(
        "one_host_at_a_time",
        "ensure_superuser",
        "--username",
        "locked",
        "--password",
        "x-9-long-pw",
        stdout=out,
    )

    assert get_user_model().objects.filter(username="locked").exists()
