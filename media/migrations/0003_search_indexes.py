"""Indexes for search (media/search.py), on PostgreSQL only; SQLite gets nothing here.

- metadata, identifiers: GIN jsonb_path_ops, for the ``@>`` containment that search uses for
  metadata eq/in/contains and exact identifiers of one type.
- pid: trigram GIN for infix wildcards (``LIKE '%x%'``), and a btree on ``pid COLLATE "C"`` that
  serves prefix wildcards (``LIKE 'x%'``, whatever the database collation, as text_pattern_ops
  would) and ``order_by=pid`` in the byte order that SQLite uses too; it carries the id, so the
  page's ids of a prefix search come from the index alone.
- media_identifier_values(identifiers): all identifier values as one text, trigram GIN: pre-filters
  identifier wildcards (search.py then checks each value exactly).
- created/updated: btree with id, for the date filters and ``order_by``.
- taggit rows: (tag_id, content_object_id) for "media with tag X"; Django already made the FK
  indexes and the (content_object_id, tag_id) unique index that the all-tags EXISTS probes use.
"""

from django.db import migrations

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    """
    CREATE OR REPLACE FUNCTION media_identifier_values(identifiers jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
        SELECT CASE WHEN jsonb_typeof(identifiers) = 'object' THEN
            (SELECT coalesce(string_agg(value, E'\\n'), '') FROM jsonb_each_text(identifiers))
        ELSE '' END
    $$
    """,
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS media_metadata_gin ON media_media USING gin (metadata jsonb_path_ops)",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS media_identifiers_gin ON media_media USING gin (identifiers jsonb_path_ops)",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS media_identifier_values_trgm ON media_media "
    "USING gin (media_identifier_values(identifiers) gin_trgm_ops)",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS media_pid_trgm ON media_media USING gin (pid gin_trgm_ops)",
    'CREATE INDEX IF NOT EXISTS media_pid_c ON media_media (pid COLLATE "C") INCLUDE (id)',
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS media_created_id ON media_media (created, id)",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS media_updated_id ON media_media (updated, id)",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS media_tagged_tag_object ON media_taggedmedia (tag_id, content_object_id)",
]

BACKWARD = [
    "DROP INDEX CONCURRENTLY IF EXISTS media_tagged_tag_object",
    "DROP INDEX CONCURRENTLY IF EXISTS media_updated_id",
    "DROP INDEX CONCURRENTLY IF EXISTS media_created_id",
    "DROP INDEX CONCURRENTLY IF EXISTS media_pid_c",
    "DROP INDEX CONCURRENTLY IF EXISTS media_pid_trgm",
    "DROP INDEX CONCURRENTLY IF EXISTS media_identifier_values_trgm",
    "DROP INDEX CONCURRENTLY IF EXISTS media_identifiers_gin",
    "DROP INDEX CONCURRENTLY IF EXISTS media_metadata_gin",
    "DROP FUNCTION IF EXISTS media_identifier_values(jsonb)",
    # pg_trgm stays: other things may use it.
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in FORWARD:
            schema_editor.execute(sql)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in BACKWARD:
            schema_editor.execute(sql)


class Migration(migrations.Migration):
    # Not atomic, and every index built CONCURRENTLY: on an installation that already holds a
    # million media a plain CREATE INDEX locked writes for about a minute (issue 14). A failed
    # concurrent build leaves an invalid index; running the migration again is safe (IF NOT EXISTS
    # skips a valid one; drop an invalid one by hand first, `\d media_media` lists it as INVALID).
    atomic = False

    dependencies = [("media", "0002_mark_sequence")]

    operations = [migrations.RunPython(forward, backward, atomic=False)]
