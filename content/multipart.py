"""S3 direct multipart uploads: the client sends a BucketStore media's parts straight to S3
through presigned part URLs, then asks the server to join them.

The server keeps no state of its own for them: a PENDING media's multipart upload is the newest
one S3 lists for the media's key (``ListMultipartUploads``), so any worker of any host can hand out
more part URLs or complete it. Part sizes follow from the declared size (``part_plan``): every
part but the last has ``part_size`` bytes, which is signed into its URL (S3 refuses a PUT of
another length). Completion joins the parts and then completes the media as a presigned upload is
completed (``content.services.complete``: copied to a fresh key, size held to the declared one,
SHA-256 computed, READY).
"""

from __future__ import annotations

import logging
from collections import Counter

from django.conf import settings
from django.db import transaction

from content.deletes import media_delete
from content.services import complete
from media.lifecycle import check_hold
from media.models import Media, StoreStatus
from media.schemas import MediaIn
from media.selectors import media_locked
from media.services import media_insert, prepared_media
from media.usage import precheck_bytes
from mediastore import failpoints
from mediastore.errors import Conflict, NotFound, RuleViolation, StorageError
from stores.backends import Backend
from stores.backends.bucket import MAX_PARTS, part_size_for

log = logging.getLogger(__name__)


def part_plan(size: int) -> tuple[int, int]:
    """(part size, number of parts) for an object of ``size`` bytes (an empty one is one empty part)."""
    part_size = part_size_for(size)
    return part_size, max(1, -(-size // part_size))


def _multipart_backend(media: Media) -> Backend:
    backend = media.store_config.backend()
    if not backend.supports_multipart:
        raise RuleViolation(
            f"multipart uploads need a BucketStore; media '{media.pid}' is in a {media.store_config.type} "
            "(send its bytes with PUT /api/media/{pid}/content or a resumable upload at /api/tus/)"
        )
    return backend


def part_urls(media: Media, upload_id: str, numbers: list[int]) -> list[dict]:
    """Presigned PUT URLs for the parts ``numbers`` of ``media``'s multipart upload ``upload_id``."""
    part_size, count = part_plan(media.size or 0)
    wrong = [n for n in numbers if not 1 <= n <= count]
    if wrong:
        raise RuleViolation(
            f"media '{media.pid}' has parts 1 to {count} ({media.size} bytes in parts of {part_size}); "
            f"there is no part {wrong[0]}"
        )
    backend = _multipart_backend(media)
    expires = settings.MEDIASTORE_PRESIGN_SECONDS
    urls = []
    for number in numbers:
        size = part_size if number < count else (media.size or 0) - part_size * (count - 1)
        url = backend.multipart_part_url(media.store_key, upload_id, number, expires, size)
        urls.append({"part_number": number, "url": url})
    return urls


def first_urls(media: Media, upload_id: str) -> list[dict]:
    """The URLs of the first ``MEDIASTORE_MULTIPART_URLS`` parts (all of them for most uploads)."""
    _, count = part_plan(media.size or 0)
    return part_urls(media, upload_id, list(range(1, min(count, settings.MEDIASTORE_MULTIPART_URLS) + 1)))


def multipart_begin(item: MediaIn, *, size: int, content_type: str, user) -> tuple[Media, str]:
    """Create the PENDING media of ``item`` with its declared ``size`` and begin its multipart
    upload; returns the media and the upload's id. 422 for a store that takes no parts."""
    with prepared_media([item], user=user, name_items=False) as [media]:
        backend = _multipart_backend(media)
        media.content_type = content_type
        media.size = size
        precheck_bytes(media, size, new=True)
        upload_id = backend.multipart_start(media.store_key)
        try:
            media_insert([media], user=user)
        except Exception:
            _abort_quietly(backend, media.store_key, upload_id)
            raise
        return media, upload_id


def multipart_again(media: Media) -> str:
    """A new multipart upload for the PENDING ``media`` (an upload repeated with the same
    mediadata), the earlier ones aborted: parts sent for them no longer count."""
    backend = _multipart_backend(media)
    for upload in backend.multipart_list(media.store_key):
        backend.multipart_abort(media.store_key, upload.upload_id)
    return backend.multipart_start(media.store_key)


def current_upload(media: Media) -> str:
    """The id of the newest multipart upload S3 lists for ``media``'s key; 409 when there is none."""
    listed = _multipart_backend(media).multipart_list(media.store_key)
    if not listed:
        raise Conflict(
            f"media '{media.pid}' has no multipart upload in progress: begin one with POST /api/upload "
            'and "multipart": {"size": N}'
        )
    return max(listed, key=lambda upload: upload.initiated).upload_id


def _pending(media: Media) -> None:
    if media.store_status != StoreStatus.PENDING:
        raise Conflict(f"media '{media.pid}' is READY: its upload is finished")
    if media.size is None:
        raise Conflict(
            f"media '{media.pid}' was not created for a multipart upload (it has no declared size)"
        )


def multipart_parts(media: Media, numbers: list[int]) -> list[dict]:
    """More part URLs (beyond the first MEDIASTORE_MULTIPART_URLS) of the PENDING ``media``."""
    _pending(media)
    if len(numbers) > MAX_PARTS:
        raise RuleViolation(f"at most {MAX_PARTS} parts at once")
    return part_urls(media, current_upload(media), numbers)


def multipart_finish(media: Media, parts: list[tuple[int, str]], *, user) -> Media:
    """Join ``parts`` (part number, ETag) of ``media``'s multipart upload, then complete the media
    (size held to the declared one, SHA-256 computed, READY). A READY media is answered as it is."""
    if media.store_status == StoreStatus.READY:
        return media
    _pending(media)
    _check_parts(media, parts)
    backend = _multipart_backend(media)
    upload_id = current_upload(media)
    failpoints.hit("content.before_multipart_complete")  # the live test widens a racing abandon's window
    try:
        backend.multipart_complete(media.store_key, upload_id, sorted(parts))
    except StorageError:
        if not Media.objects.filter(pk=media.pk, store_status=StoreStatus.PENDING).exists():
            raise Conflict(
                f"media '{media.pid}' was abandoned (DELETE /api/upload/{{pid}}) or completed while this "
                "completion ran"
            ) from None
        raise
    return complete(media, user=user)


def _check_parts(media: Media, parts: list[tuple[int, str]]) -> None:
    """422 unless ``parts`` lists each of the declared size's parts (1 to n) once: S3 would join a
    shorter list and end the upload, and the client would have to send every part again."""
    _, count = part_plan(media.size or 0)
    listed = Counter(number for number, _ in parts)
    problems = []
    missing = [number for number in range(1, count + 1) if number not in listed]
    if missing:
        problems.append(f"{_numbers(missing)} missing")
    repeated = sorted(number for number, times in listed.items() if times > 1)
    if repeated:
        problems.append(f"{_numbers(repeated)} listed more than once")
    outside = sorted(number for number in listed if not 1 <= number <= count)
    if outside:
        problems.append(f"{_numbers(outside)} outside 1 to {count}")
    if problems:
        raise RuleViolation(
            f"the {media.size} bytes of media '{media.pid}' are {count} parts: {'; '.join(problems)}. "
            "Nothing was joined: send the missing parts and complete again with all of them"
        )


def _numbers(numbers: list[int], shown: int = 20) -> str:
    """``part 3 is`` or ``parts 1, 3 are`` (the first ``shown`` numbers and how many more)."""
    text = ", ".join(str(number) for number in numbers[:shown])
    if len(numbers) > shown:
        text += f" and {len(numbers) - shown} more"
    return f"part {text} is" if len(numbers) == 1 else f"parts {text} are"


def upload_abandon(media: Media, *, user) -> None:
    """Abort the PENDING ``media``'s multipart uploads (if it has any) and delete the media.

    The media's row is locked while its status is checked and its uploads aborted, so that a
    completion finishing meanwhile (which makes it READY under the same lock) is seen: 409, and
    the bytes just completed stay."""
    with transaction.atomic():
        locked = media_locked(pk=media.pk)
        if not locked:
            raise NotFound("Media", media.pid)
        [media] = locked
        check_hold(media, "deleted")
        if media.store_status != StoreStatus.PENDING:
            raise Conflict(
                f"media '{media.pid}' is READY: its upload is finished "
                "(delete it with DELETE /api/media/{pid})"
            )
        backend = media.store_config.backend()
        if backend.supports_multipart:
            for upload in backend.multipart_list(media.store_key):
                backend.multipart_abort(media.store_key, upload.upload_id)
        media_delete(media.pid, user=user)


def _abort_quietly(backend: Backend, key: str, upload_id: str) -> None:
    try:
        backend.multipart_abort(key, upload_id)
    except StorageError as exc:
        log.warning("multipart upload %s of %r left for collect_orphans: %s", upload_id, key, exc.message)
