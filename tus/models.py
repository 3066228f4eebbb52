"""The state of resumable (tus 1.0) uploads, kept in the database so that any worker of any host
can take an upload's next PATCH."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from stores.models import StoreConfig


class TusUpload(models.Model):
    """One resumable upload: what it will create (or replace) and how far its bytes have come.

    The bytes received so far are ``offset``: the first ``flushed`` of them are parts of the S3
    multipart upload ``multipart_id`` (``parts``: ``[number, etag]`` pairs), the rest are in the
    staging file named by ``id`` under ``MEDIASTORE_TUS_DIR``. ``sha256_state`` is the running
    SHA-256 of all ``offset`` bytes (``tus.digest``) for stores whose bytes are not read back.
    ``lease_until``/``lease_token``: the PATCH that holds the upload (another PATCH meanwhile is
    409), taken without waiting on any database lock."""

    id = models.CharField(primary_key=True, max_length=32)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    expires = models.DateTimeField(db_index=True)
    length = models.BigIntegerField(null=True, blank=True)  # None: Upload-Defer-Length
    offset = models.BigIntegerField(default=0)
    metadata_header = models.TextField(blank=True)  # Upload-Metadata as the client sent it
    mediadata = models.JSONField()  # POST /api/upload's mediadata, validated, with its pid
    content_type = models.CharField(max_length=255, blank=True)
    replace = models.BooleanField(default=False)
    if_match = models.CharField(max_length=200, blank=True)  # the `etag` entry of a replace
    store_config = models.ForeignKey(StoreConfig, on_delete=models.PROTECT, related_name="+")
    store_key = models.CharField(max_length=1024, blank=True)  # the multipart upload's object
    multipart_id = models.CharField(max_length=1024, blank=True)
    part_size = models.BigIntegerField(default=0)
    parts = models.JSONField(default=list)
    flushed = models.BigIntegerField(default=0)
    sha256_state = models.BinaryField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=32, blank=True)
    media_pid = models.CharField(max_length=1024, blank=True)  # set once the media has its bytes

    class Meta:
        verbose_name = "resumable upload"

    def __str__(self) -> str:
        return f"tus upload {self.id} ({self.offset}/{self.length})"

    @property
    def done(self) -> bool:
        return bool(self.media_pid)
