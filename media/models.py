"""Media: one data product, its identifiers, metadata, tags and where its bytes live."""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.db.models.fields import NOT_PROVIDED
from simple_history.models import HistoricalRecords
from taggit.managers import TaggableManager
from taggit.models import Tag, TaggedItemBase

from mediastore.limits import MAX_KEY_LENGTH, MAX_PID_LENGTH


class StoreStatus(models.TextChoices):
    PENDING = "PENDING"
    READY = "READY"


class MarkCounter(models.Model):
    """The shared change sequence on databases without sequences (SQLite); one row."""

    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return str(self.value)


MARK_SEQUENCE = "media_mark_seq"


def next_marks(count: int) -> list[int]:
    """Reserve ``count`` consecutive-or-increasing numbers from the one media change sequence.

    One query on PostgreSQL (a real sequence, no lock held until commit); on SQLite, where
    writes are serialised anyway, a counter row bumped in the current transaction.
    """
    if count <= 0:
        return []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SELECT nextval('{MARK_SEQUENCE}') FROM generate_series(1, %s)", [count])
            return sorted(row[0] for row in cursor.fetchall())
    with transaction.atomic():
        updated = MarkCounter.objects.filter(pk=1).update(value=models.F("value") + count)
        if not updated:
            MarkCounter.objects.create(pk=1, value=count)
        top = MarkCounter.objects.values_list("value", flat=True).get(pk=1)
    return list(range(top - count + 1, top + 1))


class TaggedMedia(TaggedItemBase):
    """A media's tag, as taggit keeps it. Its indexes: (tag, media) for the media of a tag, read in
    media order by a search of one tag (media/search/pages.py), and the unique (media, tag). The
    tag's own foreign-key index is left out (migration 0011): the (tag, media) index serves every
    lookup by tag, and a second index on the tag alone let the planner read a tag's media unordered
    and sort them all."""

    content_object = models.ForeignKey("Media", on_delete=models.CASCADE, related_name="tagged_items")
    tag = models.ForeignKey(
        Tag, related_name="%(app_label)s_%(class)s_items", on_delete=models.CASCADE, db_index=False
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["content_object", "tag"], name="tagged_media_unique")]
        indexes = [models.Index(fields=["tag", "content_object"], name="media_tagged_tag_object")]


