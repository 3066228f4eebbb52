"""Previews of a media: a thumbnail of an image, the first lines of a text, CSV or JSON file, or, for
everything else, "no preview" with its type and size. The admin's media list and page and
``GET /api/media/{pid}/preview`` all use ``preview()``.

Previews are derived data, kept under ``MEDIASTORE_PREVIEW_DIR`` (never in the media's own store) in a
file named by a hash of the media's pid, its bytes' checksum (or ETag) and size, and the thumbnail
size: new bytes give a new name, so a replaced media never shows an old preview, and a preview is
made once, then read from its file. A media that gets no preview is remembered the same way (a
``.none`` file holding the reason), so a hostile file costs its decode at most once per content.

Bounds: a media over ``MEDIASTORE_PREVIEW_MAX_BYTES`` is not read at all; an image is decoded in a
child process (``content/preview_decode.py``) that refuses more than ``MEDIASTORE_PREVIEW_MAX_PIXELS``
from the image's header, before decoding a pixel, caps its own memory and CPU, and is killed after
``MEDIASTORE_PREVIEW_SECONDS``. A child process and not a thread, because a thread stuck in a C
decoder cannot be stopped, and a crash or an exhausted memory limit there would take the server's
worker down with it; a process is killed whole, and the worker only waits on it with a timeout.
At most ``DECODERS`` decodes run at once per server process; a request that finds them all busy
gets "no preview" for now (not remembered).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from content.reads import missing_bytes
from media.models import Media, StoreStatus
from mediastore import parser
from mediastore.errors import RuleViolation
from mediastore.parser import has_bad_text
from stores.backends import ObjectNotFound

MIN_SIZE, MAX_SIZE, DEFAULT_SIZE = 64, 1024, 256
# Text previews: at most this many bytes read, lines shown and characters per line.
TEXT_BYTES, TEXT_LINES, LINE_CHARS = 64 * 1024, 40, 400
IMAGE_FORMAT, IMAGE_MEDIA_TYPE, IMAGE_SUFFIX = "WEBP", "image/webp", ".webp"
DECODERS = threading.BoundedSemaphore(2)
DECODER = Path(__file__).with_name("preview_decode.py")
REFUSED = 3  # preview_decode's exit status for an image it will not decode

IMAGE_TYPES = {"image/png", "image/jpeg", "image/jpg", "image/tiff", "image/gif", "image/webp"}
JSON_TYPES = {"application/json", "text/json"}
TEXT_TYPES = {"text/csv", "application/csv", "application/x-ndjson", "application/xml", "application/yaml"}


@dataclass(frozen=True)
class Preview:
    """What a media looks like: ``kind`` "image" (``path``: the thumbnail file, ``media_type`` its
    type), "text" (``text``: the first lines) or "none" (``reason`` says why). ``etag`` names this
    preview of these bytes; ``content_type`` and ``size`` are the media's."""

    kind: str
    etag: str
    content_type: str
    size: int | None
    path: Path | None = None
    media_type: str = ""
    text: str = ""
    reason: str = ""


def sniff_image(head: bytes) -> bool:
    """Whether the first bytes are those of a PNG, JPEG, GIF, TIFF (or BigTIFF) or WebP file."""
    return (
        head.startswith(b"\x89PNG\r\n\x1a\n")
        or head.startswith(b"\xff\xd8\xff")
        or head[:6] in (b"GIF87a", b"GIF89a")
        or head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
    )


def kind_by_type(content_type: str) -> str:
    """ "image", "json", "text" or "" (unknown: the first bytes decide) for a content type."""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type in IMAGE_TYPES:
        return "image"
    if media_type in JSON_TYPES or media_type.endswith("+json"):
        return "json"
    if media_type.startswith("text/") or media_type in TEXT_TYPES:
        return "text"
    return ""


def version_of(media: Media, size: int) -> str:
    """The cache key of a preview: the media's pid, its bytes (checksum, else ETag, else where they
    are) and the thumbnail size."""
    content = media.checksum or media.etag or f"{media.store_config_id}/{media.store_key}/{media.size}"
    text = f"{media.pid}\n{content}\n{media.size}\n{size}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def cache_path(key: str, suffix: str) -> Path:
    return Path(settings.MEDIASTORE_PREVIEW_DIR) / key[:2] / f"{key}{suffix}"


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".part-")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(temporary, path)


def preview(media: Media, size: int = DEFAULT_SIZE) -> Preview:
    """The preview of ``media`` at ``size`` pixels (its longer side), from the cache or made now.
    StorageError (502) when its store cannot be read; every other failure is a "none" preview."""
    key = version_of(media, size)
    base = {"etag": key, "content_type": media.content_type, "size": media.size}
    for suffix, kind in ((IMAGE_SUFFIX, "image"), (".txt", "text"), (".none", "none")):
        path = cache_path(key, suffix)
        try:
            if kind == "image":
                if path.is_file():
                    return Preview(kind, path=path, media_type=IMAGE_MEDIA_TYPE, **base)
                continue
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        return Preview(kind, text=text, **base) if kind == "text" else Preview(kind, reason=text, **base)
    if media.store_status != StoreStatus.READY:
        return Preview("none", reason="no bytes stored yet", **base)  # not remembered: they may come
    made = make(media, size, key)
    if made.kind == "none" and not made.reason.startswith("busy"):
        write_atomically(cache_path(key, ".none"), made.reason.encode())
    return made


