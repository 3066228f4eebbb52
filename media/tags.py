"""Taggit's rows of media, kept equal to their ``tag_list`` (the copy the API returns and the
history records), in a number of statements that grows neither with the tags nor with the media.

Every list travels as one parameter: a JSON array on SQLite (read with ``json_each``), arrays on
PostgreSQL (read with ``unnest``). ``IN (%s, %s, ...)`` and ``bulk_create`` would split into batches
of SQLite's 999 parameters, so 500 tags cost more statements than 5, and taggit's own
``tags.set``/``tags.add`` create each new tag with statements of its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from django.db import IntegrityError, connection, transaction
from taggit.models import Tag

from media.models import Media, TaggedMedia

SLUG_LENGTH = Tag._meta.get_field("slug").max_length


def _quoted(model, *fields: str) -> tuple[str, ...]:
    quote = connection.ops.quote_name
    return (quote(model._meta.db_table), *(quote(model._meta.get_field(f).column) for f in fields))


def _rows(columns: tuple[str, ...], rows: list[tuple]) -> tuple[str, list]:
    """A SELECT of ``rows`` (tuples with one value per SQL type in ``columns``, e.g. ``("text",)``)
    and its parameters: one per column on PostgreSQL, one in all on SQLite."""
    if connection.vendor == "postgresql":
        arrays = [[row[i] for row in rows] for i in range(len(columns))]
        return f"SELECT * FROM unnest({', '.join(f'%s::{kind}[]' for kind in columns)})", arrays
    values = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(columns)))
    return f"SELECT {values} FROM json_each(%s)", [json.dumps(rows)]


def _existing(column: str, values: Iterable[str]) -> dict[str, int]:
    """``{value: tag id}`` of the tags whose ``column`` (name or slug) is one of ``values``."""
    values = sorted(set(values))
    if not values:
        return {}
    table, wanted, pk = _quoted(Tag, column, "id")
    rows_sql, params = _rows(("text",), [(value,) for value in values])
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {wanted}, {pk} FROM {table} WHERE {wanted} IN ({rows_sql})", params)
        return dict(cursor.fetchall())


def _slug(tag: Tag, name: str, number: int) -> str:
    """taggit's slug of ``name`` (``Tag.slugify``, ``_<number>`` appended after the first), cut to
    fit the column (taggit does not cut: a long transliteration failed on PostgreSQL)."""
    base = tag.slugify(name)
    if not number:
        return base[:SLUG_LENGTH]
    suffix = f"_{number}"
    return base[: SLUG_LENGTH - len(suffix)] + suffix


def _new_slugs(names: list[str]) -> list[tuple[str, str]]:
    """``(name, slug)`` for new tags, slugs chosen as taggit's ``Tag.save`` chooses them: past the
    slugs already taken (one query for the plain ones) and those given to earlier names here."""
    tag = Tag()
    taken = set(_existing("slug", (_slug(tag, name, 0) for name in names)))
    rows = []
    for name in names:
        number = 0
        while (slug := _slug(tag, name, number)) in taken:
            number += 1
        taken.add(slug)
        rows.append((name, slug))
    return rows


def _create_one(name: str) -> int:
    """The id of tag ``name``, created with taggit's own ``save`` (which picks a free slug)."""
    try:
        with transaction.atomic():
            return Tag.objects.create(name=name).pk
    except IntegrityError:  # created at the same moment by another request
        return Tag.objects.get(name=name).pk


def tag_ids(names: set[str]) -> dict[str, int]:
    """``{name: tag id}``, creating the tags that do not exist: four statements whatever the number
    of names, plus one tag at a time only for a name or slug another request took meanwhile."""
    ids = _existing("name", names)
    missing = sorted(names - ids.keys())
    if not missing:
        return ids
    table, name_column, slug_column = _quoted(Tag, "name", "slug")
    rows_sql, params = _rows(("text", "text"), _new_slugs(missing))
    insert = f"INSERT INTO {table} ({name_column}, {slug_column}) {rows_sql}"
    with connection.cursor() as cursor:  # WHERE true: SQLite's grammar needs it before ON CONFLICT
        cursor.execute(f"{insert} WHERE true ON CONFLICT DO NOTHING", params)
    ids.update(_existing("name", missing))
    for name in missing:
        if name not in ids:
            ids[name] = _create_one(name)
    return ids


def sync_tags(media: list[Media], *, fresh: bool = False) -> None:
    """Make taggit's rows of these media equal their ``tag_list``; ``fresh``: they have none yet."""
    if not media:
        return
    if not fresh:
        TaggedMedia.objects.filter(content_object_id__in=[m.pk for m in media]).delete()
    ids = tag_ids({name for m in media for name in m.tag_list})
    links = [(m.pk, ids[name]) for m in media for name in m.tag_list]
    if not links:
        return
    table, media_column, tag_column = _quoted(TaggedMedia, "content_object", "tag")
    rows_sql, params = _rows(("bigint", "bigint"), links)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({media_column}, {tag_column}) {rows_sql}", params)
