"""Ingest: register and store a tree of existing files (``manage.py ingest``).

Every file goes through the services the API uses (``content.services``, ``media.services``): a
new media has its bytes written (fsynced, checksummed) under a fresh key as ``upload_stream`` does,
and its row then waits, ``Staged``, for the batch it is inserted with: up to ``BATCH_FILES`` new
media of a worker go in one ``media_insert`` (one transaction: rows, history with each file's own
change reason, one outbox event each, quota charged), so a batch commits whole or not at all. A
batch that fails is retried file by file, so a taken pid or a full quota fails only its file
(``commit``). Bytes of an existing media are replaced by ``put_content`` (fresh key, conditional
switch), and ``--in-place`` registers a file the store already holds under its own key, after
reading it for its checksum. A row is written only after its bytes are complete, so an
interruption leaves no record claiming bytes that are not there (only objects no row names yet,
which a failed batch removes and ``collect_orphans`` finds after a crash); a rerun skips every file
already stored with the same size and checksum and so resumes where the last run stopped.

Files run on ``workers`` threads, each with its own database connection, closed when the thread
ends. ``Ingest.stop()`` (the command calls it on Ctrl-C) makes the streams of files in flight
raise ``Interrupted``: the backends remove what they had written (``Backend.put_stream``), no row
is written, and files not started are left for the rerun.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import mimetypes
import os
import string
import threading
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from django.db import DatabaseError, transaction

from content.hashing import checksum_label
from content.models import Replica
from content.services import (
    DEFAULT_CONTENT_TYPE,
    Preconditions,
    current_etag,
    discard_after,
    put_content,
    switch_bytes,
    write_new,
)
from media import metadata as meta_ops
from media.models import Media, StoreStatus
from media.rules import IdentifierRules, clean_content_type, clean_tags
from media.schemas import MediaIn
from media.selectors import media_find
from media.services import media_insert, media_prepare_many, prepared_media
from media.usage import precheck_bytes
from mediastore import failpoints
from mediastore.errors import MediastoreError, RuleViolation
from quotas.services import precheck
from stores.backends import Backend
from stores.models import StoreConfig
from stores.schemas import StoreConfigIn

log = logging.getLogger(__name__)

CHUNK = 1 << 20
TEMPLATE_FIELDS = ("relpath", "name", "stem", "suffix", "parent", "root", "sha256")
PID_SHORTHANDS = {"relpath": "{relpath}", "name": "{name}", "sha256": "{sha256}"}
INGEST_REASON = "ingest: "  # + the file's path: the change reason of the history rows ingest makes
REASON_LENGTH = 100  # of the history's change reason column (history_change_reason)


class Outcome(StrEnum):
    STORED = "stored"  # a new media with its bytes (or bytes for a PENDING media)
    REPLACED = "replaced"  # --replace: the media's bytes differed and were replaced
    SKIPPED = "skipped"  # already stored with the same size and checksum, or not a regular file
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # abandoned by stop(); nothing of it was written


class Interrupted(Exception):
    """Raised by a file's stream once the ingest is stopped: the write is abandoned."""


@dataclass(frozen=True)
class Source:
    """One file to ingest: where it is, its path relative to the argument it was found under."""

    path: Path
    relpath: str
    root: str
    size: int


@dataclass
class Result:
    source: Source
    outcome: Outcome
    pid: str = ""
    detail: str = ""
    written: int = 0  # bytes stored (0 for skips, failures and in-place registrations)


@dataclass
class Staged:
    """A new media whose bytes are stored under its key and whose row waits for its batch: ``result``
    once the batch commits; until then no row names the object."""

    result: Result
    media: Media
    backend: Backend


@dataclass
class New:
    """A file that makes a new media with its bytes: checked, then stored with others (``stage_many``)."""

    work: FileWork
    pid: str
    item: MediaIn


UNKNOWN: Any = object()  # FileWork.run's media when it was not looked up beforehand