def make(media: Media, size: int, key: str) -> Preview:
    base = {"etag": key, "content_type": media.content_type, "size": media.size}
    backend = media.store_config.backend()
    try:
        head = b"".join(backend.iter_bytes(media.store_key, 0, 16))
    except ObjectNotFound:
        raise missing_bytes(media) from None
    kind = kind_by_type(media.content_type) or ("image" if sniff_image(head) else "")
    if kind == "image" or sniff_image(head):
        return make_image(media, size, key)
    if kind in ("text", "json"):
        text = text_excerpt(media, as_json=kind == "json")
        write_atomically(cache_path(key, ".txt"), text.encode())
        return Preview("text", text=text, **base)
    return Preview("none", reason="no preview for this type", **base)


def text_excerpt(media: Media, *, as_json: bool) -> str:
    """The first TEXT_LINES lines (of at most LINE_CHARS characters) of the first TEXT_BYTES bytes;
    JSON that fits in those bytes pretty-printed first."""
    try:
        data = b"".join(media.store_config.backend().iter_bytes(media.store_key, 0, TEXT_BYTES))
    except ObjectNotFound:
        raise missing_bytes(media) from None
    text = data.decode("utf-8", errors="replace")
    whole = media.size is not None and media.size <= TEXT_BYTES
    if as_json and whole:
        text = pretty_json(data) or text
    lines = text.splitlines()
    shown = [line if len(line) <= LINE_CHARS else line[:LINE_CHARS] + "…" for line in lines[:TEXT_LINES]]
    if len(lines) > TEXT_LINES or not whole:
        shown.append("…")
    return "\n".join(shown)


def pretty_json(data: bytes) -> str | None:
    """``data`` pretty-printed when it is JSON the API itself would take (mediastore.parser's strict
    parser: no duplicate keys, no NaN/Infinity or numbers overflowing to it, no lone surrogates), so
    the preview never shows a value the bytes do not hold; None otherwise (shown as it is)."""
    try:
        value = parser.loads(data)
    except (ValueError, RecursionError, RuleViolation):
        return None
    if has_bad_text(value):
        return None
    return json.dumps(value, indent=2, ensure_ascii=False)


def make_image(media: Media, size: int, key: str) -> Preview:
    base = {"etag": key, "content_type": media.content_type, "size": media.size}
    limit = settings.MEDIASTORE_PREVIEW_MAX_BYTES
    if media.size is not None and media.size > limit:
        return Preview("none", reason=f"{media.size} bytes, more than MEDIASTORE_PREVIEW_MAX_BYTES", **base)
    if not DECODERS.acquire(timeout=settings.MEDIASTORE_PREVIEW_SECONDS):
        return Preview("none", reason="busy: other previews are being made", **base)
    target = cache_path(key, IMAGE_SUFFIX)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".make-") as work:
            source, output = Path(work) / "source", Path(work) / f"thumb{IMAGE_SUFFIX}"
            if not spool(media, source, limit):
                return Preview("none", reason="more bytes than MEDIASTORE_PREVIEW_MAX_BYTES", **base)
            reason = decode(source, output, size)
            if reason:
                return Preview("none", reason=reason, **base)
            os.replace(output, target)
    finally:
        DECODERS.release()
    return Preview("image", path=target, media_type=IMAGE_MEDIA_TYPE, **base)


def spool(media: Media, path: Path, limit: int) -> bool:
    """Copy at most ``limit`` bytes of the media to ``path``; False when it has more."""
    try:
        chunks = media.store_config.backend().iter_bytes(media.store_key, 0, limit + 1)
    except ObjectNotFound:
        raise missing_bytes(media) from None
    written = 0
    with path.open("wb") as out:
        try:
            for chunk in chunks:
                written += len(chunk)
                if written > limit:
                    return False
                out.write(chunk)
        finally:
            chunks.close()
    return True


def decode(source: Path, output: Path, size: int) -> str:
    """Run the decoder on ``source``; "" when ``output`` was written, else the reason why not."""
    seconds = settings.MEDIASTORE_PREVIEW_SECONDS
    command = [sys.executable, "-I", str(DECODER), str(source), str(output), str(size)]
    command += [str(settings.MEDIASTORE_PREVIEW_MAX_PIXELS), IMAGE_FORMAT]
    try:
        done = subprocess.run(command, capture_output=True, timeout=seconds, check=False)
    except subprocess.TimeoutExpired:  # run() has killed it
        return f"decoding took longer than MEDIASTORE_PREVIEW_SECONDS ({seconds} s)"
    message = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
    if done.returncode == 0 and output.is_file():
        return ""
    if done.returncode == REFUSED and message:
        return message[-1][:300]
    return f"the decoder failed (exit status {done.returncode})"
