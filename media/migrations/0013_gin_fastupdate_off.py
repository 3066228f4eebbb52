"""The GIN indexes of media_media write each new row into the index at once (``fastupdate = off``),
on PostgreSQL; SQLite has none.

With GIN's default fast update, new rows' entries wait in a pending list until VACUUM or 4 MB of
them, and every search through the index reads the whole list. While media arrive faster than
autovacuum comes by, that made searches slower with every insert, and bulk create too: its check
for taken pids (``pid IN (...)``) was planned on the pid's trigram index and read the list for
every call; 100 media per call went from 67 ms to 400-700 ms after 4,000 media in a fresh database
(docs/performance.md). Without the list each insert pays its index entries itself (about a fifth
more per bulk create call, measured), and a search costs the same whenever it runs. The lists
already there are merged into the indexes here (``gin_clean_pending_list``). ALTER INDEX ... SET
takes a lock that lets reads and writes go on.
"""

from django.db import migrations

INDEXES = (
    "media_metadata_gin",
    "media_identifiers_gin",
    "media_identifier_values_trgm",
    "media_pid_trgm",
    "media_tag_list_gin",
)


def _existing(schema_editor) -> list[str]:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'i' AND relname = ANY(%s)", [list(INDEXES)]
        )
        return sorted(row[0] for row in cursor.fetchall())


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in _existing(schema_editor):
        schema_editor.execute(f"ALTER INDEX {name} SET (fastupdate = off)")
        schema_editor.execute(f"SELECT gin_clean_pending_list('{name}'::regclass)")


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in _existing(schema_editor):
        schema_editor.execute(f"ALTER INDEX {name} SET (fastupdate = on)")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("media", "0012_tag_list_index")]

    operations = [migrations.RunPython(forward, backward, atomic=False)]
