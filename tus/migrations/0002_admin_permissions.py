"""The group admins may see resumable uploads in the admin and terminate them (as
``mediastore.permissions.ROLES`` says)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

# A frozen copy of what mediastore.permissions.ROLES gives for tus uploads at the time of this migration.
GRANTS = {"admins": ["view_tusupload", "delete_tusupload"]}


def grant(apps, schema_editor):
    # Permissions are normally created after all migrations ran; make sure they exist now.
    app_config = apps.get_app_config("tus")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GRANTS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for codename in codenames:
            group.permissions.add(Permission.objects.get(content_type__app_label="tus", codename=codename))


class Migration(migrations.Migration):
    dependencies = [
        ("tus", "0001_tus_upload"),
        ("mediastore", "0002_roles"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
