"""Writing a plan: configurations and accounts first, then media in batches, one transaction each.

Every imported media gets its earlier history (the earlier server's rows, with their dates, types,
users and change reasons, numbered as our revisions 1, 2, ...) and one more row for the import
itself, so the newest history row equals the current row as everywhere else, and one
``media.created`` event in the outbox (a consumer of the changes feed learns of it as of any new
media). The history of media deleted on the earlier server comes over too, under an id no media
will ever get, so ``GET /api/media/{pid}/history`` answers for them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.utils import timezone

from content.services import DEFAULT_CONTENT_TYPE
from identifiers.models import IdentifierType
from importer.content import check_bytes
from importer.plan import IMPORT_REASON, Plan, Target
from importer.source import OldHistory, OldMedia, Snapshot
from media.history import history_row
from media.models import EventType, Media, StoreStatus, next_marks
from media.outbox import event_for, record
from media.tags import sync_tags
from media.usage import charge_inserted
from mediastore.errors import MediastoreError
from mediastore.models import TOKEN_PREFIX_LENGTH, ApiToken, hash_token
from stores.models import StoreConfig
from stores.services import s3cfg_create, store_get_or_create

MAX_REASON = 100  # history_change_reason's max_length


@dataclass
class Summary:
    done: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


def chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def reserve_media_ids(count: int) -> list[int]:
    """``count`` ids of the media table that no media has or will ever get (for deleted media's
    history): drawn from its sequence on PostgreSQL, from ``sqlite_sequence`` (AUTOINCREMENT) on
    SQLite. Must run in a transaction."""
    table = Media._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, count]
            )
            return sorted(row[0] for row in cursor.fetchall())
        cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
        row = cursor.fetchone()
        if row is None:
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {connection.ops.quote_name(table)}")
            top = cursor.fetchone()[0]
            cursor.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [table, top + count])
        else:
            top = row[0]
            cursor.execute("UPDATE sqlite_sequence SET seq = %s WHERE name = %s", [top + count, table])
    return list(range(top + 1, top + count + 1))


def revisions(rows: list[OldHistory]) -> list[int]:
    """Our version number of each old history row: one more per create or change; a deletion
    keeps the version of the state it deleted."""
    numbers, version = [], 0
    for row in rows:
        if row.type != "-":
            version += 1
        numbers.append(max(version, 1))
    return numbers


class Importer:
    def __init__(
        self,
        snap: Snapshot,
        plan: Plan,
        *,
        group: str,
        copy_bytes: bool,
        batch_size: int,
        advance: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.snap, self.plan, self.group = snap, plan, group
        self.copy_bytes, self.batch_size, self.advance = copy_bytes, batch_size, advance
        self.summary = Summary()
        self.stores: dict[int, StoreConfig] = {}  # old store id -> ours
        self.user_ids: dict[int, int] = {}  # old user id -> ours

    def run(self) -> Summary:
        self._identifier_types()
        self._s3_configs()
        self._stores()
        self._users()
        for batch in chunks(self.plan.media, self.batch_size):
            self._media(batch)
            self.advance(len(batch))
        for batch in chunks(self.plan.deleted, self.batch_size):
            self._deleted(batch)
            self.advance(len(batch))
        return self.summary

    @property
    def total(self) -> int:
        return len(self.plan.media) + len(self.plan.deleted)

    # -- configurations and accounts -----------------------------------------------------------

    @transaction.atomic
    def _identifier_types(self) -> None:
        for name, pattern in self.plan.identifier_types:
            IdentifierType(name=name, pattern=pattern).save(force_insert=True)
            self.summary.done["identifier types"] += 1

    def _s3_configs(self) -> None:
        for url, access_key, secret_key in self.plan.s3_configs:
            try:
                s3cfg_create(url=url, access_key=access_key, secret_key=secret_key, user=None)
            except MediastoreError as exc:
                self.summary.problems.append(f"S3 config {url!r} not imported: {exc.message}")
                continue
            self.summary.done["S3 configs"] += 1

    def _stores(self) -> None:
        made: dict[Target, StoreConfig] = {}
        for old_id, target in self.plan.stores.items():
            if target not in made:
                before = StoreConfig.objects.count()
                try:
                    made[target] = store_get_or_create(
                        type=target.type, bucket=target.bucket, s3_url=target.s3_url, user=None
                    )
                except MediastoreError as exc:
                    self.summary.problems.append(
                        f"store config {old_id} ({target.type} {target.bucket!r}) not imported, nor its "
                        f"media: {exc.message}"
                    )
                    continue
                self.summary.done["store configs"] += StoreConfig.objects.count() - before
            self.stores[old_id] = made[target]

    @transaction.atomic
    def _users(self) -> None:
        User = get_user_model()
        group = Group.objects.get(name=self.group)
        for old in self.plan.users:
            user = User(
                username=old.username,
                password=old.password,
                is_superuser=old.is_superuser,
                is_staff=old.is_staff,
                is_active=old.is_active,
                email=old.email,
                first_name=old.first_name,
                last_name=old.last_name,
                last_login=old.last_login,
            )
            if old.date_joined is not None:
                user.date_joined = old.date_joined
            user.save(force_insert=True)
            if not old.is_superuser:
                user.groups.add(group)
            self.summary.done["users"] += 1
        names = User.objects.filter(username__in=self.plan.usernames.values())
        by_name = dict(names.values_list("username", "pk"))
        self.user_ids = {old: by_name[name] for old, name in self.plan.usernames.items() if name in by_name}
        for key, username, created in self.plan.tokens:
            row = ApiToken.objects.create(
                user_id=by_name[username], key_hash=hash_token(key), prefix=key[:TOKEN_PREFIX_LENGTH]
            )
            if created is not None:  # auto_now_add set "now" on insert; keep when it was issued
                ApiToken.objects.filter(pk=row.pk).update(created=created)
            self.summary.done["tokens"] += 1

    # -- media --------------------------------------------------------------------------------

    def _media(self, batch: list[OldMedia]) -> None:
        checked = {}
        for old in batch:  # bytes first, outside any transaction
            store = self.stores.get(old.store_config_id)
            if store is None:
                continue
            result = check_bytes(
                self.plan.stores[old.store_config_id],
                store.backend(),
                old.store_key,
                old.store_status,
                copy=self.copy_bytes,
            )
            if result.problem:
                self.summary.problems.append(f"media {old.pid!r} imported PENDING: {result.problem}")
                self.summary.done["media READY -> PENDING (bytes missing)"] += 1
            self.summary.done["objects copied"] += result.copied
            self.summary.done["objects checked"] += result.status == "READY"
            checked[old.id] = result
        with transaction.atomic():
            taken = set(Media.objects.filter(pid__in=[m.pid for m in batch]).values_list("pid", flat=True))
            for pid in sorted(taken):
                self.summary.problems.append(f"media {pid!r} not imported: created here after the plan")
            todo = [m for m in batch if m.id in checked and m.pid not in taken]
            if not todo:
                return
            histories = [self.snap.history.get(m.id, []) for m in todo]
            marks = iter(next_marks(sum(len(rows) + 1 for rows in histories)))
            now = timezone.now()
            objs, history_rows = [], []
            for old, rows in zip(todo, histories, strict=True):
                result = checked[old.id]
                obj = Media(
                    pid=old.pid,
                    pid_type_id=old.pid_type,
                    store_config=self.stores[old.store_config_id],
                    store_key=old.store_key,
                    store_status=result.status,
                    identifiers=old.identifiers,
                    metadata=old.metadata,
                    tag_list=old.tags,
                    size=result.size,
                    checksum=result.checksum,
                    # The earlier server kept no media type; READY bytes get the one an upload gets.
                    content_type=DEFAULT_CONTENT_TYPE if result.status == StoreStatus.READY else "",
                )
                history_rows.append((obj, self._old_rows(rows, old.tags, marks)))
                obj.mark, obj.version = next(marks), len([r for r in rows if r.type != "-"]) + 1
                obj.created = rows[0].date if rows else now
                objs.append(obj)
            Media.objects.bulk_create(objs)
            Media.objects.bulk_update(objs, ["created"])  # bulk_create stamped "now" (auto_now_add)
            charge_inserted(objs, user=None, check=False)  # counted (no owner); a move-over is never refused
            historical = []
            for obj, rows in history_rows:
                for row in rows:
                    row.id, row.created = obj.pk, obj.created
                historical += rows
                historical.append(self._history_row(obj, now, "~" if rows else "+", obj.version, obj.mark))
            Media.history.model.objects.bulk_create(historical)
            sync_tags(objs, fresh=True)
            record([event_for(obj, EventType.CREATED, user=None, now=now) for obj in objs])
            self.summary.done["media"] += len(objs)
            self.summary.done["history rows"] += len(historical)

    def _old_rows(self, rows: list[OldHistory], tags: list[str], marks: Iterator[int]) -> list:
        """Unsaved historical rows for the earlier server's rows of one media (id set by the caller).

        The earlier server did not record tags in its history; every old row carries the tags the
        media has now (the best knowledge there is), so no change of tags is made up.
        """
        historical = Media.history.model
        made = []
        for row, version in zip(rows, revisions(rows), strict=True):
            store = self.stores.get(row.store_config_id)
            made.append(
                historical(
                    pid=row.pid,
                    pid_type_id=row.pid_type,
                    store_config_id=store.pk if store is not None else None,
                    store_key=row.store_key,
                    store_status=row.store_status,
                    identifiers=row.identifiers if row.identifiers is not None else {},
                    metadata=row.metadata if row.metadata is not None else {},
                    tag_list=tags,
                    checksum="",
                    etag="",
                    content_type="",
                    mark=next(marks),
                    version=version,
                    history_date=row.date,
                    history_change_reason=(row.reason or "")[:MAX_REASON] or None,
                    history_type=row.type,
                    history_user_id=self.user_ids.get(row.user_id),
                )
            )
        return made

    def _history_row(self, obj: Media, now, history_type: str, version: int, mark: int):
        return history_row(
            obj,
            mark=mark,
            version=version,
            history_date=now,
            history_change_reason=IMPORT_REASON,
            history_type=history_type,
            history_user_id=None,
        )

    @transaction.atomic
    def _deleted(self, batch: list[int]) -> None:
        groups = [self.snap.history[old_id] for old_id in batch]
        ids = reserve_media_ids(len(batch))
        marks = iter(next_marks(sum(len(rows) for rows in groups)))
        historical = []
        for new_id, rows in zip(ids, groups, strict=True):
            made = self._old_rows(rows, [], marks)
            for row in made:
                row.id, row.created = new_id, rows[0].date
            historical += made
        Media.history.model.objects.bulk_create(historical)
        self.summary.done["deleted media histories"] += len(batch)
        self.summary.done["history rows"] += len(historical)
