"""Admin actions over many media: what each does to a chunk of media, and the runner of the jobs
(``AdminJob``) that do them in the background.

Every action goes through the API's services (``media.services``, ``media.bulk``,
``content.moves``, ``content.deletes``): the same rules, history rows and events as the API. A job
covers the media of a filter of the media list (its query string, evaluated again as the job goes,
with its owner's rights) or a fixed selection, in pk order, ``CHUNK`` media at a time: the chunk's
changes commit in the service's own transaction, then the job's cursor moves past it. No
transaction spans more than one chunk.

Who runs a job: a thread of the web process that created it, started once the job row is
committed. A thread dies with its process (a restart, a worker killed for its time-out), so a job
also records a heartbeat at every chunk; a job whose heartbeat is older than ``STALE`` is taken up
again from its cursor by ``manage.py run_admin_jobs`` or by the Resume button of its page. The
chunk the dead runner was in may be done again, which changes nothing: adding or removing tags,
setting a key and moving to a store are idempotent, and deleted media are no longer found. A job
that fails (an error no item explains) is marked failed, with the reason, and can be resumed too.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest, QueryDict
from django.utils import timezone

from content.deletes import media_delete_many
from content.models import AdminJob, AdminJobState
from content.moves import media_patch_many
from media.bulk import BulkOutcome, bulk_apply
from media.models import Media
from media.rules import clean_tags
from media.schemas import MediaPatch, UpdateMetadata, UpdateTags
from media.services import media_metadata_update, media_tags_update
from mediastore import failpoints

log = logging.getLogger(__name__)

#: Media per chunk: one service call and one commit each.
CHUNK = 100
#: A running job whose runner has not reported for this long is taken to be dead.
STALE = timedelta(seconds=60)
#: At most this many failures are kept on a job (the count of all is kept).
KEPT_ERRORS = 50


def _remove_tags(media: Media, names: list[str]) -> dict[str, Any]:
    return {"tag_list": sorted(set(media.tag_list) - set(names))}


def _tags_removed(pids: list[str], params: dict, user) -> BulkOutcome:
    """Remove tags through the update engine behind ``PATCH /api/media/update/tags`` (the API has no
    removal of its own; ``bulk_apply`` writes the history rows, tag links and events)."""
    names = clean_tags(params["tags"])
    return bulk_apply([(pid, names) for pid in pids], _remove_tags, user=user, tags_changed=True)


def _tags_added(pids: list[str], params: dict, user) -> BulkOutcome:
    items = [UpdateTags(pid=pid, tags=params["tags"]) for pid in pids]
    return media_tags_update(items, user=user, replace=False)


def _metadata_set(pids: list[str], params: dict, user) -> BulkOutcome:
    items = [UpdateMetadata(pid=pid, keys=params["keys"], data=params["value"]) for pid in pids]
    return media_metadata_update(items, user=user, op="put")


def _moved(pids: list[str], params: dict, user) -> BulkOutcome:
    return media_patch_many([(pid, MediaPatch(store_config=params["store"])) for pid in pids], user=user)


def _deleted(pids: list[str], params: dict, user) -> BulkOutcome:
    return media_delete_many(pids, user=user)


#: action -> (what it does to a chunk of pids, the permission it needs, its past tense)
ACTIONS: dict[str, tuple[Callable[[list[str], dict, Any], BulkOutcome], str, str]] = {
    "add_tags": (_tags_added, "media.change_media", "tagged"),
    "remove_tags": (_tags_removed, "media.change_media", "untagged"),
    "set_metadata": (_metadata_set, "media.change_media", "changed"),
    "move": (_moved, "media.change_media", "moved"),
    "delete": (_deleted, "media.delete_media", "deleted"),
}


def apply_chunk(action: str, pids: list[str], params: dict, user) -> BulkOutcome:
    """Apply ``action`` to the media of ``pids`` through its service; each pid succeeds or fails on
    its own."""
    return ACTIONS[action][0](pids, params, user)


# --- the media a job covers ----------------------------------------------------------------------


def list_queryset(query: str, user) -> QuerySet:
    """The media the admin's media list shows for ``query`` (its query string) to ``user``: the
    same filters, search box and rights as the page (the list's own code builds it)."""
    request = HttpRequest()
    request.method = "GET"
    request.GET = QueryDict(query)
    request.user = user
    model_admin = admin.site.get_model_admin(Media)
    changelist = model_admin.get_changelist_instance(request)
    return changelist.get_queryset(request)


def job_media(job: AdminJob) -> QuerySet:
    """The media of ``job`` not handled yet, in pk order."""
    if job.pks is not None:
        media = Media.objects.filter(pk__in=job.pks)
    else:
        media = list_queryset(job.query, job.user)
    return media.filter(pk__gt=job.last_pk).order_by("pk")


# --- running ------------------------------------------------------------------------------------


def claim(job_pk: int) -> str | None:
    """Take ``job_pk`` if it is queued, or running with a stale heartbeat; the runner's token, or
    None when another runner holds it or it has ended."""
    token = uuid.uuid4().hex
    now = timezone.now()
    taken = (
        AdminJob.objects.filter(pk=job_pk)
        .filter(Q(state=AdminJobState.QUEUED) | Q(state=AdminJobState.RUNNING, heartbeat__lt=now - STALE))
        .update(state=AdminJobState.RUNNING, runner=token, heartbeat=now)
    )
    return token if taken else None


def claimable() -> QuerySet:
    """Jobs waiting for a runner: queued, or running with a stale heartbeat."""
    stale = timezone.now() - STALE
    return AdminJob.objects.filter(
        Q(state=AdminJobState.QUEUED) | Q(state=AdminJobState.RUNNING, heartbeat__lt=stale)
    ).order_by("pk")


def run(job_pk: int, *, token: str | None = None) -> AdminJob | None:
    """Run ``job_pk`` to its end if it can be claimed (or is held with ``token``); the job as it
    ended, or None when it was not ours to run."""
    token = token or claim(job_pk)
    if token is None:
        return None
    job = AdminJob.objects.select_related("user").get(pk=job_pk)
    try:
        _run_chunks(job, token)
    except Exception as exc:  # the job's page must say it failed, and why; the log keeps the trace
        log.exception("admin job %s failed", job.pk)
        AdminJob.objects.filter(pk=job.pk, runner=token).update(
            state=AdminJobState.FAILED, message=f"{type(exc).__name__}: {exc}", finished=timezone.now()
        )
    return AdminJob.objects.get(pk=job_pk)


def _run_chunks(job: AdminJob, token: str) -> None:
    permission = ACTIONS[job.action][1]
    media = job_media(job)
    errors = list(job.errors)
    for _ in range(10_000_000 // CHUNK):  # bounded: at most ten million media per job
        if job.user is None or not job.user.is_active or not job.user.has_perm(permission):
            raise PermissionError(f"its user may no longer do this ({permission})")
        chunk = list(media.filter(pk__gt=job.last_pk).values_list("pk", "pid")[:CHUNK])
        if not chunk:
            break
        outcome = apply_chunk(job.action, [pid for _, pid in chunk], job.params, job.user)
        room = KEPT_ERRORS - len(errors)
        errors += [[pid, exc.message] for pid, exc in outcome.failures[: max(room, 0)]]
        job.last_pk = chunk[-1][0]
        with transaction.atomic():
            held = AdminJob.objects.filter(pk=job.pk, runner=token).update(
                last_pk=job.last_pk,
                done=F("done") + len(outcome.successes),
                failed=F("failed") + len(outcome.failures),
                errors=errors,
                heartbeat=timezone.now(),
            )
        if not held:  # another runner took the job over (this one was taken for dead)
            return
        failpoints.hit("admin_jobs.after_chunk")  # the tests stop a job here and resume it
    AdminJob.objects.filter(pk=job.pk, runner=token).update(state=AdminJobState.DONE, finished=timezone.now())


def _thread_main(job_pk: int) -> None:
    try:
        run(job_pk)
    finally:
        connection.close()


def start(job: AdminJob) -> None:
    """Run ``job`` in a thread of this process once the transaction that made it commits."""

    def go() -> None:
        threading.Thread(target=_thread_main, args=(job.pk,), name=f"admin-job-{job.pk}", daemon=True).start()

    transaction.on_commit(go)


def resume(job: AdminJob) -> bool:
    """Queue a failed or stale job again from its cursor and start it; False when it is running
    with a live runner or done."""
    stale = timezone.now() - STALE
    resumable = Q(state=AdminJobState.FAILED) | Q(state=AdminJobState.RUNNING, heartbeat__lt=stale)
    if (
        not AdminJob.objects.filter(pk=job.pk)
        .filter(resumable)
        .update(state=AdminJobState.QUEUED, message="")
    ):
        return False
    start(job)
    return True