def settle(source: Source, pid: str, call: Callable[[], Any]) -> Any:
    """``call()``, or the Result of the file that it failed for: INTERRUPTED once stopped, FAILED
    with the error's message (a bug's traceback logged)."""
    try:
        return call()
    except Interrupted:
        return Result(source, Outcome.INTERRUPTED, pid, "stopped before it was stored")
    except MediastoreError as exc:
        return Result(source, Outcome.FAILED, pid, exc.message)
    except OSError as exc:
        return Result(source, Outcome.FAILED, pid, f"cannot read the file: {exc.strerror or exc}")
    except DatabaseError as exc:
        return Result(source, Outcome.FAILED, pid, f"database error: {exc}")
    except Exception as exc:  # a bug: logged with its traceback, listed, and the exit status says so
        log.exception("ingest of %s failed unexpectedly", source.path)
        return Result(source, Outcome.FAILED, pid, f"unexpected {type(exc).__name__}: {exc}")


def stage_many(
    news: list[New], *, user, stopped: threading.Event, stored: Iterable[Media] | None = None
) -> list[Result | Staged]:
    """``FileWork.stage`` for each, with the checks of all (rules, pids free, quota) made together;
    when they refuse one, each file is checked alone, so only the refused fail. Files not begun
    when ``stopped`` is set are left out (not started). ``stored``: the stored media of the pids
    of ``news`` as the caller looked them up (``media_prepare_many``); None: looked up here."""
    if len(news) > 1:
        try:
            prepared = media_prepare_many(
                [new.item for new in news], user=user, name_items=False, stored=stored
            )
            precheck(
                prepared[0].store_config_id,
                prepared[0].owner_id or "",
                bytes=sum(new.work.source.size for new in news),
                media=len(news),
            )
            backend = prepared[0].store_config.backend()  # one for all: they name the same store
        except (MediastoreError, DatabaseError):  # each file checked alone below, and failed alone
            pass
        else:
            return [
                settle(
                    new.work.source,
                    new.pid,
                    lambda new=new, media=media: new.work.store(new.pid, media, backend),
                )
                for new, media in zip(news, prepared, strict=True)
                if not stopped.is_set()
            ]
    return [
        settle(new.work.source, new.pid, lambda new=new: new.work.stage(new.pid, new.item))
        for new in news
        if not stopped.is_set()
    ]


def commit(batch: list[Staged], *, user) -> list[Result]:
    """Insert the rows of ``batch`` in one transaction (``media_insert``) and return each file's
    result. When the batch is refused (a pid taken meanwhile, a quota, a rule), each file is tried
    alone, so only those refused fail; the bytes of a file that fails are removed (``discard_after``:
    after a lost connection only when no row claims them). A database error fails the whole batch
    without retrying it: whether it committed is unknown, and ``discard_after`` keeps what it did."""
    if not batch:
        return []
    fresh = [copy.copy(staged.media) for staged in batch]  # media_insert stamps and numbers its objects
    try:
        insert(batch, user=user)
        return [staged.result for staged in batch]
    except MediastoreError as exc:
        if len(batch) == 1:
            return [abandon(batch[0], exc, exc.message)]
    except DatabaseError as exc:
        return [abandon(staged, exc, f"database error: {exc}") for staged in batch]
    except BaseException as exc:
        for staged in batch:
            discard_after(exc, staged.media, staged.backend, staged.media.store_key)
        raise
    results = []
    for staged, media in zip(batch, fresh, strict=True):
        results += commit([Staged(staged.result, media, staged.backend)], user=user)
    return results


def insert(batch: list[Staged], *, user) -> None:
    with transaction.atomic():
        media_insert([staged.media for staged in batch], user=user)
        failpoints.hit("ingest.before_commit")  # the tests fail a batch here, its rows inserted


def abandon(staged: Staged, failure: BaseException, detail: str) -> Result:
    discard_after(failure, staged.media, staged.backend, staged.media.store_key)
    return Result(staged.result.source, Outcome.FAILED, staged.result.pid, detail)


def parse_template(template: str, what: str) -> str:
    """``template`` (or the expansion of a --pid shorthand) after checking that it names only
    TEMPLATE_FIELDS, without indexing or attributes. RuleViolation otherwise."""
    template = PID_SHORTHANDS.get(template, template) if what == "--pid" else template
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise RuleViolation(f"{what} template {template!r} is malformed: {exc}") from None
    for _text, name, _spec, _conversion in parts:
        if name is not None and name not in TEMPLATE_FIELDS:
            raise RuleViolation(
                f"{what} template {template!r} names {{{name}}}; the fields are "
                + ", ".join(f"{{{f}}}" for f in TEMPLATE_FIELDS)
            )
    return template


