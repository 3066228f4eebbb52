"""Many media as one archive, zip or tar, built while it is sent (``/api/download/archive``).

The media come one chunk of rows at a time (a list of pids, or every match of a search in its
order) and each one's bytes go out as they are read from its store, so memory holds one chunk of
rows, one piece of bytes and, for zip, the central directory's entry of each member (a zip lists
its members at its end). What the archive holds is told at its end, in three files written to
temporary files meanwhile: ``manifest-sha256.txt`` (``<sha256>  <member>`` lines, as ``sha256sum -c``
reads them, with the checksums the store recorded), ``media.json`` (every selected media as the API
returns it, with ``member``: its name in the archive, or null) and ``errors.txt``
(``<pid><TAB><reason>`` for every selected media whose bytes are not in the archive, or not whole:
PENDING, unknown pids, bytes missing from the store or failing to read). A member whose bytes fail
part-way is already partly sent: it stays in the archive cut short (zip) or zero-filled to its
recorded size (tar), and errors.txt says so; its manifest line then fails ``sha256sum -c``.

Member names (``data/<name>``): each pid segment is percent-encoded (only ASCII letters, digits and
``._-+=,@`` stay as they are; ``.`` and ``..`` segments and empty ones are encoded too), so no
name is absolute, climbs out with ``..`` or carries characters some file systems refuse, and
different pids give different names. Layout ``pid`` keeps the pid's ``/`` as folders, ``flat``
encodes them too. The one clash left, a pid that is also the folder of another (``a`` and
``a/b``), is resolved as the members come: a pid under a folder that is already a file goes flat
(``a%2Fb``), a file where a folder is already gets ``~<pk>`` (no encoded name has a ``~``). A
segment longer than file systems allow (240 characters once encoded) is cut to 200 and gets
``~<pk>`` too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Literal

from django.conf import settings
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from ninja.responses import NinjaJSONEncoder
from zipstream import ZIP_STORED, ZipStream

from content import reads
from content.schemas import ArchiveIn
from media.models import Media, StoreStatus
from media.pids import pick
from media.schemas import MediaSearch, media_out_dict
from media.search import has_filters
from media.search.walk import search_count, search_walk
from media.selectors import media_queryset, media_read_many
from mediastore.errors import PayloadTooLarge, RuleViolation, StorageError
from stores.backends import ObjectNotFound

log = logging.getLogger(__name__)

Format = Literal["zip", "tar"]
Layout = Literal["pid", "flat"]

CONTENT_TYPES = {"zip": "application/zip", "tar": "application/x-tar"}
DATA = "data/"
MANIFEST, MEDIA_JSON, ERRORS = "manifest-sha256.txt", "media.json", "errors.txt"
# Pieces smaller than this (member headers, small objects) are joined before they go out.
OUT_CHUNK = 256 * 1024
SPOOL_IN_RAM = 1024 * 1024  # the listings go to a temporary file beyond this

# File systems take names of at most 255 bytes: a longer encoded segment is cut and made unique
# with ``~<pk>``.
MAX_SEGMENT, CUT_SEGMENT = 240, 200
_KEEP = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+=,@")


# --- names ---------------------------------------------------------------------------------------


def encode_segment(text: str) -> str:
    """``text`` percent-encoded (UTF-8) except for the characters of ``_KEEP``; never ``""``, ``.``
    or ``..``, never containing ``/`` or ``~``; different texts give different results."""
    if text == "":
        return "%2F"  # an empty segment stands for a "/" of its own (no segment encodes to this)
    if text in (".", ".."):
        return "%2E" * len(text)
    return "".join(ch if ch in _KEEP else "".join(f"%{b:02X}" for b in ch.encode()) for ch in text)


def flat_name(pid: str) -> str:
    return encode_segment(pid) if "/" not in pid else "%2F".join(encode_segment(s) for s in pid.split("/"))


def layout_name(pid: str, layout: Layout) -> str:
    """The member name of ``pid`` under ``data/`` before clashes are looked at."""
    if layout == "flat":
        return flat_name(pid)
    return "/".join(encode_segment(segment) for segment in pid.split("/"))


@dataclass
class Names:
    """Member names given so far: no two members share a name, and no member is a file where
    another needs a folder (``a`` and ``a/b``)."""

    layout: Layout
    files: set[str] = field(default_factory=set)
    folders: set[str] = field(default_factory=set)

    def take(self, media: Media) -> str:
        name = layout_name(media.pid, self.layout)
        if any(len(segment) > MAX_SEGMENT for segment in name.split("/")):
            name = "/".join(
                segment if len(segment) <= MAX_SEGMENT else f"{segment[:CUT_SEGMENT]}~{media.pk}"
                for segment in name.split("/")
            )
        parents = ["/".join(name.split("/")[:i]) for i in range(1, name.count("/") + 1)]
        if any(parent in self.files for parent in parents):
            name, parents = flat_name(media.pid), []
        if name in self.files or name in self.folders:
            name = f"{name}~{media.pk}"
        self.files.add(name)
        self.folders.update(parents)
        return DATA + name


# --- the listings at the end ---------------------------------------------------------------------


class Listings:
    """``manifest-sha256.txt``, ``media.json`` and ``errors.txt``, written while the members go out."""

    def __init__(self) -> None:
        self.manifest = tempfile.SpooledTemporaryFile(SPOOL_IN_RAM)
        self.media = tempfile.SpooledTemporaryFile(SPOOL_IN_RAM)
        self.errors = tempfile.SpooledTemporaryFile(SPOOL_IN_RAM)
        self.media.write(b"[")
        self.media_count = 0
        self.error_count = 0

    def add_media(self, media: Media, member: str | None) -> None:
        text = json.dumps({**media_out_dict(media), "member": member}, cls=NinjaJSONEncoder)
        self.media.write((b",\n" if self.media_count else b"\n") + text.encode())
        self.media_count += 1

    def add_error(self, pid: str, reason: str) -> None:
        pid = pid.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
        self.errors.write(f"{pid}\t{reason}\n".encode())
        self.error_count += 1

    def add_manifest(self, checksum: str, name: str) -> None:
        self.manifest.write(f"{checksum}  {name}\n".encode())

    def files(self) -> Iterator[tuple[str, IO[bytes]]]:
        self.media.write(b"\n]\n" if self.media_count else b"]\n")
        for name, spool in ((MANIFEST, self.manifest), (MEDIA_JSON, self.media), (ERRORS, self.errors)):
            spool.seek(0)
            yield name, spool

    def close(self) -> None:
        for spool in (self.manifest, self.media, self.errors):
            spool.close()


def file_chunks(spool: IO[bytes]) -> Iterator[bytes]:
    while piece := spool.read(OUT_CHUNK):
        yield piece


def spool_size(spool: IO[bytes]) -> int:
    here = spool.tell()
    size = spool.seek(0, 2)
    spool.seek(here)
    return size


# --- one member's bytes --------------------------------------------------------------------------


class Skipped(Exception):
    """A media whose bytes cannot go into the archive; the message is errors.txt's reason."""


