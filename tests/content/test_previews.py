"""GET /api/media/{pid}/preview: thumbnails of images, first lines of text, "no preview" otherwise
(content.previews), cached as derived data under MEDIASTORE_PREVIEW_DIR."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import DICT_STORE, ApiClient, create_media

pytestmark = pytest.mark.django_db

FORMATS = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "TIFF": "image/tiff",
    "GIF": "image/gif",
    "WEBP": "image/webp",
}


@pytest.fixture(autouse=True)
def preview_dir(settings, tmp_path) -> Path:
    settings.MEDIASTORE_PREVIEW_DIR = str(tmp_path / "previews")
    return tmp_path / "previews"


def image_bytes(fmt: str, size=(300, 200), color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format=fmt)
    return out.getvalue()


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid-looking PNG of a few dozen bytes whose header declares width x height pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def stored(api, pid: str, data: bytes, content_type: str) -> None:
    create_media(api, pid)
    response = api.put_content(pid, data, content_type=content_type)
    assert response.status_code == 200, response.content


def thumbnail(response) -> Image.Image:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "image/webp"
    return Image.open(io.BytesIO(b"".join(response.streaming_content)))


@pytest.mark.parametrize("fmt", FORMATS)
def test_image_thumbnails(api, id_types, fmt):
    stored(api, f"img-{fmt}", image_bytes(fmt), FORMATS[fmt])
    response = api.get(f"/api/media/img-{fmt}/preview?size=64")
    image = thumbnail(response)
    assert image.size == (64, 43)  # the longer side is the size asked for, the aspect kept
    red, green, blue = image.convert("RGB").getpixel((30, 20))
    assert red > 150 and green < 80 and blue < 80
    assert response["ETag"].startswith('"') and response["Cache-Control"] == "private, no-cache"


@pytest.mark.parametrize("fmt", ["TIFF", "PNG"])
def test_16_bit_greys_are_stretched_to_be_seen(api, id_types, fmt):
    """An instrument's 16-bit image using only values 1000 to 3000 shows dark and light, not black."""
    image = Image.new("I;16", (200, 100))
    for x in range(200):
        for y in range(100):
            image.putpixel((x, y), 1000 if x < 100 else 3000)
    out = io.BytesIO()
    image.save(out, format=fmt)
    stored(api, f"grey-{fmt}", out.getvalue(), FORMATS[fmt])
    shown = thumbnail(api.get(f"/api/media/grey-{fmt}/preview?size=100")).convert("L")
    assert shown.size == (100, 50)
    assert shown.getpixel((10, 25)) < 20 and shown.getpixel((90, 25)) > 235


def test_an_image_is_known_by_its_first_bytes(api, id_types):
    stored(api, "sniffed", image_bytes("PNG", (40, 80)), "application/octet-stream")
    assert thumbnail(api.get("/api/media/sniffed/preview")).size == (40, 80)  # never enlarged


def test_the_default_size_is_256(api, id_types):
    stored(api, "big", image_bytes("JPEG", (1000, 500)), "image/jpeg")
    assert thumbnail(api.get("/api/media/big/preview")).size == (256, 128)


def test_text_csv_and_json_show_their_first_lines(api, id_types):
    stored(api, "notes", "".join(f"line {i} <b>\n" for i in range(100)).encode(), "text/plain")
    response = api.get("/api/media/notes/preview")
    assert response.status_code == 200 and response["Content-Type"] == "text/plain; charset=utf-8"
    lines = response.content.decode().splitlines()
    assert lines[:2] == ["line 0 <b>", "line 1 <b>"] and len(lines) == 41 and lines[-1] == "…"

    stored(api, "table", b"depth,temperature\n5,12.5\n10,11.0\n", "text/csv")
    assert api.get("/api/media/table/preview").content.decode() == "depth,temperature\n5,12.5\n10,11.0"

    stored(api, "doc", json.dumps({"sample": {"depth": 5, "tags": ["a"]}}).encode(), "application/json")
    text = api.get("/api/media/doc/preview").content.decode()
    assert text == json.dumps({"sample": {"depth": 5, "tags": ["a"]}}, indent=2)


@pytest.mark.parametrize(
    "raw",
    [b'{"a":"\\ud800"}', b'{"a":1,"a":2}', b"[1e999999]", b"[NaN]", b'{"b": [1, 2]'],
    ids=["lone-surrogate", "duplicate-key", "overflow", "nan", "malformed"],
)
def test_json_that_does_not_parse_strictly_is_shown_as_it_is(api, id_types, raw):
    """Bug: a JSON media holding a lone surrogate escape made GET .../preview a 500
    (UnicodeEncodeError), and JSON was re-serialised unfaithfully (``{"a":1,"a":2}`` shown as
    ``{"a": 2}``, ``[1e999999]`` as ``[Infinity]``): only strictly valid JSON is pretty-printed."""
    stored(api, "odd", raw, "application/json")
    response = api.get("/api/media/odd/preview")
    assert response.status_code == 200, response.content
    assert response.content == raw