def template_names(template: str) -> set[str]:
    """The fields a checked template (``parse_template``) names."""
    return {name for _text, name, _spec, _conversion in string.Formatter().parse(template) if name}


def template_fields(source: Source, wanted: Collection[str] = TEMPLATE_FIELDS) -> dict[str, str]:
    """The template fields of ``source`` but ``sha256``: those ``wanted`` at least."""
    fields = {"relpath": source.relpath, "root": source.root}
    if not {"name", "stem", "suffix", "parent"}.isdisjoint(wanted):
        rel = PurePosixPath(source.relpath)
        parent = rel.parent.as_posix()
        fields.update(name=rel.name, stem=rel.stem, suffix=rel.suffix, parent="" if parent == "." else parent)
    return fields


def find_sources(paths: list[Path]) -> tuple[list[Source], list[Result]]:
    """The regular files under ``paths`` in a stable order (directories walked without following
    symlinks), and a SKIPPED result for everything else found (symlinks, devices, ...)."""
    sources: list[Source] = []
    others: list[Result] = []

    def add(path: Path, relpath: str, root: str) -> None:
        info = path.lstat()
        source = Source(path.absolute(), relpath, root, info.st_size)
        if path.is_symlink() or not path.is_file():
            others.append(Result(source, Outcome.SKIPPED, detail="not a regular file"))
        else:
            sources.append(source)

    for path in paths:
        if not path.is_dir() or path.is_symlink():
            add(path, path.name, path.absolute().parent.name)
            continue
        for folder, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                full = Path(folder, name)
                add(full, full.relative_to(path).as_posix(), path.absolute().name)
    return sources, others


@dataclass
class IngestPlan:
    """What to do with each file: checked once, before any file is touched."""

    store: StoreConfig
    pid_type: str
    pid: str = "{relpath}"
    identifiers: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    in_place: bool = False
    replace: bool = False
    dry_run: bool = False
    user: Any = None

    def __post_init__(self) -> None:
        self.pid = parse_template(self.pid, "--pid")
        self.identifiers = {
            name: parse_template(value, f"--identifier {name}") for name, value in self.identifiers.items()
        }
        self.tags = clean_tags(self.tags)
        meta_ops.check_limits(self.metadata)
        rules = IdentifierRules()
        for option, name in [("--pid-type", self.pid_type), *(("--identifier", n) for n in self.identifiers)]:
            if name not in rules.patterns:
                known = ", ".join(sorted(rules.patterns)) or "none yet"
                raise RuleViolation(
                    f"{option} {name}: no identifier type of that name (there are: {known}); "
                    "create it first (POST /api/identifier or the admin)"
                )
        self.backend = self.store.backend()
        if self.in_place and type(self.backend).key_at is Backend.key_at:
            raise RuleViolation(
                f"--in-place needs a store that keeps plain files (FilesystemStore), not a {self.store.type}"
            )
        self.needs_sha256 = "{sha256" in self.pid or any("{sha256" in t for t in self.identifiers.values())
        self.fields = set().union(*map(template_names, [self.pid, *self.identifiers.values()]))

    @cached_property
    def template(self) -> MediaIn:
        """What every new media's item holds but its pid and identifiers, validated once."""
        spec = StoreConfigIn(
            type=self.store.type,
            bucket=self.store.bucket,
            s3_url=self.store.s3cfg.url if self.store.s3cfg else "",
        )
        return MediaIn(pid_type=self.pid_type, store_config=spec, metadata=self.metadata, tags=self.tags)

    def item(self, pid: str, identifiers: dict[str, str]) -> MediaIn:
        """The item of a new media: ``template`` with the file's pid and identifiers (strings, as the
        templates make them; their rules are checked with the rows, ``media_prepare_many``), and its
        own top-level copy of the metadata and tags, as validation gives each item."""
        template = self.template
        return template.model_copy(
            update={
                "pid": pid,
                "identifiers": identifiers,
                "metadata": dict(template.metadata),
                "tags": list(template.tags),
            }
        )


