"""BucketStore: objects in an S3 bucket (AWS or any S3-compatible endpoint), optionally under a prefix.

boto3 clients are created lazily, once per endpoint and credentials in this process (boto3 clients
are thread-safe; sessions are not, so each client gets its own session). Every botocore failure is
translated here: a missing key becomes ObjectNotFound, anything else a StorageError whose message
names the endpoint (without credentials) and never repeats boto's own text. Buckets are never
created here.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from typing import Any, BinaryIO
from urllib.parse import quote, urlsplit, urlunsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.client import BaseClient
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, NoCredentialsError
from botocore.exceptions import ConnectionError as BotoConnectionError
from django.conf import settings

from mediastore.errors import RuleViolation, StorageError
from stores.backends.base import (
    DEFAULT_CHUNK_SIZE,
    Backend,
    ChunkIterator,
    MultipartUpload,
    ObjectNotFound,
    S3Params,
    StoredObject,
)
from stores.endpoints import without_userinfo

# Multipart uploads: parts of 8 MiB, at most 2 in memory and 2 in flight per upload (about 16 MiB,
# which keeps a streaming upload's memory under 64 MB; bench/transfer.py measures it). S3 allows
# 10 000 parts: with a size hint larger objects get larger parts; without one, up to about 78 GiB.
PART_SIZE = 8 << 20
MAX_PARTS = 10_000
MAX_PARTS_IN_MEMORY = 2
# Copies inside S3 (no bytes through this server): one CopyObject up to this size, parts of it above
# (S3 copies at most 5 GiB in one request; 10 000 parts of 256 MiB reach 2.4 TiB).
COPY_PART_SIZE = 256 << 20


def part_size_for(size: int | None) -> int:
    """The multipart part size for an object of ``size`` bytes (unknown: the default)."""
    if not size:
        return PART_SIZE
    needed = -(-size // MAX_PARTS)  # ceiling division
    return max(PART_SIZE, -(-needed // (1 << 20)) << 20)  # whole MiB


_MISSING_KEY_CODES = frozenset({"NoSuchKey", "NotFound", "404"})
_CREDENTIAL_CODES = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "403"}
)
# S3's refusals of a multipart completion that are the client's mistake, and what they mean.
_PART_CODES = {
    "InvalidPart": "a part is missing or its ETag is not the one S3 gave (InvalidPart)",
    "InvalidPartOrder": "the parts must be listed in ascending part_number order (InvalidPartOrder)",
    "EntityTooSmall": "every part but the last must have at least 5 MiB (EntityTooSmall)",
    "NoSuchUpload": "the multipart upload is gone: aborted, completed or expired (NoSuchUpload)",
    "MalformedXML": "the list of parts is empty or malformed (MalformedXML)",
}
_PRINTABLE_CODE = re.compile(r"[A-Za-z0-9.]{1,64}")
S3_BUCKET_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,254}")


_CLIENTS: dict[tuple[S3Params, tuple[tuple[str, str], ...]], BaseClient] = {}
_CLIENTS_LOCK = threading.Lock()


def s3_client(s3: S3Params) -> BaseClient:
    """The process-wide client for these parameters and the current proxy settings.

    Without keys in ``s3`` the client takes boto3's standard credential chain (``AWS_*``
    environment, shared profiles, instance or container roles; refreshed by boto3 as they expire).
    """
    proxies = dict(getattr(settings, "MEDIASTORE_PROXIES", None) or {})
    cache_key = (s3, tuple(sorted(proxies.items())))
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(cache_key)
        if client is None:
            config = Config(
                proxies=proxies or None,
                signature_version="s3v4",
                s3={"addressing_style": s3.addressing_style},
                retries={"max_attempts": 2},
                connect_timeout=5,
                read_timeout=60,
                # S3-compatible servers (MinIO, Ceph, ...) often reject the checksum trailers that
                # recent botocore adds by default; send and check checksums only where S3 needs them.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            )
            keys = {}
            if s3.access_key:
                keys = {"aws_access_key_id": s3.access_key, "aws_secret_access_key": s3.secret_key}
            client = boto3.session.Session().client(
                "s3", endpoint_url=s3.url, region_name=s3.region, config=config, **keys
            )
            _CLIENTS[cache_key] = client
        return client


def presigned_get_url(client: BaseClient, s3: S3Params, bucket: str, key: str, expires: int) -> str:
    """The URL ``client.generate_presigned_url("get_object", ...)`` gives (path style, SigV4 in the
    query string), signed by botocore's own query signer but without what that call does first on
    every call: resolving the endpoint rules and serialising a request, three quarters of its
    0.5 ms (docs/performance.md). Tests compare the two URLs for awkward keys and endpoints."""
    endpoint = client.meta.endpoint_url.rstrip("/")
    # Not a plain base URL, another addressing style, or keys from the credential chain: botocore.
    if "?" in endpoint or "#" in endpoint or s3.addressing_style != "path" or not s3.access_key:
        params = {"Bucket": bucket, "Key": key}
        return client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires)
    request = AWSRequest(method="GET", url=f"{endpoint}/{bucket}/{quote(key, safe='/~')}")
    signer = S3SigV4QueryAuth(
        Credentials(s3.access_key, s3.secret_key), "s3", client.meta.region_name, expires=expires
    )
    signer.add_auth(request)
    return request.url


def display_url(url: str) -> str:
    """``url`` without user info, query or fragment: safe to show in an error message."""
    try:
        parts = urlsplit(without_userinfo(url))
    except ValueError:  # not a URL at all; still nothing secret in it
        return without_userinfo(url).partition("?")[0]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


class _FullReader:
    """What boto3 reads from a client's stream: full reads, counted, no ``seek``.

    s3transfer takes a read shorter than asked for as the end of the stream, but a network
    stream may return less at any time; so each read here loops until it has ``size`` bytes or
    the stream says ``b""``. Hiding ``seek`` makes s3transfer read the stream once, part by part.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._ended = False
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        parts: list[bytes] = []
        wanted = size if size is not None and size >= 0 else None
        got = 0
        while not self._ended and (wanted is None or got < wanted):
            part = self._stream.read(DEFAULT_CHUNK_SIZE if wanted is None else wanted - got)
            if not part:
                self._ended = True
                break
            parts.append(part)
            got += len(part)
        self.count += got
        return b"".join(parts)


