"""Usage of the media that exist (they have no owner: owners are recorded from now on), and the
quotas' permissions for the group admins (as ``mediastore.permissions.ROLES`` says)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations
from django.db.models import Count, Sum

# A frozen copy of what mediastore.permissions.ROLES gives for quotas at the time of this migration.
GRANTS = {"admins": ["view_quota", "add_quota", "change_quota", "delete_quota"]}


def fill_usage(apps, schema_editor):
    Media = apps.get_model("media", "Media")
    Usage = apps.get_model("quotas", "Usage")
    rows = Media.objects.values("store_config_id").annotate(total=Sum("size"), count=Count("pk"))
    Usage.objects.bulk_create(
        [Usage(store_id=row["store_config_id"], owner="", bytes=row["total"] or 0, media=row["count"]) for row in rows]
    )


def grant(apps, schema_editor):
    # Permissions are normally created after all migrations ran; make sure they exist now.
    app_config = apps.get_app_config("quotas")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GRANTS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for codename in codenames:
            group.permissions.add(Permission.objects.get(content_type__app_label="quotas", codename=codename))


def forget_usage(apps, schema_editor):
    apps.get_model("quotas", "Usage").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("quotas", "0001_quotas"),
        ("media", "0008_owner"),
        ("mediastore", "0002_roles"),
    ]

    operations = [
        migrations.RunPython(fill_usage, forget_usage),
        migrations.RunPython(grant, migrations.RunPython.noop),
    ]
