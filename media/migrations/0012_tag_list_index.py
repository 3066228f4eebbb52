"""A GIN index on ``tag_list`` (jsonb_path_ops), on PostgreSQL only; SQLite gets nothing here.

A search combining tags with another indexed filter, or naming several tags, writes its tags as
containment in the media's own tag list (``tag_list @> '["a", "b"]'``, media/search/filters.py),
which this index serves, so tags and metadata, identifiers or pid meet in one bitmap instead of
joining taggit's rows and then reading every media row of the join. ``tag_list`` can be trusted
for that since the tag admin is read-only (media/admin.py): every write of tags goes through
media/tags.py, which keeps taggit's rows equal to it.
"""

from django.db import migrations

FORWARD = "CREATE INDEX CONCURRENTLY IF NOT EXISTS media_tag_list_gin ON media_media USING gin (tag_list jsonb_path_ops)"
BACKWARD = "DROP INDEX CONCURRENTLY IF EXISTS media_tag_list_gin"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    # Not atomic and built CONCURRENTLY, as 0003: writes go on while the index is built (a failed
    # build leaves an INVALID index; drop it by hand, then migrate again).
    atomic = False

    dependencies = [("media", "0011_tag_index")]

    operations = [migrations.RunPython(forward, backward, atomic=False)]
