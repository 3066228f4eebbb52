"""manage.py verify: the fixity audit records each media's outcome, emits an event for a failure
and exits non-zero; --store, --older-than and --pid choose what is checked."""

from __future__ import annotations

import base64
import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from media.models import Media, MediaEvent
from tests.conftest import media_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def fs_store(settings, tmp_path):
    settings.MEDIASTORE_STORAGE_ROOT = str(tmp_path / "root")
    return {"type": "FilesystemStore", "bucket": "archive"}


def upload(api, pid: str, store: dict, data: bytes) -> None:
    body = {"mediadata": media_body(pid, store_config=store), "base64": base64.b64encode(data).decode()}
    assert api.post("/api/upload", body).status_code == 200


def stored_file(pid: str):
    media = Media.objects.select_related("store_config").get(pid=pid)
    [directory] = media.store_config.backend().local_paths()
    return directory / media.store_key


def corrupt(pid: str) -> None:
    """Overwrite the stored file in place, behind the server's back (bit rot)."""
    path = stored_file(pid)
    path.write_bytes(b"X" + path.read_bytes()[1:])


def verify(*args: str) -> tuple[str, CommandError | None]:
    out = io.StringIO()
    try:
        call_command("verify", *args, "--no-progress", stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


def test_good_bytes_are_recorded_ok_without_a_new_version_or_event(api, id_types, fs_store):
    upload(api, "good", fs_store, b"fine bytes")
    before = api.get("/api/media/good").json()
    events = MediaEvent.objects.count()
    history = Media.history.count()

    out, error = verify()

    assert error is None, out
    assert "verified 1 media, 10 bytes" in out and "1 ok, 0 failed" in out
    media = Media.objects.get(pid="good")
    assert media.verify_ok is True and media.verify_error == "" and media.verified_at is not None
    after = api.get("/api/media/good").json()
    assert (after["mark"], after["version"]) == (before["mark"], before["version"])
    assert MediaEvent.objects.count() == events and Media.history.count() == history


def test_corrupted_file_is_recorded_as_failure_with_an_event_and_exit_1(api, id_types, fs_store):
    upload(api, "good", fs_store, b"fine bytes")
    upload(api, "rotten", fs_store, b"will rot")
    corrupt("rotten")

    out, error = verify()

    assert error is not None and error.returncode == 1
    assert "1 ok, 1 failed" in out and "FAILED rotten: checksum sha256:" in out
    rotten = Media.objects.get(pid="rotten")
    assert rotten.verify_ok is False and rotten.verify_error.startswith("checksum sha256:")
    assert Media.objects.get(pid="good").verify_ok is True
    event = MediaEvent.objects.filter(type="media.verify_failed").get()
    assert event.pid == "rotten" and event.version == rotten.version and event.mark == rotten.mark
    assert event.media["verify"]["ok"] is False and event.media["verify"]["error"] == rotten.verify_error
    feed = api.get("/api/events?types=media.verify_failed").json()["items"]
    assert [item["pid"] for item in feed] == ["rotten"]


def test_missing_object_is_a_failure(api, id_types, fs_store):
    upload(api, "gone", fs_store, b"soon gone")
    stored_file("gone").unlink()

    out, error = verify("--pid", "gone")

    assert error is not None
    assert Media.objects.get(pid="gone").verify_error.startswith("missing:")


def test_older_than_checks_only_media_never_or_long_ago_verified(api, id_types, fs_store):
    for pid in ("never", "recent", "old"):
        upload(api, pid, fs_store, pid.encode())
    now = timezone.now()
    Media.objects.filter(pid="recent").update(verified_at=now - timedelta(days=2), verify_ok=True)
    Media.objects.filter(pid="old").update(verified_at=now - timedelta(days=40), verify_ok=True)

    out, error = verify("--older-than", "30d")

    assert error is None and "verified 2 media" in out
    checked = dict(Media.objects.values_list("pid", "verified_at"))
    assert checked["recent"] == now - timedelta(days=2)  # untouched
    assert checked["old"] > now - timedelta(minutes=5) and checked["never"] > now - timedelta(minutes=5)


def test_store_option_limits_the_audit(api, id_types, fs_store):
    upload(api, "on-fs", fs_store, b"a")
    upload(api, "in-ram", {"type": "DictStore", "bucket": "tests"}, b"b")

    out, error = verify("--store", "FilesystemStore:/archive")

    assert error is None and "verified 1 media" in out
    assert Media.objects.get(pid="on-fs").verified_at is not None
    assert Media.objects.get(pid="in-ram").verified_at is None


def test_a_pid_that_does_not_exist_is_an_error_naming_it(api, id_types, fs_store):
    """Regression: `verify --pid` with a typo verified 0 media and exited 0."""
    upload(api, "real", fs_store, b"bytes")
    out, error = verify("--pid", "real", "--pid", "typo")
    assert error is not None and error.returncode == 1
    assert "no media with pid 'typo'" in str(error) and "'real'" not in str(error)
    assert Media.objects.get(pid="real").verified_at is None  # nothing verified
    assert api.post("/api/media", media_body("pending", store_config=fs_store)).status_code == 200
    out, error = verify("--pid", "pending")
    assert error is not None and "'pending' have no stored bytes yet" in str(error)
    out, error = verify("--pid", "real")
    assert error is None and "verified 1 media" in out


def test_bad_options_are_refused(db):
    assert "not an age" in str(verify("--older-than", "30 days")[1])
    assert "no store configuration" in str(verify("--store", "FilesystemStore:nowhere")[1])
    assert "TYPE:BUCKET" in str(verify("--store", "nowhere")[1])


@pytest.mark.django_db(transaction=True)
def test_workers_check_everything_once(api, id_types, fs_store):
    """Threads, each with its own connection (runs on PostgreSQL: SQLite's in-memory test database
    is shared between threads in shared-cache mode, whose table locks do not wait; a real SQLite
    file waits up to its 30 s timeout instead)."""
    if connection.vendor == "sqlite":
        pytest.skip("threads on the in-memory shared-cache SQLite test database fail with table locks")
    for n in range(12):
        upload(api, f"m{n}", fs_store, f"bytes {n}".encode())
    corrupt("m5")

    out, error = verify("--workers", "3")

    assert error is not None and "11 ok, 1 failed" in out
    assert Media.objects.filter(verified_at__isnull=True).count() == 0
    assert MediaEvent.objects.filter(type="media.verify_failed").count() == 1


def test_ctrl_c_stops_and_keeps_what_was_checked(api, id_types, fs_store):
    from content import fixity

    for n in range(3):
        upload(api, f"m{n}", fs_store, b"bytes")

    def interrupt(outcome, expected):
        raise KeyboardInterrupt

    audit = fixity.run(fixity.candidates(), progress=interrupt)

    assert audit.interrupted and audit.media == 1
    assert Media.objects.filter(verified_at__isnull=False).count() == 1
    out, error = verify("--older-than", "1d")  # the rerun checks the other two
    assert error is None and "verified 2 media" in out


def test_new_bytes_clear_the_last_check(api, id_types, fs_store):
    """A failure recorded for bytes that were then replaced must not stay on the status page."""
    upload(api, "fixed", fs_store, b"good bytes")
    corrupt("fixed")
    assert verify()[1] is not None
    assert Media.objects.get(pid="fixed").verify_ok is False

    assert api.put_content("fixed", b"stored again").status_code == 200

    media = Media.objects.get(pid="fixed")
    assert (media.verified_at, media.verify_ok, media.verify_error) == (None, None, "")
    out, error = verify("--older-than", "1d")
    assert error is None and "verified 1 media" in out
