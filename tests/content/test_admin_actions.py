"""Issue 30 item 4: the media list's actions on many media (add/remove tags, set a metadata key,
move to another store, delete with a typed confirmation), through the API's services (checked
afterwards through the API: history rows, events), at once or as a background job that a runner
that stops mid-way leaves resumable; and who may do what."""

from __future__ import annotations

import base64

import pytest
from django.core.management import call_command

from content import admin_actions, admin_jobs
from content.models import AdminJob
from media.models import Media
from tests.conftest import PASSWORD, create_media, media_body
from tests.permissions_support import role

pytestmark = pytest.mark.django_db

LIST = "/admin/media/media/"


def login(client, django_user_model, name: str, group: str | None):
    if group is None:
        django_user_model.objects.create_superuser(name, f"{name}@example.org", PASSWORD)
    else:
        user = django_user_model.objects.create_user(name, password=PASSWORD, is_staff=True)
        user.groups.add(role(group))
    assert client.login(username=name, password=PASSWORD)
    return client


@pytest.fixture
def writer(client, django_user_model):
    return login(client, django_user_model, "wendy", "writers")


@pytest.fixture
def many(api, id_types):
    for n in range(15):
        create_media(api, f"m{n:02d}", tags=["batch"] if n < 12 else [], metadata={"n": n})


def pks(*pids: str) -> list[int]:
    return list(Media.objects.filter(pid__in=pids).order_by("pk").values_list("pk", flat=True))


def act(client, action: str, *, query: str = "", selected=(), across=False, apply: dict | None = None):
    data = {"action": action, "index": "0", "select_across": "1" if across else "0"}
    data["_selected_action"] = list(selected) or pks("m00")
    if apply is not None:
        data.update(apply, apply="1")
    return client.post(f"{LIST}?{query}", data)


def tags_of(api, pid: str) -> list[str]:
    return api.get(f"/api/media/{pid}").json()["tags"]


def event_types(api, pid: str) -> list[str]:
    return [e["type"] for e in api.get("/api/events?limit=1000").json()["items"] if e["pid"] == pid]


def test_add_tags_to_a_selection_at_once(writer, api, many):
    form = act(writer, "add_tags", selected=pks("m01", "m02"))
    assert form.status_code == 200 and "<strong>2</strong> media are selected" in form.content.decode()
    done = act(writer, "add_tags", selected=pks("m01", "m02"), apply={"tags": "new, other"})
    assert done.status_code == 302
    assert tags_of(api, "m01") == ["batch", "new", "other"] and tags_of(api, "m03") == ["batch"]
    history = api.get("/api/media/m01/history").json()
    assert history[0]["user"] == "wendy" and history[0]["changes"][0]["field"] == "tags"
    assert event_types(api, "m01")[-1] == "media.tags_changed"


def test_remove_tags_and_set_a_metadata_key_on_everything_matching(writer, api, many):
    """ "Everything matching": select_across with the list's filter in the URL; only matches change."""
    query = "metadata=n:lt:5"
    done = act(writer, "remove_tags", query=query, across=True, apply={"tags": "batch"})
    assert done.status_code == 302
    assert [tags_of(api, f"m{n:02d}") for n in (0, 4, 5)] == [[], [], ["batch"]]
    done = act(writer, "set_metadata", query=query, across=True, apply={"path": "qc.flag", "value": '"ok"'})
    assert done.status_code == 302
    assert api.get("/api/media/m04").json()["metadata"] == {"n": 4, "qc": {"flag": "ok"}}
    assert api.get("/api/media/m05").json()["metadata"] == {"n": 5}
    assert event_types(api, "m04")[-2:] == ["media.tags_changed", "media.updated"]


def test_many_media_go_to_a_job_run_in_chunks_and_resumed_after_a_stop(
    writer, api, many, monkeypatch, settings
):
    """Over INLINE_MAX media the action becomes a job with a progress page. The runner stops after
    its first chunk (a failpoint): the job is shown failed with the reason, its first chunk done;
    Resume takes it up from its cursor and it ends with every matching media tagged once."""
    monkeypatch.setattr(admin_actions, "INLINE_MAX", 5)
    monkeypatch.setattr(admin_jobs, "CHUNK", 4)
    form = act(writer, "add_tags", query="tags_all=batch", across=True)
    assert (
        "runs in the background" in form.content.decode() and "<strong>12</strong>" in form.content.decode()
    )
    started = act(writer, "add_tags", query="tags_all=batch", across=True, apply={"tags": "bg"})
    job = AdminJob.objects.get()
    assert started.status_code == 302 and started["Location"] == f"/admin/content/adminjob/{job.pk}/change/"
    assert job.query == "tags_all=batch" and job.total == 12 and job.state == "queued"
    # (the web process starts its thread when the request's transaction commits; here the test
    # transaction never commits, so the command runs it, as after a restart)
    settings.MEDIASTORE_FAILPOINTS = {"admin_jobs.after_chunk": "error"}
    call_command("run_admin_jobs")
    job.refresh_from_db()
    assert job.state == "failed" and job.done == 4 and "StorageError" in job.message
    page = writer.get(f"/admin/content/adminjob/{job.pk}/change/").content.decode()
    assert "Failed after 4 of 12 media" in page and 'id="job-resume"' in page
    assert sum("bg" in tags_of(api, f"m{n:02d}") for n in range(15)) == 4

    settings.MEDIASTORE_FAILPOINTS = {}
    assert writer.post(f"/admin/content/adminjob/{job.pk}/change/", {"resume": "1"}).status_code == 302
    call_command("run_admin_jobs")
    job.refresh_from_db()
    assert job.state == "done" and (job.done, job.failed) == (12, 0)
    assert [n for n in range(15) if "bg" in tags_of(api, f"m{n:02d}")] == list(range(12))
    assert all(len(api.get(f"/api/media/m{n:02d}/history").json()) == 2 for n in range(12))
    page = writer.get(f"/admin/content/adminjob/{job.pk}/change/").content.decode()
    assert "Done: 12 media tagged" in page and 'http-equiv="refresh"' not in page