def open_member(media: Media) -> tuple[Media, int, Iterator[bytes]]:
    """The media as it is now, its size and its bytes' iterator; raises Skipped. Bytes switched to
    another object since the row was read are followed, as ``content.reads.read_current`` does."""
    for _ in range(reads.READ_ATTEMPTS):
        try:
            return media, reads.stored_size(media), reads.open_content(media, 0, None)
        except StorageError as exc:
            if reads.deleted(media):
                raise Skipped("deleted while the archive was being made") from None
            if not reads.replaced(media):
                raise Skipped(exc.message) from None
            media = media_queryset().filter(pk=media.pk).first()
            if media is None:
                raise Skipped("deleted while the archive was being made") from None
    raise Skipped("its bytes were replaced again and again while the archive was being made")


class MemberBytes:
    """The bytes of one member, at most ``size`` of them, hashed as they pass. A read that fails
    part-way ends the member early and keeps the reason (``failure``) instead of failing the
    whole archive."""

    def __init__(self, chunks: Iterator[bytes], size: int) -> None:
        self.chunks = chunks
        self.size = size
        self.sent = 0
        self.sha256 = hashlib.sha256()
        self.failure = ""
        self.longer = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            while True:
                try:
                    chunk = next(self.chunks, b"")
                except (StorageError, ObjectNotFound, OSError) as exc:
                    self.failure = getattr(exc, "message", None) or str(exc) or type(exc).__name__
                    return
                if not chunk:
                    return
                room = self.size - self.sent
                if len(chunk) > room:
                    self.longer = True
                    chunk = chunk[:room]
                if chunk:
                    self.sent += len(chunk)
                    self.sha256.update(chunk)
                    yield chunk
                if self.longer:
                    return
        finally:
            close = getattr(self.chunks, "close", None)
            if close is not None:
                close()


# --- the formats ---------------------------------------------------------------------------------


