"""The groups readers, writers and admins, with Django model permissions.

On the earlier server every account could do everything: existing active users who are not
superusers go into ``admins`` so that upgrading takes nothing away from them. New accounts start
in no group.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

# A frozen copy of mediastore.permissions.ROLES at the time of this migration.
READ = [
    "media.view_media",
    "stores.view_storeconfig",
    "stores.view_s3config",
    "identifiers.view_identifiertype",
]
WRITE = READ + ["media.add_media", "media.change_media", "media.delete_media", "stores.add_storeconfig"]
ADMIN = WRITE + [
    "stores.change_storeconfig",
    "stores.delete_storeconfig",
    "stores.add_s3config",
    "stores.change_s3config",
    "stores.delete_s3config",
    "identifiers.add_identifiertype",
    "identifiers.change_identifiertype",
    "identifiers.delete_identifiertype",
]
ROLES = {"readers": READ, "writers": WRITE, "admins": ADMIN}


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations ran; make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    User = apps.get_model("auth", "User")
    for name, perms in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        for perm in perms:
            app_label, codename = perm.split(".")
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    admins = Group.objects.get(name="admins")
    for user in User.objects.filter(is_active=True, is_superuser=False):
        user.groups.add(admins)


class Migration(migrations.Migration):
    dependencies = [
        ("mediastore", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("media", "0003_search_indexes"),
        ("stores", "0001_initial"),
        ("identifiers", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