class Media(models.Model):
    pid = models.CharField(max_length=MAX_PID_LENGTH, unique=True)
    pid_type = models.ForeignKey(
        "identifiers.IdentifierType",
        on_delete=models.PROTECT,
        related_name="media_as_pid",
        db_column="pid_type",
    )
    store_config = models.ForeignKey("stores.StoreConfig", on_delete=models.PROTECT, related_name="media")
    store_key = models.CharField(max_length=MAX_KEY_LENGTH)
    # Who created it (None: imported, or made before owners were recorded, or the account is gone).
    # Keyed by username, so answers show it without a join; renames follow (media.apps), and no
    # database constraint holds the old name while they do.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        to_field="username",
        db_column="owner",
        db_constraint=False,
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="owned_media",
    )
    store_status = models.CharField(max_length=8, choices=StoreStatus.choices, default=StoreStatus.PENDING)
    identifiers = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # Tags live in taggit's tables (for search and the admin); this sorted copy of their names is
    # what the API returns and what the audit history records, since taggit rows have no history.
    tag_list = models.JSONField(default=list, blank=True, editable=False)
    size = models.BigIntegerField(null=True, blank=True, editable=False)
    checksum = models.CharField(max_length=80, blank=True, default="", editable=False)
    etag = models.CharField(max_length=128, blank=True, default="", editable=False)
    content_type = models.CharField(max_length=255, blank=True, default="")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    mark = models.BigIntegerField(default=0, db_index=True, editable=False)
    version = models.PositiveIntegerField(default=0, editable=False)
    # The last fixity check (manage.py verify, content.fixity). Written with a bare UPDATE, outside
    # the history and the change numbering: a check reads the bytes, it does not change the media.
    verified_at = models.DateTimeField(null=True, blank=True, editable=False)
    verify_ok = models.BooleanField(null=True, blank=True, editable=False)
    # db_default too: rows loaded with plain SQL (benchmarks, the plan tests) need not name it.
    verify_error = models.CharField(max_length=500, blank=True, default="", db_default="", editable=False)
    # Lifecycle (media.lifecycle): after expires_at the media is no longer served and `manage.py
    # expire` deletes it. A hold (hold_since set) forbids deleting, replacing, moving and expiring
    # it until hold_until (None: until released); hold_freeze forbids record edits too.
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    hold_since = models.DateTimeField(null=True, blank=True, editable=False)
    hold_until = models.DateTimeField(null=True, blank=True, editable=False)
    hold_reason = models.CharField(max_length=500, blank=True, default="", db_default="", editable=False)
    hold_freeze = models.BooleanField(default=False, db_default=False, editable=False)
    hold_by = models.CharField(max_length=150, blank=True, default="", db_default="", editable=False)

    tags = TaggableManager(through=TaggedMedia, blank=True)
    history = HistoricalRecords(excluded_fields=["updated", "verified_at", "verify_ok", "verify_error"])

    class Meta:
        verbose_name_plural = "media"
        ordering = ["pk"]
        permissions = [
            ("hold_media", "Can place and release holds on media"),
            ("purge_media", "Can purge media from the recycle bin"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["store_config", "store_key"], name="media_store_key_unique"),
        ]
        indexes = [
            # verify --older-than: the media of a store never checked (NULL) or checked before a time.
            models.Index(fields=["store_config", "verified_at"], name="media_store_verified"),
            # The last verify failures (status page, /api/stats): a small partial index.
            models.Index(
                fields=["-verified_at"], name="media_verify_failed", condition=models.Q(verify_ok=False)
            ),
        ]

    def __str__(self) -> str:
        return self.pid

    def save(self, *args, **kwargs) -> None:
        self.stamp()
        super().save(*args, **kwargs)

    def stamp(self, mark: int | None = None) -> None:
        """Take the next change number and count one more revision (done on every write)."""
        self.mark = mark if mark is not None else next_marks(1)[0]
        self.version = (self.version or 0) + 1


def new_media(store_config, **values) -> Media:
    """``Media(store_config=store_config, **values)`` (``values`` by field ``attname``), built
    positionally (``new_instance``). Fields not given get their default, as with keywords."""
    obj = new_instance(Media, values)
    obj.store_config = store_config
    return obj


def new_instance(model: type[models.Model], values: dict[str, object]) -> models.Model:
    """``model(**values)`` (``values`` by field ``attname``), built as Django builds a loaded row
    (``Model.from_db``: every value positionally, in ``_meta.concrete_fields`` order), which skips
    the per-keyword work of ``Model.__init__``; the defaults of the fields not given are made as
    ``Model.__init__`` makes them, constants taken once (``_Positional``). TypeError for a name
    that is not a field's ``attname``."""
    return model(*_positional(model).args(values))


class _Positional:
    """The positional arguments of a model's ``__init__``: a template of the constant defaults (a
    default that is not callable, or none at all: ``None`` or ``""`` by the field's kind), copied,
    then the per-instance defaults (callables such as ``dict``, ``db_default`` expressions) made
    for the fields not given, then the given values."""

    def __init__(self, model: type[models.Model]) -> None:
        fields = model._meta.concrete_fields
        self.model = model
        self.index = {field.attname: index for index, field in enumerate(fields)}
        self.template: list[object] = []
        self.made: list[tuple[int, str, Callable[[], object]]] = []
        for index, field in enumerate(fields):
            constant = (
                not callable(field.default) if field.has_default() else field.db_default is NOT_PROVIDED
            )
            self.template.append(field.get_default() if constant else None)
            if not constant:
                self.made.append((index, field.attname, field.get_default))

    def args(self, values: dict[str, object]) -> list[object]:
        args = self.template.copy()
        for index, name, make in self.made:
            if name not in values:
                args[index] = make()
        index = self.index
        for name, value in values.items():
            if name not in index:
                raise TypeError(f"{self.model.__name__} has no field {name!r}")
            args[index[name]] = value
        return args


@functools.cache
def _positional(model: type[models.Model]) -> _Positional:
    return _Positional(model)


