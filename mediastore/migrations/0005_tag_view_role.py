"""Every role may see the tag list in the admin (taggit's tags, read-only there, with their media
counts), as ``mediastore.permissions.ROLES`` says: readers, writers and admins all read media."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

# A frozen copy of what mediastore.permissions.ROLES gives for tags at the time of this migration.
GRANTS = {"readers": ["view_tag"], "writers": ["view_tag"], "admins": ["view_tag"]}


def grant(apps, schema_editor):
    # Permissions are normally created after all migrations ran; make sure they exist now.
    app_config = apps.get_app_config("taggit")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GRANTS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for codename in codenames:
            group.permissions.add(Permission.objects.get(content_type__app_label="taggit", codename=codename))


class Migration(migrations.Migration):
    dependencies = [
        ("mediastore", "0004_token_name_scopes"),
        ("taggit", "0006_rename_taggeditem_content_type_object_id_taggit_tagg_content_8fc721_idx"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
