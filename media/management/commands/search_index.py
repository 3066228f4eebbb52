"""``manage.py search_index add|list|drop``: give a metadata path its own index for range searches;
``add-identifier|drop-identifier``: give an identifier type one for prefix wildcards (PostgreSQL)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connection

from media.models import SearchIndex
from media.search.indexes import (
    IDENTIFIER,
    KINDS,
    check_identifier_type,
    identifier_index_ddl,
    identifier_index_name,
    index_ddl,
    index_name,
    parse_path,
)


class Command(BaseCommand):
    help = (
        "Indexes on metadata paths, for range searches (lt, lte, gt, gte) on them. "
        "`add sample.depth --as number` builds the index (CONCURRENTLY on PostgreSQL: writes go on "
        "meanwhile) and records it, so search writes its SQL to use it; `list` shows the indexed "
        "paths; `drop sample.depth [--as number]` removes them. `add-identifier doi` indexes the values "
        "of one identifier type, for wildcards with a literal prefix (`10.5555/*`; PostgreSQL only), "
        "`drop-identifier doi` removes it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        add = actions.add_parser("add", help="index a metadata path")
        add.add_argument("path", help="dotted path into the metadata, e.g. sample.depth")
        add.add_argument("--as", dest="kind", choices=KINDS, required=True, help="compare values as")
        actions.add_parser("list", help="list the indexed paths")
        drop = actions.add_parser("drop", help="drop the index of a path")
        drop.add_argument("path")
        drop.add_argument("--as", dest="kind", choices=KINDS, help="only this kind (default: both)")
        for action, text in (("add-identifier", "index"), ("drop-identifier", "drop the index of")):
            sub = actions.add_parser(action, help=f"{text} the values of an identifier type (PostgreSQL)")
            sub.add_argument("type", help="identifier type name, e.g. doi")

    def handle(self, *args, action: str, **options) -> None:
        if action == "list":
            for index in SearchIndex.objects.order_by("path", "kind"):
                self.stdout.write(f"{index.path}\t{index.kind}\t{index.name}")
            return
        if action in ("add-identifier", "drop-identifier"):
            try:
                type_name = check_identifier_type(options["type"])
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            if action == "add-identifier":
                self._add_identifier(type_name)
            else:
                self._drop_identifier(type_name)
            return
        try:
            keys = parse_path(options["path"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        path = ".".join(keys)
        if action == "add":
            self._add(keys, path, options["kind"])
        else:
            kinds = [options["kind"]] if options["kind"] else list(KINDS)
            self._drop(keys, path, kinds)

    def _add(self, keys: tuple[str, ...], path: str, kind: str) -> None:
        name = index_name(keys, kind)
        vendor = connection.vendor
        if vendor not in ("postgresql", "sqlite"):
            raise CommandError(f"search_index supports PostgreSQL and SQLite, not {vendor}")
        try:
            with connection.cursor() as cursor:
                if vendor == "postgresql":  # a failed concurrent build leaves an invalid index behind
                    cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
                cursor.execute(index_ddl(keys, kind, vendor))
                cursor.execute("ANALYZE media_media")
        except DatabaseError as exc:
            raise CommandError(f"building the index of {path} ({kind}) failed: {exc}") from None
        SearchIndex.objects.update_or_create(path=path, kind=kind, defaults={"name": name})
        self.stdout.write(f"indexed {path} as {kind} ({name})")

    def _drop(self, keys: tuple[str, ...], path: str, kinds: list[str]) -> None:
        dropped = 0
        concurrently = " CONCURRENTLY" if connection.vendor == "postgresql" else ""
        for kind in kinds:
            record = SearchIndex.objects.filter(path=path, kind=kind).first()
            if record is None:
                continue
            record.delete()  # first: search stops writing SQL for an index that is going away
            with connection.cursor() as cursor:
                cursor.execute(f"DROP INDEX{concurrently} IF EXISTS {index_name(keys, kind)}")
            dropped += 1
            self.stdout.write(f"dropped the {kind} index of {path}")
        if not dropped:
            raise CommandError(f"{path} has no search index")

    def _add_identifier(self, type_name: str) -> None:
        if connection.vendor != "postgresql":  # SQLite's GLOB cannot use an expression index for a prefix
            self.stdout.write(
                f"identifier indexes are for PostgreSQL; on {connection.vendor} nothing was done "
                "(its search reads identifiers without them)"
            )
            return
        name = identifier_index_name(type_name)
        try:
            with connection.cursor() as cursor:  # a failed concurrent build leaves an invalid index behind
                cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
                cursor.execute(identifier_index_ddl(type_name))
                cursor.execute("ANALYZE media_media")
        except DatabaseError as exc:
            raise CommandError(f"building the index of identifier type {type_name} failed: {exc}") from None
        SearchIndex.objects.update_or_create(path=type_name, kind=IDENTIFIER, defaults={"name": name})
        self.stdout.write(f"indexed identifier type {type_name} ({name})")

    def _drop_identifier(self, type_name: str) -> None:
        record = SearchIndex.objects.filter(path=type_name, kind=IDENTIFIER).first()
        if record is None:
            raise CommandError(f"identifier type {type_name} has no search index")
        record.delete()  # first: search stops writing SQL for an index that is going away
        with connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {identifier_index_name(type_name)}")
        self.stdout.write(f"dropped the index of identifier type {type_name}")