class EventCounter(models.Model):
    """The number of the newest outbox event (one row); see ``media.outbox`` for why a locked row
    and not a sequence."""

    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return str(self.value)


class EventType(models.TextChoices):
    CREATED = "media.created"
    UPDATED = "media.updated"
    TAGS_CHANGED = "media.tags_changed"
    BYTES_STORED = "media.bytes_stored"
    MOVED = "media.moved"
    REVERTED = "media.reverted"
    DELETED = "media.deleted"
    VERIFY_FAILED = "media.verify_failed"
    EXPIRED = "media.expired"
    RESTORED = "media.restored"


class MediaEvent(models.Model):
    """The transactional outbox: one row per change of a media, written in the transaction of the
    change (``media.outbox``). ``seq`` numbers the events in commit order without gaps."""

    seq = models.BigIntegerField(primary_key=True)
    type = models.CharField(max_length=32, choices=EventType.choices)
    pid = models.CharField(max_length=MAX_PID_LENGTH)
    media_pk = models.BigIntegerField()  # no foreign key: the events of a deleted media stay
    mark = models.BigIntegerField()
    version = models.PositiveIntegerField()
    user = models.CharField(max_length=150, blank=True, default="")  # username; "" for none
    time = models.DateTimeField()
    changed = models.JSONField(default=list, blank=True)
    media = models.JSONField(encoder=DjangoJSONEncoder)
    # Set by the relay (events.relay) once the broker confirmed the event; the feed ignores it.
    published = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["seq"]
        indexes = [models.Index(fields=["time"], name="media_event_time")]

    def __str__(self) -> str:
        return f"{self.seq} {self.type} {self.pid}"


class SearchIndex(models.Model):
    """A metadata path (``manage.py search_index add``) or an identifier type (``add-identifier``)
    given its own index (media.search.indexes).

    Search reads these rows to write its SQL exactly as the index expression is written, so the
    database can use it, and to tell which range searches have no index (``X-Search-Plan``).
    """

    path = models.CharField(
        max_length=512,
        help_text="Dotted path into the metadata, e.g. sample.depth, or (kind identifier) a type.",
    )
    kind = models.CharField(
        max_length=10, choices=[("number", "number"), ("text", "text"), ("identifier", "identifier")]
    )
    name = models.CharField(max_length=63, unique=True, help_text="Name of the database index.")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["path", "kind"], name="search_index_path_kind")]

    def __str__(self) -> str:
        return f"{self.path} ({self.kind})"


class ExactJSONEncoder(DjangoJSONEncoder):
    """DjangoJSONEncoder with times to the microsecond (it cuts them to milliseconds): a binned
    media's row comes back exactly."""

    def default(self, o):
        if isinstance(o, datetime.datetime):
            return o.isoformat()
        return super().default(o)


class BinnedMedia(models.Model):
    """A deleted media in the recycle bin (``MEDIASTORE_TRASH_DAYS``): its row as it was, kept apart
    from the media table so that nothing reading media (search, dumps, stats, fixity, events, the
    admin) sees it, and its bytes (and replicas' bytes) left in place until it is purged or
    restored. ``record``: every field of the media row (attname -> JSON value); ``replicas``: its
    replica rows likewise."""

    media_pk = models.BigIntegerField(unique=True)
    pid = models.CharField(max_length=MAX_PID_LENGTH, db_index=True)
    store_config = models.ForeignKey(
        "stores.StoreConfig", on_delete=models.PROTECT, related_name="binned_media"
    )
    store_key = models.CharField(max_length=MAX_KEY_LENGTH)
    record = models.JSONField(encoder=ExactJSONEncoder)
    replicas = models.JSONField(encoder=ExactJSONEncoder, default=list, blank=True)
    deleted_at = models.DateTimeField()
    deleted_by = models.CharField(max_length=150, blank=True, default="")
    purge_after = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-deleted_at", "-pk"]
        verbose_name = "media in the recycle bin"
        verbose_name_plural = "media in the recycle bin"
        indexes = [models.Index(fields=["store_config", "store_key"], name="binned_store_key")]

    def __str__(self) -> str:
        return self.pid
