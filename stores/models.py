"""Where bytes live: S3 endpoints with credentials, and store configurations shared by media."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models
from django.dispatch import receiver
from simple_history.models import HistoricalRecords
from simple_history.signals import pre_create_historical_record

from mediastore import crypto
from mediastore.limits import MAX_BUCKET_LENGTH
from stores.backends import S3Params, build_backend, type_choices
from stores.endpoints import without_userinfo

if TYPE_CHECKING:
    from stores.backends.base import Backend


DEFAULT_REGION = "us-east-1"


class AddressingStyle(models.TextChoices):
    """How requests name the bucket: ``path`` (``https://host/bucket/key``, what S3-compatible
    servers such as MinIO or Ceph expect), ``virtual`` (``https://bucket.host/key``, what AWS
    prefers) or ``auto`` (botocore chooses: virtual where the bucket name allows it)."""

    AUTO = "auto"
    PATH = "path"
    VIRTUAL = "virtual"


class S3Config(models.Model):
    """An S3 endpoint and its credentials. The secret key is write-only: never shown or returned.

    The secret is stored encrypted (``mediastore.crypto``) in ``secret_key_encrypted``; the
    ``secret_key`` property reads and writes it in clear, for signing requests only. The audit
    history records url and access key, never the secret.
    """

    url = models.CharField(max_length=512, unique=True)
    # Both keys empty: boto3's standard credential chain (environment, profiles, instance roles).
    access_key = models.CharField(max_length=256, blank=True)
    secret_key_encrypted = models.TextField(editable=False, blank=True)
    # db_default too: rows written by raw SQL (the importer, older tools) get the same values.
    region = models.CharField(max_length=64, default=DEFAULT_REGION, db_default=DEFAULT_REGION)
    addressing_style = models.CharField(
        max_length=16,
        choices=AddressingStyle.choices,
        default=AddressingStyle.PATH,
        db_default=AddressingStyle.PATH,
    )
    history = HistoricalRecords(excluded_fields=["secret_key_encrypted"])

    class Meta:
        verbose_name = "S3 configuration"
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.public_url

    @property
    def public_url(self) -> str:
        """The url as shown by the API and the admin: without user info (rows from before such URLs
        were refused may have it)."""
        return without_userinfo(self.url)

    @property
    def secret_key(self) -> str:
        """The clear secret key (raises crypto.UnreadableSecret if no configured key decrypts it)."""
        return crypto.decrypt(self.secret_key_encrypted) if self.secret_key_encrypted else ""

    @secret_key.setter
    def secret_key(self, value: str) -> None:
        self.secret_key_encrypted = crypto.encrypt(value) if value else ""

    def params(self) -> S3Params:
        """What a BucketStore needs to reach this endpoint (the secret in clear)."""
        return S3Params(
            url=self.url,
            access_key=self.access_key,
            secret_key=self.secret_key,
            region=self.region,
            addressing_style=self.addressing_style,
        )


@receiver(pre_create_historical_record)
def _history_url_without_userinfo(sender, instance, history_instance, **kwargs) -> None:
    """The history of an older S3Config whose url has user info records (and so shows) it without."""
    if isinstance(instance, S3Config):
        history_instance.url = without_userinfo(history_instance.url)


# The store types, derived from the backend registry (``stores.backends.BACKENDS``): values are
# what the database holds and the API accepts, e.g. StoreType.BUCKET == "BucketStore".
StoreType = models.TextChoices(
    "StoreType", [(value.removesuffix("Store").upper(), (value, label)) for value, label in type_choices()]
)


class StoreConfig(models.Model):
    """A place for bytes: a store type and its ``bucket`` (S3 bucket[/prefix], path or namespace)."""

    type = models.CharField(max_length=32, choices=StoreType.choices)
    bucket = models.CharField(max_length=MAX_BUCKET_LENGTH)
    s3cfg = models.ForeignKey(
        S3Config, null=True, blank=True, on_delete=models.PROTECT, related_name="stores"
    )
    default_ttl = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Seconds a new media of this store lives (its expires_at) unless it gives its own; "
        "empty: media do not expire.",
    )
    history = HistoricalRecords()

    class Meta:
        verbose_name = "store configuration"
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["type", "bucket", "s3cfg"],
                name="store_unique_with_s3",
                condition=models.Q(s3cfg__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["type", "bucket"], name="store_unique_local", condition=models.Q(s3cfg__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type}:{self.bucket}"

    @property
    def s3_url(self) -> str:
        """The S3 endpoint as shown (without user info); empty for other types."""
        return self.s3cfg.public_url if self.s3cfg_id else ""

    def backend(self) -> Backend:
        """The storage backend for this configuration (cheap: touches no disk or network)."""
        return build_backend(self.type, self.bucket, self.s3cfg.params() if self.s3cfg_id else None)
