"""The tag rows of media keep one index by tag: (tag_id, content_object_id).

Migration 0003 made that index on PostgreSQL beside the foreign key's own index on tag_id alone;
with both, a prepared search of one tag (the tag named inside the statement, so of unknown
frequency) could read a tag's rows through the tag_id index, unordered, and sort them all instead
of reading the page's rows in order (tests/media/test_search_plans.py). The (tag, media) index
serves every lookup by tag, so the tag_id index goes; SQLite, which had only that one, gets the
(tag, media) index first. On PostgreSQL both steps run CONCURRENTLY (no write lock on a large
table), so the migration is not atomic; running it again is safe.
"""

from django.db import migrations, models

COMPOSITE = "media_tagged_tag_object"
TABLE = "media_taggedmedia"


def _tag_only_indexes(schema_editor) -> list[str]:
    """Names of the indexes on media_taggedmedia whose only column is tag_id."""
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, TABLE)
    return sorted(
        name
        for name, info in found.items()
        if info["index"] and not info["unique"] and not info["primary_key"] and info["columns"] == ["tag_id"]
    )


def forward(apps, schema_editor):
    concurrently = "CONCURRENTLY " if schema_editor.connection.vendor == "postgresql" else ""
    schema_editor.execute(
        f"CREATE INDEX {concurrently}IF NOT EXISTS {COMPOSITE} ON {TABLE} (tag_id, content_object_id)"
    )
    for name in _tag_only_indexes(schema_editor):
        schema_editor.execute(f"DROP INDEX {concurrently}IF EXISTS {schema_editor.quote_name(name)}")


def backward(apps, schema_editor):
    postgresql = schema_editor.connection.vendor == "postgresql"
    concurrently = "CONCURRENTLY " if postgresql else ""
    schema_editor.execute(f"CREATE INDEX {concurrently}IF NOT EXISTS media_taggedmedia_tag_id ON {TABLE} (tag_id)")
    if not postgresql:  # on PostgreSQL the (tag, media) index is migration 0003's
        schema_editor.execute(f"DROP INDEX IF EXISTS {COMPOSITE}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("media", "0010_search_index_identifier"), ("taggit", "0006_rename_taggeditem_content_type_object_id_taggit_tagg_content_8fc721_idx")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="taggedmedia",
                    name="tag",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=models.deletion.CASCADE,
                        related_name="%(app_label)s_%(class)s_items",
                        to="taggit.tag",
                    ),
                ),
                migrations.AddIndex(
                    model_name="taggedmedia",
                    index=models.Index(fields=["tag", "content_object"], name=COMPOSITE),
                ),
            ],
            database_operations=[migrations.RunPython(forward, backward, atomic=False)],
        )
    ]