def test_other_types_have_no_preview_but_their_type_and_size(api, id_types):
    stored(api, "blob", b"\x00\x01binary" * 10, "application/x-netcdf")
    response = api.get("/api/media/blob/preview")
    assert response.status_code == 415
    assert response.json() == {
        "detail": "no preview: no preview for this type",
        "content_type": "application/x-netcdf",
        "size": 80,
    }
    create_media(api, "pending")
    response = api.get("/api/media/pending/preview")
    assert response.status_code == 415 and response.json()["detail"] == "no preview: no bytes stored yet"


def test_a_preview_is_made_once_then_served_from_its_file(api, id_types, preview_dir):
    """The second request reads the cached file: replacing its content shows in the answer."""
    stored(api, "cached", image_bytes("PNG"), "image/png")
    first = thumbnail(api.get("/api/media/cached/preview?size=128"))
    files = list(preview_dir.rglob("*.webp"))
    assert first.size == (128, 85) and len(files) == 1
    files[0].write_bytes(image_bytes("WEBP", (7, 7)))  # what a second decode would never make
    assert thumbnail(api.get("/api/media/cached/preview?size=128")).size == (7, 7)
    assert thumbnail(api.get("/api/media/cached/preview?size=64")).size == (64, 43)  # another size: its own
    assert len(list(preview_dir.rglob("*.webp"))) == 2


def test_new_bytes_get_a_new_preview(api, id_types):
    stored(api, "replaced", image_bytes("PNG", (300, 200)), "image/png")
    before = api.get("/api/media/replaced/preview?size=64")
    assert thumbnail(before).size == (64, 43)
    assert (
        api.put_content("replaced", image_bytes("PNG", (100, 200)), content_type="image/png").status_code
        == 200
    )
    after = api.get("/api/media/replaced/preview?size=64")
    assert thumbnail(after).size == (32, 64) and after["ETag"] != before["ETag"]


def test_if_none_match_answers_304(api, id_types):
    stored(api, "tagged", image_bytes("GIF"), "image/gif")
    etag = api.get("/api/media/tagged/preview")["ETag"]
    response = api.get("/api/media/tagged/preview", headers={"If-None-Match": etag})
    assert response.status_code == 304 and response["ETag"] == etag and response.content == b""


def test_a_decompression_bomb_is_refused_from_its_header(api, id_types, preview_dir):
    stored(api, "bomb", bomb_png(), "image/png")
    response = api.get("/api/media/bomb/preview")
    assert response.status_code == 415
    assert response.json()["detail"] == (
        "no preview: the image declares 100000 x 100000 pixels, more than 50000000"
    )
    assert [p.suffix for p in preview_dir.rglob("*") if p.is_file()] == [".none"]  # remembered
    assert api.get("/api/media/bomb/preview").json() == response.json()


def test_too_many_bytes_are_not_read(api, id_types, settings):
    settings.MEDIASTORE_PREVIEW_MAX_BYTES = 1000
    stored(api, "large", image_bytes("TIFF", (100, 100)), "image/tiff")  # 30 kB uncompressed
    response = api.get("/api/media/large/preview")
    assert response.status_code == 415
    assert response.json()["detail"].endswith("bytes, more than MEDIASTORE_PREVIEW_MAX_BYTES")


def test_broken_image_bytes_have_no_preview(api, id_types):
    stored(api, "broken", image_bytes("PNG")[:60], "image/png")
    response = api.get("/api/media/broken/preview")
    assert response.status_code == 415 and "cannot decode the image" in response.json()["detail"]


@pytest.mark.parametrize("size", [0, 63, 1025])
def test_sizes_are_bounded(api, id_types, size):
    stored(api, "sized", image_bytes("PNG"), "image/png")
    assert api.get(f"/api/media/sized/preview?size={size}").status_code == 422


def test_permissions(api, id_types, django_user_model):
    from tests.conftest import PASSWORD
    from tests.permissions_support import role

    stored(api, "seen", image_bytes("PNG"), "image/png")
    assert api.get("/api/media/nothing/preview").status_code == 404
    assert ApiClient().get("/api/media/seen/preview").status_code == 401
    reader = django_user_model.objects.create_user(username="rita", password=PASSWORD)
    reader.groups.add(role("readers"))
    django_user_model.objects.create_user(username="nobody", password=PASSWORD)
    for name, status in (("rita", 200), ("nobody", 403)):
        login = ApiClient().post("/api/login", {"username": name, "password": PASSWORD})
        assert ApiClient(login.json()["token"]).get("/api/media/seen/preview").status_code == status


def test_a_pid_ending_in_preview_is_refused(api, id_types):
    """/api/media/x/preview is this endpoint, so no media may have the pid "x/preview"."""
    response = api.post("/api/media", {"pid": "x/preview", "pid_type": "local", "store_config": DICT_STORE})
    assert response.status_code == 422 and "reserved" in response.json()["detail"][0]["error"]