class BucketStore(Backend):
    """Objects in S3 bucket ``name``, under ``prefix/`` when the bucket is written ``name/prefix``."""

    type_name = "BucketStore"
    uses_s3 = True
    supports_presign = True
    supports_multipart = True

    @classmethod
    def normalize_bucket(cls, bucket: str) -> str:
        """``name`` or ``name/prefix``, without surrounding ``/``; the name as S3 allows it."""
        bucket = bucket.strip("/")
        name = bucket.split("/", 1)[0]
        if not S3_BUCKET_RE.fullmatch(name):
            raise RuleViolation(f"bad S3 bucket name {name!r}")
        return bucket

    @classmethod
    def from_config(cls, bucket: str, s3: S3Params | None) -> Backend:
        assert s3 is not None  # the registry checks it (uses_s3)
        return cls(s3, bucket)

    def __init__(self, s3: S3Params, bucket: str) -> None:
        name, _, prefix = bucket.lstrip("/").partition("/")
        if not name:
            raise RuleViolation(f"BucketStore bucket must start with an S3 bucket name, got {bucket!r}")
        self.s3 = s3
        self.bucket = name
        self.prefix = prefix.strip("/")
        self.url = display_url(s3.url)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _client(self) -> BaseClient:
        try:
            return s3_client(self.s3)
        except ValueError:  # botocore refuses a malformed endpoint URL
            raise StorageError(f"S3 endpoint {self.url} is not a valid URL") from None
        except BotoCoreError:  # e.g. a broken AWS configuration in the server's environment
            raise StorageError(f"could not set up an S3 client for endpoint {self.url}") from None

    # -- error translation --------------------------------------------------------------------

    def _missing_bucket(self) -> StorageError:
        return StorageError(f"S3 bucket '{self.bucket}' does not exist at {self.url}")

    def _translate(self, err: ClientError | BotoCoreError, action: str, key: str) -> Exception:
        if isinstance(err, NoCredentialsError):
            return StorageError(
                f"S3 endpoint {self.url}: no credentials (the S3 configuration has no keys and the "
                "server's environment, profiles and instance role provide none)"
            )
        if isinstance(err, BotoConnectionError):
            cause = str(getattr(err, "kwargs", {}).get("error", ""))
            refused = " (connection refused)" if "Connection refused" in cause else ""
            return StorageError(f"S3 endpoint {self.url} is unreachable{refused}")
        if isinstance(err, HTTPClientError):
            return StorageError(
                f"S3 endpoint {self.url} dropped the connection while trying to {action} object '{key}'"
            )
        if isinstance(err, BotoCoreError):
            return StorageError(f"S3 endpoint {self.url} could not {action} object '{key}'")
        code = _error_code(err)
        if code in _MISSING_KEY_CODES:
            return ObjectNotFound(key)
        if code == "NoSuchBucket":
            return self._missing_bucket()
        if code in _CREDENTIAL_CODES:
            named = f" ({code})" if code != "403" else ""
            return StorageError(f"S3 endpoint {self.url} refused the credentials of this store{named}")
        shown = f" ({code})" if _PRINTABLE_CODE.fullmatch(code) else ""
        return StorageError(f"S3 endpoint {self.url} could not {action} object '{key}'{shown}")

    @contextlib.contextmanager
    def _s3_errors(self, action: str, key: str) -> Iterator[None]:
        try:
            yield
        except (ClientError, BotoCoreError) as err:
            raise self._translate(err, action, key) from None

    def _head(self, key: str) -> dict[str, Any]:
        """HEAD of the object; a 404 is told apart from a missing bucket (HEAD has no error body)."""
        client = self._client()
        try:
            with self._s3_errors("read", key):
                return client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ObjectNotFound:
            self._check_bucket(client, key)
            raise

    def _check_bucket(self, client: BaseClient, key: str) -> None:
        """Raise StorageError if the bucket is missing (HEAD answers a bare 404 for that too)."""
        try:
            client.head_bucket(Bucket=self.bucket)
        except ClientError as err:
            if _error_code(err) in _MISSING_KEY_CODES:
                raise self._missing_bucket() from None
            raise self._translate(err, "read", key) from None
        except BotoCoreError as err:
            raise self._translate(err, "read", key) from None

    # -- the interface ------------------------------------------------------------------------

    def list_objects(self) -> Iterator[StoredObject]:
        client = self._client()
        prefix = f"{self.prefix}/" if self.prefix else ""
        with self._s3_errors("list", "*"):
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            for page in pages:
                for item in page.get("Contents", []):
                    yield StoredObject(
                        item["Key"][len(prefix) :], int(item["Size"]), item["LastModified"].timestamp()
                    )

    def _put(self, key: str, data: bytes) -> None:
        full_key = self._key(key)
        with self._s3_errors("write", key):
            self._client().put_object(Bucket=self.bucket, Key=full_key, Body=bytes(data))

    def _put_stream(self, key: str, stream: BinaryIO, size: int | None) -> int:
        """Multipart upload with bounded memory; S3 shows the object only once it is complete, and
        boto3 aborts the multipart upload when anything fails (the stream's own errors propagate)."""
        full_key = self._key(key)
        part = part_size_for(size)
        config = TransferConfig(
            multipart_threshold=part, multipart_chunksize=part, max_concurrency=MAX_PARTS_IN_MEMORY
        )
        config.max_in_memory_upload_chunks = MAX_PARTS_IN_MEMORY
        reader = _FullReader(stream)
        client = self._client()
        with self._s3_errors("write", key):
            client.upload_fileobj(reader, self.bucket, full_key, Config=config)
        return reader.count

    def _multipart_start(self, key: str) -> str:
        with self._s3_errors("write", key):
            answer = self._client().create_multipart_upload(Bucket=self.bucket, Key=self._key(key))
        return answer["UploadId"]

    def _multipart_part(self, key: str, upload_id: str, number: int, stream: BinaryIO, size: int) -> str:
        # botocore reads the body in pieces (a file object is not read into memory at once).
        with self._s3_errors("write", key):
            answer = self._client().upload_part(
                Bucket=self.bucket,
                Key=self._key(key),
                UploadId=upload_id,
                PartNumber=number,
                Body=stream,
                ContentLength=size,
            )
        return answer["ETag"]

    def _multipart_complete(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        """Parts S3 refuses (an unknown part or ETag, parts out of order, a part below 5 MiB but the
        last, an upload id that is gone) are the client's mistake: RuleViolation naming S3's code."""
        listed = [{"PartNumber": number, "ETag": etag} for number, etag in parts]
        try:
            self._client().complete_multipart_upload(
                Bucket=self.bucket, Key=self._key(key), UploadId=upload_id, MultipartUpload={"Parts": listed}
            )
        except ClientError as err:
            code = _error_code(err)
            if code in _PART_CODES:
                raise RuleViolation(
                    f"S3 refused the parts of the multipart upload of '{key}': {_PART_CODES[code]}"
                ) from None
            raise self._translate(err, "write", key) from None
        except BotoCoreError as err:
            raise self._translate(err, "write", key) from None

    def _multipart_part_url(self, key: str, upload_id: str, number: int, expires: int, size: int) -> str:
        params = {
            "Bucket": self.bucket,
            "Key": self._key(key),
            "UploadId": upload_id,
            "PartNumber": number,
            "ContentLength": size,
        }
        with self._s3_errors("presign", key):
            return self._client().generate_presigned_url("upload_part", Params=params, ExpiresIn=expires)

    def _multipart_list(self, key: str | None) -> list[MultipartUpload]:
        prefix = f"{self.prefix}/" if self.prefix else ""
        wanted = self._key(key) if key is not None else prefix
        found = []
        with self._s3_errors("list", key or "*"):
            pages = (
                self._client()
                .get_paginator("list_multipart_uploads")
                .paginate(Bucket=self.bucket, Prefix=wanted)
            )
            for page in pages:
                for item in page.get("Uploads", []):
                    if key is not None and item["Key"] != wanted:
                        continue
                    found.append(
                        MultipartUpload(
                            item["Key"][len(prefix) :], item["UploadId"], item["Initiated"].timestamp()
                        )
                    )
        return found

    def _multipart_abort(self, key: str, upload_id: str) -> None:
        client = self._client()
        try:
            client.abort_multipart_upload(Bucket=self.bucket, Key=self._key(key), UploadId=upload_id)
        except ClientError as err:
            if _error_code(err) != "NoSuchUpload":  # aborted or completed before: nothing to drop
                raise self._translate(err, "delete", key) from None
        except BotoCoreError as err:
            raise self._translate(err, "delete", key) from None

    def _get(self, key: str) -> bytes:
        full_key = self._key(key)
        with self._s3_errors("read", key):
            body = self._client().get_object(Bucket=self.bucket, Key=full_key)["Body"]
            try:
                return body.read()
            finally:
                body.close()

    def _iter_range(self, key: str, start: int, length: int | None, chunk_size: int) -> Iterator[bytes]:
        """One GET with a ``Range`` header; the response body is streamed chunk by chunk."""
        full_key = self._key(key)
        if length == 0:
            self._head(key)
            return ChunkIterator(iter(()), lambda: None)
        params = {"Bucket": self.bucket, "Key": full_key}
        if start or length is not None:
            last = "" if length is None else str(start + length - 1)
            params["Range"] = f"bytes={start}-{last}"
        client = self._client()
        try:
            response = client.get_object(**params)
        except ClientError as err:
            if _error_code(err) == "InvalidRange":  # the object exists; the range starts past its end
                return ChunkIterator(iter(()), lambda: None)
            raise self._translate(err, "read", key) from None
        except BotoCoreError as err:
            raise self._translate(err, "read", key) from None
        body = response["Body"]
        pieces = body.iter_chunks(chunk_size)

        def chunks() -> Iterator[bytes]:
            while True:
                with self._s3_errors("read", key):
                    chunk = next(pieces, b"")
                if not chunk:
                    return
                yield chunk

        return ChunkIterator(chunks(), body.close)

    def _copy(self, source: str, target: str) -> None:
        """A copy inside S3 (CopyObject; boto3 copies large objects part by part with
        UploadPartCopy): no bytes pass through this server. The source's Content-Type goes along."""
        self._head(source)  # ObjectNotFound (or the missing bucket) told apart before copying
        config = TransferConfig(multipart_threshold=COPY_PART_SIZE, multipart_chunksize=COPY_PART_SIZE)
        copy_source = {"Bucket": self.bucket, "Key": self._key(source)}
        with self._s3_errors("copy", source):
            self._client().copy(copy_source, self.bucket, self._key(target), Config=config)

    def _size(self, key: str) -> int:
        return int(self._head(key)["ContentLength"])

    def _etag(self, key: str) -> str | None:
        etag = self._head(key).get("ETag")
        return etag.strip('"') if etag else None

    def _delete(self, key: str) -> None:
        full_key = self._key(key)
        with self._s3_errors("delete", key):
            self._client().delete_object(Bucket=self.bucket, Key=full_key)

    def _presigned_put(self, key: str, expires: int, content_type: str | None, size: int | None) -> str:
        """Signing needs no request, so the bucket is checked first (StorageError when missing):
        a URL into a missing bucket could never work. ``content_type`` and ``size`` are signed as
        headers: S3 refuses a PUT with another Content-Type or Content-Length."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if content_type:
            params["ContentType"] = content_type
        if size is not None:
            params["ContentLength"] = size
        client = self._client()
        self._check_bucket(client, key)
        with self._s3_errors("presign", key):
            return client.generate_presigned_url("put_object", Params=params, ExpiresIn=expires)

    def _presigned_get(self, key: str, expires: int) -> str:
        with self._s3_errors("presign", key):
            return presigned_get_url(self._client(), self.s3, self.bucket, self._key(key), expires)
