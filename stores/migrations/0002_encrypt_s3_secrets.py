"""S3 secret keys are stored encrypted (mediastore.crypto); the reverse stores them in clear again.

Rows already encrypted (prefix ``fernet:``) are left alone, so running it over a partly encrypted
table is safe.
"""

from django.db import migrations, models

from mediastore import crypto


def encrypt_secrets(apps, schema_editor):
    S3Config = apps.get_model("stores", "S3Config")
    for pk, stored in S3Config.objects.values_list("pk", "secret_key_encrypted"):
        if not crypto.is_encrypted(stored):
            S3Config.objects.filter(pk=pk).update(secret_key_encrypted=crypto.encrypt(stored))


def decrypt_secrets(apps, schema_editor):
    S3Config = apps.get_model("stores", "S3Config")
    for pk, stored in S3Config.objects.values_list("pk", "secret_key_encrypted"):
        if crypto.is_encrypted(stored):
            S3Config.objects.filter(pk=pk).update(secret_key_encrypted=crypto.decrypt(stored))


class Migration(migrations.Migration):

    dependencies = [
        ("stores", "0001_initial"),
    ]

    operations = [
        migrations.RenameField(model_name="s3config", old_name="secret_key", new_name="secret_key_encrypted"),
        migrations.AlterField(
            model_name="s3config", name="secret_key_encrypted", field=models.TextField(editable=False)
        ),
        migrations.RunPython(encrypt_secrets, decrypt_secrets),
    ]