class ZipWriter:
    """Members stored (not compressed: scientific data rarely shrinks, and stored members keep
    the archive's length a sum of known sizes); ZIP64 records wherever a size or offset needs them."""

    def __init__(self) -> None:
        self.zip = ZipStream(compress_type=ZIP_STORED)

    def member(self, name: str, size: int, chunks: Iterable[bytes]) -> Iterator[bytes]:
        self.zip.add(chunks, name, size=size)
        yield from self.zip.all_files()

    def end(self) -> Iterator[bytes]:
        yield from self.zip.finalize()


class TarWriter:
    """POSIX pax tar (names of any length and any size), each header made by ``tarfile``; the
    bytes stream between the headers. A member whose bytes end early is filled with zeros to the
    size its header announced."""

    BLOCK = tarfile.BLOCKSIZE

    def __init__(self) -> None:
        self.mtime = int(time.time())
        self.written = 0

    def member(self, name: str, size: int, chunks: Iterable[bytes]) -> Iterator[bytes]:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = size, self.mtime, 0o644
        header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        yield header
        sent = 0
        for chunk in chunks:
            sent += len(chunk)
            yield chunk
        while sent < size:
            zeros = min(size - sent, OUT_CHUNK)
            sent += zeros
            yield bytes(zeros)
        yield bytes(-size % self.BLOCK)
        self.written += len(header) + size + (-size % self.BLOCK)

    def end(self) -> Iterator[bytes]:
        closing = 2 * self.BLOCK
        yield bytes(closing + (-(self.written + closing) % tarfile.RECORDSIZE))