def test_a_stalled_job_is_taken_up_and_a_live_one_left_alone(writer, api, many, monkeypatch):
    monkeypatch.setattr(admin_actions, "INLINE_MAX", 5)
    act(writer, "add_tags", query="tags_all=batch", across=True, apply={"tags": "late"})
    job = AdminJob.objects.get()
    token = admin_jobs.claim(job.pk)  # a runner holds it and reports
    assert token and admin_jobs.claim(job.pk) is None
    call_command("run_admin_jobs")
    job.refresh_from_db()
    assert job.state == "running" and job.done == 0
    page = writer.get(f"/admin/content/adminjob/{job.pk}/change/").content.decode()
    assert 'http-equiv="refresh"' in page and "job-resume" not in page
    # its runner dies: no heartbeat for longer than STALE
    AdminJob.objects.filter(pk=job.pk).update(heartbeat=job.heartbeat - 2 * admin_jobs.STALE)
    assert "Stalled" in writer.get(f"/admin/content/adminjob/{job.pk}/change/").content.decode()
    call_command("run_admin_jobs")
    job.refresh_from_db()
    assert job.state == "done" and job.done == 12


def test_move_shows_count_and_bytes_then_moves(writer, api, id_types, tmp_path, settings):
    settings.MEDIASTORE_STORAGE_ROOT = str(tmp_path)
    for pid in ("b1", "b2", "b3"):
        body = {"mediadata": media_body(pid), "base64": base64.b64encode(pid.encode() * 100).decode()}
        assert api.post("/api/upload", body).status_code == 200
    target = api.post("/api/store", {"type": "FilesystemStore", "bucket": "elsewhere"}).json()["pk"]
    chosen = pks("b1", "b2")
    page = act(writer, "move_to_store", selected=chosen).content.decode()
    assert "<strong>2</strong> media are selected" in page and "Bytes to copy: 400 " in page
    done = act(writer, "move_to_store", selected=chosen, apply={"store": target})
    assert done.status_code == 302
    for pid, store in (("b1", target), ("b2", target)):
        assert api.get(f"/api/media/{pid}").json()["store_config"]["pk"] == store
        assert b"".join(api.get(f"/api/media/{pid}/content").streaming_content) == pid.encode() * 100
    assert api.get("/api/media/b3").json()["store_config"]["type"] == "DictStore"
    assert event_types(api, "b1")[-1] == "media.moved"


def test_delete_needs_the_number_typed(client, django_user_model, api, many):
    admin = login(client, django_user_model, "root", None)
    form = act(admin, "delete_selected", query="tags_all=batch", across=True)
    assert "Type the number of media to delete" in form.content.decode()
    wrong = act(admin, "delete_selected", query="tags_all=batch", across=True, apply={"confirm": "10"})
    assert wrong.status_code == 200 and "Type 12 to delete these 12 media." in wrong.content.decode()
    assert Media.objects.count() == 15
    done = act(admin, "delete_selected", query="tags_all=batch", across=True, apply={"confirm": "12"})
    assert done.status_code == 302
    assert sorted(Media.objects.values_list("pid", flat=True)) == ["m12", "m13", "m14"]
    assert api.get("/api/media/m00/history").json()[0]["action"] == "deleted"


def test_a_reader_sees_no_action_and_cannot_post_one(client, django_user_model, api, many):
    reader = login(client, django_user_model, "rita", "readers")
    page = reader.get(LIST)
    assert page.status_code == 200
    choices = [name for name, _ in page.context["action_form"].fields["action"].choices if name]
    assert choices == ["download_zip"]
    for action, apply in (
        ("add_tags", {"tags": "sneaky"}),
        ("delete_selected", {"confirm": "1"}),
        ("move_to_store", {"store": "1"}),
    ):
        act(reader, action, selected=pks("m00"), apply=apply)
    assert tags_of(api, "m00") == ["batch"] and Media.objects.count() == 15
    assert not AdminJob.objects.exists()
    assert reader.get("/admin/content/adminjob/").status_code == 403


def test_each_action_needs_its_own_permission(client, django_user_model, many):
    """Deleting needs media.delete_media, as DELETE /api/media/{pid} does: an account that may only
    change media sees the other actions, not this one, and its POST deletes nothing."""
    from django.contrib.auth.models import Permission

    editor = django_user_model.objects.create_user("ed", password=PASSWORD, is_staff=True)
    editor.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="media", codename__in=["view_media", "change_media"]
        )
    )
    assert client.login(username="ed", password=PASSWORD)
    choices = [n for n, _ in client.get(LIST).context["action_form"].fields["action"].choices if n]
    assert choices == ["add_tags", "remove_tags", "set_metadata", "move_to_store", "download_zip"]
    act(client, "delete_selected", selected=pks("m00"), apply={"confirm": "1"})
    assert Media.objects.count() == 15
