"""READY media whose content_type is empty get ``application/octet-stream``.

Bytes that came by a presigned upload, an import from the earlier server or an in-place ingest
without a declared type were recorded with ``""``, while the same bytes uploaded as base64 got
``application/octet-stream``; ``GET .../content`` already served ``""`` as that type, so only the
JSON field changes. A bare UPDATE, without history rows or events: it records no change a client
made, and a history row per media would cost as much as the table.
"""

from django.db import migrations

DEFAULT_CONTENT_TYPE = "application/octet-stream"  # content.services.DEFAULT_CONTENT_TYPE, frozen here


def fill_default_content_type(apps, schema_editor):
    Media = apps.get_model("media", "Media")
    Media.objects.filter(store_status="READY", content_type="").update(content_type=DEFAULT_CONTENT_TYPE)


class Migration(migrations.Migration):
    dependencies = [
        ("media", "0006_search_index"),
    ]

    operations = [migrations.RunPython(fill_default_content_type, migrations.RunPython.noop)]