def joined(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """``pieces`` with the small ones joined into pieces of at least ``OUT_CHUNK`` bytes; the first
    goes out alone, so the answer starts at once however small the members are."""
    pieces = iter(pieces)
    first = next(pieces, None)
    if first is None:
        return
    yield first
    buffer: list[bytes] = []
    held = 0
    for piece in pieces:
        if not buffer and len(piece) >= OUT_CHUNK:
            yield piece
            continue
        buffer.append(piece)
        held += len(piece)
        if held >= OUT_CHUNK:
            yield b"".join(buffer)
            buffer, held = [], 0
    if buffer:
        yield b"".join(buffer)


# --- the archive ---------------------------------------------------------------------------------


def archive_stream(selection: Iterable[Media | str], *, format: Format, layout: Layout) -> Iterator[bytes]:
    """The archive of ``selection`` (media, and pids that name none), as pieces of bytes."""
    return joined(_archive(selection, format=format, layout=layout))


def _archive(selection: Iterable[Media | str], *, format: Format, layout: Layout) -> Iterator[bytes]:
    writer = ZipWriter() if format == "zip" else TarWriter()
    names = Names(layout)
    listings = Listings()
    try:
        for item in selection:
            if isinstance(item, str):
                listings.add_error(item, "not found")
                continue
            yield from _member(item, writer, names, listings)
        for name, spool in listings.files():
            yield from writer.member(name, spool_size(spool), file_chunks(spool))
        yield from writer.end()
    finally:
        listings.close()


def _member(media: Media, writer: ZipWriter | TarWriter, names: Names, listings: Listings) -> Iterator[bytes]:
    if media.store_status != StoreStatus.READY:
        listings.add_media(media, None)
        listings.add_error(media.pid, "PENDING: no bytes stored yet")
        return
    try:
        media, size, chunks = open_member(media)
    except Skipped as exc:
        listings.add_media(media, None)
        listings.add_error(media.pid, str(exc))
        return
    name = names.take(media)
    listings.add_media(media, name)
    member = MemberBytes(chunks, size)
    yield from writer.member(name, size, member)
    recorded = media.checksum.removeprefix("sha256:")
    listings.add_manifest(recorded or member.sha256.hexdigest(), name)
    if member.failure or member.sent < size:
        reason = member.failure or "the store sent fewer bytes than recorded"
        filled = "cut short" if isinstance(writer, ZipWriter) else "zero-filled after that"
        read = f"the read failed after {member.sent} of {size} bytes: {reason}"
        listings.add_error(media.pid, f"{name} is incomplete ({filled}): {read}")
    elif member.longer:
        listings.add_error(media.pid, f"{name}: the store holds more than the recorded {size} bytes; cut")
    elif recorded and member.sha256.hexdigest() != recorded:
        listings.add_error(media.pid, f"{name}: the bytes read do not match the recorded SHA-256 checksum")


def archive_response(
    selection: Iterable[Media | str], *, format: Format, layout: Layout
) -> StreamingHttpResponse:
    """The answer that streams the archive of ``selection`` as a download."""
    response = StreamingHttpResponse(
        archive_stream(selection, format=format, layout=layout), content_type=CONTENT_TYPES[format]
    )
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="media-{stamp}.{format}"'
    response["Accept-Ranges"] = "none"  # no resume: see docs/bytes.md, "Downloading many media"
    return response


# --- what goes in ----------------------------------------------------------------------------------

PIDS_CHUNK = 500
SEARCH_FIELDS = frozenset(MediaSearch.model_fields)


def pid_selection(pids: list[str]) -> Iterator[Media | str]:
    """The media of ``pids`` in the order given, each once; a pid that names none comes as itself."""
    seen: set[int] = set()
    for start in range(0, len(pids), PIDS_CHUNK):
        batch = pids[start : start + PIDS_CHUNK]
        found = {media.pid: media for media in media_read_many(batch)}
        for pid in batch:
            media = pick(found, pid)
            if media is None:
                yield pid
            elif media.pk not in seen:
                seen.add(media.pk)
                yield media


def check_size(count: int) -> None:
    """413 naming ``MEDIASTORE_ARCHIVE_MAX_MEDIA`` when more media than it allows are selected."""
    most = settings.MEDIASTORE_ARCHIVE_MAX_MEDIA
    if count > most:
        raise PayloadTooLarge(
            f"the archive would hold more than {most} media (MEDIASTORE_ARCHIVE_MAX_MEDIA); narrow the "
            "selection, or split it (e.g. by created_after/created_before, or limit and offset)"
        )


def archive_selection(
    *, pids: list[str] | None, filters: MediaSearch | None, limit: int | None, offset: int
) -> Iterable[Media | str]:
    """What an archive request selects, counted first (413 before any byte); the media are read
    only as the archive is sent. ``filters`` None: every media."""
    if pids is not None:
        unique = list(dict.fromkeys(pids))
        check_size(len(unique))
        return pid_selection(unique)
    filters = filters or MediaSearch()
    cap = settings.MEDIASTORE_ARCHIVE_MAX_MEDIA + 1
    count = search_count(filters, offset + cap) - offset
    check_size(count if limit is None else min(limit, count))
    return search_walk(filters, limit=limit, offset=offset)


def _paging(filters: MediaSearch, given: Iterable[str] | None = None) -> tuple[int | None, int]:
    """``limit`` and ``offset`` when the request gave them (``given``: the names it gave; default:
    the fields set in ``filters``). A search's default page size does not apply: an archive takes
    every match."""
    given = filters.model_fields_set if given is None else set(given)
    return (filters.limit if "limit" in given else None), (filters.offset if "offset" in given else 0)


def body_selection(payload: ArchiveIn) -> Iterable[Media | str]:
    """The selection of a ``POST /api/download/archive`` body: its pids, or its search filters."""
    search = MediaSearch.model_validate(payload.model_dump(include=payload.model_fields_set & SEARCH_FIELDS))
    if payload.pids is not None:
        if has_filters(search) or {"order_by", "limit", "offset"} & payload.model_fields_set:
            raise RuleViolation("give either pids or search filters (with order_by, limit, offset), not both")
        return archive_selection(pids=payload.pids, filters=None, limit=None, offset=0)
    if not has_filters(search):
        raise RuleViolation(
            "give pids or at least one search filter (GET /api/download/archive without parameters "
            "takes every media)"
        )
    limit, offset = _paging(search)
    return archive_selection(pids=None, filters=search, limit=limit, offset=offset)


def query_selection(filters: MediaSearch, given: Iterable[str]) -> Iterable[Media | str]:
    """The selection of ``GET /api/download/archive``: every match of its filters (none: every
    media); ``given``: the names of the query parameters (``limit=1000`` given counts, though it is
    the default)."""
    limit, offset = _paging(filters, given)
    return archive_selection(pids=None, filters=filters, limit=limit, offset=offset)


def search_selection(body: dict) -> Iterable[Media | str]:
    """Every match of a ``POST /api/media/search`` body (``POST /api/download/urls`` with one),
    bounded as archives are (413); a body without any filter finds nothing, as that search does."""
    search = MediaSearch.model_validate(body)
    if not has_filters(search):
        return []
    limit, offset = _paging(search)
    return archive_selection(pids=None, filters=search, limit=limit, offset=offset)


def queryset_selection(queryset: QuerySet[Media]) -> Iterable[Media]:
    """The media of ``queryset`` (the admin's selection) by pk, read a chunk at a time; 413 first
    when there are more than ``MEDIASTORE_ARCHIVE_MAX_MEDIA``."""
    check_size(queryset.count())
    return queryset.select_related("store_config__s3cfg").order_by("pk").iterator(chunk_size=PIDS_CHUNK)
