"""The transactional outbox of media events and its counter row (see media/outbox.py)."""

import django.core.serializers.json
from django.db import migrations, models


def counter_row(apps, schema_editor):
    apps.get_model("media", "EventCounter").objects.using(schema_editor.connection.alias).create(pk=1, value=0)


class Migration(migrations.Migration):

    dependencies = [
        ('media', '0003_search_indexes'),
    ]

    operations = [
        migrations.CreateModel(
            name='EventCounter',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('value', models.BigIntegerField(default=0)),
            ],
        ),
        migrations.CreateModel(
            name='MediaEvent',
            fields=[
                ('seq', models.BigIntegerField(primary_key=True, serialize=False)),
                ('type', models.CharField(choices=[('media.created', 'Created'), ('media.updated', 'Updated'), ('media.tags_changed', 'Tags Changed'), ('media.bytes_stored', 'Bytes Stored'), ('media.moved', 'Moved'), ('media.reverted', 'Reverted'), ('media.deleted', 'Deleted')], max_length=32)),
                ('pid', models.CharField(max_length=512)),
                ('media_pk', models.BigIntegerField()),
                ('mark', models.BigIntegerField()),
                ('version', models.PositiveIntegerField()),
                ('user', models.CharField(blank=True, default='', max_length=150)),
                ('time', models.DateTimeField()),
                ('changed', models.JSONField(blank=True, default=list)),
                ('media', models.JSONField(encoder=django.core.serializers.json.DjangoJSONEncoder)),
                ('published', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'ordering': ['seq'],
                'indexes': [models.Index(fields=['time'], name='media_event_time')],
            },
        ),
        migrations.RunPython(counter_row, migrations.RunPython.noop),
    ]