class Watch:
    """Shared between the workers: the stop flag and the bytes-read callback."""

    def __init__(self, on_bytes: Callable[[int], None]) -> None:
        self.stopped = threading.Event()
        self.on_bytes = on_bytes


class FileReader:
    """A file's bytes for a backend: counts progress once per byte of the file (a second read,
    e.g. streaming after hashing for ``{sha256}``, is not counted again) and raises Interrupted
    once the ingest is stopped."""

    def __init__(self, handle: BinaryIO, watch: Watch, budget: list[int]) -> None:
        self.handle, self.watch, self.budget = handle, watch, budget

    def read(self, size: int = -1) -> bytes:
        if self.watch.stopped.is_set():
            raise Interrupted()
        chunk = self.handle.read(CHUNK if size is None or size < 0 else size)
        counted = min(len(chunk), self.budget[0])
        if counted:
            self.budget[0] -= counted
            self.watch.on_bytes(counted)
        return chunk

    def __enter__(self) -> FileReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()


class FileWork:
    """One source on its way through the plan."""

    def __init__(self, plan: IngestPlan, source: Source, watch: Watch) -> None:
        self.plan, self.source, self.watch = plan, source, watch
        self.budget = [source.size]  # bytes of this file not yet counted as progress
        self._checksum: str | None = None

    def open(self) -> FileReader:
        return FileReader(open(self.source.path, "rb"), self.watch, self.budget)  # noqa: SIM115

    def checksum(self) -> str:
        """SHA-256 of the file, read once."""
        if self._checksum is None:
            digest = hashlib.sha256()
            with self.open() as reader:
                for chunk in iter(lambda: reader.read(CHUNK), b""):
                    digest.update(chunk)
            self._checksum = checksum_label(digest)
        return self._checksum

    def finish(self) -> None:
        """Count what was not read (files skipped on size alone) so the bytes total adds up."""
        if self.budget[0]:
            self.watch.on_bytes(self.budget[0])
            self.budget[0] = 0

    def names(self) -> tuple[str, dict[str, str]]:
        fields = template_fields(self.source, self.plan.fields)
        if self.plan.needs_sha256:
            fields["sha256"] = self.checksum().removeprefix("sha256:")
        pid = self.plan.pid.format_map(fields)
        identifiers = {name: t.format_map(fields) for name, t in self.plan.identifiers.items()}
        return pid, identifiers

    def key_in_place(self) -> str:
        key = self.plan.backend.key_at(self.source.path)
        if key is None:
            raise RuleViolation(
                f"--in-place: '{self.source.path}' is not a file inside the directory of "
                f"{self.plan.store.type} '{self.plan.store.bucket}'"
            )
        return key

    def run(self, pid: str, identifiers: dict[str, str], media: Media | None = UNKNOWN) -> Result | New:
        """What became of the file, or for a new media with its bytes to store, its New. ``media``:
        the media of ``pid`` when it was looked up already (None: there is none)."""
        plan, source = self.plan, self.source
        key = self.key_in_place() if plan.in_place else None
        if media is UNKNOWN:
            media = media_find(pid)
        if media is None:
            if plan.dry_run:
                return self.check_new(pid, identifiers)
            return self.create(pid, identifiers, key)
        if media.store_config_id != plan.store.pk:
            return self.failed(pid, f"media '{pid}' exists in another store ({media.store_config})")
        if key is not None and media.store_key != key:
            return self.failed(pid, f"media '{pid}' is registered for another object of the store")
        if media.store_status == StoreStatus.READY:
            if media.size == source.size and media.checksum == self.checksum():
                return Result(source, Outcome.SKIPPED, pid, "already stored")
            if not plan.replace:
                return self.failed(
                    pid,
                    f"differs from the stored media '{pid}' ({media.size} bytes, {media.checksum}); "
                    "not replaced (--replace replaces it)",
                )
            outcome, conditions = Outcome.REPLACED, Preconditions(if_match=current_etag(media) or "*")
        else:
            outcome, conditions = Outcome.STORED, Preconditions(if_none_match="*")
        if plan.dry_run:
            return Result(source, outcome, pid, "dry run: would store the bytes")
        if key is not None:
            self.register(media, key, conditions)
            return Result(source, outcome, pid)
        with self.open() as reader:
            stored = put_content(
                pid,
                reader,
                content_type=self.content_type(),
                size=source.size,
                user=plan.user,
                conditions=conditions,
                reason=self.reason(),
            )
        return Result(source, outcome, pid, written=stored.size or 0)

    def content_type(self) -> str:
        return mimetypes.guess_type(self.source.relpath)[0] or DEFAULT_CONTENT_TYPE

    def reason(self) -> str:
        """The change reason of the history rows this file makes: ``ingest: <path>``, the path cut
        at the front when it does not fit the column (its end says the most)."""
        path = str(self.source.path)
        room = REASON_LENGTH - len(INGEST_REASON)
        return INGEST_REASON + (path if len(path) <= room else "…" + path[-(room - 1) :])

    def create(self, pid: str, identifiers: dict[str, str], key: str | None) -> Result | New:
        item = self.plan.item(pid, identifiers)
        if key is not None:
            taken = Media.objects.filter(store_config=self.plan.store, store_key=key).first()
            if taken is not None:
                return self.failed(pid, f"the file is already registered as media '{taken.pid}'")
            copy = (
                Replica.objects.filter(store_config=self.plan.store, store_key=key)
                .select_related("media")
                .first()
            )
            if copy is not None:
                return self.failed(pid, f"the file is a replica of media '{copy.media.pid}'")
            [media] = media_prepare_many([item], user=self.plan.user, name_items=False)
            media.store_key, media.store_status = key, StoreStatus.READY
            media.size, media.checksum = self.source.size, self.checksum()
            media.content_type = self.content_type()
            if self.plan.backend.size(key) != self.source.size:
                raise RuleViolation(f"'{self.source.relpath}' changed while it was read; try again")
            # never discards: the file is the object
            media_insert([media], user=self.plan.user, reason=self.reason())
            return Result(self.source, Outcome.STORED, pid)
        return New(self, pid, item)

    def stage(self, pid: str, item: MediaIn) -> Staged:
        """Phase one of ``upload_stream``: the new media checked and its bytes written (durably,
        hashed on the way) under its fresh key; the row, READY with that size and checksum, is left
        for ``commit``. Nothing is left behind when this raises."""
        with prepared_media([item], user=self.plan.user, name_items=False) as [media]:
            precheck_bytes(media, self.source.size, new=True)
            return self.store(pid, media)

    def store(self, pid: str, media: Media, backend: Backend | None = None) -> Staged:
        """The bytes of a checked new media under its key (see ``stage``; ``backend``: its store's,
        when the caller built it already)."""
        content_type = self.content_type()
        clean_content_type(content_type)
        with self.open() as reader:
            backend = write_new(
                media, reader, size=self.source.size, content_type=content_type, backend=backend
            )
        media._change_reason = self.reason()  # django-simple-history's per-object reason
        return Staged(Result(self.source, Outcome.STORED, pid, written=media.size), media, backend)

    def register(self, media: Media, key: str, conditions: Preconditions) -> None:
        """In place: point the media at the file it already is, with the checksum just read."""
        checksum = self.checksum()
        switch_bytes(
            media,
            key=key,
            size=self.source.size,
            checksum=checksum,
            etag="",
            content_type=None,
            user=self.plan.user,
            conditions=conditions,
            reason=self.reason(),
        )

    def check_new(self, pid: str, identifiers: dict[str, str]) -> Result:
        """Dry run of a create: the rules, without writing anything (not even a store)."""
        rules = IdentifierRules()
        rules.check_pid(pid, self.plan.pid_type)
        rules.identifiers(pid, self.plan.pid_type, identifiers)
        return Result(self.source, Outcome.STORED, pid, "dry run: would create the media with its bytes")

    def failed(self, pid: str, detail: str) -> Result:
        return Result(self.source, Outcome.FAILED, pid, detail)
